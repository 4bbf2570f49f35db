// Consumer groups of the Sarama row: sharing, handing over and resuming from commits, per
// balance strategy, and static membership.

package saramacompat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

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
