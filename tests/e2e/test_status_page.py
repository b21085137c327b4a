"""The status page at / in headless Chromium, and kafka-proxy's live
terminal view in tmux (issue 11). Both show the broker table with numbers
that follow the traffic. The page's screenshot is kept as a test artifact
in build/test-artifacts/."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BORE, ROOT
from kafka_env import SECRET, Env
from netns import CLIENT_TO_SERVER, CLUSTER_TO_SERVER
from test_metrics import http_get, produce_requests

ARTIFACTS = os.path.join(ROOT, "build", "test-artifacts")
METRICS_PORT = 9465


@pytest.fixture(scope="module")
def kenv(module_procs, ns):
    e = Env(module_procs, ns, brokers=3, proxy_args=["--metrics", f"127.0.0.1:{METRICS_PORT}"])
    yield e
    e.close()


def status(kenv):
    return json.loads(http_get("127.0.0.1", METRICS_PORT, "/status", prefix=kenv.ns.prefix("c"))[1])


def chromium(kenv, *args):
    """Headless Chromium in the proxy's namespace, loading the page and
    letting its script poll /status for 3 s of virtual time."""
    profile = tempfile.mkdtemp(prefix="bore-chromium-")
    try:
        r = subprocess.run([*kenv.ns.prefix("c"), "chromium", "--headless", "--no-sandbox",
                            "--disable-gpu", f"--user-data-dir={profile}", "--window-size=1400,700",
                            "--virtual-time-budget=3000", *args,
                            f"http://127.0.0.1:{METRICS_PORT}/"],
                           capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def cells(dom, name):
    """{class: text} of the table row for node `name`."""
    m = re.search(rf'<tr data-name="{re.escape(name)}">(.*?)</tr>', dom)
    assert m, f"no row for {name}:\n{dom[-3000:]}"
    out = {}
    for i, (cls, text) in enumerate(re.findall(r'<td(?: class="([^"]*)")?>(.*?)</td>', m.group(1))):
        out[cls.split()[-1] if cls else f"col{i}"] = text
    return out


def test_status_page_in_chromium_shows_the_broker_table_with_live_numbers(kenv):
    sent = produce_requests(kenv, 25)
    st = status(kenv)
    rows = {r["name"]: r for r in st["nodes"]}
    assert rows["bootstrap"]["bytes_in"] >= sent
    dom = chromium(kenv, "--dump-dom")
    assert "<title>bore status</title>" in dom
    assert re.search(r"<h1>bore <span id=\"command\">kafka-proxy</span></h1>", dom), dom[:2000]
    for name in ("bootstrap", "1", "2", "3"):
        c = cells(dom, name)
        assert c["col1"] == rows[name]["public"] and c["col2"] == rows[name]["internal"]
        assert c["up"] == "listening"
    boot = cells(dom, "bootstrap")
    # the numbers are the proxy's, as of the page's last poll
    later = {r["name"]: r for r in status(kenv)["nodes"]}["bootstrap"]
    assert rows["bootstrap"]["bytes_in"] <= int(boot["bytes-in"]) <= later["bytes_in"]
    assert rows["bootstrap"]["requests"] <= int(boot["requests"]) <= later["requests"]
    assert int(boot["requests"]) >= 25
    # rates need two polls: they are numbers, not "-"
    assert re.match(r"^\d+(\.\d+)?$", boot["rate-req"]), boot
    assert re.match(r"^\d+(\.\d+)? (B|KiB|MiB)/s$", boot["rate-in"]), boot
    assert "is public on port" in dom  # the recent events
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "status_page.png")
    if os.path.exists(shot):
        os.unlink(shot)
    chromium(kenv, f"--screenshot={shot}")
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# ---- the terminal view --------------------------------------------------------------

def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30)


class Pane:
    """A kafka-proxy in a detached tmux session of 160x40 (stdout a
    terminal); stderr to `log` unless `stderr_to_pane`."""

    def __init__(self, kenv, port, *extra, stderr_to_pane=False):
        self.session = f"bore-tui-{os.getpid()}-{port}"
        self.work = tempfile.mkdtemp(prefix="bore-tui-")
        self.log, self.pidf = os.path.join(self.work, "log"), os.path.join(self.work, "pid")
        open(self.log, "w").close()
        target = kenv.cluster.bootstrap.split(",")[0]
        cmd = " ".join([*kenv.ns.prefix("c"), BORE, "kafka-proxy", "-b", target, "--to",
                        CLUSTER_TO_SERVER, "--advertised-host", CLIENT_TO_SERVER, "-s", f"'{SECRET}'",
                        "-p", str(port), *extra])
        redirect = "" if stderr_to_pane else f"2>{self.log}"
        script = f"{cmd} {redirect} & echo $! >{self.pidf}; wait $!; echo exit $?; sleep 600"
        tmux("kill-session", "-t", self.session)
        r = tmux("new-session", "-d", "-s", self.session, "-x", "160", "-y", "40", "sh", "-c", script)
        assert r.returncode == 0, r.stderr

    def screen(self):
        return tmux("capture-pane", "-p", "-t", self.session).stdout

    def wait(self, pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.2)
        with open(self.log) as f:
            raise AssertionError(f"timed out waiting for {what}:\n{self.screen()}\n{f.read()}")

    def stop(self):
        """SIGTERM; the proxy must exit 0 (under ASan: no leak)."""
        try:
            try:
                with open(self.pidf) as f:
                    os.kill(int(f.read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
            s = self.wait(lambda s: "exit " in s, "the proxy's exit", timeout=20)
            with open(self.log) as f:
                assert "exit 0" in s, s + f.read()
        finally:
            tmux("kill-session", "-t", self.session)
            shutil.rmtree(self.work, ignore_errors=True)


def boot_row(s):
    """(conns, in/s, out/s, req/s) of the bootstrap row, or None."""
    m = re.search(r"^\s+bootstrap\s+\S+\s+\S+\s+listening\s+(\d+)\s+(.+?/s|-)\s+(.+?/s|-)\s+(\S+)\s*$",
                  s, re.M)
    return m.groups() if m else None


JUNK_LOG = r"WARN .*closing a client connection to Kafka bootstrap at .*: request size is negative"


def junk_request(kenv, port):
    """A request size of -1 to the bootstrap port: the proxy logs JUNK_LOG."""
    subprocess.run([*kenv.client_ns, "/usr/bin/python3", "-c", f"""
import socket
s = socket.create_connection(({CLIENT_TO_SERVER!r}, {port}), timeout=20)
s.sendall(b'\\xff\\xff\\xff\\xff')
s.recv(1)
"""], check=True, capture_output=True, timeout=60)


def test_terminal_view_in_tmux_shows_the_table_and_its_numbers_change(kenv):
    pane = Pane(kenv, 9093)
    try:
        s = pane.wait(lambda s: all(re.search(rf"^\s+{n}\s+192\.0\.2\.6:\d+", s, re.M)
                                    for n in ("bootstrap", "1", "2", "3")) and boot_row(s), "the table")
        assert re.search(r"NODE\s+PUBLIC\s+INTERNAL\s+STATE\s+CONNS\s+IN\s+OUT\s+REQ/S", s)
        assert "bootstrap.servers=192.0.2.6:9093" in s

        # traffic while it runs: the request rate leaves 0, then comes back
        stop = threading.Event()

        def traffic():
            while not stop.is_set():
                subprocess.run([*kenv.client_ns, "/usr/bin/python3", "-c", f"""
import socket, struct
s = socket.create_connection(({CLIENT_TO_SERVER!r}, 9093), timeout=20)
for i in range(50):
    body = struct.pack('>hhih', 0, 3, i, 4) + b'test' + struct.pack('>hhii', -1, 1, 5000, 0)
    s.sendall(struct.pack('>i', len(body)) + body)
    size = struct.unpack('>i', s.recv(4, socket.MSG_WAITALL))[0]
    s.recv(size, socket.MSG_WAITALL)
"""], capture_output=True, timeout=60)
        t = threading.Thread(target=traffic)
        t.start()
        try:
            busy = pane.wait(lambda s: boot_row(s) and boot_row(s)[3] not in ("-", "0.0"),
                             "a request rate above 0")
        finally:
            stop.set()
            t.join(60)
        row = boot_row(busy)
        assert float(row[3]) > 0 and not row[1].startswith("0 B"), row
        pane.wait(lambda s: boot_row(s) and boot_row(s)[3] == "0.0", "the rate back at 0")
    finally:
        pane.stop()


def test_no_tui_prints_the_plain_table_and_log_lines_on_a_terminal(kenv):
    assert "\x1b[" not in kenv.proxy.stdout_text()  # stdout not a terminal: no view
    pane = Pane(kenv, 9094, "--no-tui", stderr_to_pane=True)
    try:
        pane.wait(lambda s: "bootstrap.servers=192.0.2.6:9094" in s and "ready: 3 brokers" in s,
                  "the table")
        # A log line after start-up (a view, had there been one, is drawn at
        # once when the proxy is ready, clearing the screen)...
        junk_request(kenv, 9094)
        s = pane.wait(lambda s: re.search(JUNK_LOG, s), "the log line")
        # ...and the start-up lines are still there, with no view
        assert "is public on 192.0.2.6" in s and "INFO" in s, s
        assert not re.search(r"NODE\s+PUBLIC\s+INTERNAL\s+STATE\s+CONNS", s), s
    finally:
        pane.stop()


def test_terminal_view_keeps_log_lines_scrolling_below_it(kenv):
    """With stderr on the same terminal, a log line written after the view
    is up stays on screen below the table through the later redraws (the
    view sets a scroll region for the logs; it used to wipe them)."""
    pane = Pane(kenv, 9095, stderr_to_pane=True)
    try:
        pane.wait(lambda s: boot_row(s) and re.search(r"up \d+:\d\d:\d\d", s), "the view")
        junk_request(kenv, 9095)
        line = JUNK_LOG
        s = pane.wait(lambda s: re.search(line, s), "the log line")
        up = lambda s: re.search(r"up (\d+:\d\d:\d\d)", s).group(1)  # noqa: E731
        seen = up(s)
        # two redraws later (the clock in the title moved twice)...
        s = pane.wait(lambda s: up(s) != seen, "a redraw")
        s = pane.wait(lambda s, once=up(s): up(s) != once, "another redraw")
        # ...the log line is still there, below the whole table
        assert re.search(line, s), s
        table_end = max(s.index(f" {n} ") for n in ("bootstrap", "1", "2", "3"))
        assert re.search(line, s).start() > table_end, s
    finally:
        pane.stop()
