"""The Kafka test rig: a real multi-broker cluster (tests/tools/kafka_cluster,
librdkafka 2.15.1's mock) and four real client libraries behind one
interface, so a test reads:

    cluster = KafkaCluster(procs_list, topics=["orders:6"])
    client = CLIENTS["kafkajs"]
    client.produce(cluster.bootstrap, "orders", 10000)

Everything is built and installed by scripts/setup-kafka (run by .ci/run).
"""
import json
import os
import subprocess
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache")
LAUNCHER = os.path.join(CACHE, "bin", "kafka_cluster")
LIBRDKAFKA = os.path.join(CACHE, "librdkafka", "src")
PYLIB = os.path.join(CACHE, "pylib")
PY = "/usr/bin/python3"
CLIENT_PY = os.path.join(ROOT, "tests", "tools", "client_py.py")
CLIENT_JS = os.path.join(ROOT, "tests", "tools", "client_js.js")
KAFKA_JAVA = os.path.join(CACHE, "kafka", "4.4.0")


def rig_env(netns=None):
    env = dict(os.environ)
    env.pop("BORE_LOG", None)
    return env


class Configurable:
    """`client.with_config({...})`: the same client with extra properties
    (librdkafka's names: security.protocol, sasl.mechanism, ...)."""
    config = {}

    def with_config(self, config):
        import copy
        c = copy.copy(self)
        c.config = {**self.config, **config}
        return c

    def config_args(self, flag="--config"):
        return [x for k, v in self.config.items() for x in (flag, f"{k}={v}")]


class KafkaCluster:
    """A running cluster; commands go to the launcher's stdin, one JSON
    answer each (see tests/tools/kafka_cluster.c)."""

    def __init__(self, brokers=3, topics=(), address=None, prefix=()):
        args = [*prefix, LAUNCHER, "--brokers", str(brokers)]
        if address:
            args += ["--address", address]
        for t in topics:
            args += ["--topic", t]
        assert os.access(LAUNCHER, os.X_OK), "run scripts/setup-kafka first"
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=rig_env())
        self.err = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.lock = threading.Lock()
        self.info = self._read()
        assert "bootstrap" in self.info, self.info
        self.bootstrap = self.info["bootstrap"]

    def _drain(self):
        for line in self.p.stderr:
            self.err.append(line)

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("kafka_cluster exited:\n" + "".join(self.err))
        return json.loads(line)

    def cmd(self, line):
        with self.lock:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            return self._read()

    def brokers(self):
        return self.cmd("brokers")["brokers"]

    def broker(self, node_id):
        return next(b for b in self.brokers() if b["id"] == node_id)

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except BrokenPipeError:
                pass
        return self.p.wait(30)


# ---- clients ---------------------------------------------------------------

def run_json(args, timeout=120, env=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env or rig_env())
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


class PyClient(Configurable):
    def __init__(self, lib):
        self.name = lib
        self.lib = lib
        self.transactions = True   # kafka-python: 2.3.3 from PyPI has both
        self.read_committed = True

    def env(self):
        e = rig_env()
        if self.lib == "confluent":  # the binding on librdkafka 2.15.1
            e["LD_LIBRARY_PATH"] = LIBRDKAFKA
        else:  # kafka-python from PyPI (scripts/setup-kafka), not Debian's 2.0.2
            e["PYTHONPATH"] = PYLIB
        return e

    def _run(self, bootstrap, *args, prefix=(), timeout=120):
        return run_json([*prefix, PY, CLIENT_PY, "--lib", self.lib, "--bootstrap", bootstrap, *args,
                         *self.config_args()], timeout, env=self.env())

    def metadata(self, bootstrap, prefix=()):
        return self._run(bootstrap, "metadata", prefix=prefix)

    def produce(self, bootstrap, topic, count, prefix=(), pace=0, start=0):
        """`pace`: seconds of pause after every 500 messages (a producer
        that is still running while a test changes the cluster); keys
        k<start>..k<start+count-1>."""
        return self._run(bootstrap, "produce", "--topic", topic, "--count", str(count),
                         "--pace", str(pace), "--start", str(start), prefix=prefix,
                         timeout=max(120, count / 500))

    def consume(self, bootstrap, topic, group, count, timeout=60, committed=False, prefix=(),
                exact=False):
        return self._run(bootstrap, "consume-committed" if committed else "consume", "--topic", topic,
                         "--group", group, "--count", str(count), "--timeout", str(timeout),
                         prefix=prefix, timeout=timeout + 60)

    def stream(self, bootstrap, topic, group, prefix=(), group_protocol="classic"):
        assert group_protocol == "classic"
        return StreamConsumer([*prefix, PY, CLIENT_PY, "--lib", self.lib, "--bootstrap", bootstrap,
                               "consume", "--topic", topic, "--group", group, "--stream",
                               *self.config_args()], env=self.env())

    def txn(self, bootstrap, topic, count, abort_count, txn_id, prefix=()):
        return self._run(bootstrap, "txn", "--topic", topic, "--count", str(count), "--abort-count",
                         str(abort_count), "--txn-id", txn_id, prefix=prefix)


class JsClient(PyClient):
    def __init__(self):
        self.name = "kafkajs"
        self.transactions = True
        self.read_committed = True

    def env(self):
        return rig_env()

    def _run(self, bootstrap, *args, prefix=(), timeout=120):
        return run_json([*prefix, "node", CLIENT_JS, "--bootstrap", bootstrap.split(",")[0], *args,
                         *self.config_args()], timeout)

    def stream(self, bootstrap, topic, group, prefix=(), group_protocol="classic"):
        assert group_protocol == "classic"
        return StreamConsumer([*prefix, "node", CLIENT_JS, "--bootstrap", bootstrap.split(",")[0],
                               "consume", "--topic", topic, "--group", group, "--stream",
                               *self.config_args()])


class JavaClient(PyClient):
    """The Apache Kafka Java client 4.4 (tests/tools/java/ClientJava.java,
    compiled by scripts/setup-java into build-java/)."""

    def __init__(self, heap="256m"):
        self.name = "java"
        self.transactions = True
        self.read_committed = True
        self.heap = heap

    def env(self):
        return rig_env()

    def config_args(self, flag="--config"):
        """librdkafka's sasl.username/sasl.password become Java's JAAS line."""
        conf = dict(self.config)
        user, password = conf.pop("sasl.username", None), conf.pop("sasl.password", None)
        if user is not None:
            module = ("plain.PlainLoginModule" if conf.get("sasl.mechanism") == "PLAIN"
                      else "scram.ScramLoginModule")
            conf["sasl.jaas.config"] = (f"org.apache.kafka.common.security.{module} required "
                                        f'username="{user}" password="{password}";')
        return [x for k, v in conf.items() for x in (flag, f"{k}={v}")]

    def command(self, bootstrap, *args, prefix=()):
        classes = os.path.join(ROOT, "build-java")
        assert os.path.exists(os.path.join(classes, "ClientJava.class")), "run scripts/setup-java first"
        cp = classes + ":" + os.path.join(KAFKA_JAVA, "lib", "*")
        return [*prefix, "java", f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-cp", cp, "ClientJava", "--bootstrap", bootstrap, *args, *self.config_args()]

    def _run(self, bootstrap, *args, prefix=(), timeout=120):
        return run_json(self.command(bootstrap, *args, prefix=prefix), timeout)

    def consume(self, bootstrap, topic, group, count, timeout=60, committed=False, prefix=(),
                exact=False, group_protocol="classic"):
        return self._run(bootstrap, "consume-committed" if committed else "consume", "--topic", topic,
                         "--group", group, "--count", str(count), "--timeout", str(timeout),
                         "--group-protocol", group_protocol, prefix=prefix, timeout=timeout + 60)

    def stream(self, bootstrap, topic, group, prefix=(), group_protocol="classic"):
        return StreamConsumer(self.command(bootstrap, "consume", "--topic", topic, "--group", group,
                                           "--group-protocol", group_protocol, "--stream", prefix=prefix))

    def admin(self, bootstrap, topic=None, prefix=()):
        """describeCluster, describeMetadataQuorum, describeTopics, groups;
        creates `topic` (3 partitions) when given and absent."""
        return self._run(bootstrap, "admin", *(["--topic", topic] if topic else []), prefix=prefix)

    def share_consume(self, bootstrap, topic, group, count, timeout=60, prefix=()):
        return self._run(bootstrap, "share-consume", "--topic", topic, "--group", group,
                         "--count", str(count), "--timeout", str(timeout), prefix=prefix,
                         timeout=timeout + 60)

    def reassign(self, bootstrap, topic, partition, replicas, timeout=60, prefix=()):
        """Moves `topic`-`partition` onto `replicas` (node ids, preferred
        leader first) and waits until the reassignment is done."""
        return self._run(bootstrap, "reassign", "--topic", topic, "--partition", str(partition),
                         "--replicas", ",".join(map(str, replicas)), "--timeout", str(timeout),
                         prefix=prefix, timeout=timeout + 60)

    def elect(self, bootstrap, topic, partition, timeout=60, prefix=()):
        """Preferred leader election for one partition (after reassign:
        moves the leader to the first replica)."""
        return self._run(bootstrap, "elect", "--topic", topic, "--partition", str(partition),
                         "--timeout", str(timeout), prefix=prefix, timeout=timeout + 60)


class StreamConsumer:
    """A group member that prints each message as it arrives, until stop()
    (SIGTERM: it commits and leaves the group). Lines are stamped with the
    monotonic time they were read, so a test can tell before from after."""

    def __init__(self, args, env=None):
        import time
        self.time = time
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env or rig_env())
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            if "\t" in line:
                k, v = line.rstrip("\n").split("\t", 1)
                with self.cond:
                    self.lines.append((self.time.monotonic(), k, v))
                    self.cond.notify_all()

    def wait_count(self, n, timeout):
        with self.cond:
            self.cond.wait_for(lambda: len(self.lines) >= n, timeout)
            return len(self.lines)

    def wait_for(self, pred, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.lines), timeout)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return self.p.returncode


def value_for(i):
    return f"v{i}-" + "x" * (i % 50)


def verify(received, count):
    idx, bad = [], 0
    for k, v in received:
        if not k.startswith("k"):
            bad += 1
            continue
        i = int(k[1:])
        bad += v != value_for(i)
        idx.append(i)
    uniq = set(idx)
    return {"count": len(received), "unique": len(uniq), "duplicates": len(idx) - len(uniq),
            "bad": bad, "missing": sorted(set(range(count)) - uniq)[:10],
            "complete": uniq == set(range(count)) and bad == 0, "indices": sorted(uniq)}


class KcatClient(Configurable):
    """kcat running on librdkafka 2.15.1 (LD_LIBRARY_PATH)."""
    name = "kcat"
    transactions = False
    read_committed = True

    def env(self):
        e = rig_env()
        e["LD_LIBRARY_PATH"] = LIBRDKAFKA
        return e

    def _kcat(self, bootstrap, *args, stdin=None, prefix=(), timeout=120):
        r = subprocess.run([*prefix, "kcat", "-b", bootstrap, *args, *self.config_args("-X")],
                           input=stdin, capture_output=True,
                           text=True, timeout=timeout, env=self.env())
        if r.returncode != 0:
            raise AssertionError(f"kcat {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return r.stdout

    def addresses(self, bootstrap, prefix=()):
        md = json.loads(self._kcat(bootstrap, "-L", "-J", prefix=prefix))
        return sorted({b["name"] for b in md["brokers"]})

    def metadata(self, bootstrap, prefix=()):
        md = json.loads(self._kcat(bootstrap, "-L", "-J", prefix=prefix))
        brokers = []
        for b in md["brokers"]:
            host, _, port = b["name"].rpartition(":")
            brokers.append({"id": b["id"], "host": host, "port": int(port)})
        topics = {t["topic"]: {str(p["partition"]): p["leader"] for p in t["partitions"]}
                  for t in md["topics"]}
        return {"brokers": sorted(brokers, key=lambda x: x["id"]), "topics": topics,
                "addresses": sorted(b["name"] for b in md["brokers"])}

    def end_offsets(self, bootstrap, topic, prefix=()):
        """The sum of the end offsets (high watermarks) of `topic`'s
        partitions, as the brokers report them: what they stored."""
        md = json.loads(self._kcat(bootstrap, "-L", "-J", "-t", topic, prefix=prefix))
        parts = [p["partition"] for t in md["topics"] if t["topic"] == topic for p in t["partitions"]]
        if not parts:
            return 0
        out = self._kcat(bootstrap, "-Q", "-J", *[x for p in parts for x in ("-t", f"{topic}:{p}:-1")],
                         prefix=prefix)
        return sum(p["offset"] for t in json.loads(out).values() if isinstance(t, dict)
                   for p in t.values() if isinstance(p, dict) and "offset" in p)

    def produce(self, bootstrap, topic, count, prefix=(), pace=0, start=0):
        """"acked": how far the topic's end offsets moved (nobody else
        producing to it meanwhile), not the count kcat was given."""
        before = self.end_offsets(bootstrap, topic, prefix)
        lines = [f"k{i}:{value_for(i)}\n" for i in range(start, start + count)]
        idem = ["-X", "enable.idempotence=true", *self.config_args("-X")]
        if pace:
            # Fed 500 lines at a time with pauses: kcat keeps producing meanwhile.
            import time
            p = subprocess.Popen([*prefix, "kcat", "-b", bootstrap, "-P", "-t", topic, "-K", ":",
                                  "-X", "acks=all", "-X", "linger.ms=5", *idem], stdin=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=self.env())
            for i in range(0, count, 500):
                p.stdin.write("".join(lines[i:i + 500]))
                p.stdin.flush()
                time.sleep(pace)
            p.stdin.close()
            err = p.stderr.read()
            if p.wait(120) != 0:
                raise AssertionError(f"kcat -P failed:\n{err[-3000:]}")
        else:
            self._kcat(bootstrap, "-P", "-t", topic, "-K", ":", "-X", "acks=all",
                       "-X", "enable.idempotence=true", stdin="".join(lines), prefix=prefix,
                       timeout=max(120, count / 500))
        # kcat exits non-zero if any message failed delivery; the brokers say how many they kept.
        stored = self.end_offsets(bootstrap, topic, prefix) - before
        return {"acked": stored, "errors": [], "addresses": self.addresses(bootstrap, prefix)}

    def group_args(self, group, topic):
        return ["-G", group, topic, "-X", "auto.offset.reset=earliest", "-q", "-f", "%k\t%s\n",
                "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100"]

    def stream(self, bootstrap, topic, group, prefix=(), group_protocol="classic"):
        return StreamConsumer([*prefix, "kcat", "-u", "-b", bootstrap, *self.group_args(group, topic),
                               "-X", f"group.protocol={group_protocol}", *self.config_args("-X")],
                              env=self.env())

    def consume(self, bootstrap, topic, group, count, timeout=60, committed=False, prefix=(),
                exact=False):
        """Until every assigned partition is at its end (-e), or with
        `exact`, until `count` messages (-c)."""
        args = ["-G", group, topic, "-X", "auto.offset.reset=earliest", "-c" if exact else "-e",
                *([str(count)] if exact else []), "-q",
                "-f", "%k\\t%s\\n", "-X", "enable.auto.commit=true",
                "-X", "auto.commit.interval.ms=100"]
        # librdkafka reads read_committed by default: say which, either way.
        args += ["-X", f"isolation.level={'read_committed' if committed else 'read_uncommitted'}"]
        out = self._kcat(bootstrap, *args, prefix=prefix, timeout=timeout + 60)
        got = [tuple(line.split("\t", 1)) for line in out.splitlines() if "\t" in line]
        r = verify(got, count)
        r["addresses"] = self.addresses(bootstrap, prefix)
        return r


CLIENTS = {
    "kcat": KcatClient(),
    "confluent": PyClient("confluent"),
    "kafka-python": PyClient("kafka-python"),
    "kafkajs": JsClient(),
}

# Not in CLIENTS (the mock cluster's tests run over those): the real-Kafka tests use it by name.
JAVA = JavaClient()
