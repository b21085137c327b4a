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


def test_help_and_readme_document_exit_codes():
    r = run("--help")
    assert "Exit status: 0 when stopped by SIGINT (Ctrl-C) or SIGTERM; 1 on an error" in r.stdout
    assert "2 on a usage error" in r.stdout
    import os
    from conftest import ROOT
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "### Exit codes" in readme


def test_usage_errors_exit_2_everywhere():
    r = run("kafka-proxy", "-b", "127.0.0.60:abc")
    assert r.returncode == 2
    assert "invalid value '127.0.0.60:abc' for '--bootstrap-server <HOST:PORT>'" in r.stderr
    r = run("local", "0", "--to", "127.0.0.1")
    assert r.returncode == 2
    assert "invalid value '0' for '<LOCAL_PORT>': expected a number from 1 to 65535" in r.stderr
    r = run("local", "80", "--to", "a:1:2")
    assert r.returncode == 2 and "invalid value 'a:1:2' for '--to <TO>'" in r.stderr
    r = run("server", "--control-port", "0")
    assert r.returncode == 2 and "--control-port" in r.stderr


def test_typos_get_a_did_you_mean():
    r = run("lcoal", "80")
    assert r.returncode == 2
    assert "unrecognized subcommand 'lcoal'\n\n  tip: a similar subcommand exists: 'local'" in r.stderr
    r = run("help", "sever")
    assert r.returncode == 2 and "a similar subcommand exists: 'server'" in r.stderr
    r = run("local", "80", "--too", "127.0.0.1")
    assert r.returncode == 2
    assert "unexpected argument '--too' found\n\n  tip: a similar argument exists: '--to'" in r.stderr
    r = run("server", "--secert=x")
    assert r.returncode == 2 and "a similar argument exists: '--secret'" in r.stderr
    r = run("kafka-proxy", "--bootstrap-sever", "x")
    assert r.returncode == 2 and "a similar argument exists: '--bootstrap-server'" in r.stderr
    # Nothing close: no tip.
    r = run("server", "--bogus")
    assert r.returncode == 2 and "tip" not in r.stderr
    r = run("frobnicate")
    assert r.returncode == 2 and "tip" not in r.stderr


def test_bind_addr_must_be_an_ip_address():
    for opt in ("--bind-addr", "--bind-tunnels"):
        r = run("server", opt, "localhost")
        assert r.returncode == 2
        assert (f"invalid value 'localhost' for '{opt} <" in r.stderr
                and "an IP address is required" in r.stderr)


def test_unknown_log_level_is_reported(procs):
    r = run("local", "0", env={"BORE_LOG": "verbose"})
    assert ("WARN bore: unknown BORE_LOG level 'verbose' (valid: error, warn, info, debug, trace); "
            "logging at info") in r.stderr
    r = run("local", "0", env={"BORE_LOG": "debug"})
    assert "unknown BORE_LOG" not in r.stderr


def test_bind_tunnels_is_explained():
    """The protocol does not tell clients where tunnels listen: the option's
    help and the server's start-up line say so."""
    r = run("server", "--help")
    assert "(clients are not told it: they print the address they dialled)" in r.stdout


def test_bind_tunnels_start_up_line(procs):
    srv = procs.server("--bind-tunnels", "127.0.0.1")
    srv.wait_for(r"tunnels on 127\.0\.0\.1 ports 1024-65535 \(clients are not told the tunnel "
                 r"address: their \"listening at\" line shows the server address they dialled")
    plain = procs.server()
    assert "clients are not told" not in plain.text()


def write_secret(tmp_path, text, mode=0o600):
    import os
    p = tmp_path / "secret"
    p.write_text(text)
    os.chmod(p, mode)
    return str(p)


def test_secret_file(procs, tmp_path):
    """--secret-file: the trailing newline is not part of the secret, and
    the secret never shows in the logs."""
    path = write_secret(tmp_path, "file secret\n")
    svc = listen_local()
    srv = procs.server("--secret-file", path)
    srv.wait_for("secret required")
    cl = procs.local(svc.getsockname()[1], srv.addr, "--secret-file", path)
    # The same secret typed out: the newline was stripped.
    cl2 = procs.local(svc.getsockname()[1], srv.addr, "--secret", "file secret")
    assert cl.port and cl2.port
    assert "file secret" not in srv.text() + cl.text() + cl2.text()
    assert "readable by every user" not in srv.text() + cl.text()
    # BORE_SECRET from the environment gives way to the file.
    cl3 = procs.local(svc.getsockname()[1], srv.addr, "--secret-file", path,
                      env={"BORE_SECRET": "wrong"})
    assert cl3.port


def test_secret_file_errors(tmp_path):
    path = write_secret(tmp_path, "s\n")
    r = run("local", "80", "--to", "127.0.0.1", "--secret", "x", "--secret-file", path)
    assert r.returncode == 2
    assert "the argument '--secret <SECRET>' cannot be used with '--secret-file <PATH>'" in r.stderr
    r = run("server", "--secret-file", str(tmp_path / "missing"))
    assert r.returncode == 2
    assert "invalid value '" in r.stderr and "No such file or directory" in r.stderr


def test_world_readable_secret_file_warns(tmp_path):
    path = write_secret(tmp_path, "s\n", mode=0o644)
    r = run("kafka-proxy", "-b", "127.0.0.1:1", "--to", "127.0.0.1", "--secret-file", path)
    assert r.returncode == 1
    assert (f"WARN bore: the secret file {path} is readable by every user of this machine "
            "(chmod 600 it)") in r.stderr


def test_kafka_proxy_warns_when_its_ports_are_public_and_unprotected(tmp_path):
    """An internet-facing server (11.22.33.44 is routable; nothing is ever
    sent there: the unreachable Kafka ends the run first), no TLS: one
    warning line, before anything else."""
    r = run("kafka-proxy", "-b", "127.0.0.1:1", "--to", "11.22.33.44")
    assert r.returncode == 1
    warns = [ln for ln in r.stderr.splitlines() if " WARN " in ln]
    assert len(warns) == 1, r.stderr
    assert ("WARN bore::kafka: Kafka at 127.0.0.1:1 will be public on 11.22.33.44 with no TLS and "
            "no authentication: anyone who finds its ports can read and write every topic") in warns[0]
    assert r.stderr.splitlines()[0] == warns[0]
    assert "Error: Kafka at 127.0.0.1:1: not reachable: connection refused" in r.stderr
    # A private server: no warning. A secret only guards who opens tunnels,
    # not the public ports: still the warning.
    for args in (["--to", "127.0.0.1"], ["--to", "10.1.2.3"]):
        r = run("kafka-proxy", "-b", "127.0.0.1:1", *args)
        assert r.returncode == 1 and "no authentication" not in r.stderr, args
    r = run("kafka-proxy", "-b", "127.0.0.1:1", "--to", "11.22.33.44",
            "--secret-file", write_secret(tmp_path, "s"))
    assert "with no TLS and no authentication" in r.stderr


def test_kafka_proxy_map_strict_check_usage_errors_exit_2():
    """--map takes ADVERTISED_HOST:PORT=HOST:PORT or NODE_ID=HOST:PORT, may be
    repeated but not for the same broker; --strict and --check take no value."""
    bad = {
        "kafka-1:29092": "expected ADVERTISED_HOST:PORT=HOST:PORT or NODE_ID=HOST:PORT",
        "kafka-1=127.0.0.1:19092": "the left side must be the advertised HOST:PORT (with its port) or a node id",
        "1=127.0.0.1": "the right side must be HOST:PORT (with its port)",
        "1=127.0.0.1:70000": "the right side must be HOST:PORT (with its port)",
        "99999999999=127.0.0.1:1": "the left side must be",
    }
    for value, why in bad.items():
        r = run("kafka-proxy", "--check", "--map", value)
        assert r.returncode == 2, (value, r)
        assert f"invalid value '{value}' for '--map <ADVERTISED_HOST:PORT=HOST:PORT>': {why}" in r.stderr, r.stderr
    r = run("kafka-proxy", "--check", "--map", "2=a:1", "--map", "2=b:1")
    assert r.returncode == 2 and "this broker is already mapped by an earlier --map" in r.stderr
    r = run("kafka-proxy", "--check", "--map", "K-2:9=a:1", "--map", "k-2:9=b:1")  # names: any case
    assert r.returncode == 2 and "already mapped" in r.stderr
    r = run("kafka-proxy", "--check=yes")
    assert r.returncode == 2 and "unexpected value 'yes' for '--check': it takes no value" in r.stderr
    r = run("kafka-proxy", "--strict", "--strict")
    assert r.returncode == 2 and "cannot be used multiple times" in r.stderr
    r = run("kafka-proxy", "--help")
    for line in ("      --map <ADVERTISED_HOST:PORT=HOST:PORT>", "      --strict  ", "      --check  "):
        assert line in r.stdout, r.stdout


def test_kafka_proxy_help():
    r = run("kafka-proxy", "--help")
    assert r.returncode == 0
    assert "Usage: bore kafka-proxy [OPTIONS]" in r.stdout
    for text in ["-b, --bootstrap-server <HOST:PORT>", "[default: localhost:9092]",
                 "--advertised-host <HOST>", "[default: the --to host]", "--heartbeat-timeout <SECONDS>",
                 "--max-frame-size <BYTES>", "[default: 104857600]", "[env: BORE_SECRET=]",
                 "--secret-file <PATH>"]:
        assert text in r.stdout, text
    assert run("help", "kafka-proxy").stdout == r.stdout
