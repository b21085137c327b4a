"""kafka-proxy in front of real Apache Kafka 4.4.0 (issue 8): one cluster of a
controller and 3 brokers (tests/tools/kafka_real.py, one JVM per node) for
the whole module, in the cluster namespace with kafka-proxy; the tunnel
server in its own; every client in the client namespace, which can reach
the brokers only through the public ports. Every test checks, from the
client's own view of the cluster, that it never learned an internal
address."""
import json
import re
import subprocess
import time

import pytest

from kafka_rig import CLIENTS, JAVA, verify
from netns import CLIENT_TO_SERVER
from real_rig import real_kafka_fixtures, tool_command

N = 100_000
REAL_CLIENTS = {"java": JAVA, **CLIENTS}


real, env = real_kafka_fixtures(topics=["orders:6"])


@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_metadata_lists_only_public_addresses(env, name):
    md = REAL_CLIENTS[name].metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    for b in md["brokers"]:
        assert (b["host"], b["port"]) == env.public[b["id"]]
    assert set(md["topics"]["orders"].values()) == {1, 2, 3}
    env.assert_public(md["addresses"])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_100000_messages_produced_and_consumed_back(env, name):
    """Idempotent where the client supports it; the consumer reads back what
    the brokers stored: every key once, every value the one sent for it."""
    c = REAL_CLIENTS[name]
    topic = f"load-{name}"
    env.real.topic(topic, 6)
    p = c.produce(env.bootstrap, topic, N, prefix=env.client_ns)
    assert p["acked"] == N and not p["errors"], {k: p[k] for k in p if k != "addresses"}
    r = c.consume(env.bootstrap, topic, f"g-{name}", N, prefix=env.client_ns, timeout=120)
    assert r["complete"] and r["count"] == N and r["duplicates"] == 0, \
        {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])


def received(members):
    return [(k, v) for m in members for _, k, v in m.lines]


def wait_members(members, pred, timeout):
    """Until pred(members) holds: members are separate processes, so their
    output is polled (each read wakes its own member's condition only)."""
    deadline = time.monotonic() + timeout
    while not pred(members):
        if time.monotonic() > deadline:
            return False
        members[0].wait_count(len(members[0].lines) + 1, 0.1)
    return True


def indices(members):
    return {int(k[1:]) for k, _ in received(members)}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("protocol", ["classic", "consumer"])
@pytest.mark.parametrize("name", ["java", "kcat"])
def test_group_of_three_rebalances_when_a_member_leaves(env, name, protocol):
    """Three members share a topic's six partitions (the classic protocol,
    or KIP-848's `group.protocol=consumer`); one leaves, the other two take
    over its partitions from its committed offsets; after all have left, a
    new member of the group resumes where the group committed."""
    c = REAL_CLIENTS[name]
    topic, group = f"grp-{name}-{protocol}", f"three-{name}-{protocol}"
    env.real.topic(topic, 6)
    members = [c.stream(env.bootstrap, topic, group, prefix=env.client_ns, group_protocol=protocol)
               for _ in range(3)]
    try:
        # Members join one after the other: produce in rounds until every one
        # of them has been given partitions and read from them.
        n = 0
        while n < 20_000 and not all(m.lines for m in members):
            _produce_range(env, topic, n, n + 500)
            n += 500
            wait_members(members, lambda ms: all(m.lines for m in ms), 3)
        assert all(m.lines for m in members), [len(m.lines) for m in members]
        assert wait_members(members, lambda ms: indices(ms) >= set(range(n)), 90)
        assert members[0].stop() == 0  # commits and leaves the group
        _produce_range(env, topic, n, n + 3000)
        n += 3000
        assert wait_members(members, lambda ms: indices(ms) >= set(range(n)), 120), \
            sorted(set(range(n)) - indices(members))[:10]
    finally:
        for m in members:
            m.stop()
    got = verify(received(members), n)
    assert got["complete"], {k: got[k] for k in got if k != "indices"}
    if name == "java":  # commits before each poll: a clean hand-over repeats nothing
        assert got["duplicates"] == 0, got["duplicates"]
    # Committed offsets: a new member of the group gets only what came after.
    _produce_range(env, topic, n, n + 500)
    late = c.consume(env.bootstrap, topic, group, 500, prefix=env.client_ns, timeout=60)
    assert late["indices"] == list(range(n, n + 500)), {k: late[k] for k in late if k != "indices"}


def _produce_range(env, topic, start, end):
    r = JAVA.produce(env.bootstrap, topic, end - start, prefix=env.client_ns, start=start)
    assert r["acked"] == end - start, r


def test_java_transactions_read_committed(env):
    """Commit one transaction (0..499), abort another (500..799): a
    read_committed consumer (Java, and librdkafka via kcat) sees exactly the
    committed records, a read_uncommitted one all 800 (the aborted records
    were written: only the transaction markers keep them out)."""
    env.real.topic("txn", 6)
    r = JAVA.txn(env.bootstrap, "txn", 500, 300, "txn-java", prefix=env.client_ns)
    everything = JAVA.consume(env.bootstrap, "txn", "ru-java", 800, timeout=30, prefix=env.client_ns)
    assert everything["indices"] == list(range(800)), {k: everything[k] for k in everything
                                                       if k != "indices"}
    for name in ("java", "kcat"):
        got = REAL_CLIENTS[name].consume(env.bootstrap, "txn", f"rc-{name}", 800, timeout=15,
                                         committed=True, prefix=env.client_ns)
        assert got["indices"] == list(range(500)) and got["duplicates"] == 0, \
            {k: got[k] for k in got if k != "indices"}
        env.assert_public(got["addresses"])
    env.assert_public(r["addresses"])


def test_kafka_python_transactions_read_committed(env):
    """kafka-python 2.3.3: its transactional producer commits 0..499 and
    aborts 500..799 through the proxy; its read_committed consumer sees
    exactly the committed records, its read_uncommitted one all 800 (the
    aborted records were written: only the markers keep them out)."""
    env.real.topic("txn-kp", 6)
    kp = REAL_CLIENTS["kafka-python"]
    r = kp.txn(env.bootstrap, "txn-kp", 500, 300, "txn-kafka-python", prefix=env.client_ns)
    env.assert_public(r["addresses"])
    got = kp.consume(env.bootstrap, "txn-kp", "rc-kp", 800, timeout=15, committed=True,
                     prefix=env.client_ns)
    assert got["indices"] == list(range(500)) and got["duplicates"] == 0, \
        {k: got[k] for k in got if k != "indices"}
    everything = kp.consume(env.bootstrap, "txn-kp", "ru-kp", 800, timeout=30, prefix=env.client_ns)
    assert everything["indices"] == list(range(800)), {k: everything[k] for k in everything
                                                       if k != "indices"}
    env.assert_public(got["addresses"] + everything["addresses"])


def test_share_group_delivers_and_acknowledges(env):
    """KIP-932: a KafkaShareConsumer reads and acknowledges through the
    proxy (ShareFetch / ShareAcknowledge, whose NodeEndpoints are rewritten)."""
    env.real.topic("shared", 3)
    assert JAVA.produce(env.bootstrap, "shared", 2000, prefix=env.client_ns)["acked"] == 2000
    r = JAVA.share_consume(env.bootstrap, "shared", "share-1", 2000, prefix=env.client_ns)
    assert r["complete"] and r["acknowledged"] >= 2000, {k: r[k] for k in r if k != "indices"}
    env.assert_public(r["addresses"])


def test_admin_calls_see_only_public_addresses(env):
    """describeCluster, describeMetadataQuorum, describeTopics, createTopics,
    listGroups/describeGroups through the proxy: brokers and group
    coordinators have public addresses; the controllers' (not tunnelled) are
    hidden behind the public host with port 0."""
    JAVA.produce(env.bootstrap, "orders", 100, prefix=env.client_ns)
    JAVA.consume(env.bootstrap, "orders", "admin-seen", 100, prefix=env.client_ns)
    r = JAVA.admin(env.bootstrap, "admin-made", prefix=env.client_ns)
    assert [b["id"] for b in r["brokers"]] == [1, 2, 3]
    assert r["created"] is True and "admin-made" in r["topics"]
    assert "error" not in r["quorum"] and r["quorum"]["nodes"], r["quorum"]
    assert "admin-seen" in r["groups"], r["groups"]
    brokers = [a for a in r["addresses"] if not a.endswith(":0")]
    env.assert_public(brokers)
    hidden = [a for a in r["addresses"] if a.endswith(":0")]
    assert hidden and all(a == f"{CLIENT_TO_SERVER}:0" for a in hidden), hidden
    assert "127.0.0.1" not in json.dumps(r)


def kafka_tool(env, main, *args, stdin=None, timeout=120):
    r = subprocess.run(tool_command(main, *args, prefix=env.client_ns), input=stdin, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"{main} failed ({r.returncode}):\n{r.stderr[-3000:]}"
    return r.stdout


def test_kafka_command_line_tools_through_the_public_bootstrap(env):
    """kafka-topics, the console producer and consumer and the perf tools
    (Kafka's own kafka-tools classes) given only the public bootstrap."""
    bs = env.bootstrap
    kafka_tool(env, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bs, "--create",
               "--topic", "cli", "--partitions", "3", "--replication-factor", "3")
    described = kafka_tool(env, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bs,
                           "--describe", "--topic", "cli")
    assert len(re.findall(r"Partition: \d+\s+Leader: [123]\s", described)) == 3, described
    lines = "".join(f"key{i}:value{i}\n" for i in range(1000))
    kafka_tool(env, "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", bs, "--topic", "cli",
               "--reader-property", "parse.key=true", "--reader-property", "key.separator=:", stdin=lines)
    out = kafka_tool(env, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", bs,
                     "--topic", "cli", "--from-beginning", "--max-messages", "1000",
                     "--formatter-property", "print.key=true", "--formatter-property", "key.separator=:")
    assert sorted(out.split()) == sorted(lines.split())
    perf = kafka_tool(env, "org.apache.kafka.tools.ProducerPerformance", "--topic", "cli",
                      "--num-records", "20000", "--record-size", "100", "--throughput", "-1",
                      "--producer-props", f"bootstrap.servers={bs}", "acks=all")
    assert re.search(r"^20000 records sent", perf, re.M), perf
    cperf = kafka_tool(env, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bs,
                       "--topic", "cli", "--messages", "21000", "--timeout", "60000")
    assert re.search(r",\s*21000,", cperf.splitlines()[-1]), cperf  # data.consumed.in.nMsg
