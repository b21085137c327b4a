"""Interoperability with the real upstream binary, bore-cli 0.6.0 from crates.io
(installed by scripts/setup-upstream into .cache/cargo/bin/bore): our server
with upstream's client, upstream's server with our client, and our Kafka
proxy through upstream's server. Every case moves real bytes through real
processes and checks them (exact echo or SHA-256). Two differential tests
send the same raw input to both servers (every row of the failure table and
the decoder's leniencies) and run both clients against one scripted server:
the bytes must be identical.

Upstream's server takes --bind-addr (control port) and --bind-tunnels
(defaults to --bind-addr), so it binds the test's own 127.0.x.y like ours
does. Upstream relays with tokio's copy_bidirectional, which propagates
half-close, so half-close is checked through both mixed pairs. Upstream
processes have no SIGTERM handler: the fixture expects them to end by the
signal (conftest.Procs.upstream)."""
import hashlib
import json
import os
import re
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Ctl, auth_tag, listen_local, next_addr, read_to_eof
from kafka_rig import CLIENTS
from netns import CLIENT_TO_SERVER
from kafka_env import SECRET, Env
from test_kafka_proxy import N

RANGE = ["--min-port", "43000", "--max-port", "43999"]


class Pair:
    """One server and one client implementation: "ours" or "upstream"."""

    def __init__(self, procs, server, client):
        self.procs, self.server_impl, self.client_impl = procs, server, client

    def server(self, *extra):
        if self.server_impl == "ours":
            return self.procs.server(*RANGE, *extra)
        return self.procs.upstream_server(*RANGE, *extra)

    def local(self, port, srv, *extra, wait=True):
        if self.client_impl == "ours":
            return self.procs.local(port, srv.addr, *extra, wait=wait)
        return self.procs.upstream_local(port, srv.addr, *extra, wait=wait)

    def client_fails(self, cl, pattern):
        """The client ends by itself with exit 1 and `pattern` on stderr."""
        assert cl.wait() == 1, cl.text() + cl.stdout_text()
        cl.expect_rc = 1
        assert re.search(pattern, cl.text()), cl.text()


@pytest.fixture(params=[("ours", "upstream"), ("upstream", "ours")],
                ids=["our_server-upstream_local", "upstream_server-our_local"])
def pair(procs, request):
    return Pair(procs, *request.param)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def recv_exact(sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(min(65536, n - len(got)))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def start_echo(listener):
    """An echo service: every connection gets its bytes back; at the peer's
    FIN it closes."""
    def conn(c):
        with c:
            while chunk := c.recv(65536):
                c.sendall(chunk)

    def loop():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=conn, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def echo_through(addr, port, payload, timeout=30):
    """Sends `payload` to a visitor connection and reads as many bytes back."""
    v = socket.create_connection((addr, port), timeout=timeout)
    sender = threading.Thread(target=v.sendall, args=(payload,))
    sender.start()
    got = recv_exact(v, len(payload))
    sender.join(timeout)
    v.close()
    return got


# ---- the tunnel --------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "", "abc"], ids=["no_secret", "empty_secret", "secret"])
def test_tunnel_moves_1mib_each_way_then_eof(pair, secret):
    """A visitor sends 1 MiB, the local service checks its SHA-256, answers
    a different 1 MiB and closes: the visitor gets exactly that, then EOF.
    With the local service gone, the next visitor gets EOF and nothing."""
    extra = [] if secret is None else ["--secret", secret]
    srv = pair.server(*extra)
    svc = listen_local()
    cl = pair.local(svc.getsockname()[1], srv, *extra)
    up, down = os.urandom(1 << 20), os.urandom(1 << 20)
    seen = {}

    def service():
        c, _ = svc.accept()
        c.settimeout(30)
        seen["up"] = recv_exact(c, len(up))
        c.sendall(down)
        c.close()
    t = threading.Thread(target=service)
    t.start()
    v = socket.create_connection((srv.addr, cl.port), timeout=30)
    v.sendall(up)
    got = read_to_eof(v)
    t.join(30)
    v.close()
    assert sha(seen["up"]) == sha(up)
    assert sha(got) == sha(down)

    # The local service is gone: the next visitor gets EOF and no data.
    svc.close()
    v2 = socket.create_connection((srv.addr, cl.port), timeout=10)
    assert v2.recv(100) == b""
    v2.close()


def test_tunnel_serves_20_visitors_at_once(pair):
    """20 concurrent visitors each send 256 KiB of their own random bytes
    through the tunnel to an echo service and get exactly theirs back."""
    srv = pair.server("--secret", "s3")
    svc = listen_local()
    start_echo(svc)
    cl = pair.local(svc.getsockname()[1], srv, "--secret", "s3")
    payloads = [os.urandom(256 << 10) for _ in range(20)]
    results = [None] * len(payloads)

    def visit(i):
        results[i] = echo_through(srv.addr, cl.port, payloads[i])
    ts = [threading.Thread(target=visit, args=(i,)) for i in range(len(payloads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert [sha(r or b"") for r in results] == [sha(p) for p in payloads]
    svc.close()


def test_requested_port_granted_then_in_use_then_out_of_range(pair):
    """--port P gets exactly P, and data crosses on P; asking P again gets
    "port already in use", a port outside the range "client port number not
    in allowed range": the second and third client exit 1 with the server's
    error."""
    srv = pair.server()
    svc = listen_local()
    start_echo(svc)
    want = 43000 + os.getpid() % 1000
    cl = pair.local(svc.getsockname()[1], srv, "--port", str(want))
    assert cl.port == want
    payload = os.urandom(4096)
    assert echo_through(srv.addr, want, payload) == payload
    again = pair.local(svc.getsockname()[1], srv, "--port", str(want), wait=False)
    pair.client_fails(again, "server error: port already in use")
    outside = pair.local(svc.getsockname()[1], srv, "--port", "42999", wait=False)
    pair.client_fails(outside, "server error: client port number not in allowed range")
    # The first tunnel is unaffected.
    assert echo_through(srv.addr, want, payload) == payload
    svc.close()


def test_half_close_propagates_both_ways(pair):
    """Visitor writes and shuts down writing: the service reads the data and
    EOF, then answers and the visitor still gets the answer. Then the other
    way round: the service writes and shuts down writing, the visitor reads
    it and EOF and still gets its request through."""
    srv = pair.server()
    svc = listen_local()
    cl = pair.local(svc.getsockname()[1], srv)

    v = socket.create_connection((srv.addr, cl.port), timeout=10)
    v.sendall(b"request")
    v.shutdown(socket.SHUT_WR)
    c, _ = svc.accept()
    c.settimeout(10)
    assert read_to_eof(c) == b"request"
    c.sendall(b"answer after EOF")
    c.close()
    assert read_to_eof(v) == b"answer after EOF"
    v.close()

    v = socket.create_connection((srv.addr, cl.port), timeout=10)
    c, _ = svc.accept()
    c.settimeout(10)
    c.sendall(b"greeting")
    c.shutdown(socket.SHUT_WR)
    assert read_to_eof(v) == b"greeting"
    v.sendall(b"late request")
    v.shutdown(socket.SHUT_WR)
    assert read_to_eof(c) == b"late request"
    c.close()
    v.close()


# ---- authentication failures ---------------------------------------------------

def test_wrong_secret_client_exits_1_invalid_secret(pair):
    srv = pair.server("--secret", "abc")
    cl = pair.local(1, srv, "--secret", "abd", wait=False)
    pair.client_fails(cl, "server error: invalid secret")


def test_no_client_secret_against_secret_server_exits_1(pair):
    srv = pair.server("--secret", "abc")
    cl = pair.local(1, srv, wait=False)
    pair.client_fails(cl, "server requires authentication, but no client secret was provided")


def test_client_secret_against_open_server_times_out(pair):
    """The server never sends a Challenge: the client gives up after 3 s."""
    srv = pair.server()
    cl = pair.local(1, srv, "--secret", "abc", wait=False)
    # The server's own 3 s deadline races the client's: upstream's client says
    # "expected authentication challenge..." when the server's EOF wins.
    pair.client_fails(cl, "timed out waiting for initial message|"
                          "expected authentication challenge, but no secret was required")


def test_client_exit_status_when_server_goes_away(pair):
    """Upstream's client exits 0; ours, with --no-reconnect, exits 1 (only a
    requested stop is a success), whichever server it used. (By default ours
    reconnects: test_reconnect.py.)"""
    srv = pair.server()
    svc = listen_local()
    extra = ("--no-reconnect",) if pair.client_impl == "ours" else ()
    cl = pair.local(svc.getsockname()[1], srv, *extra)
    srv.stop()
    want = 1 if pair.client_impl == "ours" else 0
    assert cl.wait() == want, cl.text() + cl.stdout_text()
    cl.expect_rc = want


# ---- byte for byte: the same input, the same answer -----------------------------------

SECRET_B = "my secret"
SHUT = object()  # shut down writing
UUID_RX = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def frame(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\0"


def tag_frame(challenge, secret=SECRET_B, upper=False):
    t = auth_tag(secret, challenge)
    return frame({"Authenticate": t.upper() if upper else t})


# name -> (server has a secret, what the raw client sends, frames to read or None = until EOF).
# A callable step gets the challenge uuid. Every row of the protocol's failure table (§7)
# plus the decoder's leniencies (§1).
SERVER_ROWS = {
    "auth: right tag, Hello(0)": (True, [tag_frame, b'{"Hello":0}\0'], 3),
    "auth: tag in upper-case hex": (True, [lambda u: tag_frame(u, upper=True), b'{"Hello":0}\0'], 3),
    "auth: wrong tag": (True, [lambda u: tag_frame(u, "wrong"), b'{"Hello":0}\0'], None),
    "auth: non-hex tag": (True, [frame({"Authenticate": "zz" * 32})], None),
    "auth: short tag": (True, [frame({"Authenticate": "ab"})], None),
    "auth: Hello first": (True, [b'{"Hello":0}\0'], None),
    "auth: Accept first": (True, [frame({"Accept": "67e55044-10b1-426f-9247-bb680e5fe0c8"})], None),
    "auth: EOF first": (True, [SHUT], None),
    "auth: bad JSON": (True, [b'{"Authenticate":}\0'], None),
    "auth: 300-byte frame": (True, [b"*" * 300], None),
    "auth: second Authenticate": (True, [tag_frame, tag_frame], None),
    "auth: silence (3 s)": (True, [], None),
    "open: Hello(0)": (False, [b'{"Hello":0}\0'], 2),
    "open: Hello(0) with whitespace": (False, [b' { "Hello" : 0 } \0'], 2),
    "open: Hello(0), no NUL, then EOF": (False, [b'{"Hello":0}', SHUT], 2),
    "open: Hello(0) split in two writes": (False, [b'{"Hel', b'lo":0}\0'], 2),
    "open: Hello out of range": (False, [b'{"Hello":1}\0'], None),
    "open: Hello over u16": (False, [b'{"Hello":70000}\0'], None),
    "open: Hello as a string": (False, [b'{"Hello":"0"}\0'], None),
    "open: two keys": (False, [b'{"Hello":0,"Accept":0}\0'], None),
    "open: Authenticate": (False, [frame({"Authenticate": "00" * 32})], None),
    "open: Accept unknown uuid": (False, [frame({"Accept": "67e55044-10b1-426f-9247-bb680e5fe0c8"})], None),
    "open: Accept unknown simple uuid": (False, [frame({"Accept": "67E5504410B1426F9247BB680E5FE0C8"})], None),
    "open: empty frame": (False, [b"\0"], None),
    "open: 257-byte frame": (False, [b'"' + b"x" * 255 + b'"\0'], None),
    "open: 256-byte Hello": (False, [b'{"Hello":' + b" " * 245 + b'0}\0'], 2),
    "open: bad JSON": (False, [b"{\0"], None),
    "open: EOF first": (False, [SHUT], None),
}


def server_transcript(addr, auth, steps, frames):
    """What a server sends to one raw connection running `steps`, with uuids
    and tunnel ports replaced by placeholders."""
    s = socket.create_connection((addr, 7835), timeout=8)
    buf = b""
    challenge = None
    if auth:
        while b"\0" not in buf:
            buf += s.recv(4096)
        challenge = json.loads(buf.split(b"\0")[0])["Challenge"]
    for step in steps:
        if step is SHUT:
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(step(challenge) if callable(step) else step)
    while frames is None or buf.count(b"\0") < frames:
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    if frames is not None:
        buf = b"".join(f + b"\0" for f in buf.split(b"\0")[:frames])
    buf = UUID_RX.sub(b"<uuid>", buf)
    return re.sub(rb'\{"Hello":\d+\}', b'{"Hello":<port>}', buf).decode()


def test_servers_answer_every_input_byte_for_byte_alike(procs):
    """Every row of the failure table and every decoder leniency, sent raw to
    our server and to upstream's: both send exactly the same bytes back."""
    servers = {}
    for impl, start in (("ours", procs.server), ("upstream", procs.upstream_server)):
        servers[impl] = (start(*RANGE), start(*RANGE, "--secret", SECRET_B))
    jobs = {(impl, name): (servers[impl][1 if row[0] else 0].addr, *row)
            for impl in servers for name, row in SERVER_ROWS.items()}
    with ThreadPoolExecutor(len(jobs)) as pool:  # the 3 s silences run side by side
        futs = {k: pool.submit(server_transcript, *v) for k, v in jobs.items()}
        got = {k: f.result() for k, f in futs.items()}
    ours = {name: got["ours", name] for name in SERVER_ROWS}
    theirs = {name: got["upstream", name] for name in SERVER_ROWS}
    assert ours == theirs
    # And they are the protocol's answers, not two empty transcripts.
    assert theirs["auth: right tag, Hello(0)"] == \
        '{"Challenge":"<uuid>"}\0{"Hello":<port>}\0"Heartbeat"\0'
    assert theirs["auth: wrong tag"] == '{"Challenge":"<uuid>"}\0{"Error":"invalid secret"}\0'
    assert theirs["auth: silence (3 s)"].endswith('{"Error":"timed out waiting for initial message"}\0')
    assert theirs["open: Hello out of range"] == '{"Error":"client port number not in allowed range"}\0'
    assert theirs["open: bad JSON"] == ""


@pytest.mark.parametrize("server", ["ours", "upstream"])
@pytest.mark.parametrize("form", ["simple-upper", "braced", "urn"])
def test_servers_take_accept_id_in_any_form_and_bytes_glued_to_it(procs, server, form):
    """A raw client accepts a visitor with the Connection id written in
    another uuid form, and sends raw bytes in the same write as the Accept:
    both servers match the id and deliver those bytes first."""
    srv = (procs.server if server == "ours" else procs.upstream_server)(*RANGE)
    c = Ctl(srv.addr)
    c.send(b'{"Hello":0}\0')
    port = json.loads(c.frame())["Hello"]
    v = socket.create_connection((srv.addr, port), timeout=10)
    while (f := c.frame()) == b'"Heartbeat"':
        pass
    uid = uuid.UUID(json.loads(f)["Connection"])
    text = {"simple-upper": uid.hex.upper(), "braced": "{%s}" % uid, "urn": uid.urn}[form]
    a = Ctl(srv.addr)
    a.send(frame({"Accept": text}) + b"glued to the Accept")
    assert recv_exact(v, 19) == b"glued to the Accept"
    v.sendall(b"back")
    v.shutdown(socket.SHUT_WR)
    assert a.read_all() == b"back"
    a.close()
    v.close()
    c.close()


def fake_server(addr, log, connection_id, ready):
    """A scripted server: Challenge, expects Authenticate + Hello, grants
    port 40000, asks for one connection as `connection_id`, and on the accept
    connection Challenge again, expects Authenticate + Accept, then sends raw
    "ping" and reads until EOF. Records every frame the client sends."""
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((addr, 7835))
    lst.listen(4)
    lst.settimeout(10)
    ready.set()

    def read_frames(c, n):
        buf = b""
        while buf.count(b"\0") < n:
            chunk = c.recv(4096)
            if not chunk:
                break
            buf += chunk
        parts = buf.split(b"\0")
        return [p + b"\0" for p in parts[:n]], b"\0".join(parts[n:])

    with lst:
        ctl, _ = lst.accept()
        ctl.settimeout(10)
        ctl.sendall(b'{"Challenge":"67e55044-10b1-426f-9247-bb680e5fe0c8"}\0')
        frames, _ = read_frames(ctl, 2)
        log += frames
        ctl.sendall(b'{"Hello":40000}\0"Heartbeat"\0' + frame({"Connection": connection_id}))
        acc, _ = lst.accept()
        acc.settimeout(10)
        acc.sendall(b'{"Challenge":"58754649-28b9-4a87-bac6-64737ce386b3"}\0')
        frames, rest = read_frames(acc, 2)
        log += frames
        acc.sendall(b"ping")
        acc.shutdown(socket.SHUT_WR)
        log.append(rest + read_to_eof(acc))
        acc.close()
        ctl.close()  # the client then exits 0


@pytest.mark.parametrize("client", ["ours", "upstream"])
def test_clients_send_the_same_bytes_to_a_scripted_server(procs, client):
    """Both clients, against the same scripted server (connection id sent in
    upper-case "simple" form), send exactly the protocol's bytes: Authenticate
    with the known HMAC vectors, Hello(0), Accept with the id lower-case and
    hyphenated; and relay raw bytes after the Accept."""
    addr = next_addr()
    svc = listen_local()
    log, ready = [], threading.Event()
    t = threading.Thread(target=fake_server, args=(addr, log, "67E5504410B1426F9247BB680E5FE0C8", ready))
    t.start()
    ready.wait(5)
    if client == "ours":
        cl = procs.local(svc.getsockname()[1], addr, "--secret", SECRET_B, "--no-reconnect",
                         wait=False)
    else:
        cl = procs.upstream_local(svc.getsockname()[1], addr, "--secret", SECRET_B, wait=False)
    c, _ = svc.accept()
    c.settimeout(10)
    assert read_to_eof(c) == b"ping"
    c.sendall(b"pong")
    c.close()
    t.join(15)
    assert log == [
        b'{"Authenticate":"981cb051fe0f683277b7fff374fbb88346f57acc6e5a062339e486b784c60891"}\0',
        b'{"Hello":0}\0',
        b'{"Authenticate":"34fa3ef734fde23de97d871a1da4081a55871fad9725599d6de4d7745a00365c"}\0',
        b'{"Accept":"67e55044-10b1-426f-9247-bb680e5fe0c8"}\0',
        b"pong",
    ]
    want = 1 if client == "ours" else 0  # the fake server closes: ours reports it
    assert cl.wait() == want, cl.text() + cl.stdout_text()
    cl.expect_rc = want
    out = cl.text() + cl.stdout_text()
    assert f"listening at {addr}:40000" in out


# ---- bore kafka-proxy through upstream's server ----------------------------------------

class UpstreamEnv(Env):
    """test_kafka_proxy's three namespaces, with upstream's server in the middle."""

    def start_server(self):
        return self.procs.upstream_server("--min-port", "9000", "--max-port", "29999",
                                          "--secret", SECRET, addr="0.0.0.0", prefix=self.ns.prefix("s"))


@pytest.fixture
def upstream_env(procs, ns):
    e = UpstreamEnv(procs, ns)
    yield e
    e.close()


KAFKA_CLIENTS = ["kcat", "confluent"]


def assert_via_upstream(env):
    """Upstream's server opened the bootstrap tunnel and one per broker, and
    relayed connections."""
    log = env.server.stdout_text()
    ports = set(map(int, re.findall(r"new client host=\S+ port=(\d+)", log)))
    assert 9092 in ports and {p for _, p in env.public.values()} <= ports, log[-3000:]
    assert "forwarding connection" in log


@pytest.mark.parametrize("name", KAFKA_CLIENTS)
def test_kafka_proxy_via_upstream_server_metadata_public_only(upstream_env, name):
    env = upstream_env
    md = CLIENTS[name].metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    for b in md["brokers"]:
        assert (b["host"], b["port"]) == env.public[b["id"]]
        assert b["host"] == CLIENT_TO_SERVER
    assert set(md["topics"]["orders"].values()) == {1, 2, 3}
    env.assert_public(md["addresses"])
    assert_via_upstream(env)


@pytest.mark.parametrize("name", KAFKA_CLIENTS)
def test_kafka_proxy_via_upstream_server_produce_consume_10000(upstream_env, name):
    env = upstream_env
    c = CLIENTS[name]
    p = c.produce(env.bootstrap, "orders", N, prefix=env.client_ns)
    assert p["acked"] == N and not p["errors"], p
    r = c.consume(env.bootstrap, "orders", f"up-{name}", N, prefix=env.client_ns)
    assert r["complete"] and r["count"] == N and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])
    assert_via_upstream(env)
