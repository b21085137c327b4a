"""The command line: help and version in the familiar shape, usage errors
exit 2, environment variables, and the log never shows the secret."""
import subprocess

from conftest import BORE, listen_local


def run(*args, env=None):
    import os
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([BORE, *args], capture_output=True, text=True, timeout=10, env=e)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("bore ")


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    assert "Usage: bore <COMMAND>" in r.stdout
    assert "local" in r.stdout and "server" in r.stdout


def test_local_help():
    r = run("local", "--help")
    assert r.returncode == 0
    assert "Usage: bore local [OPTIONS] --to <TO> <LOCAL_PORT>" in r.stdout
    assert "-l, --local-host <HOST>" in r.stdout and "[default: localhost]" in r.stdout
    assert "[env: BORE_SERVER=]" in r.stdout and "[env: BORE_SECRET=]" in r.stdout
    assert "[env: BORE_LOCAL_PORT=]" in r.stdout
    assert run("help", "local").stdout == r.stdout


def test_server_help():
    r = run("server", "--help")
    assert r.returncode == 0
    for text in ["--min-port <MIN_PORT>", "[env: BORE_MIN_PORT=] [default: 1024]",
                 "--max-port <MAX_PORT>", "[default: 65535]", "--bind-addr <BIND_ADDR>",
                 "--bind-tunnels <BIND_TUNNELS>", "-s, --secret <SECRET>", "--max-handshakes"]:
        assert text in r.stdout


def test_usage_errors_exit_2():
    assert run().returncode == 2
    r = run("nope")
    assert r.returncode == 2 and "unrecognized subcommand 'nope'" in r.stderr
    r = run("local", "80")
    assert r.returncode == 2 and "--to <TO>" in r.stderr
    r = run("local", "99999", "--to", "x")
    assert r.returncode == 2 and "invalid value '99999'" in r.stderr
    r = run("server", "--min-port", "abc")
    assert r.returncode == 2 and "--min-port" in r.stderr
    r = run("server", "--bogus")
    assert r.returncode == 2 and "unexpected argument '--bogus'" in r.stderr
    r = run("local", "1", "--to")
    assert r.returncode == 2 and "a value is required" in r.stderr


def test_environment_variables(procs):
    svc = listen_local()
    addr = "127.0.1.200"
    srv = procs.start([BORE, "server", "--bind-addr", addr],
                      env={"BORE_MIN_PORT": "44000", "BORE_MAX_PORT": "44000",
                           "BORE_SECRET": "env secret"})
    srv.wait_for("ports 44000-44000, secret required")
    cl = procs.start([BORE, "local"], env={"BORE_LOCAL_PORT": str(svc.getsockname()[1]),
                                           "BORE_SERVER": addr, "BORE_SECRET": "env secret"})
    cl.wait_for(rf"listening at {addr}:44000$")
    assert "env secret" not in srv.text() + cl.text()


def test_equals_and_short_forms(procs):
    svc = listen_local()
    srv = procs.server("--min-port=44100", "--max-port=44100", "-s", "s3cret")
    cl = procs.local(svc.getsockname()[1], srv.addr, "-ss3cret", "-p", "44100", "-l", "127.0.0.1")
    assert cl.port == 44100
    assert "s3cret" not in srv.text() + cl.text()
