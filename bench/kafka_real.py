#!/usr/bin/python3
"""bench/kafka_real.py - Kafka's own perf tools (ProducerPerformance,
ConsumerPerformance) against real Apache Kafka 4.4.0, side by side in one
run on 127.0.0.1 (issue 8):

  direct        perf tool -> broker
  plain tunnel  perf tool -> bore server -> bore local -> broker (a second
                listener of the broker advertises the tunnel's public port,
                so every connection takes the tunnel)
  kafka-proxy   perf tool -> bore server -> bore kafka-proxy -> broker

One broker (its JVM with the C2 compiler and a 1 GiB heap), one topic of
6 partitions per path and round; the paths take turns in every round and
the median of the rounds is reported.  Usage: bench/kafka-real.sh [N] [SIZE] [ROUNDS]
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
from kafka_real import RealCluster, tool_command  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BORE = os.path.join(ROOT, "build", "bore")
TUNNEL_PUBLIC = 21093  # bore local's public port: what the TUNNEL listener advertises


def start(args):
    env = dict(os.environ, BORE_LOG="warn")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)


def wait_line(p, pattern, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return m
    raise SystemExit(f"{p.args[:2]} did not print {pattern!r}")


def tool(main, *args):
    r = subprocess.run(tool_command(main, *args), capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"{main} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def produce(bootstrap, topic):
    out = tool("org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(N),
               "--record-size", str(SIZE), "--throughput", "-1", "--producer-props",
               f"bootstrap.servers={bootstrap}", "acks=1", "linger.ms=5", "batch.size=262144",
               "compression.type=none")
    m = re.search(rf"^{N} records sent, [\d.]+ records/sec \(([\d.]+) MB/sec\)", out, re.M)
    return float(m.group(1))


def consume(bootstrap, topic):
    out = tool("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
               "--messages", str(N), "--timeout", "120000")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    row = dict(zip([h.strip() for h in lines[-2].split(",")], [v.strip() for v in lines[-1].split(",")]))
    if int(row["data.consumed.in.nMsg"]) != N:
        raise SystemExit(f"consumed {row['data.consumed.in.nMsg']} of {N}")
    return float(row["MB.sec"])


def main():
    subprocess.run(["make", "-s", "-C", ROOT], check=True)
    listeners = ("CLIENT://127.0.0.1:19091,INTERNAL://127.0.0.1:19191,TUNNEL://127.0.0.1:19095")
    cluster = RealCluster(brokers=1, fast_jit=False, extra_config={
        "listeners": listeners,
        "advertised.listeners": listeners.replace("127.0.0.1:19095", f"127.0.0.1:{TUNNEL_PUBLIC}"),
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:PLAINTEXT,"
                                          "TUNNEL:PLAINTEXT",
        "num.network.threads": 3, "num.io.threads": 4,
    })
    procs = []
    try:
        server = start([BORE, "server", "--bind-addr", "127.0.0.1", "--min-port", "21000", "--max-port", "21999"])
        procs.append(server)
        time.sleep(0.3)
        proxy = start([BORE, "kafka-proxy", "-b", "127.0.0.1:19091", "--to", "127.0.0.1", "-p", "21092"])
        procs.append(proxy)
        wait_line(proxy, r"^bootstrap\.servers=")
        local = start([BORE, "local", "19095", "--to", "127.0.0.1", "-p", str(TUNNEL_PUBLIC)])
        procs.append(local)
        time.sleep(0.5)
        paths = {"direct": "127.0.0.1:19091", "plain tunnel": f"127.0.0.1:{TUNNEL_PUBLIC}",
                 "kafka-proxy": "127.0.0.1:21092"}
        res = {p: {"produce": [], "consume": []} for p in paths}
        for r in range(ROUNDS):
            order = list(paths)[r % 3:] + list(paths)[:r % 3]
            for p in order:
                topic = f"bench-{r}-{p.replace(' ', '-')}"
                cluster.topic(topic, 6, 1)
                res[p]["produce"].append(produce(paths[p], topic))
                res[p]["consume"].append(consume(paths[p], topic))
                print(f"round {r + 1} {p:13s} produce {res[p]['produce'][-1]:8.1f} MB/s  "
                      f"consume {res[p]['consume'][-1]:8.1f} MB/s", flush=True)
        med = {p: {k: statistics.median(v) for k, v in d.items()} for p, d in res.items()}
        print(f"\nApache Kafka 4.4.0, 1 broker; {N} records of {SIZE} B, acks=1; median of {ROUNDS} rounds")
        print("| path | produce MB/s | consume MB/s |")
        print("|---|---|---|")
        for p in paths:
            print(f"| {p} | {med[p]['produce']:.1f} | {med[p]['consume']:.1f} |")
        for k in ("produce", "consume"):
            print(f"kafka-proxy / plain tunnel, {k}: {100 * med['kafka-proxy'][k] / med['plain tunnel'][k]:.0f} %")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        cluster.close()


if __name__ == "__main__":
    main()
