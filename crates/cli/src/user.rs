//! `sluice user create|delete|list`: SCRAM users (the credentials SASL/SCRAM and PLAIN logins
//! are checked against).

use std::io::{BufRead, Write};

use serde::Serialize;
use sluice_client::admin::ScramMechanism;
use sluice_client::{Admin, Cluster};

use crate::args::UserCommand;
use crate::output::{write_json_line, write_table};

/// Runs a user command.
pub async fn run(cluster: Cluster, command: UserCommand) -> anyhow::Result<()> {
    let admin = Admin::new(cluster);
    match command {
        UserCommand::Create { name, password, mechanisms, iterations } => {
            let password = match password {
                Some(password) => password,
                None => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            anyhow::ensure!(!password.is_empty(), "an empty password is not a password");
            for mechanism in mechanisms_or_all(mechanisms) {
                admin.upsert_scram_credential(&name, mechanism, &password, iterations).await?;
                eprintln!("user {name}: {} credential set ({iterations} iterations)", mechanism.name());
            }
            Ok(())
        }
        UserCommand::Delete { name, mechanisms } => {
            let mechanisms = if mechanisms.is_empty() {
                let described = admin.describe_scram_users(std::slice::from_ref(&name)).await?;
                described.into_iter().flat_map(|user| user.credentials.into_iter().map(|(m, _)| m)).collect()
            } else {
                mechanisms
            };
            for mechanism in mechanisms {
                admin.delete_scram_credential(&name, mechanism).await?;
                eprintln!("user {name}: {} credential deleted", mechanism.name());
            }
            Ok(())
        }
        UserCommand::List { json } => {
            let users = admin.list_scram_users().await?;
            let mut out = std::io::stdout().lock();
            if json {
                for user in &users {
                    let mechanisms =
                        user.credentials.iter().map(|(m, i)| UserMechanism { mechanism: m.name(), iterations: *i });
                    write_json_line(&mut out, &UserJson { user: &user.user, mechanisms: mechanisms.collect() })?;
                }
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|user| {
                        let mechanisms: Vec<String> =
                            user.credentials.iter().map(|(m, i)| format!("{} ({i})", m.name())).collect();
                        vec![user.user.clone(), mechanisms.join(", ")]
                    })
                    .collect();
                write_table(&mut out, &["USER", "MECHANISMS (ITERATIONS)"], &rows)?;
            }
            out.flush()?;
            Ok(())
        }
    }
}

fn mechanisms_or_all(mechanisms: Vec<ScramMechanism>) -> Vec<ScramMechanism> {
    if mechanisms.is_empty() {
        vec![ScramMechanism::Sha512, ScramMechanism::Sha256]
    } else {
        mechanisms
    }
}

#[derive(Serialize)]
struct UserJson<'a> {
    user: &'a str,
    mechanisms: Vec<UserMechanism>,
}

#[derive(Serialize)]
struct UserMechanism {
    mechanism: &'static str,
    iterations: i32,
}
