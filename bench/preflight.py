#!/usr/bin/python3
"""bench/preflight.py - what kafka-proxy's pre-flight (issue 15) costs.

  1. Real Apache Kafka 4.4.0, 3 brokers: time from starting `bore
     kafka-proxy` to its `bootstrap.servers=` line (tunnel server on
     127.0.0.1), for this build and for a build without the pre-flight
     (BASE_BORE), taking turns; and `--check` alone, process start to exit.
  2. 60 brokers (librdkafka's mock cluster: 60 listeners): `--check` with
     every broker answering, and with every broker advertising a port that
     accepts and never answers (60 timeouts: one deadline if the checks run
     at once, 60 if not).

Usage: bench/preflight.sh [RUNS]; runs in a network namespace of its own.
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from kafka_real import RealCluster  # noqa: E402
from kafka_rig import KafkaCluster  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
BORE = os.path.join(ROOT, "build", "bore")
BASE = os.environ.get("BASE_BORE")


def startup(bore, bootstrap):
    """Seconds from exec to the bootstrap.servers= line."""
    t0 = time.monotonic()
    p = subprocess.Popen([bore, "kafka-proxy", "-b", bootstrap, "--to", "127.0.0.1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, BORE_LOG="warn"))
    for line in p.stdout:
        if line.startswith("bootstrap.servers="):
            dt = time.monotonic() - t0
            break
    else:
        raise SystemExit("kafka-proxy did not start")
    p.terminate()
    p.wait(10)
    return dt


def check(bootstrap, want_rc):
    t0 = time.monotonic()
    r = subprocess.run([BORE, "kafka-proxy", "--check", "-b", bootstrap], capture_output=True, text=True,
                       timeout=120)
    dt = time.monotonic() - t0
    if r.returncode != want_rc:
        raise SystemExit(f"--check exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return dt


def ms(xs):
    return f"median {statistics.median(xs) * 1000:.1f} ms, p90 {sorted(xs)[int(len(xs) * 0.9) - 1] * 1000:.1f} ms"


def main():
    server = subprocess.Popen([BORE, "server", "--bind-addr", "127.0.0.1"], stderr=subprocess.DEVNULL)
    try:
        c = RealCluster(brokers=3, topics=["orders:6"])
        try:
            bs = c.address(1)
            startup(BORE, bs)  # warm-up
            new, base = [], []
            for _ in range(RUNS):
                new.append(startup(BORE, bs))
                if BASE:
                    base.append(startup(BASE, bs))
            print(f"3 brokers, start-up with pre-flight: {ms(new)}")
            if BASE:
                print(f"3 brokers, start-up without (BASE_BORE): {ms(base)}")
                print(f"3 brokers, added: {(statistics.median(new) - statistics.median(base)) * 1000:.1f} ms")
            print(f"3 brokers, --check: {ms([check(bs, 0) for _ in range(RUNS)])}")
        finally:
            c.close()
    finally:
        server.terminate()
        server.wait(10)

    silent = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests", "tools", "fake_listeners.py"),
                               "--silent", "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ports = json.loads(silent.stdout.readline())
    m = KafkaCluster(brokers=60)
    try:
        bs = m.bootstrap.split(",")[0]
        print(f"60 brokers answering, --check: {ms([check(bs, 0) for _ in range(RUNS)])}")
        for i in range(1, 61):
            m.cmd(f"host {i} 127.0.0.1 {ports['silent'][i - 1]}")
        print(f"60 brokers silent (60 timeouts), --check: {ms([check(bs, 1) for _ in range(3)])}")
    finally:
        m.stop()
        silent.stdin.close()
        silent.wait(10)


if __name__ == "__main__":
    main()
