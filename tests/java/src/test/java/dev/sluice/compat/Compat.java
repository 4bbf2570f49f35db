package dev.sluice.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What every test shares: the broker under test (system property {@code bootstrap}, host:port,
 * or the environment's COMPAT_BOOTSTRAP) and which one it is (system property {@code target} or
 * COMPAT_TARGET, "kafka" or "sluice"; a test asserts differently by target only for a difference
 * documented in docs/compatibility.md), client configurations, and unique topic names so tests
 * never see each other's data.
 */
final class Compat {
    /** Upper bound for one admin call or one wait in a test; a hung call fails the test. */
    static final Duration CALL_TIMEOUT = Duration.ofSeconds(30);

    private Compat() {}

    static String bootstrap() {
        String bootstrap = System.getProperty("bootstrap", System.getenv("COMPAT_BOOTSTRAP"));
        if (bootstrap == null || bootstrap.isBlank()) {
            throw new IllegalStateException("-Dbootstrap=host:port (the broker under test) is not set");
        }
        return bootstrap;
    }

    static String target() {
        return System.getProperty("target", System.getenv().getOrDefault("COMPAT_TARGET", "unknown"));
    }

    /** A topic name no other test or run uses. */
    static String topic(String purpose) {
        return "java-" + purpose + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CALL_TIMEOUT.toMillis());
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        return Admin.create(props);
    }

    static void createTopic(Admin admin, String name, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        // Kafka answers CreateTopics before every broker's metadata has the topic: wait for it.
        waitUntil("topic " + name + " visible", () -> {
            try {
                return admin.describeTopics(List.of(name)).allTopicNames().get().get(name).partitions().size() == partitions;
            } catch (Exception e) {
                return false;
            }
        });
    }

    static Properties producerProps(Map<String, Object> extra) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        props.putAll(extra);
        return props;
    }

    static KafkaProducer<String, String> producer(Map<String, Object> extra) {
        return new KafkaProducer<>(producerProps(extra));
    }

    static KafkaProducer<String, String> producer() {
        return producer(Map.of());
    }

    static Properties consumerProps(String group, Map<String, Object> extra) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        props.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CALL_TIMEOUT.toMillis());
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        props.putAll(extra);
        return props;
    }

    static KafkaConsumer<String, String> consumer(String group, Map<String, Object> extra) {
        return new KafkaConsumer<>(consumerProps(group, extra));
    }

    /** Sends `count` records "key-i" / "value-i" round-robin over `partitions`, flushed, acked. */
    static void produce(String topic, int partitions, int count) throws Exception {
        try (KafkaProducer<String, String> producer = producer()) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, i % partitions, "key-" + i, "value-" + i)).get(30, TimeUnit.SECONDS);
            }
        }
    }

    /** Polls until `count` records came back or CALL_TIMEOUT passed; returns what came. */
    static List<ConsumerRecord<String, String>> pollAtLeast(KafkaConsumer<String, String> consumer, int count) {
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        long deadline = System.nanoTime() + CALL_TIMEOUT.toNanos();
        while (records.size() < count && System.nanoTime() < deadline) {
            consumer.poll(Duration.ofMillis(200)).forEach(records::add);
        }
        return records;
    }

    static void waitUntil(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + CALL_TIMEOUT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + " on " + target());
            }
            Thread.sleep(100);
        }
    }

    static <T> List<T> sorted(Collection<T> items, java.util.Comparator<T> order) {
        List<T> list = new ArrayList<>(items);
        list.sort(order);
        return list;
    }
}
