"""The real Apache Kafka cluster for end-to-end tests (tests/tools/kafka_real.py),
started once per test module in the cluster namespace."""
import os
import sys

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
