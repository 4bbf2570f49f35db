// Package compat is the franz-go (kgo, kadm) row of the client compatibility matrix: the same
// tests, unchanged, against Apache Kafka and against Sluice (scripts/compat-clients.sh). Each
// top-level test or subtest is one row of docs/compatibility.md.
//
// The broker is named by COMPAT_BOOTSTRAP (host:port); without it every test fails (a test that
// did not run is never reported as a pass).
package compat

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Upper bound for one test's broker work; a hung client fails the test instead of the run.
const testTimeout = 90 * time.Second

var runID = fmt.Sprintf("%d", time.Now().UnixNano())

func bootstrap(t *testing.T) string {
	t.Helper()
	b := os.Getenv("COMPAT_BOOTSTRAP")
	if b == "" {
		t.Fatal("COMPAT_BOOTSTRAP (host:port of the broker under test) is not set")
	}
	return b
}

func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap(t))}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t *testing.T) *kadm.Client {
	return kadm.NewClient(newClient(t))
}

// createTopic creates a topic with the given partition count and replication factor 1 and
// deletes it when the test ends.
func createTopic(ctx context.Context, t *testing.T, adm *kadm.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, name)
	})
	waitForTopic(ctx, t, adm, name, partitions)
}

// waitForTopic waits until metadata shows every partition of the topic with a leader.
func waitForTopic(ctx context.Context, t *testing.T, adm *kadm.Client, name string, partitions int32) {
	t.Helper()
	for {
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			if td, ok := md.Topics[name]; ok && td.Err == nil && int32(len(td.Partitions)) == partitions {
				ready := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
				if ready {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s not ready: %v", name, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type sent struct {
	key, value string
	headers    []kgo.RecordHeader
	partition  int32
	offset     int64
}

// consumeAll reads every partition of topic from the start until want records arrived.
func consumeAll(ctx context.Context, t *testing.T, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the timeout", len(got), want)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		got = append(got, fetches.Records()...)
	}
	return got
}

// TestProduceConsumeCodec: an idempotent producer (kgo's default) with acks=all and each
// compression codec writes keyed records with headers to a 3-partition topic; a consumer reads
// them back and every partition holds exactly the records sent to it, in the order sent, with
// key, value and headers intact.
func TestProduceConsumeCodec(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		"zstd":   kgo.ZstdCompression(),
	}
	names := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for _, name := range names {
		codec := codecs[name]
		t.Run(name, func(t *testing.T) {
			const records = 300
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			topic := fmt.Sprintf("franz-codec-%s-%s", name, runID)
			createTopic(ctx, t, newAdmin(t), topic, 3, nil)
			producer := newClient(t,
				kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerBatchCompression(codec),
				kgo.ProducerLinger(5*time.Millisecond))
			want := make([]*sent, records)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var produceErr error
			for i := 0; i < records; i++ {
				s := &sent{
					key:     fmt.Sprintf("key-%d", i%17),
					value:   strings.Repeat(fmt.Sprintf("value-%d;", i), 1+i%7),
					headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(fmt.Sprint(i))}, {Key: "codec", Value: []byte(name)}},
				}
				want[i] = s
				wg.Add(1)
				producer.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(s.key), Value: []byte(s.value), Headers: s.headers},
					func(r *kgo.Record, err error) {
						defer wg.Done()
						mu.Lock()
						defer mu.Unlock()
						if err != nil && produceErr == nil {
							produceErr = err
						}
						s.partition, s.offset = r.Partition, r.Offset
					})
			}
			wg.Wait()
			if produceErr != nil {
				t.Fatalf("produce: %v", produceErr)
			}
			got := consumeAll(ctx, t, topic, records)
			if len(got) != records {
				t.Fatalf("consumed %d records, produced %d", len(got), records)
			}
			byPos := map[[2]int64]*sent{}
			for _, s := range want {
				byPos[[2]int64{int64(s.partition), s.offset}] = s
			}
			lastOffset := map[int32]int64{}
			for _, r := range got {
				s, ok := byPos[[2]int64{int64(r.Partition), r.Offset}]
				if !ok {
					t.Fatalf("consumed a record at %d/%d that no produce acknowledged", r.Partition, r.Offset)
				}
				if prev, seen := lastOffset[r.Partition]; seen && r.Offset <= prev {
					t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
				}
				lastOffset[r.Partition] = r.Offset
				if string(r.Key) != s.key || string(r.Value) != s.value {
					t.Fatalf("record at %d/%d: key %q value %q, sent key %q value %q", r.Partition, r.Offset, r.Key, r.Value, s.key, s.value)
				}
				if fmt.Sprint(r.Headers) != fmt.Sprint(s.headers) {
					t.Fatalf("record at %d/%d: headers %v, sent %v", r.Partition, r.Offset, r.Headers, s.headers)
				}
			}
			// Order per partition: records sent one after another to a partition got increasing offsets.
			last := map[int32]int64{}
			for i, s := range want {
				if prev, ok := last[s.partition]; ok && s.offset <= prev {
					t.Fatalf("record %d landed at offset %d of partition %d, after an earlier record's %d", i, s.offset, s.partition, prev)
				}
				last[s.partition] = s.offset
			}
		})
	}
}

// murmur2 is Kafka's key hash (org.apache.kafka.common.utils.Utils.murmur2), written out here so
// that the test checks kgo's partitioner against Kafka's definition rather than against itself.
func murmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// TestKeyedPartitioning: keyed records land in the partition Kafka's Java client picks
// (toPositive(murmur2(key)) % partitions): the hash is checked against values printed by the
// Java client's own Utils.murmur2, then 200 keyed records are produced with kgo's default
// partitioner to a 6-partition topic and each must sit in its murmur2 partition, consumed back
// from there.
func TestKeyedPartitioning(t *testing.T) {
	// From org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 4.1.1).
	javaHashes := map[string]int32{"21": -973932308, "foobar": -790332482, "abc": 479470107,
		"key-0": 29210041, "key-1": 193331640, "key-2": 852269702, "user-42": 1459644460}
	for key, want := range javaHashes {
		if got := murmur2([]byte(key)); got != want {
			t.Fatalf("murmur2(%q) = %d, Java client's is %d", key, got, want)
		}
	}
	const partitions, records = 6, 200
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	topic := "franz-keyed-" + runID
	createTopic(ctx, t, newAdmin(t), topic, partitions, nil)
	producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	expected := map[string]int32{}
	for i := 0; i < records; i++ {
		key := fmt.Sprintf("user-%d", i%50)
		expected[key] = int32(uint32(murmur2([]byte(key)))&0x7fffffff) % partitions
		res := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(fmt.Sprint(i))})
		r, err := res.First()
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		if r.Partition != expected[key] {
			t.Fatalf("key %q produced to partition %d; Kafka's murmur2 partition is %d", key, r.Partition, expected[key])
		}
	}
	for _, r := range consumeAll(ctx, t, topic, records) {
		if r.Partition != expected[string(r.Key)] {
			t.Fatalf("key %q consumed from partition %d; expected %d", r.Key, r.Partition, expected[string(r.Key)])
		}
	}
}

// groupMember is one consumer of the group test: it polls, records what it saw and commits it
// before it lets a rebalance happen (kgo.BlockRebalanceOnPoll), so no record it processed can be
// handed to another member uncommitted.
type groupMember struct {
	cl       *kgo.Client
	name     string
	mu       *sync.Mutex
	seen     map[[2]int64]string
	dups     *[]string
	assigned map[int32]bool
	done     chan struct{}
	err      error
}

func startMember(ctx context.Context, t *testing.T, name, group, topic string, balancer kgo.GroupBalancer,
	mu *sync.Mutex, seen map[[2]int64]string, dups *[]string) *groupMember {
	m := &groupMember{name: name, mu: mu, seen: seen, dups: dups, assigned: map[int32]bool{}, done: make(chan struct{})}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap(t)), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range a[topic] {
				m.assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
		}))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			if fetches.IsClientClosed() || ctx.Err() != nil {
				cl.AllowRebalance()
				return
			}
			fetches.EachError(func(tp string, p int32, err error) {
				if m.err == nil {
					m.err = fmt.Errorf("fetch %s[%d]: %w", tp, p, err)
				}
			})
			records := fetches.Records()
			mu.Lock()
			for _, r := range records {
				pos := [2]int64{int64(r.Partition), r.Offset}
				if prev, ok := seen[pos]; ok {
					*dups = append(*dups, fmt.Sprintf("%d/%d by %s and %s", r.Partition, r.Offset, prev, name))
				}
				seen[pos] = name
			}
			mu.Unlock()
			if len(records) > 0 {
				if err := cl.CommitRecords(ctx, records...); err != nil && ctx.Err() == nil && m.err == nil {
					m.err = fmt.Errorf("commit: %w", err)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

func (m *groupMember) assignedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.assigned)
}

// stop leaves the group (LeaveGroup on Close) after its last commit.
func (m *groupMember) stop(cancel context.CancelFunc) {
	cancel()
	<-m.done
	m.cl.Close()
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

// TestConsumerGroup: two members of one group (per balancer: cooperative-sticky, range) share a
// 4-partition topic, each owning partitions; they consume 200 records between them, committing
// what they processed; one member leaves, the other takes over all partitions and consumes 200
// more. Every record is consumed exactly once and the group's committed offsets end at the log
// end.
func TestConsumerGroup(t *testing.T) {
	balancers := []struct {
		name     string
		balancer kgo.GroupBalancer
	}{{"cooperative-sticky", kgo.CooperativeStickyBalancer()}, {"range", kgo.RangeBalancer()}}
	for _, b := range balancers {
		t.Run(b.name, func(t *testing.T) {
			const partitions, batch = 4, 200
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			topic := fmt.Sprintf("franz-group-%s-%s", b.name, runID)
			group := fmt.Sprintf("franz-group-%s-%s", b.name, runID)
			adm := newAdmin(t)
			createTopic(ctx, t, adm, topic, partitions, nil)
			var mu sync.Mutex
			seen := map[[2]int64]string{}
			var dups []string
			ctxA, cancelA := context.WithCancel(ctx)
			ctxB, cancelB := context.WithCancel(ctx)
			a := startMember(ctxA, t, "A", group, topic, b.balancer, &mu, seen, &dups)
			defer a.stop(cancelA)
			bm := startMember(ctxB, t, "B", group, topic, b.balancer, &mu, seen, &dups)
			bStopped := false
			defer func() {
				if !bStopped {
					bm.stop(cancelB)
				}
			}()
			waitFor(ctx, t, "both members to own 2 partitions", func() bool {
				return a.assignedCount() == 2 && bm.assignedCount() == 2
			})
			producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()))
			produce := func(from int) {
				for i := from; i < from+batch; i++ {
					if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
						t.Fatalf("produce: %v", err)
					}
				}
			}
			count := func(member string) int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, who := range seen {
					if member == "" || who == member {
						n++
					}
				}
				return n
			}
			produce(0)
			waitFor(ctx, t, "the first 200 records", func() bool { return count("") >= batch })
			if count("A") == 0 || count("B") == 0 {
				t.Fatalf("records split A=%d B=%d: both members should have consumed", count("A"), count("B"))
			}
			bm.stop(cancelB)
			bStopped = true
			waitFor(ctx, t, "A to own all partitions after B left", func() bool { return a.assignedCount() == partitions })
			beforeA := count("A")
			produce(batch)
			waitFor(ctx, t, "the second 200 records", func() bool { return count("") >= 2*batch })
			time.Sleep(500 * time.Millisecond) // any duplicate delivery would arrive in this time
			mu.Lock()
			total, dupList := len(seen), append([]string(nil), dups...)
			mu.Unlock()
			if len(dupList) > 0 {
				t.Fatalf("records consumed twice: %v", dupList)
			}
			if total != 2*batch {
				t.Fatalf("consumed %d distinct records, produced %d", total, 2*batch)
			}
			if count("A")-beforeA != batch {
				t.Fatalf("A consumed %d of the second batch, want %d", count("A")-beforeA, batch)
			}
			if a.err != nil || bm.err != nil {
				t.Fatalf("member errors: A=%v B=%v", a.err, bm.err)
			}
			committed, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatalf("fetch offsets: %v", err)
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatalf("list end offsets: %v", err)
			}
			for p := int32(0); p < partitions; p++ {
				c, ok := committed.Lookup(topic, p)
				e, _ := ends.Lookup(topic, p)
				if !ok || c.At != e.Offset {
					t.Fatalf("partition %d: committed %v, log end %d", p, c.At, e.Offset)
				}
			}
		})
	}
}

// TestAdminTopics: kadm creates a topic with a config, lists it, describes its partitions
// (count, leader, replicas), adds partitions and deletes it; after the delete it is no longer
// listed.
func TestAdminTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-admin-" + runID
	retention := "3600000"
	resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": &retention}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	dup, err := adm.CreateTopic(ctx, 3, 1, nil, topic)
	if err == nil && dup.Err == nil {
		t.Fatalf("creating %s a second time succeeded", topic)
	}
	waitForTopic(ctx, t, adm, topic, 3)
	listed, err := adm.ListTopics(ctx)
	if err != nil || !listed.Has(topic) {
		t.Fatalf("list topics: %v; %s listed: %v", err, topic, listed.Has(topic))
	}
	described, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	td := described[topic]
	if td.Err != nil || len(td.Partitions) != 3 {
		t.Fatalf("describe %s: err %v, %d partitions", topic, td.Err, len(td.Partitions))
	}
	for _, p := range td.Partitions {
		if p.Leader < 0 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Fatalf("partition %d: leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}
	if _, err := adm.CreatePartitions(ctx, 2, topic); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	waitForTopic(ctx, t, adm, topic, 5)
	del, err := adm.DeleteTopics(ctx, topic)
	if err != nil || del[topic].Err != nil {
		t.Fatalf("delete: %v %v", err, del[topic].Err)
	}
	waitFor(ctx, t, "the deleted topic to leave the listing", func() bool {
		l, err := adm.ListTopics(ctx)
		return err == nil && !l.Has(topic)
	})
}

// TestAdminDescribeConfigs: DescribeConfigs of a topic reports a config set at creation as
// DYNAMIC_TOPIC_CONFIG with its value and an unset one (cleanup.policy) as DEFAULT_CONFIG with
// Kafka's default "delete"; AlterTopicConfigs (incremental) changes a value, and a describe
// afterwards shows it.
func TestAdminDescribeConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-configs-" + runID
	retention := "7200000"
	createTopic(ctx, t, adm, topic, 1, map[string]*string{"retention.ms": &retention})
	lookup := func() map[string]kadm.Config {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
		}
		out := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			out[c.Key] = c
		}
		return out
	}
	configs := lookup()
	if c := configs["retention.ms"]; c.MaybeValue() != retention || c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("retention.ms: value %q source %v", c.MaybeValue(), c.Source)
	}
	if c := configs["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source.String() != "DEFAULT_CONFIG" {
		t.Fatalf("cleanup.policy: value %q source %v", c.MaybeValue(), c.Source)
	}
	newRetention := "10800000"
	altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &newRetention}}, topic)
	if err != nil {
		t.Fatalf("alter configs: %v", err)
	}
	for _, a := range altered {
		if a.Err != nil {
			t.Fatalf("alter configs of %s: %v", a.Name, a.Err)
		}
	}
	// Kafka applies an altered config through its metadata log, so a describe right after the
	// alter may still show the old value: wait for the new one.
	waitFor(ctx, t, "retention.ms "+newRetention+" after the alter", func() bool {
		c := lookup()["retention.ms"]
		return c.MaybeValue() == newRetention
	})
}

// TestAdminListOffsets: on a partition holding 10 records with known timestamps, ListOffsets
// gives start 0, end 10, and the offset of the first record at or after a timestamp.
func TestAdminListOffsets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-offsets-" + runID
	createTopic(ctx, t, adm, topic, 1, nil)
	producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	check := func(what string, listed kadm.ListedOffsets, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		o, ok := listed.Lookup(topic, 0)
		if !ok || o.Err != nil || o.Offset != want {
			t.Fatalf("%s: offset %d (err %v), want %d", what, o.Offset, o.Err, want)
		}
	}
	start, err := adm.ListStartOffsets(ctx, topic)
	check("start offsets", start, err, 0)
	end, err := adm.ListEndOffsets(ctx, topic)
	check("end offsets", end, err, 10)
	byTime, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4500*time.Millisecond).UnixMilli(), topic)
	check("offset after a timestamp", byTime, err, 5)
}

// TestAdminGroupsAndLag: a group commits offsets 6 of 10 and 10 of 10 on a 2-partition topic
// and leaves; kadm lists the group, describes it (Empty, no members) and computes its lag:
// 4 and 0.
func TestAdminGroupsAndLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-lag-" + runID
	group := "franz-lag-" + runID
	createTopic(ctx, t, adm, topic, 2, nil)
	producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 10; i++ {
			if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	producer.Close()
	member := newClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := 0
	for seen < 20 {
		fetches := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 20", seen)
		}
		seen += len(fetches.Records())
	}
	offsets := map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 6}, 1: {Epoch: -1, Offset: 10}}}
	var commitErr error
	member.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && commitErr == nil {
					commitErr = e
				}
			}
		}
	})
	if err := commitErr; err != nil {
		t.Fatalf("commit: %v", err)
	}
	member.Close()

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if _, ok := listed[group]; !ok {
		t.Fatalf("group %s not listed among %v", group, listed.Groups())
	}
	var described kadm.DescribedGroups
	waitFor(ctx, t, "the group to be Empty after its member left", func() bool {
		described, err = adm.DescribeGroups(ctx, group)
		return err == nil && described[group].State == "Empty"
	})
	if d := described[group]; d.Err != nil || len(d.Members) != 0 || d.ProtocolType != "consumer" {
		t.Fatalf("describe %s: err %v members %d protocol type %q", group, d.Err, len(d.Members), d.ProtocolType)
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatalf("lag: %v", err)
	}
	gl := lags[group]
	if gl.Error() != nil {
		t.Fatalf("lag of %s: %v", group, gl.Error())
	}
	got := map[int32]int64{}
	for _, l := range gl.Lag.Sorted() {
		if l.Topic == topic {
			got[l.Partition] = l.Lag
		}
	}
	want := map[int32]int64{0: 4, 1: 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lag %v, want %v", got, want)
	}
}

// TestAdminDeleteRecords: kadm.DeleteRecords moves the log start of a 10-record partition to
// offset 4; ListStartOffsets then reports 4 and a consumer from the start reads offsets 4..9.
func TestAdminDeleteRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-delete-records-" + runID
	createTopic(ctx, t, adm, topic, 1, nil)
	producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := 0; i < 10; i++ {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	to := kadm.Offsets{}
	to.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1})
	deleted, err := adm.DeleteRecords(ctx, to)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	d, ok := deleted.Lookup(topic, 0)
	if !ok || d.Err != nil || d.LowWatermark != 4 {
		t.Fatalf("delete records: low watermark %d (err %v), want 4", d.LowWatermark, d.Err)
	}
	start, err := adm.ListStartOffsets(ctx, topic)
	if o, _ := start.Lookup(topic, 0); err != nil || o.Offset != 4 {
		t.Fatalf("start offset after delete: %d (%v), want 4", o.Offset, err)
	}
	got := consumeAll(ctx, t, topic, 6)
	if got[0].Offset != 4 || string(got[0].Value) != "4" {
		t.Fatalf("first record after delete: offset %d value %q, want 4", got[0].Offset, got[0].Value)
	}
}

// TestAdminClusterAndBrokerConfigs: kadm.BrokerMetadata names one broker and a controller,
// and DescribeBrokerConfigs of that broker reports num.partitions (a positive integer, from
// the broker's static or default config).
func TestAdminClusterAndBrokerConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("broker metadata: %v", err)
	}
	if len(md.Brokers) != 1 || md.Controller < 0 || md.Cluster == "" {
		t.Fatalf("metadata: brokers %v controller %d cluster %q", md.Brokers, md.Controller, md.Cluster)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, md.Brokers[0].NodeID)
	if err != nil {
		t.Fatalf("describe broker configs: %v", err)
	}
	var found bool
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe broker configs of %s: %v", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != "num.partitions" {
				continue
			}
			found = true
			var n int
			if _, err := fmt.Sscan(c.MaybeValue(), &n); err != nil || n < 1 {
				t.Fatalf("num.partitions = %q", c.MaybeValue())
			}
			if s := c.Source.String(); s != "STATIC_BROKER_CONFIG" && s != "DEFAULT_CONFIG" {
				t.Fatalf("num.partitions source %s", s)
			}
		}
	}
	if !found {
		t.Fatalf("num.partitions not among the broker's configs")
	}
}

// TestTransactions: a transactional producer commits one transaction and aborts another; a
// read_committed consumer sees the committed record only. A broker without transactions must
// make the producer fail at once (the failure names the elapsed time), not hang.
func TestTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-txn-" + runID
	createTopic(ctx, t, adm, topic, 1, nil)
	started := time.Now()
	producer := newClient(t, kgo.TransactionalID("franz-txn-"+runID), kgo.DefaultProduceTopic(topic))
	txn := func(value string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction after %v: %v", time.Since(started).Round(time.Millisecond), err)
		}
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("transactional produce failed after %v: %v", time.Since(started).Round(time.Millisecond), err)
		}
		if err := producer.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction after %v: %v", time.Since(started).Round(time.Millisecond), err)
		}
	}
	txn("aborted", kgo.TryAbort)
	txn("committed", kgo.TryCommit)
	reader := newClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for {
		fetches := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no committed record read")
		}
		for _, r := range fetches.Records() {
			if string(r.Value) != "committed" {
				t.Fatalf("read_committed consumer read %q", r.Value)
			}
			return
		}
	}
}

// TestAdminOffsetForLeaderEpoch: OffsetForLeaderEpoch (what consumers use to detect truncation)
// for a partition's current leader epoch, as Metadata reports it, answers that epoch and the
// log end offset (5 after 5 records).
func TestAdminOffsetForLeaderEpoch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-epoch-" + runID
	createTopic(ctx, t, adm, topic, 1, nil)
	producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := 0; i < 5; i++ {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	epoch := md.Topics[topic].Partitions[0].LeaderEpoch
	if epoch < 0 {
		t.Fatalf("metadata reports leader epoch %d", epoch)
	}
	req := kadm.OffsetForLeaderEpochRequest{}
	req.Add(topic, 0, epoch)
	resp, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatalf("offset for leader epoch: %v", err)
	}
	o := resp[topic][0]
	if o.Err != nil || o.LeaderEpoch != epoch || o.EndOffset != 5 {
		t.Fatalf("offset for leader epoch %d: epoch %d end %d err %v; want epoch %d end 5", epoch, o.LeaderEpoch, o.EndOffset, o.Err, epoch)
	}
}

// TestAdminIncrementalAppendSubtract: IncrementalAlterConfigs APPEND adds "compact" to a
// topic's cleanup.policy (delete -> delete,compact) and SUBTRACT removes "delete" again
// (-> compact), as the list-valued config ops of KIP-339 define.
func TestAdminIncrementalAppendSubtract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-append-" + runID
	policy := "delete"
	createTopic(ctx, t, adm, topic, 1, map[string]*string{"cleanup.policy": &policy})
	alter := func(op kadm.IncrementalOp, value, want string) {
		t.Helper()
		resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: "cleanup.policy", Value: &value}}, topic)
		if err != nil {
			t.Fatalf("alter (op %d %s): %v", op, value, err)
		}
		for _, r := range resp {
			if r.Err != nil {
				t.Fatalf("alter (op %d %s) of %s: %v", op, value, r.Name, r.Err)
			}
		}
		// Kafka applies an altered config through its metadata log, so a describe right after
		// the alter may still show the old value: wait for the wanted one.
		waitFor(ctx, t, fmt.Sprintf("cleanup.policy %q after op %d %s", want, op, value), func() bool {
			rcs, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				t.Fatalf("describe: %v", err)
			}
			rc, _ := rcs.On(topic, nil)
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" {
					return c.MaybeValue() == want
				}
			}
			return false
		})
	}
	alter(kadm.AppendConfig, "compact", "delete,compact")
	alter(kadm.SubtractConfig, "delete", "compact")
}

// TestNextGenConsumerGroup: a member using KIP-848's protocol (kgo.ServerSideBalancer, range
// assignor on the broker) consumes 50 records from a 2-partition topic and commits them; the
// group is then listed with group type "consumer" (not "classic") and its committed offsets
// cover every record.
func TestNextGenConsumerGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t)
	topic := "franz-848-" + runID
	group := "franz-848-" + runID
	createTopic(ctx, t, adm, topic, 2, nil)
	producer := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := 0; i < 50; i++ {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	member := newClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := 0
	for seen < 50 {
		fetches := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 50", seen)
		}
		seen += len(fetches.Records())
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if g, ok := listed[group]; !ok || g.GroupType != "consumer" {
		t.Fatalf("group %s listed %v with type %q, want a KIP-848 \"consumer\" group", group, ok, g.GroupType)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	var total int64
	for p := int32(0); p < 2; p++ {
		c, _ := committed.Lookup(topic, p)
		total += c.At
	}
	if total != 50 {
		t.Fatalf("committed offsets sum to %d, want 50", total)
	}
}
