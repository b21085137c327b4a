#!/usr/bin/python3
"""bench/kafka_tls.py - kafka-proxy with and without --tls, side by side in
one run on 127.0.0.1 against real Apache Kafka 4.4.0 (issue 9):

  plaintext  perf tool -> bore server -> bore kafka-proxy -> broker
  TLS        the same, with --tls (the generated CA; the tools verify the
             certificate and the host name, 127.0.0.1)

Measured: produce and consume MB/s with Kafka's perf tools, or with kcat
(librdkafka, OpenSSL) when BENCH_CLIENT=kcat (the paths take turns in each
round; median of the rounds), new connections per second
(connect, TLS handshake - full, and resumed with a session ticket -,
ApiVersions round trip, close; one Python client, sequential), and the
proxy's RSS growth per idle connection over N_IDLE connections that each
did one ApiVersions round trip.  Usage: bench/kafka-tls.sh [N] [SIZE] [ROUNDS] [N_IDLE]
(ROUNDS 0: only the connection rate and the idle connections' memory).
"""
import os
import re
import resource
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
from kafka_real import RealCluster, tool_command  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
N_IDLE = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
BORE = os.path.join(ROOT, "build", "bore")
API_VERSIONS = struct.pack(">ihhih", 14, 18, 0, 7, 4) + b"bore"


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
    # With the full JIT (C2): the rig's C1-only flag makes the JVM's own TLS
    # (JSSE's AES-GCM) the bottleneck, and the benchmark would measure it.
    cmd = [x for x in tool_command(main, *args) if x != "-XX:TieredStopAtLevel=1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"{main} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def produce(bootstrap, topic, props):
    out = tool("org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(N),
               "--record-size", str(SIZE), "--throughput", "-1", "--producer-props",
               f"bootstrap.servers={bootstrap}", "acks=1", "linger.ms=5", "batch.size=262144",
               "compression.type=none", *[f"{k}={v}" for k, v in props.items()])
    m = re.search(rf"^{N} records sent, [\d.]+ records/sec \(([\d.]+) MB/sec\)", out, re.M)
    return float(m.group(1))


def consume(bootstrap, topic, config_file):
    out = tool("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
               "--messages", str(N), "--timeout", "120000", "--command-config", config_file)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    row = dict(zip([h.strip() for h in lines[-2].split(",")], [v.strip() for v in lines[-1].split(",")]))
    if int(row["data.consumed.in.nMsg"]) != N:
        raise SystemExit(f"consumed {row['data.consumed.in.nMsg']} of {N}")
    return float(row["MB.sec"])


# BENCH_CLIENT=kcat: the client's own TLS is OpenSSL's (as the proxy's), not
# the JVM's, which on two cores takes much of the CPU the paths share.
KCAT = os.environ.get("BENCH_CLIENT") == "kcat"
_payload = None


def kcat_props(props):
    out = []
    if props.get("security.protocol") == "SSL":
        out += ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={props['ssl.truststore.location']}"]
    return out


def produce_kcat(bootstrap, topic, props):
    global _payload
    if _payload is None:
        _payload = tempfile.NamedTemporaryFile(prefix="bore-tls-bench-", delete=False)
        line = b"x" * (SIZE - 1) + b"\n"
        for _ in range(N):
            _payload.write(line)
        _payload.close()
    t0 = time.monotonic()
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-X", "linger.ms=5", "-X",
                    "batch.num.messages=10000", "-X", "acks=1", *kcat_props(props), "-l", _payload.name],
                   check=True, timeout=900)
    return N * (SIZE - 1) / 1e6 / (time.monotonic() - t0)  # a line: SIZE - 1 bytes and its newline


def consume_kcat(bootstrap, topic, props):
    t0 = time.monotonic()
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-c", str(N), "-e",
                        "-q", *kcat_props(props)], stdout=subprocess.PIPE, check=True, timeout=900)
    dt = time.monotonic() - t0
    got = r.stdout.count(b"\n")
    if got != N:
        raise SystemExit(f"kcat consumed {got} of {N}")
    return N * (SIZE - 1) / 1e6 / dt


def cpu_s(pid):
    """User + system CPU seconds the process has used."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def round_trip(s):
    s.sendall(API_VERSIONS)
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    size = struct.unpack(">i", head)[0]
    body = b""
    while len(body) < size:
        body += s.recv(size - len(body))


def connect(port, ctx, session=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if ctx:
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1", session=session)
    round_trip(s)
    return s


def connections_per_second(port, ctx, resume, seconds=5.0):
    n, session, t0 = 0, None, time.monotonic()
    while time.monotonic() - t0 < seconds:
        s = connect(port, ctx, session if resume else None)
        if ctx and resume:
            session = s.session
        s.close()
        n += 1
    return n / (time.monotonic() - t0)


def idle_cost(pid, port, ctx):
    """KiB of proxy RSS per idle connection (after one round trip each)."""
    warm = [connect(port, ctx) for _ in range(20)]  # first allocations, pools
    for s in warm:
        s.close()
    time.sleep(1)
    before = rss_kib(pid)
    conns = [connect(port, ctx) for _ in range(N_IDLE)]
    time.sleep(1)
    after = rss_kib(pid)
    for s in conns:
        s.close()
    return (after - before) / N_IDLE


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(["make", "-s", "-C", ROOT], check=True)
    cluster = RealCluster(brokers=1, fast_jit=False, extra_config={"num.network.threads": 3, "num.io.threads": 4})
    state = tempfile.mkdtemp(prefix="bore-tls-bench-")
    ca = os.path.join(state, "ca.pem")
    procs = []
    try:
        server = start([BORE, "server", "--bind-addr", "127.0.0.1", "--min-port", "21000", "--max-port", "21999"])
        procs.append(server)
        time.sleep(0.3)
        plain = start([BORE, "kafka-proxy", "-b", cluster.address(1), "--to", "127.0.0.1", "-p", "21092"])
        procs.append(plain)
        wait_line(plain, r"^bootstrap\.servers=")
        tls = start([BORE, "kafka-proxy", "-b", cluster.address(1), "--to", "127.0.0.1", "-p", "21094",
                     "--tls", "--state-dir", state])
        procs.append(tls)
        wait_line(tls, r"^bootstrap\.servers=")
        props = {"plaintext": {}, "TLS": {"security.protocol": "SSL", "ssl.truststore.type": "PEM",
                                          "ssl.truststore.location": ca}}
        ports = {"plaintext": 21092, "TLS": 21094}
        configs = {}
        for p, conf in props.items():
            configs[p] = os.path.join(state, f"{p}.properties")
            with open(configs[p], "w") as f:
                f.writelines(f"{k}={v}\n" for k, v in conf.items())
        res = {p: {"produce": [], "consume": []} for p in props}
        cpu = {p: {"produce": [], "consume": []} for p in props}  # proxy CPU ms per MB
        for r in range(ROUNDS):
            for p in (list(props) if r % 2 == 0 else list(props)[::-1]):
                topic = f"bench-{r}-{p}"
                cluster.topic(topic, 6, 1)
                bootstrap = f"127.0.0.1:{ports[p]}"
                pid = procs[1 if p == "plaintext" else 2].pid
                c0 = cpu_s(pid)
                res[p]["produce"].append((produce_kcat if KCAT else produce)(bootstrap, topic, props[p]))
                c1 = cpu_s(pid)
                res[p]["consume"].append(consume_kcat(bootstrap, topic, props[p]) if KCAT
                                         else consume(bootstrap, topic, configs[p]))
                cpu[p]["produce"].append(1000 * (c1 - c0) / (N * SIZE / 1e6))
                cpu[p]["consume"].append(1000 * (cpu_s(pid) - c1) / (N * SIZE / 1e6))
                print(f"round {r + 1} {p:9s} produce {res[p]['produce'][-1]:8.1f} MB/s  "
                      f"consume {res[p]['consume'][-1]:8.1f} MB/s", flush=True)
        med = {p: {k: statistics.median(v) if v else 0.0 for k, v in d.items()} for p, d in res.items()}
        ctx = ssl.create_default_context(cafile=ca)
        rates = {"plaintext": connections_per_second(21092, None, False),
                 "TLS (full handshake)": connections_per_second(21094, ctx, False),
                 "TLS (resumed)": connections_per_second(21094, ctx, True)}
        idle = {"plaintext": idle_cost(plain.pid, 21092, None), "TLS": idle_cost(tls.pid, 21094, ctx)}
        print(f"\nApache Kafka 4.4.0, 1 broker; {N} records of {SIZE} B, acks=1; median of {ROUNDS} rounds; "
              f"client {'kcat' if KCAT else 'Kafka perf tools'}")
        print("| path | produce MB/s | consume MB/s | new connections/s | RSS per idle connection |")
        print("|---|---|---|---|---|")
        print(f"| plaintext | {med['plaintext']['produce']:.1f} | {med['plaintext']['consume']:.1f} | "
              f"{rates['plaintext']:.0f} | {idle['plaintext']:.1f} KiB |")
        print(f"| TLS | {med['TLS']['produce']:.1f} | {med['TLS']['consume']:.1f} | "
              f"{rates['TLS (full handshake)']:.0f} full, {rates['TLS (resumed)']:.0f} resumed | "
              f"{idle['TLS']:.1f} KiB |")
        for k in ("produce", "consume"):
            if ROUNDS:
                print(f"TLS / plaintext, {k}: {100 * med['TLS'][k] / med['plaintext'][k]:.0f} %")
        for p in props if ROUNDS else ():
            print(f"proxy CPU per MB, {p}: produce {statistics.median(cpu[p]['produce']):.2f} ms, "
                  f"consume {statistics.median(cpu[p]['consume']):.2f} ms")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        cluster.close()
        if _payload is not None:
            os.unlink(_payload.name)


if __name__ == "__main__":
    main()
