"""The kafka-proxy test environment: a tunnel server in the server namespace,
a cluster (the mock, or a real one started by the caller) and kafka-proxy in
the cluster namespace, clients in their own (netns.py). `Env.public` is the
proxy's printed table; `assert_public` checks a client's view of the
cluster holds public addresses only."""
import re

from conftest import BORE
from kafka_rig import KafkaCluster
from netns import CLIENT_TO_SERVER, CLUSTER_TO_SERVER

SECRET = "kafka tunnel secret"


class Env:
    def __init__(self, procs, ns, brokers=3, topics=("orders:6",), bootstrap_of=None, proxy_args=(),
                 server=None, port=9092, to=CLUSTER_TO_SERVER):
        """`server`: another Env's tunnel server, shared (then give another `port`);
        `to`: where the proxy dials the server (e.g. a recording forwarder)."""
        self.ns = ns
        self.to = to
        self.procs = procs
        self.port = port
        self.server = server or self.start_server()
        self.cluster = KafkaCluster(brokers=brokers, topics=topics, prefix=ns.prefix("c")) if brokers else None
        target = bootstrap_of or self.cluster.bootstrap.split(",")[0]
        self.proxy = self.start_proxy(target, port=port, extra=proxy_args)
        m = self.proxy.wait_for(r"^bootstrap\.servers=(\S+)$", timeout=20, stdout=True)
        self.bootstrap = m.group(1)
        self.public = {}
        for line in self.proxy.stdout_text().splitlines():
            t = re.match(r"^\s+(\d+)\s+(\S+):(\d+)\s+(\S+)", line)
            if t:
                self.public[int(t.group(1))] = (t.group(2), int(t.group(3)))

    def start_server(self):
        """The tunnel server in the server namespace (test_upstream.py runs upstream's)."""
        p = self.procs.start([*self.ns.prefix("s"), BORE, "server", "--bind-addr", "0.0.0.0",
                              "--min-port", "9000", "--max-port", "29999", "--secret", SECRET])
        p.wait_for("server listening")
        return p

    def start_proxy(self, target, secret=SECRET, port=9092, extra=()):
        return self.procs.start([*self.ns.prefix("c"), BORE, "kafka-proxy", "-b", target, "--to",
                                 self.to, "--advertised-host", CLIENT_TO_SERVER, "-s", secret,
                                 "-p", str(port), *extra])

    @property
    def client_ns(self):
        return self.ns.prefix("u")

    def public_ports(self):
        """Every tunnel port the proxy has opened (the table plus later ones)."""
        ports = {p for _, p in self.public.values()}
        for line in self.proxy.text().splitlines():
            m = re.search(r"is public at [^ ]+:(\d+)", line)
            if m:
                ports.add(int(m.group(1)))
        return ports | {self.port}

    def assert_public(self, addresses):
        ports = self.public_ports()
        for a in addresses:
            host, _, port = a.rpartition(":")
            assert host == CLIENT_TO_SERVER and int(port) in ports, f"internal address leaked: {a}"

    def close(self):
        if self.cluster:
            assert self.cluster.stop() == 0, "".join(self.cluster.err)
