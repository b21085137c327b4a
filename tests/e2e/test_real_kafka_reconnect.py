"""kafka-proxy survives the network (issue 10), against real Apache Kafka
4.4.0: the tunnel server killed and restarted, the proxy restarted, the
proxy's link cut, the broker behind --bootstrap-server stopped. Clients run
in their own namespace and reach the cluster only through the tunnels
(netns.py). Each outage test prints a FIGURE line: messages lost,
duplicated, time to recover (docs/RELIABILITY.md is made of them).

One real cluster for the module; each test starts its own tunnel server and
kafka-proxy (kafka_env.Env) and leaves the cluster as it found it."""
import re
import subprocess
import tempfile
import time

import pytest

from conftest import upstream_bore
from kafka_env import SECRET, Env
from kafka_rig import CLIENTS, JAVA, verify
from netns import CLIENT_TO_SERVER
from real_rig import real_cluster
from test_real_kafka_faults import Background, exactly_once_in_log

pytestmark = pytest.mark.timeout(900)
PRODUCERS = {"java": JAVA, "confluent": CLIENTS["confluent"]}
COUNT = 50_000
RESTORED = r"(bootstrap|broker \d+): reconnected to .*: restored on the same port (\d+)"


@pytest.fixture(scope="module")
def real(ns):
    yield from real_cluster(ns)


class UpstreamServerEnv(Env):
    """Upstream bore-cli 0.6.0's server in the middle."""

    def start_server(self):
        return self.procs.upstream_server("--min-port", "9000", "--max-port", "29999", "--secret", SECRET,
                                          addr="0.0.0.0", prefix=self.ns.prefix("s"))


def new_env(procs, ns, real, *proxy_args, cls=Env, port=9092):
    e = cls(procs, ns, brokers=0, bootstrap_of=real.address(1), proxy_args=proxy_args, port=port)
    e.real = real
    return e


def ports_of(env):
    return {-1: env.port, **{n: p for n, (_, p) in env.public.items()}}


def restart_server(env):
    env.server.kill()
    t_kill = time.monotonic()
    time.sleep(5)  # the outage itself: a server down for 5 s
    env.server = env.start_server()
    return t_kill


def wait_restored(env, mark, n, timeout=120):
    """Until n tunnels said they are back on their port; returns {name: port}."""
    deadline = time.monotonic() + timeout
    got = {}
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {sorted(got)} restored:\n{env.proxy.text()[-4000:]}"
        m = env.proxy.wait_for(RESTORED, timeout=left, start=mark)
        mark = env.proxy.next_index
        got[m.group(1)] = int(m.group(2))
    return got


def check_same_ports(env, restored):
    want = {("bootstrap" if n < 0 else f"broker {n}"): p for n, p in ports_of(env).items()}
    assert restored == want
    assert "MOVED" not in env.proxy.text()


def start_group(env, topic, group, members=3):
    return [JAVA.stream(env.bootstrap, topic, group, prefix=env.client_ns) for _ in range(members)]


def group_lines(members):
    return sorted((x for m in members for x in m.lines), key=lambda x: x[0])


def longest_gap(lines, after):
    """The longest pause (s) between two consecutive received messages after `after`."""
    ts = [t for t, _, _ in lines if t >= after - 1]
    return max((b - a for a, b in zip(ts, ts[1:])), default=0.0)


def finish(env, producer, members, topic, count):
    """Every acked, every message once in the log, the running group got
    every one and none of its members failed; returns the duplicates the
    running group saw (redelivery after a rebalance, if any)."""
    res = producer.get(timeout=600)
    assert res["acked"] == count and not res["errors"], {k: res[k] for k in res if k != "addresses"}
    want = {f"k{i}" for i in range(count)}
    ok = False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not ok:
        ok = {k for _, k, _ in group_lines(members)} >= want
        time.sleep(0.5)
    assert ok, "the running group lost messages"
    for m in members:
        assert m.p.poll() is None, "a group member failed"
    lines = group_lines(members)
    for m in members:
        assert m.stop() == 0
    got = verify([(k, v) for _, k, v in lines], count)
    assert got["complete"], {k: got[k] for k in got if k != "indices"}
    exactly_once_in_log(env, topic, count, f"{topic}-check")
    return got["duplicates"], lines


def load(env, name, topic, pace):
    env.real.topic(topic, 6)
    members = start_group(env, topic, f"{topic}-readers")
    producer = Background(PRODUCERS[name].produce, env.bootstrap, topic, COUNT, prefix=env.client_ns,
                          pace=pace)
    deadline = time.monotonic() + 120
    while sum(len(m.lines) for m in members) < 1:
        assert time.monotonic() < deadline, "nothing consumed: the producer never got started"
        time.sleep(0.2)
    return producer, members


@pytest.mark.parametrize("name", list(PRODUCERS))
def test_server_sigkill_and_restart_same_ports_every_message_once(procs, ns, real, name):
    env = new_env(procs, ns, real)
    topic = f"srvkill-{name}"
    producer, members = load(env, name, topic, pace=0.4)
    mark = len(env.proxy.lines)
    t_kill = restart_server(env)
    restored = wait_restored(env, mark, len(ports_of(env)))
    t_back = time.monotonic() - t_kill
    check_same_ports(env, restored)
    assert producer.running(), "the producer finished before the outage: not a test under load"
    dups, lines = finish(env, producer, members, topic, COUNT)
    print(f"\nFIGURE server SIGKILL, restarted after 5 s ({name} producer, 3-member Java group): "
          f"lost 0 of {COUNT}, duplicated in the log 0, redelivered to the group {dups}, "
          f"tunnels back {t_back:.1f} s after the kill, longest gap in consumption "
          f"{longest_gap(lines, t_kill):.1f} s")


def test_upstream_server_restart_same_ports(procs, ns, real):
    """The same crash through upstream bore 0.6.0's server: it holds no
    ports, but they are free again and the proxy asks for them."""
    upstream_bore()
    env = new_env(procs, ns, real, cls=UpstreamServerEnv)
    topic = "srvkill-upstream"
    producer, members = load(env, "java", topic, pace=0.4)
    mark = len(env.proxy.lines)
    t_kill = restart_server(env)
    restored = wait_restored(env, mark, len(ports_of(env)))
    t_back = time.monotonic() - t_kill
    check_same_ports(env, restored)
    dups, lines = finish(env, producer, members, topic, COUNT)
    print(f"\nFIGURE upstream server SIGKILL, restarted after 5 s (java): lost 0 of {COUNT}, "
          f"redelivered {dups}, tunnels back {t_back:.1f} s after the kill, longest gap "
          f"{longest_gap(lines, t_kill):.1f} s")


def test_proxy_sigterm_and_restart_same_ports_from_the_state_file(procs, ns, real):
    state = tempfile.mkdtemp(prefix="bore-state-")
    env = new_env(procs, ns, real, "--state-dir", state, port=0)  # no --port: the memory decides
    before = env.bootstrap.split(",")
    topic = "proxy-restart"
    env.real.topic(topic, 6)
    members = start_group(env, topic, f"{topic}-readers")
    first = JAVA.produce(env.bootstrap, topic, 2000, prefix=env.client_ns)
    assert first["acked"] == 2000
    deadline = time.monotonic() + 120
    while len({k for _, k, _ in group_lines(members)}) < 2000:
        assert time.monotonic() < deadline, "the group did not read the first batch"
        time.sleep(0.2)
    old_proxy = env.proxy
    t_stop = time.monotonic()
    old_proxy.p.terminate()
    assert old_proxy.wait() == 0
    old_proxy.killed = True
    # started again, the same way; only the state directory remembers the ports
    env.proxy = env.start_proxy(env.real.address(1), port=0, extra=("--state-dir", state))
    m = env.proxy.wait_for(r"^bootstrap\.servers=(\S+)$", timeout=30, stdout=True)
    t_back = time.monotonic() - t_stop
    servers = m.group(1).split(",")
    assert servers[0] == env.bootstrap.split(",")[0]
    assert sorted(servers) == sorted(env.bootstrap.split(","))
    assert "asking for port" in env.proxy.text()
    after = JAVA.produce(env.bootstrap, topic, 2000, prefix=env.client_ns, start=2000)
    assert after["acked"] == 2000
    deadline = time.monotonic() + 180
    while len({k for _, k, _ in group_lines(members)}) < 4000:
        assert time.monotonic() < deadline, "the group did not carry on after the proxy restart"
        time.sleep(0.2)
    for mem in members:
        assert mem.p.poll() is None, "a group member failed"
    lines = group_lines(members)
    for mem in members:
        assert mem.stop() == 0
    got = verify([(k, v) for _, k, v in lines], 4000)
    assert got["complete"]
    print(f"\nFIGURE kafka-proxy SIGTERM + restart: same {len(before)} ports from the state file, "
          f"proxy ready again {t_back:.1f} s after the stop, lost 0 of 4000, redelivered "
          f"{got['duplicates']}")


def test_bootstrap_broker_stopped_new_clients_of_every_kind_still_bootstrap(procs, ns, real):
    env = new_env(procs, ns, real)
    only_bootstrap = env.bootstrap.split(",")[0]  # the bootstrap tunnel alone, not the brokers' list
    topic = "bootstrap-failover"
    env.real.topic(topic, 3)
    clients = {"java": JAVA, **CLIENTS}
    env.real.stop_broker(1, kill=False)
    try:
        for name, c in clients.items():
            p = c.produce(only_bootstrap, topic, 20, prefix=env.client_ns, start=0)
            assert p["acked"] == 20 and not p["errors"], (name, p)
            r = c.consume(only_bootstrap, topic, f"fo-{name}", 20, prefix=env.client_ns, timeout=90)
            assert r["count"] >= 20, (name, r)
    finally:
        env.real.start_broker(1)
    for name, c in clients.items():
        p = c.produce(only_bootstrap, topic, 20, prefix=env.client_ns, start=0)
        assert p["acked"] == 20 and not p["errors"], (name, p)
    assert env.proxy.p.poll() is None


def cut(ns, seconds):
    tag = ns.names["c"][len("bore"):-1]
    dev = f"bc{tag}"
    subprocess.run([*ns.prefix("c"), "ip", "link", "set", dev, "down"], check=True)
    try:
        time.sleep(seconds)  # the outage itself
    finally:
        subprocess.run([*ns.prefix("c"), "ip", "link", "set", dev, "up"], check=True)
        subprocess.run([*ns.prefix("c"), "ip", "addr", "replace", "192.0.2.1/30", "dev", dev], check=True)


def test_network_cut_10s_same_ports_nothing_lost(procs, ns, real):
    env = new_env(procs, ns, real)
    topic = "cut-10"
    producer, members = load(env, "java", topic, pace=0.4)
    mark = len(env.proxy.lines)
    t_cut = time.monotonic()
    cut(ns, 10)
    assert producer.running()
    dups, lines = finish(env, producer, members, topic, COUNT)
    text = "\n".join(x for x in env.proxy.lines[mark:] if x)
    assert "MOVED" not in text
    reconnects = len(re.findall(RESTORED, text))
    print(f"\nFIGURE network cut 10 s (proxy's link): lost 0 of {COUNT}, redelivered {dups}, "
          f"tunnels reconnected {reconnects}, longest gap in consumption {longest_gap(lines, t_cut):.1f} s")


def test_network_cut_90s_ports_freed_then_taken_back(procs, ns, real):
    """Longer than the server's detection (20 s) plus grace (30 s): the
    ports are freed, and taken back when the link returns (nobody took
    them). A 3-member group idle through the cut (longer than its 45 s
    session timeout) recovers and reads what is produced after."""
    env = new_env(procs, ns, real)
    before = ports_of(env)
    topic = "cut-90"
    env.real.topic(topic, 6)
    members = start_group(env, topic, f"{topic}-readers")
    p = JAVA.produce(env.bootstrap, topic, 1000, prefix=env.client_ns)
    assert p["acked"] == 1000 and not p["errors"]
    deadline = time.monotonic() + 120
    while len({k for _, k, _ in group_lines(members)}) < 1000:
        assert time.monotonic() < deadline, "the group did not read the first batch"
        time.sleep(0.2)
    mark = len(env.proxy.lines)
    smark = len(env.server.lines)
    t_cut = time.monotonic()
    cut(ns, 90)
    # the server noticed, held each port for its grace, then freed it
    for port in before.values():
        env.server.wait_for(rf"port {port} released: its client .* did not come back within 30 s",
                            timeout=1, start=smark)
    restored = wait_restored(env, mark, len(before), timeout=120)
    t_back = time.monotonic() - t_cut - 90
    check_same_ports(env, restored)
    t_sent = time.monotonic()
    p = JAVA.produce(env.bootstrap, topic, 4000, prefix=env.client_ns, start=1000)
    assert p["acked"] == 4000 and not p["errors"]
    deadline = time.monotonic() + 180
    while len({k for _, k, _ in group_lines(members)}) < 5000:
        assert time.monotonic() < deadline, "the group did not recover after the cut"
        time.sleep(0.2)
    t_group = time.monotonic() - t_sent
    for m in members:
        assert m.p.poll() is None, "a group member failed"
    lines = group_lines(members)
    for m in members:
        assert m.stop() == 0
    got = verify([(k, v) for _, k, v in lines], 5000)
    assert got["complete"]
    exactly_once_in_log(env, topic, 5000, "cut-90-check")
    print(f"\nFIGURE network cut 90 s (proxy's link): ports freed after the grace, all {len(before)} "
          f"taken back {t_back:.1f} s after the link came up; lost 0 of 5000, redelivered to the "
          f"group {got['duplicates']}; the idle group had the next 4000 {t_group:.1f} s after a new producer started")
