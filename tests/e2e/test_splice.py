"""The splice(2) relay path (src/splice.c) end to end: plain relays in
`bore server` and `bore local` take it (and BORE_SPLICE=0 turns it off),
half-close, a reader that stops reading, a visitor that disconnects
mid-transfer, and 200 visitors x 1 MiB each way - with no descriptor left
behind in either process (/proc/<pid>/fd counted before and after)."""
import asyncio
import hashlib
import os
import select
import socket
import struct
import threading
import time

import pytest

from conftest import listen_local, read_to_eof

RANGE = ["--min-port", "41000", "--max-port", "41999"]
SPLICED = r"relay on the splice path"
MIB = 1 << 20


def fds(p):
    return len(os.listdir(f"/proc/{p.p.pid}/fd"))


def wait_fds(p, want, timeout=10):
    """Relays end asynchronously: waits (bounded) for p's descriptor count."""
    deadline = time.monotonic() + timeout
    while fds(p) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fds(p) == want, (p.args[1], os.listdir(f"/proc/{p.p.pid}/fd"))


def tunnel(procs, env=None):
    """A server and a client; the splice path unless env says otherwise
    (whatever BORE_SPLICE the test run itself has)."""
    env = env or {"BORE_SPLICE": "1"}
    srv = procs.server(*RANGE, env=env)
    svc = listen_local()
    cl = procs.local(svc.getsockname()[1], srv.addr, env=env)
    return srv, cl, svc


def visit(srv, cl, svc):
    v = socket.create_connection((srv.addr, cl.port), timeout=10)
    c, _ = svc.accept()
    c.settimeout(10)
    v.settimeout(10)
    return v, c


def test_plain_relays_take_the_splice_path_unless_bore_splice_is_0(procs):
    srv, cl, svc = tunnel(procs)
    v, c = visit(srv, cl, svc)
    v.sendall(b"ping")
    assert c.recv(4) == b"ping"
    c.sendall(b"pong")
    assert v.recv(4) == b"pong"
    srv.wait_for(SPLICED)  # the server's relay (client connection <-> visitor)...
    cl.wait_for(SPLICED)   # ...and the client's (server <-> local service)
    v.close()
    c.close()

    srv0, cl0, svc0 = tunnel(procs, env={"BORE_SPLICE": "0"})
    v, c = visit(srv0, cl0, svc0)
    v.sendall(b"ping")
    assert c.recv(4) == b"ping"
    c.sendall(b"pong")
    assert v.recv(4) == b"pong"
    v.close()
    assert read_to_eof(c) == b""
    assert SPLICED not in srv0.text() and SPLICED not in cl0.text()


@pytest.mark.parametrize("path", ["splice", "read-write"])
def test_half_close_both_ways(procs, path):
    """Each side's FIN reaches the other only after every byte before it, and
    the other direction keeps flowing after it - on both relay paths."""
    srv, cl, svc = tunnel(procs, env={"BORE_SPLICE": "0"} if path == "read-write" else None)
    base = fds(srv), fds(cl)
    v, c = visit(srv, cl, svc)
    up = os.urandom(3 * MIB)
    threading.Thread(target=lambda: (v.sendall(up), v.shutdown(socket.SHUT_WR)), daemon=True).start()
    assert read_to_eof(c) == up  # the visitor's FIN, after all its bytes
    down = os.urandom(2 * MIB)
    c.sendall(down)  # the service still writes after the visitor's EOF
    c.shutdown(socket.SHUT_WR)
    assert read_to_eof(v) == down
    if path == "splice":
        srv.wait_for(SPLICED)
        cl.wait_for(SPLICED)
    else:
        assert SPLICED not in srv.text() and SPLICED not in cl.text()
    v.close()
    c.close()
    wait_fds(srv, base[0])
    wait_fds(cl, base[1])


def test_splice_stalled_reader_blocks_its_writer_only(procs):
    """A service that stops reading: its visitor's writes block once the
    socket buffers and the pipe are full (nothing is read on meanwhile), while
    another connection through the same tunnel keeps moving; once the service
    reads again every byte arrives in order."""
    srv, cl, svc = tunnel(procs)
    base = fds(srv), fds(cl)
    slow_v, slow_c = visit(srv, cl, svc)
    slow_v.setblocking(False)
    sent = hashlib.sha256()
    total = 0
    chunk = os.urandom(64 * 1024)
    stalled_for = None
    while total < 256 * MIB:  # far beyond what kernel buffers hold
        try:
            n = slow_v.send(chunk)
            sent.update(chunk[:n])
            total += n
            stalled_for = None
        except BlockingIOError:
            if stalled_for is None:
                stalled_for = time.monotonic()
            elif time.monotonic() - stalled_for > 1.0:
                break  # the writer is blocked
            select.select([], [slow_v], [], 0.1)
    assert total < 256 * MIB, "the writer never blocked"

    # Meanwhile another connection of the same tunnel moves 8 MiB both ways.
    fast_v, fast_c = visit(srv, cl, svc)
    data = os.urandom(8 * MIB)
    echo = threading.Thread(target=lambda: fast_c.sendall(read_exact(fast_c, len(data))), daemon=True)
    echo.start()
    threading.Thread(target=fast_v.sendall, args=(data,), daemon=True).start()
    fast_v.settimeout(30)
    assert read_exact(fast_v, len(data)) == data
    echo.join(10)

    # The stalled reader reads again: everything arrives.
    slow_v.setblocking(True)
    slow_v.shutdown(socket.SHUT_WR)
    got = hashlib.sha256()
    n = 0
    slow_c.settimeout(30)
    while b := slow_c.recv(1 << 20):
        got.update(b)
        n += len(b)
    assert (n, got.hexdigest()) == (total, sent.hexdigest())
    for s in (slow_v, slow_c, fast_v, fast_c):
        s.close()
    wait_fds(srv, base[0])
    wait_fds(cl, base[1])


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(min(1 << 20, n - len(buf)))
        if not b:
            break
        buf += b
    return bytes(buf)


def test_splice_visitor_disconnecting_mid_transfer_closes_both_sides(procs):
    """A visitor resets its connection while the service streams to it: the
    service's connection is closed too (its writes fail or it reads EOF), and
    both processes are back to their descriptors of before."""
    srv, cl, svc = tunnel(procs)
    base = fds(srv), fds(cl)
    v, c = visit(srv, cl, svc)
    stop = threading.Event()
    result = {}

    def stream():
        block = os.urandom(256 * 1024)
        try:
            while not stop.is_set():
                c.sendall(block)
        except OSError as e:
            result["err"] = e

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    assert len(read_exact(v, 4 * MIB)) == 4 * MIB  # mid-transfer...
    v.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    v.close()  # ...an abortive close (RST)
    t.join(30)
    assert not t.is_alive(), "the service's writes never failed"
    assert isinstance(result.get("err"), (BrokenPipeError, ConnectionResetError)), result
    c.close()
    wait_fds(srv, base[0])
    wait_fds(cl, base[1])


def test_splice_200_visitors_1mib_each_way_no_descriptor_leaked(procs):
    srv = procs.server(*RANGE, env={"BORE_SPLICE": "1"})

    def payload(seed):
        return hashlib.shake_256(seed.encode()).digest(MIB)

    async def exchange(reader, writer, out):
        async def send():
            writer.write(out)
            await writer.drain()
        task = asyncio.ensure_future(send())
        got = await reader.readexactly(MIB)
        await task
        return hashlib.sha256(got).hexdigest()

    async def main():
        seen = {}

        async def service(reader, writer):
            name = (await reader.readexactly(8)).decode()
            seen[name] = await exchange(reader, writer, payload("down" + name))
            writer.close()

        server = await asyncio.start_server(service, "127.0.0.1", 0, backlog=512)
        cl = procs.local(server.sockets[0].getsockname()[1], srv.addr, env={"BORE_SPLICE": "1"})
        base = fds(srv), fds(cl)

        async def visitor(i):
            name = f"{i:08d}"
            reader, writer = await asyncio.open_connection(srv.addr, cl.port)
            writer.write(name.encode())
            digest = await exchange(reader, writer, payload("up" + name))
            writer.close()
            return name, digest

        results = await asyncio.wait_for(asyncio.gather(*(visitor(i) for i in range(200))), 180)
        server.close()
        return cl, base, seen, results

    cl, base, seen, results = asyncio.run(main())
    assert len(results) == 200
    for name, digest in results:
        assert digest == hashlib.sha256(payload("down" + name)).hexdigest()
        assert seen[name] == hashlib.sha256(payload("up" + name)).hexdigest()
    srv.wait_for(SPLICED)
    cl.wait_for(SPLICED)
    wait_fds(srv, base[0])
    wait_fds(cl, base[1])
