#!/usr/bin/python3
"""A one-node Kafka broker that answers from a script, for what the mock
cluster does not serve: DescribeCluster, SASL, and API versions newer than
any codec knows.

    scripted_broker.py [--high] [--brokers N]
                                     prints {"port": N} once listening, then
                                     one {"api": K, "version": V} per request

Answers ApiVersions (v0-v3, in the requested layout), Metadata (v0-v12: this
broker, id 1, at its internal address, and no topics; a request that names
a topic "big" gets a 2000-byte cluster id, an answer over 1 KiB), DescribeCluster (v0-v1:
the same broker), DescribeQuorum (v2: one voter, controller 3000 listening
at HOST:CONTROLLER_PORT - a KRaft controller, never tunnelled), SaslHandshake
(v0-v1: PLAIN), SaslAuthenticate (v0-v2: success) and Produce (v0-v8: no
topics) - except, like Kafka, Produce with acks=0, which is never answered.
With --high it advertises Metadata, FindCoordinator and DescribeCluster up to
version 99. With --brokers N, Metadata names N brokers (ids 1..N), all at
this broker's address.
"""
import json
import socket
import struct
import sys
import threading

HOST = "127.0.0.1"
HIGH = "--high" in sys.argv
BROKERS = int(sys.argv[sys.argv.index("--brokers") + 1]) if "--brokers" in sys.argv else 1
CONTROLLER_PORT = 9093


def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def uvarint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7f) | 0x80])
        v >>= 7
    return out + bytes([v])


def string(s, flex):
    if s is None:
        return uvarint(0) if flex else i16(-1)
    b = s.encode()
    return (uvarint(len(b) + 1) if flex else i16(len(b))) + b


def array(items, flex):
    return (uvarint(len(items) + 1) if flex else i32(len(items))) + b"".join(items)


TAGS = uvarint(0)


def api_versions(v, err=0):
    top = 99 if HIGH else None
    keys = [(18, 0, 3), (3, 0, top or 12), (10, 0, top or 3), (60, 0, top or 1), (17, 0, 1), (36, 0, 2), (55, 0, 2)]
    flex = v >= 3
    body = i16(err) + array([i16(k) + i16(lo) + i16(hi) + (TAGS if flex else b"") for k, lo, hi in keys], flex)
    if v >= 1:
        body += i32(0)
    if flex:
        body += TAGS
    return body, False  # ApiVersions: response header v0, always


def metadata(v, port, big=False):
    flex = v >= 9
    body = i32(0) if v >= 3 else b""
    brokers = []
    for node in range(1, BROKERS + 1):
        broker = i32(node) + string(HOST, flex) + i32(port)
        if v >= 1:
            broker += string("rack-1", flex)
        if flex:
            broker += TAGS
        brokers.append(broker)
    body += array(brokers, flex)
    if v >= 2:
        body += string("c" * 2000 if big else "scripted-cluster", flex)
    if v >= 1:
        body += i32(1)
    body += array([], flex)
    if 8 <= v <= 10:
        body += i32(-2147483648)
    if flex:
        body += TAGS
    return body, flex


def describe_cluster(v, port):
    body = i32(0) + i16(0) + string(None, True)
    if v >= 1:
        body += i8(1)
    body += string("scripted-cluster", True) + i32(1)
    body += array([i32(1) + string(HOST, True) + i32(port) + string("rack-1", True) + TAGS], True)
    body += i32(-2147483648) + TAGS
    return body, True


def describe_quorum(v):
    """v2 (KIP-853): the quorum of __cluster_metadata and its Nodes."""
    assert v == 2
    voter = i32(3000) + b"\x00" * 16 + i64(100) + i64(-1) + i64(-1) + TAGS
    partition = (i32(0) + i16(0) + string(None, True) + i32(3000) + i32(1) + i64(100)
                 + array([voter], True) + array([], True) + TAGS)
    body = i16(0) + string(None, True)
    body += array([string("__cluster_metadata", True) + array([partition], True) + TAGS], True)
    listener = string("CONTROLLER", True) + string(HOST, True) + struct.pack(">H", CONTROLLER_PORT) + TAGS
    body += array([i32(3000) + array([listener], True) + TAGS], True)
    return body + TAGS, True


def sasl_handshake(v):
    return i16(0) + array([string("PLAIN", False)], False), False


def sasl_authenticate(v):
    flex = v >= 2
    body = i16(0) + string(None, flex) + (uvarint(1) if flex else i32(0))
    if v >= 1:
        body += i64(0)
    if flex:
        body += TAGS
    return body, flex


def produce_acks(req, v):
    """Acks of a Produce v0-v8 request (header v1: ClientId, then
    TransactionalId from v3)."""
    off = 8
    n = struct.unpack(">h", req[off:off + 2])[0]
    off += 2 + max(n, 0)
    if v >= 3:
        n = struct.unpack(">h", req[off:off + 2])[0]
        off += 2 + max(n, 0)
    return struct.unpack(">h", req[off:off + 2])[0]


def produce(v):
    return array([], False) + (i32(0) if v >= 1 else b""), False


def serve(conn, port):
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
            size = struct.unpack(">i", buf[:4])[0]
            req, buf = buf[4:4 + size], buf[4 + size:]
            key, v, corr = struct.unpack(">hhi", req[:8])
            print(json.dumps({"api": key, "version": v}), flush=True)
            if key == 18:
                body, flex = api_versions(v, 0 if v <= 3 else 35)
                if v > 3:
                    body, flex = api_versions(0, 35)
            elif key == 3:
                body, flex = metadata(v, port, big=b"big" in req[8:])
            elif key == 60:
                body, flex = describe_cluster(v, port)
            elif key == 55:
                body, flex = describe_quorum(v)
            elif key == 17:
                body, flex = sasl_handshake(v)
            elif key == 36:
                body, flex = sasl_authenticate(v)
            elif key == 0 and v <= 8:
                if produce_acks(req, v) == 0:
                    continue  # Kafka never answers acks=0
                body, flex = produce(v)
            else:
                conn.close()
                return
            header = i32(corr) + (TAGS if flex else b"")
            conn.sendall(i32(len(header) + len(body)) + header + body)


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, 0))
    ls.listen(64)
    port = ls.getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, port), daemon=True).start()


if __name__ == "__main__":
    main()
