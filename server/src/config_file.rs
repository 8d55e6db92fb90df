//! `--config FILE`: the settings in a TOML file, one key per flag (its long name:
//! `cache-size = "1GiB"`), below flags and environment variables and above the
//! defaults; and `--print-config`, the settings in effect and where each came from.
//!
//! The file's keys become flags placed before the command line's, for the settings that
//! neither the command line nor the environment gives, and clap parses them all once
//! more: so a value in the file is checked by the same parser, with the same error, as
//! the flag, and a new flag is a new key with nothing to add here.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::fmt::Write;
use std::path::Path;

/// Arguments that are not settings: they have no key.
const NOT_SETTINGS: [&str; 4] = ["config", "print_config", "help", "version"];

/// The file's settings, to parse as flags ahead of `args`.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// `--key value` pairs (`--key` alone for a switch set to true).
    pub flags: Vec<OsString>,
    /// The keys the file gave, for `--print-config`.
    pub keys: Vec<String>,
}

/// Reads `path` and turns each key that `given` (the command line and environment,
/// parsed without the file) does not set into flags. An unknown key, a table or a list
/// is an error that names it.
pub fn read(path: &Path, command: &Command, given: &ArgMatches) -> Result<FileSettings, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {name}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{name} is not valid TOML: {e}"))?;
    let mut settings = FileSettings::default();
    for (key, value) in table {
        let Some(arg) = settings_of(command).find(|arg| arg.get_long() == Some(key.as_str()))
        else {
            return Err(unknown_key(&name, &key, command));
        };
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                    "{name}: `{key}` must be a string, a whole number or true/false, not {}",
                    other.type_str()
                ));
            }
        };
        settings.keys.push(key.clone());
        let id = arg.get_id().as_str();
        if matches!(
            given.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        match arg.get_action() {
            ArgAction::SetTrue => match value.as_str() {
                "true" => settings.flags.push(format!("--{key}").into()),
                "false" => {}
                _ => return Err(format!("{name}: `{key}` must be true or false")),
            },
            _ => settings.flags.push(format!("--{key}={value}").into()),
        }
    }
    Ok(settings)
}

/// The settings `command` takes: its arguments with a long name, but for those that
/// are not settings.
fn settings_of(command: &Command) -> impl Iterator<Item = &clap::Arg> {
    command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some() && !NOT_SETTINGS.contains(&arg.get_id().as_str()))
}

fn unknown_key(file: &impl std::fmt::Display, key: &str, command: &Command) -> String {
    let dashed = key.replace('_', "-");
    let hint = match settings_of(command).any(|arg| arg.get_long() == Some(dashed.as_str())) {
        true => format!(" (did you mean `{dashed}`? keys are the flags' names)"),
        false => " (keys are the flags' names without `--`; see --help)".to_string(),
    };
    format!("{file}: unknown key `{key}`{hint}")
}

/// The settings in effect as a config file would give them, each with where its value
/// came from: `given` parsed without the file, `effective` with it.
pub fn print(
    command: &Command,
    given: &ArgMatches,
    effective: &ArgMatches,
    file: Option<(&Path, &FileSettings)>,
) -> String {
    let mut out = String::from(
        "# The settings in effect: a flag beats its environment variable, which beats\n\
         # the config file, which beats the default. This output is a valid config file.\n",
    );
    for arg in settings_of(command) {
        let (id, key) = (arg.get_id().as_str(), arg.get_long().unwrap_or_default());
        let from = match given.value_source(id) {
            Some(ValueSource::CommandLine) => format!("--{key}"),
            Some(ValueSource::EnvVariable) => arg.get_env().map_or("environment".into(), |env| {
                env.to_string_lossy().into_owned()
            }),
            _ => match file {
                Some((path, settings)) if settings.keys.iter().any(|k| k == key) => {
                    path.display().to_string()
                }
                _ => "default".into(),
            },
        };
        // A setting given several values (`--default-rules`) reads them back from one
        // string, split at `;`.
        let value = effective
            .get_raw(id)
            .map(|values| {
                let values: Vec<_> = values.map(|raw| raw.to_string_lossy()).collect();
                values.join(";")
            })
            .filter(|value| !value.is_empty());
        let _ = match value {
            Some(value) => writeln!(out, "{key} = {}  # {from}", toml_value(&value)),
            None => writeln!(out, "# {key} = (not set)"),
        };
    }
    out
}

/// A value as TOML: numbers and true/false bare, the rest a quoted string (a JSON
/// string is a valid TOML basic string: the same quotes and escapes).
fn toml_value(raw: &str) -> String {
    if raw.parse::<u64>().is_ok() || raw == "true" || raw == "false" {
        raw.to_string()
    } else {
        serde_json::Value::from(raw).to_string()
    }
}
