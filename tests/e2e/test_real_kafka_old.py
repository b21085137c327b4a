"""kafka-proxy in front of the older line, Apache Kafka 3.9.2 (the last 3.x),
KRaft, 3 brokers (issue 8): metadata, produce and consume, and a consumer
group, with every client. The Java client is 4.4's (what users upgrade to
first); the broker's own ApiVersions decide what each client speaks."""
import pytest

from kafka_rig import CLIENTS, JAVA
from real_rig import OLD_VERSION, real_kafka_fixtures

REAL_CLIENTS = {"java": JAVA, **CLIENTS}
N = 10_000


real, env = real_kafka_fixtures(version=OLD_VERSION, topics=["orders:6"])


def test_the_cluster_is_the_older_line(real):
    with open(real.brokers_[1].log_path, errors="replace") as f:
        assert f"Kafka version: {OLD_VERSION}" in f.read()


@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_older_line_metadata_produce_consume_and_group(env, name):
    c = REAL_CLIENTS[name]
    md = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    for b in md["brokers"]:
        assert (b["host"], b["port"]) == env.public[b["id"]]
    topic = f"old-{name}"
    env.real.topic(topic, 6)
    p = c.produce(env.bootstrap, topic, N, prefix=env.client_ns)
    assert p["acked"] == N and not p["errors"], p
    # A group: the first member reads part, commits and leaves; the next resumes.
    a = c.consume(env.bootstrap, topic, f"g-{name}", 3000, prefix=env.client_ns, exact=True)
    b = c.consume(env.bootstrap, topic, f"g-{name}", N - len(a["indices"]), prefix=env.client_ns)
    assert not set(a["indices"]) & set(b["indices"])
    assert set(a["indices"]) | set(b["indices"]) == set(range(N))
    env.assert_public(md["addresses"] + p["addresses"] + a["addresses"] + b["addresses"])
