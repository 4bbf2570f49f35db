//! The admin client's ACL calls against a real broker with the authorizer on: what `sluice acl`
//! and library users rely on. The PLAINTEXT listener's `User:ANONYMOUS` is the super user.

mod common;

use common::{client_config, TestBroker};
use sluice_broker::security::authorizer::AuthorizerConfig;
use sluice_broker::security::Principal;
use sluice_client::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternFilter, AclPatternType, AclPermission, AclResourceType,
};
use sluice_client::{Admin, ClientError, Cluster};

fn binding(name: &str, pattern_type: AclPatternType, principal: &str, operation: AclOperation) -> AclBinding {
    AclBinding {
        resource_type: AclResourceType::Topic,
        resource_name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission: AclPermission::Allow,
    }
}

// Goal: bindings created through the admin API are listed back exactly, a MATCH filter finds the
// literal, wildcard and prefixed bindings that apply to one topic, delete returns what it
// removed, and a malformed binding comes back as a per-binding refusal with its Kafka code.
#[tokio::test]
async fn acls_round_trip_through_the_admin_api() {
    let broker = TestBroker::start_with(|config| {
        config.authorizer = AuthorizerConfig {
            enabled: true,
            super_users: vec![Principal::anonymous()],
            allow_everyone_if_no_acl_found: false,
        };
    })
    .await;
    let admin = Admin::new(Cluster::connect(client_config(&broker.bootstrap())).await.unwrap());
    let literal = binding("orders", AclPatternType::Literal, "User:alice", AclOperation::Read);
    let wildcard = binding("*", AclPatternType::Literal, "User:bob", AclOperation::Describe);
    let prefixed = binding("ord", AclPatternType::Prefixed, "User:*", AclOperation::Write);
    let other = binding("payments", AclPatternType::Literal, "User:alice", AclOperation::Read);
    admin.create_acls(&[literal.clone(), wildcard.clone(), prefixed.clone(), other.clone()]).await.unwrap();

    let mut all = admin.describe_acls(&AclBindingFilter::default()).await.unwrap();
    all.sort_by_key(|b| b.to_string());
    let mut expected = vec![literal.clone(), wildcard.clone(), prefixed.clone(), other.clone()];
    expected.sort_by_key(|b| b.to_string());
    assert_eq!(all, expected);

    let matching = AclBindingFilter {
        resource_type: Some(AclResourceType::Topic),
        resource_name: Some("orders".into()),
        pattern_type: Some(AclPatternFilter::Match),
        ..Default::default()
    };
    let mut applies = admin.describe_acls(&matching).await.unwrap();
    applies.sort_by_key(|b| b.to_string());
    let mut want = vec![literal.clone(), wildcard.clone(), prefixed.clone()];
    want.sort_by_key(|b| b.to_string());
    assert_eq!(applies, want, "literal, wildcard and prefix apply to orders; payments does not");

    let removed = admin.delete_acls(&[AclBindingFilter::from(&other)]).await.unwrap();
    assert_eq!(removed, vec![other]);
    assert_eq!(admin.describe_acls(&AclBindingFilter::default()).await.unwrap().len(), 3);

    let bad = binding("orders", AclPatternType::Literal, "alice-without-type", AclOperation::Read);
    match admin.create_acls(&[bad]).await {
        Err(ClientError::AclsRefused { failures, .. }) => {
            assert_eq!(failures.len(), 1);
            assert!(failures[0].to_string().contains("Type:name"), "{}", failures[0]);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    broker.stop().await;
}
