//! SCRAM users (Kafka's `describeUserScramCredentials` and `alterUserScramCredentials`,
//! KIP-554). The password never leaves this process: it is salted and hashed here (PBKDF2,
//! RFC 5802's `Hi`) and only the salted password, salt and iteration count are sent, as
//! Kafka's Java admin client does.

use sluice_proto::kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use sluice_proto::kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use sluice_proto::kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use super::Admin;
use crate::error::{ClientError, Result};

/// A SCRAM mechanism, with Kafka's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (code 1).
    Sha256,
    /// SCRAM-SHA-512 (code 2).
    Sha512,
}

impl ScramMechanism {
    /// Kafka's code.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a code.
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        [ScramMechanism::Sha256, ScramMechanism::Sha512].into_iter().find(|m| m.code() == code)
    }

    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// `Hi(password, salt, iterations)`.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

impl std::str::FromStr for ScramMechanism {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<ScramMechanism, String> {
        match text.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Ok(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Ok(ScramMechanism::Sha512),
            _ => Err(format!("unknown SCRAM mechanism {text:?} (SCRAM-SHA-256, SCRAM-SHA-512)")),
        }
    }
}

/// Default PBKDF2 iterations of a new credential (Kafka's default, RFC 7677's minimum).
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;

/// One user's credentials as the broker describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUser {
    /// User name.
    pub user: String,
    /// Mechanisms and their iteration counts.
    pub credentials: Vec<(ScramMechanism, i32)>,
}

impl Admin {
    /// Every user with a SCRAM credential.
    pub async fn list_scram_users(&self) -> Result<Vec<ScramUser>> {
        self.describe_scram(DescribeUserScramCredentialsRequest::default()).await
    }

    /// The named users (an error for one without credentials).
    pub async fn describe_scram_users(&self, users: &[String]) -> Result<Vec<ScramUser>> {
        let names = users.iter().map(|u| UserName::default().with_name(StrBytes::from_string(u.clone()))).collect();
        self.describe_scram(DescribeUserScramCredentialsRequest::default().with_users(Some(names))).await
    }

    async fn describe_scram(&self, request: DescribeUserScramCredentialsRequest) -> Result<Vec<ScramUser>> {
        let response = self.cluster.call_any(&request).await?;
        ClientError::check(response.error_code, || "describe SCRAM users".to_string())?;
        let mut users = Vec::with_capacity(response.results.len());
        for result in response.results {
            ClientError::check(result.error_code, || format!("describe SCRAM user {}", result.user))?;
            let credentials = result
                .credential_infos
                .iter()
                .filter_map(|info| Some((ScramMechanism::from_code(info.mechanism)?, info.iterations)))
                .collect();
            users.push(ScramUser { user: result.user.to_string(), credentials });
        }
        Ok(users)
    }

    /// Sets `user`'s `password` for `mechanism` (creating the user), with a random salt.
    pub async fn upsert_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<()> {
        let salt: [u8; 32] = rand::random();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let upsertion = ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism.code())
            .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
            .with_salt(salt.to_vec().into())
            .with_salted_password(salted.into());
        self.alter_scram(AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]), user).await
    }

    /// Removes `user`'s credential for `mechanism`.
    pub async fn delete_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<()> {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism.code());
        self.alter_scram(AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]), user).await
    }

    async fn alter_scram(&self, request: AlterUserScramCredentialsRequest, user: &str) -> Result<()> {
        let response = self.cluster.call_any(&request).await?;
        for result in response.results {
            if result.error_code != 0 {
                let message = result.error_message.map(|m| m.to_string());
                return Err(ClientError::kafka(result.error_code, format!("SCRAM credential of {user}"), message));
            }
        }
        Ok(())
    }
}
