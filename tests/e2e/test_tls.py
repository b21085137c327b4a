"""kafka-proxy --tls (issue 9): every public port speaks TLS, terminated at
the proxy, so the tunnel server relays ciphertext only. Against the mock
cluster with kcat, confluent-kafka-python, kafka-python and kafkajs (host
name verification on in each: the generated leaf names 192.0.2.6), and
against a scripted broker that records every request it gets, for the bad
inputs: a client that never finishes its handshake, plaintext Kafka on a TLS
port, expired and untrusted client certificates (mTLS). Java over TLS is in
test_real_kafka_tls.py."""
import datetime
import json
import os
import re
import socket
import ssl
import stat
import struct
import subprocess
import threading
import time

import pytest

from conftest import BORE, ROOT
from kafka_env import SECRET, Env
from kafka_rig import CLIENTS
from netns import CLIENT_TO_SERVER, CLUSTER_TO_SERVER

TOPIC = "tls-secret-topic-7f3a"


# ---- certificates for the client side (mTLS) ---------------------------------------

def make_certs(d):
    """A client CA, a client certificate it signed, one it signed that has
    expired, and one from a CA the proxy does not trust. Returns paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(key, cn, issuer_key, issuer_cn, ca, start, end):
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer_cn))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(path, *objs):
        with open(path, "wb") as f:
            for o in objs:
                if isinstance(o, x509.Certificate):
                    f.write(o.public_bytes(serialization.Encoding.PEM))
                else:
                    f.write(o.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        return path

    out = {}
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert(ca_key, "test client CA", ca_key, "test client CA", True, now - day, now + 30 * day)
    other = cert(other_key, "other CA", other_key, "other CA", True, now - day, now + 30 * day)
    out["ca"] = write(f"{d}/client-ca.pem", ca)
    for label, issuer_key, issuer_cn, start, end in (
            ("good", ca_key, "test client CA", now - day, now + 30 * day),
            ("expired", ca_key, "test client CA", now - 30 * day, now - day),
            ("untrusted", other_key, "other CA", now - day, now + 30 * day)):
        k = ec.generate_private_key(ec.SECP256R1())
        c = cert(k, f"client {label}", issuer_key, issuer_cn, False, start, end)
        out[label] = write(f"{d}/{label}.pem", c)
        out[label + ".key"] = write(f"{d}/{label}.key", k)
        out[label + ".both"] = write(f"{d}/{label}-both.pem", k, c)  # Java's PEM keystore
    return out


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_config(ca, cert=None, key=None):
    """librdkafka's names; host name verification is each client's default (on)."""
    c = {"security.protocol": "SSL", "ssl.ca.location": ca}
    if cert:
        c.update({"ssl.certificate.location": cert, "ssl.key.location": key})
    return c


def printed(proxy):
    """The proxy's stdout once its settings block is complete (its last
    paragraph starts "TLS: "): read earlier, the pipe may hold only part."""
    proxy.wait_for(r"^TLS: every port", timeout=20, stdout=True)
    return proxy.stdout_text()


def printed_settings(out):
    """The librdkafka settings block the proxy printed after bootstrap.servers."""
    lines = out[out.index("bootstrap.servers="):].splitlines()
    block = []
    for line in lines:
        if not line.strip():
            break
        block.append(line)
    return dict(line.split("=", 1) for line in block)


# ---- every client over TLS, against the mock cluster ---------------------------------

@pytest.fixture(scope="module")
def server(module_procs, ns):
    """One tunnel server for every proxy of the module (each on its own -p)."""
    p = module_procs.start([*ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0", "--min-port", "9000",
                            "--max-port", "29999", "--secret", SECRET])
    p.wait_for("server listening")
    return p


@pytest.fixture(scope="module")
def env(module_procs, ns, server, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    e = Env(module_procs, ns, topics=("orders:6", f"{TOPIC}:3"), server=server,
            proxy_args=["--tls", "--state-dir", str(state)])
    e.state = state
    e.ca = str(state / "ca.pem")
    yield e
    e.close()


@pytest.mark.parametrize("name", list(CLIENTS))
def test_every_client_produces_and_consumes_over_tls(env, name):
    c = CLIENTS[name].with_config(tls_config(env.ca))
    topic = "orders"
    p = c.produce(env.bootstrap, topic, 500, prefix=env.client_ns, start=1000 * list(CLIENTS).index(name))
    assert p["acked"] == 500 and not p["errors"], p
    r = c.consume(env.bootstrap, topic, f"g-tls-{name}", 500, prefix=env.client_ns)
    assert r["count"] >= 500 and r["bad"] == 0, {k: r[k] for k in r if k != "indices"}
    env.assert_public(p["addresses"] + r["addresses"])


def test_printed_settings_work_verbatim_and_name_the_ca(env):
    out = printed(env.proxy)
    s = printed_settings(out)
    assert s["security.protocol"] == "SSL" and s["ssl.ca.location"] == env.ca
    assert "ssl.truststore.type=PEM" in out and f"ssl.truststore.location={env.ca}" in out
    assert "endpoint.identification" not in out and "verify" not in out.lower()
    conf = {k: v for k, v in s.items() if k != "bootstrap.servers"}
    md = CLIENTS["kcat"].with_config(conf).metadata(s["bootstrap.servers"], prefix=env.client_ns)
    assert [b["id"] for b in md["brokers"]] == [1, 2, 3]


def test_a_client_that_does_not_trust_the_ca_fails(env, tmp_path):
    """Host name and chain verification are real: the system CAs do not
    know the generated CA."""
    with pytest.raises(AssertionError) as failed:
        CLIENTS["kcat"].with_config({"security.protocol": "SSL"}).metadata(env.bootstrap,
                                                                          prefix=env.client_ns)
    assert re.search(r"certificate verify failed|SSL handshake failed", str(failed.value)), str(failed.value)[-1500:]


def test_print_ca_prints_the_ca_clients_trust(env):
    r = subprocess.run([BORE, "kafka-proxy", "--print-ca", "--state-dir", str(env.state)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == open(env.ca).read() and r.stdout.startswith("-----BEGIN CERTIFICATE-----")


def test_ca_key_files_are_0600(env):
    keys = [f for f in os.listdir(env.state) if f.endswith(".key")]
    assert sorted(keys) == ["ca.key", f"leaf-{CLIENT_TO_SERVER}.key"]
    for f in keys:
        assert stat.S_IMODE(os.stat(env.state / f).st_mode) == 0o600, f


# ---- the tunnel server sees only ciphertext ------------------------------------------

def test_relay_sees_only_ciphertext(procs, ns, server, tmp_path):
    """Every byte between the proxy and the tunnel server (its control and
    data connections alike) goes through a recording forwarder: the known
    topic name and record values never appear in it, though the bore
    control messages (plaintext JSON) do - the recording is real."""
    record = tmp_path / "relay.bin"
    fwd = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", f"{ROOT}/tests/tools/record_forward.py",
                            "0", f"{CLUSTER_TO_SERVER}:7835", str(record)], stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(fwd.stdout.readline())["port"]
        e = Env(procs, ns, brokers=1, topics=(f"{TOPIC}:2",), to=f"127.0.0.1:{port}", server=server,
                proxy_args=["--tls", "--state-dir", str(tmp_path / "state")], port=9094)
        c = CLIENTS["kcat"].with_config(tls_config(str(tmp_path / "state" / "ca.pem")))
        p = c.produce(e.bootstrap, TOPIC, 300, prefix=e.client_ns)
        assert p["acked"] == 300, p
        r = c.consume(e.bootstrap, TOPIC, "g-cipher", 300, prefix=e.client_ns)
        assert r["complete"], {k: r[k] for k in r if k != "indices"}
        assert e.proxy.stop() == 0  # before the forwarder goes: its tunnels end with it
        e.close()
    finally:
        fwd.terminate()
        fwd.wait()
    data = record.read_bytes()
    assert len(data) > 20000 and b'"Accept"' in data, len(data)
    assert TOPIC.encode() not in data
    for i in (0, 7, 123, 299):
        assert f"v{i}-x".encode() not in data, i
    assert b"k123" not in data


# ---- bad input, against a scripted broker that records every request -----------------

class Recorder:
    """The scripted broker's stdout: one JSON line per request it got."""

    def __init__(self, p):
        self.p = p
        self.requests = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        # The broker's threads may print on one line: count the objects.
        for line in self.p.stdout:
            with self.cond:
                self.requests += [(int(k), int(v)) for k, v in
                                  re.findall(r'"api": (\d+), "version": (\d+)', line)]
                self.cond.notify_all()

    def count(self):
        with self.cond:
            return len(self.requests)

    def wait_count(self, n, timeout=20):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.requests) >= n, timeout)


@pytest.fixture(scope="module")
def gate(module_procs, ns, server, certs, tmp_path_factory):
    """mTLS (--tls-client-ca) in front of the scripted broker, with a short
    handshake deadline."""
    broker = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "tests/tools/scripted_broker.py"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    port = json.loads(broker.stdout.readline())["port"]
    rec = Recorder(broker)
    state = tmp_path_factory.mktemp("gate-state")
    e = Env(module_procs, ns, brokers=0, bootstrap_of=f"127.0.0.1:{port}", port=9096, server=server,
            proxy_args=["--tls", "--state-dir", str(state), "--tls-client-ca", certs["ca"],
                        "--tls-handshake-timeout", "2"])
    e.ca = str(state / "ca.pem")
    e.rec = rec
    e.certs = certs
    yield e
    broker.terminate()
    broker.wait()


API_VERSIONS = struct.pack(">ihhih", 14, 18, 0, 42, 4) + b"bore"  # size, key, version, corr id, client id


def client_sock(env, port=None):
    """A TCP connection to the public bootstrap port from the client namespace."""
    fd = open(f"/run/netns/{env.ns.names['u']}")
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    home = open("/proc/thread-self/ns/net")
    libc.setns(fd.fileno(), 0x40000000)
    try:
        s = socket.create_connection((CLIENT_TO_SERVER, port or env.port), timeout=10)
    finally:
        libc.setns(home.fileno(), 0x40000000)
        fd.close()
        home.close()
    return s


def tls_sock(env, cert=None):
    ctx = ssl.create_default_context(cafile=env.ca)  # verifies the chain and the host name (an IP)
    if cert:
        ctx.load_cert_chain(env.certs[cert], env.certs[cert + ".key"])
    return ctx.wrap_socket(client_sock(env), server_hostname=CLIENT_TO_SERVER)


def api_versions_answered(s):
    s.sendall(API_VERSIONS)
    head = b""
    while len(head) < 8:
        b = s.recv(8 - len(head))
        if not b:
            return False
        head += b
    return struct.unpack(">ii", head)[1] == 42


def closed_by_peer(s, timeout=10):
    """Reads until EOF (or a TLS alert): True if the proxy closed the connection."""
    s.settimeout(timeout)
    try:
        while s.recv(4096):
            pass
        return True
    except (ssl.SSLError, ConnectionResetError):
        return True
    except socket.timeout:
        return False


def others_carry_on(env):
    """A good mTLS client still gets its answer, and it is the only request
    the broker got since `before`."""
    with tls_sock(env, "good") as s:
        assert api_versions_answered(s)


def assert_broker_got_nothing(env, before):
    """Only the good client's ApiVersions reached the broker."""
    others_carry_on(env)
    assert env.rec.wait_count(before + 1)
    assert env.rec.count() == before + 1, env.rec.requests[before:]
    assert env.rec.requests[before] == (18, 0)


def test_mtls_client_with_a_good_certificate_is_served(gate):
    before = gate.rec.count()
    with tls_sock(gate, "good") as s:
        assert api_versions_answered(s)
    assert gate.rec.wait_count(before + 1)


def test_handshake_deadline_closes_a_client_that_never_finishes(gate):
    before = gate.rec.count()
    start = gate.proxy.next_index if hasattr(gate.proxy, "next_index") else 0
    s = client_sock(gate)
    s.sendall(b"\x16\x03\x01\x00\xff\x01")  # the start of a ClientHello, never the rest
    gate.proxy.wait_for(r"did not finish its TLS handshake within 2000 ms; closing", timeout=15, start=start)
    assert closed_by_peer(s, 5)
    s.close()
    assert_broker_got_nothing(gate, before)


def test_plaintext_kafka_on_a_tls_port_is_named_and_closed(gate):
    before = gate.rec.count()
    s = client_sock(gate)
    s.sendall(API_VERSIONS)
    gate.proxy.wait_for(r"client spoke plaintext to a TLS port: set security\.protocol=SSL", timeout=10)
    assert closed_by_peer(s)
    s.close()
    assert_broker_got_nothing(gate, before)


@pytest.mark.parametrize("cert,reason", [("expired", r"certificate has expired"),
                                         ("untrusted", r"unable to get local issuer certificate|"
                                                       r"certificate verify failed"),
                                         (None, r"peer did not return a certificate")])
def test_bad_client_certificate_is_refused(gate, cert, reason):
    before = gate.rec.count()
    start = len(gate.proxy.lines)
    try:
        s = tls_sock(gate, cert)
        # TLS 1.3: the client's side of the handshake ends before the server
        # has checked its certificate; the refusal arrives as an alert.
        s.sendall(API_VERSIONS)
        assert closed_by_peer(s)
        s.close()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    gate.proxy.wait_for(rf"TLS handshake failed: .*({reason})", timeout=10, start=start)
    assert_broker_got_nothing(gate, before)


# ---- the generated CA across restarts -------------------------------------------------

def test_ca_is_reused_across_restarts_and_leaf_follows_the_advertised_host(procs, ns, server, tmp_path):
    broker = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "tests/tools/scripted_broker.py"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = json.loads(broker.stdout.readline())["port"]
        state = tmp_path / "state"

        def run(host):
            px = procs.start([*ns.prefix("c"), BORE, "kafka-proxy", "-b", f"127.0.0.1:{port}", "--to",
                              CLUSTER_TO_SERVER, "--advertised-host", host, "-s", SECRET, "-p", "0",
                              "--tls", "--state-dir", str(state)])
            px.wait_for(r"^bootstrap\.servers=", timeout=20, stdout=True)
            assert px.stop() == 0
            return px

        first = run(CLIENT_TO_SERVER)
        assert "created a CA for TLS" in first.text()
        ca = (state / "ca.pem").read_bytes()
        ca_key = (state / "ca.key").read_bytes()
        leaf = (state / f"leaf-{CLIENT_TO_SERVER}.pem").read_bytes()
        second = run(CLIENT_TO_SERVER)
        assert "created a CA" not in second.text() and "issued a TLS certificate" not in second.text()
        assert (state / "ca.pem").read_bytes() == ca and (state / "ca.key").read_bytes() == ca_key
        assert (state / f"leaf-{CLIENT_TO_SERVER}.pem").read_bytes() == leaf
        third = run("kafka.example.test")
        assert "created a CA" not in third.text()
        assert re.search(r"issued a TLS certificate for kafka\.example\.test", third.text())
        assert (state / "ca.pem").read_bytes() == ca
        # The new leaf names the new host and chains to the same CA.
        r = subprocess.run(["openssl", "verify", "-CAfile", str(state / "ca.pem"), "-verify_hostname",
                            "kafka.example.test", str(state / "leaf-kafka.example.test.pem")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        for f in ("ca.key", "leaf-kafka.example.test.key"):
            assert stat.S_IMODE(os.stat(state / f).st_mode) == 0o600, f
    finally:
        broker.terminate()
        broker.wait()


# ---- the user's own certificate, with its chain ---------------------------------------

def make_chain(d):
    """A root, an intermediate it signed, and a leaf for 192.0.2.6 the
    intermediate signed; the certificate file holds the leaf, then the
    intermediate (the root stays with the clients)."""
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def cert(key, cn, issuer_key, issuer_cn, ca, san=None):
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - day).not_valid_after(now + 30 * day)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]),
                                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = cert(keys[0], "own root", keys[0], "own root", True)
    inter = cert(keys[1], "own intermediate", keys[0], "own root", True)
    leaf = cert(keys[2], CLIENT_TO_SERVER, keys[1], "own intermediate", False, san=CLIENT_TO_SERVER)
    pem = serialization.Encoding.PEM
    with open(f"{d}/root.pem", "wb") as f:
        f.write(root.public_bytes(pem))
    with open(f"{d}/chain.pem", "wb") as f:
        f.write(leaf.public_bytes(pem) + inter.public_bytes(pem))
    with open(f"{d}/leaf.key", "wb") as f:
        f.write(keys[2].private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return f"{d}/root.pem", f"{d}/chain.pem", f"{d}/leaf.key"


def test_own_certificate_with_its_chain_is_served(procs, ns, server, tmp_path):
    """--tls-cert/--tls-key: a client that trusts only the root verifies the
    leaf through the intermediate the proxy sends; no CA is generated and the
    printed settings name no CA file."""
    root, chain, key = make_chain(tmp_path)
    broker = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "tests/tools/scripted_broker.py"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = json.loads(broker.stdout.readline())["port"]
        e = Env(procs, ns, brokers=0, bootstrap_of=f"127.0.0.1:{port}", port=9098, server=server,
                proxy_args=["--tls-cert", chain, "--tls-key", key, "--state-dir", str(tmp_path / "state")])
        out = printed(e.proxy)
        assert printed_settings(out) == {"bootstrap.servers": e.bootstrap, "security.protocol": "SSL"}
        assert f"with the certificate {chain}" in out
        assert not (tmp_path / "state" / "ca.pem").exists()
        ctx = ssl.create_default_context(cafile=root)
        with ctx.wrap_socket(client_sock(e), server_hostname=CLIENT_TO_SERVER) as s:
            assert api_versions_answered(s)
    finally:
        broker.terminate()
        broker.wait()
