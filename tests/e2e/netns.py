"""Three network namespaces joined by veth pairs, so a Kafka client can only
reach the brokers through the tunnel server (issue 5):

    [cluster: brokers + kafka-proxy] 192.0.2.1 --- 192.0.2.2 [server: bore server]
                                                  192.0.2.6 --- 192.0.2.5 [client]

The server namespace does not forward (a new namespace starts with
ip_forward off), so the client has no route to the cluster: an internal
broker address leaked to it (127.0.0.1:port in the cluster namespace) fails
loudly in the client's own namespace.
"""
import os
import subprocess

CLUSTER_TO_SERVER = "192.0.2.2"  # where the proxy dials the tunnel server
CLIENT_TO_SERVER = "192.0.2.6"   # where clients reach it: the advertised host


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=30)


class Namespaces:
    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.names = {k: f"bore{tag}{k}" for k in ("c", "s", "u")}
        self.cleanup()
        for n in self.names.values():
            sh("ip", "netns", "add", n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
        c, s, u = self.names["c"], self.names["s"], self.names["u"]
        self._veth(f"bc{tag}", c, "192.0.2.1/30", f"bs{tag}", s, "192.0.2.2/30")
        self._veth(f"bu{tag}", u, "192.0.2.5/30", f"bt{tag}", s, "192.0.2.6/30")

    def _veth(self, a, ns_a, ip_a, b, ns_b, ip_b):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for dev, ns, ip in ((a, ns_a, ip_a), (b, ns_b, ip_b)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", ip, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def prefix(self, which):
        return ["ip", "netns", "exec", self.names[which]]

    def cleanup(self):
        for n in self.names.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


class PrivateNet:
    """A fresh network namespace, entered by the calling thread for the
    duration of a `with` block: sockets it opens and processes it starts
    live there (a socket keeps its namespace after the thread leaves).
    `sysctls` are set inside it only, e.g. small TCP buffers so the kernel
    stops absorbing what a peer does not read."""

    CLONE_NEWNET = 0x40000000

    def __init__(self, sysctls=None):
        self.name = f"borepn{os.getpid() % 100000}"
        self.sysctls = sysctls or {}

    def __enter__(self):
        import ctypes
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        for k, v in self.sysctls.items():
            sh("ip", "netns", "exec", self.name, "sysctl", "-q", "-w", f"{k}={v}")
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if self.libc.setns(fd, self.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        self.libc.setns(self.home, self.CLONE_NEWNET)
        os.close(self.home)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
