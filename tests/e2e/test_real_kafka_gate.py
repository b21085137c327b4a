"""kafka-proxy's authentication gate (issue 9, item 3) in front of a real
Apache Kafka 4.4 cluster whose client listener is PLAINTEXT: every client
authenticates with the proxy over SASL_PLAINTEXT (--allow-plain-without-tls
for PLAIN), with each mechanism it has, then produces and consumes in a
consumer group. A wrong password is refused by the proxy, as a SASL broker
would. The same over SASL_SSL: the gate on a --tls proxy (PLAIN offered
without --allow-plain-without-tls), every client verifying the host name
against the generated CA, with the settings the proxy printed; and once
with a client certificate (mTLS) as well as SASL."""
import json
import os
import re
import subprocess

import pytest

from kafka_env import Env
from kafka_rig import CLIENTS, JAVA
from netns import CLIENT_TO_SERVER
from real_rig import real_cluster
from test_tls import make_certs, printed_settings

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


# ---- SASL_SSL: the gate behind --tls (one more proxy on the module's tunnel server) ----

def tls_proxy(module_procs, ns, real, env, state, port, *args):
    e = Env(module_procs, ns, brokers=0, bootstrap_of=real.address(1), server=env.server, port=port,
            proxy_args=["--tls", "--state-dir", str(state), "--auth-user", f"{USER}:{PASSWORD}", *args])
    e.real = real
    e.ca = str(state / "ca.pem")
    return e


@pytest.fixture(scope="module")
def tls_env(module_procs, ns, real, env, tmp_path_factory):
    return tls_proxy(module_procs, ns, real, env, tmp_path_factory.mktemp("state"), 9094)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def mtls_env(module_procs, ns, real, env, certs, tmp_path_factory):
    return tls_proxy(module_procs, ns, real, env, tmp_path_factory.mktemp("mstate"), 9096,
                     "--tls-client-ca", certs["ca"])


def printed(e, name):
    """The settings the proxy printed (Java's block verbatim), SASL_SSL."""
    e.proxy.wait_for(r"^SASL: set sasl.mechanism", timeout=20, stdout=True)  # the block's end
    out = e.proxy.stdout_text()
    if name == "java":
        block = out[out.index("Java clients:\n") + len("Java clients:\n"):].split("\n\n")[0]
        s = dict(line.split("=", 1) for line in block.splitlines())
    else:
        s = printed_settings(out)
        s.pop("bootstrap.servers")
    assert s["security.protocol"] == "SASL_SSL", s
    return s


def round_trip(e, c, topic, mechanism):
    e.real.topic(topic, 3)
    p = c.produce(e.bootstrap, topic, COUNT, prefix=e.client_ns)
    assert p["acked"] == COUNT and not p["errors"], {k: p[k] for k in p if k != "addresses"}
    r = c.consume(e.bootstrap, topic, f"g-{topic}", COUNT, prefix=e.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    e.assert_public(p["addresses"] + r["addresses"])
    e.proxy.wait_for(rf'authenticated as "{USER}" \({mechanism}\)')


def test_plain_is_offered_over_tls_without_allow_plain_without_tls(tls_env):
    assert "--allow-plain-without-tls" not in tls_env.proxy.args
    tls_env.proxy.wait_for(r"authentication gate: 1 user; mechanisms SCRAM-SHA-256, SCRAM-SHA-512, PLAIN")


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_sasl_ssl_produce_and_consume_in_a_group(tls_env, name, mechanism):
    conf = {**printed(tls_env, name), **config(mechanism)}
    conf["security.protocol"] = "SASL_SSL"
    round_trip(tls_env, REAL_CLIENTS[name].with_config(conf), f"sslgate-{name}-{mechanism}".lower(), mechanism)


def test_sasl_ssl_with_a_client_certificate(mtls_env, certs):
    conf = {**printed(mtls_env, "confluent"), **config("SCRAM-SHA-256"), "security.protocol": "SASL_SSL",
            "ssl.certificate.location": certs["good"], "ssl.key.location": certs["good.key"]}
    round_trip(mtls_env, CLIENTS["confluent"].with_config(conf), "mtlsgate-confluent", "SCRAM-SHA-256")
