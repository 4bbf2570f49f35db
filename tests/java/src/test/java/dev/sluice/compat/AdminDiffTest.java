package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ClassicGroupDescription;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClassicGroupsOptions;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberAssignment;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;

/**
 * The differential test of admin answers (issue 16): the same scenario runs against Apache Kafka
 * and against Sluice, and each broker's answers are recorded, normalised, as JSON
 * ({@link Answers}: docs/compat-results/admin/TARGET/SCENARIO.json). This class only records; a
 * test here fails only when its scenario could not be set up. scripts/admin_diff.py (run by
 * scripts/compat-matrix.py render) compares the two targets' files field by field and fails the
 * run on every difference that tests/known-admin-differences.tsv does not list, and on every
 * listed difference that no longer occurs.
 *
 * <p>Normalised, because it differs from run to run on either broker and says nothing about
 * compatibility — each replacement is done by one method of {@link Normalise}, nowhere else:
 * <ul>
 *   <li>broker ids: "node-I", I the node's index in describeCluster's nodes sorted by id;</li>
 *   <li>host and port: "bootstrap host" / "bootstrap port" when they are the -Dbootstrap ones
 *       (the value itself otherwise, so a wrong address shows);</li>
 *   <li>the cluster id: whether it is present and non-empty;</li>
 *   <li>topic and group names (random per run): "TOPIC" and "GROUP";</li>
 *   <li>client-generated member ids (clientId-UUID): the UUID as "UUID", the client id as
 *       "CLIENT";</li>
 *   <li>the order of group members (their ids are random, so is the range assignor's order):
 *       members sorted by their assigned partitions, client ids listed apart, sorted.</li>
 * </ul>
 * Timestamps are not normalised: every record is produced with a fixed CreateTime.
 */
class AdminDiffTest {
    /** Partitions of the group scenario's topic: two members get two each. */
    private static final int GROUP_PARTITIONS = 4;
    /** The fixed CreateTime timestamps of the ListOffsets scenario's records, in produce order. */
    private static final long[] UNORDERED_TIMESTAMPS = {1000, 5000, 3000, 2000, 4000};
    private static final long[] ORDERED_TIMESTAMPS = {1000, 2000, 3000, 4000, 5000};
    /** Records removed by DeleteRecords from the ListOffsets scenario's third partition. */
    private static final long DELETED_BEFORE_OFFSET = 2;

    /**
     * Broker configs asked for by name in the broker DescribeConfigs scenario: the broker
     * defaults of topic configs (the synonyms Kafka lists for a topic's configs), the start
     * flags Sluice names the Kafka way, and the dynamic replication throttles. A fixed list
     * rather than all of them: Kafka lists a few hundred broker configs, many naming per-run
     * paths and ports; tests/known-differences.md says which Sluice lists.
     */
    private static final List<String> BROKER_CONFIG_NAMES = List.of(
            "auto.create.topics.enable", "default.replication.factor", "num.partitions",
            "message.max.bytes", "min.insync.replicas", "unclean.leader.election.enable",
            "log.retention.hours", "log.retention.ms", "log.retention.bytes", "log.roll.hours", "log.roll.ms",
            "log.roll.jitter.hours", "log.segment.bytes", "log.cleanup.policy", "log.flush.interval.messages",
            "log.flush.interval.ms", "log.message.timestamp.type", "log.message.timestamp.before.max.ms",
            "log.message.timestamp.after.max.ms", "log.cleaner.delete.retention.ms",
            "log.cleaner.min.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "log.cleaner.min.cleanable.ratio",
            "log.index.interval.bytes", "log.index.size.max.bytes", "log.segment.delete.delay.ms", "log.preallocate",
            "compression.type", "compression.gzip.level", "compression.lz4.level", "compression.zstd.level",
            "log.local.retention.ms", "log.local.retention.bytes", "replica.lag.time.max.ms",
            "leader.replication.throttled.rate", "follower.replication.throttled.rate",
            "replica.alter.log.dirs.io.max.bytes.per.second");

    private static <T> T get(org.apache.kafka.common.KafkaFuture<T> future) throws Exception {
        return future.get(30, TimeUnit.SECONDS);
    }

    /**
     * Goal: DescribeConfigs of a topic, with synonyms, as kafka-configs --describe --all shows
     * it. Method: a topic created with four overrides (retention.ms, max.message.bytes,
     * cleanup.policy, message.timestamp.type); every config listed with value, source,
     * read-only, sensitive, type and synonyms (name, value, source).
     */
    @Test
    void describeConfigsOfTopic() throws Exception {
        String topic = Compat.topic("diff-configs");
        Normalise normalise = new Normalise().topic(topic);
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin admin = Compat.admin()) {
            get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(Map.of(
                    "retention.ms", "3600000", "max.message.bytes", "200000", "cleanup.policy", "compact",
                    "message.timestamp.type", "LogAppendTime")))).all());
            Compat.waitUntil("topic described", () -> Answers.outcome(() -> describeConfigs(admin, resource)) instanceof Config);
            Config config = describeConfigs(admin, resource);
            Map<String, Object> configs = new TreeMap<>();
            config.entries().forEach(entry -> configs.put(entry.name(), configEntry(entry, normalise)));
            Answers.write("describe-configs-topic", Map.of(
                    "configs", configs,
                    "unknownTopic", Answers.outcome(() -> describeConfigs(admin,
                            new ConfigResource(ConfigResource.Type.TOPIC, Compat.topic("diff-absent"))).entries().size())));
        }
    }

    /**
     * Goal: DescribeConfigs of a broker for the configs a topic defaults to. Method: the first
     * broker's configs with synonyms; each of BROKER_CONFIG_NAMES that is listed, with its
     * entry (one not listed is left out, so the comparison shows it as listed by one broker
     * only); and the number of configs listed.
     */
    @Test
    void describeConfigsOfBroker() throws Exception {
        try (Admin admin = Compat.admin()) {
            List<Node> nodes = sortedNodes(admin);
            Normalise normalise = new Normalise().nodes(nodes);
            ConfigResource resource = new ConfigResource(ConfigResource.Type.BROKER, nodes.get(0).idString());
            Config config = describeConfigs(admin, resource);
            Map<String, Object> configs = new TreeMap<>();
            for (String name : BROKER_CONFIG_NAMES) {
                ConfigEntry entry = config.get(name);
                if (entry != null) {
                    configs.put(name, configEntry(entry, normalise));
                }
            }
            Answers.write("describe-configs-broker", Map.of("configs", configs, "configCount", config.entries().size()));
        }
    }

    /**
     * Goal: DescribeCluster as tools and UIs read it. Method: with authorized operations asked
     * for: the nodes (id, host, port, rack, fenced), whether the controller is one of them,
     * whether a cluster id is present, the operations; without asking: the operations (none).
     */
    @Test
    void describeCluster() throws Exception {
        try (Admin admin = Compat.admin()) {
            List<Node> nodes = sortedNodes(admin);
            Normalise normalise = new Normalise().nodes(nodes);
            DescribeClusterResult cluster = admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
            Map<String, Object> answers = new TreeMap<>();
            answers.put("nodes", get(cluster.nodes()).stream().sorted(Comparator.comparingInt(Node::id)).map(normalise::node).toList());
            Node controller = get(cluster.controller());
            answers.put("controller", controller == null ? null : normalise.nodeId(controller));
            String clusterId = get(cluster.clusterId());
            answers.put("clusterIdPresent", clusterId != null && !clusterId.isEmpty());
            answers.put("authorizedOperations", operations(get(cluster.authorizedOperations())));
            answers.put("authorizedOperationsNotAsked", operations(get(admin.describeCluster().authorizedOperations())));
            Answers.write("describe-cluster", answers);
        }
    }

    /**
     * Goal: ListOffsets with every spec a client or kafka-get-offsets sends. Method: a topic
     * with three partitions: 0 holds five records with CreateTime 1000, 5000, 3000, 2000, 4000
     * (out of order); 1 is empty; 2 holds five records 1000..5000 in order, the first two
     * deleted by DeleteRecords. Each partition is asked earliest, latest (read_uncommitted and
     * read_committed), max-timestamp, earliest-local, latest-tiered and by timestamp before all
     * records (500), between (2500), equal to the largest (5000) and after all (6000). A
     * partition the topic does not have is not asked: Kafka's client retries it until its
     * timeout.
     */
    @Test
    void listOffsets() throws Exception {
        String topic = Compat.topic("diff-offsets");
        Normalise normalise = new Normalise().topic(topic);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 3);
            try (KafkaProducer<String, String> producer = Compat.producer()) {
                for (long timestamp : UNORDERED_TIMESTAMPS) {
                    producer.send(new ProducerRecord<>(topic, 0, timestamp, "k", "v" + timestamp)).get(30, TimeUnit.SECONDS);
                }
                for (long timestamp : ORDERED_TIMESTAMPS) {
                    producer.send(new ProducerRecord<>(topic, 2, timestamp, "k", "v" + timestamp)).get(30, TimeUnit.SECONDS);
                }
            }
            TopicPartition truncated = new TopicPartition(topic, 2);
            get(admin.deleteRecords(Map.of(truncated, RecordsToDelete.beforeOffset(DELETED_BEFORE_OFFSET))).all());
            Map<String, OffsetSpec> specs = new LinkedHashMap<>();
            specs.put("earliest", OffsetSpec.earliest());
            specs.put("latest", OffsetSpec.latest());
            specs.put("maxTimestamp", OffsetSpec.maxTimestamp());
            specs.put("earliestLocal", OffsetSpec.earliestLocal());
            specs.put("latestTiered", OffsetSpec.latestTiered());
            for (long timestamp : new long[] {500, 2500, 5000, 6000}) {
                specs.put("forTimestamp" + timestamp, OffsetSpec.forTimestamp(timestamp));
            }
            Map<String, Object> answers = new TreeMap<>();
            for (int partition = 0; partition < 3; partition++) {
                TopicPartition tp = new TopicPartition(topic, partition);
                Map<String, Object> byspec = new TreeMap<>();
                specs.forEach((name, spec) -> byspec.put(name, Answers.outcome(() -> offset(admin, tp, spec, IsolationLevel.READ_UNCOMMITTED))));
                byspec.put("latestReadCommitted", Answers.outcome(() -> offset(admin, tp, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED)));
                answers.put(normalise.text(tp.toString()), byspec);
            }
            Answers.write("list-offsets", answers);
        }
    }

    /**
     * Goal: DescribeGroups of a classic consumer group in its three states that tools show.
     * Method: two members (client ids diff-member-a and -b, default assignors, so eager range)
     * of a group on a 4-partition topic poll until the group is Stable with two partitions each
     * and commit offset 1 on their partitions: describeConsumerGroups (with authorized
     * operations) and describeClassicGroups are recorded; both members close (LeaveGroup) and
     * the Empty group is recorded the same way, with its committed offsets; then a group id
     * never used.
     */
    @Test
    void describeGroups() throws Exception {
        String topic = Compat.topic("diff-groups");
        String group = Compat.topic("diff-group");
        String unknown = Compat.topic("diff-nogroup");
        Normalise normalise = new Normalise().topic(topic).group(group).group(unknown)
                .client("diff-member-a").client("diff-member-b");
        Map<String, Object> answers = new TreeMap<>();
        try (Admin admin = Compat.admin()) {
            normalise.nodes(sortedNodes(admin));
            Compat.createTopic(admin, topic, GROUP_PARTITIONS);
            Compat.produce(topic, GROUP_PARTITIONS, 2 * GROUP_PARTITIONS);
            try (KafkaConsumer<String, String> a = Compat.consumer(group, Map.of(ConsumerConfig.CLIENT_ID_CONFIG, "diff-member-a"));
                 KafkaConsumer<String, String> b = Compat.consumer(group, Map.of(ConsumerConfig.CLIENT_ID_CONFIG, "diff-member-b"))) {
                a.subscribe(List.of(topic));
                b.subscribe(List.of(topic));
                Compat.waitUntil("two members with two partitions each", () -> {
                    a.poll(Duration.ofMillis(100));
                    b.poll(Duration.ofMillis(100));
                    return a.assignment().size() == 2 && b.assignment().size() == 2 && isStableWithTwo(admin, group);
                });
                for (KafkaConsumer<String, String> member : List.of(a, b)) {
                    Map<TopicPartition, OffsetAndMetadata> commit = new TreeMap<>(Comparator.comparing(TopicPartition::toString));
                    member.assignment().forEach(tp -> commit.put(tp, new OffsetAndMetadata(1)));
                    member.commitSync(commit);
                }
                answers.put("stable", describeGroup(admin, group, normalise));
            }
            Compat.waitUntil("group empty", () -> Answers.outcome(
                    () -> get(admin.describeConsumerGroups(List.of(group)).all()).get(group).groupState()) == GroupState.EMPTY);
            Map<String, Object> empty = describeGroup(admin, group, normalise);
            Map<String, Object> offsets = new TreeMap<>();
            get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).forEach((tp, offset) ->
                    offsets.put(normalise.text(tp.toString()), offset == null ? null : offset.offset()));
            empty.put("committedOffsets", offsets);
            answers.put("empty", empty);
            answers.put("unknown", describeGroup(admin, unknown, normalise));
        }
        Answers.write("describe-groups", answers);
    }

    private static boolean isStableWithTwo(Admin admin, String group) {
        Object description = Answers.outcome(() -> get(admin.describeConsumerGroups(List.of(group)).all()).get(group));
        return description instanceof ConsumerGroupDescription d && d.groupState() == GroupState.STABLE
                && d.members().size() == 2 && d.members().stream().allMatch(m -> m.assignment().topicPartitions().size() == 2);
    }

    private static Map<String, Object> describeGroup(Admin admin, String group, Normalise normalise) {
        Map<String, Object> answer = new TreeMap<>();
        answer.put("describeConsumerGroups", Answers.outcome(() -> {
            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group),
                    new DescribeConsumerGroupsOptions().includeAuthorizedOperations(true)).all()).get(group);
            Map<String, Object> out = new TreeMap<>();
            out.put("groupId", normalise.text(d.groupId()));
            out.put("simpleConsumerGroup", d.isSimpleConsumerGroup());
            out.put("partitionAssignor", d.partitionAssignor());
            out.put("type", String.valueOf(d.type()));
            out.put("groupState", String.valueOf(d.groupState()));
            out.put("coordinator", normalise.nodeId(d.coordinator()));
            out.put("authorizedOperations", operations(d.authorizedOperations()));
            out.put("groupEpoch", Answers.orNull(d.groupEpoch()));
            out.put("targetAssignmentEpoch", Answers.orNull(d.targetAssignmentEpoch()));
            members(out, d.members(), normalise);
            return out;
        }));
        answer.put("describeClassicGroups", Answers.outcome(() -> {
            ClassicGroupDescription d = get(admin.describeClassicGroups(List.of(group),
                    new DescribeClassicGroupsOptions().includeAuthorizedOperations(true)).all()).get(group);
            Map<String, Object> out = new TreeMap<>();
            out.put("groupId", normalise.text(d.groupId()));
            out.put("simpleConsumerGroup", d.isSimpleConsumerGroup());
            out.put("protocol", d.protocol());
            out.put("protocolData", d.protocolData());
            out.put("state", String.valueOf(d.state()));
            out.put("coordinator", normalise.nodeId(d.coordinator()));
            out.put("authorizedOperations", operations(d.authorizedOperations()));
            members(out, d.members(), normalise);
            return out;
        }));
        return answer;
    }

    /** Members sorted by their assignment (see the class doc); client ids apart, sorted. */
    private static void members(Map<String, Object> out, Collection<MemberDescription> members, Normalise normalise) {
        List<Map<String, Object>> described = new ArrayList<>();
        for (MemberDescription m : members) {
            Map<String, Object> member = new TreeMap<>();
            member.put("memberId", normalise.text(m.consumerId()));
            member.put("groupInstanceId", Answers.orNull(m.groupInstanceId()));
            member.put("host", m.host());
            member.put("assignment", assignment(m.assignment(), normalise));
            member.put("targetAssignment", m.targetAssignment().map(t -> (Object) assignment(t, normalise)).orElse(null));
            member.put("memberEpoch", Answers.orNull(m.memberEpoch()));
            member.put("upgraded", Answers.orNull(m.upgraded()));
            described.add(member);
        }
        described.sort(Comparator.comparing(m -> String.valueOf(m.get("assignment"))));
        out.put("members", described);
        out.put("memberClientIds", members.stream().map(MemberDescription::clientId).sorted().toList());
    }

    private static List<String> assignment(MemberAssignment assignment, Normalise normalise) {
        return assignment.topicPartitions().stream().map(tp -> normalise.text(tp.toString())).sorted().toList();
    }

    private static Config describeConfigs(Admin admin, ConfigResource resource) throws Exception {
        return get(admin.describeConfigs(List.of(resource), new DescribeConfigsOptions().includeSynonyms(true)).all()).get(resource);
    }

    private static Map<String, Object> configEntry(ConfigEntry entry, Normalise normalise) {
        Map<String, Object> out = new TreeMap<>();
        out.put("value", entry.value() == null ? null : normalise.text(entry.value()));
        out.put("source", String.valueOf(entry.source()));
        out.put("readOnly", entry.isReadOnly());
        out.put("sensitive", entry.isSensitive());
        out.put("type", String.valueOf(entry.type()));
        out.put("synonyms", entry.synonyms().stream()
                .map(s -> s.source() + " " + s.name() + "=" + (s.value() == null ? "null" : normalise.text(s.value())))
                .toList());
        return out;
    }

    private static Map<String, Object> offset(Admin admin, TopicPartition partition, OffsetSpec spec, IsolationLevel isolation) throws Exception {
        ListOffsetsResult.ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(partition, spec),
                new ListOffsetsOptions(isolation)).partitionResult(partition));
        Map<String, Object> out = new TreeMap<>();
        out.put("offset", info.offset());
        out.put("timestamp", info.timestamp());
        out.put("leaderEpoch", Answers.orNull(info.leaderEpoch()));
        return out;
    }

    private static List<Node> sortedNodes(Admin admin) throws Exception {
        List<Node> nodes = new ArrayList<>(get(admin.describeCluster().nodes()));
        nodes.sort(Comparator.comparingInt(Node::id));
        assertEquals(false, nodes.isEmpty(), "describeCluster lists no node");
        return nodes;
    }

    private static List<String> operations(Set<AclOperation> operations) {
        return operations == null ? null : operations.stream().map(String::valueOf).sorted().toList();
    }

    /** Every replacement of a per-run value (see the class doc), in one place. */
    static final class Normalise {
        private static final Pattern UUID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
        private final Map<String, String> names = new LinkedHashMap<>();
        private List<Node> nodes = List.of();

        Normalise topic(String topic) {
            names.put(topic, "TOPIC");
            return this;
        }

        Normalise group(String group) {
            names.put(group, "GROUP");
            return this;
        }

        Normalise client(String clientId) {
            names.put(clientId, "CLIENT");
            return this;
        }

        Normalise nodes(List<Node> sorted) {
            this.nodes = sorted;
            return this;
        }

        /** Topic, group and client names and UUIDs in a text replaced by their placeholders. */
        String text(String text) {
            String out = text;
            for (Map.Entry<String, String> name : names.entrySet()) {
                out = out.replace(name.getKey(), name.getValue());
            }
            return UUID.matcher(out).replaceAll("UUID");
        }

        /** "node-I", I the index among describeCluster's nodes sorted by id; the raw id if unlisted. */
        Object nodeId(Node node) {
            if (node == null) {
                return null;
            }
            for (int i = 0; i < nodes.size(); i++) {
                if (nodes.get(i).id() == node.id()) {
                    return "node-" + i;
                }
            }
            return "unlisted node " + node.id();
        }

        Map<String, Object> node(Node node) {
            String[] bootstrap = Compat.bootstrap().split(":");
            Map<String, Object> out = new TreeMap<>();
            out.put("id", nodeId(node));
            out.put("host", node.host().equals(bootstrap[0]) ? "bootstrap host" : node.host());
            out.put("port", String.valueOf(node.port()).equals(bootstrap[1]) ? "bootstrap port" : node.port());
            out.put("rack", node.rack());
            out.put("fenced", node.isFenced());
            return out;
        }
    }
}
