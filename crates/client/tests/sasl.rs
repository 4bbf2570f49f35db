//! The client authenticating with SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) to a real broker's
//! SASL_PLAINTEXT listener, with users created through the admin API on the PLAINTEXT one.

mod common;

use common::{client_config, TestBroker};
use sluice_client::admin::{NewTopic, ScramMechanism};
use sluice_client::{Admin, ClientError, Cluster, SaslCredentials, SaslMechanism};

// Goal: `sluice user create`'s path (the admin API salts the password) gives a user who can
// then log in with each mechanism and use the cluster, and who is told the SASL listener's
// address for every broker; a wrong password is refused with SASL_AUTHENTICATION_FAILED; a
// deleted credential no longer works; listing shows the mechanisms and iterations.
#[tokio::test]
async fn users_created_by_the_admin_api_log_in_with_every_mechanism() {
    let broker =
        TestBroker::start_with(|config| config.listeners.listeners = "SASL_PLAINTEXT://127.0.0.1:0".into()).await;
    let sasl_address = broker.listeners[0].1.to_string();
    let admin = Admin::new(Cluster::connect(client_config(&broker.bootstrap())).await.unwrap());
    for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        admin.upsert_scram_credential("alice", mechanism, "alice-secret", 4096).await.unwrap();
    }
    let users = admin.list_scram_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].credentials, vec![(ScramMechanism::Sha256, 4096), (ScramMechanism::Sha512, 4096)]);
    assert!(
        admin.upsert_scram_credential("bob", ScramMechanism::Sha256, "x", 100).await.is_err(),
        "too few iterations"
    );

    let login = |mechanism, password: &str| {
        let mut config = client_config(&sasl_address);
        config.retries_max = 1;
        config.sasl = Some(SaslCredentials { mechanism, username: "alice".into(), password: password.into() });
        config
    };
    for (i, mechanism) in
        [SaslMechanism::Plain, SaslMechanism::ScramSha256, SaslMechanism::ScramSha512].into_iter().enumerate()
    {
        let cluster = Cluster::connect(login(mechanism, "alice-secret")).await.unwrap();
        let sasl_admin = Admin::new(cluster);
        let topic = format!("sasl-{i}");
        sasl_admin
            .create_topics(&[NewTopic {
                name: topic.clone(),
                partitions: 1,
                replication_factor: 1,
                configs: Vec::new(),
            }])
            .await
            .unwrap();
        let description = sasl_admin.describe_cluster().await.unwrap();
        assert_eq!(description.brokers[0].address, sasl_address, "{mechanism:?}: the SASL listener's endpoint");
    }
    let refused = Cluster::connect(login(SaslMechanism::ScramSha512, "wrong")).await.unwrap_err();
    assert!(refused.to_string().contains("code 58"), "{refused}");
    admin.delete_scram_credential("alice", ScramMechanism::Sha512).await.unwrap();
    let gone = Cluster::connect(login(SaslMechanism::ScramSha512, "alice-secret")).await.unwrap_err();
    assert!(matches!(gone, ClientError::NoBrokerReachable { .. }), "{gone}");
    broker.stop().await;
}
