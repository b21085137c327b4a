"""bore kafka-proxy end to end (issue 5). The cluster and the proxy, the
tunnel server, and the client each live in their own network namespace
(netns.py): a client can reach the brokers only through the tunnel server,
so an internal address that leaks to it fails loudly - and every test also
checks, from the client's own view of the cluster, that it only ever
learned public addresses."""
import json
import re
import socket
import struct
import subprocess
import time

import pytest

from conftest import BORE
from kafka_env import SECRET, Env
from kafka_rig import CACHE, CLIENTS, KafkaCluster, StreamConsumer, rig_env
from netns import CLIENT_TO_SERVER, CLUSTER_TO_SERVER
ALL = list(CLIENTS)
N = 10000


@pytest.fixture
def env(procs, ns):
    e = Env(procs, ns)
    yield e
    e.close()


def client_of(name):
    return CLIENTS[name]


# ---- 1. metadata -------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_metadata_shows_public_addresses(env, name):
    md = client_of(name).metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    for b in md["brokers"]:
        assert (b["host"], b["port"]) == env.public[b["id"]]
    assert set(md["topics"]["orders"].values()) == {1, 2, 3}
    env.assert_public(md["addresses"])


def test_proxy_prints_the_table(env):
    out = env.proxy.stdout_text()
    assert "(3 brokers) is public on 192.0.2.6" in out
    assert re.search(r"bootstrap\s+192\.0\.2\.6:9092\s+127\.0\.0\.1:\d+", out)
    for node in (1, 2, 3):
        assert re.search(rf"^\s+{node}\s+192\.0\.2\.6:\d+\s+127\.0\.0\.1:\d+\s+ok$", out, re.M)
    # the bootstrap first, then every broker's public address
    servers = re.search(r"^bootstrap\.servers=(\S+)$", out, re.M).group(1).split(",")
    assert servers[0] == f"{CLIENT_TO_SERVER}:9092"
    assert sorted(servers[1:]) == sorted(f"{h}:{p}" for h, p in env.public.values())


# ---- 2. produce and consume ---------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_produce_and_consume_10000(env, name):
    c = client_of(name)
    p = c.produce(env.bootstrap, "orders", N, prefix=env.client_ns)
    assert p["acked"] == N and not p["errors"], p
    # What the brokers stored, in their own words (the end offsets), not what the client claims.
    assert CLIENTS["kcat"].end_offsets(env.bootstrap, "orders", prefix=env.client_ns) == N
    r = c.consume(env.bootstrap, "orders", f"g-{name}", N, prefix=env.client_ns)
    assert r["complete"] and r["count"] == N and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])


# ---- 3. consumer groups ------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_consumer_group_member_leaves_other_resumes(env, name):
    """Member A of a group consumes part of a topic, commits and leaves;
    member B joins the same group and resumes from A's committed offsets:
    it gets exactly the rest. Both find the group coordinator, commit and
    fetch offsets through the proxy. (The members follow each other: the
    mock's rebalances of concurrent members take tens of seconds, with or
    without the proxy, which would make this test slow and flaky.)"""
    c = client_of(name)
    total = 1200
    assert c.produce(env.bootstrap, "orders", total, prefix=env.client_ns)["acked"] == total
    a = c.consume(env.bootstrap, "orders", "group-ab", 300, timeout=60, prefix=env.client_ns, exact=True)
    a_set = set(a["indices"])
    assert a["count"] >= 300 and a["duplicates"] == 0
    rest = total - len(a_set)
    b = c.consume(env.bootstrap, "orders", "group-ab", rest, timeout=60, prefix=env.client_ns)
    b_set = set(b["indices"])
    assert not (a_set & b_set), sorted(a_set & b_set)[:10]  # resumed, nothing consumed twice
    assert a_set | b_set == set(range(total))                # and nothing lost
    env.assert_public(a["addresses"] + b["addresses"])


# ---- 4. transactions -----------------------------------------------------------------------

# kafka-python 2.3.3 checks record CRCs, and the control batches the rig's
# mock writes for transactions fail that check (without the proxy as well):
# its transactions are tested against real Kafka (test_real_kafka.py).
@pytest.mark.parametrize("name", [n for n in ALL if n != "kafka-python"])
def test_transactions_read_committed(env, name):
    """A transactional producer commits one transaction (0..499) and aborts
    another (500..799) through the proxy (FindCoordinator for the
    transaction coordinator, InitProducerId, AddPartitionsToTxn, EndTxn);
    a read_committed consumer then sees exactly the committed messages.
    (The rig's mock is patched to report aborted transactions in Fetch,
    tests/tools/patches/mock_aborted_txns.py; kcat reads, confluent-kafka
    writes for it.) A read_uncommitted consumer sees all 800: the aborted
    messages were written, and only the transaction markers keep them out."""
    c = client_of(name)
    producer = c if c.transactions else CLIENTS["confluent"]  # kcat cannot produce transactionally
    r = producer.txn(env.bootstrap, "orders", 500, 300, f"txn-{name}", prefix=env.client_ns)
    env.assert_public(r["addresses"])
    got = c.consume(env.bootstrap, "orders", f"rc-{name}", 800, timeout=10, committed=True,
                    prefix=env.client_ns)
    assert got["indices"] == list(range(500)), {k: got[k] for k in got if k != "indices"}
    assert got["duplicates"] == 0
    env.assert_public(got["addresses"])
    everything = c.consume(env.bootstrap, "orders", f"ru-{name}", 800, prefix=env.client_ns)
    assert everything["indices"] == list(range(800)), {k: everything[k] for k in everything
                                                       if k != "indices"}


# ---- 6. leader moves during production -------------------------------------------------------

def background_produce(env, name, topic, count):
    """Starts a producer of `count` keyed messages in the client namespace,
    pausing 0.1 s every 500 messages so that it is still producing while
    the test changes the cluster; returns once the brokers have stored its
    first batch (the topic's end offsets moved: the producer has its
    connections and leaders), with a function that waits for it and gives
    its result."""
    p = subprocess.Popen(["/usr/bin/python3", "-c", f"""
import sys; sys.path.insert(0, 'tests/e2e')
from kafka_rig import CLIENTS
import json
print(json.dumps(CLIENTS[{name!r}].produce({env.bootstrap!r}, {topic!r}, {count}, prefix={env.client_ns!r}, pace=0.1)))
"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(__import__("conftest").ROOT))
    kcat = CLIENTS["kcat"]
    deadline = time.monotonic() + 60
    while kcat.end_offsets(env.bootstrap, topic, prefix=env.client_ns) == 0:
        assert p.poll() is None and time.monotonic() < deadline, "no batch stored within 60 s"

    def result():
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        res = json.loads(out.strip().splitlines()[-1])
        assert res["acked"] == count and not res["errors"], res
        return res
    result.running = lambda: p.poll() is None
    return result


# KIP-951: a Produce (v10+) or Fetch (v16+) answered NOT_LEADER_OR_FOLLOWER
# names the new leader in NodeEndpoints; the proxy logs each one it rewrites.
HINT = r"leader hint \(NodeEndpoints\): broker (\d+) at 127\.0\.0\.1:\d+ rewritten to 192\.0\.2\.6:(\d+)"
# The clients whose Produce is new enough to be given leader hints
# (librdkafka 2.15: Produce v12; kafka-python 2.3.3: v8; kafkajs: v7).
KIP951 = {"kcat", "confluent"}


def assert_leader_hints_rewritten(env, name, mark, public):
    """Responses carrying NodeEndpoints crossed the proxy after `mark`, each
    rewritten to the node's public port (`public`: node -> port)."""
    if name not in KIP951:
        return
    env.proxy.wait_for(HINT, timeout=1, start=mark)
    for node, port in re.findall(HINT, "\n".join(x for x in env.proxy.lines[mark:] if x)):
        assert int(port) == public[int(node)], (node, port)


@pytest.mark.parametrize("name", ALL)
def test_leader_moves_during_production(env, name):
    """Every partition's leader moves after the producer's first stored
    batch, while it keeps producing: it follows the leaders (librdkafka
    clients through the rewritten KIP-951 hints), nothing lost or doubled."""
    c = client_of(name)
    produced = background_produce(env, name, "orders", N)
    mark = len(env.proxy.lines)
    for p in range(6):
        assert env.cluster.cmd(f"leader orders {p} {(p + 1) % 3 + 1}") == {"ok": "leader"}
    assert produced.running(), "the producer finished before the leaders moved"
    res = produced()
    assert_leader_hints_rewritten(env, name, mark, {n: port for n, (_, port) in env.public.items()})
    md = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert md["topics"]["orders"]["0"] == 2  # the client sees the new leader
    r = c.consume(env.bootstrap, "orders", f"lm-{name}", N, prefix=env.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(res["addresses"] + r["addresses"] + md["addresses"])


# ---- 7. brokers come, move, go down and up ------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_broker_added_while_running(env, name):
    """A broker joins while a producer runs and takes over a partition: the
    running producer reaches it through a tunnel opened on the spot."""
    c = client_of(name)
    produced = background_produce(env, name, "orders", N)
    mark = len(env.proxy.lines)
    assert env.cluster.cmd("add 4") == {"ok": "add"}
    assert env.cluster.cmd("leader orders 0 4") == {"ok": "leader"}
    assert produced.running(), "the producer finished before the broker joined"
    res = produced()
    stored = CLIENTS["kcat"].end_offsets(env.bootstrap, "orders", prefix=env.client_ns)
    if name in KIP951:  # told of broker 4 by a leader hint: its tunnel opened before that answer
        m = env.proxy.wait_for(r"broker 4 is public at 192\.0\.2\.6:(\d+)", start=mark)
        public = {n: port for n, (_, port) in env.public.items()}
        assert_leader_hints_rewritten(env, name, mark, {**public, 4: int(m.group(1))})
    r = c.consume(env.bootstrap, "orders", f"grow-{name}", N, prefix=env.client_ns)
    assert r["complete"], ({k: r[k] for k in r if k != "indices"}, stored)
    # Nothing lost, by any client. Nothing repeated either, except by kafkajs:
    # when the leader moves to the new broker, its retried batches can land
    # twice, because the mock does not carry idempotent-producer state from
    # one leader to the next (real Kafka does: test_real_kafka_faults.py
    # proves exactly-once across leader moves, kafkajs aside from this).
    if name != "kafkajs":
        assert r["duplicates"] == 0, ({k: r[k] for k in r if k != "indices"}, stored)
    env.assert_public(res["addresses"] + r["addresses"])
    # New clients see it too, and use it for a topic it leads.
    assert env.cluster.cmd("topic fresh 4") == {"ok": "topic"}
    assert env.cluster.cmd("leader fresh 0 4") == {"ok": "leader"}
    md = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3, 4]
    env.proxy.wait_for(r"broker 4 is public at 192\.0\.2\.6:\d+")
    env.assert_public(md["addresses"])
    assert md["topics"]["fresh"]["0"] == 4
    p = c.produce(env.bootstrap, "fresh", 2000, prefix=env.client_ns)
    assert p["acked"] == 2000
    r = c.consume(env.bootstrap, "fresh", f"add-{name}", 2000, prefix=env.client_ns)
    assert r["complete"], {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])


def test_broker_address_change_is_followed(env):
    """Broker 2 moves to a new address (a relay to the same broker): the
    proxy notices it in a Metadata answer and dials the new address from
    then on - connections reach the relay. (The old address keeps working,
    so only the relay's count can tell following from not following.)"""
    b2 = env.cluster.broker(2)
    # A relay in the cluster namespace gives broker 2 a second address (a
    # free port it picks and logs once it listens); it logs each connection.
    relay = subprocess.Popen([*env.ns.prefix("c"), "socat", "-d", "-d",
                              "TCP-LISTEN:0,bind=127.0.0.1,fork,reuseaddr",
                              f"TCP:127.0.0.1:{b2['port']}"], stderr=subprocess.PIPE, text=True)
    said = []
    for ln in relay.stderr:
        said.append(ln)
        if m := re.search(r"listening on AF=2 127\.0\.0\.1:(\d+)", ln):
            break
    assert m, "".join(said)
    port = int(m.group(1))
    relayed = []
    import threading
    threading.Thread(target=lambda: relayed.extend(ln for ln in relay.stderr
                                                   if "accepting connection" in ln), daemon=True).start()
    try:
        assert env.cluster.cmd(f"host 2 127.0.0.1 {port}") == {"ok": "host"}
        c = CLIENTS["confluent"]
        md = c.metadata(env.bootstrap, prefix=env.client_ns)
        env.proxy.wait_for(rf"broker 2 at 127\.0\.0\.1:\d+ moved to 127\.0\.0\.1:{port}")
        assert next(b for b in md["brokers"] if b["id"] == 2)["port"] == env.public[2][1]
        p = c.produce(env.bootstrap, "orders", 1000, prefix=env.client_ns)
        assert p["acked"] == 1000, (p, relay.poll(), "\n".join(map(str, env.proxy.lines[-40:])))
        r = c.consume(env.bootstrap, "orders", "moved", 1000, prefix=env.client_ns)
        assert r["complete"]
        env.assert_public(md["addresses"] + p["addresses"] + r["addresses"])
        assert relayed, "no connection reached broker 2's new address"
    finally:
        relay.terminate()
        relay.wait()


def test_broker_down_and_up(env):
    c = CLIENTS["kafkajs"]
    assert env.cluster.cmd("down 3") == {"ok": "down"}
    # A client connecting to broker 3 through its tunnel gets its connection closed...
    host, port = env.public[3]
    probe = subprocess.run([*env.client_ns, "/usr/bin/python3", "-c", f"""
import socket
s = socket.create_connection(({host!r}, {port}), timeout=10)
s.settimeout(10)
print(repr(s.recv(10)))
"""], capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "b''", probe
    env.proxy.wait_for(r"could not connect to Kafka broker 3 at 127\.0\.0\.1:\d+: connection refused")
    # ...while the rest keeps being served (the cluster lists the brokers that are up).
    down = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in down["brokers"]] == [1, 2]
    assert env.cluster.cmd("up 3") == {"ok": "up"}
    up = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in up["brokers"]] == [1, 2, 3]
    assert next(b for b in up["brokers"] if b["id"] == 3)["port"] == port  # the same tunnel
    p = c.produce(env.bootstrap, "orders", 1000, prefix=env.client_ns)
    assert p["acked"] == 1000
    r = c.consume(env.bootstrap, "orders", "after-up", 1000, prefix=env.client_ns)
    assert r["complete"]
    env.assert_public(down["addresses"] + up["addresses"] + p["addresses"] + r["addresses"])


# ---- 8. secrets -------------------------------------------------------------------------------

def test_wrong_secret_is_one_attempt_and_one_message(env):
    """The bootstrap tunnel goes first, the brokers' only once it is up: a
    refused secret is one attempt (one line in the server's log) and one
    message, with nothing else that reads like a second fault."""
    mark = len(env.server.lines)
    bad = env.start_proxy(env.cluster.bootstrap.split(",")[0], secret="not the secret", port=0)
    assert bad.wait() == 1
    bad.expect_rc = 1
    assert bad.text().endswith("Error: server error: invalid secret")
    assert bad.text().count("invalid secret") == 1
    assert not re.search(r"ERROR|WARN|cannot resolve|canceled", bad.text()), bad.text()
    env.server.wait_for(r"invalid secret", start=mark)
    # Stopping the server flushes its log: every attempt is in it.
    env.server.p.send_signal(__import__("signal").SIGTERM)
    assert env.server.wait() == 0
    assert sum(" WARN " in ln and "invalid secret" in ln for ln in env.server.lines[mark:] if ln) == 1
    # the good proxy lost its server: it keeps trying to reconnect
    env.proxy.wait_for(r"reconnecting to .* \(attempt 1, next try in", timeout=30)
    assert env.proxy.p.poll() is None


def test_server_going_away_ends_a_no_reconnect_proxy_with_1_the_default_one_reconnects(env):
    nr = env.start_proxy(env.cluster.bootstrap.split(",")[0], port=0, extra=("--no-reconnect",))
    nr.wait_for(r"^bootstrap\.servers=", timeout=20, stdout=True)
    env.server.p.send_signal(__import__("signal").SIGTERM)
    assert env.server.wait() == 0
    assert nr.wait() == 1
    nr.expect_rc = 1
    assert re.search(r"Error: the server closed the tunnel for (bootstrap|broker \d)$", nr.text())
    assert nr.text().count("Error") == 1
    assert "reconnecting" not in nr.text()
    env.proxy.wait_for(r"(bootstrap|broker \d): lost the control connection to .*: the server closed "
                       r"the connection", timeout=30)
    env.proxy.wait_for(r"(bootstrap|broker \d): reconnecting to .* \(attempt 1, next try in", timeout=30)
    assert env.proxy.p.poll() is None


# ---- errors a user can act on ---------------------------------------------------------------

def test_kafka_not_reachable(procs, ns):
    p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", "127.0.0.1:1", "--to", CLUSTER_TO_SERVER])
    assert p.wait() == 1
    p.expect_rc = 1
    assert "Error: Kafka at 127.0.0.1:1: not reachable: connection refused" in p.text()


def test_probe_tries_each_broker_address(dual_ns, procs):
    """`-b dual:PORT`: nothing listens on ::1, the first address; the proxy
    goes on to 127.0.0.1, where a broker that is not Kafka hangs up."""
    fake = subprocess.Popen([*dual_ns, "/usr/bin/python3", "-c", """
import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True)
c, _ = s.accept(); got = b''
while len(got) < 40:  # the probe's ApiVersions + Metadata; closing on unread bytes would reset
    got += c.recv(40 - len(got)) or b'x' * 40
c.close()
"""], stdout=subprocess.PIPE, text=True)
    try:
        port = fake.stdout.readline().strip()
        p = procs.start([*dual_ns, BORE, "kafka-proxy", "-b", f"dual:{port}", "--to", "127.0.0.1"])
        assert p.wait() == 1
        p.expect_rc = 1
        assert (f"Error: Kafka at dual:{port}: the broker closed the connection (is it Kafka, and "
                "plaintext?)") in p.text()
    finally:
        fake.kill()
        fake.wait()


def test_tls_broker_detected(procs, ns):
    # A TLS server answers a plaintext request with an alert record.
    tls = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "-c", """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 39093)); s.listen(); print('ready', flush=True)
c, _ = s.accept(); c.recv(100); c.sendall(bytes([0x15, 3, 3, 0, 2, 2, 0x46])); c.close()
"""], stdout=subprocess.PIPE, text=True)
    assert tls.stdout.readline().strip() == "ready"
    p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", "127.0.0.1:39093", "--to", CLUSTER_TO_SERVER])
    assert p.wait() == 1
    p.expect_rc = 1
    tls.wait(10)
    assert "answered with TLS" in p.text()


def test_server_without_free_ports(procs, ns):
    srv = procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "30000",
                       "--max-port", "30000"])
    srv.wait_for("server listening")
    cluster = KafkaCluster(brokers=2, prefix=ns.prefix("c"))
    try:
        p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", cluster.bootstrap.split(",")[0],
                         "--to", CLUSTER_TO_SERVER])
        assert p.wait() == 1
        p.expect_rc = 1
        assert "server error: failed to find an available port" in p.text()
    finally:
        cluster.stop()


# ---- 5. DescribeCluster, SASL and version caps, against a scripted broker -------------------------

def start_scripted_broker(ns, *args):
    broker = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "tests/tools/scripted_broker.py",
                               *args], stdout=subprocess.PIPE, text=True,
                              cwd=str(__import__("conftest").ROOT))
    return broker, json.loads(broker.stdout.readline())["port"]


@pytest.fixture
def scripted(procs, ns, request):
    high = getattr(request, "param", False)
    broker, port = start_scripted_broker(ns, *(["--high"] if high else []))
    e = Env(procs, ns, brokers=0, bootstrap_of=f"127.0.0.1:{port}")
    e.broker = broker
    yield e
    broker.terminate()
    broker.wait()


def test_describe_cluster_sees_only_public_addresses(scripted):
    r = subprocess.run([*scripted.client_ns, f"{CACHE}/bin/describe_cluster", scripted.bootstrap],
                       capture_output=True, text=True, timeout=60, env=rig_env())
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["nodes"] == [{"id": 1, "host": CLIENT_TO_SERVER, "port": scripted.public[1][1]}]
    assert res["controller"] == 1


@pytest.mark.parametrize("scripted", [True], indirect=True)
def test_api_versions_capped(scripted):
    """The broker offers Metadata, FindCoordinator and DescribeCluster up to
    v99: the client is told the codec's maxima, and still works."""
    r = subprocess.run([*scripted.client_ns, "/usr/bin/python3", "-c", f"""
import json
from kafka import KafkaAdminClient
a = KafkaAdminClient(bootstrap_servers={scripted.bootstrap!r})
c = a._client
node = c.least_loaded_node()
c.poll(future=c.cluster.request_update())
v = c._api_versions
print(json.dumps({{"versions": {{str(k): list(x) for k, x in v.items()}},
                  "brokers": [[b.host, b.port] for b in c.cluster.brokers()]}}))
a.close()
"""], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    assert res["versions"]["3"][1] == 13
    assert res["versions"]["10"][1] == 6
    assert res["versions"]["60"][1] == 2
    assert res["brokers"] == [[CLIENT_TO_SERVER, scripted.public[1][1]]]


def test_sasl_v1_passes_and_v0_is_refused(scripted):
    host, port = CLIENT_TO_SERVER, 9092
    r = subprocess.run([*scripted.client_ns, "/usr/bin/python3", "-c", f"""
import socket, struct
def call(s, key, ver, corr, body=b''):
    hdr = struct.pack('>hhih', key, ver, corr, 4) + b'test'
    s.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
    size = struct.unpack('>i', s.recv(4, socket.MSG_WAITALL))[0]
    return s.recv(size, socket.MSG_WAITALL).hex()
s = socket.create_connection(({host!r}, {port}), timeout=10)
mech = struct.pack('>h', 5) + b'PLAIN'
print(call(s, 17, 1, 1, mech))
print(call(s, 36, 0, 2, struct.pack('>i', 4) + b'\\0a\\0b'))
s2 = socket.create_connection(({host!r}, {port}), timeout=10)
print(call(s2, 17, 0, 3, mech))
"""], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    v1, auth, v0 = r.stdout.split()
    # v1 and SaslAuthenticate: the broker's own answers, byte for byte.
    assert v1 == "00000001" + "0000" + "00000001" + "0005" + b"PLAIN".hex()
    assert auth == "00000002" + "0000" + "ffff" + "00000000"
    # v0: answered by the proxy with UNSUPPORTED_VERSION and no mechanisms.
    assert v0 == "00000003" + "0023" + "00000000"
    scripted.proxy.wait_for("SaslHandshake v0")


def test_request_reusing_an_in_flight_correlation_id_closes_the_connection(scripted):
    """Issue 13, item 1: Produce acks=0 with correlation id 7 (which Kafka,
    like this broker, never answers), then Metadata v1 with id 7 too. Matched
    to the Produce, the Metadata response would reach the client unscanned,
    with the broker's internal address. The proxy closes the connection
    instead, says why, and answers the same Metadata on a fresh connection
    with public addresses only."""
    r = subprocess.run([*scripted.client_ns, "/usr/bin/python3", "-c", f"""
import socket, struct
def frame(key, ver, corr, body):
    hdr = struct.pack('>hhih', key, ver, corr, 4) + b'test'
    return struct.pack('>i', len(hdr) + len(body)) + hdr + body
produce = frame(0, 3, 7, struct.pack('>hhii', -1, 0, 30000, 0))  # no txn, acks=0, no topics
metadata = lambda corr: frame(3, 1, corr, struct.pack('>i', -1))
s = socket.create_connection(({CLIENT_TO_SERVER!r}, 9092), timeout=10)
s.sendall(produce)
s.sendall(metadata(7))
try:
    got = s.recv(65536)  # EOF, or the first byte of a response
except ConnectionResetError:
    got = b''
print(got.hex())
s2 = socket.create_connection(({CLIENT_TO_SERVER!r}, 9092), timeout=10)
s2.sendall(metadata(8))
size = struct.unpack('>i', s2.recv(4, socket.MSG_WAITALL))[0]
print(s2.recv(size, socket.MSG_WAITALL).hex())
"""], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    first, fresh = r.stdout.split("\n")[:2]
    assert first == "", f"a response reached the client: {bytes.fromhex(first)!r}"
    scripted.proxy.wait_for(r"closing a client connection.*: request \(api 3 v1\) reuses correlation id 7")
    fresh = bytes.fromhex(fresh)
    assert fresh[:4] == struct.pack(">i", 8)
    assert CLIENT_TO_SERVER.encode() in fresh and b"127.0.0.1" not in fresh


def test_a_cluster_naming_more_than_1024_brokers_is_refused(procs, ns):
    """Every broker a cluster names costs the proxy a tunnel: a broker that
    names 1,100 is refused at start, before any tunnel is opened for them."""
    broker, port = start_scripted_broker(ns, "--brokers", "1100")
    try:
        srv = procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port",
                           "9000", "--max-port", "29999"])
        srv.wait_for("server listening")
        p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", f"127.0.0.1:{port}", "--to",
                         CLUSTER_TO_SERVER])
        assert p.wait(60) == 1
        p.expect_rc = 1
        assert "the cluster names more brokers than the proxy tunnels (1024)" in p.text()
    finally:
        broker.terminate()
        broker.wait()


# ---- acks=0, pipelining, large frames -------------------------------------------------------------

def test_acks0_and_large_messages(env):
    """kcat (librdkafka 2.15) pipelines produce requests with acks=0 (no
    responses: the correlation queue must not expect any), then sends and
    fetches messages of 900 KB (multi-megabyte Fetch v16 frames, buffered
    and read in place by the proxy)."""
    kcat = CLIENTS["kcat"]
    small = "".join(f"k{i}:v{i}\n" for i in range(3000))
    kcat._kcat(env.bootstrap, "-P", "-t", "orders", "-K", ":", "-X", "acks=0", stdin=small,
               prefix=env.client_ns)
    big = "".join(f"big{i}:{chr(97 + i) * 900_000}\n" for i in range(6))
    kcat._kcat(env.bootstrap, "-P", "-t", "orders", "-K", ":", "-X", "acks=all",
               "-X", "message.max.bytes=2000000", stdin=big, prefix=env.client_ns)
    out = kcat._kcat(env.bootstrap, "-C", "-t", "orders", "-o", "beginning", "-e", "-q",
                     "-f", "%k %S\\n", "-X", "fetch.message.max.bytes=4000000",
                     "-X", "fetch.max.bytes=8000000", "-X", "receive.message.max.bytes=9000000",
                     prefix=env.client_ns)
    lines = out.split("\n")
    keys = {ln.split(" ")[0] for ln in lines if ln}
    # acks=0 gives no delivery guarantee, but on a quiet loopback every message arrives.
    assert {f"k{i}" for i in range(3000)} <= keys
    sizes = {ln.split(" ")[0]: int(ln.split(" ")[1]) for ln in lines if ln.startswith("big")}
    assert sizes == {f"big{i}": 900_000 for i in range(6)}
    # A last request through the proxy, logged after everything above was
    # relayed: then no connection was closed for a framing or matching error.
    mark = len(env.proxy.lines)
    kcat.addresses(env.bootstrap, prefix=env.client_ns)
    env.proxy.wait_for(r"request api 3 v\d+ correlation", start=mark)
    assert "closing a client connection" not in env.proxy.text()


# ---- the README's promises around a scripted broker -----------------------------------------------

def raw_call(prefix, host, port, key, ver, body, flex):
    """One request on a fresh connection from the client namespace: the
    response body (after the correlation id and, when `flex`, its tags) as
    bytes, or None if the connection ended without an answer."""
    r = subprocess.run([*prefix, "/usr/bin/python3", "-c", f"""
import socket, struct, sys
hdr = struct.pack('>hhih', {key}, {ver}, 7, 4) + b'test' + (b'\\0' if {flex} else b'')
s = socket.create_connection(({host!r}, {port}), timeout=10)
s.sendall(struct.pack('>i', len(hdr) + {len(body)}) + hdr + bytes.fromhex({body.hex()!r}))
head = s.recv(4, socket.MSG_WAITALL)
if len(head) < 4:
    print('EOF'); sys.exit()
size = struct.unpack('>i', head)[0]
print(s.recv(size, socket.MSG_WAITALL).hex())
"""], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.strip()
    if out == "EOF":
        return None
    data = bytes.fromhex(out)
    assert data[:4] == (7).to_bytes(4, "big")
    return data[5:] if flex else data[4:]


def test_describe_quorum_hides_controller_addresses(scripted):
    """DescribeQuorum v2 lists the KRaft controllers' listeners; they are not
    tunnelled, so the proxy gives the public host with port 0, never the
    internal address."""
    topics = bytes([2]) + bytes([len("__cluster_metadata") + 1]) + b"__cluster_metadata" + \
        bytes([2]) + (0).to_bytes(4, "big") + b"\0" + b"\0"
    body = raw_call(scripted.client_ns, CLIENT_TO_SERVER, 9092, 55, 2, topics + b"\0", flex=True)
    assert body is not None
    public = bytes([len(CLIENT_TO_SERVER) + 1]) + CLIENT_TO_SERVER.encode()
    listener = bytes([len("CONTROLLER") + 1]) + b"CONTROLLER" + public + (0).to_bytes(2, "big")
    assert body.endswith(listener + b"\0" + b"\0" + b"\0"), body.hex()
    assert b"127.0.0.1" not in body


def test_client_speaking_tls_to_a_public_port_is_told_and_logged(scripted):
    r = subprocess.run([*scripted.client_ns, "/usr/bin/python3", "-c", f"""
import socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection(({CLIENT_TO_SERVER!r}, 9092), timeout=10)
try:
    ctx.wrap_socket(s).do_handshake()
    print('handshake done')
except (ssl.SSLError, OSError) as e:
    print('refused', type(e).__name__)
"""], capture_output=True, text=True, timeout=30)
    assert r.stdout.startswith("refused"), (r.stdout, r.stderr)
    scripted.proxy.wait_for(r"WARN .*closing a client connection.*: client speaks TLS to a plaintext port")


@pytest.fixture
def scripted_broker(ns):
    broker = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "tests/tools/scripted_broker.py"],
                              stdout=subprocess.PIPE, text=True, cwd=str(__import__("conftest").ROOT))
    yield json.loads(broker.stdout.readline())["port"]
    broker.terminate()
    broker.wait()


def test_advertised_host_defaults_to_the_to_host_and_sigint_stops_with_0(procs, ns, scripted_broker):
    """Without --advertised-host clients are given the --to host; the secret
    (from BORE_SECRET) appears in no log line at trace, of the proxy or the
    server; SIGINT ends the proxy with 0."""
    srv = procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "9000",
                       "--max-port", "29999"], env={"BORE_SECRET": SECRET, "BORE_LOG": "trace"})
    srv.wait_for("server listening")
    px = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", f"127.0.0.1:{scripted_broker}",
                      "--to", CLUSTER_TO_SERVER], env={"BORE_SECRET": SECRET, "BORE_LOG": "trace"})
    m = px.wait_for(r"^bootstrap\.servers=(\S+)$", timeout=20, stdout=True)
    assert m.group(1).startswith(f"{CLUSTER_TO_SERVER}:")
    assert re.search(rf"^\s+1\s+{re.escape(CLUSTER_TO_SERVER)}:\d+\s+127\.0\.0\.1:{scripted_broker}\s+ok$",
                     px.stdout_text(), re.M)
    px.p.send_signal(__import__("signal").SIGINT)
    assert px.wait() == 0
    assert srv.stop() == 0
    for text in (px.text(), px.stdout_text(), srv.text()):
        assert SECRET not in text


def test_heartbeat_timeout_ends_a_no_reconnect_proxy_when_the_server_goes_silent(procs, ns, scripted_broker):
    import signal
    srv = procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "9000",
                       "--max-port", "29999"])
    srv.wait_for("server listening")
    px = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", f"127.0.0.1:{scripted_broker}",
                      "--to", CLUSTER_TO_SERVER, "--heartbeat-timeout", "1", "--no-reconnect"])
    px.wait_for(r"^bootstrap\.servers=", timeout=20, stdout=True)
    srv.p.send_signal(signal.SIGSTOP)
    try:
        assert px.wait(timeout=10) == 1
    finally:
        srv.p.send_signal(signal.SIGCONT)
    px.expect_rc = 1
    assert "no heartbeat from" in px.text()


def test_max_frame_size_closes_a_connection_whose_response_is_larger(procs, ns, scripted_broker):
    """--max-frame-size: a response over it is never buffered; the client's
    connection is closed and the proxy says why. (The start-up probe is not
    subject to it: it buffers at most its own small answers.)"""
    srv = procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "9000",
                       "--max-port", "29999"])
    srv.wait_for("server listening")
    px = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", f"127.0.0.1:{scripted_broker}",
                      "--to", CLUSTER_TO_SERVER, "--advertised-host", CLIENT_TO_SERVER, "-p", "9092",
                      "--max-frame-size", "1024"])
    px.wait_for(r"^bootstrap\.servers=", timeout=20, stdout=True)
    # Metadata v2 for topic "big": the scripted broker answers with over 2000 bytes.
    assert raw_call(ns.prefix("u"), CLIENT_TO_SERVER, 9092, 3, 2, (1).to_bytes(4, "big") + b"\0\3big",
                    flex=False) is None
    px.wait_for(r"WARN .*closing a client connection.*: response size is negative or over the cap")


def test_broker_that_never_answers_is_reported_after_10s(procs, ns):
    silent = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "-c", """
import socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True)
c, _ = s.accept(); sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = silent.stdout.readline().strip()
        t0 = time.monotonic()
        p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", f"127.0.0.1:{port}", "--to",
                         CLUSTER_TO_SERVER])
        assert p.wait(timeout=20) == 1
        p.expect_rc = 1
        assert 9.5 < time.monotonic() - t0 < 14
        assert f"Error: Kafka at 127.0.0.1:{port}: no answer within 10 s" in p.text()
    finally:
        silent.kill()
        silent.wait()
