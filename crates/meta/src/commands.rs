//! The metadata commands and their pure, deterministic application to a [`MetadataView`].
//!
//! A command is what a broker proposes through Raft. Once committed, every replica calls
//! [`MetadataView::apply`] with it in log order. `apply` validates first and mutates only when
//! the whole command is valid, so a rejected command leaves the view untouched; and it reads
//! nothing but the view and the command (no clock, no randomness), so every replica reaches the
//! same state. Randomness that a command needs (a new topic id, a broker's incarnation id) is
//! chosen by the proposer and carried in the command.
//!
//! Partition changes use Kafka's optimistic concurrency: a proposal names the leader epoch and
//! partition epoch it was computed from; if the partition changed since, the proposal is stale
//! and is rejected rather than applied.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use crate::broker_config::BrokerConfigScope;
use crate::error::CommandError;
use crate::limits::BROKER_ADDRESS_BYTES_MAX;
use crate::limits::BROKER_LISTENERS_MAX;
use crate::limits::BROKER_RACK_BYTES_MAX;
use crate::limits::PRODUCER_IDS_PER_BLOCK;
use crate::limits::TOPIC_NAME_BYTES_MAX;
use crate::limits::TOPIC_PARTITIONS_MAX;
use crate::placement::place_partitions;
use crate::placement::BrokerLoad;
use crate::security::AclBinding;
use crate::security::AclFilter;
use crate::security::QuotaEntity;
use crate::security::ScramCredential;
use crate::security::ScramMechanism;
use crate::topic_config::TopicConfig;
use crate::view::BrokerId;
use crate::view::BrokerRecord;
use crate::view::MetadataView;
use crate::view::PartitionRecord;
use crate::view::TopicRecord;

/// A change to the cluster metadata, proposed through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A broker (re-)registers at start. Registration makes it live (unfenced) and lets it take
    /// leadership of offline partitions whose ISR it is in.
    RegisterBroker {
        /// Broker id.
        broker_id: BrokerId,
        /// Random id of this broker process; the same id again is an idempotent retry.
        incarnation_id: Uuid,
        /// Address Kafka clients use.
        kafka_addr: String,
        /// Address other brokers reach this broker's Kafka listener at, for follower fetches
        /// (`--replication-advertise`, by default the address clients use).
        internal_addr: String,
        /// Rack, if configured.
        rack: Option<String>,
    },
    /// The controller fences a broker that missed its heartbeat deadline: it leaves every ISR
    /// (unless it is the last member) and its partitions get a new leader from the ISR.
    FenceBroker {
        /// Broker id.
        broker_id: BrokerId,
        /// The registration being fenced.
        broker_epoch: i64,
    },
    /// A fenced broker is live again (heartbeats resumed) and may lead offline partitions.
    UnfenceBroker {
        /// Broker id.
        broker_id: BrokerId,
        /// The registration being unfenced.
        broker_epoch: i64,
    },
    /// Create a topic; replicas are placed over live brokers when the command is applied.
    CreateTopic {
        /// Topic name (Kafka rules: `[a-zA-Z0-9._-]`, at most 249 bytes, not `.` or `..`).
        name: String,
        /// Topic id chosen by the proposer.
        topic_id: Uuid,
        /// Partitions, at least 1.
        partition_count: u32,
        /// Replicas per partition, at most the live broker count.
        replication_factor: u16,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic and its partitions.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Grow a topic to `partition_count` partitions.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// New total partition count; must exceed the current one.
        partition_count: u32,
    },
    /// Incrementally alter a topic's config overrides.
    AlterTopicConfigs {
        /// Topic name.
        name: String,
        /// Keys to set.
        set: BTreeMap<String, String>,
        /// Keys to reset to their defaults.
        delete: Vec<String>,
    },
    /// A partition leader changes the ISR (Kafka's AlterPartition).
    ChangeIsr {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
        /// The proposing leader.
        leader: BrokerId,
        /// Leader epoch the proposal was computed under.
        leader_epoch: i32,
        /// Partition epoch the proposal was computed from.
        partition_epoch: i32,
        /// The new ISR; must contain the leader, only live replicas may be added.
        isr: Vec<BrokerId>,
    },
    /// Elect a leader: `preferred` if given, else the first live ISR member in replica order.
    ElectLeader {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
        /// Partition epoch the request was computed from.
        partition_epoch: i32,
        /// The broker to elect, if the caller has one in mind.
        preferred: Option<BrokerId>,
    },
    /// A broker asks for a block of producer ids for idempotent producers.
    AllocateProducerIds {
        /// Asking broker.
        broker_id: BrokerId,
        /// Its current registration.
        broker_epoch: i64,
    },
    /// Unclean election (`unclean.leader.election.enable`, or ElectLeaders with type unclean):
    /// only when no ISR member is live, a live out-of-sync replica becomes leader and the sole
    /// ISR member. What it had not copied from the last leader is lost.
    ElectLeaderUnclean {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
        /// Partition epoch the request was computed from.
        partition_epoch: i32,
        /// The live replica to elect.
        leader: BrokerId,
    },
    /// Start moving a partition to `target` replicas (Kafka's AlterPartitionReassignments,
    /// KIP-455), replacing any reassignment in progress. Adding replicas join the replica set
    /// at once and fetch from the leader; the state machine completes the move when every
    /// target replica is in the ISR (see [`crate::reassignment`]). Since format version 4.
    StartReassignment {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
        /// The replicas wanted, preferred leader first: distinct, registered brokers.
        target: Vec<BrokerId>,
    },
    /// Cancel a partition's reassignment: back to the original replicas, the adding ones
    /// removed from the replicas and the ISR. Since format version 4.
    CancelReassignment {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
    },
    /// Create a topic with the replicas given for each partition (Kafka's CreateTopics with
    /// `assignments`): partition `i` gets `assignment[i]`, preferred leader first. Every
    /// partition has the same number of distinct, registered brokers; its ISR is the live
    /// ones and its leader the first live one. Since format version 5.
    CreateTopicAssigned {
        /// Topic name (as [`Command::CreateTopic`]).
        name: String,
        /// Topic id chosen by the proposer.
        topic_id: Uuid,
        /// Replicas of each partition, in partition order.
        assignment: Vec<Vec<BrokerId>>,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// Add partitions on the replicas given (Kafka's CreatePartitions with `assignments`): the
    /// new partition `current + i` gets `assignment[i]`, as wide as the topic's partitions, with
    /// the checks of [`Command::CreateTopicAssigned`]. Since format version 5.
    CreatePartitionsAssigned {
        /// Topic name.
        name: String,
        /// Replicas of each new partition, in partition order.
        assignment: Vec<Vec<BrokerId>>,
    },
    /// [`Command::RegisterBroker`] with the broker's named listeners (`--listeners`). Since
    /// format version 6; what a broker of this version proposes.
    RegisterBrokerListeners {
        /// Broker id.
        broker_id: BrokerId,
        /// Random id of this broker process; the same id again is an idempotent retry.
        incarnation_id: Uuid,
        /// Address of the default listener, for clients of older metadata paths.
        kafka_addr: String,
        /// Address other brokers reach this broker's Kafka listener at.
        internal_addr: String,
        /// Rack, if configured.
        rack: Option<String>,
        /// Advertised `host:port` by listener name.
        listeners: BTreeMap<String, String>,
    },
    /// Set a user's SCRAM credential for one mechanism (AlterUserScramCredentials upsertion).
    /// Since format version 6.
    UpsertScramCredential {
        /// User name.
        user: String,
        /// Mechanism.
        mechanism: ScramMechanism,
        /// The salted credential (never the password).
        credential: ScramCredential,
    },
    /// Remove a user's SCRAM credential for one mechanism. Since format version 6.
    DeleteScramCredential {
        /// User name.
        user: String,
        /// Mechanism.
        mechanism: ScramMechanism,
    },
    /// Add ACL bindings (CreateAcls); all or none. Since format version 6.
    CreateAcls {
        /// The bindings.
        bindings: Vec<AclBinding>,
    },
    /// Remove the ACL bindings each filter matches (DeleteAcls). Since format version 6.
    DeleteAcls {
        /// The filters.
        filters: Vec<AclFilter>,
    },
    /// Set and remove client-quota values of one entity (AlterClientQuotas). Since format
    /// version 6.
    AlterClientQuota {
        /// Whom the quota applies to.
        entity: QuotaEntity,
        /// Keys to set, values as `f64` bits.
        set: BTreeMap<String, u64>,
        /// Keys to remove.
        remove: Vec<String>,
    },
    /// Set and delete dynamic broker configs of one broker, or of every broker
    /// ([`crate::broker_config`]; AlterConfigs and IncrementalAlterConfigs on a BROKER
    /// resource). All or nothing. Since format version 7.
    AlterBrokerConfigs {
        /// Whom the values apply to.
        scope: BrokerConfigScope,
        /// Keys to set, with their values.
        set: BTreeMap<String, String>,
        /// Keys to delete.
        delete: Vec<String>,
    },
}

/// What an applied command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// The broker is registered with this epoch.
    BrokerRegistered {
        /// Epoch of the registration.
        broker_epoch: i64,
    },
    /// The broker is fenced; `partitions_changed` partitions got a new leader or ISR.
    BrokerFenced {
        /// Partitions whose leader or ISR changed.
        partitions_changed: usize,
    },
    /// The broker is live; `partitions_changed` offline partitions got it as leader.
    BrokerUnfenced {
        /// Partitions whose leader changed.
        partitions_changed: usize,
    },
    /// The topic exists with these partitions.
    TopicCreated {
        /// Topic id.
        topic_id: Uuid,
        /// Its partitions.
        partitions: Vec<PartitionRecord>,
    },
    /// The topic is gone.
    TopicDeleted {
        /// Id of the deleted topic.
        topic_id: Uuid,
    },
    /// New partitions were added.
    PartitionsCreated {
        /// Topic id.
        topic_id: Uuid,
        /// Only the new partitions.
        partitions: Vec<PartitionRecord>,
    },
    /// The topic's config is now this.
    TopicConfigsAltered {
        /// Topic id.
        topic_id: Uuid,
        /// Resolved config.
        config: TopicConfig,
    },
    /// The partition is now this (leader or ISR changed, or nothing needed changing).
    PartitionChanged {
        /// Topic id.
        topic_id: Uuid,
        /// New state.
        partition: PartitionRecord,
    },
    /// Producer ids `first_producer_id .. first_producer_id + count` belong to the asker.
    ProducerIdsAllocated {
        /// First id of the block.
        first_producer_id: i64,
        /// Ids in the block.
        count: u32,
    },
    /// A SCRAM credential, ACL set or quota changed as asked.
    SecurityChanged,
    /// Dynamic broker configs changed as asked.
    BrokerConfigsAltered,
    /// The bindings each DeleteAcls filter removed, in filter order.
    AclsDeleted {
        /// Removed bindings per filter.
        deleted: Vec<Vec<AclBinding>>,
    },
}

impl MetadataView {
    /// Validates and applies one committed command. On error the view is unchanged.
    pub fn apply(&mut self, command: &Command) -> Result<CommandOutcome, CommandError> {
        match command {
            Command::RegisterBroker { broker_id, incarnation_id, kafka_addr, internal_addr, rack } => {
                self.register_broker(*broker_id, *incarnation_id, kafka_addr, internal_addr, rack, &BTreeMap::new())
            }
            Command::RegisterBrokerListeners {
                broker_id,
                incarnation_id,
                kafka_addr,
                internal_addr,
                rack,
                listeners,
            } => self.register_broker(*broker_id, *incarnation_id, kafka_addr, internal_addr, rack, listeners),
            Command::FenceBroker { broker_id, broker_epoch } => self.fence_broker(*broker_id, *broker_epoch),
            Command::UnfenceBroker { broker_id, broker_epoch } => self.unfence_broker(*broker_id, *broker_epoch),
            Command::CreateTopic { name, topic_id, partition_count, replication_factor, configs } => {
                self.create_topic(name, *topic_id, *partition_count, *replication_factor, configs)
            }
            Command::DeleteTopic { name } => self.delete_topic(name),
            Command::CreatePartitions { name, partition_count } => self.create_partitions(name, *partition_count),
            Command::AlterTopicConfigs { name, set, delete } => self.alter_topic_configs(name, set, delete),
            Command::ChangeIsr { topic_id, partition, leader, leader_epoch, partition_epoch, isr } => {
                self.change_isr(*topic_id, *partition, *leader, *leader_epoch, *partition_epoch, isr)
            }
            Command::ElectLeader { topic_id, partition, partition_epoch, preferred } => {
                self.elect_leader(*topic_id, *partition, *partition_epoch, *preferred)
            }
            Command::AllocateProducerIds { broker_id, broker_epoch } => {
                self.allocate_producer_ids(*broker_id, *broker_epoch)
            }
            Command::ElectLeaderUnclean { topic_id, partition, partition_epoch, leader } => {
                self.elect_leader_unclean(*topic_id, *partition, *partition_epoch, *leader)
            }
            Command::StartReassignment { topic_id, partition, target } => {
                self.start_reassignment(*topic_id, *partition, target)
            }
            Command::CancelReassignment { topic_id, partition } => self.cancel_reassignment(*topic_id, *partition),
            Command::CreateTopicAssigned { name, topic_id, assignment, configs } => {
                self.create_topic_assigned(name, *topic_id, assignment, configs)
            }
            Command::CreatePartitionsAssigned { name, assignment } => self.create_partitions_assigned(name, assignment),
            Command::UpsertScramCredential { user, mechanism, credential } => {
                self.security.upsert_scram(user, *mechanism, credential).map(|()| CommandOutcome::SecurityChanged)
            }
            Command::DeleteScramCredential { user, mechanism } => {
                self.security.delete_scram(user, *mechanism).map(|()| CommandOutcome::SecurityChanged)
            }
            Command::CreateAcls { bindings } => {
                self.security.create_acls(bindings).map(|()| CommandOutcome::SecurityChanged)
            }
            Command::DeleteAcls { filters } => {
                Ok(CommandOutcome::AclsDeleted { deleted: self.security.delete_acls(filters) })
            }
            Command::AlterClientQuota { entity, set, remove } => {
                self.security.alter_quota(entity, set, remove).map(|()| CommandOutcome::SecurityChanged)
            }
            Command::AlterBrokerConfigs { scope, set, delete } => {
                self.broker_configs.alter(*scope, set, delete).map(|()| CommandOutcome::BrokerConfigsAltered)
            }
        }
    }

    fn register_broker(
        &mut self,
        broker_id: BrokerId,
        incarnation_id: Uuid,
        kafka_addr: &str,
        internal_addr: &str,
        rack: &Option<String>,
        listeners: &BTreeMap<String, String>,
    ) -> Result<CommandOutcome, CommandError> {
        if broker_id < 0 {
            return Err(CommandError::InvalidRequest { reason: format!("negative broker id {broker_id}") });
        }
        if listeners.len() > BROKER_LISTENERS_MAX
            || listeners.keys().any(|name| name.is_empty() || name.len() > BROKER_ADDRESS_BYTES_MAX)
        {
            return Err(CommandError::InvalidRequest {
                reason: format!("a broker has at most {BROKER_LISTENERS_MAX} listeners, each named"),
            });
        }
        for address in [kafka_addr, internal_addr].into_iter().chain(listeners.values().map(String::as_str)) {
            if address.is_empty() || address.len() > BROKER_ADDRESS_BYTES_MAX {
                return Err(CommandError::InvalidRequest {
                    reason: format!("broker address must be 1..={BROKER_ADDRESS_BYTES_MAX} bytes"),
                });
            }
        }
        if rack.as_ref().is_some_and(|rack| rack.is_empty() || rack.len() > BROKER_RACK_BYTES_MAX) {
            return Err(CommandError::InvalidRequest {
                reason: format!("broker rack must be 1..={BROKER_RACK_BYTES_MAX} bytes"),
            });
        }
        let restarted = match self.brokers.get(&broker_id) {
            // A retried registration of the same process: report the epoch it already has.
            Some(existing) if existing.incarnation_id == incarnation_id => {
                return Ok(CommandOutcome::BrokerRegistered { broker_epoch: existing.broker_epoch });
            }
            Some(_) => true,
            None => false,
        };
        if restarted {
            // A new process under this id may have lost what its last one had not synced (a
            // power loss, an empty disk): it leaves every ISR it was in, except as the last
            // member, and leads nothing until it has caught up and the leader adds it back
            // (as Kafka's KIP-903 keeps an ISR from naming a previous incarnation).
            self.leave_partitions(broker_id);
        }
        let broker_epoch = self.next_broker_epoch;
        self.next_broker_epoch += 1;
        self.brokers.insert(
            broker_id,
            BrokerRecord {
                broker_id,
                incarnation_id,
                broker_epoch,
                kafka_addr: kafka_addr.to_string(),
                internal_addr: internal_addr.to_string(),
                rack: rack.clone(),
                fenced: false,
                listeners: listeners.clone(),
            },
        );
        self.lead_offline_partitions(broker_id);
        self.complete_reassignments();
        Ok(CommandOutcome::BrokerRegistered { broker_epoch })
    }

    fn check_broker_epoch(&self, broker_id: BrokerId, broker_epoch: i64) -> Result<(), CommandError> {
        let broker = self.brokers.get(&broker_id).ok_or(CommandError::UnknownBroker { broker_id })?;
        if broker.broker_epoch != broker_epoch {
            return Err(CommandError::StaleBrokerEpoch {
                broker_id,
                proposed: broker_epoch,
                current: broker.broker_epoch,
            });
        }
        Ok(())
    }

    fn fence_broker(&mut self, broker_id: BrokerId, broker_epoch: i64) -> Result<CommandOutcome, CommandError> {
        self.check_broker_epoch(broker_id, broker_epoch)?;
        self.brokers.get_mut(&broker_id).expect("checked above").fenced = true;
        let partitions_changed = self.leave_partitions(broker_id);
        Ok(CommandOutcome::BrokerFenced { partitions_changed })
    }

    /// `broker_id` leaves every ISR but as its last member, and every partition it led gets
    /// the first live ISR member as leader (or none); returns the partitions changed.
    fn leave_partitions(&mut self, broker_id: BrokerId) -> usize {
        let mut partitions_changed = 0;
        let live: Vec<BrokerId> = self.live_brokers().into_iter().filter(|b| *b != broker_id).collect();
        for partition in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
            let before = partition.clone();
            // Leave the ISR unless this is the last member: the last in-sync replica must be
            // remembered so that no out-of-sync replica is elected (no unclean election).
            if partition.isr.len() > 1 {
                partition.isr.retain(|b| *b != broker_id);
            }
            if partition.leader == Some(broker_id) {
                partition.leader = first_eligible(&partition.replicas, &partition.isr, &live);
                partition.leader_epoch += 1;
            }
            if *partition != before {
                partition.partition_epoch += 1;
                partitions_changed += 1;
            }
        }
        partitions_changed
    }

    fn unfence_broker(&mut self, broker_id: BrokerId, broker_epoch: i64) -> Result<CommandOutcome, CommandError> {
        self.check_broker_epoch(broker_id, broker_epoch)?;
        self.brokers.get_mut(&broker_id).expect("checked above").fenced = false;
        let partitions_changed = self.lead_offline_partitions(broker_id);
        self.complete_reassignments();
        Ok(CommandOutcome::BrokerUnfenced { partitions_changed })
    }

    /// Makes `broker_id` leader of every leaderless partition whose ISR contains it.
    fn lead_offline_partitions(&mut self, broker_id: BrokerId) -> usize {
        let mut changed = 0;
        for partition in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
            if partition.leader.is_none() && partition.isr.contains(&broker_id) {
                partition.leader = Some(broker_id);
                partition.leader_epoch += 1;
                partition.partition_epoch += 1;
                changed += 1;
            }
        }
        changed
    }

    fn create_topic(
        &mut self,
        name: &str,
        topic_id: Uuid,
        partition_count: u32,
        replication_factor: u16,
        configs: &BTreeMap<String, String>,
    ) -> Result<CommandOutcome, CommandError> {
        self.check_new_topic(name, topic_id)?;
        validate_partition_count(partition_count, 0)?;
        let config = TopicConfig::from_overrides(configs)?;
        let placements =
            place_partitions(&self.live_brokers(), &self.racks(), &self.load(), partition_count, replication_factor)?;
        let partitions: Vec<PartitionRecord> =
            placements.into_iter().enumerate().map(|(index, replicas)| new_partition(index as u32, replicas)).collect();
        Ok(self.insert_topic(name, topic_id, replication_factor, configs, config, partitions))
    }

    fn create_topic_assigned(
        &mut self,
        name: &str,
        topic_id: Uuid,
        assignment: &[Vec<BrokerId>],
        configs: &BTreeMap<String, String>,
    ) -> Result<CommandOutcome, CommandError> {
        self.check_new_topic(name, topic_id)?;
        validate_partition_count(u32::try_from(assignment.len()).unwrap_or(u32::MAX), 0)?;
        let config = TopicConfig::from_overrides(configs)?;
        let factor = assignment[0].len();
        let partitions = self.assigned_partitions(0, assignment, factor)?;
        Ok(self.insert_topic(name, topic_id, factor as u16, configs, config, partitions))
    }

    /// Partitions `first_index..` on the replicas `assignment` gives them, each `factor` wide:
    /// distinct registered brokers, the live ones in the ISR, the first live one leading.
    fn assigned_partitions(
        &self,
        first_index: u32,
        assignment: &[Vec<BrokerId>],
        factor: usize,
    ) -> Result<Vec<PartitionRecord>, CommandError> {
        let invalid = |reason: String| Err(CommandError::InvalidReplicaAssignment { reason });
        let live = self.live_brokers();
        let mut partitions = Vec::with_capacity(assignment.len());
        for (offset, replicas) in assignment.iter().enumerate() {
            let index = first_index + offset as u32;
            self.validate_replica_list(replicas).map_err(|error| CommandError::InvalidReplicaAssignment {
                reason: format!("partition {index}: {error}"),
            })?;
            if replicas.len() != factor {
                return invalid(format!(
                    "partition {index} has {} replicas where the topic's partitions have {factor}",
                    replicas.len()
                ));
            }
            let isr: Vec<BrokerId> = replicas.iter().copied().filter(|b| live.contains(b)).collect();
            if isr.is_empty() {
                return invalid(format!("partition {index}: every broker of {replicas:?} is fenced"));
            }
            partitions.push(PartitionRecord {
                partition: index,
                leader: isr.first().copied(),
                isr,
                replicas: replicas.clone(),
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        Ok(partitions)
    }

    fn create_partitions_assigned(
        &mut self,
        name: &str,
        assignment: &[Vec<BrokerId>],
    ) -> Result<CommandOutcome, CommandError> {
        let topic = self.topics.get(name).ok_or_else(|| CommandError::UnknownTopic { name: name.to_string() })?;
        let current = topic.partitions.len() as u32;
        let added = u32::try_from(assignment.len()).unwrap_or(u32::MAX);
        validate_partition_count(current.saturating_add(added), current)?;
        let factor = topic.partitions.first().map_or(topic.replication_factor as usize, |p| p.replicas.len());
        let added = self.assigned_partitions(current, assignment, factor)?;
        let topic = self.topics.get_mut(name).expect("looked up above");
        topic.partitions.extend(added.iter().cloned());
        Ok(CommandOutcome::PartitionsCreated { topic_id: topic.topic_id, partitions: added })
    }

    /// A new topic's name is valid and neither it nor its id is taken.
    fn check_new_topic(&self, name: &str, topic_id: Uuid) -> Result<(), CommandError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(CommandError::TopicAlreadyExists { name: name.to_string() });
        }
        if topic_id.is_nil() || self.topic_names.contains_key(&topic_id) {
            return Err(CommandError::TopicAlreadyExists { name: topic_id.to_string() });
        }
        Ok(())
    }

    fn insert_topic(
        &mut self,
        name: &str,
        topic_id: Uuid,
        replication_factor: u16,
        configs: &BTreeMap<String, String>,
        config: TopicConfig,
        partitions: Vec<PartitionRecord>,
    ) -> CommandOutcome {
        self.topic_names.insert(topic_id, name.to_string());
        self.topics.insert(
            name.to_string(),
            TopicRecord {
                name: name.to_string(),
                topic_id,
                replication_factor,
                config_overrides: configs.clone(),
                config,
                partitions: partitions.clone(),
            },
        );
        CommandOutcome::TopicCreated { topic_id, partitions }
    }

    fn delete_topic(&mut self, name: &str) -> Result<CommandOutcome, CommandError> {
        let topic = self.topics.remove(name).ok_or_else(|| CommandError::UnknownTopic { name: name.to_string() })?;
        self.topic_names.remove(&topic.topic_id);
        self.reassignments.remove(&topic.topic_id);
        Ok(CommandOutcome::TopicDeleted { topic_id: topic.topic_id })
    }

    fn create_partitions(&mut self, name: &str, partition_count: u32) -> Result<CommandOutcome, CommandError> {
        let topic = self.topics.get(name).ok_or_else(|| CommandError::UnknownTopic { name: name.to_string() })?;
        let current = topic.partitions.len() as u32;
        validate_partition_count(partition_count, current)?;
        let placements = place_partitions(
            &self.live_brokers(),
            &self.racks(),
            &self.load(),
            partition_count - current,
            topic.replication_factor,
        )?;
        let added: Vec<PartitionRecord> = placements
            .into_iter()
            .enumerate()
            .map(|(offset, replicas)| new_partition(current + offset as u32, replicas))
            .collect();
        let topic = self.topics.get_mut(name).expect("looked up above");
        topic.partitions.extend(added.iter().cloned());
        Ok(CommandOutcome::PartitionsCreated { topic_id: topic.topic_id, partitions: added })
    }

    fn alter_topic_configs(
        &mut self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<CommandOutcome, CommandError> {
        let topic = self.topics.get(name).ok_or_else(|| CommandError::UnknownTopic { name: name.to_string() })?;
        let mut overrides = topic.config_overrides.clone();
        for key in delete {
            if TopicConfig::default().get(key).is_none() {
                return Err(CommandError::InvalidConfig {
                    key: key.clone(),
                    value: String::new(),
                    reason: "unknown topic config key".to_string(),
                });
            }
            overrides.remove(key);
        }
        overrides.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        let config = TopicConfig::from_overrides(&overrides)?;
        let topic = self.topics.get_mut(name).expect("looked up above");
        topic.config_overrides = overrides;
        topic.config = config.clone();
        Ok(CommandOutcome::TopicConfigsAltered { topic_id: topic.topic_id, config })
    }

    fn change_isr(
        &mut self,
        topic_id: Uuid,
        partition_index: u32,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[BrokerId],
    ) -> Result<CommandOutcome, CommandError> {
        let live = self.live_brokers();
        let partition = self.partition(topic_id, partition_index)?;
        if partition.leader != Some(leader) {
            return Err(CommandError::NotPartitionLeader {
                topic_id,
                partition: partition_index,
                leader: partition.leader,
                proposer: leader,
            });
        }
        check_epochs(partition, leader_epoch, partition_epoch)?;
        validate_isr(partition, leader, isr, &live)?;
        let partition = self.partition_mut(topic_id, partition_index)?;
        partition.isr = isr.to_vec();
        partition.partition_epoch += 1;
        // An ISR that grew may be the last step of a reassignment.
        self.complete_reassignment(topic_id, partition_index);
        let partition = self.partition(topic_id, partition_index)?;
        Ok(CommandOutcome::PartitionChanged { topic_id, partition: partition.clone() })
    }

    fn elect_leader(
        &mut self,
        topic_id: Uuid,
        partition_index: u32,
        partition_epoch: i32,
        preferred: Option<BrokerId>,
    ) -> Result<CommandOutcome, CommandError> {
        let live = self.live_brokers();
        let partition = self.partition(topic_id, partition_index)?;
        check_partition_epoch(partition, partition_epoch)?;
        let new_leader = match preferred {
            Some(broker_id) => {
                if !partition.isr.contains(&broker_id) || !live.contains(&broker_id) {
                    return Err(CommandError::IneligibleReplica {
                        broker_id,
                        reason: "not a live member of the ISR".to_string(),
                    });
                }
                broker_id
            }
            None => first_eligible(&partition.replicas, &partition.isr, &live)
                .ok_or(CommandError::NoEligibleLeader { topic_id, partition: partition_index })?,
        };
        let partition = self.partition_mut(topic_id, partition_index)?;
        if partition.leader != Some(new_leader) {
            partition.leader = Some(new_leader);
            partition.leader_epoch += 1;
            partition.partition_epoch += 1;
        }
        Ok(CommandOutcome::PartitionChanged { topic_id, partition: partition.clone() })
    }

    fn elect_leader_unclean(
        &mut self,
        topic_id: Uuid,
        partition_index: u32,
        partition_epoch: i32,
        leader: BrokerId,
    ) -> Result<CommandOutcome, CommandError> {
        let live = self.live_brokers();
        let partition = self.partition(topic_id, partition_index)?;
        check_partition_epoch(partition, partition_epoch)?;
        if let Some(clean) = first_eligible(&partition.replicas, &partition.isr, &live) {
            return Err(CommandError::IneligibleReplica {
                broker_id: leader,
                reason: format!("in-sync replica {clean} is live: a clean election is possible"),
            });
        }
        if !partition.replicas.contains(&leader) || !live.contains(&leader) {
            return Err(CommandError::IneligibleReplica {
                broker_id: leader,
                reason: "not a live replica".to_string(),
            });
        }
        let partition = self.partition_mut(topic_id, partition_index)?;
        partition.leader = Some(leader);
        partition.isr = vec![leader];
        partition.leader_epoch += 1;
        partition.partition_epoch += 1;
        Ok(CommandOutcome::PartitionChanged { topic_id, partition: partition.clone() })
    }

    fn allocate_producer_ids(
        &mut self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<CommandOutcome, CommandError> {
        self.check_broker_epoch(broker_id, broker_epoch)?;
        let first_producer_id = self.next_producer_id;
        let next = first_producer_id
            .checked_add(i64::from(PRODUCER_IDS_PER_BLOCK))
            .ok_or(CommandError::ProducerIdsExhausted)?;
        self.next_producer_id = next;
        Ok(CommandOutcome::ProducerIdsAllocated { first_producer_id, count: PRODUCER_IDS_PER_BLOCK })
    }

    pub(crate) fn partition(&self, topic_id: Uuid, partition: u32) -> Result<&PartitionRecord, CommandError> {
        let topic = self.topic_by_id(topic_id).ok_or(CommandError::UnknownTopicId { topic_id })?;
        topic.partitions.get(partition as usize).ok_or(CommandError::UnknownPartition { topic_id, partition })
    }

    pub(crate) fn partition_mut(
        &mut self,
        topic_id: Uuid,
        partition: u32,
    ) -> Result<&mut PartitionRecord, CommandError> {
        let name = self.topic_names.get(&topic_id).ok_or(CommandError::UnknownTopicId { topic_id })?;
        let topic = self.topics.get_mut(name).ok_or(CommandError::UnknownTopicId { topic_id })?;
        topic.partitions.get_mut(partition as usize).ok_or(CommandError::UnknownPartition { topic_id, partition })
    }

    fn load(&self) -> BTreeMap<BrokerId, BrokerLoad> {
        let leaders = self.leader_counts();
        self.replica_counts()
            .into_iter()
            .map(|(id, replicas)| (id, BrokerLoad { leaders: leaders.get(&id).copied().unwrap_or(0), replicas }))
            .collect()
    }
}

fn new_partition(partition: u32, replicas: Vec<BrokerId>) -> PartitionRecord {
    PartitionRecord {
        partition,
        leader: replicas.first().copied(),
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

/// The first replica, in preferred order, that is in the ISR and live.
pub(crate) fn first_eligible(replicas: &[BrokerId], isr: &[BrokerId], live: &[BrokerId]) -> Option<BrokerId> {
    replicas.iter().copied().find(|b| isr.contains(b) && live.contains(b))
}

fn check_epochs(partition: &PartitionRecord, leader_epoch: i32, partition_epoch: i32) -> Result<(), CommandError> {
    if leader_epoch < partition.leader_epoch {
        return Err(CommandError::FencedLeaderEpoch { proposed: leader_epoch, current: partition.leader_epoch });
    }
    if leader_epoch > partition.leader_epoch {
        return Err(CommandError::UnknownLeaderEpoch { proposed: leader_epoch, current: partition.leader_epoch });
    }
    check_partition_epoch(partition, partition_epoch)
}

/// A proposal computed from another partition epoch than the current one is stale.
fn check_partition_epoch(partition: &PartitionRecord, proposed: i32) -> Result<(), CommandError> {
    if proposed != partition.partition_epoch {
        return Err(CommandError::StalePartitionEpoch { proposed, current: partition.partition_epoch });
    }
    Ok(())
}

fn validate_isr(
    partition: &PartitionRecord,
    leader: BrokerId,
    isr: &[BrokerId],
    live: &[BrokerId],
) -> Result<(), CommandError> {
    if !isr.contains(&leader) {
        return Err(CommandError::InvalidRequest { reason: format!("new ISR {isr:?} lacks its leader {leader}") });
    }
    let mut distinct = isr.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != isr.len() {
        return Err(CommandError::InvalidRequest { reason: format!("new ISR {isr:?} repeats a broker") });
    }
    for broker_id in isr {
        if !partition.replicas.contains(broker_id) {
            return Err(CommandError::IneligibleReplica { broker_id: *broker_id, reason: "not a replica".to_string() });
        }
        // A fenced broker may stay in the ISR but may not be added to it.
        if !partition.isr.contains(broker_id) && !live.contains(broker_id) {
            return Err(CommandError::IneligibleReplica { broker_id: *broker_id, reason: "fenced".to_string() });
        }
    }
    Ok(())
}

fn validate_partition_count(requested: u32, current: u32) -> Result<(), CommandError> {
    let reason = if requested == 0 {
        "must be at least 1".to_string()
    } else if requested > TOPIC_PARTITIONS_MAX {
        format!("must be at most {TOPIC_PARTITIONS_MAX}")
    } else if requested <= current {
        format!("must exceed the current count {current}")
    } else {
        return Ok(());
    };
    Err(CommandError::InvalidPartitionCount { requested, reason })
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), CommandError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "'.' and '..' are reserved"
    } else if name.len() > TOPIC_NAME_BYTES_MAX {
        "longer than 249 characters"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        "only ASCII letters, digits, '.', '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(CommandError::InvalidTopicName { name: name.to_string(), reason: reason.to_string() })
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
