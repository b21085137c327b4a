#!/usr/bin/python3
"""Records which API versions each client negotiates with real Apache Kafka
through bore kafka-proxy (the proxy caps ApiVersions at what its codec can
rewrite), from the proxy's own debug log (`request api K vV ...`), and prints
a Markdown table for docs/KAFKA_CLIENTS.md.

    ip netns add rv; ip -n rv link set lo up
    ip netns exec rv tests/tools/record_versions_real.py [4.4.0|3.9.2]

(its own network namespace: it binds the control port 7835 on 127.0.0.1).
Each client fetches metadata, produces 200 messages, consumes them in a
group; the Java client also runs its admin calls, a transaction and a share
consumer (4.x).
"""
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from kafka_real import DEFAULT_VERSION, RealCluster  # noqa: E402
from kafka_rig import CLIENTS, JAVA  # noqa: E402
from record_versions import print_table  # noqa: E402

APIS = {18: "ApiVersions", 3: "Metadata", 0: "Produce", 1: "Fetch", 10: "FindCoordinator",
        60: "DescribeCluster", 55: "DescribeQuorum", 78: "ShareFetch", 79: "ShareAcknowledge"}
BORE = os.path.join(ROOT, "build", "bore")


def main():
    version = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_VERSION
    cluster = RealCluster(brokers=3, version=version, topics=["orders:6"])
    env = dict(os.environ, BORE_LOG="debug")
    server = subprocess.Popen([BORE, "server", "--bind-addr", "127.0.0.1", "--min-port", "21000",
                               "--max-port", "21999"], stderr=subprocess.DEVNULL, env=env)
    log = open(os.path.join(cluster.workdir, "proxy.log"), "w+")
    time.sleep(0.3)
    proxy = subprocess.Popen([BORE, "kafka-proxy", "-b", cluster.address(1), "--to", "127.0.0.1", "-p",
                              "21092"], stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    try:
        while not proxy.stdout.readline().startswith("bootstrap.servers="):
            pass
        bs = "127.0.0.1:21092"
        seen = {}
        clients = {"java": JAVA, **CLIENTS}
        for name, c in clients.items():
            start = log.tell()
            c.metadata(bs)
            c.produce(bs, "orders", 200)
            c.consume(bs, "orders", f"versions-{name}", 200)
            if name == "java":
                c.admin(bs)
                c.txn(bs, "orders", 10, 10, "versions-txn")
                if version.startswith("4"):
                    c.share_consume(bs, "orders", "versions-share", 200)
            time.sleep(0.5)  # the proxy's last log lines
            log.seek(start)
            for m in re.finditer(r"request api (\d+) v(\d+)", log.read()):
                seen.setdefault(name, {}).setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        print(f"Apache Kafka {version}, through bore kafka-proxy:\n")
        print_table(APIS, clients, seen)
    finally:
        for p in (proxy, server):
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        cluster.close()


if __name__ == "__main__":
    main()
