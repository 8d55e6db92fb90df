//! `--config FILE` and `--print-config` against the real binary: a flag beats its
//! environment variable, which beats the file, which beats the default; every setting
//! has a key, and what `--print-config` prints is itself a config file that gives the
//! same settings; unknown keys and bad values stop the start, named; and a server
//! started from a file serves with its settings.

use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::process::{Command, Output};

mod common;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(common::binary());
    command.args(args);
    // The settings' variables of the machine the tests run on must not leak in.
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("EVENIRE_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command.output().expect("run evenire-server")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the config file");
    path.to_str().expect("a UTF-8 path").to_string()
}

/// `--print-config`'s line for `key`.
fn line_of<'a>(printed: &'a str, key: &str) -> &'a str {
    printed
        .lines()
        .find(|line| line.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{printed}"))
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_flag_beats_its_variable_which_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "evenire.toml",
        "cache-size = \"1GiB\"\nmax-connections = 100\nmax-open-reads = 64\n\
         fsync = \"power-loss-unsafe\"\ninsecure = true\n",
    );
    let printed = stdout(&run(
        &[
            "--config",
            &file,
            "--print-config",
            "--max-open-reads",
            "32",
        ],
        &[
            ("EVENIRE_MAX_CONNECTIONS", "200"),
            ("EVENIRE_MAX_OPEN_READS", "48"),
        ],
    ));
    assert_eq!(
        line_of(&printed, "cache-size"),
        format!("cache-size = \"1GiB\"  # {file}")
    );
    assert_eq!(
        line_of(&printed, "max-connections"),
        "max-connections = 200  # EVENIRE_MAX_CONNECTIONS"
    );
    assert_eq!(
        line_of(&printed, "max-open-reads"),
        "max-open-reads = 32  # --max-open-reads"
    );
    assert_eq!(
        line_of(&printed, "fsync"),
        format!("fsync = \"power-loss-unsafe\"  # {file}")
    );
    assert_eq!(
        line_of(&printed, "insecure"),
        format!("insecure = true  # {file}")
    );
    assert_eq!(
        line_of(&printed, "segment-size"),
        "segment-size = \"64MiB\"  # default"
    );
    assert!(printed.contains("# tls-cert = (not set)"), "{printed}");

    // EVENIRE_CONFIG names the file as --config does.
    let printed = stdout(&run(
        &["--print-config"],
        &[("EVENIRE_CONFIG", file.as_str())],
    ));
    assert!(line_of(&printed, "cache-size").contains("1GiB"));
}

#[test]
fn every_flag_has_a_key_and_the_printed_settings_are_a_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let help = stdout(&run(&["--help"], &[]));
    let printed = stdout(&run(
        &[
            "--print-config",
            "--tls-cert",
            "a.crt",
            "--tls-key",
            "a.key",
            "--health-listen",
            "127.0.0.1:8081",
            "--default-rules",
            "sensor:max-count=10",
            "--default-rules",
            "audit:truncate-before=2",
        ],
        &[],
    ));
    assert!(
        printed.contains(
            "default-rules = \"sensor:max-count=10;audit:truncate-before=2\"  # --default-rules"
        ),
        "a setting of several values: {printed}"
    );
    // Every setting in --help's list of options is printed, as a value or as not set.
    let flags: Vec<&str> = help
        .lines()
        .filter(|line| line.trim_start().starts_with('-'))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix("--"))
        })
        .map(|flag| flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|flag| !["help", "version", "config", "print-config"].contains(flag))
        .collect();
    assert!(flags.len() >= 25, "{flags:?}");
    for flag in &flags {
        assert!(
            printed.contains(&format!("\n{flag} = ")) || printed.contains(&format!("# {flag} = ")),
            "--{flag} has no key in:\n{printed}"
        );
    }
    // Read back as a config file, it gives the same settings, now from the file.
    let file = write(dir.path(), "printed.toml", &printed);
    let again = stdout(&run(&["--config", &file, "--print-config"], &[]));
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.split("  # ").next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(values(&printed), values(&again));
    assert!(line_of(&again, "tls-cert").ends_with(&format!("# {file}")));
}

#[test]
fn unknown_keys_and_bad_values_stop_the_start_with_their_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (text, expected) in [
        (
            "cache_size = \"1GiB\"\n",
            "unknown key `cache_size` (did you mean `cache-size`?",
        ),
        ("cahce-size = \"1GiB\"\n", "unknown key `cahce-size`"),
        (
            "[server]\nlisten = \"0.0.0.0:5243\"\n",
            "unknown key `server`",
        ),
        ("listen = [\"a\", \"b\"]\n", "`listen` must be a string"),
        (
            "max-connections = \"lots\"\n",
            "'lots' for '--max-connections",
        ),
        ("cache-size = \"4MB\"\n", "`4MB` is not a size"),
        ("insecure = \"yes\"\n", "`insecure` must be true or false"),
        ("listen = \n", "is not valid TOML"),
    ] {
        let file = write(dir.path(), "bad.toml", text);
        let output = run(&["--config", &file, "--print-config"], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    let output = run(&["--config", "/nonexistent/evenire.toml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/evenire.toml"));
}

#[tokio::test]
async fn a_server_started_from_a_file_serves_with_its_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "evenire.toml",
        "metrics-listen = \"127.0.0.1:0\"\nmax-event-size = \"1KiB\"\n",
    );
    let data = dir.path().join("data");
    let server = ServerProcess::start(&common::binary(), &data, &["--config", &file])
        .unwrap_or_else(|e| panic!("{e}"));
    common::logged(&server, "metrics are served").await;
    let client = Client::connect(server.uri()).await.expect("connect");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "order");
    let too_large = EventData::new("Placed", vec![b'x'; 2048]);
    let refused = client
        .append(&stream, ExpectedVersion::Any, [too_large])
        .await
        .expect_err("over the file's max-event-size");
    assert!(refused.to_string().contains("1024"), "{refused}");
    common::append_one(&server.uri())
        .await
        .expect("a small event");
}
