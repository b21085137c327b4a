// ClientJava - the test rig's driver over the Apache Kafka Java client
// (kafka-clients 4.4), one JSON line of output, like tests/tools/client_py.py.
//
//   java -cp ".cache/kafka/4.4.0/classes:.cache/kafka/4.4.0/lib/*" ClientJava \
//       --bootstrap HOST:PORT OP [--topic T] [--group G] [--count N] [--abort-count M]
//       [--txn-id ID] [--timeout S] [--pace S] [--stream] [--group-protocol classic|consumer]
//       [--partition P] [--replicas 4,1,2] [--config k=v ...]
//
// OPs: metadata, produce, consume, consume-committed, txn, admin, share-consume,
// reassign, elect (see usage()). Every result carries "addresses": every broker
// host:port the client learned, so a test can check none is internal.
// Exit codes: 0 ok, 1 failure, 2 usage, 3 authentication failure, 4 deadline.

import java.io.PrintStream;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.Metadata;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ClientJava {
    // ---- options ------------------------------------------------------------
    String bootstrap, op, topic = "orders", group = "g1", txnId = "txn-1", groupProtocol = "classic";
    String replicas;
    boolean topicGiven, stream;
    int count, abortCount, partition;
    int start = 0; // produce: first key k<start>
    double timeout = 60, pace;
    final Map<String, String> extra = new LinkedHashMap<>();

    long deadline;                                  // this op's own deadline (ms)
    final Set<String> addresses = new TreeSet<>();  // every host:port learned

    static final String OPS = "metadata produce consume consume-committed txn admin share-consume reassign elect";

    static void usage(String why) {
        System.err.println("ClientJava: " + why);
        System.err.println("usage: ClientJava --bootstrap HOST:PORT OP [--topic T] [--group G] [--count N]"
                + " [--abort-count M] [--txn-id ID] [--timeout S] [--pace S] [--stream]"
                + " [--group-protocol classic|consumer] [--partition P] [--replicas 1,2,3]"
                + " [--config k=v ...]\nOPs: " + OPS);
        System.exit(2);
    }

    void parse(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--stream")) { stream = true; continue; }
            if (!a.startsWith("--")) {
                if (op != null) usage("unexpected argument " + a);
                op = a;
                continue;
            }
            if (i + 1 >= args.length) usage(a + " needs a value");
            String v = args[++i];
            try {
                switch (a) {
                    case "--bootstrap": bootstrap = v; break;
                    case "--topic": topic = v; topicGiven = true; break;
                    case "--group": group = v; break;
                    case "--count": count = Integer.parseInt(v); break;
                    case "--start": start = Integer.parseInt(v); break;
                    case "--abort-count": abortCount = Integer.parseInt(v); break;
                    case "--txn-id": txnId = v; break;
                    case "--timeout": timeout = Double.parseDouble(v); break;
                    case "--pace": pace = Double.parseDouble(v); break;
                    case "--partition": partition = Integer.parseInt(v); break;
                    case "--replicas": replicas = v; break;
                    case "--group-protocol":
                        if (!v.equals("classic") && !v.equals("consumer")) usage("bad --group-protocol " + v);
                        groupProtocol = v;
                        break;
                    case "--config": {
                        int eq = v.indexOf('=');
                        if (eq <= 0) usage("--config wants k=v, got " + v);
                        extra.put(v.substring(0, eq), v.substring(eq + 1));
                        break;
                    }
                    default: usage("unknown option " + a);
                }
            } catch (NumberFormatException e) {
                usage("bad number for " + a + ": " + v);
            }
        }
        if (bootstrap == null) usage("--bootstrap is required");
        if (op == null || !Arrays.asList(OPS.split(" ")).contains(op)) usage("bad or missing OP " + op);
    }

    // ---- helpers ------------------------------------------------------------

    static String valueFor(int i) { return "v" + i + "-" + "x".repeat(i % 50); }

    long remainingMs() { return Math.max(1, deadline - System.currentTimeMillis()); }

    boolean beforeDeadline() { return System.currentTimeMillis() < deadline; }

    /** Waits for an admin future until this op's deadline, with 15 s grace
     *  for the calls that follow a loop that ran up to it. */
    <T> T get(KafkaFuture<T> f) throws Exception {
        long ms = Math.max(15000, remainingMs());
        try {
            return f.get(ms, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new TimeoutException("no answer to an admin call within " + ms + " ms");
        } catch (ExecutionException e) {
            throw (e.getCause() instanceof Exception) ? (Exception) e.getCause() : e;
        }
    }

    Properties props(String... kv) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "bore-java-" + op);
        for (int i = 0; i + 1 < kv.length; i += 2) p.put(kv[i], kv[i + 1]);
        p.putAll(extra);
        return p;
    }

    Admin admin() {
        int ms = (int) Math.min(Integer.MAX_VALUE, Math.max(15000, (long) (timeout * 1000)));
        return Admin.create(props("request.timeout.ms", "15000", "default.api.timeout.ms", String.valueOf(ms)));
    }

    void learn(Node n) {
        if (n != null && !n.isEmpty() && n.host() != null) addresses.add(n.host() + ":" + n.port());
    }

    void learn(Collection<PartitionInfo> parts) {
        for (PartitionInfo p : parts) {
            learn(p.leader());
            for (Node n : p.replicas()) learn(n);
            for (Node n : p.inSyncReplicas()) learn(n);
        }
    }

    /** The nodes of a client's own metadata (field "metadata", also behind a
     *  "delegate"): the brokers this client actually learned. Best effort. */
    void learnInternal(Object client) {
        for (Object o : new Object[]{client, field(client, "delegate")}) {
            Object md = field(o, "metadata");
            if (md instanceof Metadata) {
                for (Node n : ((Metadata) md).fetch().nodes()) learn(n);
                return;
            }
        }
    }

    static Object field(Object o, String name) {
        for (Class<?> c = o == null ? null : o.getClass(); c != null; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField(name);
                f.setAccessible(true);
                return f.get(o);
            } catch (NoSuchFieldException e) {
                // look in the superclass
            } catch (Exception e) {
                return null;
            }
        }
        return null;
    }

    /** describeCluster's nodes go into addresses; returns them. */
    Collection<Node> learnCluster(Admin admin) throws Exception {
        Collection<Node> nodes = get(admin.describeCluster().nodes());
        for (Node n : nodes) learn(n);
        return nodes;
    }

    /** Like client_py's verify(): received (key, value) pairs against k0..k(count-1). */
    static Map<String, Object> verify(List<String[]> received, int count) {
        TreeSet<Integer> uniq = new TreeSet<>();
        int bad = 0, valid = 0;
        for (String[] kv : received) {
            int i;
            try {
                if (kv[0] == null || !kv[0].startsWith("k")) throw new NumberFormatException();
                i = Integer.parseInt(kv[0].substring(1));
            } catch (NumberFormatException e) {
                bad++;
                continue;
            }
            if (!valueFor(i).equals(kv[1])) bad++;
            valid++;
            uniq.add(i);
        }
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < count && missing.size() < 10; i++) if (!uniq.contains(i)) missing.add(i);
        boolean complete = bad == 0 && uniq.size() == count && (count == 0 || (uniq.first() == 0 && uniq.last() == count - 1));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("count", received.size());
        r.put("unique", uniq.size());
        r.put("duplicates", valid - uniq.size());
        r.put("bad", bad);
        r.put("missing", missing);
        r.put("complete", complete);
        r.put("indices", new ArrayList<>(uniq));
        return r;
    }

    /** Distinct valid indices seen so far, for the "until count" loops. */
    static boolean countKey(Set<Integer> seen, String key) {
        if (key == null || !key.startsWith("k")) return false;
        try {
            return seen.add(Integer.parseInt(key.substring(1)));
        } catch (NumberFormatException e) {
            return false;
        }
    }

    // ---- metadata -----------------------------------------------------------

    Map<String, Object> metadata() throws Exception {
        try (Admin admin = admin()) {
            DescribeClusterResult dc = admin.describeCluster();
            List<Map<String, Object>> brokers = new ArrayList<>();
            List<Node> nodes = new ArrayList<>(get(dc.nodes()));
            nodes.sort(Comparator.comparingInt(Node::id));
            for (Node n : nodes) {
                learn(n);
                brokers.add(obj("id", n.id(), "host", n.host(), "port", n.port()));
            }
            Node controller = get(dc.controller());
            Set<String> names = get(admin.listTopics(new ListTopicsOptions().listInternal(true)).names());
            Map<String, Object> topics = new TreeMap<>();
            for (TopicDescription td : get(admin.describeTopics(names).allTopicNames()).values()) {
                Map<String, Object> parts = new TreeMap<>(Comparator.comparingInt(Integer::parseInt));
                for (TopicPartitionInfo p : td.partitions()) {
                    learn(p.leader());
                    p.replicas().forEach(this::learn);
                    parts.put(String.valueOf(p.partition()), p.leader() == null ? -1 : p.leader().id());
                }
                topics.put(td.name(), parts);
            }
            return obj("brokers", brokers, "topics", topics, "controller",
                    controller == null || controller.isEmpty() ? -1 : controller.id(), "addresses", addresses);
        }
    }

    // ---- produce ------------------------------------------------------------

    Map<String, Object> produce() throws Exception {
        AtomicInteger acked = new AtomicInteger();
        List<String> errors = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean first = new AtomicBoolean();
        double[] firstAt = {0};
        Properties p = props("enable.idempotence", "true", "acks", "all", "linger.ms", "5",
                "max.block.ms", String.valueOf(Math.max(5000, (long) (timeout * 1000))),
                "key.serializer", StringSerializer.class.getName(),
                "value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            learn(producer.partitionsFor(topic));  // fails fast (e.g. authentication) before sending
            Callback cb = (md, e) -> {
                if (e != null) {
                    if (errors.size() < 10) errors.add(e.getClass().getSimpleName() + ": " + e.getMessage());
                } else {
                    acked.incrementAndGet();
                    if (first.compareAndSet(false, true)) {
                        firstAt[0] = System.currentTimeMillis() / 1000.0;
                        System.err.println("ACKED-FIRST");
                        System.err.flush();
                    }
                }
            };
            for (int i = start; i < start + count; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, valueFor(i)), cb);
                if (pace > 0 && (i - start) % 500 == 499) {
                    producer.flush();
                    Thread.sleep((long) (pace * 1000));
                }
            }
            producer.flush();
            learn(producer.partitionsFor(topic));
            learnInternal(producer);
        }
        try (Admin admin = admin()) {
            learnCluster(admin);
        }
        return obj("acked", acked.get(), "errors", new ArrayList<>(errors), "first_ack_at", firstAt[0],
                "addresses", addresses);
    }

    // ---- consume ------------------------------------------------------------

    Properties consumerProps(boolean committed) {
        return props("group.id", group, "group.protocol", groupProtocol,
                "auto.offset.reset", "earliest", "enable.auto.commit", "false",
                "isolation.level", committed ? "read_committed" : "read_uncommitted",
                "key.deserializer", StringDeserializer.class.getName(),
                "value.deserializer", StringDeserializer.class.getName());
    }

    Map<String, Object> consume(boolean committed) throws Exception {
        KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(committed));
        c.subscribe(List.of(topic));
        if (stream) {
            streamLoop(c);
            return null;
        }
        List<String[]> got = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        try {
            while (seen.size() < count && beforeDeadline()) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(Math.min(500, remainingMs())));
                for (ConsumerRecord<String, String> r : recs) {
                    got.add(new String[]{r.key(), r.value()});
                    countKey(seen, r.key());
                }
            }
            if (!got.isEmpty()) c.commitSync(Duration.ofMillis(Math.max(10000, remainingMs())));
            learn(c.partitionsFor(topic, Duration.ofMillis(Math.max(5000, remainingMs()))));
            learnInternal(c);
        } finally {
            c.close(CloseOptions.timeout(Duration.ofSeconds(10)));
        }
        try (Admin admin = admin()) {
            learnCluster(admin);
            learn(get(admin.describeConsumerGroups(List.of(group)).all()).get(group).coordinator());
        }
        Map<String, Object> r = verify(got, count);
        r.put("addresses", addresses);
        return r;
    }

    /** --stream: each record as "key<TAB>value" on stdout as it arrives, a
     *  commit after each batch, until SIGTERM; the shutdown hook wakes the
     *  consumer, which commits, closes (leaving the group) and exits 0. */
    void streamLoop(KafkaConsumer<String, String> c) {
        AtomicBoolean stop = new AtomicBoolean();
        CountDownLatch closed = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.set(true);
            c.wakeup();
            try {
                closed.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                // fall through to halt
            }
            System.out.flush();
            Runtime.getRuntime().halt(0);
        });
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            while (!stop.get()) {
                ConsumerRecords<String, String> recs;
                try {
                    recs = c.poll(Duration.ofMillis(300));
                } catch (WakeupException e) {
                    break;
                }
                if (recs.isEmpty()) continue;
                StringBuilder sb = new StringBuilder();
                for (ConsumerRecord<String, String> r : recs) sb.append(r.key()).append('\t').append(r.value()).append('\n');
                System.out.print(sb);
                System.out.flush();
                try {
                    c.commitSync(Duration.ofSeconds(10));
                } catch (WakeupException e) {
                    break;
                } catch (KafkaException e) {  // a rebalance: the next commit covers it
                    System.err.println("commit: " + e);
                }
            }
            try {
                c.commitSync(Duration.ofSeconds(10));
            } catch (Exception e) {
                System.err.println("final commit: " + e);
            }
        } finally {
            c.close(CloseOptions.timeout(Duration.ofSeconds(10)));
            closed.countDown();
            if (!stop.get()) {  // failing: main reports it with its own exit code
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException e) {
                    // already shutting down
                }
            }
        }
        // Stopped by the hook, which halts the JVM (exit 0) now that the
        // consumer is closed: main must not return into System.exit meanwhile.
        if (!stop.get()) return;
        try {
            Thread.sleep(60000);
        } catch (InterruptedException e) {
            // the JVM is halting anyway
        }
    }

    // ---- transactions -------------------------------------------------------

    Map<String, Object> txn() throws Exception {
        Properties p = props("transactional.id", txnId, "enable.idempotence", "true", "acks", "all",
                "max.block.ms", String.valueOf(Math.max(5000, (long) (timeout * 1000))),
                "key.serializer", StringSerializer.class.getName(),
                "value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            producer.beginTransaction();
            for (int i = 0; i < count; i++) producer.send(new ProducerRecord<>(topic, "k" + i, valueFor(i)));
            producer.commitTransaction();
            producer.beginTransaction();
            for (int i = count; i < count + abortCount; i++)
                producer.send(new ProducerRecord<>(topic, "k" + i, valueFor(i)));
            producer.flush();
            producer.abortTransaction();
            learn(producer.partitionsFor(topic));
            learnInternal(producer);
        }
        try (Admin admin = admin()) {
            learnCluster(admin);
        }
        return obj("committed", count, "aborted", abortCount, "addresses", addresses);
    }

    // ---- admin --------------------------------------------------------------

    static String hp(Node n) { return n == null || n.isEmpty() ? null : n.host() + ":" + n.port(); }

    Map<String, Object> adminOp() throws Exception {
        Map<String, Object> r = new LinkedHashMap<>();
        try (Admin admin = admin()) {
            DescribeClusterResult dc = admin.describeCluster();
            List<Node> nodes = new ArrayList<>(get(dc.nodes()));
            nodes.sort(Comparator.comparingInt(Node::id));
            List<Object> brokers = new ArrayList<>();
            for (Node n : nodes) {
                learn(n);
                brokers.add(obj("id", n.id(), "host", n.host(), "port", n.port(), "rack", n.rack()));
            }
            Node controller = get(dc.controller());
            learn(controller);
            r.put("cluster_id", get(dc.clusterId()));
            r.put("brokers", brokers);
            r.put("controller", controller == null ? null
                    : obj("id", controller.id(), "address", hp(controller)));

            // The KRaft quorum, with the endpoints of its nodes (KIP-853).
            try {
                QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
                Map<String, Object> qn = new TreeMap<>(Comparator.comparingInt(Integer::parseInt));
                for (QuorumInfo.Node n : q.nodes().values()) {
                    List<Object> eps = new ArrayList<>();
                    for (RaftVoterEndpoint e : n.endpoints()) {
                        eps.add(obj("listener", e.listener(), "host", e.host(), "port", e.port()));
                        addresses.add(e.host() + ":" + e.port());
                    }
                    qn.put(String.valueOf(n.nodeId()), eps);
                }
                List<Integer> voters = new ArrayList<>(), observers = new ArrayList<>();
                q.voters().forEach(v -> voters.add(v.replicaId()));
                q.observers().forEach(v -> observers.add(v.replicaId()));
                r.put("quorum", obj("leader", q.leaderId(), "leader_epoch", q.leaderEpoch(),
                        "high_watermark", q.highWatermark(), "voters", voters, "observers", observers,
                        "nodes", qn));
            } catch (Exception e) {
                r.put("quorum", obj("error", e.getClass().getSimpleName() + ": " + e.getMessage()));
            }

            // Create --topic (3 partitions) when asked for and absent.
            if (topicGiven) {
                Set<String> have = get(admin.listTopics().names());
                boolean created = false;
                if (!have.contains(topic)) {
                    short rf = (short) Math.min(3, nodes.size());
                    try {
                        get(admin.createTopics(List.of(new NewTopic(topic, 3, rf))).all());
                        created = true;
                    } catch (TopicExistsException e) {
                        // raced with someone else: fine
                    }
                }
                r.put("created", created);
            }

            Set<String> names = get(admin.listTopics(new ListTopicsOptions().listInternal(true)).names());
            Map<String, Object> topics = new TreeMap<>();
            for (TopicDescription td : get(admin.describeTopics(names).allTopicNames()).values()) {
                List<Object> parts = new ArrayList<>();
                for (TopicPartitionInfo p : td.partitions()) {
                    learn(p.leader());
                    List<Object> reps = new ArrayList<>(), isr = new ArrayList<>();
                    for (Node n : p.replicas()) { learn(n); reps.add(obj("id", n.id(), "address", hp(n))); }
                    for (Node n : p.isr()) { learn(n); isr.add(n.id()); }
                    parts.add(obj("partition", p.partition(),
                            "leader", p.leader() == null ? null : obj("id", p.leader().id(), "address", hp(p.leader())),
                            "replicas", reps, "isr", isr));
                }
                topics.put(td.name(), obj("id", td.topicId().toString(), "internal", td.isInternal(),
                        "partitions", parts));
            }
            r.put("topics", topics);

            // Groups of every type, each with its coordinator.
            Map<String, Object> groups = new TreeMap<>();
            for (GroupListing g : get(admin.listGroups().all())) {
                GroupType type = g.type().orElse(GroupType.UNKNOWN);
                Map<String, Object> d = obj("type", type.toString(), "protocol", g.protocol(),
                        "state", g.groupState().map(Object::toString).orElse(null));
                try {
                    Node coord;
                    if (type == GroupType.SHARE)
                        coord = get(admin.describeShareGroups(List.of(g.groupId())).all()).get(g.groupId()).coordinator();
                    else if (type == GroupType.STREAMS)
                        coord = get(admin.describeStreamsGroups(List.of(g.groupId())).all()).get(g.groupId()).coordinator();
                    else
                        coord = get(admin.describeConsumerGroups(List.of(g.groupId())).all()).get(g.groupId()).coordinator();
                    learn(coord);
                    d.put("coordinator", coord == null ? null : obj("id", coord.id(), "address", hp(coord)));
                } catch (Exception e) {
                    d.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
                }
                groups.put(g.groupId(), d);
            }
            r.put("groups", groups);
        }
        r.put("addresses", addresses);
        return r;
    }

    // ---- share groups (KIP-932) ----------------------------------------------

    Map<String, Object> shareConsume() throws Exception {
        try (Admin admin = admin()) {
            learnCluster(admin);
            ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
            get(admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)))).all());
        }
        Properties p = props("group.id", group, "share.acknowledgement.mode", "explicit",
                "key.deserializer", StringDeserializer.class.getName(),
                "value.deserializer", StringDeserializer.class.getName());
        List<String[]> got = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        int acknowledged = 0;
        List<String> ackErrors = new ArrayList<>();
        KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(p);
        try {
            c.subscribe(List.of(topic));
            while (seen.size() < count && beforeDeadline()) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(Math.min(500, remainingMs())));
                if (recs.isEmpty()) continue;
                for (ConsumerRecord<String, String> r : recs) {
                    got.add(new String[]{r.key(), r.value()});
                    countKey(seen, r.key());
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                Map<TopicIdPartition, Optional<KafkaException>> res =
                        c.commitSync(Duration.ofMillis(Math.max(10000, remainingMs())));
                boolean ok = true;
                for (Map.Entry<TopicIdPartition, Optional<KafkaException>> e : res.entrySet())
                    if (e.getValue().isPresent()) {
                        ok = false;
                        if (ackErrors.size() < 10) ackErrors.add(e.getKey() + ": " + e.getValue().get());
                    }
                if (ok) acknowledged += recs.count();
            }
            learnInternal(c);
        } finally {
            c.close(Duration.ofSeconds(10));
        }
        try (Admin admin = admin()) {
            learn(get(admin.describeShareGroups(List.of(group)).all()).get(group).coordinator());
        }
        Map<String, Object> r = verify(got, count);
        r.put("acknowledged", acknowledged);
        r.put("ack_errors", ackErrors);
        r.put("addresses", addresses);
        return r;
    }

    // ---- reassign / elect (helpers for the cluster launcher) -----------------

    TopicPartitionInfo partitionInfo(Admin admin) throws Exception {
        TopicDescription td = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        for (TopicPartitionInfo p : td.partitions()) {
            learn(p.leader());
            p.replicas().forEach(this::learn);
        }
        return td.partitions().stream().filter(p -> p.partition() == partition).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no partition " + topic + "-" + partition));
    }

    static List<Integer> ids(List<Node> nodes) {
        List<Integer> l = new ArrayList<>();
        nodes.forEach(n -> l.add(n.id()));
        return l;
    }

    Map<String, Object> reassign() throws Exception {
        if (replicas == null) usage("reassign needs --replicas");
        List<Integer> want = new ArrayList<>();
        for (String s : replicas.split(",")) want.add(Integer.parseInt(s.trim()));
        TopicPartition tp = new TopicPartition(topic, partition);
        try (Admin admin = admin()) {
            get(admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(want)))).all());
            // Done when the controller no longer lists it as ongoing.
            while (true) {
                Map<TopicPartition, PartitionReassignment> ongoing =
                        get(admin.listPartitionReassignments(Set.of(tp)).reassignments());
                if (!ongoing.containsKey(tp)) break;
                if (!beforeDeadline()) throw new TimeoutException("reassignment of " + tp + " still ongoing: " + ongoing.get(tp));
                Thread.sleep(200);
            }
            TopicPartitionInfo p = partitionInfo(admin);
            learnCluster(admin);
            return obj("ok", ids(p.replicas()).equals(want), "replicas", ids(p.replicas()),
                    "leader", p.leader() == null ? -1 : p.leader().id(), "addresses", addresses);
        }
    }

    Map<String, Object> elect() throws Exception {
        TopicPartition tp = new TopicPartition(topic, partition);
        try (Admin admin = admin()) {
            String note = "elected";
            Optional<Throwable> err;
            try {
                err = get(admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions()).get(tp);
            } catch (ElectionNotNeededException e) {
                err = Optional.of(e);
            }
            if (err.isPresent()) {
                if (!(err.get() instanceof ElectionNotNeededException))
                    throw new KafkaException("election for " + tp + " failed", err.get());
                note = "election not needed";
            }
            // Wait until the metadata shows the preferred replica leading.
            TopicPartitionInfo p = partitionInfo(admin);
            while (p.leader() == null || p.replicas().isEmpty() || p.leader().id() != p.replicas().get(0).id()) {
                if (!beforeDeadline()) break;
                Thread.sleep(200);
                p = partitionInfo(admin);
            }
            int leader = p.leader() == null ? -1 : p.leader().id();
            learnCluster(admin);
            return obj("ok", !p.replicas().isEmpty() && leader == p.replicas().get(0).id(), "note", note,
                    "leader", leader, "replicas", ids(p.replicas()), "addresses", addresses);
        }
    }

    // ---- JSON ---------------------------------------------------------------

    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static void json(StringBuilder sb, Object o) {
        if (o == null) {
            sb.append("null");
        } else if (o instanceof Map) {
            sb.append('{');
            boolean firstEntry = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                if (!firstEntry) sb.append(", ");
                firstEntry = false;
                json(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                json(sb, e.getValue());
            }
            sb.append('}');
        } else if (o instanceof Collection) {
            sb.append('[');
            boolean firstItem = true;
            for (Object x : (Collection<?>) o) {
                if (!firstItem) sb.append(", ");
                firstItem = false;
                json(sb, x);
            }
            sb.append(']');
        } else if (o instanceof Double) {
            double d = (Double) o;
            sb.append(Double.isFinite(d) ? new java.math.BigDecimal(d).setScale(3, java.math.RoundingMode.HALF_UP).toPlainString() : "null");
        } else if (o instanceof Number || o instanceof Boolean) {
            sb.append(o);
        } else {
            String s = o.toString();
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
                else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
                else sb.append(ch);
            }
            sb.append('"');
        }
    }

    // ---- main ---------------------------------------------------------------

    static boolean isAuth(Throwable t) {
        for (; t != null; t = t.getCause())
            if (t instanceof AuthenticationException) return true;
        return false;
    }

    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(c.getClass().getName()).append(": ").append(c.getMessage());
        }
        return sb.toString();
    }

    /** The clients log through slf4j 1.7. With a log4j 2 binding in lib/,
     *  log4j gets a programmatic configuration: WARN and up, to stderr (its
     *  default would write to stdout). Without one slf4j falls back to its
     *  no-op logger and says so on stderr: that notice is silenced. */
    static void quietLogging() {
        try {
            Class.forName("org.apache.logging.slf4j.Log4jLoggerFactory");
            log4jToStderr();
            return;
        } catch (ClassNotFoundException | LinkageError e) {
            // no log4j 2 binding
        }
        PrintStream err = System.err;
        System.setErr(new PrintStream(OutputStream.nullOutputStream()));
        try {
            org.slf4j.LoggerFactory.getLogger(ClientJava.class);
        } finally {
            System.setErr(err);
        }
    }

    static void log4jToStderr() {
        var b = org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory.newConfigurationBuilder();
        b.setStatusLevel(org.apache.logging.log4j.Level.ERROR);
        b.setConfigurationName("ClientJava");
        b.add(b.newAppender("stderr", "Console")
                .addAttribute("target", org.apache.logging.log4j.core.appender.ConsoleAppender.Target.SYSTEM_ERR)
                .add(b.newLayout("PatternLayout").addAttribute("pattern", "%d{HH:mm:ss.SSS} %-5level %c{1}: %msg%n")));
        b.add(b.newRootLogger(org.apache.logging.log4j.Level.WARN).add(b.newAppenderRef("stderr")));
        org.apache.logging.log4j.core.config.Configurator.initialize(b.build());
    }

    Map<String, Object> run() throws Exception {
        switch (op) {
            case "metadata": return metadata();
            case "produce": return produce();
            case "consume": return consume(false);
            case "consume-committed": return consume(true);
            case "txn": return txn();
            case "admin": return adminOp();
            case "share-consume": return shareConsume();
            case "reassign": return reassign();
            case "elect": return elect();
            default: throw new IllegalStateException(op);
        }
    }

    public static void main(String[] args) {
        quietLogging();
        ClientJava cj = new ClientJava();
        cj.parse(args);
        long start = System.currentTimeMillis();
        cj.deadline = start + (long) (cj.timeout * 1000);
        if (!cj.stream) {
            // Watchdog: nothing may outlive the op's deadline by much (produce
            // also gets its pacing and a flush's worth of time).
            long hard = (long) (cj.timeout * 1000) + 60000
                    + (cj.op.equals("produce") ? (long) (cj.pace * 1000 * (cj.count / 500)) + 60000 : 0);
            long at = start + hard;
            Thread w = new Thread(() -> {
                while (System.currentTimeMillis() < at) {
                    try {
                        Thread.sleep(Math.max(1, at - System.currentTimeMillis()));
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                System.err.println("ClientJava " + cj.op + ": deadline exceeded (" + hard / 1000 + " s), giving up");
                System.err.flush();
                Runtime.getRuntime().halt(4);
            }, "watchdog");
            w.setDaemon(true);
            w.start();
        }
        try {
            Map<String, Object> r = cj.run();
            if (r != null) {
                StringBuilder sb = new StringBuilder();
                json(sb, r);
                System.out.println(sb);
                System.out.flush();
            }
            System.exit(0);
        } catch (Throwable t) {
            if (isAuth(t)) {
                System.err.println("ClientJava " + cj.op + ": Authentication failed: " + describe(t));
                System.err.flush();
                System.exit(3);
            }
            System.err.println("ClientJava " + cj.op + " failed: " + describe(t));
            System.err.flush();
            System.exit(1);
        }
    }
}
