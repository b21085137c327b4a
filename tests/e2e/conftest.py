"""Fixtures for end-to-end tests: real `bore` processes on loopback.

Each test gets its own 127.0.0.x address for the server (the control port is
fixed at 7835), processes are started through `Proc`, which collects their
stderr lines so a test can wait for a log event instead of sleeping, and
every process is stopped with SIGTERM at teardown and must exit 0: under
ASan/LSan a leak or memory error turns into a non-zero exit and fails the
test that caused it.
"""
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BORE = os.environ.get("BORE_BIN", os.path.join(ROOT, "build", "bore"))
CONTROL_PORT = 7835
# Upstream's Rust bore-cli 0.6.0, for the interoperability tests (test_upstream.py);
# installed by scripts/setup-upstream.
UPSTREAM_BORE = os.environ.get("UPSTREAM_BORE", os.path.join(ROOT, ".cache", "cargo", "bin", "bore"))
# Upstream logs (tracing) go to stdout; info level, no colours, no backtraces.
UPSTREAM_ENV = {"RUST_LOG": "info", "NO_COLOR": "1", "RUST_BACKTRACE": "0"}

_addr_counter = itertools.count(10)
STATE_ROOT = tempfile.mkdtemp(prefix="bore-e2e-state-")
__import__("atexit").register(shutil.rmtree, STATE_ROOT, True)


class Proc:
    """A running process whose stderr is collected line by line."""

    def __init__(self, args, env=None, **kw):
        full_env = dict(os.environ)
        full_env.setdefault("BORE_LOG", "debug")
        # A state directory of its own (kafka-proxy remembers its ports
        # there): no test inherits another's ports, none writes to $HOME.
        full_env["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="state-", dir=STATE_ROOT)
        if env:
            full_env.update(env)
        self.args = args
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=full_env, **kw)
        self.lines = []
        self.out = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, args=(self.p.stderr, self.lines), daemon=True)
        self.reader.start()
        threading.Thread(target=self._read, args=(self.p.stdout, self.out), daemon=True).start()

    def _read(self, stream, into):
        for raw in stream:
            with self.cond:
                into.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            into.append(None)  # EOF marker
            self.cond.notify_all()

    def wait_for(self, pattern, timeout=10, start=0, stdout=False):
        """Waits for a stderr (or stdout) line matching `pattern`; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        lines = self.out if stdout else self.lines
        with self.cond:
            while True:
                while i < len(lines):
                    line = lines[i]
                    i += 1
                    if line is None:
                        raise AssertionError(f"process ended before {pattern!r}:\n{self.text()}")
                    m = rx.search(line)
                    if m:
                        self.next_index = i
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {pattern!r}:\n{self.text()}")
                self.cond.wait(left)

    def wait_for_n(self, pattern, n, timeout=10, start=0):
        """Waits until `n` lines from `start` on have matched `pattern`."""
        for _ in range(n):
            self.wait_for(pattern, timeout, start)
            start = self.next_index

    def text(self):
        with self.cond:
            return "\n".join(line for line in self.lines if line is not None)

    def stdout_text(self):
        with self.cond:
            return "\n".join(line for line in self.out if line is not None)

    def wait(self, timeout=15):
        rc = self.p.wait(timeout)
        self.reader.join(5)
        return rc

    def kill(self):
        """SIGKILL (a crash: no exit code to check) and wait for the end."""
        self.p.kill()
        self.killed = True
        self.p.wait()

    def stop(self):
        """SIGTERM, then the exit code (0 expected: clean shutdown, no leak)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.wait()


def sanitized():
    """True if BORE is an ASan build: its RSS then says nothing about ours."""
    with open(BORE, "rb") as f:
        return b"__asan_init" in f.read()


def proc_status(pid, field):
    """A /proc/<pid>/status figure in KiB (VmRSS, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS


def sanitizer_report(text):
    return "Sanitizer" in text or "runtime error:" in text


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = Proc(args, **kw)
        self.procs.append(p)
        return p

    def server(self, *extra, addr=None, env=None):
        addr = addr or next_addr()
        p = self.start([BORE, "server", "--bind-addr", addr, *extra], env=env)
        p.wait_for(r"server listening at")
        p.addr = addr
        return p

    def local(self, local_port, to, *extra, env=None, wait=True):
        p = self.start([BORE, "local", str(local_port), "--to", to, *extra], env=env)
        if wait:
            m = p.wait_for(r"listening at [^ ]+:(\d+)$")
            p.port = int(m.group(1))
        return p

    def upstream(self, args, prefix=()):
        """Upstream bore with `args`. It has no SIGTERM handler: stopped at
        teardown, it ends by the signal (expect_rc), and logs on stdout."""
        p = self.start([*prefix, upstream_bore(), *args], env=UPSTREAM_ENV)
        p.expect_rc = -signal.SIGTERM
        return p

    def upstream_server(self, *extra, addr=None, prefix=()):
        addr = addr or next_addr()
        p = self.upstream(["server", "--bind-addr", addr, *extra], prefix=prefix)
        p.wait_for(r"server listening", stdout=True)
        p.addr = addr
        return p

    def upstream_local(self, local_port, to, *extra, wait=True):
        p = self.upstream(["local", str(local_port), "--to", to, *extra])
        if wait:
            m = p.wait_for(r"listening at [^ ]+:(\d+)$", stdout=True)
            p.port = int(m.group(1))
        return p


def upstream_bore():
    """The upstream binary; a test that needs it fails (never skips) without it."""
    if not os.access(UPSTREAM_BORE, os.X_OK):
        pytest.fail(f"upstream bore-cli not found at {UPSTREAM_BORE}: run scripts/setup-upstream",
                    pytrace=False)
    return UPSTREAM_BORE


def next_addr():
    n = next(_addr_counter)
    return f"127.0.{n // 250}.{n % 250 + 2}"


@pytest.fixture
def procs():
    ps = Procs()
    yield ps
    stop_all(ps)


@pytest.fixture(scope="module")
def module_procs():
    """Processes shared by every test of a module (a real Kafka cluster's
    tunnel server and kafka-proxy), stopped and checked at its end."""
    ps = Procs()
    yield ps
    stop_all(ps)


@pytest.fixture
def dual_ns():
    """A network namespace whose /etc/hosts (ip netns exec mounts
    /etc/netns/NAME/hosts over it) maps `dual` to ::1, then 127.0.0.1; the
    prefix that runs a command in it. List it before `procs`, so that the
    processes are stopped before it goes."""
    name = f"boredual{os.getpid() % 100000}"
    etc = f"/etc/netns/{name}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    os.makedirs(etc, exist_ok=True)
    with open(f"{etc}/hosts", "w") as f:
        f.write("::1 dual\n127.0.0.1 dual\n127.0.0.1 localhost\n")
    yield ["ip", "netns", "exec", name]
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    shutil.rmtree(etc, ignore_errors=True)


@pytest.fixture(scope="module")
def ns():
    """The three network namespaces of the Kafka tests (netns.py), one set
    per test module."""
    from netns import Namespaces
    n = Namespaces()
    yield n
    n.cleanup()


def stop_all(ps):
    failures = []
    for p in reversed(ps.procs):  # clients before the servers they use
        if getattr(p, "killed", False):
            p.wait()
            continue
        rc = p.stop()
        text = p.text()
        if rc != getattr(p, "expect_rc", 0) or sanitizer_report(text):
            failures.append(f"{' '.join(p.args)} exited {rc}:\n{text[-6000:]}")
    assert not failures, "\n\n".join(failures)


# ---- raw protocol helpers --------------------------------------------------

class Ctl:
    """A raw control connection that speaks frames by hand."""

    def __init__(self, addr, timeout=5, source=None):
        self.s = socket.create_connection((addr, CONTROL_PORT), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def frame(self):
        """Next NUL-terminated frame (without the NUL), or None at EOF."""
        while b"\0" not in self.buf:
            try:
                chunk = self.s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        f, _, self.buf = self.buf.partition(b"\0")
        return f

    def read_all(self):
        """Everything until EOF, raw (includes NULs)."""
        data = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self.s.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self):
        self.s.close()


def auth_tag(secret, challenge_uuid):
    import hashlib
    import hmac
    import uuid
    key = hashlib.sha256(secret.encode()).digest()
    return hmac.new(key, uuid.UUID(challenge_uuid).bytes, hashlib.sha256).hexdigest()


def read_to_eof(sock):
    """Everything a socket receives until the peer's FIN."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def listen_local(addr="127.0.0.1"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 0))
    s.listen(512)
    return s

