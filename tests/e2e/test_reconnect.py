"""Reconnect (issue 10), tunnel level: `bore local` comes back on the same
public port after its server restarts; our server holds a port for --grace
after its control connection ends, parks the visitors that arrive
meanwhile and hands them to the client that takes the port back; a held
port is refused to anyone who cannot authenticate; "port already in use"
is asked again until --reclaim-timeout, then the client moves and says so.
Each test prints the figures it measured (time to recover)."""
import json
import re
import socket
import threading
import time

from conftest import Ctl, auth_tag, listen_local

RANGE = ["--min-port", "42000", "--max-port", "42999"]


def echo_server():
    """A local service that echoes every connection (threads, daemon)."""
    lst = listen_local()

    def serve(c):
        with c:
            while data := c.recv(65536):
                c.sendall(data)

    def loop():
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return lst


def echo_through(addr, port, payload=b"ping", timeout=10):
    with socket.create_connection((addr, port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def hello(ctl, port):
    ctl.send(json.dumps({"Hello": port}).encode() + b"\0")
    return ctl.frame()


def restart_server(procs, srv, *extra):
    srv.kill()
    return procs.server(*RANGE, *extra, addr=srv.addr)


def test_local_reconnects_to_the_same_port_after_a_server_restart(procs):
    svc = echo_server()
    srv = procs.server(*RANGE)
    cl = procs.local(svc.getsockname()[1], srv.addr)
    assert echo_through(srv.addr, cl.port) == b"ping"
    mark = len(cl.lines)
    t0 = time.monotonic()
    srv2 = restart_server(procs, srv)
    cl.wait_for(rf"lost the control connection to {srv.addr}:7835 \(port {cl.port}\)", start=mark)
    cl.wait_for(r"reconnecting to .* \(attempt 1, next try in \d+\.\d s\)", start=mark)
    cl.wait_for(rf"restored on the same port {cl.port} after", timeout=30, start=mark)
    cl.wait_for(rf"listening at {re.escape(srv.addr)}:{cl.port} again", start=mark)
    srv2.wait_for(rf"new tunnel on port {cl.port}")
    # the same client, not restarted, serves visitors again on its port
    assert echo_through(srv.addr, cl.port, b"after the restart") == b"after the restart"
    print(f"\nFIGURE bore local, server SIGKILL + restart: same port, {time.monotonic() - t0:.1f} s "
          "to a working tunnel")


def test_open_connections_keep_flowing_while_the_control_connection_is_down(procs):
    """A relayed connection is its own TCP connection: the client losing
    its control connection (the server's --grace holds the port) does not
    touch it."""
    svc = echo_server()
    srv = procs.server(*RANGE)
    cl = procs.local(svc.getsockname()[1], srv.addr, "--heartbeat-timeout", "1")
    v = socket.create_connection((srv.addr, cl.port), timeout=10)
    v.sendall(b"one")
    assert v.recv(3) == b"one"
    # A silent server (SIGSTOP would freeze the relays too): the client's
    # 1 s heartbeat timeout fires while the server is only slow to answer.
    import signal
    mark = len(cl.lines)
    srv.p.send_signal(signal.SIGSTOP)
    try:
        cl.wait_for(r"lost the control connection .*no heartbeat", timeout=10, start=mark)
    finally:
        srv.p.send_signal(signal.SIGCONT)
    cl.wait_for(rf"restored on the same port {cl.port}", timeout=30, start=mark)
    v.sendall(b"two")
    assert v.recv(3) == b"two"
    v.close()


def test_server_holds_a_port_and_hands_a_parked_visitor_to_its_returning_client(procs):
    srv = procs.server(*RANGE, "--grace", "20")
    c = Ctl(srv.addr)
    m = json.loads(hello(c, 0))
    port = m["Hello"]
    assert c.frame() == b'"Heartbeat"'
    c.close()
    srv.wait_for(rf"tunnel on port {port}: the control connection from .* ended; holding the port "
                 r"for 20 s")
    v = socket.create_connection((srv.addr, port), timeout=10)  # still listening
    srv.wait_for(rf"new visitor .* on port {port}, parked until its client comes back")
    back = Ctl(srv.addr)
    t0 = time.monotonic()
    assert json.loads(hello(back, port)) == {"Hello": port}
    srv.wait_for(rf"port {port} handed back to its client .* \(1 visitor waiting\)")
    f = back.frame()
    deadline = time.monotonic() + 5  # heartbeats every 500 ms: the Connection comes first or not at all
    while f == b'"Heartbeat"' and time.monotonic() < deadline:
        f = back.frame()
    assert f != b'"Heartbeat"', "the parked visitor was not announced to the returning client"
    uid = json.loads(f)["Connection"]
    a = Ctl(srv.addr)
    a.send(json.dumps({"Accept": uid}).encode() + b"\0")
    v.sendall(b"hello from the parked visitor")
    got = b""
    while len(got) < 29:
        got += a.s.recv(100)
    assert got == b"hello from the parked visitor"
    print(f"\nFIGURE parked visitor announced {time.monotonic() - t0:.2f} s after the Hello")
    a.close()
    v.close()
    back.close()


def test_held_port_is_released_at_the_grace_deadline(procs):
    srv = procs.server(*RANGE, "--grace", "2")
    c = Ctl(srv.addr)
    port = json.loads(hello(c, 0))["Hello"]
    c.close()
    srv.wait_for(rf"holding the port for 2 s")
    t0 = time.monotonic()
    srv.wait_for(rf"port {port} released: its client .* did not come back within 2 s", timeout=10)
    held = time.monotonic() - t0
    assert 1.0 < held < 5.0
    try:
        socket.create_connection((srv.addr, port), timeout=3).close()
        listening = True
    except OSError:
        listening = False
    assert not listening
    c2 = Ctl(srv.addr)
    assert json.loads(hello(c2, port)) == {"Hello": port}
    srv.wait_for(rf"new tunnel on port {port} ")
    c2.close()


def test_grace_0_frees_the_port_at_once(procs):
    srv = procs.server(*RANGE, "--grace", "0")
    c = Ctl(srv.addr)
    port = json.loads(hello(c, 0))["Hello"]
    c.close()
    srv.wait_for(rf"tunnel on port {port} closed")
    assert "holding the port" not in srv.text()


def authenticate(addr, secret):
    c = Ctl(addr)
    challenge = json.loads(c.frame())["Challenge"]
    c.send(json.dumps({"Authenticate": auth_tag(secret, challenge)}).encode() + b"\0")
    return c


def test_a_held_port_is_refused_to_clients_without_the_secret(procs):
    srv = procs.server(*RANGE, "--secret", "s3cret", "--grace", "20")
    owner = authenticate(srv.addr, "s3cret")
    port = json.loads(hello(owner, 0))["Hello"]
    owner.close()
    srv.wait_for(rf"holding the port for 20 s")
    wrong = authenticate(srv.addr, "wrong")
    wrong.send(json.dumps({"Hello": port}).encode() + b"\0")
    assert wrong.frame() == b'{"Error":"invalid secret"}'
    none = Ctl(srv.addr)
    none.frame()  # the challenge, unanswered
    none.send(json.dumps({"Hello": port}).encode() + b"\0")
    assert none.frame() == b'{"Error":"server requires secret, but no secret was provided"}'
    assert "handed back" not in srv.text()
    back = authenticate(srv.addr, "s3cret")
    assert json.loads(hello(back, port)) == {"Hello": port}
    srv.wait_for(rf"port {port} handed back")
    back.close()


def test_port_in_use_is_asked_again_then_the_client_moves_and_says_so(procs):
    svc = echo_server()
    srv = procs.server(*RANGE)
    cl = procs.local(svc.getsockname()[1], srv.addr, "--reclaim-timeout", "2")
    old = cl.port
    mark = len(cl.lines)
    srv.kill()
    # its first attempt failed: the next is 0.5-1 s away, time for the squatter
    cl.wait_for(r"attempt 2, next try in", timeout=10, start=mark)
    srv2 = procs.server(*RANGE, addr=srv.addr)
    squatter = Ctl(srv2.addr)  # a stranger takes the port first
    squatter.send(json.dumps({"Hello": old}).encode() + b"\0")
    first = squatter.frame()
    if first != json.dumps({"Hello": old}).encode().replace(b" ", b""):
        # the client was quicker: nothing to test this time but its return
        print("\nNOTE the client was quicker than the squatter")
        cl.wait_for(rf"restored on the same port {old}", timeout=30, start=mark)
        return
    cl.wait_for(rf"port {old} is still in use on the server \(asking again", timeout=30, start=mark)
    cl.wait_for(rf"port {old} is still in use on the server after 2 s: asking for a new port",
                timeout=30, start=mark)
    m = cl.wait_for(r"MOVED to a new port: (\d+) \(port \d+ could not be had back\)", timeout=30,
                    start=mark)
    new = int(m.group(1))
    assert new != old
    cl.wait_for(rf"listening at {re.escape(srv.addr)}:{new}: MOVED from port {old}", start=mark)
    assert echo_through(srv.addr, new) == b"ping"
    squatter.close()


def test_reconnect_attempts_gives_up_and_no_reconnect_exits_at_once(procs):
    svc = echo_server()
    srv = procs.server(*RANGE)
    a = procs.local(svc.getsockname()[1], srv.addr, "--reconnect-attempts", "2")
    b = procs.local(svc.getsockname()[1], srv.addr, "--no-reconnect")
    srv.stop()
    assert b.wait() == 1
    b.expect_rc = 1
    assert b.text().endswith("Error: the server closed the connection")
    assert "reconnecting" not in b.text()
    assert a.wait(timeout=30) == 1
    a.expect_rc = 1
    assert re.search(r"attempt 2, next try in", a.text())
    assert re.search(r"Error: gave up reconnecting after 2 attempts: could not connect to", a.text())


def test_local_reconnects_to_the_same_port_through_an_upstream_server(procs):
    """No new wire message: upstream bore 0.6's server gives the port back
    because it is free again."""
    svc = echo_server()
    srv = procs.upstream_server(*RANGE)
    cl = procs.local(svc.getsockname()[1], srv.addr)
    mark = len(cl.lines)
    srv.kill()
    procs.upstream_server(*RANGE, addr=srv.addr)
    cl.wait_for(rf"restored on the same port {cl.port} after", timeout=30, start=mark)
    assert echo_through(srv.addr, cl.port) == b"ping"


def test_kafka_proxy_remembers_its_ports_and_takes_a_new_one_for_a_port_now_taken(procs, ns, tmp_path):
    """kafka-proxy (mock cluster): its ports go to ports.json in the state
    directory; started again it asks for them. Broker 2's port was taken
    meanwhile (a `bore local` asked for it): broker 2 gets a new port, says
    so, and the file follows; the others are back on theirs."""
    from conftest import BORE
    from kafka_env import SECRET, Env
    from netns import CLUSTER_TO_SERVER
    state = str(tmp_path)
    env = Env(procs, ns, proxy_args=("--state-dir", state), port=0)
    first = env.bootstrap.split(",")
    env.proxy.wait_for(r"public ports remembered in .*/ports\.json")
    saved = json.load(open(f"{state}/ports.json"))
    (key, ports), = saved["clusters"].items()
    assert key.startswith(f"{CLUSTER_TO_SERVER}:7835|127.0.0.1:")
    assert sorted(ports) == ["-1", "1", "2", "3"]
    assert sorted(f"192.0.2.6:{p}" for p in ports.values()) == sorted(first)
    env.proxy.p.terminate()
    assert env.proxy.wait() == 0
    env.proxy.killed = True
    taken = ports["2"]
    squatter = procs.start([*ns.prefix("c"), BORE, "local", "1", "--to", CLUSTER_TO_SERVER, "-s", SECRET,
                            "--port", str(taken)])
    squatter.wait_for(rf"listening at {CLUSTER_TO_SERVER}:{taken}$")
    again = env.start_proxy(env.cluster.bootstrap.split(",")[0], port=0, extra=("--state-dir", state))
    m = again.wait_for(r"^bootstrap\.servers=(\S+)$", timeout=30, stdout=True)
    second = m.group(1).split(",")
    again.wait_for(rf"broker 2: the port it had before, {taken}, is not available \(port already in "
                   r"use\): asking for a new one")
    for node in ("-1", "1", "3"):
        assert f"192.0.2.6:{ports[node]}" in second
    assert f"192.0.2.6:{taken}" not in second
    assert second[0] == first[0]  # the bootstrap first, on its old port
    again.wait_for(r"public ports remembered in .*/ports\.json")
    now = json.load(open(f"{state}/ports.json"))["clusters"][key]
    assert now["2"] != taken and f"192.0.2.6:{now['2']}" in second
    assert {k: v for k, v in now.items() if k != "2"} == {k: v for k, v in ports.items() if k != "2"}


def test_kafka_proxy_broker_that_cannot_have_its_port_back_moves_and_clients_learn_it(procs, ns):
    """kafka-proxy (mock cluster): the server restarts and a stranger takes
    broker 2's port before the proxy is back: broker 2's tunnel asks again
    until --reclaim-timeout, then takes a new port and says so; the others
    are restored; a client's Metadata (through the unchanged bootstrap
    port) names broker 2's new port."""
    from conftest import BORE
    from kafka_env import SECRET, Env
    from kafka_rig import CLIENTS
    from netns import CLUSTER_TO_SERVER
    import subprocess
    env = Env(procs, ns, proxy_args=("--reclaim-timeout", "1"))
    old = env.public[2][1]
    mark = len(env.proxy.lines)
    # The proxy's link is down while the server restarts and the stranger
    # (in the server's namespace) takes the port: the stranger comes first.
    dev = f"bc{ns.names['c'][len('bore'):-1]}"
    subprocess.run([*ns.prefix("c"), "ip", "link", "set", dev, "down"], check=True)
    try:
        env.server.kill()
        env.server = env.start_server()
        squatter = procs.start([*ns.prefix("s"), BORE, "local", "1", "--to", "127.0.0.1", "-s", SECRET,
                                "--port", str(old)])
        squatter.wait_for(rf"listening at 127\.0\.0\.1:{old}$")
    finally:
        subprocess.run([*ns.prefix("c"), "ip", "link", "set", dev, "up"], check=True)
    env.proxy.wait_for(rf"broker 2: port {old} is still in use on the server after 1 s: asking for a new "
                       r"port", timeout=30, start=mark)
    m = env.proxy.wait_for(rf"broker 2 moved to public port (\d+) \(was {old}\): clients learn it from "
                           r"their next Metadata", timeout=30, start=mark)
    new = int(m.group(1))
    for name in ("bootstrap", "broker 1", "broker 3"):
        env.proxy.wait_for(rf"{name}: reconnected to .*: restored on the same port", timeout=30, start=mark)
    md = CLIENTS["kcat"].metadata(f"192.0.2.6:{env.port}", prefix=env.client_ns)
    ports = {b["id"]: b["port"] for b in md["brokers"]}
    assert ports[2] == new and ports[1] == env.public[1][1] and ports[3] == env.public[3][1]


def test_kafka_proxy_nodes_are_down_and_reconnecting_while_the_server_is_gone(procs, ns):
    """kafka-proxy --metrics: every node's bore_kafka_node_tunnel_up is 0 and
    its /status state "reconnecting" (public port kept) from the moment its
    control connection is lost; 1 and "listening" on the same port once the
    server is back."""
    from kafka_env import Env
    from test_metrics import http_get, samples
    env = Env(procs, ns, proxy_args=("--metrics", "127.0.0.1:9464"))
    names = {"bootstrap": "bootstrap", "1": "broker 1", "2": "broker 2", "3": "broker 3"}

    def nodes():
        get = lambda path: http_get("127.0.0.1", 9464, path, prefix=ns.prefix("c"))[1]  # noqa: E731
        s = samples(get("/metrics"))
        return {r["name"]: (s[("bore_kafka_node_tunnel_up", (("node", r["name"]),))], r["state"],
                            r["public_port"]) for r in json.loads(get("/status"))["nodes"]}

    before = nodes()
    assert {n: v[:2] for n, v in before.items()} == {n: (1, "listening") for n in names}
    mark = len(env.proxy.lines)
    env.server.kill()
    for name in names.values():
        env.proxy.wait_for(rf"{name}: lost the control connection", start=mark)
    assert nodes() == {n: (0, "reconnecting", before[n][2]) for n in names}
    env.server = env.start_server()
    for name in names.values():
        env.proxy.wait_for(rf"{name}: reconnected to .*: restored on the same port", timeout=30, start=mark)
    assert nodes() == {n: (1, "listening", before[n][2]) for n in names}
