"""kafka-proxy while real Apache Kafka 4.4.0 brokers fail, restart and join
(issue 8): paced idempotent producers and a consumer group keep running
through the proxy while the cluster changes; afterwards every message is in
the log exactly once (read back by a fresh group: key and sequence checks),
and the running group lost nothing. Leaders that move put KIP-951 leader
hints (NodeEndpoints) in Produce and Fetch responses: the proxy must have
rewritten real ones. One cluster for the module; the tests leave it as they
found it (three brokers up), except the last, which adds a fourth."""
import re
import threading
import time

import pytest

from kafka_rig import CLIENTS, JAVA, verify
from real_rig import real_kafka_fixtures

PRODUCERS = {"java": JAVA, "confluent": CLIENTS["confluent"]}
ROLL = 150_000  # paced: about 60 s of production, across the three restarts
pytestmark = pytest.mark.timeout(600)  # a cluster start, then minutes of paced load
HINT = r"leader hint \(NodeEndpoints\): broker (\d+) at 127\.0\.0\.1:\d+ rewritten to 192\.0\.2\.6:(\d+)"


real, env = real_kafka_fixtures()


class Background:
    """A client call running in a thread (its own process inside)."""

    def __init__(self, fn, *args, **kw):
        self.result = self.error = None
        self.t = threading.Thread(target=self._run, args=(fn, args, kw), daemon=True)
        self.t.start()

    def _run(self, fn, args, kw):
        try:
            self.result = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - re-raised in get()
            self.error = e

    def running(self):
        return self.t.is_alive()

    def get(self, timeout=300):
        self.t.join(timeout)
        assert not self.t.is_alive(), "the client did not finish"
        if self.error:
            raise self.error
        return self.result


def exactly_once_in_log(env, topic, count, group):
    """A fresh group reads the whole topic: every key once, every value the
    one sent for its key."""
    r = JAVA.consume(env.bootstrap, topic, group, count, prefix=env.client_ns, timeout=120)
    assert r["complete"] and r["count"] == count and r["duplicates"] == 0, \
        {k: r[k] for k in r if k != "indices"}
    env.assert_public(r["addresses"])


def start_load(env, name, topic, count, pace):
    """A paced idempotent producer and a one-member consumer group; returns
    them once the group has received a first record (so the producer's
    first batch was acknowledged before the cluster changes)."""
    env.real.topic(topic, 6)
    group = JAVA.stream(env.bootstrap, topic, f"{topic}-readers", prefix=env.client_ns)
    producer = Background(PRODUCERS[name].produce, env.bootstrap, topic, count, prefix=env.client_ns,
                          pace=pace)
    assert group.wait_count(1, 90) >= 1, "nothing consumed: the producer never got started"
    return producer, group


def finish_load(env, producer, group, topic, count):
    res = producer.get()
    assert res["acked"] == count and not res["errors"], {k: res[k] for k in res if k != "addresses"}
    env.assert_public(res["addresses"])
    want = {f"k{i}" for i in range(count)}
    assert group.wait_for(lambda lines: len(lines) >= count and {k for _, k, _ in lines} >= want, 120), \
        "the running group lost messages"
    assert group.stop() == 0
    got = verify([(k, v) for _, k, v in group.lines], count)
    assert got["complete"], {k: got[k] for k in got if k != "indices"}
    exactly_once_in_log(env, topic, count, f"{topic}-check")


def wait_in_sync(env, topics):
    """Until every partition of `topics` has all its replicas in sync."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(len(p["isr"]) == len(p["replicas"]) for t in topics for p in env.real.describe(t).values()):
            return
        time.sleep(0.5)
    raise AssertionError("replicas not back in sync after 120 s")


def prefer_original_leaders(env, topic):
    """A preferred election on every partition: leadership returns to a
    restarted broker, and producers still writing to the interim leader get
    NOT_LEADER_OR_FOLLOWER with a KIP-951 leader hint."""
    for p in env.real.describe(topic):
        env.real.admin(f"elect {topic} {p}")


@pytest.mark.parametrize("name", list(PRODUCERS))
def test_broker_killed_under_load_every_message_once(env, name):
    mark = len(env.proxy.lines)
    topic = f"kill-{name}"
    producer, group = start_load(env, name, topic, 30_000, pace=0.15)
    env.real.stop_broker(2, kill=True)          # SIGKILL: no controlled shutdown
    env.real.start_broker(2)
    wait_in_sync(env, [topic])
    prefer_original_leaders(env, topic)
    assert producer.running(), "the producer finished before the cluster changed: not a test under load"
    finish_load(env, producer, group, topic, 30_000)
    # The proxy saw the real broker's leader hints and gave the clients public addresses.
    env.proxy.wait_for(HINT, timeout=1, start=mark)
    for node, port in re.findall(HINT, "\n".join(x for x in env.proxy.lines[mark:] if x)):
        assert int(port) == env.public[int(node)][1]


def test_rolling_restart_loses_and_duplicates_nothing(env):
    """Each broker in turn stopped cleanly and started again, waiting for
    its replicas to catch up, while Java and librdkafka producers run."""
    mark = len(env.proxy.lines)
    loads = {name: start_load(env, name, f"roll-{name}", ROLL, pace=0.2) for name in PRODUCERS}
    for node in (1, 2, 3):
        assert all(p.running() for p, _ in loads.values()), f"a producer finished before broker {node} restarted"
        env.real.stop_broker(node, kill=False)
        env.real.start_broker(node)
        wait_in_sync(env, [f"roll-{name}" for name in PRODUCERS])
        for name in PRODUCERS:
            prefer_original_leaders(env, f"roll-{name}")
    for name, (producer, group) in loads.items():
        finish_load(env, producer, group, f"roll-{name}", ROLL)
    env.proxy.wait_for(HINT, timeout=1, start=mark)


def test_fourth_broker_added_and_partitions_moved_to_it(env):
    """A broker joins at run time and partitions move onto it while a
    producer runs: the proxy opens its tunnel as soon as a response names
    it, and clients produce to and consume from it through that tunnel."""
    topic = "grow"
    producer, group = start_load(env, "java", topic, 20_000, pace=0.15)
    node = env.real.add_broker()
    assert node == 4
    for p in (0, 1, 2):
        env.real.reassign(topic, p, [4, 1, 2])
        env.real.admin(f"elect {topic} {p}")
    assert producer.running()
    finish_load(env, producer, group, topic, 20_000)
    m = env.proxy.wait_for(r"broker 4 is public at 192\.0\.2\.6:(\d+)", timeout=30)
    public4 = int(m.group(1))
    md = JAVA.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3, 4]
    assert next(b for b in md["brokers"] if b["id"] == 4)["port"] == public4
    assert {md["topics"][topic][str(p)] for p in (0, 1, 2)} == {4}
    env.assert_public(md["addresses"])
    # A librdkafka client too, new to the cluster, through broker 4's tunnel.
    kcat = CLIENTS["kcat"]
    assert kcat.produce(env.bootstrap, topic, 3000, prefix=env.client_ns, start=20_000)["acked"] == 3000
    exactly_once_in_log(env, topic, 23_000, "grow-all")
