"""A Kafka SASL client by hand (SaslHandshake v1, SaslAuthenticate v0-v2,
PLAIN and SCRAM per RFC 5802 / 7677), for the gate's tests: every byte and
every answer is visible, and it can stop at any step. Runs inside a network
namespace by `python3 sasl_wire.py` with a JSON script on argv, printing one
JSON line per answer (or {"eof": true, "after": seconds})."""
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import sys
import time


def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)


def uvarint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7f) | 0x80])
        v >>= 7
    return out + bytes([v])


class Conn:
    def __init__(self, host, port, timeout=10, ca=None):
        self.s = socket.create_connection((host, port), timeout=timeout)
        if ca:  # TLS, the host name verified against the certificate
            ctx = ssl.create_default_context(cafile=ca)
            self.s = ctx.wrap_socket(self.s, server_hostname=host)
        self.corr = 0

    def send(self, key, ver, body, flex=False):
        self.corr += 1
        hdr = struct.pack(">hhih", key, ver, self.corr, 4) + b"test" + (b"\0" if flex else b"")
        self.s.sendall(i32(len(hdr) + len(body)) + hdr + body)

    def recv(self):
        """The response frame after its size, or None at EOF."""
        head = self.recv_exact(4)
        if head is None:
            return None
        return self.recv_exact(struct.unpack(">i", head)[0])

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            try:
                chunk = self.s.recv(n - len(data))
            except (ConnectionResetError, socket.timeout, ssl.SSLError):
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def handshake(self, mech, ver=1):
        self.raw = ver == 0
        self.send(17, ver, i16(len(mech)) + mech.encode())
        r = self.recv()
        if r is None:
            return None, []
        err = struct.unpack(">h", r[4:6])[0]
        n = struct.unpack(">i", r[6:10])[0]
        off, mechs = 10, []
        for _ in range(n):
            ln = struct.unpack(">h", r[off:off + 2])[0]
            mechs.append(r[off + 2:off + 2 + ln].decode())
            off += 2 + ln
        return err, mechs

    def authenticate(self, token, ver=1):
        if getattr(self, "raw", False):
            # After SaslHandshake v0: size-prefixed tokens, no headers; a
            # failure is a close.
            self.s.sendall(i32(len(token)) + token)
            r = self.recv()
            return (None, None, None) if r is None else (0, None, r)
        flex = ver >= 2
        body = (uvarint(len(token) + 1) if flex else i32(len(token))) + token + (b"\0" if flex else b"")
        self.send(36, ver, body, flex=flex)
        r = self.recv()
        if r is None:
            return None, None, None
        off = 5 if flex else 4
        err = struct.unpack(">h", r[off:off + 2])[0]
        off += 2
        if flex:
            ln = r[off] - 1
            off += 1
        else:
            ln = struct.unpack(">h", r[off:off + 2])[0]
            off += 2
        msg = r[off:off + ln].decode() if ln >= 0 else None
        off += max(ln, 0)
        if flex:
            tl = r[off] - 1
            off += 1
        else:
            tl = struct.unpack(">i", r[off:off + 4])[0]
            off += 4
        return err, msg, r[off:off + tl]

    def wait_eof(self, timeout=10):
        t0 = time.monotonic()
        self.s.settimeout(timeout)
        try:
            while self.s.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout, ssl.SSLError):
            pass
        return time.monotonic() - t0


def scram(conn, mech, user, password, ver=1, stop_after_first=False):
    """Returns (err, msg) of the final step, or ("first", ...) when stopped."""
    h = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha512
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={cnonce}"
    err, msg, sf = conn.authenticate(("n,," + first_bare).encode(), ver)
    if err != 0:
        return err, msg
    attrs = dict(kv.split("=", 1) for kv in sf.decode().split(","))
    assert attrs["r"].startswith(cnonce)
    if stop_after_first:
        return "first", attrs
    salt = base64.b64decode(attrs["s"])
    sp = hashlib.pbkdf2_hmac(h().name, password.encode(), salt, int(attrs["i"]))
    ck = hmac.new(sp, b"Client Key", h).digest()
    stored = h(ck).digest()
    final_wo = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{sf.decode()},{final_wo}".encode()
    sig = hmac.new(stored, auth, h).digest()
    proof = bytes(a ^ b for a, b in zip(ck, sig))
    err, msg, sfinal = conn.authenticate(f"{final_wo},p={base64.b64encode(proof).decode()}".encode(), ver)
    if err == 0:
        sk = hmac.new(sp, b"Server Key", h).digest()
        want = "v=" + base64.b64encode(hmac.new(sk, auth, h).digest()).decode()
        assert sfinal.decode() == want, (sfinal, want)
    return err, msg


def login(conn, mech, user, password, ver=1):
    """A whole SASL exchange: (handshake error, authenticate error, message, seconds)."""
    t0 = time.monotonic()
    herr, _ = conn.handshake(mech, 0 if ver == "raw" else 1)
    if herr != 0:
        return herr, None, None, time.monotonic() - t0
    if mech == "PLAIN":
        err, msg, _ = conn.authenticate(f"\0{user}\0{password}".encode(), ver)
    else:
        err, msg = scram(conn, mech, user, password, ver)
    return herr, err, msg, time.monotonic() - t0


def main():
    a = json.loads(sys.argv[1])
    c = Conn(a["host"], a["port"], ca=a.get("ca"))
    out = {}
    op = a["op"]
    if op == "login":
        herr, err, msg, dt = login(c, a["mech"], a["user"], a["password"], a.get("ver", 1))
        out = {"handshake": herr, "error": err, "message": msg, "seconds": dt}
        if err == 0 and a.get("then_metadata"):
            # Metadata v1, no topics: it must reach the broker and come back rewritten.
            c.send(3, 1, i32(0))
            r = c.recv()
            n = struct.unpack(">i", r[4:8])[0]
            node, hl = struct.unpack(">ih", r[8:14])
            host = r[14:14 + hl].decode()
            port = struct.unpack(">i", r[14 + hl:18 + hl])[0]
            out["metadata"] = {"brokers": n, "first": f"{host}:{port}"}
        elif err == 0 and a.get("then_api_versions"):
            # ApiVersions v0 after success: answered by the broker itself.
            c.send(18, 0, b"")
            r = c.recv()
            n = struct.unpack(">i", r[6:10])[0]
            out["api_versions"] = {str(k): [lo, hi] for k, lo, hi in
                                   (struct.unpack(">hhh", r[10 + 6 * i:16 + 6 * i]) for i in range(n))}
        elif err != 0:
            out["eof_after"] = c.wait_eof()
    elif op == "handshake":
        t0 = time.monotonic()
        herr, mechs = c.handshake(a["mech"])
        out = {"handshake": herr, "mechanisms": mechs, "seconds": time.monotonic() - t0,
               "eof_after": c.wait_eof()}
    elif op == "raw":
        # One request of api/version with a body (hex), before any SASL.
        t0 = time.monotonic()
        body = bytes.fromhex(a["body"]) + b"\0" * a.get("fill", 0)
        if a.get("size") is not None:  # a size prefix that lies (or is huge), then the body
            try:
                c.s.sendall(i32(a["size"]) + body)
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                pass
        else:
            c.send(a["api"], a["version"], body, flex=a.get("flex", False))
        r = c.recv()
        out = {"answer": r.hex() if r is not None else None, "seconds": time.monotonic() - t0}
    elif op == "scram_stop":
        c.handshake(a["mech"])
        state, _ = scram(c, a["mech"], a["user"], a["password"], stop_after_first=True)
        out = {"state": state, "eof_after": c.wait_eof(30)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
