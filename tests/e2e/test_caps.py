"""The operator caps beyond upstream: each refuses the excess and the
server keeps serving everyone else."""
import json
import socket
import time

from conftest import Ctl, listen_local

RANGE = ["--min-port", "43000", "--max-port", "43999"]


def raw_tunnel(addr):
    c = Ctl(addr)
    c.send(b'{"Hello":0}\0')
    port = json.loads(c.frame())["Hello"]
    return c, port


def next_connection(c):
    while (f := c.frame()) == b'"Heartbeat"':
        pass
    return f


def refused_at_once(sock, limit=1.0):
    """The server closes `sock` within `limit` seconds, sending nothing:
    long before the 3 s handshake deadline or the 10 s expiry, which would
    also end in EOF if the cap did not act."""
    t0 = time.monotonic()
    try:
        got = sock.recv(10)
    except ConnectionResetError:
        got = b""
    assert got == b"" and time.monotonic() - t0 < limit, (got, time.monotonic() - t0)


def still_open(sock):
    """`sock` has been neither closed nor reset by the server: a
    non-blocking read finds nothing to read yet."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def echo_round_trip(srv_addr, port, svc):
    v = socket.create_connection((srv_addr, port), timeout=5)
    v.sendall(b"ping")
    conn, _ = svc.accept()
    conn.settimeout(5)
    assert conn.recv(4) == b"ping"
    conn.sendall(b"pong")
    assert v.recv(4) == b"pong"
    conn.close()
    v.close()


def test_max_handshakes(procs):
    srv = procs.server(*RANGE, "--max-handshakes", "4")
    svc = listen_local()
    cl = procs.local(svc.getsockname()[1], srv.addr)  # its control conn is no longer a handshake
    held = [Ctl(srv.addr) for _ in range(4)]
    srv.wait_for(r"incoming connection")
    extra = Ctl(srv.addr)
    refused_at_once(extra.s)
    srv.wait_for(r"refusing .* connections already in handshake")
    mark = len(srv.lines)
    for h in held:
        h.close()
    # Everyone else keeps being served once the handshakes are gone.
    srv.wait_for_n(r"hello -> closing", 4, start=mark)
    echo_round_trip(srv.addr, cl.port, svc)


def test_max_pending_per_tunnel(procs):
    srv = procs.server(*RANGE, "--max-pending-per-tunnel", "3")
    c, port = raw_tunnel(srv.addr)  # never accepts: visitors stay parked
    visitors = [socket.create_connection((srv.addr, port), timeout=5) for _ in range(3)]
    for _ in range(3):
        assert next_connection(c).startswith(b'{"Connection":')
    extra = socket.create_connection((srv.addr, port), timeout=5)
    refused_at_once(extra)
    srv.wait_for(r"too many visitors waiting")
    # Another tunnel is unaffected.
    svc = listen_local()
    cl = procs.local(svc.getsockname()[1], srv.addr)
    echo_round_trip(srv.addr, cl.port, svc)
    # The parked visitors were not touched.
    assert all(still_open(v) for v in visitors)


def test_max_pending_total(procs):
    srv = procs.server(*RANGE, "--max-pending", "4", "--max-pending-per-tunnel", "3")
    c1, p1 = raw_tunnel(srv.addr)
    c2, p2 = raw_tunnel(srv.addr)
    vs = [socket.create_connection((srv.addr, p1), timeout=5) for _ in range(3)]
    for _ in range(3):
        next_connection(c1)
    vs.append(socket.create_connection((srv.addr, p2), timeout=5))
    next_connection(c2)
    extra = socket.create_connection((srv.addr, p2), timeout=5)
    refused_at_once(extra)
    srv.wait_for(r"too many visitors waiting .* 4 in all")
    assert all(still_open(v) for v in vs)


def test_max_tunnels(procs):
    srv = procs.server(*RANGE, "--max-tunnels", "2")
    svc = listen_local()
    a = procs.local(svc.getsockname()[1], srv.addr)
    procs.local(svc.getsockname()[1], srv.addr)
    c = Ctl(srv.addr)
    c.send(b'{"Hello":0}\0')
    assert c.read_all() == b'{"Error":"server is at its tunnel limit, try again later"}\0'
    echo_round_trip(srv.addr, a.port, svc)


def test_accepting_frees_a_parked_slot(procs):
    srv = procs.server(*RANGE, "--max-pending-per-tunnel", "1")
    c, port = raw_tunnel(srv.addr)
    v1 = socket.create_connection((srv.addr, port), timeout=5)
    uid = json.loads(next_connection(c))["Connection"]
    a = Ctl(srv.addr)
    a.send(json.dumps({"Accept": uid}).encode() + b"\0")
    v1.sendall(b"x")
    assert a.s.recv(1) == b"x"
    v2 = socket.create_connection((srv.addr, port), timeout=5)
    assert json.loads(next_connection(c))["Connection"] != uid
    v2.close()
