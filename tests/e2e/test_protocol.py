"""Every row of the server's failure table (bore protocol §7), driven by a
raw-socket client and checked byte for byte, plus the bad inputs the issue
lists. After each, the server must still serve a normal tunnel."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BORE, Ctl, Proc, auth_tag, next_addr

RANGE = ["--min-port", "42000", "--max-port", "42999"]
SECRET = "my secret"


def err(text):
    return json.dumps({"Error": text}, separators=(",", ":")).encode()


def challenge(c):
    f = c.frame()
    assert f.startswith(b'{"Challenge":"')
    return json.loads(f)["Challenge"]


def authenticate(c, secret=SECRET):
    uid = challenge(c)
    c.send(json.dumps({"Authenticate": auth_tag(secret, uid)}, separators=(",", ":")).encode() + b"\0")


def still_serves(srv, secret=None):
    c = Ctl(srv.addr)
    if secret is not None:
        authenticate(c, secret)
    c.send(b'{"Hello":0}\0')
    f = c.frame()
    assert f.startswith(b'{"Hello":4'), f
    assert c.frame() == b'"Heartbeat"'
    c.close()


@pytest.fixture
def auth_srv(procs):
    return procs.server(*RANGE, "--secret", SECRET)


@pytest.fixture
def open_srv(procs):
    return procs.server(*RANGE)


# ---- authentication on ---------------------------------------------------

def test_challenge_is_a_fresh_v4_uuid(auth_srv):
    a, b = Ctl(auth_srv.addr), Ctl(auth_srv.addr)
    ua, ub = challenge(a), challenge(b)
    assert ua != ub
    assert ua == ua.lower() and len(ua) == 36 and ua[14] == "4"


def test_valid_authentication_then_hello(auth_srv):
    c = Ctl(auth_srv.addr)
    authenticate(c)
    c.send(b'{"Hello":0}\0')
    assert c.frame().startswith(b'{"Hello":')
    assert c.frame() == b'"Heartbeat"'


@pytest.mark.parametrize("tag", ["0" * 64, "zz" * 32, "abc", ""])
def test_wrong_or_non_hex_tag(auth_srv, tag):
    c = Ctl(auth_srv.addr)
    challenge(c)
    c.send(json.dumps({"Authenticate": tag}).encode() + b"\0")
    assert c.read_all() == err("invalid secret") + b"\0"
    still_serves(auth_srv, SECRET)


def test_tag_wrong_only_in_its_last_byte_is_refused(auth_srv):
    """All 32 bytes of the HMAC are compared: the right tag with its last
    byte changed is an invalid secret."""
    c = Ctl(auth_srv.addr)
    good = auth_tag(SECRET, challenge(c))
    bad = good[:-2] + ("00" if good[-2:] != "00" else "01")
    c.send(json.dumps({"Authenticate": bad}).encode() + b"\0")
    assert c.read_all() == err("invalid secret") + b"\0"


def test_uppercase_tag_accepted(auth_srv):
    c = Ctl(auth_srv.addr)
    uid = challenge(c)
    c.send(json.dumps({"Authenticate": auth_tag(SECRET, uid).upper()}).encode() + b"\0")
    c.send(b'{"Hello":0}\0')
    assert c.frame().startswith(b'{"Hello":')


@pytest.mark.parametrize("first", [b'{"Hello":0}\0', b'{"Accept":"67e55044-10b1-426f-9247-bb680e5fe0c8"}\0'])
def test_first_message_not_authenticate(auth_srv, first):
    c = Ctl(auth_srv.addr)
    challenge(c)
    c.send(first)
    assert c.read_all() == err("server requires secret, but no secret was provided") + b"\0"


def test_eof_instead_of_authenticate(auth_srv):
    c = Ctl(auth_srv.addr)
    challenge(c)
    c.s.shutdown(socket.SHUT_WR)
    assert c.read_all() == err("server requires secret, but no secret was provided") + b"\0"


@pytest.mark.parametrize("bad", [b"{nope", b"", b'{"Authenticate":"x"} garbage', b'{"Authenticate":1}'])
def test_bad_json_while_waiting_for_authenticate(auth_srv, bad):
    c = Ctl(auth_srv.addr)
    challenge(c)
    c.send(bad + b"\0")
    assert c.read_all() == err("unable to parse message") + b"\0"


def test_overlong_frame_while_waiting_for_authenticate(auth_srv):
    c = Ctl(auth_srv.addr)
    challenge(c)
    c.send(b"a" * 300)
    assert c.read_all() == err("frame error, invalid byte length") + b"\0"


def test_silence_after_challenge(auth_srv):
    c = Ctl(auth_srv.addr)
    challenge(c)
    t0 = time.monotonic()
    assert c.read_all() == err("timed out waiting for initial message") + b"\0"
    assert 2.5 < time.monotonic() - t0 < 5


def test_second_authenticate_closes_silently(auth_srv):
    c = Ctl(auth_srv.addr)
    uid = challenge(c)
    msg = json.dumps({"Authenticate": auth_tag(SECRET, uid)}).encode() + b"\0"
    c.send(msg + msg)
    assert c.read_all() == b""
    still_serves(auth_srv, SECRET)


def test_authenticated_accept_with_leftover_bytes(procs, auth_srv):
    """Bytes sent after the Accept's NUL reach the visitor first (§1)."""
    c = Ctl(auth_srv.addr)
    authenticate(c)
    c.send(b'{"Hello":0}\0')
    port = json.loads(c.frame())["Hello"]
    v = socket.create_connection((auth_srv.addr, port), timeout=5)
    v.sendall(b"early")  # waits in the kernel until accepted
    while (f := c.frame()) == b'"Heartbeat"':
        pass
    uid = json.loads(f)["Connection"]
    a = Ctl(auth_srv.addr)
    authenticate(a)
    a.send(json.dumps({"Accept": uid}).encode() + b"\0leftover")
    got = b""
    while len(got) < 8:
        got += v.recv(100)
    assert got == b"leftover"
    got = b""
    while len(got) < 5:
        got += a.s.recv(100)
    assert got == b"early"


# ---- handshake without authentication ------------------------------------

def test_hello_answer_is_hello_then_heartbeat(open_srv):
    c = Ctl(open_srv.addr)
    c.send(b'{"Hello":0}\0')
    f = c.frame()
    port = json.loads(f)["Hello"]
    assert 42000 <= port <= 42999
    assert f == b'{"Hello":%d}' % port
    t0 = time.monotonic()
    assert c.frame() == b'"Heartbeat"'
    assert c.frame() == b'"Heartbeat"'  # the next one, about 500 ms later
    assert 0.3 < time.monotonic() - t0 < 1.5


def test_connection_followed_by_heartbeat(open_srv):
    c = Ctl(open_srv.addr)
    c.send(b'{"Hello":0}\0')
    port = json.loads(c.frame())["Hello"]
    assert c.frame() == b'"Heartbeat"'
    socket.create_connection((open_srv.addr, port), timeout=5)
    while (f := c.frame()) == b'"Heartbeat"':
        pass
    assert f.startswith(b'{"Connection":"')
    assert c.frame() == b'"Heartbeat"'


def test_lenient_hello_forms(open_srv):
    c = Ctl(open_srv.addr)
    c.send(b' { "Hello" : 0 } \0')
    assert c.frame().startswith(b'{"Hello":')


def test_unterminated_hello_at_eof(open_srv):
    c = Ctl(open_srv.addr)
    c.send(b'{"Hello":0}')
    c.s.shutdown(socket.SHUT_WR)
    assert c.frame().startswith(b'{"Hello":')


@pytest.mark.parametrize("bad", [
    b"{nope\0",                       # bad JSON
    b"\0",                            # empty frame
    b"x" * 257,                       # over the frame cap
    b'{"Hello":0}garbage\0',          # garbage after a valid message
    b'{"Hello":"0"}\0',               # wrong type
    b'{"Hello":70000}\0',             # not a u16
    b'{"Authenticate":"abc"}\0',      # Authenticate while auth is off
    b'"Heartbeat"\0',                 # a server message
    b'{"Accept":"67e55044-10b1-426f-9247-bb680e5fe0c8"}\0',  # unknown id
    b'{"Accept":"not-a-uuid"}\0',
    b"",                              # EOF as the first message
])
def test_rejected_silently(open_srv, bad):
    c = Ctl(open_srv.addr)
    c.send(bad)
    c.s.shutdown(socket.SHUT_WR)
    assert c.read_all() == b""
    still_serves(open_srv)


def test_silence_before_hello(open_srv):
    c = Ctl(open_srv.addr)
    t0 = time.monotonic()
    assert c.read_all() == b""
    assert 2.5 < time.monotonic() - t0 < 5


# ---- port errors ------------------------------------------------------------

def hello_error(addr, port):
    c = Ctl(addr)
    c.send(b'{"Hello":%d}\0' % port)
    return c.read_all()


def test_port_out_of_range(open_srv):
    assert hello_error(open_srv.addr, 41999) == err("client port number not in allowed range") + b"\0"
    assert hello_error(open_srv.addr, 43000) == err("client port number not in allowed range") + b"\0"


def test_port_in_use(open_srv):
    blocker = socket.socket()
    blocker.bind((open_srv.addr, 42500))
    blocker.listen()
    assert hello_error(open_srv.addr, 42500) == err("port already in use") + b"\0"


def test_all_tries_fail(procs):
    srv = procs.server("--min-port", "42600", "--max-port", "42600")
    blocker = socket.socket()
    blocker.bind((srv.addr, 42600))
    blocker.listen()
    assert hello_error(srv.addr, 0) == err("failed to find an available port") + b"\0"


def test_bind_failure(procs):
    # 192.0.2.1 (TEST-NET-1) is not an address of this host: EADDRNOTAVAIL.
    srv = procs.server(*RANGE, "--bind-tunnels", "192.0.2.1")
    assert hello_error(srv.addr, 42001) == err("failed to bind to port") + b"\0"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_permission_denied(procs):
    addr = next_addr()
    p = procs.start(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", BORE, "server",
                     "--bind-addr", addr, "--min-port", "1", "--max-port", "2000"])
    p.wait_for("server listening")
    assert hello_error(addr, 80) == err("permission denied") + b"\0"
