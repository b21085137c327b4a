"""kafka-proxy in front of a real Apache Kafka 4.4.0 cluster run the way
containerised clusters are (issue 15): each broker's CLIENT listener
advertises kafka-N.internal.example:2909N, a name that does not resolve in
the proxy's namespace and a port nothing listens on, while the broker
listens on 127.0.0.1:1909N (brokers reach each other over INTERNAL). Without
maps the pre-flight marks every broker `unresolvable` with its advice and
--check exits 1; with --map, by address or by node id, --check exits 0 and
every client produces and consumes through the proxy."""
import re
import subprocess

import pytest

from conftest import BORE
from kafka_env import Env
from kafka_rig import CLIENTS, JAVA
from real_rig import real_cluster

REAL_CLIENTS = {"java": JAVA, **CLIENTS}
BROKERS = (1, 2, 3)


def advertised(node_id):
    return f"kafka-{node_id}.internal.example:{29090 + node_id}"


def maps(real, key):
    """--map options for every broker: by advertised address or by node id."""
    out = []
    for i in BROKERS:
        left = advertised(i) if key == "address" else str(i)
        out += ["--map", f"{left}={real.address(i)}"]
    return out


@pytest.fixture(scope="module")
def real(ns):
    yield from real_cluster(ns, topics=["orders:6"], advertise=advertised)


def check(ns, real, *extra):
    return subprocess.run([*ns.prefix("c"), BORE, "kafka-proxy", "--check", "-b", real.address(1), *extra],
                          capture_output=True, text=True, timeout=60)


def test_check_without_maps_marks_each_broker_unresolvable_and_exits_1(ns, real):
    r = check(ns, real)
    assert r.returncode == 1, r
    assert re.search(rf"^  bootstrap\s+{re.escape(real.address(1))}\s+ok$", r.stdout, re.M), r.stdout
    for i in BROKERS:
        assert re.search(rf"^  {i}\s+{re.escape(advertised(i))}\s+unresolvable$", r.stdout, re.M), r.stdout
        assert (f"broker {i} advertises {advertised(i)}, which does not resolve here: add --map "
                f"{advertised(i)}=<host>:<port>") in r.stdout
    assert r.stdout.rstrip().endswith("3 of 4 addresses failed the pre-flight")


@pytest.mark.parametrize("key", ["address", "node-id"])
def test_check_with_maps_exits_0(ns, real, key):
    r = check(ns, real, *maps(real, key))
    assert r.returncode == 0, r
    for i in BROKERS:
        assert re.search(rf"^  {i}\s+{re.escape(advertised(i))}\s+{re.escape(real.address(i))}\s+ok$",
                         r.stdout, re.M), r.stdout
    assert r.stdout.rstrip().endswith("every address is reachable")


@pytest.fixture(scope="module")
def by_address(module_procs, ns, real):
    """The tunnel server, and a proxy with a map by address for every broker."""
    return Env(module_procs, ns, brokers=0, bootstrap_of=real.address(1),
               proxy_args=maps(real, "address"))


@pytest.fixture(scope="module")
def by_node_id(module_procs, ns, real, by_address):
    """A second proxy on the same server, with a map by node id for every broker."""
    return Env(module_procs, ns, brokers=0, bootstrap_of=real.address(1),
               proxy_args=maps(real, "node-id"), server=by_address.server, port=9093)


def test_proxy_without_maps_starts_and_marks_the_brokers(procs, ns, real, by_address):
    env = Env(procs, ns, brokers=0, bootstrap_of=real.address(1), server=by_address.server, port=9094)
    out = env.proxy.stdout_text()
    for i in BROKERS:
        assert re.search(rf"^  {i}\s+192\.0\.2\.6:\d+\s+{re.escape(advertised(i))}\s+unresolvable$",
                         out, re.M), out
        assert f"broker {i} advertises {advertised(i)}, which does not resolve here" in out


@pytest.mark.parametrize("key", ["address", "node-id"])
@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_every_client_produces_and_consumes_through_mapped_brokers(request, real, name, key):
    env = request.getfixturevalue("by_address" if key == "address" else "by_node_id")
    out = env.proxy.stdout_text()
    for i in BROKERS:
        assert re.search(rf"^  {i}\s+192\.0\.2\.6:\d+\s+{re.escape(advertised(i))}\s+"
                         rf"{re.escape(real.address(i))}\s+ok$", out, re.M), out
    c = REAL_CLIENTS[name]
    topic = f"maps-{name}-{key}"
    real.topic(topic, 6)
    md = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == list(BROKERS)
    assert set(md["topics"][topic].values()) == set(BROKERS)  # every broker leads a partition
    p = c.produce(env.bootstrap, topic, 2000, prefix=env.client_ns)
    assert p["acked"] == 2000 and not p["errors"], p
    r = c.consume(env.bootstrap, topic, f"g-{topic}", 2000, prefix=env.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(md["addresses"] + p["addresses"] + r["addresses"])
