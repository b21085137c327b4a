"""kafka-proxy's authentication gate (issue 9, item 3) in front of a real
Apache Kafka 4.4 cluster whose client listener is PLAINTEXT: every client
authenticates with the proxy over SASL_PLAINTEXT (--allow-plain-without-tls
for PLAIN), with each mechanism it has, then produces and consumes in a
consumer group. A wrong password is refused by the proxy, as a SASL broker
would."""
import json
import os
import re
import subprocess

import pytest

from kafka_env import Env
from kafka_rig import CLIENTS, JAVA
from netns import CLIENT_TO_SERVER
from real_rig import real_cluster

REAL_CLIENTS = {"java": JAVA, **CLIENTS}
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
USER, PASSWORD = "gate-user", "gate-user-secret"
AUTH_FAILED = {
    "java": r"Authentication failed: .*SaslAuthenticationException|SaslAuthenticationException",
    "kcat": r"Authentication failed|SASL authentication error",
    "confluent": r"Authentication failed|SASL authentication error|_AUTHENTICATION",
    "kafka-python": r"SaslAuthenticationFailedError|Authentication failed",
    "kafkajs": r"SASL .*authentication failed|KafkaJSSASLAuthenticationError",
}
COUNT = 500


@pytest.fixture(scope="module")
def real(ns):
    yield from real_cluster(ns, topics=["orders:6"])


@pytest.fixture(scope="module")
def env(module_procs, ns, real):
    e = Env(module_procs, ns, brokers=0, bootstrap_of=real.address(1),
            proxy_args=["--auth-user", f"{USER}:{PASSWORD}", "--allow-plain-without-tls"])
    e.real = real
    return e


def config(mechanism, password=PASSWORD):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism, "sasl.username": USER,
            "sasl.password": password}


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_gate_produce_and_consume_in_a_group(env, name, mechanism):
    c = REAL_CLIENTS[name].with_config(config(mechanism))
    topic = f"gate-{name}-{mechanism}".lower()
    env.real.topic(topic, 3)
    p = c.produce(env.bootstrap, topic, COUNT, prefix=env.client_ns)
    assert p["acked"] == COUNT and not p["errors"], p
    r = c.consume(env.bootstrap, topic, f"g-{topic}", COUNT, prefix=env.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])
    env.proxy.wait_for(rf'authenticated as "{USER}" \({mechanism}\)')


@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_gate_refuses_a_wrong_password(env, name):
    c = REAL_CLIENTS[name].with_config(config("SCRAM-SHA-512", "wrong password"))
    with pytest.raises(AssertionError) as failed:
        c.metadata(env.bootstrap, prefix=env.client_ns)
    assert re.search(AUTH_FAILED[name], str(failed.value)), str(failed.value)[-2000:]


def test_after_authentication_the_brokers_api_versions_still_list_the_sasl_apis(env):
    """After success ApiVersions goes to the broker; a Kafka broker lists
    SaslHandshake and SaslAuthenticate on a PLAINTEXT listener too, so
    clients see the SASL APIs before and after authentication."""
    wire = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sasl_wire.py")
    args = {"host": CLIENT_TO_SERVER, "port": env.port, "op": "login", "mech": "SCRAM-SHA-256",
            "user": USER, "password": PASSWORD, "then_api_versions": True}
    r = subprocess.run([*env.client_ns, "/usr/bin/python3", wire, json.dumps(args)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    assert res["error"] == 0
    apis = res["api_versions"]
    assert apis["17"][1] >= 1 and apis["36"][1] >= 2, apis
    assert apis["3"][1] <= 13  # the codec caps what it cannot rewrite
