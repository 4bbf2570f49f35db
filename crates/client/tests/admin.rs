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
