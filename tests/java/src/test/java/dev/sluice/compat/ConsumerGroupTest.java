package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.junit.jupiter.api.Test;

class ConsumerGroupTest {
    private static final int PARTITIONS = 4;
    private static final int RECORDS = 400;

    /**
     * Goal: two members of a classic group with the eager range assignor split the partitions
     * and together read everything once. Method: member A joins alone and gets all 4
     * partitions; B joins; both poll until the group rebalanced (A's listener saw every
     * partition revoked, as eager rebalancing does) and each holds 2 disjoint partitions; the
     * records read by both, committed synchronously, cover every record exactly once.
     */
    @Test
    void eagerRangeGroupSplitsPartitions() throws Exception {
        groupSplitsPartitions(RangeAssignor.class.getName(), true);
    }

    /**
     * Goal: the same with the cooperative-sticky assignor, where a rebalance revokes only the
     * partitions that move. Method: as above; A's listener must never see all its partitions
     * revoked at once, only the 2 that move to B.
     */
    @Test
    void cooperativeStickyGroupSplitsPartitions() throws Exception {
        groupSplitsPartitions(CooperativeStickyAssignor.class.getName(), false);
    }

    private void groupSplitsPartitions(String assignor, boolean eager) throws Exception {
        String topic = Compat.topic("group");
        String group = Compat.topic("g");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, PARTITIONS);
        }
        Compat.produce(topic, PARTITIONS, RECORDS);
        Map<String, Object> config = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10);
        List<Collection<TopicPartition>> revokedByA = new CopyOnWriteArrayList<>();
        Set<String> seen = new HashSet<>();
        int duplicates = 0;
        try (KafkaConsumer<String, String> a = Compat.consumer(group, config);
             KafkaConsumer<String, String> b = Compat.consumer(group, config)) {
            a.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    if (!partitions.isEmpty()) {
                        revokedByA.add(new ArrayList<>(partitions));
                        a.commitSync();
                    }
                }
                @Override public void onPartitionsAssigned(Collection<TopicPartition> partitions) {}
            });
            // A alone: polls until it owns all partitions (reads a few records, commits them).
            long deadline = System.nanoTime() + Compat.CALL_TIMEOUT.toNanos();
            while (a.assignment().size() < PARTITIONS && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : a.poll(Duration.ofMillis(100))) {
                    duplicates += seen.add(r.key()) ? 0 : 1;
                }
                a.commitSync();
            }
            assertEquals(PARTITIONS, a.assignment().size(), "A alone owns every partition");
            b.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    b.commitSync();
                }
                @Override public void onPartitionsAssigned(Collection<TopicPartition> partitions) {}
            });
            deadline = System.nanoTime() + Compat.CALL_TIMEOUT.toNanos() * 2;
            while ((seen.size() < RECORDS || a.assignment().size() != PARTITIONS / 2 || b.assignment().size() != PARTITIONS / 2)
                    && System.nanoTime() < deadline) {
                for (KafkaConsumer<String, String> member : List.of(a, b)) {
                    for (ConsumerRecord<String, String> r : member.poll(Duration.ofMillis(100))) {
                        duplicates += seen.add(r.key()) ? 0 : 1;
                    }
                    try {
                        member.commitSync();
                    } catch (RebalanceInProgressException e) {
                        // Cooperative rebalancing: the commit is retried after the next poll, and
                        // partitions that move are committed by the revocation listener first.
                    }
                }
            }
            assertEquals(PARTITIONS / 2, a.assignment().size(), "A's share");
            assertEquals(PARTITIONS / 2, b.assignment().size(), "B's share");
            Set<TopicPartition> union = new HashSet<>(a.assignment());
            union.addAll(b.assignment());
            assertEquals(PARTITIONS, union.size(), "disjoint assignments cover the topic");
            assertEquals(RECORDS, seen.size(), "every record read");
            // Each member commits after each poll and in its revocation listener, so a partition
            // moves with everything read from it committed: no record is read twice.
            assertEquals(0, duplicates, "no record read twice");
            if (eager) {
                assertTrue(revokedByA.stream().anyMatch(p -> p.size() == PARTITIONS), "eager: A gave up all partitions: " + revokedByA);
            } else {
                assertFalse(revokedByA.stream().anyMatch(p -> p.size() == PARTITIONS), "cooperative: A never gave up all: " + revokedByA);
                assertTrue(revokedByA.stream().anyMatch(p -> p.size() == PARTITIONS / 2), "cooperative: A gave up the moved half: " + revokedByA);
            }
        }
        try (Admin admin = Compat.admin()) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            long total = committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            assertEquals(RECORDS, total, "committed offsets cover every record: " + committed);
        }
    }

    /**
     * Goal: auto commit stores the position. Method: a member with enable.auto.commit and a 100
     * ms interval reads everything and closes (close commits); the group's committed offsets
     * equal the end of each partition.
     */
    @Test
    void autoCommitStoresPositions() throws Exception {
        String topic = Compat.topic("autocommit");
        String group = Compat.topic("g");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
        }
        Compat.produce(topic, 2, 100);
        try (KafkaConsumer<String, String> consumer = Compat.consumer(group, Map.of(
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true, ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 100))) {
            consumer.subscribe(List.of(topic));
            assertEquals(100, Compat.pollAtLeast(consumer, 100).size());
            consumer.poll(Duration.ofMillis(300));
        }
        try (Admin admin = Compat.admin()) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            assertEquals(50, committed.get(new TopicPartition(topic, 0)).offset());
            assertEquals(50, committed.get(new TopicPartition(topic, 1)).offset());
        }
    }

    /**
     * Goal: a manual commit with metadata is where the next member of the group starts. Method:
     * commitSync offset 30 with metadata "checkpoint" on partition 0; a new member of the same
     * group reads from offset 30 and committed() returns the offset and metadata.
     */
    @Test
    void manualCommitIsWhereTheGroupResumes() throws Exception {
        String topic = Compat.topic("manual");
        String group = Compat.topic("g");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
        }
        Compat.produce(topic, 1, 50);
        try (KafkaConsumer<String, String> consumer = Compat.consumer(group, Map.of())) {
            consumer.subscribe(List.of(topic));
            assertEquals(50, Compat.pollAtLeast(consumer, 50).size());
            consumer.commitSync(Map.of(partition, new OffsetAndMetadata(30, "checkpoint")));
        }
        try (KafkaConsumer<String, String> consumer = Compat.consumer(group, Map.of())) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> records = Compat.pollAtLeast(consumer, 20);
            assertEquals(30, records.get(0).offset());
            assertEquals(20, records.size());
            OffsetAndMetadata committed = consumer.committed(Set.of(partition)).get(partition);
            assertEquals(30, committed.offset());
            assertEquals("checkpoint", committed.metadata());
        }
    }

    /**
     * Goal: seek by offset and by timestamp. Method: 10 records with timestamps 1000, 2000, …
     * 10000 ms; offsetsForTimes(4500) is offset 4 (timestamp 5000), seek there and read it;
     * offsetsForTimes beyond the last is null; seek(7) reads offset 7; seekToEnd then position
     * is 10.
     */
    @Test
    void seekByOffsetAndByTime() throws Exception {
        String topic = Compat.topic("seek");
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
        }
        try (KafkaProducer<String, String> producer = Compat.producer()) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, (i + 1) * 1000L, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        try (KafkaConsumer<String, String> consumer = Compat.consumer(null, Map.of())) {
            consumer.assign(List.of(partition));
            Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(Map.of(partition, 4500L));
            assertEquals(4, found.get(partition).offset());
            assertEquals(5000L, found.get(partition).timestamp());
            assertEquals(null, consumer.offsetsForTimes(Map.of(partition, 20_000L)).get(partition));
            consumer.seek(partition, found.get(partition).offset());
            assertEquals("v4", Compat.pollAtLeast(consumer, 1).get(0).value());
            consumer.seek(partition, 7);
            ConsumerRecord<String, String> seventh = Compat.pollAtLeast(consumer, 1).get(0);
            assertEquals(7, seventh.offset());
            assertEquals(8000L, seventh.timestamp());
            consumer.seekToEnd(List.of(partition));
            assertEquals(10, consumer.position(partition));
            assertEquals(0L, consumer.beginningOffsets(List.of(partition)).get(partition));
            assertEquals(10L, consumer.endOffsets(List.of(partition)).get(partition));
        }
    }

    /**
     * Goal: pause stops fetching a partition without losing the position; resume continues.
     * Method: assign two partitions with 20 records each, pause partition 1, poll: only
     * partition 0's 20 records arrive; resume: partition 1's 20 arrive, starting at offset 0.
     */
    @Test
    void pauseAndResume() throws Exception {
        String topic = Compat.topic("pause");
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
        }
        Compat.produce(topic, 2, 40);
        try (KafkaConsumer<String, String> consumer = Compat.consumer(null, Map.of())) {
            consumer.assign(List.of(p0, p1));
            consumer.seekToBeginning(List.of(p0, p1));
            consumer.pause(List.of(p1));
            List<ConsumerRecord<String, String>> first = Compat.pollAtLeast(consumer, 20);
            consumer.poll(Duration.ofMillis(500)).forEach(first::add);
            assertEquals(20, first.size());
            assertTrue(first.stream().allMatch(r -> r.partition() == 0));
            assertEquals(Set.of(p1), consumer.paused());
            consumer.resume(List.of(p1));
            List<ConsumerRecord<String, String>> second = Compat.pollAtLeast(consumer, 20);
            assertEquals(20, second.size());
            assertTrue(second.stream().allMatch(r -> r.partition() == 1));
            assertEquals(0, second.get(0).offset());
        }
    }
}
