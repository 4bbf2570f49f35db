//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): the SCRAM users of
//! the metadata view. A credential arrives salted (`salted_password`, salt, iterations); the
//! broker derives StoredKey and ServerKey and replicates those, never a password.

use std::collections::BTreeMap;

use sluice_meta::security::ScramMechanism;
use sluice_meta::{Command, MetaError};
use sluice_proto::kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use sluice_proto::kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use sluice_proto::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};

use crate::broker::Broker;
use crate::handlers::{meta_error, str_bytes};
use crate::kafka_code;
use crate::security::scram;

/// DescribeUserScramCredentials: every user with a credential, or the named ones.
pub fn describe(
    broker: &Broker,
    request: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let view = broker.view();
    let users = &view.security.scram;
    let info = |mechanisms: &BTreeMap<ScramMechanism, sluice_meta::security::ScramCredential>| {
        mechanisms
            .iter()
            .map(|(m, c)| CredentialInfo::default().with_mechanism(m.code()).with_iterations(c.iterations as i32))
            .collect::<Vec<_>>()
    };
    let results = match request.users.as_deref() {
        None | Some([]) => users
            .iter()
            .map(|(user, mechanisms)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(str_bytes(user.clone()))
                    .with_credential_infos(info(mechanisms))
            })
            .collect(),
        Some(names) => {
            let mut seen = std::collections::HashMap::new();
            for name in names {
                *seen.entry(name.name.as_str()).or_insert(0) += 1;
            }
            names
                .iter()
                .map(|name| {
                    let user = name.name.as_str();
                    let result = DescribeUserScramCredentialsResult::default().with_user(name.name.clone());
                    if seen[user] > 1 {
                        return result
                            .with_error_code(kafka_code::DUPLICATE_RESOURCE)
                            .with_error_message(Some(str_bytes(format!("user {user:?} named more than once"))));
                    }
                    match users.get(user) {
                        Some(mechanisms) => result.with_credential_infos(info(mechanisms)),
                        None => result.with_error_code(kafka_code::RESOURCE_NOT_FOUND).with_error_message(Some(
                            str_bytes(format!("Attempt to describe a user credential that does not exist: {user}")),
                        )),
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// AlterUserScramCredentials: deletions and upsertions, one result per user (its first error).
pub async fn alter(broker: &Broker, request: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    // Per user: the commands to run, or the error that stops them.
    let mut plans: BTreeMap<String, Result<Vec<Command>, (i16, String)>> = BTreeMap::new();
    let mut seen: BTreeMap<(String, i8), usize> = BTreeMap::new();
    for deletion in &request.deletions {
        *seen.entry((deletion.name.to_string(), deletion.mechanism)).or_default() += 1;
    }
    for upsertion in &request.upsertions {
        *seen.entry((upsertion.name.to_string(), upsertion.mechanism)).or_default() += 1;
    }
    let mut add = |user: &str, mechanism: i8, command: Result<Command, (i16, String)>| {
        let plan = plans.entry(user.to_string()).or_insert_with(|| Ok(Vec::new()));
        let command = if seen.get(&(user.to_string(), mechanism)).copied().unwrap_or(0) > 1 {
            Err((kafka_code::DUPLICATE_RESOURCE, format!("a credential of {user:?} is named more than once")))
        } else if user.is_empty() {
            Err((kafka_code::UNACCEPTABLE_CREDENTIAL, "empty user name".to_string()))
        } else {
            command
        };
        match (plan.as_mut(), command) {
            (Ok(commands), Ok(command)) => commands.push(command),
            (Ok(_), Err(error)) => *plan = Err(error),
            (Err(_), _) => {}
        }
    };
    let unknown_mechanism =
        |code: i8| (kafka_code::UNSUPPORTED_SASL_MECHANISM, format!("unknown SCRAM mechanism {code}"));
    for deletion in &request.deletions {
        let user = deletion.name.as_str();
        let command = ScramMechanism::from_code(deletion.mechanism)
            .map(|mechanism| Command::DeleteScramCredential { user: user.to_string(), mechanism })
            .ok_or_else(|| unknown_mechanism(deletion.mechanism));
        add(user, deletion.mechanism, command);
    }
    for upsertion in &request.upsertions {
        let user = upsertion.name.as_str();
        let command = match ScramMechanism::from_code(upsertion.mechanism) {
            None => Err(unknown_mechanism(upsertion.mechanism)),
            Some(mechanism) => {
                let iterations = u32::try_from(upsertion.iterations).unwrap_or(0);
                let range = sluice_meta::limits::SCRAM_ITERATIONS_MIN..=sluice_meta::limits::SCRAM_ITERATIONS_MAX;
                if !range.contains(&iterations) {
                    Err((kafka_code::UNACCEPTABLE_CREDENTIAL, format!("iterations must be in {range:?}")))
                } else if upsertion.salt.is_empty() || upsertion.salted_password.len() != mechanism.hash_bytes() {
                    Err((
                        kafka_code::UNACCEPTABLE_CREDENTIAL,
                        format!(
                            "a {} credential needs a salt and a {}-byte salted password",
                            mechanism.sasl_name(),
                            mechanism.hash_bytes()
                        ),
                    ))
                } else {
                    let credential = scram::credential_from_salted(
                        mechanism,
                        &upsertion.salted_password,
                        &upsertion.salt,
                        iterations,
                    );
                    Ok(Command::UpsertScramCredential { user: user.to_string(), mechanism, credential })
                }
            }
        };
        add(user, upsertion.mechanism, command);
    }
    let mut results = Vec::with_capacity(plans.len());
    for (user, plan) in plans {
        let outcome = match plan {
            Err(error) => Err(error),
            Ok(commands) => run(broker, commands).await,
        };
        let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(user.clone()));
        results.push(match outcome {
            Ok(()) => {
                tracing::info!(user, "SCRAM credentials changed");
                result
            }
            Err((code, message)) => result.with_error_code(code).with_error_message(Some(str_bytes(message))),
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

async fn run(broker: &Broker, commands: Vec<Command>) -> Result<(), (i16, String)> {
    for command in commands {
        if let Err(error) = broker.propose_and_apply(command).await {
            let (code, message) = match &error {
                MetaError::Rejected(rejected) => (rejected.kafka_error_code(), rejected.to_string()),
                other => (meta_error(other).0, other.to_string()),
            };
            let code = if code == kafka_code::INVALID_REQUEST { kafka_code::UNACCEPTABLE_CREDENTIAL } else { code };
            return Err((code, message));
        }
    }
    Ok(())
}
