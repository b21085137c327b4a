"""The Kafka test rig itself (issue 3): four real clients directly against a
3-broker cluster, and every launcher command shown through a real client."""
import socket

import pytest

from kafka_rig import CLIENTS, KafkaCluster, LIBRDKAFKA, rig_env

N = 10000


@pytest.fixture
def cluster():
    c = KafkaCluster(brokers=3, topics=["orders:6"])
    yield c
    assert c.stop() == 0, "".join(c.err)


@pytest.mark.parametrize("name", list(CLIENTS))
def test_client_directly_against_three_brokers(cluster, name):
    client = CLIENTS[name]
    md = client.metadata(cluster.bootstrap)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    assert set(md["topics"]["orders"].values()) == {1, 2, 3}  # leaders on every broker
    assert len(md["topics"]["orders"]) == 6

    p = client.produce(cluster.bootstrap, "orders", N)
    assert p["acked"] == N and not p["errors"], p
    c = client.consume(cluster.bootstrap, "orders", f"group-{name}", N)
    assert c["complete"] and c["count"] == N and c["duplicates"] == 0, c


def test_add_broker(cluster):
    assert cluster.cmd("add 4") == {"ok": "add"}
    md = CLIENTS["confluent"].metadata(cluster.bootstrap)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3, 4]


def test_decommission_broker(cluster):
    assert cluster.cmd("decommission 3") == {"ok": "decommission"}
    md = CLIENTS["kafka-python"].metadata(cluster.bootstrap)
    assert [b["id"] for b in md["brokers"]] == [1, 2]


def test_move_leader(cluster):
    before = CLIENTS["kcat"].metadata(cluster.bootstrap)["topics"]["orders"]["0"]
    new = 3 if before != 3 else 2
    assert cluster.cmd(f"leader orders 0 {new}") == {"ok": "leader"}
    assert CLIENTS["kcat"].metadata(cluster.bootstrap)["topics"]["orders"]["0"] == new


def test_change_host_port(cluster):
    assert cluster.cmd("host 2 broker-two.example 19092") == {"ok": "host"}
    md = CLIENTS["kafkajs"].metadata(cluster.bootstrap.split(",")[0])
    b2 = next(b for b in md["brokers"] if b["id"] == 2)
    assert (b2["host"], b2["port"]) == ("broker-two.example", 19092)


def test_down_and_up(cluster):
    b1 = cluster.broker(1)
    addr = f"{b1['host']}:{b1['port']}"
    assert cluster.cmd("down 1") == {"ok": "down"}
    with pytest.raises(OSError):
        socket.create_connection((b1["host"], b1["port"]), timeout=2)
    with pytest.raises(AssertionError):  # a client bootstrapping from it alone fails
        CLIENTS["kcat"]._kcat(addr, "-L", "-J", "-m", "3")
    assert cluster.cmd("up 1") == {"ok": "up"}
    md = CLIENTS["kcat"].metadata(addr)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]


def test_pin_coordinator(cluster):
    from kafka import KafkaAdminClient
    assert cluster.cmd("coordinator group pinned-group 3") == {"ok": "coordinator"}
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        assert admin._find_coordinator_ids(["pinned-group"]) == {"pinned-group": 3}
    finally:
        admin.close()
    assert cluster.cmd("coordinator transaction tx-1 2") == {"ok": "coordinator"}


def test_cap_api_versions(cluster):
    import subprocess
    assert cluster.cmd("apiversion 3 0 4") == {"ok": "apiversion"}
    env = rig_env()
    env["LD_LIBRARY_PATH"] = LIBRDKAFKA
    r = subprocess.run(["kcat", "-b", cluster.bootstrap, "-L", "-X", "debug=protocol"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "Sent MetadataRequest (v4" in r.stderr, r.stderr[-2000:]


def test_malformed_command(cluster):
    assert "error" in cluster.cmd("frobnicate 1")
    assert "error" in cluster.cmd("leader orders x 1")
    assert cluster.cmd("brokers")["brokers"]  # still serving


def test_launcher_binds_the_given_address():
    c = KafkaCluster(brokers=2, address="127.0.0.77")
    try:
        assert all(b["host"] == "127.0.0.77" for b in c.brokers())
        md = CLIENTS["confluent"].metadata(c.bootstrap)
        assert [b["id"] for b in md["brokers"]] == [1, 2]
    finally:
        assert c.stop() == 0
