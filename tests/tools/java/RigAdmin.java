/* RigAdmin - the real-Kafka launcher's admin side (tests/tools/kafka_real.py):
 * one long-lived JVM with an Admin client, driven by commands on stdin, one
 * JSON answer per line on stdout, so a test moving leaders or creating
 * topics does not pay a JVM start per command.
 *
 *   java RigAdmin BOOTSTRAP [k=v ...]        (extra client properties)
 *
 * Commands (one per line, words separated by spaces):
 *   brokers                             {"brokers":[{"id","host","port"}...],"controller":id}
 *   topic NAME PARTITIONS RF            create a topic, wait until every partition has a leader
 *   describe NAME                       {"partitions":{"0":{"leader":1,"replicas":[1,2,3]}}}
 *   reassign NAME PARTITION R1,R2,...   move the replicas, wait for the reassignment to finish
 *   elect NAME PARTITION                preferred leader election (replica order decides)
 *   scram USER MECHANISM PASSWORD       create or update a SCRAM credential
 *   quit
 * Errors answer {"error":"..."}; the JVM keeps serving. */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.TopicExistsException;

public final class RigAdmin {
    private static final long DEADLINE_MS = 60_000;
    private final Admin admin;

    private RigAdmin(Admin admin) {
        this.admin = admin;
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        try (Admin admin = Admin.create(props)) {
            RigAdmin rig = new RigAdmin(admin);
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            String line;
            while ((line = in.readLine()) != null) {
                String[] w = line.trim().split("\\s+");
                if (w[0].equals("quit"))
                    break;
                String answer;
                try {
                    answer = rig.run(w);
                } catch (Exception e) {
                    Throwable c = e.getCause() != null ? e.getCause() : e;
                    answer = "{\"error\":" + str(c.getClass().getSimpleName() + ": " + c.getMessage()) + "}";
                }
                System.out.println(answer);
                System.out.flush();
            }
        }
    }

    private String run(String[] w) throws Exception {
        switch (w[0]) {
        case "brokers":
            return brokers();
        case "topic":
            return topic(w[1], Integer.parseInt(w[2]), Short.parseShort(w[3]));
        case "describe":
            return "{\"partitions\":" + partitions(w[1]) + "}";
        case "reassign":
            return reassign(w[1], Integer.parseInt(w[2]), w[3]);
        case "elect":
            return elect(w[1], Integer.parseInt(w[2]));
        case "scram":
            return scram(w[1], w[2], w[3]);
        default:
            return "{\"error\":" + str("unknown command " + w[0]) + "}";
        }
    }

    private String brokers() throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        List<Node> nodes = new ArrayList<>(r.nodes().get(30, TimeUnit.SECONDS));
        nodes.sort((a, b) -> Integer.compare(a.id(), b.id()));
        StringBuilder sb = new StringBuilder("{\"brokers\":[");
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            sb.append(i > 0 ? "," : "").append("{\"id\":").append(n.id()).append(",\"host\":")
                    .append(str(n.host())).append(",\"port\":").append(n.port()).append('}');
        }
        Node c = r.controller().get(30, TimeUnit.SECONDS);
        return sb.append("],\"controller\":").append(c == null ? -1 : c.id()).append('}').toString();
    }

    private String topic(String name, int parts, short rf) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(name, parts, rf))).all().get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException))
                throw e;
        }
        long end = System.currentTimeMillis() + DEADLINE_MS;
        while (System.currentTimeMillis() < end) {
            try {
                TopicDescription d = describe(name);
                if (d.partitions().size() == parts && d.partitions().stream().allMatch(p -> p.leader() != null))
                    return "{\"ok\":\"topic\"}";
            } catch (Exception e) {
                /* not visible yet */
            }
            Thread.sleep(100);
        }
        return "{\"error\":\"topic has no leaders after 60 s\"}";
    }

    private TopicDescription describe(String name) throws Exception {
        return admin.describeTopics(List.of(name)).allTopicNames().get(30, TimeUnit.SECONDS).get(name);
    }

    private String partitions(String name) throws Exception {
        StringBuilder sb = new StringBuilder("{");
        List<TopicPartitionInfo> ps = describe(name).partitions();
        for (int i = 0; i < ps.size(); i++) {
            TopicPartitionInfo p = ps.get(i);
            sb.append(i > 0 ? "," : "").append('"').append(p.partition()).append("\":{\"leader\":")
                    .append(p.leader() == null ? -1 : p.leader().id()).append(",\"replicas\":[");
            for (int j = 0; j < p.replicas().size(); j++)
                sb.append(j > 0 ? "," : "").append(p.replicas().get(j).id());
            sb.append("],\"isr\":[");
            for (int j = 0; j < p.isr().size(); j++)
                sb.append(j > 0 ? "," : "").append(p.isr().get(j).id());
            sb.append("]}");
        }
        return sb.append('}').toString();
    }

    private String reassign(String name, int partition, String replicaList) throws Exception {
        List<Integer> replicas = new ArrayList<>();
        for (String r : replicaList.split(","))
            replicas.add(Integer.parseInt(r));
        TopicPartition tp = new TopicPartition(name, partition);
        admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(replicas))))
                .all().get(30, TimeUnit.SECONDS);
        long end = System.currentTimeMillis() + DEADLINE_MS;
        while (System.currentTimeMillis() < end) {
            boolean moving = admin.listPartitionReassignments(Set.of(tp)).reassignments()
                    .get(30, TimeUnit.SECONDS).containsKey(tp);
            if (!moving) {
                TopicPartitionInfo p = describe(name).partitions().get(partition);
                List<Integer> now = new ArrayList<>();
                p.replicas().forEach(n -> now.add(n.id()));
                if (now.equals(replicas) && p.isr().size() == replicas.size())
                    return "{\"ok\":\"reassign\"}";
            }
            Thread.sleep(100);
        }
        return "{\"error\":\"reassignment not finished after 60 s\"}";
    }

    private String elect(String name, int partition) throws Exception {
        TopicPartition tp = new TopicPartition(name, partition);
        int want = describe(name).partitions().get(partition).replicas().get(0).id();
        long end = System.currentTimeMillis() + DEADLINE_MS;
        while (System.currentTimeMillis() < end) {
            try {
                Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(ElectionType.PREFERRED, Set.of(tp))
                        .partitions().get(30, TimeUnit.SECONDS);
                Optional<Throwable> err = r.getOrDefault(tp, Optional.empty());
                if (err.isPresent() && !(err.get() instanceof ElectionNotNeededException))
                    throw new Exception(err.get().toString());
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof ElectionNotNeededException))
                    throw e;
            }
            TopicPartitionInfo p = describe(name).partitions().get(partition);
            if (p.leader() != null && p.leader().id() == want)
                return "{\"ok\":\"elect\",\"leader\":" + want + "}";
            Thread.sleep(200);
        }
        return "{\"error\":\"preferred leader not elected after 60 s\"}";
    }

    private String scram(String user, String mechanism, String password) throws Exception {
        ScramMechanism m = ScramMechanism.fromMechanismName(mechanism);
        admin.alterUserScramCredentials(Collections.singletonList(
                new UserScramCredentialUpsertion(user, new ScramCredentialInfo(m, 4096), password)))
                .all().get(30, TimeUnit.SECONDS);
        return "{\"ok\":\"scram\"}";
    }

    private static String str(String s) {
        if (s == null)
            return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\')
                sb.append('\\').append(ch);
            else if (ch < 0x20)
                sb.append(String.format("\\u%04x", (int) ch));
            else
                sb.append(ch);
        }
        return sb.append('"').toString();
    }
}
