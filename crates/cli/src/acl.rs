//! `sluice acl add|remove|list`: ACLs (Kafka's `kafka-acls.sh --add/--remove/--list`), over
//! the admin client's CreateAcls, DeleteAcls and DescribeAcls.
//!
//! `add` creates every combination of the principals (with their hosts, `*` by default), the
//! operations and the resources; `remove` deletes what matches the same flags (every
//! principal, permission and operation of the resources when none is given) and prints what it
//! removed; `list` prints a table, or one JSON object per ACL with `--json`.

use std::io::Write;

use serde::Serialize;
use sluice_client::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternFilter, AclPermission, AclResourceType, ACL_WILDCARD,
};
use sluice_client::{Admin, ClientConfig};

use crate::args::{AclCommand, AclPrincipalArgs, AclResourceArgs};
use crate::output::{write_json_line, write_table};
use crate::{connect, UsageError};

/// Runs one `sluice acl` command: checks the flags, then connects.
pub async fn run(config: ClientConfig, command: AclCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        AclCommand::Add { principals, operations, resources, resource_pattern_type } => {
            let resources = named_resources(&resources)?;
            let entries = entries(&principals);
            if entries.is_empty() {
                return Err(UsageError("give --allow-principal and/or --deny-principal".into()).into());
            }
            let mut bindings = Vec::new();
            for (resource_type, resource_name) in &resources {
                for (principal, host, permission) in &entries {
                    for operation in &operations {
                        bindings.push(AclBinding {
                            resource_type: *resource_type,
                            resource_name: resource_name.clone(),
                            pattern_type: resource_pattern_type,
                            principal: principal.clone(),
                            host: host.clone(),
                            operation: *operation,
                            permission: *permission,
                        });
                    }
                }
            }
            bindings.sort();
            bindings.dedup();
            let admin = Admin::new(connect(config).await?);
            admin.create_acls(&bindings).await?;
            eprintln!("added {}", count(bindings.len()));
            write_bindings(&mut out, &bindings, false)?;
        }
        AclCommand::Remove { principals, operations, resources, resource_pattern_type, json } => {
            let filters = remove_filters(&principals, &operations, &resources, resource_pattern_type)?;
            let admin = Admin::new(connect(config).await?);
            let mut removed = admin.delete_acls(&filters).await?;
            removed.sort();
            eprintln!("removed {}", count(removed.len()));
            write_bindings(&mut out, &removed, json)?;
        }
        AclCommand::List { principals, resources, resource_pattern_type, json } => {
            let filters = list_filters(&principals, &resources, resource_pattern_type);
            let admin = Admin::new(connect(config).await?);
            let mut found = Vec::new();
            for filter in filters {
                found.extend(admin.describe_acls(&filter).await?);
            }
            found.sort();
            found.dedup();
            write_bindings(&mut out, &found, json)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `1 ACL`, `2 ACLs`.
fn count(n: usize) -> String {
    format!("{n} ACL{}", if n == 1 { "" } else { "s" })
}

/// The resources the flags name; at least one (`add` and `remove` need one).
fn named_resources(args: &AclResourceArgs) -> anyhow::Result<Vec<(AclResourceType, String)>> {
    let resources = args.resources();
    if resources.is_empty() {
        return Err(UsageError("name a resource: --topic, --group, --cluster or --transactional-id".into()).into());
    }
    Ok(resources)
}

/// Every (principal, host, permission) the flags give: allowed principals with the allowed
/// hosts, denied ones with the denied hosts, `*` when no host is given.
fn entries(args: &AclPrincipalArgs) -> Vec<(String, String, AclPermission)> {
    let with_hosts = |principals: &[String], hosts: &[String], permission: AclPermission| {
        let hosts = if hosts.is_empty() { vec![ACL_WILDCARD.to_string()] } else { hosts.to_vec() };
        principals
            .iter()
            .flat_map(|principal| hosts.iter().map(move |host| (principal.clone(), host.clone(), permission)))
            .collect::<Vec<_>>()
    };
    let mut entries = with_hosts(&args.allow_principals, &args.allow_hosts, AclPermission::Allow);
    entries.extend(with_hosts(&args.deny_principals, &args.deny_hosts, AclPermission::Deny));
    entries
}

/// The filters of `acl remove`: per resource, each principal entry (or any principal, host
/// and permission) with each operation (or any).
fn remove_filters(
    principals: &AclPrincipalArgs,
    operations: &[AclOperation],
    resources: &AclResourceArgs,
    pattern_type: AclPatternFilter,
) -> anyhow::Result<Vec<AclBindingFilter>> {
    let resources = named_resources(resources)?;
    let entries: Vec<Option<(String, String, AclPermission)>> = {
        let entries = entries(principals);
        if entries.is_empty() {
            vec![None]
        } else {
            entries.into_iter().map(Some).collect()
        }
    };
    let operations: Vec<Option<AclOperation>> =
        if operations.is_empty() { vec![None] } else { operations.iter().copied().map(Some).collect() };
    let mut filters = Vec::new();
    for (resource_type, resource_name) in &resources {
        for entry in &entries {
            for operation in &operations {
                filters.push(AclBindingFilter {
                    resource_type: Some(*resource_type),
                    resource_name: Some(resource_name.clone()),
                    pattern_type: Some(pattern_type),
                    principal: entry.as_ref().map(|(principal, _, _)| principal.clone()),
                    host: entry.as_ref().map(|(_, host, _)| host.clone()),
                    operation: *operation,
                    permission: entry.as_ref().map(|(_, _, permission)| *permission),
                });
            }
        }
    }
    Ok(filters)
}

/// The filters of `acl list`: each named resource (literal patterns unless told otherwise) or
/// every resource (any pattern unless told otherwise), for each principal or any.
fn list_filters(
    principals: &[String],
    resources: &AclResourceArgs,
    pattern_type: Option<AclPatternFilter>,
) -> Vec<AclBindingFilter> {
    let resources: Vec<(Option<AclResourceType>, Option<String>)> = {
        let named = resources.resources();
        if named.is_empty() {
            vec![(None, None)]
        } else {
            named.into_iter().map(|(kind, name)| (Some(kind), Some(name))).collect()
        }
    };
    let principals: Vec<Option<String>> =
        if principals.is_empty() { vec![None] } else { principals.iter().cloned().map(Some).collect() };
    let mut filters = Vec::new();
    for (resource_type, resource_name) in &resources {
        let default_pattern = if resource_name.is_some() { AclPatternFilter::Literal } else { AclPatternFilter::Any };
        for principal in &principals {
            filters.push(AclBindingFilter {
                resource_type: *resource_type,
                resource_name: resource_name.clone(),
                pattern_type: Some(pattern_type.unwrap_or(default_pattern)),
                principal: principal.clone(),
                ..AclBindingFilter::default()
            });
        }
    }
    filters
}

/// A line of `acl list --json` (and `acl remove --json`), in Kafka's names.
#[derive(Serialize)]
struct AclJson<'a> {
    resource_type: &'static str,
    resource_name: &'a str,
    pattern_type: &'static str,
    principal: &'a str,
    host: &'a str,
    operation: &'static str,
    permission: &'static str,
}

fn write_bindings(out: &mut impl Write, bindings: &[AclBinding], json: bool) -> anyhow::Result<()> {
    if json {
        for binding in bindings {
            let line = AclJson {
                resource_type: binding.resource_type.name(),
                resource_name: &binding.resource_name,
                pattern_type: binding.pattern_type.name(),
                principal: &binding.principal,
                host: &binding.host,
                operation: binding.operation.name(),
                permission: binding.permission.name(),
            };
            write_json_line(out, &line)?;
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|binding| {
            vec![
                binding.resource_type.to_string(),
                binding.resource_name.clone(),
                binding.pattern_type.to_string(),
                binding.principal.clone(),
                binding.host.clone(),
                binding.operation.to_string(),
                binding.permission.to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        &["RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"],
        &rows,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principals(allow: &[&str], deny: &[&str], allow_hosts: &[&str]) -> AclPrincipalArgs {
        let owned = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
        AclPrincipalArgs {
            allow_principals: owned(allow),
            deny_principals: owned(deny),
            allow_hosts: owned(allow_hosts),
            deny_hosts: Vec::new(),
        }
    }

    fn topic(name: &str) -> AclResourceArgs {
        AclResourceArgs {
            topics: vec![name.to_string()],
            groups: Vec::new(),
            cluster: false,
            transactional_ids: Vec::new(),
        }
    }

    #[test]
    fn allowed_principals_take_the_allowed_hosts_and_denied_ones_any_host() {
        let entries = entries(&principals(&["User:a"], &["User:m"], &["10.0.0.1", "10.0.0.2"]));
        assert_eq!(
            entries,
            [
                ("User:a".to_string(), "10.0.0.1".to_string(), AclPermission::Allow),
                ("User:a".to_string(), "10.0.0.2".to_string(), AclPermission::Allow),
                ("User:m".to_string(), "*".to_string(), AclPermission::Deny),
            ]
        );
    }

    #[test]
    fn remove_without_principals_or_operations_matches_every_acl_of_the_resource() {
        let filters = remove_filters(&principals(&[], &[], &[]), &[], &topic("t"), AclPatternFilter::Literal).unwrap();
        let expected = AclBindingFilter {
            resource_type: Some(AclResourceType::Topic),
            resource_name: Some("t".to_string()),
            pattern_type: Some(AclPatternFilter::Literal),
            ..AclBindingFilter::default()
        };
        assert_eq!(filters, [expected]);
        let ops = [AclOperation::Read, AclOperation::Write];
        let filters =
            remove_filters(&principals(&["User:a"], &[], &[]), &ops, &topic("t"), AclPatternFilter::Any).unwrap();
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[1].principal.as_deref(), Some("User:a"));
        assert_eq!(filters[1].host.as_deref(), Some("*"));
        assert_eq!(
            (filters[1].operation, filters[1].permission),
            (Some(AclOperation::Write), Some(AclPermission::Allow))
        );
        let nothing = AclResourceArgs { topics: Vec::new(), ..topic("t") };
        assert!(remove_filters(&principals(&[], &[], &[]), &[], &nothing, AclPatternFilter::Any).is_err());
    }

    #[test]
    fn list_defaults_to_every_pattern_without_a_resource_and_literal_with_one() {
        let all = list_filters(&[], &AclResourceArgs { topics: Vec::new(), ..topic("t") }, None);
        assert_eq!(
            all,
            [AclBindingFilter { pattern_type: Some(AclPatternFilter::Any), ..AclBindingFilter::default() }]
        );
        let named = list_filters(&["User:a".to_string()], &topic("t"), None);
        assert_eq!(named[0].pattern_type, Some(AclPatternFilter::Literal));
        assert_eq!(named[0].principal.as_deref(), Some("User:a"));
        let matching = list_filters(&[], &topic("t"), Some(AclPatternFilter::Match));
        assert_eq!(matching[0].pattern_type, Some(AclPatternFilter::Match));
    }

    #[test]
    fn bindings_print_as_a_table_or_json_lines() {
        let binding = AclBinding {
            resource_type: sluice_client::admin::AclResourceType::TransactionalId,
            resource_name: "tx".to_string(),
            pattern_type: sluice_client::admin::AclPatternType::Prefixed,
            principal: "User:a".to_string(),
            host: "*".to_string(),
            operation: AclOperation::DescribeConfigs,
            permission: AclPermission::Deny,
        };
        let mut json = Vec::new();
        write_bindings(&mut json, std::slice::from_ref(&binding), true).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\"resource_type\":\"TRANSACTIONAL_ID\",\"resource_name\":\"tx\",\"pattern_type\":\"PREFIXED\",\
             \"principal\":\"User:a\",\"host\":\"*\",\"operation\":\"DESCRIBE_CONFIGS\",\"permission\":\"DENY\"}\n"
        );
        let mut table = Vec::new();
        write_bindings(&mut table, &[binding], false).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.starts_with("RESOURCE-TYPE"), "{table}");
        assert!(
            table.lines().nth(1).unwrap().split_whitespace().eq([
                "TRANSACTIONAL_ID",
                "tx",
                "PREFIXED",
                "User:a",
                "*",
                "DESCRIBE_CONFIGS",
                "DENY"
            ]),
            "{table}"
        );
    }
}
