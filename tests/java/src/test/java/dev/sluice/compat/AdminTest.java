package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Test;

class AdminTest {
    private static <T> T get(org.apache.kafka.common.KafkaFuture<T> future) throws Exception {
        return future.get(30, TimeUnit.SECONDS);
    }

    /**
     * Goal: the topic lifecycle tools and UIs drive. Method: create (2 partitions), a second
     * create fails with TopicExistsException, list shows it, describe gives 2 partitions each
     * led by a listed broker with replicas = ISR, createPartitions to 4, delete, then describe
     * fails with UnknownTopicOrPartitionException.
     */
    @Test
    void topicLifecycle() throws Exception {
        String topic = Compat.topic("lifecycle");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
            ExecutionException again = assertThrows(ExecutionException.class,
                    () -> get(admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all()));
            assertInstanceOf(TopicExistsException.class, again.getCause());
            assertTrue(get(admin.listTopics().names()).contains(topic));
            TopicDescription description = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            assertEquals(2, description.partitions().size());
            Set<Integer> brokers = get(admin.describeCluster().nodes()).stream().map(Node::id).collect(Collectors.toSet());
            description.partitions().forEach(p -> {
                assertTrue(brokers.contains(p.leader().id()));
                assertEquals(p.replicas(), p.isr());
            });
            get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all());
            Compat.waitUntil("4 partitions", () -> partitionCount(admin, topic) == 4);
            get(admin.deleteTopics(List.of(topic)).all());
            Compat.waitUntil("topic deleted", () -> {
                try {
                    get(admin.describeTopics(List.of(topic)).allTopicNames());
                    return false;
                } catch (Exception e) {
                    return e.getCause() instanceof UnknownTopicOrPartitionException;
                }
            });
        }
    }

    private static int partitionCount(Admin admin, String topic) {
        try {
            return get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size();
        } catch (Exception e) {
            return -1;
        }
    }

    /**
     * Goal: CreateTopics with an explicit replica assignment, as kafka-topics
     * --replica-assignment and several client libraries' tests send. Method: one broker id
     * from describeCluster, assignment {0: [id], 1: [id]}; the topic has 2 partitions on it.
     */
    @Test
    void createTopicWithReplicaAssignment() throws Exception {
        String topic = Compat.topic("assigned");
        try (Admin admin = Compat.admin()) {
            int broker = get(admin.describeCluster().nodes()).iterator().next().id();
            get(admin.createTopics(List.of(new NewTopic(topic, Map.of(0, List.of(broker), 1, List.of(broker))))).all());
            Compat.waitUntil("2 partitions", () -> partitionCount(admin, topic) == 2);
            TopicDescription description = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            description.partitions().forEach(p -> assertEquals(broker, p.leader().id()));
        }
    }

    /**
     * Goal: describeCluster names the brokers, a controller and the cluster id, and (asked
     * for) the authorized operations, which a broker without an authorizer reports as every
     * operation the resource type supports. Method: one call with includeAuthorizedOperations;
     * also describeTopics with it; the exact operation sets; without asking, none.
     */
    @Test
    void describeClusterAndAuthorizedOperations() throws Exception {
        String topic = Compat.topic("authops");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            DescribeClusterResult cluster = admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
            assertFalse(get(cluster.nodes()).isEmpty());
            assertNotNull(get(cluster.controller()));
            assertNotNull(get(cluster.clusterId()));
            Set<AclOperation> clusterOps = get(cluster.authorizedOperations());
            assertEquals(Set.of(AclOperation.CREATE, AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS,
                    AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER, AclOperation.DESCRIBE),
                    clusterOps, "cluster authorized operations");
            TopicDescription description = get(admin.describeTopics(List.of(topic),
                    new DescribeTopicsOptions().includeAuthorizedOperations(true)).allTopicNames()).get(topic);
            assertEquals(Set.of(AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DESCRIBE,
                    AclOperation.DELETE, AclOperation.ALTER, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS),
                    description.authorizedOperations(), "topic authorized operations");
            // Not asked for: not provided.
            assertEquals(null, get(admin.describeCluster().authorizedOperations()), "cluster operations not asked for");
        }
    }

    /**
     * Goal: topic configs with their sources, and incremental alteration with all four
     * operations. Method: create with retention.ms=3600000; describeConfigs: retention.ms is
     * DYNAMIC_TOPIC_CONFIG, segment.bytes is a default (DEFAULT_CONFIG or a broker-level
     * source), cleanup.policy=delete; SET max.message.bytes, APPEND cleanup.policy compact,
     * SUBTRACT delete, DELETE retention.ms: the described values follow.
     */
    @Test
    void topicConfigsWithSourcesAndIncrementalAlter() throws Exception {
        String topic = Compat.topic("configs");
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin admin = Compat.admin()) {
            get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(Map.of("retention.ms", "3600000")))).all());
            Compat.waitUntil("topic", () -> partitionCount(admin, topic) == 1);
            Config config = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
            assertEquals("3600000", config.get("retention.ms").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, config.get("retention.ms").source());
            assertEquals("delete", config.get("cleanup.policy").value());
            assertNotNull(config.get("segment.bytes"));
            assertTrue(config.get("segment.bytes").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
            get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
            get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all());
            Compat.waitUntil("appended", () -> describe(admin, resource).get("cleanup.policy").value().equals("delete,compact"));
            get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT)))).all());
            Compat.waitUntil("subtracted", () -> describe(admin, resource).get("cleanup.policy").value().equals("compact"));
            Config after = describe(admin, resource);
            assertEquals("200000", after.get("max.message.bytes").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, after.get("max.message.bytes").source());
            assertTrue(after.get("retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
        }
    }

    /**
     * Every topic config of Apache Kafka 4.1 (`kafka-configs --describe --all` on a topic of
     * Kafka 4.1.1), each with a valid value: its Kafka default, or another valid one where the
     * default would not show that the value given is the value kept.
     */
    private static final Map<String, String> KAFKA_TOPIC_CONFIGS = Map.ofEntries(
            Map.entry("cleanup.policy", "compact,delete"),
            Map.entry("compression.gzip.level", "-1"),
            Map.entry("compression.lz4.level", "9"),
            Map.entry("compression.type", "zstd"),
            Map.entry("compression.zstd.level", "3"),
            Map.entry("delete.retention.ms", "3600000"),
            Map.entry("file.delete.delay.ms", "60000"),
            Map.entry("flush.messages", "9223372036854775807"),
            Map.entry("flush.ms", "9223372036854775807"),
            Map.entry("follower.replication.throttled.replicas", ""),
            Map.entry("index.interval.bytes", "4096"),
            Map.entry("leader.replication.throttled.replicas", ""),
            Map.entry("local.retention.bytes", "-2"),
            Map.entry("local.retention.ms", "-2"),
            Map.entry("max.compaction.lag.ms", "9223372036854775807"),
            Map.entry("max.message.bytes", "1048588"),
            Map.entry("message.timestamp.after.max.ms", "3600000"),
            Map.entry("message.timestamp.before.max.ms", "9223372036854775807"),
            Map.entry("message.timestamp.type", "CreateTime"),
            Map.entry("min.cleanable.dirty.ratio", "0.25"),
            Map.entry("min.compaction.lag.ms", "1000"),
            Map.entry("min.insync.replicas", "1"),
            Map.entry("preallocate", "false"),
            Map.entry("remote.log.copy.disable", "false"),
            Map.entry("remote.log.delete.on.disable", "false"),
            Map.entry("remote.storage.enable", "false"),
            Map.entry("retention.bytes", "-1"),
            Map.entry("retention.ms", "86400000"),
            Map.entry("segment.bytes", "1073741824"),
            Map.entry("segment.index.bytes", "10485760"),
            Map.entry("segment.jitter.ms", "0"),
            Map.entry("segment.ms", "604800000"),
            Map.entry("unclean.leader.election.enable", "false"));

    /**
     * Goal: every Kafka 4.1 topic config name is accepted on CreateTopics and
     * IncrementalAlterConfigs and listed by DescribeConfigs with its source (clients such as
     * Kafka Streams and Connect set configs the broker may not act on). Method: create a topic
     * with all 33 set; each is described with the value given, DYNAMIC_TOPIC_CONFIG; a topic
     * created without configs lists all 33 with a non-topic source; SET one and DELETE another
     * incrementally; an invalid compression.type is refused with InvalidConfigurationException.
     */
    @Test
    void everyKafkaTopicConfigName() throws Exception {
        String full = Compat.topic("all-configs");
        String plain = Compat.topic("no-configs");
        ConfigResource fullResource = new ConfigResource(ConfigResource.Type.TOPIC, full);
        ConfigResource plainResource = new ConfigResource(ConfigResource.Type.TOPIC, plain);
        try (Admin admin = Compat.admin()) {
            get(admin.createTopics(List.of(
                    new NewTopic(full, 1, (short) 1).configs(KAFKA_TOPIC_CONFIGS),
                    new NewTopic(plain, 1, (short) 1))).all());
            Compat.waitUntil("topics", () -> partitionCount(admin, full) == 1 && partitionCount(admin, plain) == 1);
            Config given = describe(admin, fullResource);
            Config defaults = describe(admin, plainResource);
            for (Map.Entry<String, String> config : KAFKA_TOPIC_CONFIGS.entrySet()) {
                ConfigEntry entry = given.get(config.getKey());
                assertNotNull(entry, config.getKey() + " not described");
                assertEquals(config.getValue(), entry.value(), config.getKey());
                assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, entry.source(), config.getKey());
                ConfigEntry plainEntry = defaults.get(config.getKey());
                assertNotNull(plainEntry, config.getKey() + " not described without an override");
                assertTrue(plainEntry.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, config.getKey());
            }
            get(admin.incrementalAlterConfigs(Map.of(
                    plainResource, List.of(new AlterConfigOp(new ConfigEntry("min.compaction.lag.ms", "5000"), AlterConfigOp.OpType.SET)),
                    fullResource, List.of(new AlterConfigOp(new ConfigEntry("delete.retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
            Compat.waitUntil("altered", () -> describe(admin, plainResource).get("min.compaction.lag.ms").value().equals("5000")
                    && describe(admin, fullResource).get("delete.retention.ms").value().equals("86400000"));
            assertTrue(describe(admin, fullResource).get("delete.retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
            ExecutionException refused = assertThrows(ExecutionException.class, () -> get(admin.incrementalAlterConfigs(Map.of(
                    plainResource, List.of(new AlterConfigOp(new ConfigEntry("compression.type", "brotli"), AlterConfigOp.OpType.SET)))).all()));
            assertInstanceOf(InvalidConfigurationException.class, refused.getCause());
        }
    }

    private static Config describe(Admin admin, ConfigResource resource) {
        try {
            return get(admin.describeConfigs(List.of(resource)).all()).get(resource);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /**
     * Goal: broker-level DescribeConfigs, as kafka-configs --entity-type brokers and UIs send.
     * Method: describe the first broker's configs; num.partitions is there as given at start
     * (both brokers are started with 1); the broker defaults of topic configs are there with
     * Kafka's default values and source (log.retention.hours 168, log.segment.bytes 1 GiB,
     * log.cleanup.policy delete, message.max.bytes 1048588).
     */
    @Test
    void brokerConfigs() throws Exception {
        try (Admin admin = Compat.admin()) {
            String id = String.valueOf(get(admin.describeCluster().nodes()).iterator().next().id());
            ConfigResource resource = new ConfigResource(ConfigResource.Type.BROKER, id);
            Config config = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
            assertNotNull(config.get("num.partitions"), "num.partitions");
            assertEquals("1", config.get("num.partitions").value());
            assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, config.get("num.partitions").source());
            Map<String, String> defaults = Map.of("log.retention.hours", "168", "log.segment.bytes", "1073741824",
                    "log.cleanup.policy", "delete", "message.max.bytes", "1048588");
            defaults.forEach((name, value) -> {
                assertNotNull(config.get(name), name);
                assertEquals(value, config.get(name).value(), name);
                assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, config.get(name).source(), name);
            });
        }
    }

    /**
     * Goal: DescribeConfigs with synonyms, as kafka-configs --describe --all prints them: a topic
     * config lists its own override first, then the broker config it defaults to, where Kafka
     * names one. Method: a topic with retention.ms and max.message.bytes set; the synonyms are,
     * as Apache Kafka 4.1 answers: retention.ms the override alone (its broker default is in
     * hours); max.message.bytes the override then message.max.bytes=1048588 (DEFAULT_CONFIG);
     * segment.bytes and cleanup.policy, not set, their broker config alone.
     */
    @Test
    void topicConfigSynonyms() throws Exception {
        String topic = Compat.topic("synonyms");
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin admin = Compat.admin()) {
            get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "max.message.bytes", "200000")))).all());
            Compat.waitUntil("topic", () -> partitionCount(admin, topic) == 1);
            Config config = get(admin.describeConfigs(List.of(resource), new DescribeConfigsOptions().includeSynonyms(true)).all()).get(resource);
            Map<String, List<String>> expected = Map.of(
                    "retention.ms", List.of("DYNAMIC_TOPIC_CONFIG:retention.ms=3600000"),
                    "max.message.bytes", List.of("DYNAMIC_TOPIC_CONFIG:max.message.bytes=200000", "DEFAULT_CONFIG:message.max.bytes=1048588"),
                    "segment.bytes", List.of("DEFAULT_CONFIG:log.segment.bytes=1073741824"),
                    "cleanup.policy", List.of("DEFAULT_CONFIG:log.cleanup.policy=delete"));
            expected.forEach((name, synonyms) -> assertEquals(synonyms, config.get(name).synonyms().stream()
                    .map(s -> s.source() + ":" + s.name() + "=" + s.value()).toList(), name));
        }
    }

    /**
     * Goal: listOffsets with every spec. Method: 5 records with timestamps 100, 500, 300, 200,
     * 400 ms; earliest 0, latest 5, maxTimestamp offset 1 (timestamp 500), forTimestamp(250)
     * offset 1 (the first with timestamp >= 250).
     */
    @Test
    void listOffsetsEverySpec() throws Exception {
        String topic = Compat.topic("offsets");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            try (KafkaProducer<String, String> producer = Compat.producer()) {
                for (long timestamp : new long[] {100, 500, 300, 200, 400}) {
                    producer.send(new ProducerRecord<>(topic, 0, timestamp, "k", "v" + timestamp)).get(30, TimeUnit.SECONDS);
                }
            }
            assertEquals(0, offset(admin, partition, OffsetSpec.earliest()).offset());
            assertEquals(5, offset(admin, partition, OffsetSpec.latest()).offset());
            ListOffsetsResult.ListOffsetsResultInfo max = offset(admin, partition, OffsetSpec.maxTimestamp());
            assertEquals(1, max.offset());
            assertEquals(500, max.timestamp());
            ListOffsetsResult.ListOffsetsResultInfo byTime = offset(admin, partition, OffsetSpec.forTimestamp(250));
            assertEquals(1, byTime.offset());
            assertEquals(500, byTime.timestamp());
        }
    }

    private static ListOffsetsResult.ListOffsetsResultInfo offset(Admin admin, TopicPartition partition, OffsetSpec spec) throws Exception {
        return get(admin.listOffsets(Map.of(partition, spec)).partitionResult(partition));
    }

    /**
     * Goal: deleteRecords moves the log start offset. Method: 10 records, delete before 4; the
     * low watermark is 4, earliest is 4, a consumer from the beginning reads offset 4 first.
     */
    @Test
    void deleteRecordsMovesLogStart() throws Exception {
        String topic = Compat.topic("delete-records");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            Compat.produce(topic, 1, 10);
            long low = get(admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(partition)).lowWatermark();
            assertEquals(4, low);
            assertEquals(4, offset(admin, partition, OffsetSpec.earliest()).offset());
        }
        try (KafkaConsumer<String, String> consumer = Compat.consumer(null, Map.of())) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            assertEquals(4, Compat.pollAtLeast(consumer, 1).get(0).offset());
        }
    }

    /**
     * Goal: describeLogDirs lists each broker's log directories with the replicas in them.
     * Method: a topic with 10 records; the broker's dirs hold a replica of partition 0 with a
     * size above zero.
     */
    @Test
    void describeLogDirs() throws Exception {
        String topic = Compat.topic("logdirs");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            Compat.produce(topic, 1, 10);
            List<Integer> brokers = get(admin.describeCluster().nodes()).stream().map(Node::id).toList();
            Map<Integer, Map<String, LogDirDescription>> dirs = get(admin.describeLogDirs(brokers).allDescriptions());
            long size = dirs.values().stream().flatMap(m -> m.values().stream())
                    .filter(d -> d.replicaInfos().containsKey(partition))
                    .mapToLong(d -> d.replicaInfos().get(partition).size()).sum();
            assertTrue(size > 0, "replica size in " + dirs);
        }
    }

    /**
     * Goal: describeProducers lists the idempotent producers writing to a partition. Method:
     * an idempotent producer sends 3 records; describeProducers of the partition lists one
     * producer whose last sequence is 2.
     */
    @Test
    void describeProducers() throws Exception {
        String topic = Compat.topic("producers");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            Compat.produce(topic, 1, 3);
            List<ProducerState> producers = get(admin.describeProducers(List.of(partition)).partitionResult(partition)).activeProducers();
            assertEquals(1, producers.size(), "producers: " + producers);
            assertEquals(2, producers.get(0).lastSequence());
            assertTrue(producers.get(0).producerId() >= 0);
        }
    }

    /**
     * Goal: the consumer-group admin calls. Method: a member commits 10 records of a topic and
     * stays: list shows the group (classic, Stable), describe shows the member and its
     * assignment, and (asked for) the group's authorized operations; alterConsumerGroupOffsets while it has members fails; the member leaves;
     * describe shows Empty; alter to offset 3 works and is read back; delete removes it.
     */
    @Test
    void consumerGroupAdmin() throws Exception {
        String topic = Compat.topic("group-admin");
        String group = Compat.topic("g");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            Compat.produce(topic, 1, 10);
            try (KafkaConsumer<String, String> consumer = Compat.consumer(group, Map.of())) {
                consumer.subscribe(List.of(topic));
                assertEquals(10, Compat.pollAtLeast(consumer, 10).size());
                consumer.commitSync();
                Collection<ConsumerGroupListing> groups = get(admin.listConsumerGroups().all());
                Optional<ConsumerGroupListing> listing = groups.stream().filter(g -> g.groupId().equals(group)).findFirst();
                assertTrue(listing.isPresent(), "listed: " + groups);
                ConsumerGroupDescription description = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(GroupState.STABLE, description.groupState());
                assertEquals(1, description.members().size());
                assertEquals(Set.of(partition), description.members().iterator().next().assignment().topicPartitions());
                assertEquals("range", description.partitionAssignor());
                ConsumerGroupDescription withOperations = get(admin.describeConsumerGroups(List.of(group),
                        new DescribeConsumerGroupsOptions().includeAuthorizedOperations(true)).all()).get(group);
                assertEquals(Set.of(AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE,
                        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS), withOperations.authorizedOperations(), "group authorized operations");
                ExecutionException busy = assertThrows(ExecutionException.class, () -> get(admin.alterConsumerGroupOffsets(group,
                        Map.of(partition, new OffsetAndMetadata(3))).all()));
                assertNotNull(busy.getCause());
            }
            assertEquals(GroupState.EMPTY, get(admin.describeConsumerGroups(List.of(group)).all()).get(group).groupState());
            assertEquals(10, get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).get(partition).offset());
            get(admin.alterConsumerGroupOffsets(group, Map.of(partition, new OffsetAndMetadata(3))).all());
            assertEquals(3, get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).get(partition).offset());
            get(admin.deleteConsumerGroups(List.of(group)).all());
            assertTrue(get(admin.listConsumerGroups().all()).stream().noneMatch(g -> g.groupId().equals(group)));
        }
    }

    /**
     * Goal: deleting a group with members is refused with GroupNotEmptyException, as tools
     * expect. Method: a member joins; deleteConsumerGroups fails with that cause.
     */
    @Test
    void deleteNonEmptyGroupIsRefused() throws Exception {
        String topic = Compat.topic("busy-group");
        String group = Compat.topic("g");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            Compat.produce(topic, 1, 1);
            try (KafkaConsumer<String, String> consumer = Compat.consumer(group, Map.of())) {
                consumer.subscribe(List.of(topic));
                assertEquals(1, Compat.pollAtLeast(consumer, 1).size());
                ExecutionException refused = assertThrows(ExecutionException.class, () -> get(admin.deleteConsumerGroups(List.of(group)).all()));
                assertInstanceOf(GroupNotEmptyException.class, refused.getCause());
            }
        }
    }
}
