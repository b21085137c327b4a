"""kafka-proxy in front of a real Apache Kafka 4.4.0 cluster whose client
listener is SASL_PLAINTEXT with PLAIN and SCRAM-SHA-256 (issue 8). The proxy
holds no credentials: it notices the listener wants SASL, tunnels the
bootstrap, and opens each broker's tunnel when an authenticated client's
Metadata first names it; clients authenticate with the brokers themselves
(SaslHandshake v1 + SaslAuthenticate pass through)."""
import re

import pytest

from conftest import BORE
from kafka_env import SECRET
from kafka_rig import CLIENTS, JAVA
from netns import CLUSTER_TO_SERVER
from real_rig import SASL_USERS, SCRAM_USERS, real_kafka_fixtures

REAL_CLIENTS = {"java": JAVA, **CLIENTS}
MECHANISMS = {"PLAIN": SASL_USERS, "SCRAM-SHA-256": SCRAM_USERS}
# How each client reports a refused password.
AUTH_FAILED = {
    "java": r"Authentication failed: .*SaslAuthenticationException",
    "kcat": r"Authentication failed|SASL authentication error",
    "confluent": r"Authentication failed|SASL authentication error|_AUTHENTICATION",
    "kafka-python": r"SaslAuthenticationFailedError|Authentication failed",
    "kafkajs": r"SASL .*authentication failed|KafkaJSSASLAuthenticationError",
}


real, env = real_kafka_fixtures(sasl=True, topics=["orders:6"])


def test_proxy_notices_the_listener_requires_sasl(env):
    out = env.proxy.stdout_text()
    assert "(SASL: brokers are added as clients authenticate)" in out
    assert re.search(r"requires SASL \(PLAIN, SCRAM-SHA-256\)", env.proxy.text())


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_sasl_produce_and_consume_through_the_proxy(env, name, mechanism):
    c = REAL_CLIENTS[name].with_config(env.real.client_config(mechanism))
    topic = f"sasl-{name}-{mechanism}".lower()
    env.real.topic(topic, 6)
    md = c.metadata(env.bootstrap, prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    p = c.produce(env.bootstrap, topic, 2000, prefix=env.client_ns)
    assert p["acked"] == 2000 and not p["errors"], p
    r = c.consume(env.bootstrap, topic, f"g-{topic}", 2000, prefix=env.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(md["addresses"] + p["addresses"] + r["addresses"])


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_wrong_password_is_reported_as_an_authentication_failure(env, name, mechanism):
    user = next(iter(MECHANISMS[mechanism]))
    c = REAL_CLIENTS[name].with_config(env.real.client_config(mechanism, user, "wrong password"))
    with pytest.raises(AssertionError) as failed:
        c.metadata(env.bootstrap, prefix=env.client_ns)
    assert re.search(AUTH_FAILED[name], str(failed.value)), str(failed.value)[-2000:]


def test_gate_is_refused_when_the_cluster_requires_sasl(env, procs, ns):
    """--auth-user in front of a SASL listener: a clear refusal at start-up
    (passthrough, without the gate, is what the tests above use)."""
    p = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", env.real.address(1), "--to",
                     CLUSTER_TO_SERVER, "-s", SECRET, "-p", "9095", "--auth-user", "someone:pw"])
    assert p.wait(timeout=30) == 1
    p.expect_rc = 1
    assert re.search(r"Error: Kafka at \S+: the cluster requires SASL itself \(PLAIN, SCRAM-SHA-256\): "
                     r"the authentication gate \(--auth-user, --auth-file\) is for clusters without "
                     r"their own; run without them", p.text()), p.text()
