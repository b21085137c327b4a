"""kafka-proxy's authentication gate (issue 9, item 3) against the scripted
broker (tests/tools/scripted_broker.py), which prints one line per request
it receives: after each bad client, it must have received nothing.

The clients are tests/e2e/sasl_wire.py (SASL by hand: every answer and its
timing visible) and kafka-python (a real client library)."""
import json
import os
import re
import subprocess

import pytest

from conftest import BORE, ROOT
from kafka_env import Env
from netns import CLIENT_TO_SERVER
from test_tls import printed_settings

WIRE = os.path.join(ROOT, "tests", "e2e", "sasl_wire.py")
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
GATE = [x for u, p in USERS.items() for x in ("--auth-user", f"{u}:{p}")]
MECHS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
FAILED_MSG = "Authentication failed: Invalid username or password"


class Broker:
    """The scripted broker. It prints a request's line before answering it,
    so once a client has its answer the line is in the pipe: `requests`
    reads the pipe as it is then (no thread racing the test)."""

    def __init__(self, ns):
        self.p = subprocess.Popen([*ns.prefix("c"), "/usr/bin/python3", "tests/tools/scripted_broker.py"],
                                  stdout=subprocess.PIPE, cwd=str(ROOT))
        self.port = json.loads(self.p.stdout.readline())["port"]
        self.fd = self.p.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.text = ""
        self.seen = []

    @property
    def requests(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.text += chunk.decode()
        # Threads of the broker may print on one line: take every record.
        self.seen = [{"api": int(m.group(1)), "version": int(m.group(2))}
                     for m in re.finditer(r'\{"api": (-?\d+), "version": (-?\d+)\}', self.text)]
        return self.seen

    def stop(self):
        self.p.terminate()
        self.p.wait()


def start(procs, ns, extra=(), server=None, port=9092):
    broker = Broker(ns)
    env = Env(procs, ns, brokers=0, bootstrap_of=f"127.0.0.1:{broker.port}", proxy_args=[*GATE, *extra],
              server=server, port=port)
    env.broker = broker
    return env


@pytest.fixture(scope="module")
def gate(module_procs, ns):
    e = start(module_procs, ns, ["--allow-plain-without-tls", "--auth-deadline", "2"])
    yield e
    e.broker.stop()


def wire(env, op, **kw):
    args = {"host": CLIENT_TO_SERVER, "port": env.port, "op": op, **kw}
    r = subprocess.run([*env.client_ns, "/usr/bin/python3", WIRE, json.dumps(args)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


class NothingReaches:
    """Asserts the broker received no request while the block ran (and its
    connection was closed)."""

    def __init__(self, env):
        self.env = env

    def __enter__(self):
        self.before = len(self.env.broker.requests)

    def __exit__(self, *exc):
        if exc[0] is None:
            got = self.env.broker.requests[self.before:]
            assert got == [], f"the broker received {got} from an unauthenticated client"


def test_proxy_answers_api_versions_itself_with_the_sasl_apis(gate):
    with NothingReaches(gate):
        for ver in (0, 3):
            r = wire(gate, "raw", api=18, version=ver, body="00" if ver >= 3 else "", flex=ver >= 3)
            assert r["answer"], gate.proxy.text()[-3000:]
            body = bytes.fromhex(r["answer"])[4:]
            assert body[:2] == b"\0\0"
            if ver == 0:
                n = int.from_bytes(body[2:6], "big")
                entries = [tuple(int.from_bytes(body[6 + 6 * i + j:8 + 6 * i + j], "big", signed=True)
                                 for j in (0, 2, 4)) for i in range(n)]
            else:
                n = body[2] - 1
                entries = [tuple(int.from_bytes(body[3 + 7 * i + j:5 + 7 * i + j], "big", signed=True)
                                 for j in (0, 2, 4)) for i in range(n)]
            apis = {k: (lo, hi) for k, lo, hi in entries}
            assert apis[17] == (0, 1) and apis[36] == (0, 2)
            assert apis[3] == (0, 12)  # the cluster's Metadata, learned at start-up


@pytest.mark.parametrize("mech", MECHS)
def test_right_password_passes_and_the_client_reaches_the_broker(gate, mech):
    """The positive control: after success, Metadata reaches the broker and
    comes back with the public address."""
    before = len(gate.broker.requests)
    r = wire(gate, "login", mech=mech, user="alice", password="alice-pw", ver=2 if mech == "PLAIN" else 1,
             then_metadata=True)
    assert (r["handshake"], r["error"]) == (0, 0), r
    assert r["metadata"]["first"] == f"{CLIENT_TO_SERVER}:{gate.public[1][1]}"
    assert gate.broker.requests[before:] == [{"api": 3, "version": 1}]
    gate.proxy.wait_for(rf'INFO .*authentication gate: client #\d+ of .*: authenticated as "alice" \({mech}\)')


@pytest.mark.parametrize("mech", MECHS)
def test_wrong_password_gets_58_after_the_fixed_delay_and_a_close(gate, mech):
    with NothingReaches(gate):
        r = wire(gate, "login", mech=mech, user="alice", password="not-alice-pw", ver=1)
    assert (r["handshake"], r["error"], r["message"]) == (0, 58, FAILED_MSG), r
    assert r["seconds"] >= 0.1, r  # the fixed delay (150 ms)
    assert r["eof_after"] < 5, r
    gate.proxy.wait_for(rf'WARN .*authentication gate: client #\d+ of .*: {mech} authentication failed '
                        rf'for user "alice": wrong password')
    assert "not-alice-pw" not in gate.proxy.text()


@pytest.mark.parametrize("mech", MECHS)
def test_unknown_user_gets_the_same_answer_as_a_wrong_password(gate, mech):
    with NothingReaches(gate):
        r = wire(gate, "login", mech=mech, user="mallory", password="x", ver=0)
    assert (r["handshake"], r["error"], r["message"]) == (0, 58, FAILED_MSG), r
    assert r["seconds"] >= 0.1
    gate.proxy.wait_for(rf'authentication failed for user "mallory": unknown user')


@pytest.mark.parametrize("mech", MECHS)
def test_sasl_handshake_v0_then_raw_tokens(gate, mech):
    """After SaslHandshake v0 the tokens come without Kafka headers, as
    Kafka serves them; a wrong password is a close (no error code in raw
    mode), after the delay."""
    r = wire(gate, "login", mech=mech, user="bob", password="bob-pw", ver="raw", then_metadata=True)
    assert (r["handshake"], r["error"]) == (0, 0), r
    assert r["metadata"]["brokers"] == 1
    with NothingReaches(gate):
        r = wire(gate, "login", mech=mech, user="bob", password="wrong", ver="raw")
    assert r["error"] is None and r["seconds"] >= 0.1, r


def test_unknown_mechanism_gets_33_with_the_enabled_list(gate):
    with NothingReaches(gate):
        r = wire(gate, "handshake", mech="GSSAPI")
    assert r["handshake"] == 33 and r["mechanisms"] == MECHS, r
    assert r["seconds"] >= 0.1 and r["eof_after"] < 5
    gate.proxy.wait_for(r'mechanism "GSSAPI" is not enabled')


@pytest.mark.parametrize("api,name", [(0, "Produce"), (3, "Metadata")])
def test_request_before_authentication_is_closed_and_reaches_no_broker(gate, api, name):
    body = {0: "ffff" + "0001" + "00007530" + "00000000", 3: "00000000"}[api]  # Produce v3 acks=1; Metadata v1
    with NothingReaches(gate):
        r = wire(gate, "raw", api=api, version=3 if api == 0 else 1, body=body)
        assert r["answer"] is None, r
        assert r["seconds"] >= 0.1
    gate.proxy.wait_for(rf"request api {api} v\d before authentication: closing \(this address requires "
                        r"SASL: the client needs security\.protocol=SASL_SSL or SASL_PLAINTEXT")


def test_sasl_authenticate_before_handshake_gets_illegal_sasl_state(gate):
    with NothingReaches(gate):
        r = wire(gate, "raw", api=36, version=1, body="00000005" + b"\0a\0b".hex() + "00")
    body = bytes.fromhex(r["answer"])[4:]
    assert int.from_bytes(body[:2], "big") == 34


def test_600_kib_frame_before_authentication_is_refused(gate):
    with NothingReaches(gate):
        r = wire(gate, "raw", size=600 * 1024, body="", fill=600 * 1024)
        assert r["answer"] is None
    gate.proxy.wait_for(r"a request over 512 KiB or a negative size before authentication")


def test_client_that_stops_halfway_through_scram_is_closed_at_the_deadline(gate):
    with NothingReaches(gate):
        r = wire(gate, "scram_stop", mech="SCRAM-SHA-256", user="alice", password="alice-pw")
    assert r["state"] == "first"
    assert 1 < r["eof_after"] < 10, r  # --auth-deadline 2, from the connection's start
    gate.proxy.wait_for(r"authentication did not finish within 2000 ms")


def test_other_connections_carry_on_while_one_fails(gate):
    """A failing client waits out its delay; another authenticates meanwhile
    and is served (the delay is a timer, the loop never blocks)."""
    slow = subprocess.Popen([*gate.client_ns, "/usr/bin/python3", WIRE, json.dumps(
        {"host": CLIENT_TO_SERVER, "port": 9092, "op": "scram_stop", "mech": "SCRAM-SHA-512",
         "user": "bob", "password": "bob-pw"})], stdout=subprocess.PIPE, text=True)
    try:
        r = wire(gate, "login", mech="SCRAM-SHA-512", user="bob", password="bob-pw", then_metadata=True)
        assert r["error"] == 0 and r["metadata"]["brokers"] == 1
        assert slow.poll() is None  # still held by the gate
    finally:
        slow.wait(timeout=30)


@pytest.mark.parametrize("mech", MECHS)
def test_kafka_python_through_the_gate(gate, mech):
    """A client library end to end: Metadata through the gate with each
    mechanism; a wrong password is reported as an authentication failure."""
    code = """
import json, sys, logging
logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
from kafka import KafkaAdminClient
a = KafkaAdminClient(bootstrap_servers=sys.argv[1], security_protocol="SASL_PLAINTEXT",
                     sasl_mechanism=sys.argv[2], sasl_plain_username="alice",
                     sasl_plain_password=sys.argv[3], request_timeout_ms=10000)
print(json.dumps([[b.nodeId, b.host, b.port] for b in a._client.cluster.brokers()]))
a.close()
"""
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, ".cache", "pylib")}
    r = subprocess.run([*gate.client_ns, "/usr/bin/python3", "-c", code, gate.bootstrap, mech, "alice-pw"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout) == [[1, CLIENT_TO_SERVER, gate.public[1][1]]]
    with NothingReaches(gate):
        r = subprocess.run([*gate.client_ns, "/usr/bin/python3", "-c", code, gate.bootstrap, mech, "wrong"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0
    assert re.search(r"SaslAuthenticationFailedError|Authentication failed", r.stderr), r.stderr[-3000:]


def test_plain_is_not_offered_on_a_plaintext_port_without_the_flag(procs, ns, gate):
    env = start(procs, ns, server=gate.server, port=9094)
    try:
        env.proxy.wait_for(r"PLAIN is off: without TLS the relay could read passwords")
        with NothingReaches(env):
            r = wire(env, "handshake", mech="PLAIN")
        assert r["handshake"] == 33 and r["mechanisms"] == ["SCRAM-SHA-256", "SCRAM-SHA-512"], r
        r = wire(env, "login", mech="SCRAM-SHA-256", user="bob", password="bob-pw", then_metadata=True)
        assert r["error"] == 0
    finally:
        env.broker.stop()


# ---- the gate behind --tls: its answers go out through the TLS transport -------------

@pytest.fixture(scope="module")
def tls_gate(module_procs, ns, gate, tmp_path_factory):
    """The gate on a --tls proxy (no --allow-plain-without-tls), sharing the
    module's tunnel server; sasl_wire.py speaks TLS to it with the generated
    CA, verifying the host name, so every answer it reads came encrypted."""
    state = tmp_path_factory.mktemp("tls-state")
    e = start(module_procs, ns, ["--tls", "--state-dir", str(state), "--auth-deadline", "2"], server=gate.server,
              port=9096)
    e.ca = str(state / "ca.pem")
    yield e
    e.broker.stop()


def test_over_tls_plain_is_offered_without_the_flag_and_the_deadline_holds(tls_gate):
    assert "PLAIN is off" not in tls_gate.proxy.text()
    tls_gate.proxy.wait_for(r"^SASL: set sasl.mechanism", timeout=20, stdout=True)  # the block's end
    assert printed_settings(tls_gate.proxy.stdout_text())["security.protocol"] == "SASL_SSL"
    with NothingReaches(tls_gate):
        r = wire(tls_gate, "handshake", mech="PLAIN", ca=tls_gate.ca)
    assert r["handshake"] == 0 and r["mechanisms"] == MECHS, r
    assert 1 < r["eof_after"] < 10, r  # --auth-deadline 2: the handshake alone does not authenticate
    tls_gate.proxy.wait_for(r"authentication did not finish within 2000 ms")


def test_a_sasl_plaintext_client_on_the_tls_gate_port_is_told_sasl_ssl(tls_gate):
    with NothingReaches(tls_gate):
        r = wire(tls_gate, "raw", api=18, version=0, body="")  # a client's first request, in plaintext
    assert r["answer"] is None, r
    tls_gate.proxy.wait_for(r"client spoke plaintext to a TLS port: set security\.protocol=SSL "
                            r"\(SASL_SSL with the authentication gate\)", timeout=10)


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_over_tls_a_right_password_passes_and_a_wrong_one_gets_58_after_the_delay(tls_gate, mech):
    r = wire(tls_gate, "login", mech=mech, user="alice", password="alice-pw", then_metadata=True, ca=tls_gate.ca)
    assert (r["handshake"], r["error"]) == (0, 0), r
    assert r["metadata"]["first"] == f"{CLIENT_TO_SERVER}:{tls_gate.public[1][1]}"
    with NothingReaches(tls_gate):
        r = wire(tls_gate, "login", mech=mech, user="alice", password="not-alice-pw", ca=tls_gate.ca)
    assert (r["handshake"], r["error"], r["message"]) == (0, 58, FAILED_MSG), r
    assert r["seconds"] >= 0.1, r  # the fixed delay (150 ms)
    assert r["eof_after"] < 5, r
    tls_gate.proxy.wait_for(rf'{mech} authentication failed for user "alice": wrong password')


def test_add_user_stores_salted_credentials_and_the_gate_accepts_them(procs, ns, gate, tmp_path):
    f = tmp_path / "users"
    for user, pw in (("carol", "first-pw"), ("dave", "dave-pw"), ("carol", "carol-pw")):
        r = subprocess.run([BORE, "kafka-proxy", "--auth-file", str(f), "--add-user", user], input=pw + "\n",
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    text = f.read_text()
    assert (os.stat(f).st_mode & 0o777) == 0o600
    assert not any(pw in text for pw in ("first-pw", "dave-pw", "carol-pw"))
    lines = text.splitlines()
    assert [ln.split()[0] for ln in lines] == ["carol", "dave"]
    assert all(re.fullmatch(r"\S+ SCRAM-SHA-256:4096:\S+ SCRAM-SHA-512:4096:\S+", ln) for ln in lines)
    broker = Broker(ns)
    env = Env(procs, ns, brokers=0, bootstrap_of=f"127.0.0.1:{broker.port}", port=9093,
              proxy_args=["--auth-file", str(f)], server=gate.server)
    try:
        def login(user, pw):
            return wire(env, "login", mech="SCRAM-SHA-512", user=user, password=pw)["error"]
        assert login("carol", "carol-pw") == 0
        assert login("dave", "dave-pw") == 0
        assert login("carol", "first-pw") == 58  # replaced
    finally:
        broker.stop()


def test_add_user_asks_for_the_password_on_a_terminal_with_echo_off(tmp_path):
    import pty
    import select
    f = tmp_path / "users"
    master, slave = pty.openpty()
    p = subprocess.Popen([BORE, "kafka-proxy", "--auth-file", str(f), "--add-user", "erin"], stdin=slave,
                         stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    seen = b""
    while b"Password for erin: " not in seen:
        assert select.select([master], [], [], 10)[0], seen
        seen += os.read(master, 1024)
    os.write(master, b"tty-secret\n")
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert b"tty-secret" not in seen  # not echoed
    assert "user erin saved in" in out
    assert f.read_text().startswith("erin SCRAM-SHA-256:4096:")
