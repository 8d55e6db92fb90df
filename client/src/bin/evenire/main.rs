//! `evenire`: look into and operate an Evenire server from the shell.
//!
//! Exit codes: 0 success, 1 the server said no or could not be reached (a one-line
//! message on stderr), 2 usage error.

mod input;
mod output;

use clap::{Parser, Subcommand};
use evenire_client::{
    Client, ClientBuilder, Direction, Error, ListStreams, ReadAllFrom, ReadFrom, StreamId,
    SubscribeFrom, SubscribeOptions, SubscriptionFilter, SubscriptionMessage,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_stream::StreamExt;

/// Operate an Evenire event store.
#[derive(Debug, Parser)]
#[command(name = "evenire", version, about)]
struct Cli {
    /// The server to talk to.
    #[arg(
        long,
        global = true,
        env = "EVENIRE_SERVER",
        default_value = "http://127.0.0.1:5243"
    )]
    server: String,
    /// Trust servers whose certificate this CA signed (PEM) instead of the system's
    /// roots; for `https://` servers.
    #[arg(long, global = true, env = "EVENIRE_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Present this client certificate (PEM) to a server that asks for one; with --key.
    #[arg(
        long,
        global = true,
        env = "EVENIRE_CERT",
        value_name = "FILE",
        requires = "key"
    )]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(
        long,
        global = true,
        env = "EVENIRE_KEY",
        value_name = "FILE",
        requires = "cert"
    )]
    key: Option<PathBuf>,
    /// Send this bearer token with every call.
    #[arg(long, global = true, env = "EVENIRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// JSON for scripts (one object per line for lists and events) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List streams with their info (live ones; --deleted for all).
    Streams {
        /// Only streams of this type.
        #[arg(long = "type")]
        stream_type: Option<String>,
        /// Only keys starting with this.
        #[arg(long)]
        key_prefix: Option<String>,
        /// Deleted and tombstoned streams too.
        #[arg(long)]
        deleted: bool,
        /// Stop after this many streams.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one stream's info.
    Info {
        /// The stream, as TYPE/KEY.
        stream: String,
    },
    /// Read a stream's events, or with --all the whole log's, and end.
    Read {
        /// The stream, as TYPE/KEY; or --all.
        #[arg(required_unless_present = "all")]
        stream: Option<String>,
        /// The whole log ($all), by position.
        #[arg(long, conflicts_with = "stream")]
        all: bool,
        /// From the end, newest first.
        #[arg(long)]
        backward: bool,
        /// Start at this version (with --all: this position).
        #[arg(long)]
        from: Option<u64>,
        /// At most this many events.
        #[arg(long)]
        max: Option<u64>,
    },
    /// Follow new events live, until Ctrl-C: of one stream, or of all with filters.
    Tail {
        /// The stream, as TYPE/KEY; or --all.
        stream: Option<String>,
        /// Every stream (the whole log).
        #[arg(long, conflicts_with = "stream")]
        all: bool,
        /// Only streams of this type (repeatable; with --all).
        #[arg(long = "stream-type")]
        stream_types: Vec<String>,
        /// Only streams whose type starts with this (repeatable; with --all).
        #[arg(long = "stream-type-prefix")]
        stream_type_prefixes: Vec<String>,
        /// Only events of this type (repeatable).
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// Only events whose type starts with this (repeatable).
        #[arg(long = "event-type-prefix")]
        event_type_prefixes: Vec<String>,
        /// Start with the history instead of only new events.
        #[arg(long, conflicts_with = "after")]
        from_start: bool,
        /// Start after this position (with --all) or version (a stream): where a tail
        /// that stopped left off.
        #[arg(long)]
        after: Option<u64>,
    },
    /// Append one event (--type and --data) or several (--jsonl).
    Append {
        /// The stream, as TYPE/KEY.
        stream: String,
        /// The event type.
        #[arg(long = "type", required_unless_present = "jsonl")]
        event_type: Option<String>,
        /// The data: JSON text (checked when it starts with { or [), other text, or
        /// @FILE for a file's bytes as they are.
        #[arg(long, requires = "event_type")]
        data: Option<String>,
        /// The metadata: JSON text, or @FILE.
        #[arg(long, requires = "event_type")]
        metadata: Option<String>,
        /// Store --data and --metadata text as given, even when it looks like JSON
        /// and does not parse.
        #[arg(long, requires = "event_type")]
        raw: bool,
        /// Events as JSON Lines from FILE (- for stdin), one object per line:
        /// {"type": "...", "data": <json>, "metadata": <json>, "id": "uuid"}.
        #[arg(long, conflicts_with_all = ["event_type", "data", "metadata"])]
        jsonl: Option<String>,
        /// The expected version: any, no-stream, exists, or a version.
        #[arg(long, default_value = "any")]
        expect: String,
    },
    /// Delete a stream: softly, or for good with --tombstone.
    Delete {
        /// The stream, as TYPE/KEY.
        stream: String,
        /// Never to be written again.
        #[arg(long)]
        tombstone: bool,
        /// The expected version: any, no-stream, exists, or a version.
        #[arg(long, default_value = "any")]
        expect: String,
    },
    /// Set what a stream keeps readable (needs the `admin` role): the newest N events,
    /// versions from V on, events younger than an age, or any of them together; none
    /// clears its rules. Reads obey at once; the space is reclaimed later.
    Rules {
        /// The stream, as TYPE/KEY.
        stream: String,
        /// Keep only the newest this many events.
        #[arg(long)]
        max_count: Option<u64>,
        /// Keep only versions from this one on.
        #[arg(long)]
        truncate_before: Option<u64>,
        /// Keep only events committed within this long, as 30d, 12h, 90m or 45s.
        #[arg(long)]
        max_age: Option<String>,
        /// The revision the rules must be at (as `evenire info` shows); default: any.
        #[arg(long)]
        expect_revision: Option<u64>,
    },
    /// Save a snapshot of a stream at a version, or read a stream from its latest one.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Give back the disk of what deletes, tombstones and stream rules removed (needs
    /// the `admin` role): the server rewrites its sealed segments while it serves.
    /// Shows each segment as it goes.
    Scavenge {
        /// Change nothing: show what a scavenge would free now, by stream type.
        #[arg(long)]
        dry_run: bool,
        /// Bytes a second it may read and write, as 50MiB (default: the server's
        /// --scavenge-rate-limit).
        #[arg(long)]
        rate_limit: Option<String>,
    },
    /// Check the server's health.
    Health,
    /// Show the server's version and state, and what its store holds.
    Server,
    /// Back the store up into DIR, online (needs the `admin` role): the first run copies
    /// everything, later runs only what is new, and a run into the directory of an
    /// interrupted one finishes it. DIR is a data directory once the backup's manifest
    /// is written; `evenire-server restore --from DIR` restores it.
    Backup {
        /// The backup directory (created if missing).
        dir: std::path::PathBuf,
    },
}

/// What `evenire snapshot` does.
#[derive(Debug, Subcommand)]
enum SnapshotAction {
    /// Save the state of a stream at one of its versions.
    Save {
        /// The stream, as TYPE/KEY.
        stream: String,
        /// The version the state is at.
        #[arg(long)]
        version: u64,
        /// What the state is.
        #[arg(long = "type")]
        snapshot_type: String,
        /// The state: JSON text (checked when it starts with { or [), other text, or
        /// @FILE for a file's bytes as they are.
        #[arg(long)]
        data: String,
        /// Store --data as given, even when it looks like JSON and does not parse.
        #[arg(long)]
        raw: bool,
    },
    /// Show a stream's latest snapshot, then the events after it.
    Read {
        /// The stream, as TYPE/KEY.
        stream: String,
    },
}

/// Why a command failed, and so how the process exits.
enum Failure {
    /// The input does not make sense: exit 2.
    Usage(String),
    /// The server said no, or could not be reached: exit 1.
    Server(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Server(e.to_string())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("evenire: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Server(message)) => {
            eprintln!("evenire: {message}");
            ExitCode::from(1)
        }
    }
}

/// The connection settings the flags give: the address, TLS files and the token.
fn builder(cli: &Cli) -> Result<ClientBuilder, Failure> {
    let mut builder = Client::builder(cli.server.clone());
    if let Some(ca) = &cli.ca {
        builder = builder.ca_certificate(read_file("--ca", ca)?);
    }
    if let (Some(cert), Some(key)) = (&cli.cert, &cli.key) {
        builder = builder.client_certificate(read_file("--cert", cert)?, read_file("--key", key)?);
    }
    if let Some(token) = &cli.token {
        builder = builder.token(token.clone());
    }
    Ok(builder)
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))
}

/// What a failed connection becomes: a usage error for a bad address or setting, else
/// "cannot reach".
fn not_connected(server: &str, error: Error) -> Failure {
    match error {
        Error::InvalidUri(m) => Failure::Usage(format!("--server {server}: {m}")),
        other => Failure::Server(format!(
            "cannot reach the server at {server}: {}",
            root_cause(&other)
        )),
    }
}

async fn connect(cli: &Cli) -> Result<Client, Failure> {
    builder(cli)?
        .connect()
        .await
        .map_err(|e| not_connected(&cli.server, e))
}

/// The innermost cause of an error: "Connection refused", not a chain of wrappers.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn run(cli: &Cli) -> Result<(), Failure> {
    let out = output::Printer { json: cli.json };
    match &cli.command {
        Command::Streams {
            stream_type,
            key_prefix,
            deleted,
            limit,
        } => {
            let client = connect(cli).await?;
            let mut list = ListStreams {
                stream_type: stream_type.clone(),
                key_prefix: key_prefix.clone(),
                include_deleted: *deleted,
                page_size: 1000,
                page_token: None,
            };
            let mut table = out.streams_table();
            let mut shown = 0;
            loop {
                let page = client.list_streams(&list).await?;
                for info in page.streams {
                    if limit.is_some_and(|l| shown >= l) {
                        table.finish();
                        return Ok(());
                    }
                    table.row(&info);
                    shown += 1;
                }
                match page.next_page_token {
                    Some(token) => list.page_token = Some(token),
                    None => break,
                }
            }
            table.finish();
        }
        Command::Info { stream } => {
            let stream = input::stream_id(stream)?;
            let client = connect(cli).await?;
            out.info(&client.get_stream(&stream).await?);
        }
        Command::Read {
            stream,
            all,
            backward,
            from,
            max,
        } => {
            let direction = if *backward {
                Direction::Backward
            } else {
                Direction::Forward
            };
            let stream = match (stream, all) {
                (Some(stream), false) => Some(input::stream_id(stream)?),
                _ => None,
            };
            let client = connect(cli).await?;
            let mut events = match stream {
                Some(stream) => {
                    let start = match (from, direction) {
                        (Some(v), _) => ReadFrom::Version(*v),
                        (None, Direction::Forward) => ReadFrom::Start,
                        (None, Direction::Backward) => ReadFrom::End,
                    };
                    client.read(&stream, start, direction, *max).await?
                }
                None => {
                    let start = match (from, direction) {
                        (Some(p), _) => ReadAllFrom::Position(*p),
                        (None, Direction::Forward) => ReadAllFrom::Start,
                        (None, Direction::Backward) => ReadAllFrom::End,
                    };
                    client.read_all(start, direction, *max).await?
                }
            };
            let mut table = out.events_table();
            while let Some(event) = events.next().await {
                table.row(&event?);
            }
            table.finish();
        }
        Command::Tail {
            stream,
            all,
            stream_types,
            stream_type_prefixes,
            event_types,
            event_type_prefixes,
            from_start,
            after,
        } => {
            let from = match (after, from_start) {
                (Some(after), _) => SubscribeFrom::After(*after),
                (None, true) => SubscribeFrom::Start,
                (None, false) => SubscribeFrom::End,
            };
            let filter = SubscriptionFilter {
                stream_types: stream_types.clone(),
                stream_type_prefixes: stream_type_prefixes.clone(),
                event_types: event_types.clone(),
                event_type_prefixes: event_type_prefixes.clone(),
            };
            let options = SubscribeOptions::filtered(filter);
            let target = match (stream, all) {
                (Some(stream), false) => Some(input::stream_id(stream)?),
                (None, true) => None,
                _ => {
                    return Err(Failure::Usage(
                        "tail needs a stream (TYPE/KEY) or --all".into(),
                    ));
                }
            };
            let client = connect(cli).await?;
            let mut subscription = match &target {
                Some(stream) => client.subscribe(stream, from, options).await?,
                None => client.subscribe_all(from, options).await?,
            };
            let mut table = out.events_table();
            // Events on stdout, a header once; what happens to the subscription on
            // stderr, so that the data stays clean for a pipe.
            while let Some(message) = subscription.next().await {
                match message? {
                    SubscriptionMessage::Event(event) => {
                        table.row(&event);
                        table.flush();
                    }
                    SubscriptionMessage::CaughtUp { position } => eprintln!(
                        "-- caught up{}; following live (Ctrl-C to stop)",
                        position.map_or_else(String::new, |p| format!(" at position {p}"))
                    ),
                    SubscriptionMessage::Reconnecting { reason } => eprintln!(
                        "-- connection lost ({reason}); reconnecting, to go on after the \
                         last event shown"
                    ),
                    // Checkpoints, and kinds a newer client may add: nothing to show.
                    _ => {}
                }
            }
        }
        Command::Append {
            stream,
            event_type,
            data,
            metadata,
            raw,
            jsonl,
            expect,
        } => {
            let stream: StreamId = input::stream_id(stream)?;
            let expected = input::expected_version(expect)?;
            let events = match (jsonl, event_type) {
                (Some(source), _) => input::json_lines(source)?,
                (None, Some(event_type)) => {
                    vec![input::event(
                        event_type,
                        data.as_deref(),
                        metadata.as_deref(),
                        *raw,
                    )?]
                }
                (None, None) => {
                    return Err(Failure::Usage("append needs --type or --jsonl".into()));
                }
            };
            let count = events.len();
            let client = connect(cli).await?;
            let result = client.append(&stream, expected, events).await?;
            out.appended(&stream, count, &result);
        }
        Command::Delete {
            stream,
            tombstone,
            expect,
        } => {
            let stream = input::stream_id(stream)?;
            let expected = input::expected_version(expect)?;
            let client = connect(cli).await?;
            let through = client.delete_stream(&stream, expected, *tombstone).await?;
            out.deleted(&stream, *tombstone, through);
        }
        Command::Backup { dir } => {
            let client = connect(cli).await?;
            let report = client.backup_to(dir).await?;
            out.backed_up(dir, &report);
        }
        Command::Snapshot { action } => snapshot(cli, out, action).await?,
        Command::Rules {
            stream,
            max_count,
            truncate_before,
            max_age,
            expect_revision,
        } => {
            let stream = input::stream_id(stream)?;
            let rules = evenire_client::StreamRules {
                max_count: *max_count,
                truncate_before: *truncate_before,
                max_age_seconds: max_age.as_deref().map(input::seconds).transpose()?,
            };
            let client = connect(cli).await?;
            let revision = client
                .set_stream_rules(&stream, rules, *expect_revision)
                .await?;
            out.rules_set(&stream, &rules, revision);
        }
        Command::Scavenge {
            dry_run,
            rate_limit,
        } => {
            let rate = rate_limit.as_deref().map(input::byte_size).transpose()?;
            let client = connect(cli).await?;
            let reports = client.scavenge(*dry_run, rate).await?;
            tokio::pin!(reports);
            let mut last = None;
            while let Some(report) = reports.next().await {
                let report = report?;
                out.scavenge_progress(&report);
                last = Some(report);
            }
            match last.filter(|r| r.done) {
                Some(report) => out.scavenged(&report),
                None => {
                    return Err(Failure::Server(
                        "the scavenge's reports ended before it was done".into(),
                    ));
                }
            }
        }
        Command::Server => {
            let client = connect(cli).await?;
            out.server_info(&client.server_info().await?);
        }
        Command::Health => {
            let serving = health(cli).await?;
            out.health(&cli.server, &serving);
            if serving != "SERVING" {
                return Err(Failure::Server(format!("the server is {serving}")));
            }
        }
    }
    Ok(())
}

/// `evenire snapshot save` and `evenire snapshot read`.
async fn snapshot(cli: &Cli, out: output::Printer, action: &SnapshotAction) -> Result<(), Failure> {
    match action {
        SnapshotAction::Save {
            stream,
            version,
            snapshot_type,
            data,
            raw,
        } => {
            let stream = input::stream_id(stream)?;
            let data = input::bytes_of(data, "--data", *raw)?;
            let client = connect(cli).await?;
            client
                .save_snapshot(&stream, *version, snapshot_type.as_str(), data)
                .await?;
            out.snapshot_saved(&stream, *version);
        }
        SnapshotAction::Read { stream } => {
            let stream = input::stream_id(stream)?;
            let client = connect(cli).await?;
            let read = client.read_from_snapshot(&stream).await?;
            out.snapshot(read.snapshot.as_ref(), &read.events);
        }
    }
    Ok(())
}

/// The server's status for its event store service, as grpc.health.v1 names it.
async fn health(cli: &Cli) -> Result<String, Failure> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let channel = builder(cli)?
        .channel()
        .await
        .map_err(|e| not_connected(&cli.server, e))?;
    let request = HealthCheckRequest {
        service: evenire_client::SERVICE_NAME.to_string(),
    };
    let response = HealthClient::new(channel)
        .check(request)
        .await
        .map_err(Error::from)?;
    let status =
        ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown);
    Ok(status.as_str_name().to_string())
}
