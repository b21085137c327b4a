#!/usr/bin/python3
"""A TCP forwarder that records every byte it carries, both directions, for
the test that the tunnel server only ever sees ciphertext (issue 9).

    record_forward.py LISTEN_PORT TARGET_HOST:TARGET_PORT RECORD_FILE

Prints {"port": N} once listening on 127.0.0.1; appends each chunk to
RECORD_FILE as it passes (flushed at once)."""
import json
import socket
import sys
import threading

lock = threading.Lock()


def pump(src, dst, out):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            with lock:
                out.write(b)
                out.flush()
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    port, target, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    host, _, tport = target.rpartition(":")
    out = open(path, "ab")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    print(json.dumps({"port": ls.getsockname()[1]}), flush=True)
    while True:
        c, _ = ls.accept()
        s = socket.create_connection((host, int(tport)))
        threading.Thread(target=pump, args=(c, s, out), daemon=True).start()
        threading.Thread(target=pump, args=(s, c, out), daemon=True).start()


main()
