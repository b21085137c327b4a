#!/usr/bin/env python3
"""bench/idle.py HOST PORT N - opens N connections to HOST:PORT, makes each
carry one byte each way (so a tunnel has really set it up), then holds them
idle until stdin closes. Prints "ready" once all N are up."""
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"!"   # the service's greeting
    assert s.recv(1) == b"x"   # the echo
    conns.append(s)
print("ready", flush=True)
sys.stdin.read()
