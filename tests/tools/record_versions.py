#!/usr/bin/python3
"""Records which API versions each client of the rig negotiates with the
cluster, by putting a logging TCP relay in front of every broker (the
launcher's `host` command advertises the relays), and prints a Markdown
table for docs/KAFKA_CLIENTS.md.

    tests/tools/record_versions.py   (after scripts/setup-kafka)
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from kafka_rig import CLIENTS, KafkaCluster  # noqa: E402

APIS = {18: "ApiVersions", 3: "Metadata", 0: "Produce", 1: "Fetch", 10: "FindCoordinator",
        60: "DescribeCluster"}
seen = {}          # client -> {api: set(versions)}
current = ["-"]


def pump(src, dst, log):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if log:
                buf += data
                while len(buf) >= 12:
                    size = int.from_bytes(buf[:4], "big")
                    if len(buf) < 4 + size:
                        # Only the header matters: keep it, drop the body as it passes.
                        if len(buf) > 4096:
                            key = int.from_bytes(buf[4:6], "big")
                            ver = int.from_bytes(buf[6:8], "big")
                            seen.setdefault(current[0], {}).setdefault(key, set()).add(ver)
                            skip = 4 + size
                            while skip > len(buf):
                                more = src.recv(min(65536, skip - len(buf)))
                                if not more:
                                    return
                                dst.sendall(more)
                                skip -= len(more)
                            buf = buf[skip:] if skip <= len(buf) else b""
                        break
                    key = int.from_bytes(buf[4:6], "big")
                    ver = int.from_bytes(buf[6:8], "big")
                    seen.setdefault(current[0], {}).setdefault(key, set()).add(ver)
                    buf = buf[4 + size:]
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(listener, target):
    while True:
        c, _ = listener.accept()
        u = socket.create_connection(target)
        threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
        threading.Thread(target=pump, args=(u, c, False), daemon=True).start()


def main():
    cluster = KafkaCluster(brokers=3, topics=["orders:6"])
    relays = {}
    for b in cluster.brokers():
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        relays[b["id"]] = ls.getsockname()[1]
        threading.Thread(target=relay, args=(ls, (b["host"], b["port"])), daemon=True).start()
    for node, port in relays.items():
        cluster.cmd(f"host {node} 127.0.0.1 {port}")
    bootstrap = f"127.0.0.1:{relays[1]}"
    for name, client in CLIENTS.items():
        current[0] = name
        client.produce(bootstrap, "orders", 200)
        client.consume(bootstrap, "orders", f"versions-{name}", 200)
        client.metadata(bootstrap)
    cluster.stop()
    print_table(APIS, CLIENTS, seen)


def print_table(apis, clients, seen):
    """The Markdown table: a row per client, a column per API key."""
    print("| client | " + " | ".join(apis.values()) + " |")
    print("|---|" + "---|" * len(apis))
    for name in clients:
        row = []
        for key in apis:
            v = sorted(seen.get(name, {}).get(key, ()))
            row.append(", ".join(f"v{x}" for x in v) if v else "not sent")
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
