"""kafka-proxy with TLS in front of a real Apache Kafka 4.4.0 cluster whose
client listener is SSL (issue 9): --broker-tls towards the brokers
(verified against the cluster's CA and each broker's advertised host), and
on the public side TLS (--tls, the generated CA), mTLS (--tls-client-ca) or
plaintext. Every client - Java, kcat, confluent-kafka-python, kafka-python,
kafkajs - produces and consumes in a group, host name verification on
(each client's default: the proxy's leaf names 192.0.2.6). Java takes the
settings the proxy printed, verbatim."""
import pytest

from kafka_rig import CLIENTS, JAVA
from kafka_env import SECRET, Env
from conftest import BORE
from real_rig import real_cluster
from test_tls import make_certs, printed, printed_settings

REAL_CLIENTS = {"java": JAVA, **CLIENTS}


@pytest.fixture(scope="module")
def real(ns):
    yield from real_cluster(ns, ssl=True, topics=["orders:6"])


@pytest.fixture(scope="module")
def server(module_procs, ns):
    p = module_procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "9000",
                            "--max-port", "29999", "--secret", SECRET])
    p.wait_for("server listening")
    return p


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def proxy(module_procs, ns, real, server, port, *args):
    e = Env(module_procs, ns, brokers=0, bootstrap_of=real.address(1), server=server, port=port,
            proxy_args=["--broker-tls", "--broker-ca", real.ssl_files["ca"], *args])
    e.real = real
    return e


@pytest.fixture(scope="module")
def tls(module_procs, ns, real, server, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    e = proxy(module_procs, ns, real, server, 9092, "--tls", "--state-dir", str(state))
    e.ca = str(state / "ca.pem")
    return e


@pytest.fixture(scope="module")
def plain(module_procs, ns, real, server):
    return proxy(module_procs, ns, real, server, 9094)


@pytest.fixture(scope="module")
def mtls(module_procs, ns, real, server, certs, tmp_path_factory):
    state = tmp_path_factory.mktemp("mstate")
    e = proxy(module_procs, ns, real, server, 9096, "--tls", "--state-dir", str(state),
              "--tls-client-ca", certs["ca"])
    e.ca = str(state / "ca.pem")
    return e


def java_settings(out):
    """The Java block the proxy printed."""
    block = out[out.index("Java clients:\n") + len("Java clients:\n"):].split("\n\n")[0]
    return dict(line.split("=", 1) for line in block.splitlines())


def tls_settings(env, name):
    out = printed(env.proxy)
    if name == "java":
        return java_settings(out)  # verbatim
    s = printed_settings(out)
    s.pop("bootstrap.servers")
    return s


def round_trip(env, c, name, tag):
    topic = f"tls-{tag}-{name}"
    env.real.topic(topic, 3)
    p = c.produce(env.bootstrap, topic, 1000, prefix=env.client_ns)
    assert p["acked"] == 1000 and not p["errors"], {k: p[k] for k in p if k != "addresses"}
    r = c.consume(env.bootstrap, topic, f"g-{topic}", 1000, prefix=env.client_ns)
    assert r["complete"] and r["duplicates"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])


@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_every_client_over_tls_to_an_ssl_cluster(tls, name):
    c = REAL_CLIENTS[name].with_config(tls_settings(tls, name))
    md = c.metadata(tls.bootstrap, prefix=tls.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]
    round_trip(tls, c, name, "ssl")


@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_every_client_in_plaintext_to_an_ssl_cluster_through_broker_tls(plain, name):
    round_trip(plain, REAL_CLIENTS[name], name, "plain")


@pytest.mark.parametrize("name", list(REAL_CLIENTS))
def test_every_client_with_a_client_certificate(mtls, certs, name):
    if name == "java":
        conf = {**java_settings(printed(mtls.proxy)), "ssl.keystore.type": "PEM",
                "ssl.keystore.key": open(certs["good.key"]).read(),
                "ssl.keystore.certificate.chain": open(certs["good"]).read()}
        conf.pop("ssl.keystore.location")  # the printed placeholder
    else:
        conf = {"security.protocol": "SSL", "ssl.ca.location": mtls.ca,
                "ssl.certificate.location": certs["good"], "ssl.key.location": certs["good.key"]}
    round_trip(mtls, REAL_CLIENTS[name].with_config(conf), name, "mtls")


def test_a_client_without_a_certificate_is_refused_by_mtls(mtls):
    c = CLIENTS["kcat"].with_config({"security.protocol": "SSL", "ssl.ca.location": mtls.ca})
    with pytest.raises(AssertionError):
        c.metadata(mtls.bootstrap, prefix=mtls.client_ns)
    mtls.proxy.wait_for(r"TLS handshake failed: .*peer did not return a certificate", timeout=10)
