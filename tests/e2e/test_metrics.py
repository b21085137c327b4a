"""--metrics (issue 11): /metrics in Prometheus text format from `bore
server`, `bore local` and `bore kafka-proxy`, checked by Prometheus's own
tooling (promtool and python3-prometheus-client's parser); counters that
match known traffic exactly and move while a connection is still open;
/status; and hostile input on the metrics port while a tunnel carries data.
"""
import json
import re
import socket
import struct
import subprocess
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BORE, listen_local, next_addr
from kafka_env import Env
from netns import CLIENT_TO_SERVER

MiB = 1 << 20


# ---- helpers -------------------------------------------------------------------

def http_get(host, port, path, prefix=(), method="GET"):
    """(status, body) of one request; in another namespace through curl."""
    if prefix:
        r = subprocess.run([*prefix, "curl", "-s", "-X", method, "-o", "-", "-w", "\n%{http_code}",
                            "--path-as-is", f"http://{host}:{port}{path}"],
                           capture_output=True, text=True, timeout=30)
        body, _, code = r.stdout.rpartition("\n")
        return int(code), body
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def promtool_clean(text):
    """promtool check metrics: exit 0 and not a word (lint warnings print)."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", \
        f"promtool: rc {r.returncode}\n{r.stdout}\n{r.stderr}"


def samples(text):
    """{(name, ((label, value), ...)): value} through prometheus_client's parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric_port(proc):
    return int(proc.wait_for(r"metrics at http://[^ ]+:(\d+)/metrics").group(1))


def echo_server():
    """A local service that echoes everything; returns its port."""
    ls = listen_local()

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return

            def echo(c=c):
                while data := c.recv(65536):
                    c.sendall(data)
                c.close()
            threading.Thread(target=echo, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def echo_through(host, port, nbytes):
    """Sends nbytes through the tunnel and reads them back."""
    c = socket.create_connection((host, port), timeout=30)
    got = 0

    def reader():
        nonlocal got
        while got < nbytes:
            d = c.recv(65536)
            if not d:
                break
            got += len(d)
    t = threading.Thread(target=reader)
    t.start()
    c.sendall(b"m" * nbytes)
    t.join(60)
    c.close()
    return got


@pytest.fixture
def tunnel(procs):
    """A server and a local client, both with --metrics, and an echo service."""
    addr = next_addr()
    srv = procs.server("--metrics", f"{addr}:0", addr=addr)
    srv.mport = metric_port(srv)
    lp = echo_server()
    loc = procs.local(lp, addr, "--metrics", "127.0.0.1:0")
    loc.mport = metric_port(loc)
    return addr, srv, loc


def server_bytes(addr, srv, port):
    s = samples(http_get(addr, srv.mport, "/metrics")[1])
    return (s[("bore_server_tunnel_bytes_total", (("direction", "in"), ("port", str(port))))],
            s[("bore_server_tunnel_bytes_total", (("direction", "out"), ("port", str(port))))])


def local_bytes(loc):
    s = samples(http_get("127.0.0.1", loc.mport, "/metrics")[1])
    return (s[("bore_local_bytes_total", (("direction", "in"),))],
            s[("bore_local_bytes_total", (("direction", "out"),))])


# ---- tunnels --------------------------------------------------------------------------

def test_server_and_local_metrics_pass_promtool_and_the_parser(tunnel):
    addr, srv, loc = tunnel
    assert echo_through(addr, loc.port, 1000) == 1000
    for host, port in ((addr, srv.mport), ("127.0.0.1", loc.mport)):
        code, text = http_get(host, port, "/metrics")
        assert code == 200
        promtool_clean(text)
        assert samples(text)
    s = samples(http_get(addr, srv.mport, "/metrics")[1])
    assert s[("bore_server_tunnels", ())] == 1
    assert s[("bore_server_tunnel_visitors_total", (("port", str(loc.port)),))] == 1
    s = samples(http_get("127.0.0.1", loc.mport, "/metrics")[1])
    assert s[("bore_local_tunnel_up", ())] == 1
    assert s[("bore_local_public_port", ())] == loc.port
    assert s[("bore_local_connections_total", ())] == 1


def test_exactly_one_mib_raises_the_byte_counters_by_one_mib_both_ways(tunnel):
    addr, srv, loc = tunnel
    assert server_bytes(addr, srv, loc.port) == (0, 0)
    assert echo_through(addr, loc.port, MiB) == MiB
    # The relays count as bytes are read; the last reads may land a moment
    # after the client has them: wait for the counters to settle, bounded.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (server_bytes(addr, srv, loc.port) != (MiB, MiB)
                                           or local_bytes(loc) != (MiB, MiB)):
        time.sleep(0.05)
    assert server_bytes(addr, srv, loc.port) == (MiB, MiB)
    assert local_bytes(loc) == (MiB, MiB)


def test_counters_rise_while_a_long_lived_connection_is_open(tunnel):
    addr, srv, loc = tunnel
    c = socket.create_connection((addr, loc.port), timeout=30)
    for round_ in (1, 2, 3):
        c.sendall(b"x" * 100_000)
        got = 0
        while got < 100_000:
            got += len(c.recv(65536))
        # The connection is still open: the counters already show it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server_bytes(addr, srv, loc.port)[0] < round_ * 100_000:
            time.sleep(0.05)
        assert server_bytes(addr, srv, loc.port)[0] == round_ * 100_000
        assert local_bytes(loc)[0] == round_ * 100_000
        code, st = http_get(addr, srv.mport, "/status")
        row = json.loads(st)["tunnels"][0]
        assert row["connections_active"] == 1 and row["bytes_in"] == round_ * 100_000
    c.close()


def test_status_and_healthz(tunnel):
    addr, srv, loc = tunnel
    assert http_get(addr, srv.mport, "/healthz") == (200, "ok\n")
    st = json.loads(http_get(addr, srv.mport, "/status")[1])
    assert st["command"] == "server"
    assert [t["port"] for t in st["tunnels"]] == [loc.port]
    assert any(f"new tunnel on port {loc.port}" in e["text"] for e in st["events"])
    st = json.loads(http_get("127.0.0.1", loc.mport, "/status")[1])
    assert st["command"] == "local" and st["tunnel"]["public_port"] == loc.port
    assert st["tunnel"]["state"] == "listening"


def test_local_is_down_and_reconnecting_while_its_server_is_gone_then_up_again(tunnel, procs):
    """bore_local_tunnel_up and /status follow the control connection: 0 and
    "reconnecting" (the port kept) from the moment it is lost, 1 and
    "listening" once the tunnel is back."""
    addr, srv, loc = tunnel

    def state():
        up = samples(http_get("127.0.0.1", loc.mport, "/metrics")[1])[("bore_local_tunnel_up", ())]
        st = json.loads(http_get("127.0.0.1", loc.mport, "/status")[1])["tunnel"]
        return up, st["state"], st["public_port"]

    assert state() == (1, "listening", loc.port)
    mark = len(loc.lines)
    srv.kill()
    loc.wait_for(r"reconnecting to .* \(attempt 1", start=mark)
    assert state() == (0, "reconnecting", loc.port)
    procs.server(addr=addr)
    loc.wait_for(rf"listening at {re.escape(addr)}:{loc.port} again", timeout=30, start=mark)
    assert state() == (1, "listening", loc.port)

def test_metrics_default_to_loopback_and_bad_values_are_usage_errors(procs):
    r = subprocess.run([BORE, "server", "--metrics", "localhost:1"], capture_output=True, text=True)
    assert r.returncode == 2 and "--metrics" in r.stderr
    r = subprocess.run([BORE, "local", "1", "--to", "x", "--metrics", "70000"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    srv = procs.server("--metrics", "0")
    srv.wait_for(r"metrics at http://127\.0\.0\.1:\d+/metrics")


# ---- hostile scrapers ----------------------------------------------------------------------

def raw_answer(addr, port, data, timeout=15):
    """Sends `data` (ignoring a reset), returns the status code answered, or
    None for a close without an answer."""
    s = socket.create_connection((addr, port), timeout=timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    resp = b""
    try:
        while chunk := s.recv(65536):
            resp += chunk
    except ConnectionResetError:
        pass
    s.close()
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else None


def test_bad_input_on_the_metrics_port_gets_4xx_or_a_close_while_the_tunnel_carries_data(tunnel):
    addr, srv, loc = tunnel
    transfers = []

    def keep_transferring(stop):
        while not stop.is_set():
            transfers.append(echo_through(addr, loc.port, 256 * 1024))
    stop = threading.Event()
    t = threading.Thread(target=keep_transferring, args=(stop,))
    t.start()
    try:
        # a slowloris holding every slot (and more): each is closed at the deadline
        slow = []
        for _ in range(40):
            try:
                s = socket.create_connection((addr, srv.mport), timeout=20)
                s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
                slow.append(s)
            except OSError:
                pass
        cases = {
            "oversized request line": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
            "10,000 headers": b"GET /metrics HTTP/1.1\r\n" + b"X-H: v\r\n" * 10000 + b"\r\n",
            "POST /metrics": b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
            "/../": b"GET /../metrics HTTP/1.1\r\n\r\n",
            "%2e%2e": b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n",
            "/metrics/../status": b"GET /metrics/../status HTTP/1.1\r\n\r\n",
            "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,
        }
        for s in slow:
            s.settimeout(25)
            t0 = time.monotonic()
            try:
                rest = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                rest = b""
            assert rest == b"" or rest.startswith(b"HTTP/1.1 4"), rest
            assert time.monotonic() - t0 < 20
            s.close()
        for name, data in cases.items():
            code = raw_answer(addr, srv.mport, data)
            assert code is None or 400 <= code < 500, (name, code)
            if name in ("POST /metrics",):
                assert code == 405, name
            if name in ("/../", "%2e%2e", "/metrics/../status"):
                assert code == 404, name
    finally:
        stop.set()
        t.join(120)
    assert transfers and all(n == 256 * 1024 for n in transfers), transfers
    # the metrics port still serves, and the tunnel still carries data
    assert http_get(addr, srv.mport, "/metrics")[0] == 200
    assert echo_through(addr, loc.port, MiB) == MiB


# ---- kafka-proxy -----------------------------------------------------------------------------

METRICS = "127.0.0.1:9464"  # in the cluster namespace, next to the proxy


@pytest.fixture(scope="module")
def kenv(module_procs, ns):
    e = Env(module_procs, ns, brokers=3, proxy_args=["--metrics", METRICS])
    yield e
    e.close()


def kget(kenv, path):
    return http_get("127.0.0.1", 9464, path, prefix=kenv.ns.prefix("c"))


def produce_requests(kenv, n):
    """n Produce v3 requests (acks=1, no topics: the broker answers each with
    an empty list) pipelined on one connection to the bootstrap address, from
    the client namespace; returns the bytes sent."""
    r = subprocess.run([*kenv.client_ns, "/usr/bin/python3", "-c", f"""
import socket, struct
n = {n}
s = socket.create_connection(({CLIENT_TO_SERVER!r}, {kenv.port}), timeout=20)
out = b''
for i in range(n):
    body = struct.pack('>hhih', 0, 3, 100 + i, 4) + b'test' + struct.pack('>hhii', -1, 1, 5000, 0)
    out += struct.pack('>i', len(body)) + body
s.sendall(out)
for i in range(n):
    size = struct.unpack('>i', s.recv(4, socket.MSG_WAITALL))[0]
    assert struct.unpack('>i', s.recv(size, socket.MSG_WAITALL)[:4])[0] == 100 + i
print(len(out))
"""], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


def produce_samples(s):
    key = ("bore_kafka_requests_total",
           (("api", "Produce"), ("api_key", "0"), ("node", "bootstrap"), ("version", "3")))
    hist = ("bore_kafka_response_seconds_count", (("api", "Produce"), ("api_key", "0"), ("node", "bootstrap")))
    nbytes = ("bore_kafka_node_bytes_total", (("direction", "in"), ("node", "bootstrap")))
    return s.get(key, 0), s.get(hist, 0), s.get(nbytes, 0)


def test_kafka_proxy_metrics_pass_promtool_and_the_parser(kenv):
    produce_requests(kenv, 3)
    code, text = kget(kenv, "/metrics")
    assert code == 200
    promtool_clean(text)
    s = samples(text)
    for node in ("bootstrap", "1", "2", "3"):
        assert s[("bore_kafka_node_tunnel_up", (("node", node),))] == 1
    assert s[("bore_kafka_node_public_port", (("node", "bootstrap"),))] == kenv.port


def test_n_produce_requests_raise_the_produce_counter_and_histogram_by_n(kenv):
    before = produce_samples(samples(kget(kenv, "/metrics")[1]))
    n = 37
    sent = produce_requests(kenv, n)
    deadline = time.monotonic() + 10
    while True:
        after = produce_samples(samples(kget(kenv, "/metrics")[1]))
        if after[2] - before[2] >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after[0] - before[0] == n
    assert after[1] - before[1] == n
    assert after[2] - before[2] == sent  # exactly the request bytes, as they flowed


def test_status_agrees_with_the_printed_table_and_follows_an_added_broker(kenv):
    st = json.loads(kget(kenv, "/status")[1])
    assert st["command"] == "kafka-proxy"
    assert st["bootstrap_servers"] == f"{CLIENT_TO_SERVER}:{kenv.port}"
    rows = {r["name"]: r for r in st["nodes"]}
    assert set(rows) == {"bootstrap", "1", "2", "3"}
    for node, (host, port) in kenv.public.items():
        assert rows[str(node)]["public"] == f"{host}:{port}"
        assert rows[str(node)]["state"] == "listening"
    # the printed table's INTERNAL column too
    for line in kenv.proxy.stdout_text().splitlines():
        m = re.match(r"^\s+(\S+)\s+(\S+)\s+(\S+)\s+ok$", line)
        if m:
            assert rows[m.group(1)]["public"] == m.group(2)
            assert rows[m.group(1)]["internal"] == m.group(3)
    assert kenv.cluster.cmd("add 4") == {"ok": "add"}
    from kafka_rig import CLIENTS
    CLIENTS["kcat"].addresses(kenv.bootstrap, prefix=kenv.client_ns)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = {r["name"]: r for r in json.loads(kget(kenv, "/status")[1])["nodes"]}
        if rows.get("4", {}).get("state") == "listening":
            break
        time.sleep(0.1)
    m = kenv.proxy.wait_for(r"broker 4 is public at 192\.0\.2\.6:(\d+)")
    assert rows["4"]["public"] == f"{CLIENT_TO_SERVER}:{m.group(1)}"
    events = json.loads(kget(kenv, "/status")[1])["events"]
    assert any(e["text"].startswith("broker 4 added") for e in events)
    s = samples(kget(kenv, "/metrics")[1])
    assert s[("bore_kafka_node_public_port", (("node", "4"),))] == int(m.group(1))
