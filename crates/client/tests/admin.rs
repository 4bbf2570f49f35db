//! Admin against a real broker: create (with configs), list, describe, add partitions,
//! describe and alter configs (each also validate-only: checked, nothing changed), delete; errors are typed (TOPIC_ALREADY_EXISTS is not retriable,
//! an unknown topic is `UnknownTopic`); an unreachable bootstrap is `NoBrokerReachable`.

mod common;

use std::time::Duration;

use common::{client_config, cluster, TestBroker};
use sluice_client::admin::{ConfigChange, NewTopic};
use sluice_client::{Admin, ClientError, Cluster};

#[tokio::test]
async fn topics_partitions_and_configs_lifecycle() {
    let broker = TestBroker::start().await;
    let admin = Admin::new(cluster(&broker.bootstrap()).await);
    let topic = NewTopic {
        name: "admin-topic".to_string(),
        partitions: 2,
        replication_factor: 1,
        configs: vec![("retention.ms".to_string(), "3600000".to_string())],
    };
    admin.create_topics(std::slice::from_ref(&topic)).await.unwrap();
    let error = admin.create_topics(&[topic]).await.unwrap_err();
    assert!(matches!(error, ClientError::Kafka { code: 36, .. }) && !error.is_retriable(), "{error}");

    let names: Vec<String> = admin.list_topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"admin-topic".to_string()), "{names:?}");
    let described = admin.describe_topic("admin-topic").await.unwrap();
    assert_eq!(described.partitions.len(), 2);
    assert!(described.partitions.iter().all(|p| p.leader == 1 && p.isr == vec![1]));

    // Validate-only requests check and change nothing.
    admin.validate_create_partitions("admin-topic", 5).await.unwrap();
    assert_eq!(admin.describe_topic("admin-topic").await.unwrap().partitions.len(), 2);
    assert!(admin.validate_create_partitions("admin-topic", 1).await.is_err(), "fewer partitions");
    let bad = [ConfigChange::Set("retention.ms".to_string(), "soon".to_string())];
    assert!(admin.validate_alter_configs("admin-topic", &bad).await.is_err());
    let good = [ConfigChange::Set("retention.ms".to_string(), "7200000".to_string())];
    admin.validate_alter_configs("admin-topic", &good).await.unwrap();

    admin.create_partitions("admin-topic", 5).await.unwrap();
    assert_eq!(admin.describe_topic("admin-topic").await.unwrap().partitions.len(), 5);

    let configs = admin.describe_configs("admin-topic").await.unwrap();
    assert_eq!(configs["retention.ms"].value.as_deref(), Some("3600000"), "the validated change was not applied");
    assert!(!configs["retention.ms"].is_default);
    assert_eq!(configs["retention.ms"].source, "TOPIC_CONFIG");
    assert_ne!(configs["segment.bytes"].source, "TOPIC_CONFIG", "{:?}", configs["segment.bytes"]);
    admin
        .alter_configs(
            "admin-topic",
            &[
                ConfigChange::Set("cleanup.policy".to_string(), "compact".to_string()),
                ConfigChange::Delete("retention.ms".to_string()),
            ],
        )
        .await
        .unwrap();
    let configs = admin.describe_configs("admin-topic").await.unwrap();
    assert_eq!(configs["cleanup.policy"].value.as_deref(), Some("compact"));
    assert!(configs["retention.ms"].is_default, "deleted config back to its default");

    let cluster_view = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster_view.brokers.len(), 1);
    assert_eq!(cluster_view.controller_id, 1);

    admin.delete_topics(&["admin-topic".to_string()]).await.unwrap();
    let error = admin.describe_topic("admin-topic").await.unwrap_err();
    assert!(matches!(error, ClientError::UnknownTopic { .. }), "{error}");
    let error = admin.delete_topics(&["admin-topic".to_string()]).await.unwrap_err();
    assert!(matches!(error, ClientError::UnknownTopic { .. }), "{error}");
}

#[tokio::test]
async fn an_unreachable_bootstrap_is_a_retriable_no_broker_reachable() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = unused.local_addr().unwrap().to_string();
    drop(unused);
    let mut config = client_config(&address);
    config.connect_timeout = Duration::from_millis(500);
    let error = Cluster::connect(config).await.unwrap_err();
    assert!(matches!(error, ClientError::NoBrokerReachable { .. }) && error.is_retriable(), "{error}");
}

// Goal: DescribeClientQuotas / AlterClientQuotas round trip through the admin client, with
// Kafka's entity semantics: named and default users and client ids, a user+client pair, a
// filtered describe (exact name, default, strict), validate-only changing nothing, removing
// one key keeping the other, removing the last key deleting the entity, and bad changes
// refused with INVALID_REQUEST.
#[tokio::test]
async fn client_quotas_round_trip() {
    use sluice_client::admin::{QuotaChange, QuotaEntity};
    let broker = TestBroker::start().await;
    let admin = Admin::new(cluster(&broker.bootstrap()).await);
    let named = |name: &str| Some(Some(name.to_string()));
    let app = QuotaEntity { user: None, client_id: named("app") };
    let alice_app = QuotaEntity { user: named("alice"), client_id: named("app") };
    let default_user = QuotaEntity { user: Some(None), client_id: None };
    let set = |key: &str, value: f64| QuotaChange::Set(key.to_string(), value);
    assert!(admin.describe_client_quotas().await.unwrap().is_empty());

    admin.validate_alter_client_quotas(&app, &[set("producer_byte_rate", 1_048_576.0)]).await.unwrap();
    assert!(admin.describe_client_quotas().await.unwrap().is_empty(), "validate-only changed nothing");
    admin
        .alter_client_quotas(&app, &[set("producer_byte_rate", 1_048_576.0), set("consumer_byte_rate", 2e6)])
        .await
        .unwrap();
    admin.alter_client_quotas(&alice_app, &[set("request_percentage", 25.0)]).await.unwrap();
    admin.alter_client_quotas(&default_user, &[set("producer_byte_rate", 5e6)]).await.unwrap();

    let all = admin.describe_client_quotas().await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[&app]["producer_byte_rate"], 1_048_576.0);
    assert_eq!(all[&app]["consumer_byte_rate"], 2e6);
    assert_eq!(all[&alice_app]["request_percentage"], 25.0);
    assert_eq!(all[&default_user]["producer_byte_rate"], 5e6);

    // Filters: an exact client id matches both entities naming it, strict only the bare one;
    // a default user only the default entity.
    let app_filter = QuotaEntity { user: None, client_id: named("app") };
    assert_eq!(admin.describe_client_quotas_matching(&app_filter, false).await.unwrap().len(), 2);
    let strict = admin.describe_client_quotas_matching(&app_filter, true).await.unwrap();
    assert_eq!(strict.keys().collect::<Vec<_>>(), vec![&app]);
    let defaults = admin.describe_client_quotas_matching(&default_user, false).await.unwrap();
    assert_eq!(defaults.keys().collect::<Vec<_>>(), vec![&default_user]);

    // Removal: one key, then the last key (the entity goes).
    admin.alter_client_quotas(&app, &[QuotaChange::Remove("consumer_byte_rate".to_string())]).await.unwrap();
    admin.alter_client_quotas(&default_user, &[QuotaChange::Remove("producer_byte_rate".to_string())]).await.unwrap();
    let all = admin.describe_client_quotas().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[&app].keys().collect::<Vec<_>>(), vec!["producer_byte_rate"]);
    assert!(!all.contains_key(&default_user));

    // Refused: an unknown key, a non-positive value, a fractional byte rate.
    for bad in [set("bytes_per_fortnight", 1.0), set("producer_byte_rate", 0.0), set("consumer_byte_rate", 1.5)] {
        let error = admin.alter_client_quotas(&app, std::slice::from_ref(&bad)).await.unwrap_err();
        assert!(matches!(error, ClientError::Kafka { code: 42, .. }), "{bad:?}: {error}");
    }
    assert_eq!(admin.describe_client_quotas().await.unwrap()[&app]["producer_byte_rate"], 1_048_576.0);
}
