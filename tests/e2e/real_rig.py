"""The real Apache Kafka cluster for end-to-end tests (tests/tools/kafka_real.py),
started once per test module in the cluster namespace."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

from kafka_real import OLD_VERSION, SASL_USERS, SCRAM_USERS, RealCluster, tool_command  # noqa: E402,F401


def real_cluster(ns, **kw):
    """A module fixture's body: the cluster in the cluster namespace,
    stopped (brokers, then the quorum) when the module ends."""
    c = RealCluster(prefix=ns.prefix("c"), **kw)
    try:
        yield c
    finally:
        c.close()


def real_kafka_fixtures(**cluster_kw):
    """The fixtures of a real-Kafka test module, one cluster for the module:
    `real` (the cluster, in the namespaces of conftest's `ns`) and `env` (tunnel server and kafka-proxy in front of broker 1;
    `env.real` is the cluster). A module takes them with
    `real, env = real_kafka_fixtures(topics=[...])`."""
    from kafka_env import Env

    @pytest.fixture(scope="module")
    def real(ns):
        yield from real_cluster(ns, **cluster_kw)

    @pytest.fixture(scope="module")
    def env(module_procs, ns, real):
        e = Env(module_procs, ns, brokers=0, bootstrap_of=real.address(1))
        e.real = real
        return e

    return real, env
