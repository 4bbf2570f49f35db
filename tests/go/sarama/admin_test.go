// ClusterAdmin calls of the Sarama row: topics, configs, groups, cluster, records and offsets.

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
