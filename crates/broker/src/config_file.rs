//! `sluice-broker --config sluice.toml`: settings from a file, and `--print-config`.
//!
//! Format: TOML with top-level keys only, one per flag, named as the flag without its dashes
//! (`node-id = 2`, `listen = "0.0.0.0:9092"`, `auto-create-topics = false`; `node_id` is read
//! as `node-id`). Values are strings, integers or booleans. A key that names no flag, a table,
//! an array or a float is refused with the file and key named: a typo must not be a setting
//! silently ignored. The file is at most [`CONFIG_FILE_BYTES_MAX`].
//!
//! Precedence: a flag on the command line, then its `SLUICE_*` environment variable, then the
//! file, then the built-in default. The file is applied by giving each of its keys' variables
//! the file's value where the environment does not set it, before the flags are parsed, so
//! clap's own order (flag, variable, default) does the rest — [`environment_from_file`] decides
//! which, as a pure function of the file, the flags' definitions and the environment.
//!
//! `--print-config` writes the effective configuration as this same format, every setting with
//! a comment saying where it came from, so its output is a valid `--config` file.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

/// Largest config file read: far more than every flag needs; a larger file is a mistake.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Why a config file cannot be used. None is retriable: the operator fixes the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Larger than [`CONFIG_FILE_BYTES_MAX`].
    #[error("config file {path} is larger than {CONFIG_FILE_BYTES_MAX} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not TOML, or a key or value this format does not take.
    #[error("config file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
}

/// The `--config` path: from the command line (`--config F` or `--config=F`), else
/// `SLUICE_CONFIG`. Read before clap parses, because the file feeds clap's defaults.
pub fn config_path(args: &[OsString], variable: Option<OsString>) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|arg| arg.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
        if arg == "--" {
            break;
        }
    }
    variable.map(PathBuf::from)
}

/// Reads and parses `path` into `(key, value)` pairs, keys with dashes.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, ConfigFileError> {
    let read_error = |source| ConfigFileError::Read { path: path.to_path_buf(), source };
    if std::fs::metadata(path).map_err(read_error)?.len() > CONFIG_FILE_BYTES_MAX {
        return Err(ConfigFileError::TooLarge { path: path.to_path_buf() });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    parse(&text).map_err(|reason| ConfigFileError::Invalid { path: path.to_path_buf(), reason })
}

/// `(key, value)` pairs of a config file's text; an error says which key is wrong and why.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let document = toml_edit::Document::parse(text).map_err(|error| error.to_string())?;
    let mut entries = Vec::new();
    for (key, item) in document.as_table().iter() {
        let key = key.replace('_', "-");
        let value = match item.as_value() {
            Some(toml_edit::Value::String(text)) => text.value().clone(),
            Some(toml_edit::Value::Integer(number)) => number.value().to_string(),
            Some(toml_edit::Value::Boolean(flag)) => flag.value().to_string(),
            _ => return Err(format!("{key}: expected a string, an integer or a boolean")),
        };
        entries.push((key, value));
    }
    Ok(entries)
}

/// The environment variables to set from the file's `entries`: each key's variable (from the
/// flags' definitions in `command`), unless `is_set` says the environment already has it.
/// An error names a key that is no setting.
pub fn environment_from_file(
    entries: &[(String, String)],
    command: &Command,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, String> {
    let mut assignments = Vec::new();
    for (key, value) in entries {
        let variable = command
            .get_arguments()
            .filter(|arg| arg.get_long() == Some(key.as_str()) && key != "config")
            .find_map(|arg| arg.get_env().and_then(|env| env.to_str()))
            .ok_or_else(|| format!("{key} is not a setting (see sluice-broker --help)"))?;
        if !is_set(variable) {
            assignments.push((variable.to_string(), value.clone()));
        }
    }
    Ok(assignments)
}

/// The effective configuration as a config file: each setting as `key = value` with a comment
/// naming its source (`flag`, `env SLUICE_...`, `file`, `default`); a setting without a value
/// as a comment. `from_file` holds the variables the file set.
pub fn effective(command: &Command, matches: &ArgMatches, from_file: &BTreeSet<String>) -> String {
    let mut text = String::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version" | "print-config" | "config") {
            continue;
        }
        let id = arg.get_id().as_str();
        let variable = arg.get_env().and_then(|env| env.to_str()).unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_string(),
            Some(ValueSource::EnvVariable) if from_file.contains(variable) => "file".to_string(),
            Some(ValueSource::EnvVariable) => format!("env {variable}"),
            Some(ValueSource::DefaultValue) => "default".to_string(),
            _ => {
                text.push_str(&format!("# {long} is not set\n"));
                continue;
            }
        };
        let value = matches
            .get_raw(id)
            .and_then(|mut values| values.next())
            .map(|value| value.to_string_lossy().into_owned())
            .unwrap_or_default();
        text.push_str(&format!("{long} = {}  # {source}\n", toml_value(&value)));
    }
    text
}

/// `value` as a TOML value: integers and booleans bare, anything else a quoted string.
fn toml_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
        return value.to_string();
    }
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::CommandFactory;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_path_comes_from_the_flag_then_the_variable() {
        let variable = Some(OsString::from("env.toml"));
        assert_eq!(config_path(&os(&["b", "--config", "a.toml"]), variable.clone()), Some("a.toml".into()));
        assert_eq!(config_path(&os(&["b", "--config=a.toml"]), None), Some("a.toml".into()));
        assert_eq!(config_path(&os(&["b", "--node-id", "2"]), variable), Some("env.toml".into()));
        assert_eq!(config_path(&os(&["b"]), None), None);
    }

    #[test]
    fn files_give_keys_and_values_and_refuse_what_is_no_setting() {
        let entries =
            parse("node-id = 2\nlisten = \"0.0.0.0:9092\"\nauto_create_topics = false # a comment\n").unwrap();
        let expected = [("node-id", "2"), ("listen", "0.0.0.0:9092"), ("auto-create-topics", "false")];
        assert_eq!(entries, expected.map(|(key, value)| (key.to_string(), value.to_string())));
        assert!(parse("node-id = 1.5").unwrap_err().contains("node-id"));
        assert!(parse("[broker]\nnode-id = 1").unwrap_err().contains("broker"));
        assert!(parse("listen = ").is_err());

        let command = Args::command();
        let unset = |_: &str| false;
        let assignments = environment_from_file(&entries, &command, unset).unwrap();
        assert_eq!(assignments[0], ("SLUICE_NODE_ID".to_string(), "2".to_string()));
        assert_eq!(assignments.len(), 3);
        let node_id_set = |variable: &str| variable == "SLUICE_NODE_ID";
        assert_eq!(environment_from_file(&entries, &command, node_id_set).unwrap().len(), 2, "the environment wins");
        let typo = [("node-idd".to_string(), "2".to_string())];
        assert!(environment_from_file(&typo, &command, unset).unwrap_err().contains("node-idd is not a setting"));
        let nested = [("config".to_string(), "other.toml".to_string())];
        assert!(environment_from_file(&nested, &command, unset).is_err(), "no config file from a config file");
    }

    #[test]
    fn the_effective_configuration_names_each_source_and_reads_back() {
        let command = Args::command();
        let matches = command.clone().get_matches_from(["sluice-broker", "--node-id", "4"]);
        let text = effective(&command, &matches, &BTreeSet::new());
        assert!(text.contains("node-id = 4  # flag\n"), "{text}");
        assert!(text.contains("listen = \"127.0.0.1:9092\"  # default\n"), "{text}");
        assert!(text.contains("auto-create-topics = true  # default\n"), "{text}");
        assert!(text.contains("# advertise is not set\n"), "{text}");
        let entries = parse(&text).unwrap();
        assert!(entries.contains(&("node-id".to_string(), "4".to_string())));
        environment_from_file(&entries, &command, |_| false).expect("the output is a valid config file");
    }
}
