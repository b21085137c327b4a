#!/usr/bin/python3
"""A real Apache Kafka cluster for tests and the demo: KRaft, one JVM per
node (a controller quorum plus N brokers), from the jars scripts/setup-java
resolved from Maven Central into .cache/kafka/<version>/lib.

As a library (tests):

    c = RealCluster(brokers=3, topics=["orders:6"], prefix=ns.prefix("c"))
    c.bootstrap                      # "127.0.0.1:19091,127.0.0.1:19092,..."
    c.stop_broker(2, kill=True)      # SIGKILL (kill=False: clean, controlled shutdown)
    c.start_broker(2)                # back, same id, same data
    c.add_broker()                   # a new broker (id 4), started and registered
    c.leader("orders", 0, 3)         # move a partition's leader
    c.reassign("orders", 0, [4, 1])  # move its replicas
    c.close()

As a command (a cluster in the foreground until Ctrl-C, or driven by stdin):

    kafka_real.py [--brokers N] [--version V] [--sasl] [--ssl] [--topic NAME:PARTS]...
                  [--host IP] [--base-port P] [--stdin]

prints `bootstrap.servers=...` when the cluster is ready (with --stdin, a
JSON line instead, then one JSON answer per command: brokers, stop ID,
kill ID, start ID, add, topic NAME PARTS RF, leader TOPIC PART ID,
reassign TOPIC PART R1,R2.., describe TOPIC, quit).

Listeners: CLIENT (PLAINTEXT, or SASL_PLAINTEXT with --sasl: PLAIN and
SCRAM-SHA-256), INTERNAL between brokers, CONTROLLER for the quorum; all on
--host (127.0.0.1 by default; in a test the cluster runs in its own network
namespace, so those addresses are unreachable from the client's).
Ports: broker i serves clients on base+i, INTERNAL on base+100+i; controller
c listens on base+200+c.

`advertise=lambda node_id: "kafka-1.internal.example:29091"` makes each
broker advertise that address for its CLIENT listener instead of the one it
listens on, as containerised clusters do (a name that resolves only inside
the container network); INTERNAL and CONTROLLER keep theirs, so the brokers
still reach each other, and the rig's admin client bootstraps through
INTERNAL.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache", "kafka")
DEFAULT_VERSION = "4.4.0"
OLD_VERSION = "3.9.2"
CONTROLLER_BASE_ID = 100
# Credentials of the SASL variant: PLAIN users live in the broker's JAAS
# configuration, SCRAM users in the cluster metadata (added at format time).
SASL_USERS = {"alice": "alice-secret"}          # PLAIN
SCRAM_USERS = {"carol": "carol-secret"}         # SCRAM-SHA-256
START_TIMEOUT = 120


def lib_dir(version):
    d = os.path.join(CACHE, version, "lib")
    if not os.path.exists(os.path.join(d, ".complete")):
        raise RuntimeError(f"Apache Kafka {version} is not resolved: run scripts/setup-java")
    return d


def classpath(version):
    return os.path.join(lib_dir(version), "*")


def tool_command(main, *args, prefix=(), version=DEFAULT_VERSION):
    """One of Kafka's own command-line tools (the kafka-tools classes: what
    kafka-topics.sh, kafka-console-producer.sh, ... run)."""
    return [*prefix, "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dlog4j2.level=WARN", "-cp", classpath(version), main, *args]


def client_classpath():
    """The rig's Java programs (RigAdmin, the Java client driver)."""
    classes = os.path.join(ROOT, "build-java")
    return f"{classes}:{classpath(DEFAULT_VERSION)}"


LOG4J2 = """status = error
appender.out.type = Console
appender.out.name = out
appender.out.target = SYSTEM_ERR
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""
LOG4J1 = """log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.Target=System.err
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
"""


class Node:
    def __init__(self, cluster, node_id, role):
        self.cluster = cluster
        self.id = node_id
        self.role = role
        self.dir = os.path.join(cluster.workdir, f"node-{node_id}")
        self.log_path = os.path.join(cluster.workdir, f"node-{node_id}.log")
        self.config = os.path.join(cluster.workdir, f"node-{node_id}.properties")
        self.proc = None
        self.log = None

    @property
    def up(self):
        return self.proc is not None and self.proc.poll() is None

    def write_config(self):
        c = self.cluster
        n = c.broker_count
        props = {
            "process.roles": self.role,
            "node.id": self.id,
            "controller.quorum.voters": c.voters(),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:"
                                              + ("SASL_" if c.sasl else "")
                                              + ("SSL" if c.ssl else "PLAINTEXT"),
            "log.dirs": self.dir,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "log.cleaner.threads": 1,
            "num.recovery.threads.per.data.dir": 1,
        }
        if self.role == "controller":
            props["listeners"] = f"CONTROLLER://{c.host}:{c.controller_port(self.id)}"
        else:
            client = f"CLIENT://{c.host}:{c.client_port(self.id)}"
            internal = f"INTERNAL://{c.internal_address(self.id)}"
            advertised = f"CLIENT://{c.advertise(self.id)}" if c.advertise else client
            rf = min(3, max(n, 1))
            props.update({
                "listeners": f"{client},{internal}",
                "advertised.listeners": f"{advertised},{internal}",
                "inter.broker.listener.name": "INTERNAL",
                "offsets.topic.replication.factor": rf,
                "offsets.topic.num.partitions": 6,
                "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": min(2, rf),
                "transaction.state.log.num.partitions": 6,
                "share.coordinator.state.topic.replication.factor": rf,
                "share.coordinator.state.topic.min.isr": min(2, rf),
                "share.coordinator.state.topic.num.partitions": 6,
                "default.replication.factor": rf,
                "min.insync.replicas": min(2, rf),
                "num.partitions": 6,
                "group.initial.rebalance.delay.ms": 0,
                "auto.create.topics.enable": "true",
                "auto.leader.rebalance.enable": "false",
                "log.segment.bytes": 64 * 1024 * 1024,
            })
            if c.sasl:
                plain = " ".join(f'user_{u}="{p}"' for u, p in SASL_USERS.items())
                props.update({
                    "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
                    "listener.name.client.plain.sasl.jaas.config":
                        f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain};",
                    "listener.name.client.scram-sha-256.sasl.jaas.config":
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                })
            if c.ssl:  # PEM files (Kafka 2.7+): the key and its certificate in one
                props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": c.ssl_files["keystore"],
                              "ssl.truststore.type": "PEM", "ssl.truststore.location": c.ssl_files["ca"]})
            props.update(c.extra_config)  # brokers only (benchmarks add listeners)
        with open(self.config, "w") as f:
            for k, v in props.items():
                f.write(f"{k}={v}\n")

    def java(self, main, *args, heap="512m"):
        c = self.cluster
        # Tests: the serial collector and C1 only (quick start, few threads on
        # 2 cores); benchmarks (fast_jit=False): the JVM's defaults, 1 GiB.
        jvm = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"] if c.fast_jit else []
        if not c.fast_jit and heap == "512m":
            heap = "1g"
        return [*c.prefix, "java", f"-Xmx{heap}", "-Xms128m", *jvm,
                f"-Dlog4j2.configurationFile={c.log4j2}", f"-Dlog4j.configuration=file:{c.log4j1}",
                "-Djava.net.preferIPv4Stack=true", "-cp", classpath(c.version), main, *args]

    def format(self):
        self.write_config()
        args = ["format", "-t", self.cluster.cluster_id, "-c", self.config, "--ignore-formatted"]
        if self.cluster.sasl:
            for u, p in SCRAM_USERS.items():
                args += ["--add-scram", f"SCRAM-SHA-256=[name={u},password={p}]"]
        args += self.cluster.format_args
        r = subprocess.run(self.java("kafka.tools.StorageTool", *args, heap="256m"),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"formatting node {self.id} failed:\n{r.stdout}\n{r.stderr}")

    def start(self):
        assert not self.up
        self.log = open(self.log_path, "a")
        self.log_offset = self.log.tell()
        self.proc = subprocess.Popen(self.java("kafka.Kafka", self.config), stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_started(self, timeout=START_TIMEOUT):
        """Until the node logs that it has started (a broker does so once it
        has caught up with the metadata and been unfenced)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited {self.proc.returncode}:\n{self.tail()}")
            with open(self.log_path, errors="replace") as f:
                f.seek(self.log_offset)
                if "Kafka Server started" in f.read():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"node {self.id} did not start within {timeout} s:\n{self.tail()}")

    def stop(self, kill=False, timeout=60):
        if not self.up:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class RealCluster:
    def __init__(self, brokers=3, topics=(), version=DEFAULT_VERSION, prefix=(), host="127.0.0.1",
                 base_port=19090, sasl=False, controllers=1, extra_config=None, format_args=(),
                 fast_jit=True, workdir=None, advertise=None, ssl=False):
        """`ssl`: the CLIENT listener speaks TLS, with a certificate for
        `host` (IP SAN) from a CA of its own (`ssl_files["ca"]`)."""
        self.version = version
        self.ssl = ssl
        self.prefix = list(prefix)
        self.host = host
        self.base_port = base_port
        self.sasl = sasl
        self.fast_jit = fast_jit
        self.extra_config = dict(extra_config or {})
        self.advertise = advertise
        self.format_args = list(format_args)
        self.broker_count = brokers
        self.cluster_id = self._random_id()
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="bore-kafka-")
        self.log4j2 = os.path.join(self.workdir, "log4j2.properties")
        self.log4j1 = os.path.join(self.workdir, "log4j.properties")
        self.log4j2_quiet = os.path.join(self.workdir, "log4j2-quiet.properties")
        with open(self.log4j2, "w") as f:
            f.write(LOG4J2)
        with open(self.log4j2_quiet, "w") as f:
            f.write(LOG4J2.replace("Level = INFO", "Level = WARN").replace("level = INFO", "level = WARN"))
        with open(self.log4j1, "w") as f:
            f.write(LOG4J1)
        self.ssl_files = self._make_certs() if ssl else {}
        self.controllers = [Node(self, CONTROLLER_BASE_ID + i, "controller") for i in range(controllers)]
        self.brokers_ = {i: Node(self, i, "broker") for i in range(1, brokers + 1)}
        self._admin = None
        self._admin_lock = threading.Lock()
        self.started_in = None
        try:
            t0 = time.monotonic()
            nodes = self.controllers + list(self.brokers_.values())
            self._parallel(lambda n: n.format(), nodes)
            for n in nodes:
                n.start()
            self._parallel(lambda n: n.wait_started(), nodes)
            self.wait_brokers(brokers)
            for t in topics:
                name, _, parts = t.partition(":")
                self.topic(name, int(parts or 6))
            self.started_in = time.monotonic() - t0
        except BaseException:
            self.close()
            raise

    def _make_certs(self):
        """A CA and a broker certificate for self.host (openssl CLI)."""
        d = self.workdir
        f = {k: os.path.join(d, v) for k, v in (("ca", "ca.pem"), ("ca_key", "ca.key"), ("key", "broker.key"),
                                                ("csr", "broker.csr"), ("cert", "broker.pem"),
                                                ("ext", "broker.ext"), ("keystore", "broker-keystore.pem"))}
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        san = f"IP:{self.host}" if self.host.replace(".", "").isdigit() else f"DNS:{self.host}"
        with open(f["ext"], "w") as e:
            e.write(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
        for args in (["req", "-x509", *ec, "-keyout", f["ca_key"], "-out", f["ca"], "-days", "30",
                      "-subj", "/CN=bore test Kafka CA"],
                     ["req", *ec, "-keyout", f["key"], "-out", f["csr"], "-subj", f"/CN={self.host}"],
                     ["x509", "-req", "-in", f["csr"], "-CA", f["ca"], "-CAkey", f["ca_key"], "-CAcreateserial",
                      "-out", f["cert"], "-days", "30", "-extfile", f["ext"]]):
            subprocess.run(["openssl", *args], check=True, capture_output=True)
        with open(f["keystore"], "w") as out:
            out.write(open(f["key"]).read() + open(f["cert"]).read())
        return f

    @staticmethod
    def _random_id():
        import base64
        while True:  # a leading '-' would read as an option to the storage tool
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if cid[0].isalnum():
                return cid

    @staticmethod
    def _parallel(fn, items):
        errors = []

        def run(x):
            try:
                fn(x)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(x,)) for x in items]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    # ---- addresses ------------------------------------------------------------

    def client_port(self, node_id):
        return self.base_port + node_id

    def controller_port(self, node_id):
        return self.base_port + 200 + (node_id - CONTROLLER_BASE_ID)

    def voters(self):
        return ",".join(f"{c.id}@{self.host}:{self.controller_port(c.id)}" for c in self.controllers)

    @property
    def bootstrap(self):
        return ",".join(f"{self.host}:{self.client_port(i)}" for i in sorted(self.brokers_))

    def address(self, node_id):
        return f"{self.host}:{self.client_port(node_id)}"

    def internal_address(self, node_id):
        return f"{self.host}:{self.base_port + 100 + node_id}"

    def client_config(self, mechanism="PLAIN", user=None, password=None):
        """Client properties for the SASL variant (Java/librdkafka names)."""
        if not self.sasl:
            return {}
        if user is None:
            user, password = next(iter((SASL_USERS if mechanism == "PLAIN" else SCRAM_USERS).items()))
        return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                "sasl.username": user, "sasl.password": password}

    # ---- admin (one long-lived JVM, RigAdmin) ------------------------------------

    def admin(self, line):
        with self._admin_lock:
            if self._admin is None or self._admin.poll() is not None:
                extra = []
                if self.sasl:
                    u, p = next(iter(SASL_USERS.items()))
                    extra = ["security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN",
                             "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                             f'required username="{u}" password="{p}";']
                if self.ssl and not self.advertise:
                    extra = [f"security.protocol={'SASL_SSL' if self.sasl else 'SSL'}", *extra[1:],
                             "ssl.truststore.type=PEM", f"ssl.truststore.location={self.ssl_files['ca']}"]
                # Through INTERNAL when CLIENT advertises addresses the rig cannot reach.
                where = self.internal_address if self.advertise else self.address
                live = ",".join(where(i) for i, b in sorted(self.brokers_.items()) if b.up)
                self._admin_log = open(os.path.join(self.workdir, "admin.log"), "a")
                self._admin = subprocess.Popen(
                    [*self.prefix, "java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     f"-Dlog4j2.configurationFile={self.log4j2_quiet}",
                     "-cp", client_classpath(), "RigAdmin", live, *extra],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._admin_log, text=True)
            self._admin.stdin.write(line + "\n")
            self._admin.stdin.flush()
            out = self._admin.stdout.readline()
            if not out:
                raise RuntimeError(f"RigAdmin exited; see {self.workdir}/admin.log")
            return json.loads(out)

    def _ok(self, line):
        r = self.admin(line)
        if "error" in r:
            raise RuntimeError(f"{line}: {r['error']}")
        return r

    def brokers(self):
        return self._ok("brokers")["brokers"]

    def wait_brokers(self, count, timeout=90):
        deadline = time.monotonic() + timeout
        while True:
            r = self.admin("brokers")
            if len(r.get("brokers", [])) == count:
                return r["brokers"]
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} brokers not registered after {timeout} s: {r}")
            time.sleep(0.2)

    def topic(self, name, partitions, rf=None):
        rf = rf or min(3, len(self.brokers_))
        return self._ok(f"topic {name} {partitions} {rf}")

    def describe(self, topic):
        return self._ok(f"describe {topic}")["partitions"]

    def reassign(self, topic, partition, replicas):
        return self._ok(f"reassign {topic} {partition} {','.join(map(str, replicas))}")

    def leader(self, topic, partition, node_id):
        """Makes `node_id` the partition's leader: it becomes the first
        (preferred) replica - added to the replicas if it was not one - and
        a preferred election runs."""
        replicas = self.describe(topic)[str(partition)]["replicas"]
        order = [node_id] + [r for r in replicas if r != node_id]
        if node_id not in replicas:
            order = order[:len(replicas)]
        if order != replicas:
            self.reassign(topic, partition, order)
        return self._ok(f"elect {topic} {partition}")

    # ---- nodes -------------------------------------------------------------------

    def stop_broker(self, node_id, kill=True):
        self.brokers_[node_id].stop(kill=kill)

    def start_broker(self, node_id, wait=True):
        b = self.brokers_[node_id]
        b.start()
        if wait:
            b.wait_started()

    def add_broker(self):
        node_id = max(self.brokers_) + 1
        b = Node(self, node_id, "broker")
        self.brokers_[node_id] = b
        b.format()
        b.start()
        b.wait_started()
        self.wait_brokers(sum(1 for x in self.brokers_.values() if x.up))
        return node_id

    def rss_kib(self):
        """Resident memory of every node's JVM, by node id."""
        out = {}
        for n in self.controllers + list(self.brokers_.values()):
            if n.up:
                with open(f"/proc/{n.proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out[n.id] = int(line.split()[1])
        return out

    def close(self):
        if self._admin is not None and self._admin.poll() is None:
            try:
                self._admin.stdin.write("quit\n")
                self._admin.stdin.close()
                self._admin.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._admin.kill()
                self._admin.wait()
        # Brokers first (controlled shutdown needs the controller), then the quorum.
        self._parallel(lambda n: n.stop(), [b for b in self.brokers_.values()])
        self._parallel(lambda n: n.stop(), self.controllers)
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---- command line -----------------------------------------------------------------------

def command(cluster, words):
    op = words[0]
    if op == "brokers":
        return {"bootstrap": cluster.bootstrap, "brokers": cluster.brokers()}
    if op in ("stop", "kill"):
        cluster.stop_broker(int(words[1]), kill=op == "kill")
    elif op == "start":
        cluster.start_broker(int(words[1]))
    elif op == "add":
        return {"ok": "add", "id": cluster.add_broker()}
    elif op == "topic":
        cluster.topic(words[1], int(words[2]), int(words[3]) if len(words) > 3 else None)
    elif op == "leader":
        cluster.leader(words[1], int(words[2]), int(words[3]))
    elif op == "reassign":
        cluster.reassign(words[1], int(words[2]), [int(x) for x in words[3].split(",")])
    elif op == "describe":
        return {"partitions": cluster.describe(words[1])}
    else:
        return {"error": f"unknown command {op}"}
    return {"ok": op}


def main():
    ap = argparse.ArgumentParser(description="Run a real Apache Kafka cluster (KRaft) in the "
                                 "foreground until Ctrl-C.")
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--version", default=DEFAULT_VERSION)
    ap.add_argument("--topic", action="append", default=[], metavar="NAME:PARTITIONS")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--base-port", type=int, default=19090)
    ap.add_argument("--sasl", action="store_true", help="client listener SASL_PLAINTEXT")
    ap.add_argument("--ssl", action="store_true", help="client listener SSL (its CA: <dir>/ca.pem)")
    ap.add_argument("--dir", help="keep the cluster's data here (default: a temporary folder)")
    ap.add_argument("--stdin", action="store_true", help="driven by commands on stdin (tests)")
    a = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not a.stdin:
        print(f"starting Apache Kafka {a.version}: 1 controller, {a.brokers} broker(s) ...",
              file=sys.stderr, flush=True)
    try:
        c = RealCluster(brokers=a.brokers, topics=a.topic, version=a.version, host=a.host,
                        base_port=a.base_port, sasl=a.sasl, workdir=a.dir, ssl=a.ssl)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        if a.stdin:
            print(json.dumps({"bootstrap": c.bootstrap, "brokers": c.brokers(),
                              "started_in": round(c.started_in, 1)}), flush=True)
            for line in sys.stdin:
                if stop.is_set() or not line.strip() or line.strip() == "quit":
                    break
                try:
                    print(json.dumps(command(c, line.split())), flush=True)
                except (RuntimeError, KeyError, ValueError, IndexError) as e:
                    print(json.dumps({"error": str(e)}), flush=True)
        else:
            print(f"Apache Kafka {a.version} is up ({a.brokers} broker(s), started in "
                  f"{c.started_in:.0f} s); logs in {c.workdir}", file=sys.stderr)
            print(f"bootstrap.servers={c.bootstrap}", flush=True)
            print("press Ctrl-C to stop", file=sys.stderr, flush=True)
            while not stop.wait(1):
                dead = [n.id for n in c.controllers + list(c.brokers_.values()) if not n.up]
                if dead:
                    print(f"error: node(s) {dead} exited; see {c.workdir}", file=sys.stderr)
                    return 1
    finally:
        print("stopping the cluster ...", file=sys.stderr, flush=True)
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
