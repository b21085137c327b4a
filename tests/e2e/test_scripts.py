"""The user-facing scripts (issue 16): scripts/kafka-cluster runs a real
cluster in the foreground until Ctrl-C; scripts/demo stops at its first
failure with the cause, and leaves nothing behind. Each runs in a network
namespace of its own, so that its fixed ports are its own."""
import glob
import os
import signal
import subprocess
import tempfile

import pytest

from conftest import ROOT


@pytest.fixture
def private_ns():
    name = f"bores{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield ["ip", "netns", "exec", name]
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def kafka_dirs():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "bore-kafka-*")))


def test_kafka_cluster_runs_in_the_foreground_until_ctrl_c(private_ns):
    before = kafka_dirs()
    p = subprocess.Popen([*private_ns, os.path.join(ROOT, "scripts", "kafka-cluster"), "--brokers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("bootstrap.servers=127.0.0.1:19091"), (line, p.stderr.read() if p.poll() else "")
        assert p.poll() is None  # stays up
        # It is a Kafka broker: it answers ApiVersions.
        probe = subprocess.run([*private_ns, "/usr/bin/python3", "-c", """
import socket, struct
s = socket.create_connection(("127.0.0.1", 19091), timeout=10)
s.sendall(struct.pack(">ihhih", 10, 18, 0, 1, 0))
size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
print(struct.unpack(">ih", s.recv(6, socket.MSG_WAITALL)))
"""], capture_output=True, text=True, timeout=30)
        assert probe.stdout.strip() == "(1, 0)", probe
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(90)
    err = p.stderr.read()
    assert rc == 0, err
    assert "press Ctrl-C to stop" in err and "stopping the cluster" in err
    assert kafka_dirs() <= before  # its data went with it


def test_demo_stops_at_once_when_the_control_port_is_taken(private_ns):
    holder = subprocess.Popen([*private_ns, "/usr/bin/python3", "-c", """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7835)); s.listen(); print("ready", flush=True); sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        before = set(glob.glob(os.path.join(tempfile.gettempdir(), "tmp.*")))
        r = subprocess.run([*private_ns, os.path.join(ROOT, "scripts", "demo")], capture_output=True,
                           text=True, timeout=600)
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert r.returncode == 1
    assert "demo: FAILED: port 7835 is already in use" in r.stderr
    assert "bore server" not in r.stdout  # nothing was started
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "tmp.*"))) <= before  # no folder left


def test_demo_names_the_cause_when_a_process_fails(private_ns, tmp_path):
    """bore kafka-proxy refused by the server (a wrong --secret, simulated by
    a server wrapper): the demo says which step failed and shows its log."""
    fake = tmp_path / "bore"
    fake.write_text(f"""#!/bin/sh
if [ "$1" = kafka-proxy ]; then echo "Error: server error: invalid secret" >&2; exit 1; fi
exec {ROOT}/build/bore "$@"
""")
    fake.chmod(0o755)
    env = dict(os.environ, BORE_DEMO_BIN=str(fake))
    r = subprocess.run([*private_ns, os.path.join(ROOT, "scripts", "demo")], capture_output=True,
                       text=True, timeout=600, env=env)
    assert r.returncode == 1
    assert "demo: FAILED: bore kafka-proxy did not start" in r.stderr
    assert "Error: server error: invalid secret" in r.stderr  # the cause, from its log
    assert "bootstrap.servers" not in r.stdout
