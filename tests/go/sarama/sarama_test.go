// Package saramacompat is the Sarama (github.com/IBM/sarama) row of the client compatibility
// matrix: the same tests, unchanged, against Apache Kafka and against Sluice
// (scripts/compat-clients.sh). Each top-level test or subtest is one row of
// docs/compatibility.md, under the suite `sarama`.
//
// Sarama picks every request version from Config.Version rather than from the broker's
// ApiVersions answer, so the tests set it to the Apache Kafka release the suite runs against
// (kafkaVersion): Sluice must then accept the versions a Kafka 4.1 client of Sarama sends.
//
// The broker is named by COMPAT_BOOTSTRAP (host:port); without it every test fails (a test that
// did not run is never reported as a pass).
package saramacompat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Upper bound for one test's broker work; a hung client fails the test instead of the run.
const testTimeout = 90 * time.Second

// kafkaVersion is the protocol level Sarama speaks: Apache Kafka 4.1, the oracle's release
// (scripts/kafka/pom.xml).
var kafkaVersion = sarama.V4_1_0_0

var runID = fmt.Sprintf("%d", time.Now().UnixNano())

func bootstrap(t *testing.T) []string {
	t.Helper()
	b := os.Getenv("COMPAT_BOOTSTRAP")
	if b == "" {
		t.Fatal("COMPAT_BOOTSTRAP (host:port of the broker under test) is not set")
	}
	return []string{b}
}

// newConfig is the base configuration of every client: Kafka 4.1's protocol and a client id
// that names the suite in broker logs.
func newConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = kafkaVersion
	cfg.ClientID = "sluice-compat-sarama"
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func newAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdmin(bootstrap(t), newConfig())
	if err != nil {
		t.Fatalf("sarama.NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

// newIdempotentProducer is a SyncProducer as services run one for durable keyed writes:
// idempotent, acks from every in-sync replica, one request in flight (Sarama requires it for
// idempotence), Kafka's Java-client partitioner (murmur2) and the given codec.
func newIdempotentProducer(t *testing.T, codec sarama.CompressionCodec) sarama.SyncProducer {
	t.Helper()
	cfg := newConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Compression = codec
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer(bootstrap(t), cfg)
	if err != nil {
		t.Fatalf("sarama.NewSyncProducer: %v", err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	return producer
}

// createTopic creates a topic with the given partition count and replication factor 1, waits
// until every partition has a leader and deletes it when the test ends.
func createTopic(ctx context.Context, t *testing.T, adm sarama.ClusterAdmin, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}
	if err := adm.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() { _ = adm.DeleteTopic(name) })
	waitFor(ctx, t, "topic "+name+" to have a leader for every partition", func() bool {
		md, err := adm.DescribeTopics([]string{name})
		if err != nil || len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) || int32(len(md[0].Partitions)) != partitions {
			return false
		}
		for _, p := range md[0].Partitions {
			if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader < 0 {
				return false
			}
		}
		return true
	})
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// consumePartitions reads every partition of topic from offset 0 with Sarama's plain (groupless)
// consumer until want records arrived.
func consumePartitions(ctx context.Context, t *testing.T, topic string, partitions int32, want int) []*sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumer(bootstrap(t), newConfig())
	if err != nil {
		t.Fatalf("sarama.NewConsumer: %v", err)
	}
	defer consumer.Close()
	messages := make(chan *sarama.ConsumerMessage, want)
	errs := make(chan error, partitions)
	for p := int32(0); p < partitions; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s[%d]: %v", topic, p, err)
		}
		defer pc.AsyncClose()
		go func() {
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					messages <- m
				case e, ok := <-pc.Errors():
					if ok {
						errs <- e
					}
					return
				}
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	for len(got) < want {
		select {
		case m := <-messages:
			got = append(got, m)
		case err := <-errs:
			t.Fatalf("consume %s: %v", topic, err)
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d records before the timeout", len(got), want)
		}
	}
	return got
}

// javaPartitions are the partitions of a 6-partition topic that Kafka's Java client picks for
// these keys: toPositive(Utils.murmur2(key)) % 6, the hashes printed by
// org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 4.1.1) — the same values
// tests/go/compat_test.go checks franz-go's hash against.
var javaPartitions = func() map[string]int32 {
	javaHashes := map[string]int32{"21": -973932308, "foobar": -790332482, "abc": 479470107,
		"key-0": 29210041, "key-1": 193331640, "key-2": 852269702, "user-42": 1459644460}
	partitions := map[string]int32{}
	for key, hash := range javaHashes {
		partitions[key] = (hash & 0x7fffffff) % 6
	}
	return partitions
}()

// TestSyncProducerKeyed: an idempotent SyncProducer (acks=all) with each compression codec
// writes keyed records to a 6-partition topic, one at a time (SendMessage) and in a batch
// (SendMessages); every key lands in the partition Kafka's Java client picks for it, offsets
// grow per partition in the order sent, and a consumer reads back exactly what was acknowledged
// at each offset, key and value intact.
func TestSyncProducerKeyed(t *testing.T) {
	codecs := []struct {
		name  string
		codec sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP}, {"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4}, {"zstd", sarama.CompressionZSTD}}
	keys := make([]string, 0, len(javaPartitions))
	for key := range javaPartitions {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			const partitions, rounds = 6, 20
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			topic := fmt.Sprintf("sarama-keyed-%s-%s", c.name, runID)
			createTopic(ctx, t, newAdmin(t), topic, partitions, nil)
			producer := newIdempotentProducer(t, c.codec)
			type sent struct{ key, value string }
			acked := map[[2]int64]sent{}
			last := map[int32]int64{}
			check := func(m *sarama.ProducerMessage, s sent) {
				if m.Partition != javaPartitions[s.key] {
					t.Fatalf("key %q produced to partition %d; Kafka's Java client picks %d", s.key, m.Partition, javaPartitions[s.key])
				}
				if prev, ok := last[m.Partition]; ok && m.Offset <= prev {
					t.Fatalf("partition %d: offset %d acknowledged after %d", m.Partition, m.Offset, prev)
				}
				last[m.Partition] = m.Offset
				acked[[2]int64{int64(m.Partition), m.Offset}] = s
			}
			for round := 0; round < rounds; round++ {
				// Even rounds one record per request, odd rounds one request for all keys.
				var batch []*sarama.ProducerMessage
				for _, key := range keys {
					s := sent{key, fmt.Sprintf("%s-round-%d-%s", key, round, c.name)}
					m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(s.key), Value: sarama.StringEncoder(s.value),
						Headers: []sarama.RecordHeader{{Key: []byte("round"), Value: []byte(fmt.Sprint(round))}}}
					if round%2 == 0 {
						if _, _, err := producer.SendMessage(m); err != nil {
							t.Fatalf("SendMessage: %v", err)
						}
						check(m, s)
					} else {
						batch = append(batch, m)
					}
				}
				if len(batch) > 0 {
					if err := producer.SendMessages(batch); err != nil {
						t.Fatalf("SendMessages: %v", err)
					}
					for _, m := range batch {
						key, _ := m.Key.Encode()
						value, _ := m.Value.Encode()
						check(m, sent{string(key), string(value)})
					}
				}
			}
			got := consumePartitions(ctx, t, topic, partitions, len(acked))
			for _, m := range got {
				s, ok := acked[[2]int64{int64(m.Partition), m.Offset}]
				if !ok {
					t.Fatalf("consumed a record at %d/%d that no produce acknowledged", m.Partition, m.Offset)
				}
				if string(m.Key) != s.key || string(m.Value) != s.value {
					t.Fatalf("record at %d/%d: key %q value %q, sent key %q value %q", m.Partition, m.Offset, m.Key, m.Value, s.key, s.value)
				}
				if len(m.Headers) != 1 || string(m.Headers[0].Key) != "round" {
					t.Fatalf("record at %d/%d: headers %v, sent one `round` header", m.Partition, m.Offset, m.Headers)
				}
			}
		})
	}
}

// TestTransactions: a transactional SyncProducer commits one transaction and aborts another; a
// read_committed consumer sees the committed record and not the aborted one.
func TestTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	topic := "sarama-txn-" + runID
	createTopic(ctx, t, newAdmin(t), topic, 1, nil)
	cfg := newConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Transaction.ID = "sarama-txn-" + runID
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer(bootstrap(t), cfg)
	if err != nil {
		t.Fatalf("transactional sarama.NewSyncProducer: %v", err)
	}
	defer producer.Close()
	inTransaction := func(value string, commit bool) {
		if err := producer.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)}); err != nil {
			t.Fatalf("SendMessage in a transaction: %v", err)
		}
		end := producer.CommitTxn
		if !commit {
			end = producer.AbortTxn
		}
		if err := end(); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	inTransaction("committed", true)
	inTransaction("aborted", false)

	consumerConfig := newConfig()
	consumerConfig.Consumer.IsolationLevel = sarama.ReadCommitted
	consumer, err := sarama.NewConsumer(bootstrap(t), consumerConfig)
	if err != nil {
		t.Fatalf("sarama.NewConsumer: %v", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("ConsumePartition: %v", err)
	}
	defer pc.AsyncClose()
	// The first record a read_committed reader gets must be the committed one; the aborted one
	// (offset 2, after the first transaction's marker) must not follow.
	var values []string
	select {
	case m := <-pc.Messages():
		values = append(values, string(m.Value))
	case err := <-pc.Errors():
		t.Fatalf("consume: %v", err)
	case <-ctx.Done():
		t.Fatal("read_committed consumer saw nothing before the timeout")
	}
	select {
	case m := <-pc.Messages():
		values = append(values, string(m.Value))
	case <-time.After(time.Second):
	}
	if len(values) != 1 || values[0] != "committed" {
		t.Fatalf("read_committed consumer saw %v, want only the committed record", values)
	}
}
