"""kafka-proxy's pre-flight, --map, --check and --strict against the mock
cluster (issue 15): every STATUS value from a real listener (a name that
does not resolve, a closed port, a silent port, an HTTP server, a TLS
server), the advice printed for each, maps by address and by node id, a
broker that appears later with an address that does not resolve, and 60
brokers checked at once. The real-Kafka acceptance is in
test_real_kafka_maps.py."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import BORE, ROOT
from kafka_env import Env
from kafka_rig import CLIENTS, KafkaCluster
from netns import CLIENT_TO_SERVER, CLUSTER_TO_SERVER

FAKES = os.path.join(ROOT, "tests", "tools", "fake_listeners.py")
DEADLINE = 2.0  # KCHECK_DEADLINE_MS


@pytest.fixture(scope="module")
def cluster(ns):
    c = KafkaCluster(brokers=3, topics=["orders:6"], prefix=ns.prefix("c"))
    yield c
    assert c.stop() == 0, "".join(c.err)


@pytest.fixture(scope="module")
def fakes(ns):
    p = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", FAKES, "--silent", "60"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ports = json.loads(p.stdout.readline())
    yield ports
    p.stdin.close()
    p.wait(10)


@pytest.fixture
def broker3(cluster):
    """Broker 3's real address; whatever a test makes it advertise, it
    advertises its own again afterwards."""
    b = cluster.broker(3)
    yield b
    assert cluster.cmd(f"host 3 {b['host']} {b['port']}") == {"ok": "host"}


def check(ns, cluster, *extra):
    t0 = time.monotonic()
    r = subprocess.run([*ns.prefix("c"), BORE, "kafka-proxy", "--check", "-b",
                        cluster.bootstrap.split(",")[0], *extra],
                       capture_output=True, text=True, timeout=30)
    r.elapsed = time.monotonic() - t0
    return r


def row(out, node):
    m = re.search(rf"^  {node}\s+(\S+)\s+(?:(\S+)\s+)?(ok|unresolvable|refused|unreachable|timeout|not Kafka|TLS)$",
                  out, re.M)
    assert m, out
    return m


# ---- --check: one status per kind of listener -----------------------------------------------

STATUSES = {
    # advertised address (from the fakes' ports), status, the line of advice
    "unresolvable": (lambda f: ("kafka-3.internal.example", 29093), "unresolvable",
                     r"broker 3 advertises kafka-3\.internal\.example:29093, which does not resolve "
                     r"here: add --map kafka-3\.internal\.example:29093=<host>:<port>"),
    "refused": (lambda f: ("127.0.0.1", f["closed"]), "refused",
                r"broker 3: nothing listens at 127\.0\.0\.1:\d+ \(connection refused\): is the broker "
                r"up\? If it is reachable at another address from here, add --map 127\.0\.0\.1:\d+="),
    "timeout": (lambda f: ("127.0.0.1", f["silent"][0]), "timeout",
                r"broker 3: 127\.0\.0\.1:\d+ did not answer in time \(no answer to ApiVersions; "),
    "http": (lambda f: ("127.0.0.1", f["http"]), "not Kafka",
             r"broker 3: what answers at 127\.0\.0\.1:\d+ is not a Kafka listener \(the answer is not "
             r"a Kafka response\): check the port of the broker's client listener"),
    "tls": (lambda f: ("127.0.0.1", f["tls"]), "TLS",
            r"broker 3: 127\.0\.0\.1:\d+ answered with TLS: it is an SSL listener; run with "
            r"--broker-tls \(and --broker-ca FILE"),
}


@pytest.mark.parametrize("kind", list(STATUSES))
def test_check_reports_the_status_and_what_to_do(ns, cluster, fakes, broker3, kind):
    address, status, advice = STATUSES[kind]
    host, port = address(fakes)
    assert cluster.cmd(f"host 3 {host} {port}") == {"ok": "host"}
    r = check(ns, cluster)
    assert r.returncode == 1, r
    assert row(r.stdout, 3).group(3) == status, r.stdout
    for node in ("bootstrap", 1, 2):
        assert row(r.stdout, node).group(3) == "ok", r.stdout
    assert re.search(advice, r.stdout), r.stdout
    assert r.stdout.count("\nbroker ") == 1, r.stdout  # one line of advice, for broker 3 only
    assert r.stdout.rstrip().endswith("1 of 4 addresses failed the pre-flight"), r.stdout
    assert r.elapsed < DEADLINE + 1.5, r.elapsed


def test_check_exits_0_when_every_broker_answers_and_needs_no_server(ns, cluster):
    # --to names a server that does not resolve: --check never dials it.
    r = check(ns, cluster, "--to", "no-such-server.invalid")
    assert r.returncode == 0, r
    for node in ("bootstrap", 1, 2, 3):
        assert row(r.stdout, node).group(3) == "ok", r.stdout
    assert "DIALLED" not in r.stdout
    assert r.stdout.rstrip().endswith("every address is reachable")


@pytest.mark.parametrize("key", ["address", "node-id"])
def test_check_passes_with_a_map(ns, cluster, broker3, key):
    assert cluster.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
    real = f"127.0.0.1:{broker3['port']}"
    left = "kafka-3.internal.example:29093" if key == "address" else "3"
    r = check(ns, cluster, "--map", f"{left}={real}")
    assert r.returncode == 0, r
    m = row(r.stdout, 3)
    assert (m.group(1), m.group(2), m.group(3)) == ("kafka-3.internal.example:29093", real, "ok"), r.stdout
    assert row(r.stdout, 1).group(2) == "-"  # not mapped: dialled as advertised


def test_map_by_address_wins_over_map_by_node_id(ns, cluster, broker3):
    assert cluster.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
    r = check(ns, cluster, "--map", "3=127.0.0.1:1",
              "--map", f"kafka-3.internal.example:29093=127.0.0.1:{broker3['port']}")
    assert r.returncode == 0, r
    assert row(r.stdout, 3).group(2) == f"127.0.0.1:{broker3['port']}"


def test_a_wrong_map_is_reported_as_such(ns, cluster, broker3):
    assert cluster.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
    r = check(ns, cluster, "--map", "3=kafka-3.also-unknown.example:9092")
    assert r.returncode == 1, r
    assert row(r.stdout, 3).group(3) == "unresolvable"
    assert re.search(r"broker 3 is mapped to kafka-3\.also-unknown\.example:9092, which does not "
                     r"resolve here \(.*\): correct its --map", r.stdout), r.stdout


def test_check_runs_60_brokers_at_once(ns, fakes):
    """60 brokers that accept connections and never answer: checked one
    after the other they would take 60 deadlines (2 minutes); at once, one."""
    c = KafkaCluster(brokers=60, prefix=ns.prefix("c"))
    try:
        for i in range(1, 61):
            assert c.cmd(f"host {i} 127.0.0.1 {fakes['silent'][i - 1]}") == {"ok": "host"}
        first = c.info["brokers"][0]
        t0 = time.monotonic()
        r = subprocess.run([*ns.prefix("c"), BORE, "kafka-proxy", "--check", "-b",
                            f"127.0.0.1:{first['port']}"], capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - t0
        assert r.returncode == 1, r
        assert len(re.findall(r"^  \d+\s+127\.0\.0\.1:\d+\s+timeout$", r.stdout, re.M)) == 60, r.stdout
        assert elapsed < DEADLINE + 1.5, elapsed
    finally:
        assert c.stop() == 0


# ---- the running proxy ----------------------------------------------------------------------

def test_proxy_starts_with_a_problem_marked_and_names_it_in_each_log_line(procs, ns, cluster, broker3):
    """Broker 3 advertises a name that does not resolve: the proxy still
    starts, marks it in the table with its advice, and a client's connection
    to broker 3 is closed with a log line that names the broker, the address
    and the fix (no more "no address to connect  to yet")."""
    assert cluster.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
    env = Env(procs, ns, brokers=0, bootstrap_of=cluster.bootstrap.split(",")[0])
    out = env.proxy.stdout_text()
    assert re.search(r"^  3\s+192\.0\.2\.6:\d+\s+kafka-3\.internal\.example:29093\s+unresolvable$", out, re.M), out
    assert "broker 3 advertises kafka-3.internal.example:29093, which does not resolve here: add --map " \
           "kafka-3.internal.example:29093=<host>:<port>" in out
    assert re.search(rf"\nbootstrap\.servers={CLIENT_TO_SERVER}:9092(,{CLIENT_TO_SERVER}:\d+)+$", out.strip())
    host, port = env.public[3]
    probe = subprocess.run([*env.client_ns, "/usr/bin/python3", "-c", f"""
import socket
s = socket.create_connection(({host!r}, {port}), timeout=10)
s.settimeout(10)
print(repr(s.recv(10)))
"""], capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "b''", probe
    env.proxy.wait_for(r"WARN bore::tunnel: no address to connect to Kafka broker 3 at "
                       r"kafka-3\.internal\.example:29093, which does not resolve here \(restart bore "
                       r"kafka-proxy with --map kafka-3\.internal\.example:29093=<host>:<port>\); "
                       r"closing the connection$")


def test_strict_does_not_start_when_a_broker_fails(procs, ns, cluster, broker3):
    assert cluster.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
    srv = procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "9000",
                       "--max-port", "29999"])
    srv.wait_for("server listening")
    p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", cluster.bootstrap.split(",")[0],
                     "--to", CLUSTER_TO_SERVER, "--strict"])
    assert p.wait() == 1
    p.expect_rc = 1
    assert "Error: 1 of the cluster's addresses cannot be reached from here (--strict)" in p.text()
    assert re.search(r"^  3\s+kafka-3\.internal\.example:29093\s+unresolvable$", p.stdout_text(), re.M)
    assert "bootstrap.servers=" not in p.stdout_text()


@pytest.mark.parametrize("key", ["address", "node-id"])
def test_mapped_broker_serves_clients_under_strict(procs, ns, cluster, broker3, key):
    """With the map, --strict starts, and a client produces to and consumes
    from every partition, broker 3's included, through the proxy."""
    assert cluster.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
    left = "kafka-3.internal.example:29093" if key == "address" else "3"
    env = Env(procs, ns, brokers=0, bootstrap_of=cluster.bootstrap.split(",")[0],
              proxy_args=["--strict", "--map", f"{left}=127.0.0.1:{broker3['port']}"])
    out = env.proxy.stdout_text()
    assert re.search(rf"^  3\s+192\.0\.2\.6:\d+\s+kafka-3\.internal\.example:29093\s+127\.0\.0\.1:"
                     rf"{broker3['port']}\s+ok$", out, re.M), out
    c = CLIENTS["confluent"]
    md = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert 3 in set(md["topics"]["orders"].values())
    topic = f"mapped-{key}"
    assert cluster.cmd(f"topic {topic} 6") == {"ok": "topic"}
    p = c.produce(env.bootstrap, topic, 1000, prefix=env.client_ns)
    assert p["acked"] == 1000 and not p["errors"], p
    r = c.consume(env.bootstrap, topic, f"g-{topic}", 1000, prefix=env.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(md["addresses"] + p["addresses"] + r["addresses"])
    env.proxy.wait_for(r"relayed to Kafka broker 3 at kafka-3\.internal\.example:29093 \(dialled "
                       rf"127\.0\.0\.1:{broker3['port']}\)")


def test_broker_appearing_later_unresolvable_is_logged_with_the_restart_hint(procs, ns):
    c = KafkaCluster(brokers=2, topics=["orders:4"], prefix=ns.prefix("c"))
    try:
        env = Env(procs, ns, brokers=0, bootstrap_of=c.bootstrap.split(",")[0])
        assert c.cmd("add 3") == {"ok": "add"}
        assert c.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
        md = CLIENTS["kcat"].metadata(env.bootstrap, prefix=env.client_ns)
        assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
        env.proxy.wait_for(r"WARN bore::kafka: pre-flight: Kafka broker 3 at kafka-3\.internal\.example:"
                           r"29093: unresolvable: broker 3 advertises kafka-3\.internal\.example:29093, "
                           r"which does not resolve here: restart bore kafka-proxy with --map "
                           r"kafka-3\.internal\.example:29093=<host>:<port>$")
    finally:
        assert c.stop() == 0


def test_map_applies_to_a_broker_that_appears_later(procs, ns):
    """A map given at start-up for a broker that does not exist yet: when it
    joins, advertising a name that does not resolve, the proxy dials it
    through the map, checks it, and clients use it."""
    c = KafkaCluster(brokers=2, topics=["orders:4"], prefix=ns.prefix("c"))
    relay = None
    try:
        env = Env(procs, ns, brokers=0, bootstrap_of=c.bootstrap.split(",")[0],
                  proxy_args=["--map", "kafka-3.internal.example:29093=127.0.0.1:39193"])
        assert c.cmd("add 3") == {"ok": "add"}
        relay = subprocess.Popen([*ns.prefix("c"), "socat", "TCP-LISTEN:39193,bind=127.0.0.1,fork,reuseaddr",
                                  f"TCP:127.0.0.1:{c.broker(3)['port']}"], stderr=subprocess.DEVNULL)
        subprocess.run([*ns.prefix("c"), "/usr/bin/python3", "-c", """
import socket, time
deadline = time.monotonic() + 10
while True:  # until socat listens
    try:
        socket.create_connection(("127.0.0.1", 39193), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
"""], check=True, timeout=20)
        assert c.cmd("host 3 kafka-3.internal.example 29093") == {"ok": "host"}
        assert c.cmd("topic later 2") == {"ok": "topic"}
        assert c.cmd("leader later 0 3") == {"ok": "leader"}
        k = CLIENTS["kcat"]
        md = k.metadata(env.bootstrap, prefix=env.client_ns)
        assert md["topics"]["later"]["0"] == 3
        env.proxy.wait_for(r"new Kafka broker 3 at kafka-3\.internal\.example:29093 \(dialled "
                           r"127\.0\.0\.1:39193\): opening a tunnel")
        env.proxy.wait_for(r"INFO bore::kafka: pre-flight: Kafka broker 3 at kafka-3\.internal\.example:"
                           r"29093 \(dialled 127\.0\.0\.1:39193\): ok")
        p = k.produce(env.bootstrap, "later", 500, prefix=env.client_ns)
        assert p["acked"] == 500
        r = k.consume(env.bootstrap, "later", "g-later", 500, prefix=env.client_ns)
        assert r["complete"] and r["duplicates"] == 0, {x: r[x] for x in r if x != "indices"}
        env.assert_public(md["addresses"] + p["addresses"] + r["addresses"])
    finally:
        if relay:
            relay.terminate()
            relay.wait()
        assert c.stop() == 0
