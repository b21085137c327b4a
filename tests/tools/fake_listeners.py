#!/usr/bin/python3
"""Listeners that are not Kafka, for the pre-flight's statuses (kcheck.h):

    fake_listeners.py [--silent N]   prints {"silent": [ports], "http": port,
                                     "tls": port, "closed": port} once all
                                     listen, then serves until stdin closes

- silent: accepted by the kernel (listen backlog), never read, never
  answered: the pre-flight's `timeout`;
- http: answers `HTTP/1.1 400 Bad Request` as soon as the first bytes cannot
  start a request line, as nginx does with a binary request: `not Kafka`;
- tls: a real TLS server (Python's ssl, a self-signed certificate made with
  the openssl command), which closes on a plaintext request without a byte
  and answers a ClientHello: `TLS`;
- closed: a port that was bound and closed again, where nothing listens:
  `refused`.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

HOST = "127.0.0.1"


def listener(backlog=64):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, 0))
    s.listen(backlog)
    return s


def serve(ls, handle):
    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def http(c):
    try:
        first = c.recv(1024)
        if first and not first[:1].isalpha():  # a request line starts with a method name
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    finally:
        c.close()


def main():
    silent_n = int(sys.argv[sys.argv.index("--silent") + 1]) if "--silent" in sys.argv else 1
    keep = []
    silent = []
    for _ in range(silent_n):
        s = listener(backlog=256)
        keep.append(s)
        silent.append(s.getsockname()[1])

    h = listener()
    serve(h, http)

    d = tempfile.mkdtemp(prefix="bore-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                    cert, "-days", "1", "-subj", "/CN=kafka-tls"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    t = listener()

    def tls(c):
        try:
            ctx.wrap_socket(c, server_side=True).close()
        except (OSError, ssl.SSLError):
            c.close()
    serve(t, tls)

    closed = listener()
    closed_port = closed.getsockname()[1]
    closed.close()

    print(json.dumps({"silent": silent, "http": h.getsockname()[1], "tls": t.getsockname()[1],
                      "closed": closed_port}), flush=True)
    sys.stdin.read()
    for f in (cert, key):
        os.unlink(f)
    os.rmdir(d)


if __name__ == "__main__":
    main()
