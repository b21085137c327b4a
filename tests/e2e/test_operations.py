"""What the README promises operators beyond upstream, each against the real
binary: a client that stops reading its control connection is dropped,
parked visitors expire in turn, log levels from BORE_LOG and RUST_LOG, the
open-file limit raised at start, TCP keepalive on control connections, the
secret in no log line."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import BORE, Ctl, next_addr

RANGE = ["--min-port", "45000", "--max-port", "45999"]


def hello(addr, timeout=20):
    c = Ctl(addr, timeout=timeout)
    c.send(b'{"Hello":0}\0')
    return c, json.loads(c.frame())["Hello"]


@pytest.fixture
def small_buffers_ns():
    """A network namespace whose TCP send buffers stay under 64 KiB (on the
    host they grow to 4 MiB, which a test would need 60,000 visitors to
    fill); the prefix that runs a command in it. List it before `procs`."""
    name = f"boresmall{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    ns = ["ip", "netns", "exec", name]
    subprocess.run([*ns, "sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 16384 65536"], check=True)
    yield ns
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


STUCK_CLIENT = """
import json, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', 7835))
s.sendall(b'{"Hello":0}\\0')
buf = b''
while b'\\0' not in buf:
    buf += s.recv(100)
port = json.loads(buf.partition(b'\\0')[0])['Hello']
print(port, flush=True)
# Each visitor queues one Connection message; this client reads none.
for i in range(20000):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=5).close()
    except ConnectionRefusedError:  # its tunnel went with its control connection
        break
print(i, flush=True)
sys.stdin.read()  # holds the control connection until the test is done
"""


def test_client_that_stops_reading_its_control_connection_is_dropped(small_buffers_ns, procs):
    """A control connection that never reads while its tunnel gets visitors:
    once 64 KiB of Connection messages wait for it, the server drops it,
    closes its tunnel, and keeps serving everyone else."""
    ns = small_buffers_ns
    srv = procs.start([*ns, BORE, "server", "--bind-addr", "127.0.0.1", *RANGE, "--max-pending", "100000",
                       "--max-pending-per-tunnel", "100000"], env={"BORE_LOG": "info"})
    srv.wait_for("server listening")
    stuck = subprocess.Popen([*ns, "/usr/bin/python3", "-c", STUCK_CLIENT], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(stuck.stdout.readline())
        srv.wait_for(r"WARN .*127\.0\.0\.1:\d+ is not reading its control connection; dropping it",
                     timeout=30)
        srv.wait_for(rf"tunnel on port {port} closed")
        visitors = int(stuck.stdout.readline())
        assert visitors < 19999, "the tunnel outlived its stuck control connection"
    finally:
        stuck.kill()
        stuck.wait()
    cl = procs.start([*ns, BORE, "local", "1", "--to", "127.0.0.1"])
    cl.wait_for(r"listening at 127\.0\.0\.1:\d+$")


def test_parked_visitors_expire_in_turn(procs):
    """Two unaccepted visitors, 3 s apart: each is dropped 10 s after its
    own arrival (one timer, re-armed for the next one)."""
    srv = procs.server(*RANGE)
    c, port = hello(srv.addr)
    t0 = time.monotonic()
    v1 = socket.create_connection((srv.addr, port), timeout=20)
    # The server's heartbeats (every 500 ms) are the clock: 6 of them, 3 s.
    beats = 0
    while beats < 6:
        beats += c.frame() == b'"Heartbeat"'
    t2 = time.monotonic()
    v2 = socket.create_connection((srv.addr, port), timeout=20)
    assert v1.recv(10) == b""
    assert 9.0 < time.monotonic() - t0 < 11.5
    assert v2.recv(10) == b""
    assert 9.0 < time.monotonic() - t2 < 11.5
    srv.wait_for_n(r"was not accepted within 10 s; dropped", 2)


def quiet_env(**kw):
    env = {k: v for k, v in os.environ.items() if k not in ("BORE_LOG", "RUST_LOG")}
    env.update(kw)
    return env


def cannot_connect(env):
    """`bore local` to an address where nothing listens: a DEBUG line per
    address tried, then the error."""
    r = subprocess.run([BORE, "local", "1", "--to", "127.0.0.250"], capture_output=True, text=True,
                       timeout=15, env=env)
    assert r.returncode == 1 and "Error: could not connect" in r.stderr
    return r.stderr


def test_log_levels_from_bore_log_and_rust_log():
    assert re.search(r"DEBUG bore::\w+: could not connect", cannot_connect(quiet_env(BORE_LOG="debug")))
    assert "DEBUG" not in cannot_connect(quiet_env())  # info by default
    assert re.search(r"DEBUG bore::\w+: could not connect", cannot_connect(quiet_env(RUST_LOG="debug")))
    err = cannot_connect(quiet_env(BORE_LOG="error", RUST_LOG="debug"))  # BORE_LOG first
    assert not re.search(r" (DEBUG|INFO|WARN) ", err), err
    err = cannot_connect(quiet_env(BORE_LOG="warn"))
    assert not re.search(r" (DEBUG|INFO) ", err), err


def test_server_raises_its_open_file_limit_to_the_hard_limit(procs):
    addr = next_addr()
    srv = procs.start(["prlimit", "--nofile=256:4096", BORE, "server", "--bind-addr", addr, *RANGE])
    srv.wait_for("server listening")
    limits = open(f"/proc/{srv.p.pid}/limits").read()
    soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits).groups()
    assert (soft, hard) == ("4096", "4096")


def test_control_connections_have_tcp_keepalive(procs):
    srv = procs.server(*RANGE)
    c, port = hello(srv.addr)
    ss = subprocess.run(["ss", "-tnoH", "state", "established", "src", f"{srv.addr}:7835"],
                        capture_output=True, text=True, timeout=10).stdout
    assert "timer:(keepalive" in ss, ss
    v = socket.create_connection((srv.addr, port), timeout=5)  # a visitor's: none
    srv.wait_for("new visitor")
    ss = subprocess.run(["ss", "-tnoH", "state", "established", "src", f"{srv.addr}:{port}"],
                        capture_output=True, text=True, timeout=10).stdout
    assert ss.strip() and "keepalive" not in ss, ss
    v.close()
    c.close()


def test_secret_appears_in_no_log_at_trace(procs, tmp_path):
    """The secret, given each way (BORE_SECRET, --secret, --secret-file),
    is in no line the server or the client writes at the most verbose level,
    through a tunnel set-up and a visitor's authenticated connection."""
    secret = "s3cret-that-must-not-leak"
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    srv = procs.server(*RANGE, env={"BORE_SECRET": secret, "BORE_LOG": "trace"})
    svc = socket.socket()
    svc.bind(("127.0.0.1", 0))
    svc.listen()
    clients = [procs.local(svc.getsockname()[1], srv.addr, "--secret", secret, env={"BORE_LOG": "trace"}),
               procs.local(svc.getsockname()[1], srv.addr, "--secret-file", str(path),
                           env={"BORE_LOG": "trace"})]
    for cl in clients:
        v = socket.create_connection((srv.addr, cl.port), timeout=5)
        v.sendall(b"x")
        c, _ = svc.accept()
        assert c.recv(1) == b"x"
        c.close()
        v.close()
        cl.wait_for(rf"new connection through port {cl.port}")
    for p in (*clients, srv):  # clients first: a server going away is their error
        assert p.stop() == 0
        assert secret not in p.text() + p.stdout_text()
