"""Packaged like a daemon: `make install` (PREFIX, DESTDIR) puts the binary,
bore(1), the systemd unit of `bore server`, bash completion and an example
environment file where the FHS expects them, and `make uninstall` removes
them; systemd-analyze accepts the unit and rates it hardened, and the server
makes no system call and opens no socket family its sandbox forbids; mandoc
finds nothing to say about the man page; the completion completes; and every option
of `bore <command> --help` has its entry in the man page and the completion
(so a new option without them fails here)."""
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess

import pytest

from conftest import BORE, ROOT, listen_local, next_addr, read_to_eof, sanitized

BIN = os.path.abspath(BORE)
# The tree to install from (the mutation runner points it at its scratch copy).
SRC = os.environ.get("BORE_SRC", ROOT)
MAN = os.path.join(SRC, "docs", "bore.1")
COMPLETION = os.path.join(SRC, "dist", "bore.bash")
COMMANDS = ["local", "server", "kafka-proxy"]


def make(*args, destdir):
    env = {k: v for k, v in os.environ.items() if k not in ("PREFIX", "DESTDIR", "MAKEFLAGS")}
    r = subprocess.run(["make", "-s", "-C", SRC, *args, "BIN=" + BIN, "DESTDIR=" + str(destdir)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def installed(destdir):
    out = {}
    for d, _, files in os.walk(destdir):
        for f in files:
            p = os.path.join(d, f)
            out["/" + os.path.relpath(p, destdir)] = p
    return out


def help_options(cmd):
    """{option: value name or None} of `bore CMD --help`, short options included."""
    r = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    opts = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s+(?:-(\w), )?--([\w-]+)(?: <([^>]+)>)?\s", line)
        if m:
            short, long_, value = m.groups()
            opts["--" + long_] = value
            if short:
                opts["-" + short] = value
    assert "--help" in opts, r.stdout
    return opts


# -- make install / uninstall ---------------------------------------------------

@pytest.mark.parametrize("prefix", ["/usr", None], ids=["PREFIX=/usr", "default-PREFIX"])
def test_make_install_puts_every_file_where_the_fhs_expects_and_uninstall_removes_them(tmp_path, prefix):
    p = prefix or "/usr/local"
    args = ["install"] + (["PREFIX=" + prefix] if prefix else [])
    make(*args, destdir=tmp_path)
    files = installed(tmp_path)
    want = {
        p + "/bin/bore": 0o755,
        p + "/share/man/man1/bore.1": 0o644,
        p + "/lib/systemd/system/bore-server.service": 0o644,
        p + "/share/bash-completion/completions/bore": 0o644,
        p + "/share/doc/bore/server.env": 0o644,
    }
    assert sorted(files) == sorted(want)
    for path, mode in want.items():
        assert stat.S_IMODE(os.stat(files[path]).st_mode) == mode, path
    with open(files[p + "/bin/bore"], "rb") as a, open(BIN, "rb") as b:
        assert a.read() == b.read()
    with open(files[p + "/lib/systemd/system/bore-server.service"]) as f:
        unit = f.read()
    # The unit runs the binary where it was installed.
    assert re.search(r"^ExecStart=%s/bin/bore server " % re.escape(p), unit, re.M), unit

    make(*(["uninstall"] + args[1:]), destdir=tmp_path)
    assert installed(tmp_path) == {}


# -- the systemd unit -------------------------------------------------------------

@pytest.fixture(scope="module")
def usr_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    make("install", "PREFIX=/usr", destdir=root)
    return root


def analyze(*args):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: run scripts/setup (Debian package systemd)")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify_accepts_the_installed_unit(usr_root):
    # --root: the unit and its ExecStart binary as installed under DESTDIR (a
    # missing binary, an unknown key or a bad value fails); no systemd needs to
    # run. --recursive-errors=no: the root holds no sysinit.target etc.
    r = analyze("verify", "--root=%s" % usr_root, "--man=no", "--recursive-errors=no",
                "bore-server.service")
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_unit_runs_the_server_unprivileged_and_hardened_with_the_secret_off_the_command_line(usr_root):
    with open(os.path.join(usr_root, "usr/lib/systemd/system/bore-server.service")) as f:
        unit = f.read()
    keys = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    required = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallFilter": "@system-service", "CapabilityBoundingSet": "",
        "AmbientCapabilities": "", "Restart": "on-failure",
        "EnvironmentFile": "/etc/bore/server.env",
    }
    for k, v in required.items():
        assert v in keys.get(k, []), "%s=%s missing from the unit" % (k, v)
    assert "User" not in keys
    assert int(keys["LimitNOFILE"][0]) >= 65536
    (exec_start,) = keys["ExecStart"]
    assert "secret" not in exec_start.lower(), exec_start
    # systemd's own rating, offline: 10 is "UNSAFE", below 2 "OK".
    r = analyze("security", "--offline=yes", "--root=%s" % usr_root, "--threshold=20",
                "bore-server.service")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    m = re.search(r"Overall exposure level for bore-server.service: ([\d.]+)", r.stdout)
    assert m and float(m.group(1)) <= 2.0, r.stdout[-500:]


def test_example_env_file_names_the_secret_and_only_existing_variables():
    with open(os.path.join(SRC, "dist", "server.env")) as f:
        text = f.read()
    names = re.findall(r"^#?(BORE_\w+)=", text, re.M)
    assert "BORE_SECRET" in names and "-m 600" in text
    r = subprocess.run([BIN, "server", "--help"], capture_output=True, text=True, timeout=10)
    for name in names:
        if name not in ("BORE_LOG", "BORE_SERVER_OPTS"):
            assert "[env: %s=]" % name in r.stdout, name


# -- the man page -------------------------------------------------------------------

def test_man_page_is_clean_under_mandoc_lint():
    if shutil.which("mandoc") is None:
        pytest.fail("mandoc is missing: run scripts/setup (Debian package mandoc)")
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "style", MAN],
                       capture_output=True, text=True, timeout=30)
    # "outdated mandoc.db" is about this machine's man database, not the page.
    said = [l for l in (r.stdout + r.stderr).splitlines() if "outdated mandoc.db" not in l]
    assert r.returncode == 0 and said == [], "\n".join(said)


def man_options(cmd):
    """Options with an .It entry in the man page's `.Ss bore CMD` subsection."""
    with open(MAN) as f:
        text = f.read()
    m = re.search(r"^\.Ss bore %s\b.*?\n(.*?)(?=^\.S[sh] )" % re.escape(cmd), text, re.M | re.S)
    assert m, "no .Ss bore %s in %s" % (cmd, MAN)
    opts = set()
    for line in m.group(1).splitlines():
        if line.startswith(".It Fl "):
            opts.update("-" + o for o in re.findall(r"\bFl (-?[\w-]+)", line))
    return opts


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_help_option_has_an_entry_in_the_man_page(cmd):
    assert man_options(cmd) == set(help_options(cmd))


# -- bash completion --------------------------------------------------------------

def complete(*lines):
    """COMPREPLY for each command line (the last word is the one completed)."""
    script = ["source %s || exit 9" % shlex.quote(COMPLETION),
              "complete -p bore >/dev/null || exit 8"]
    for words in lines:
        script.append("COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); _bore; "
                      "printf '%%s\\x1f' \"${COMPREPLY[@]}\"; echo"
                      % (" ".join(shlex.quote(w) for w in words), len(words) - 1))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = r.stdout.split("\n")[:-1]
    assert len(out) == len(lines)
    return [set(filter(None, l.split("\x1f"))) for l in out]


def test_bash_completion_completes_commands_and_options():
    got = complete(["bore", ""], ["bore", "ka"], ["bore", "-"], ["bore", "help", "s"],
                   ["bore", "server", "--max-relay"], ["bore", "local", "--secret", "x", "--he"],
                   ["bore", "kafka-proxy", "--strict", "--ch"],
                   ["bore", "local", "--to", ""])
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    commands = re.search(r"Commands:\n(.*?)\n\n", r.stdout, re.S).group(1)
    assert got[0] == {l.split()[0] for l in commands.splitlines()}
    assert got[0] == {"local", "server", "kafka-proxy", "help"}
    assert got[1] == {"kafka-proxy"}
    assert got[2] == {"-h", "--help", "-V", "--version"}
    assert got[3] == {"server"}
    assert got[4] == {"--max-relays", "--max-relays-per-tunnel", "--max-relay-memory"}
    assert got[5] == {"--heartbeat-timeout", "--help"}
    assert got[6] == {"--check"}
    assert got[7] == set()  # a host name: nothing to offer


def test_bash_completion_completes_files_for_secret_file_and_directories_for_state_dir(tmp_path):
    (tmp_path / "secret.txt").write_text("s\n")
    (tmp_path / "sub").mkdir()
    d = str(tmp_path) + "/"
    got = complete(["bore", "server", "--secret-file", d + "se"],
                   ["bore", "local", "--secret-file", "=", d + "se"],
                   ["bore", "kafka-proxy", "--state-dir", d])
    assert got[0] == {d + "secret.txt"}
    assert got[1] == {d + "secret.txt"}
    assert got[2] == {d + "sub"}


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_help_option_is_completed_and_takes_a_value_exactly_when_help_says(cmd, tmp_path):
    opts = help_options(cmd)
    (tmp_path / "f").write_text("")
    (tmp_path / "d").mkdir()
    d = str(tmp_path) + "/"
    lines = [["bore", cmd, "-"]]
    for o in opts:
        lines.append(["bore", cmd, o, "-"])   # a switch: options follow; a value: none offered
        lines.append(["bore", cmd, o, d])     # a value: files for PATH, directories for DIR
    got = complete(*lines)
    assert got[0] == set(opts), "completion and --help differ"
    for i, (o, value) in enumerate(opts.items()):
        after, files = got[1 + 2 * i], got[2 + 2 * i]
        if value is None:
            assert after == set(opts), o
        else:
            assert after == set(), o
            # <PATH>, <FILE>, <CA_FILE>...: file names; <DIR>: directories;
            # other values (ports, hosts, numbers) are not checked here.
            if value in ("PATH", "FILE") or value.endswith("_FILE") or value.endswith("_PATH"):
                assert files == {d + "f", d + "d"}, (o, value)
            elif value == "DIR" or value.endswith("_DIR"):
                assert files == {d + "d"}, (o, value)


# -- the server inside the unit's sandbox -------------------------------------------

def unit_allowed_syscalls(unit):
    """The system calls the unit's SystemCallFilter= lines leave allowed."""
    def expand(name, depth=0):
        if not name.startswith("@"):
            return {name}
        r = analyze("syscall-filter", name)
        assert r.returncode == 0 and depth < 8, r.stderr
        out = set()
        for line in r.stdout.splitlines()[1:]:
            w = line.split("#")[0].strip()
            if w:
                out |= expand(w, depth + 1)
        return out

    allowed = None
    for line in unit.splitlines():
        if line.startswith("SystemCallFilter="):
            v = line.split("=", 1)[1]
            deny = v.startswith("~")
            names = set().union(*(expand(w) for w in v.lstrip("~").split()))
            if deny:
                allowed -= names
            else:
                allowed = names if allowed is None else allowed | names
    assert allowed, "no SystemCallFilter= allow-list in the unit"
    return allowed


def test_server_serving_a_tunnel_makes_only_system_calls_and_sockets_the_unit_allows(
        usr_root, procs, tmp_path):
    # The unit's seccomp filter answers EPERM to anything else: a call the
    # server needs outside it would break the service only once installed.
    # (No systemd runs here to start the unit itself: strace stands in.)
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: run scripts/setup (Debian package strace)")
    with open(os.path.join(usr_root, "usr/lib/systemd/system/bore-server.service")) as f:
        unit = f.read()
    allowed = unit_allowed_syscalls(unit)
    families = set(re.search(r"^RestrictAddressFamilies=(.*)$", unit, re.M).group(1).split())

    log = str(tmp_path / "trace")
    addr = next_addr()
    env = {"BORE_SECRET": "unit-secret", "BORE_LOG": "info"}
    if sanitized():  # LeakSanitizer cannot run under ptrace
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    tracer = procs.start(["strace", "-f", "-ff", "-qq", "-o", log, BIN, "server", "--bind-addr", addr],
                         env=env)
    tracer.wait_for(r"server listening at")
    svc = listen_local()
    cl = procs.local(svc.getsockname()[1], addr, env={"BORE_SECRET": "unit-secret"})
    v = socket.create_connection((addr, cl.port), timeout=5)
    v.sendall(b"through the sandbox")
    v.shutdown(socket.SHUT_WR)
    c, _ = svc.accept()
    c.settimeout(5)
    assert read_to_eof(c) == b"through the sandbox"
    c.close()
    assert read_to_eof(v) == b""
    v.close()
    assert cl.stop() == 0
    # SIGTERM to the server itself (strace's child), as systemctl stop does.
    with open("/proc/%d/task/%d/children" % (tracer.p.pid, tracer.p.pid)) as f:
        (server_pid,) = map(int, f.read().split())
    os.kill(server_pid, signal.SIGTERM)
    assert tracer.wait() == 0, tracer.text()

    used, socket_families = set(), set()
    for name in os.listdir(tmp_path):
        if name.startswith("trace."):
            with open(tmp_path / name) as f:
                for line in f:
                    m = re.match(r"([a-z0-9_]+)\((AF_\w+)?", line)
                    if m:
                        used.add(m.group(1))
                        if m.group(1) == "socket":
                            socket_families.add(m.group(2))
    assert "accept4" in used and "epoll_wait" in used, sorted(used)
    assert sorted(used - allowed) == []
    assert socket_families <= families, socket_families
