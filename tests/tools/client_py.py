#!/usr/bin/python3
"""A test driver over two real Python Kafka clients, one JSON line of output.

    client_py.py --lib confluent|kafka-python --bootstrap HOST:PORT OP [options]

OPs:
  metadata                          brokers as the client sees them
  produce  --topic T --count N      N keyed messages k<i> -> v<i>-...; prints acks
  consume  --topic T --group G --count N [--timeout S]
                                    consumes in a group, commits; prints what came
  txn      --topic T --count N --abort-count M --txn-id ID
                                    commits N messages in one transaction, aborts M;
                                    prints only the addresses (what the broker kept
                                    is for a consumer to show, not for the driver
                                    to claim)
  consume-committed ...             as consume, isolation read_committed

--config KEY=VALUE (repeatable) adds client properties, in librdkafka's
names (security.protocol, sasl.mechanism, sasl.username, sasl.password);
--start I makes produce begin at key k<I>.

Every result carries "addresses": every broker address the client learned,
from its own view of the cluster, so a test can check none is internal.
"""
import argparse
import json
import sys
import time


def value_for(i):
    return f"v{i}-" + "x" * (i % 50)


def verify(received, count):
    """received: list of (key, value) strings."""
    idx = []
    bad = 0
    for k, v in received:
        if not k or not k.startswith("k"):
            bad += 1
            continue
        i = int(k[1:])
        if v != value_for(i):
            bad += 1
        idx.append(i)
    uniq = set(idx)
    return {
        "count": len(received),
        "unique": len(uniq),
        "duplicates": len(idx) - len(uniq),
        "bad": bad,
        "missing": sorted(set(range(count)) - uniq)[:10],
        "complete": uniq == set(range(count)) and bad == 0,
        "indices": sorted(uniq),
    }


# ---- confluent-kafka (librdkafka) ------------------------------------------

class Confluent:
    def __init__(self, bootstrap, extra):
        import confluent_kafka
        self.ck = confluent_kafka
        self.bootstrap = bootstrap
        self.extra = extra
        self.stats_brokers = set()

    def conf(self, **extra):
        c = {"bootstrap.servers": self.bootstrap, "statistics.interval.ms": 200,
             "stats_cb": self.on_stats, "log_level": 3}
        c.update(self.extra)
        c.update(extra)
        return c

    def on_stats(self, s):
        for b in json.loads(s).get("brokers", {}).values():
            name = b.get("name", "")
            if "/" in name and not name.startswith(("GroupCoordinator", "TxnCoordinator")):
                self.stats_brokers.add(name.split("://")[-1].split("/")[0])

    def addresses(self, handle):
        md = handle.list_topics(timeout=10)
        addrs = {f"{b.host}:{b.port}" for b in md.brokers.values()}
        return sorted(addrs | self.stats_brokers)

    def metadata(self, a):
        p = self.ck.Producer(self.conf())
        md = p.list_topics(timeout=10)
        brokers = sorted([{"id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()],
                         key=lambda x: x["id"])
        topics = {t: {str(pid): part.leader for pid, part in md.topics[t].partitions.items()}
                  for t in md.topics}
        return {"brokers": brokers, "topics": topics, "addresses": self.addresses(p)}

    def produce(self, a):
        p = self.ck.Producer(self.conf(**{"linger.ms": 5, "acks": "all", "enable.idempotence": True}))
        errors = []
        acked = [0]

        def cb(err, msg):
            if err:
                errors.append(str(err))
            else:
                acked[0] += 1
        for i in range(a.start, a.start + a.count):
            while True:
                try:
                    p.produce(a.topic, key=f"k{i}", value=value_for(i), callback=cb)
                    break
                except BufferError:
                    p.poll(0.1)
            if a.pace and i % 500 == 499:
                p.flush(30)
                time.sleep(a.pace)
            p.poll(0)
        left = p.flush(60)
        return {"acked": acked[0], "errors": errors[:5], "unflushed": left,
                "addresses": self.addresses(p)}

    def consume(self, a, isolation="read_uncommitted"):
        c = self.ck.Consumer(self.conf(**{"group.id": a.group, "auto.offset.reset": "earliest",
                                          "enable.auto.commit": False,
                                          "isolation.level": isolation}))
        c.subscribe([a.topic])
        if a.stream:
            return stream(a, lambda: [((m.key() or b"").decode(), (m.value() or b"").decode())
                                      for m in c.consume(500, 0.3) if not m.error()],
                          lambda: c.commit(asynchronous=False), c.close)
        got = []
        deadline = time.time() + a.timeout
        while len(got) < a.count and time.time() < deadline:
            for m in c.consume(500, 0.5):
                if m.error():
                    continue
                got.append(((m.key() or b"").decode(), (m.value() or b"").decode()))
            if got:
                c.commit(asynchronous=False) if a.commit_each else None
        if got:
            c.commit(asynchronous=False)
        # Linger a little when asked (keeps a group member alive for the test).
        addrs = self.addresses(c)
        c.close()
        r = verify(got, a.count)
        r["addresses"] = addrs
        return r

    def txn(self, a):
        p = self.ck.Producer(self.conf(**{"transactional.id": a.txn_id}))
        p.init_transactions(30)
        p.begin_transaction()
        for i in range(a.count):
            p.produce(a.topic, key=f"k{i}", value=value_for(i))
        p.commit_transaction(30)
        p.begin_transaction()
        for i in range(a.count, a.count + a.abort_count):
            p.produce(a.topic, key=f"k{i}", value=value_for(i))
        p.flush(30)
        p.abort_transaction(30)
        return {"addresses": self.addresses(p)}


# ---- kafka-python (pure Python) -----------------------------------------------

class KafkaPython:
    # librdkafka's property names -> kafka-python's keyword arguments
    NAMES = {"security.protocol": "security_protocol", "sasl.mechanism": "sasl_mechanism",
             "sasl.username": "sasl_plain_username", "sasl.password": "sasl_plain_password",
             "ssl.ca.location": "ssl_cafile", "ssl.certificate.location": "ssl_certfile",
             "ssl.key.location": "ssl_keyfile"}

    def __init__(self, bootstrap, extra):
        import logging
        import kafka
        # kafka-python reports an authentication failure in its log only (its
        # exception then names something else): let errors reach stderr.
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        self.kafka = kafka
        self.bootstrap = bootstrap
        self.kw = {self.NAMES[k]: v for k, v in extra.items()}

    @staticmethod
    def addresses(client_or_cluster):
        cluster = getattr(client_or_cluster, "cluster", client_or_cluster)
        return sorted({f"{b.host}:{b.port}" for b in cluster.brokers()})

    def metadata(self, a):
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000,
                                 **self.kw)
        c = admin._client
        c.cluster.need_all_topic_metadata = True  # a Metadata request for every topic
        c.poll(future=c.cluster.request_update())
        brokers = sorted([{"id": b.nodeId, "host": b.host, "port": b.port} for b in c.cluster.brokers()],
                         key=lambda x: x["id"])
        topics = {}
        for t in c.cluster.topics():
            topics[t] = {str(p): c.cluster.leader_for_partition(self.kafka.TopicPartition(t, p))
                         for p in c.cluster.partitions_for_topic(t) or []}
        r = {"brokers": brokers, "topics": topics, "addresses": self.addresses(c)}
        admin.close()
        return r

    def produce(self, a):
        p = self.kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                                     enable_idempotence=True,
                                     retries=20, key_serializer=str.encode,
                                     value_serializer=str.encode, **self.kw)
        futures = []
        for i in range(a.start, a.start + a.count):
            futures.append(p.send(a.topic, key=f"k{i}", value=value_for(i)))
            if a.pace and i % 500 == 499:
                p.flush(30)
                time.sleep(a.pace)
        p.flush(60)
        acked, errors = 0, []
        for f in futures:
            try:
                f.get(timeout=30)
                acked += 1
            except Exception as e:  # noqa: BLE001 - reported to the test
                errors.append(repr(e))
        r = {"acked": acked, "errors": errors[:5], "addresses": self.addresses(p._metadata)}
        p.close()
        return r

    def consume(self, a, isolation="read_uncommitted"):
        c = self.kafka.KafkaConsumer(a.topic, bootstrap_servers=self.bootstrap, group_id=a.group,
                                     auto_offset_reset="earliest", enable_auto_commit=False,
                                     consumer_timeout_ms=1000, isolation_level=isolation, **self.kw)
        if a.stream:
            def batch():
                return [((m.key or b"").decode(), (m.value or b"").decode())
                        for recs in c.poll(timeout_ms=300, max_records=500).values() for m in recs]
            return stream(a, batch, c.commit, c.close)
        got = []
        deadline = time.time() + a.timeout
        while len(got) < a.count and time.time() < deadline:
            batch = c.poll(timeout_ms=500, max_records=1000)
            for recs in batch.values():
                for m in recs:
                    got.append(((m.key or b"").decode(), (m.value or b"").decode()))
        if got:
            c.commit()
        addrs = self.addresses(c._client)
        c.close()
        r = verify(got, a.count)
        r["addresses"] = addrs
        return r

    def txn(self, a):
        p = self.kafka.KafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=a.txn_id,
                                     key_serializer=str.encode, value_serializer=str.encode, **self.kw)
        p.init_transactions()
        p.begin_transaction()
        for i in range(a.count):
            p.send(a.topic, key=f"k{i}", value=value_for(i))
        p.commit_transaction()
        p.begin_transaction()
        for i in range(a.count, a.count + a.abort_count):
            p.send(a.topic, key=f"k{i}", value=value_for(i))
        p.flush(30)
        p.abort_transaction()
        r = {"addresses": self.addresses(p._metadata)}
        p.close()
        return r


def stream(a, batch, commit, close):
    """--stream: prints each message as "key<TAB>value" as it arrives and
    commits after each batch, until SIGTERM; then closes (leaving the group)."""
    import signal
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        msgs = batch()
        for k, v in msgs:
            sys.stdout.write(f"{k}\t{v}\n")
        sys.stdout.flush()
        if msgs:
            try:
                commit()
            except Exception as e:  # noqa: BLE001 - a rebalance; the next commit covers it
                sys.stderr.write(f"commit: {e}\n")
    close()
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, choices=["confluent", "kafka-python"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("op", choices=["metadata", "produce", "consume", "txn", "consume-committed"])
    ap.add_argument("--topic", default="orders")
    ap.add_argument("--group", default="g1")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--abort-count", type=int, default=0)
    ap.add_argument("--txn-id", default="txn-1")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pace", type=float, default=0)
    ap.add_argument("--commit-each", action="store_true")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    extra = dict(c.split("=", 1) for c in a.config)
    lib = Confluent(a.bootstrap, extra) if a.lib == "confluent" else KafkaPython(a.bootstrap, extra)
    if a.op == "consume-committed":
        r = lib.consume(a, "read_committed")
    else:
        r = getattr(lib, a.op)(a)
    if r is not None:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    sys.exit(main())
