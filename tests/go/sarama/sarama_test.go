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
	"sync"
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

// newIdempotentProducer is a SyncProducer as the task's users run one for durable keyed writes:
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

// groupHandler is a sarama.ConsumerGroupHandler that records every message it is given, marks
// it and commits synchronously whenever it has processed everything fetched so far (auto commit
// is off), so a member that stops or loses a partition has committed everything it processed.
type groupHandler struct {
	name   string
	mu     *sync.Mutex
	seen   map[[2]int64]string
	dups   *[]string
	claims map[int32]bool
	// setups counts the sessions this member began (one per rebalance it took part in);
	// generation is the group generation of the latest.
	setups     int
	generation int32
}

func (h *groupHandler) Setup(session sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = map[int32]bool{}
	h.setups++
	h.generation = session.GenerationID()
	for _, partitions := range session.Claims() {
		for _, p := range partitions {
			h.claims[p] = true
		}
	}
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = map[int32]bool{}
	return nil
}

func (h *groupHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		pos := [2]int64{int64(m.Partition), m.Offset}
		if prev, ok := h.seen[pos]; ok {
			*h.dups = append(*h.dups, fmt.Sprintf("%d/%d by %s and %s", m.Partition, m.Offset, prev, h.name))
		}
		h.seen[pos] = h.name
		h.mu.Unlock()
		session.MarkMessage(m, "")
		// Commit once the records fetched so far are processed: a synchronous commit waits
		// for the connection's outstanding fetch (Sarama sends one request at a time per
		// broker), so one per record would take a fetch wait each.
		if len(claim.Messages()) == 0 {
			session.Commit()
		}
	}
	return nil
}

func (h *groupHandler) claimCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.claims)
}

// groupMember runs one sarama.ConsumerGroup's Consume loop until stopped.
type groupMember struct {
	group   sarama.ConsumerGroup
	handler *groupHandler
	cancel  context.CancelFunc
	done    chan error
}

func startMember(t *testing.T, name, group, topic string, strategy sarama.BalanceStrategy, mu *sync.Mutex, seen map[[2]int64]string, dups *[]string) *groupMember {
	t.Helper()
	return startStaticMember(t, name, "", group, topic, strategy, mu, seen, dups)
}

// startStaticMember is startMember with a group instance id (KIP-345 static membership) when
// instanceID is not empty.
func startStaticMember(t *testing.T, name, instanceID, group, topic string, strategy sarama.BalanceStrategy, mu *sync.Mutex, seen map[[2]int64]string, dups *[]string) *groupMember {
	t.Helper()
	cfg := newConfig()
	cfg.Consumer.Group.InstanceId = instanceID
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	cfg.Consumer.Return.Errors = true
	cg, err := sarama.NewConsumerGroup(bootstrap(t), group, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{group: cg, cancel: cancel, done: make(chan error, 1),
		handler: &groupHandler{name: name, mu: mu, seen: seen, dups: dups, claims: map[int32]bool{}}}
	go func() {
		var firstErr error
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m.handler); err != nil && ctx.Err() == nil && firstErr == nil {
				firstErr = err
			}
		}
		m.done <- firstErr
	}()
	go func() {
		for err := range cg.Errors() {
			mu.Lock()
			*dups = append(*dups, fmt.Sprintf("%s: group error: %v", name, err))
			mu.Unlock()
		}
	}()
	return m
}

// stop ends the member's session (its last commit is synchronous) and leaves the group.
func (m *groupMember) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	err := <-m.done
	if closeErr := m.group.Close(); closeErr != nil && err == nil {
		err = closeErr
	}
	if err != nil {
		t.Errorf("consumer group member %s: %v", m.handler.name, err)
	}
}

// produceKeyed sends count records keyed key-<i % 13> through an idempotent SyncProducer.
func produceKeyed(t *testing.T, producer sarama.SyncProducer, topic string, from, count int) {
	t.Helper()
	batch := make([]*sarama.ProducerMessage, 0, count)
	for i := from; i < from+count; i++ {
		batch = append(batch, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i%13)),
			Value: sarama.StringEncoder(fmt.Sprint(i))})
	}
	if err := producer.SendMessages(batch); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
}

// logEnd is each partition's next offset (ListOffsets, latest).
func logEnd(t *testing.T, adm sarama.ClusterAdmin, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	request := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		request[p] = sarama.OffsetNewest
	}
	answer, err := adm.ListOffsets(map[string]map[int32]int64{topic: request}, nil)
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	ends := map[int32]int64{}
	for p, result := range answer[topic] {
		if result.Err != nil && !errors.Is(result.Err, sarama.ErrNoError) {
			t.Fatalf("ListOffsets %s[%d]: %v", topic, p, result.Err)
		}
		ends[p] = result.Offset
	}
	return ends
}

// committed is the group's committed offset of each partition (OffsetFetch).
func committed(t *testing.T, adm sarama.ClusterAdmin, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	all := make([]int32, partitions)
	for p := range all {
		all[p] = int32(p)
	}
	answer, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: all})
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	offsets := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		block := answer.GetBlock(topic, p)
		if block == nil || !errors.Is(block.Err, sarama.ErrNoError) {
			t.Fatalf("ListConsumerGroupOffsets %s[%d]: %v", topic, p, block)
		}
		offsets[p] = block.Offset
	}
	return offsets
}

// TestConsumerGroup: per balance strategy (range, round-robin, sticky: the last sends its
// previous assignment as member user data), two members of one ConsumerGroup (manual synchronous
// commits) share a 4-partition topic, two partitions each, and consume 200 records between
// them, each only from its own partitions; one member leaves and the other takes over all four
// partitions and consumes 200 more. Every record is consumed exactly once and the committed
// offsets end at the log end. Then the remaining member stops, 100 more records are written and
// a new member of the same group resumes from the committed offsets: it gets exactly those 100
// (its reset policy is earliest, so a lost commit would show as re-read records).
func TestConsumerGroup(t *testing.T) {
	strategies := []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange(), sarama.NewBalanceStrategyRoundRobin(),
		sarama.NewBalanceStrategySticky()}
	for _, strategy := range strategies {
		t.Run(strategy.Name(), func(t *testing.T) { testConsumerGroup(t, strategy) })
	}
}

func testConsumerGroup(t *testing.T, strategy sarama.BalanceStrategy) {
	const partitions, batch = 4, 200
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	topic := fmt.Sprintf("sarama-group-%s-%s", strategy.Name(), runID)
	group := topic
	adm := newAdmin(t)
	createTopic(ctx, t, adm, topic, partitions, nil)
	producer := newIdempotentProducer(t, sarama.CompressionNone)
	var mu sync.Mutex
	seen := map[[2]int64]string{}
	var problems []string
	consumed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	checkProblems := func() {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("consumed more than once or failed: %v", problems)
		}
	}

	a := startMember(t, "A", group, topic, strategy, &mu, seen, &problems)
	b := startMember(t, "B", group, topic, strategy, &mu, seen, &problems)
	waitFor(ctx, t, "both members to own 2 partitions", func() bool {
		return a.handler.claimCount() == 2 && b.handler.claimCount() == 2
	})
	produceKeyed(t, producer, topic, 0, batch)
	waitFor(ctx, t, fmt.Sprintf("%d records consumed", batch), func() bool { return consumed() >= batch })
	mu.Lock()
	for pos, member := range seen {
		owner := a.handler
		if member == "B" {
			owner = b.handler
		}
		if !owner.claims[int32(pos[0])] {
			t.Errorf("member %s consumed %d/%d from a partition it does not own", member, pos[0], pos[1])
		}
	}
	mu.Unlock()

	b.stop(t)
	waitFor(ctx, t, "member A to own all 4 partitions", func() bool { return a.handler.claimCount() == partitions })
	produceKeyed(t, producer, topic, batch, batch)
	waitFor(ctx, t, fmt.Sprintf("%d records consumed", 2*batch), func() bool { return consumed() >= 2*batch })
	ends := logEnd(t, adm, topic, partitions)
	waitFor(ctx, t, "the committed offsets to reach the log end", func() bool {
		offsets := committed(t, adm, group, topic, partitions)
		for p, end := range ends {
			if offsets[p] != end {
				return false
			}
		}
		return true
	})
	a.stop(t)
	checkProblems()
	if n := consumed(); n != 2*batch {
		t.Fatalf("consumed %d distinct records, produced %d", n, 2*batch)
	}

	// Resume: a new member of the group starts where the commits say, not at the earliest offset.
	produceKeyed(t, producer, topic, 2*batch, batch/2)
	c := startMember(t, "C", group, topic, strategy, &mu, seen, &problems)
	defer c.stop(t)
	waitFor(ctx, t, "the resumed member to consume the new records", func() bool { return consumed() >= 2*batch+batch/2 })
	time.Sleep(500 * time.Millisecond) // a re-read of older records would show up as duplicates now
	checkProblems()
	mu.Lock()
	for pos, member := range seen {
		if member == "C" && pos[1] < ends[int32(pos[0])] {
			t.Errorf("the resumed member consumed %d/%d, before the committed offset %d", pos[0], pos[1], ends[int32(pos[0])])
		}
	}
	mu.Unlock()
}

// TestAdminTopics: ClusterAdmin's topic calls: CreateTopic with a config, ListTopics shows it
// with its partition count and the config, DescribeTopics shows every partition with a leader
// and one replica, CreatePartitions grows it, DescribeConfig reports the config as a dynamic
// topic config and a default one as a default, DeleteTopic removes it from ListTopics. Creating
// it again is refused with TOPIC_ALREADY_EXISTS.
func TestAdminTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "sarama-admin-" + runID
	retention := "3600000"
	createTopic(ctx, t, adm, topic, 3, map[string]*string{"retention.ms": &retention})

	err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("creating %s again: %v, want TOPIC_ALREADY_EXISTS", topic, err)
	}

	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	detail, ok := topics[topic]
	if !ok {
		t.Fatalf("ListTopics does not show %s", topic)
	}
	if detail.NumPartitions != 3 || detail.ReplicationFactor != 1 {
		t.Fatalf("ListTopics: %s has %d partitions, replication factor %d; created 3, 1", topic, detail.NumPartitions, detail.ReplicationFactor)
	}
	if v := detail.ConfigEntries["retention.ms"]; v == nil || *v != retention {
		t.Fatalf("ListTopics: %s retention.ms = %v, created with %s", topic, v, retention)
	}

	if err := adm.CreatePartitions(topic, 5, nil, false); err != nil {
		t.Fatalf("CreatePartitions to 5: %v", err)
	}
	waitFor(ctx, t, "5 partitions with a leader", func() bool {
		md, err := adm.DescribeTopics([]string{topic})
		if err != nil || len(md) != 1 || len(md[0].Partitions) != 5 {
			return false
		}
		for _, p := range md[0].Partitions {
			if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader < 0 || len(p.Replicas) != 1 || len(p.Isr) != 1 {
				return false
			}
		}
		return true
	})

	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	byName := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	if e, ok := byName["retention.ms"]; !ok || e.Value != retention || e.Source != sarama.SourceTopic || e.Default {
		t.Fatalf("DescribeConfig retention.ms: %+v, want %s from the topic's own config", e, retention)
	}
	if e, ok := byName["cleanup.policy"]; !ok || e.Value != "delete" || e.Source == sarama.SourceTopic {
		t.Fatalf("DescribeConfig cleanup.policy: %+v, want the default delete", e)
	}
	if len(entries) < 20 {
		t.Fatalf("DescribeConfig returned %d configs; a topic has dozens", len(entries))
	}

	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	waitFor(ctx, t, "the topic to leave ListTopics", func() bool {
		topics, err := adm.ListTopics()
		_, present := topics[topic]
		return err == nil && !present
	})
	err = adm.DeleteTopic(topic)
	if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("deleting %s again: %v, want UNKNOWN_TOPIC_OR_PARTITION", topic, err)
	}
}

// TestAdminGroups: ClusterAdmin's group calls on a group with one live member that committed
// offsets: ListConsumerGroups lists it as a consumer group, DescribeConsumerGroups shows it
// Stable with the member, its client id and its assignment (all partitions of the topic), and
// ListConsumerGroupOffsets shows the commits; after the member leaves it is Empty and
// DeleteConsumerGroup removes it from the list.
func TestAdminGroups(t *testing.T) {
	const partitions, records = 2, 20
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "sarama-admin-groups-" + runID
	group := "sarama-admin-groups-" + runID
	createTopic(ctx, t, adm, topic, partitions, nil)
	produceKeyed(t, newIdempotentProducer(t, sarama.CompressionNone), topic, 0, records)

	var mu sync.Mutex
	seen := map[[2]int64]string{}
	var problems []string
	member := startMember(t, "M", group, topic, sarama.NewBalanceStrategyRange(), &mu, seen, &problems)
	stopped := false
	defer func() {
		if !stopped {
			member.stop(t)
		}
	}()
	waitFor(ctx, t, "the member to consume every record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == records
	})

	groups, err := adm.ListConsumerGroups()
	if err != nil {
		t.Fatalf("ListConsumerGroups: %v", err)
	}
	if protocolType, ok := groups[group]; !ok || protocolType != "consumer" {
		t.Fatalf("ListConsumerGroups: %s has protocol type %q (listed %v), want consumer", group, protocolType, ok)
	}

	described, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil || len(described) != 1 {
		t.Fatalf("DescribeConsumerGroups: %v (%d groups)", err, len(described))
	}
	g := described[0]
	if !errors.Is(g.Err, sarama.ErrNoError) || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 1 {
		t.Fatalf("DescribeConsumerGroups: error %v state %q protocol %q/%q, %d members; want Stable consumer/range with 1 member",
			g.Err, g.State, g.ProtocolType, g.Protocol, len(g.Members))
	}
	for _, m := range g.Members {
		if m.ClientId != "sluice-compat-sarama" {
			t.Fatalf("member client id %q", m.ClientId)
		}
		assignment, err := m.GetMemberAssignment()
		if err != nil {
			t.Fatalf("member assignment: %v", err)
		}
		if got := assignment.Topics[topic]; len(got) != partitions {
			t.Fatalf("member assignment %v, want all %d partitions of %s", assignment.Topics, partitions, topic)
		}
	}
	// The handler commits after recording what it processed: wait for the last commit to land.
	ends := logEnd(t, adm, topic, partitions)
	waitFor(ctx, t, "the committed offsets to reach the log end", func() bool {
		offsets := committed(t, adm, group, topic, partitions)
		for p, end := range ends {
			if offsets[p] != end {
				return false
			}
		}
		return true
	})

	member.stop(t)
	stopped = true
	waitFor(ctx, t, "the group to be Empty", func() bool {
		described, err := adm.DescribeConsumerGroups([]string{group})
		return err == nil && len(described) == 1 && described[0].State == "Empty" && len(described[0].Members) == 0
	})
	if err := adm.DeleteConsumerGroup(group); err != nil {
		t.Fatalf("DeleteConsumerGroup: %v", err)
	}
	groups, err = adm.ListConsumerGroups()
	if err != nil {
		t.Fatalf("ListConsumerGroups after delete: %v", err)
	}
	if _, ok := groups[group]; ok {
		t.Fatalf("ListConsumerGroups still lists %s after DeleteConsumerGroup", group)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("consumer problems: %v", problems)
	}
}

// TestAdminCluster: DescribeCluster names one broker, reachable at the bootstrap address, and a
// controller id; DescribeConfig of that broker answers with its configs.
func TestAdminCluster(t *testing.T) {
	adm := newAdmin(t)
	brokers, controller, err := adm.DescribeCluster()
	if err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	if len(brokers) != 1 || brokers[0].Addr() != bootstrap(t)[0] {
		addrs := make([]string, 0, len(brokers))
		for _, b := range brokers {
			addrs = append(addrs, b.Addr())
		}
		t.Fatalf("DescribeCluster: brokers %v, want the one at %s", addrs, bootstrap(t)[0])
	}
	if controller < 0 {
		t.Fatalf("DescribeCluster: controller id %d", controller)
	}
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: fmt.Sprint(brokers[0].ID())})
	if err != nil {
		t.Fatalf("DescribeConfig broker %d: %v", brokers[0].ID(), err)
	}
	found := false
	for _, e := range entries {
		if e.Name == "log.retention.hours" || e.Name == "log.retention.ms" {
			found = true
		}
	}
	if !found {
		t.Fatalf("DescribeConfig broker %d: %d configs, none of them log.retention.hours/ms", brokers[0].ID(), len(entries))
	}
}

// offsetsAt is ListOffsets for every partition of topic at one spec (sarama.OffsetOldest,
// sarama.OffsetNewest or a timestamp in ms).
func offsetsAt(t *testing.T, adm sarama.ClusterAdmin, topic string, partitions int32, spec int64) map[int32]int64 {
	t.Helper()
	request := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		request[p] = spec
	}
	answer, err := adm.ListOffsets(map[string]map[int32]int64{topic: request}, nil)
	if err != nil {
		t.Fatalf("ListOffsets %d: %v", spec, err)
	}
	offsets := map[int32]int64{}
	for p, result := range answer[topic] {
		if result.Err != nil && !errors.Is(result.Err, sarama.ErrNoError) {
			t.Fatalf("ListOffsets %d %s[%d]: %v", spec, topic, p, result.Err)
		}
		offsets[p] = result.Offset
	}
	return offsets
}

// TestAdminConfigsRecordsOffsets: the ClusterAdmin calls operators script: IncrementalAlterConfig
// SET makes retention.ms a topic config and DELETE returns it to the default; ListOffsets by
// time finds the first record at or after a timestamp; DeleteRecords moves a partition's
// earliest offset; DescribeLogDirs shows the topic's partitions with bytes on disk;
// AlterConsumerGroupOffsets sets a group's committed offset, which ListConsumerGroupOffsets
// reads back, and DeleteConsumerGroupOffset removes it.
func TestAdminConfigsRecordsOffsets(t *testing.T) {
	const partitions, records = 2, 40
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "sarama-admin-ops-" + runID
	group := "sarama-admin-ops-" + runID
	createTopic(ctx, t, adm, topic, partitions, nil)

	retention := "7200000"
	set := map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &retention}}
	if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, set, false); err != nil {
		t.Fatalf("IncrementalAlterConfig SET: %v", err)
	}
	retentionEntry := func() sarama.ConfigEntry {
		entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
		if err != nil || len(entries) != 1 {
			t.Fatalf("DescribeConfig retention.ms: %v (%d entries)", err, len(entries))
		}
		return entries[0]
	}
	// Kafka applies an altered config through its metadata log, so a describe right after the
	// alter may still show the old value: wait for it.
	waitFor(ctx, t, "retention.ms "+retention+" from the topic's config after SET", func() bool {
		e := retentionEntry()
		return e.Value == retention && e.Source == sarama.SourceTopic
	})
	del := map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationDelete}}
	if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, del, false); err != nil {
		t.Fatalf("IncrementalAlterConfig DELETE: %v", err)
	}
	waitFor(ctx, t, "retention.ms back to the default 604800000 (7 days) after DELETE", func() bool {
		e := retentionEntry()
		return e.Value == "604800000" && e.Source != sarama.SourceTopic
	})

	// Records with explicit timestamps one second apart, alternating between the partitions
	// (manual partitioner), so ListOffsets by time has one answer per partition.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	batch := make([]*sarama.ProducerMessage, 0, records)
	for i := 0; i < records; i++ {
		batch = append(batch, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % partitions),
			Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(fmt.Sprint(i)),
			Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	producer := func() sarama.SyncProducer {
		cfg := newConfig()
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		cfg.Net.MaxOpenRequests = 1
		p, err := sarama.NewSyncProducer(bootstrap(t), cfg)
		if err != nil {
			t.Fatalf("sarama.NewSyncProducer: %v", err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}()
	if err := producer.SendMessages(batch); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	// Record 21 (partition 1, its offset 10) is the first of partition 1 at or after base+20.5s;
	// on partition 0 it is record 22, offset 11.
	byTime := offsetsAt(t, adm, topic, partitions, base.Add(20500*time.Millisecond).UnixMilli())
	if byTime[0] != 11 || byTime[1] != 10 {
		t.Fatalf("ListOffsets by time: %v, want partition 0 at 11 and partition 1 at 10", byTime)
	}

	if err := adm.DeleteRecords(topic, map[int32]int64{0: 5}); err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if earliest := offsetsAt(t, adm, topic, partitions, sarama.OffsetOldest); earliest[0] != 5 || earliest[1] != 0 {
		t.Fatalf("earliest offsets after DeleteRecords to 5 on partition 0: %v", earliest)
	}

	brokers, _, err := adm.DescribeCluster()
	if err != nil || len(brokers) == 0 {
		t.Fatalf("DescribeCluster: %v", err)
	}
	dirs, err := adm.DescribeLogDirs([]int32{brokers[0].ID()})
	if err != nil {
		t.Fatalf("DescribeLogDirs: %v", err)
	}
	sizes := map[int32]int64{}
	for _, dir := range dirs[brokers[0].ID()] {
		for _, tp := range dir.Topics {
			if tp.Topic == topic {
				for _, p := range tp.Partitions {
					sizes[p.PartitionID] = p.Size
				}
			}
		}
	}
	if len(sizes) != partitions || sizes[0] <= 0 || sizes[1] <= 0 {
		t.Fatalf("DescribeLogDirs: partition sizes of %s %v, want both partitions with bytes", topic, sizes)
	}

	alter := map[string]map[int32]sarama.OffsetAndMetadata{topic: {0: {Offset: 7, Metadata: "set by admin", LeaderEpoch: -1},
		1: {Offset: 3, LeaderEpoch: -1}}}
	if _, err := adm.AlterConsumerGroupOffsets(group, alter, nil); err != nil {
		t.Fatalf("AlterConsumerGroupOffsets: %v", err)
	}
	if got := committed(t, adm, group, topic, partitions); got[0] != 7 || got[1] != 3 {
		t.Fatalf("committed offsets after AlterConsumerGroupOffsets: %v, want 7 and 3", got)
	}
	if err := adm.DeleteConsumerGroupOffset(group, topic, 0); err != nil {
		t.Fatalf("DeleteConsumerGroupOffset: %v", err)
	}
	if got := committed(t, adm, group, topic, partitions); got[0] != -1 || got[1] != 3 {
		t.Fatalf("committed offsets after DeleteConsumerGroupOffset of partition 0: %v, want -1 and 3", got)
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

// TestStaticMembership: two static members (group instance ids, KIP-345) share a 4-partition
// topic. One stops (a static member sends no LeaveGroup) and starts again with the same instance
// id within the session timeout: it gets its partitions back without a rebalance, so the other
// member's session goes on uninterrupted. Then it stops again and the admin removes it by its
// instance id (RemoveMemberFromConsumerGroup, LeaveGroup v3+): the other member takes over all
// partitions without waiting for the session timeout.
func TestStaticMembership(t *testing.T) {
	const partitions = 4
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	topic := "sarama-static-" + runID
	group := topic
	adm := newAdmin(t)
	createTopic(ctx, t, adm, topic, partitions, nil)
	var mu sync.Mutex
	seen := map[[2]int64]string{}
	var problems []string
	strategy := sarama.NewBalanceStrategyRange()
	a := startStaticMember(t, "A", "instance-a", group, topic, strategy, &mu, seen, &problems)
	b := startStaticMember(t, "B", "instance-b", group, topic, strategy, &mu, seen, &problems)
	defer b.stop(t)
	waitFor(ctx, t, "both members to own 2 partitions", func() bool {
		return a.handler.claimCount() == 2 && b.handler.claimCount() == 2
	})
	state := func(h *groupHandler) (map[int32]bool, int, int32) {
		mu.Lock()
		defer mu.Unlock()
		claims := map[int32]bool{}
		for p := range h.claims {
			claims[p] = true
		}
		return claims, h.setups, h.generation
	}
	claimsA, _, _ := state(a.handler)
	_, setupsB, generationB := state(b.handler)

	a.stop(t)
	a = startStaticMember(t, "A2", "instance-a", group, topic, strategy, &mu, seen, &problems)
	waitFor(ctx, t, "the restarted static member to own 2 partitions", func() bool { return a.handler.claimCount() == 2 })
	claimsA2, _, _ := state(a.handler)
	if fmt.Sprint(claimsA2) != fmt.Sprint(claimsA) {
		t.Errorf("restarted static member owns %v, owned %v before", claimsA2, claimsA)
	}
	// Give a rebalance, if one was (wrongly) started, time to reach member B.
	time.Sleep(4 * time.Second)
	if _, setups, generation := state(b.handler); setups != setupsB || generation != generationB {
		t.Errorf("member B went through a rebalance when A rejoined with its instance id: sessions %d -> %d, generation %d -> %d",
			setupsB, setups, generationB, generation)
	}

	a.stop(t)
	removeStart := time.Now()
	answer, err := adm.RemoveMemberFromConsumerGroup(group, []string{"instance-a"})
	if err != nil {
		t.Fatalf("RemoveMemberFromConsumerGroup: %v", err)
	}
	if !errors.Is(answer.Err, sarama.ErrNoError) || len(answer.Members) != 1 || !errors.Is(answer.Members[0].Err, sarama.ErrNoError) {
		t.Fatalf("RemoveMemberFromConsumerGroup: %+v", answer)
	}
	waitFor(ctx, t, "member B to own all 4 partitions", func() bool { return b.handler.claimCount() == partitions })
	// Sarama's default session timeout is 10 s: a takeover sooner than that came from the removal.
	if took := time.Since(removeStart); took >= 10*time.Second {
		t.Errorf("member B took over after %v, not sooner than the session timeout", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("consumer problems: %v", problems)
	}
}
