// A small admin client for scripts/kafka: waits until a cluster answers, and grants the test
// users' ACLs. Compiled once against the cluster's own jars (javac), run with them on the
// classpath. Connection settings come from a client properties file, never from arguments.
//
//   KtaAdmin ready <client.properties> <brokers> <timeout-seconds> [<host:port of each running node>…]
//   KtaAdmin users <client.properties> <users-file>    (lines "name password": SCRAM-SHA-256 and -512)
//   KtaAdmin controller <client.properties>             (prints the active controller's node id)
//   KtaAdmin grant <client.properties> <user> producer|consumer <topic or prefix*> [group prefix]
import java.io.FileInputStream;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public final class KtaAdmin {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[1])) {
            props.load(in);
        }
        // `ready` polls with short calls until its own deadline; the one-shot changes after it
        // (users, grants) get 30 s, as a fresh cluster on a loaded machine was seen to take more
        // than 5 s to answer them.
        String timeout = args[0].equals("ready") ? "5000" : "30000";
        props.put("request.timeout.ms", timeout);
        props.put("default.api.timeout.ms", timeout);
        switch (args[0]) {
            case "ready" -> System.exit(ready(props, Integer.parseInt(args[2]), Long.parseLong(args[3]),
                List.of(args).subList(4, args.length)));
            case "users" -> users(props, args[2]);
            case "grant" -> grant(props, args[2], args[3], args[4], args.length > 5 ? args[5] : null);
            case "controller" -> System.out.println(
                Admin.create(props).describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS).leaderId());
            default -> {
                System.err.println("KtaAdmin: unknown command " + args[0]);
                System.exit(2);
            }
        }
    }

    /**
     * Waits until the cluster lists `brokers` brokers with a controller elected and every partition
     * has a leader and its replicas on live brokers in sync (after a node restart: caught up again).
     */
    static int ready(Properties props, int brokers, long timeoutSeconds, List<String> nodes)
            throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        String last = "no answer yet";
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    // Every running node answers itself (a node without a controller quorum
                    // still serves the metadata it had: stale, it would look ready).
                    String silent = null;
                    for (String node : nodes) {
                        Properties one = new Properties();
                        one.putAll(props);
                        one.put("bootstrap.servers", node);
                        try (Admin direct = Admin.create(one)) {
                            direct.describeCluster().clusterId().get(5, TimeUnit.SECONDS);
                        } catch (Exception e) {
                            silent = node;
                            break;
                        }
                    }
                    if (silent != null) {
                        last = "node " + silent + " does not answer yet";
                        Thread.sleep(500);
                        continue;
                    }
                    // The controller quorum has a leader.
                    admin.describeMetadataQuorum().quorumInfo().get(5, TimeUnit.SECONDS);
                    var cluster = admin.describeCluster();
                    int seen = cluster.nodes().get(5, TimeUnit.SECONDS).size();
                    boolean controller = cluster.controller().get(5, TimeUnit.SECONDS) != null;
                    if (seen >= brokers && controller) {
                        var live = cluster.nodes().get(5, TimeUnit.SECONDS).stream()
                            .map(org.apache.kafka.common.Node::id).collect(java.util.stream.Collectors.toSet());
                        int lagging = underReplicated(admin, live);
                        if (lagging == 0) {
                            return 0;
                        }
                        last = lagging + " partitions without a leader or with replicas out of sync";
                    } else {
                        last = seen + " of " + brokers + " brokers registered";
                    }
                } catch (Exception e) {
                    last = String.valueOf(e.getCause() != null ? e.getCause() : e);
                }
                Thread.sleep(500);
            }
        }
        System.err.println("the cluster did not answer for all brokers within " + timeoutSeconds + " s: " + last);
        return 1;
    }

    /**
     * How many partitions (internal topics included) have no leader, or a replica on a live broker
     * that is out of the ISR (replicas on brokers that are down do not count).
     */
    static int underReplicated(Admin admin, java.util.Set<Integer> live) throws Exception {
        var names = admin.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions().listInternal(true))
            .names().get(5, TimeUnit.SECONDS);
        if (names.isEmpty()) {
            return 0;
        }
        int lagging = 0;
        for (var topic : admin.describeTopics(names).allTopicNames().get(5, TimeUnit.SECONDS).values()) {
            for (var partition : topic.partitions()) {
                boolean behind = partition.replicas().stream()
                    .anyMatch(r -> live.contains(r.id()) && !partition.isr().contains(r));
                if (partition.leader() == null || partition.leader().isEmpty() || behind) {
                    lagging++;
                }
            }
        }
        return lagging;
    }

    /**
     * Creates (or updates) each user's SCRAM-SHA-256 and SCRAM-SHA-512 credentials: one request
     * per mechanism, as a request may alter a user only once.
     */
    static void users(Properties props, String file) throws Exception {
        var lines = java.nio.file.Files.readAllLines(java.nio.file.Path.of(file));
        try (Admin admin = Admin.create(props)) {
            for (var mechanism : List.of(org.apache.kafka.clients.admin.ScramMechanism.SCRAM_SHA_256,
                                         org.apache.kafka.clients.admin.ScramMechanism.SCRAM_SHA_512)) {
                List<org.apache.kafka.clients.admin.UserScramCredentialAlteration> changes = new java.util.ArrayList<>();
                for (String line : lines) {
                    String[] fields = line.trim().split("\\s+");
                    if (fields.length == 2) {
                        changes.add(new org.apache.kafka.clients.admin.UserScramCredentialUpsertion(fields[0],
                            new org.apache.kafka.clients.admin.ScramCredentialInfo(mechanism, 8192), fields[1]));
                    }
                }
                admin.alterUserScramCredentials(changes).all().get(30, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * Charmed Kafka's grants (kafka_client interface): a producer gets WRITE, DESCRIBE and CREATE
     * on its topic (or a prefix, written `name*`), a consumer READ and DESCRIBE on it and READ on
     * the groups of its prefix.
     */
    static void grant(Properties props, String user, String role, String topic, String groupPrefix)
            throws Exception {
        ResourcePattern topics = topic.endsWith("*")
            ? new ResourcePattern(ResourceType.TOPIC, topic.substring(0, topic.length() - 1), PatternType.PREFIXED)
            : new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL);
        List<AclBinding> acls = switch (role) {
            case "producer" -> List.of(
                allow(topics, user, AclOperation.WRITE),
                allow(topics, user, AclOperation.DESCRIBE),
                allow(topics, user, AclOperation.CREATE));
            case "consumer" -> List.of(
                allow(topics, user, AclOperation.READ),
                allow(topics, user, AclOperation.DESCRIBE),
                allow(new ResourcePattern(ResourceType.GROUP, groupPrefix == null ? user + "-" : groupPrefix,
                    PatternType.PREFIXED), user, AclOperation.READ));
            default -> throw new IllegalArgumentException("role must be producer or consumer: " + role);
        };
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(acls).all().get(30, TimeUnit.SECONDS);
        }
    }

    static AclBinding allow(ResourcePattern pattern, String user, AclOperation operation) {
        return new AclBinding(pattern,
            new AccessControlEntry("User:" + user, "*", operation, AclPermissionType.ALLOW));
    }
}
