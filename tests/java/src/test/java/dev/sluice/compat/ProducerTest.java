package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ProducerTest {
    private static final int RECORDS = 2_000;

    /**
     * Goal: the idempotent producer with acks=all works with every codec. Method: send RECORDS
     * keyed records in batches of the codec under test (linger, so batches hold many records) to
     * a 3-partition topic, then read every partition from the start with a group-less consumer:
     * each record exactly once, per-partition offsets contiguous from 0 and in send order.
     */
    @ParameterizedTest(name = "idempotent acks=all compression={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void idempotentProducerWithEveryCodec(String codec) throws Exception {
        String topic = Compat.topic("codec-" + codec);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 3);
        }
        List<Future<RecordMetadata>> sends = new ArrayList<>();
        try (KafkaProducer<String, String> producer = Compat.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, 20,
                ProducerConfig.BATCH_SIZE_CONFIG, 64 * 1024))) {
            for (int i = 0; i < RECORDS; i++) {
                sends.add(producer.send(new ProducerRecord<>(topic, "key-" + i, "value-" + i + "-" + "x".repeat(i % 50))));
            }
            producer.flush();
        }
        for (Future<RecordMetadata> send : sends) {
            assertTrue(send.get(30, TimeUnit.SECONDS).hasOffset());
        }
        List<TopicPartition> partitions = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
        try (KafkaConsumer<String, String> consumer = Compat.consumer(null, Map.of())) {
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            List<ConsumerRecord<String, String>> records = Compat.pollAtLeast(consumer, RECORDS);
            assertEquals(RECORDS, records.size(), "records read back on " + Compat.target());
            long[] next = new long[3];
            int[] lastIndex = {-1, -1, -1};
            for (ConsumerRecord<String, String> record : records) {
                assertEquals(next[record.partition()], record.offset(), "offsets contiguous");
                next[record.partition()]++;
                int index = Integer.parseInt(record.key().substring("key-".length()));
                assertTrue(index > lastIndex[record.partition()], "send order kept within a partition");
                lastIndex[record.partition()] = index;
                assertTrue(record.value().startsWith("value-" + index + "-"));
            }
        }
    }

    /**
     * Goal: until Sluice has transactions, a transactional producer fails at once with a clear
     * error instead of hanging in initTransactions() until max.block.ms. Method: initTransactions
     * with max.block.ms = 60 s; on Kafka it succeeds; on a broker without transactions it must
     * throw a KafkaException within 20 s.
     */
    @Test
    void transactionalProducerInitializesOrFailsFast() {
        long start = System.nanoTime();
        try (KafkaProducer<String, String> producer = Compat.producer(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, Compat.topic("txn"),
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000))) {
            if (Compat.target().equals("kafka")) {
                producer.initTransactions();
            } else {
                assertThrows(KafkaException.class, producer::initTransactions);
            }
        }
        long elapsedMs = Duration.ofNanos(System.nanoTime() - start).toMillis();
        assertTrue(elapsedMs < 20_000, "initTransactions took " + elapsedMs + " ms");
    }
}
