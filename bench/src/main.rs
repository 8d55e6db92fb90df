//! `evenire-bench`: measures Evenire on a real server over real gRPC, next to the
//! ceilings of the machine it runs on, and prints every figure with its conditions,
//! latency percentiles (HDR histograms) and its ratio to the ceiling; writes the same
//! as JSON. BENCHMARKS.md records the latest run.
//!
//! ```sh
//! cargo build --release -p evenire-server -p evenire-bench
//! target/release/evenire-bench                       # everything, about 5 minutes
//! target/release/evenire-bench --only ceilings,appends --seconds 3
//! target/release/evenire-bench --quick               # small sizes, seconds
//! target/release/evenire-bench --runs 3 --scale-dir /var/tmp/evenire-scale
//!                                                    # each line's median of 3 runs
//! target/release/evenire-bench --soak-seconds 300    # memory over minutes of load
//! ```
//!
//! The server is the `evenire-server` binary beside this program, started on
//! 127.0.0.1:0 over a fresh directory under `--data-dir`; `--in-process` runs it in
//! this process instead, `--server URI` targets one already running.

mod appends;
mod backup;
mod ceilings;
mod cpu;
mod reads;
mod report;
mod scale;
mod scavenge;
mod security;
mod server;
mod soak;

use appends::AppendLoad;
use clap::Parser;
use cpu::CpuMeter;
use evenire_client::{Client, StreamId};
use evenire_server::config::{ByteSize, Fsync};
use evenire_testkit::process::ServerProcess;
use report::{Figure, Machine, Run};
use server::{BoxError, InProcess};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser, serde::Serialize)]
#[command(about = "Benchmarks Evenire on a real server against this machine's ceilings")]
struct Args {
    /// Target an existing server instead of starting one (no cold reads, no scale).
    #[arg(long)]
    server: Option<String>,
    /// The server binary to start (default: evenire-server beside this program).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Run the server inside this process instead of as the binary.
    #[arg(long)]
    in_process: bool,
    /// Where started servers keep their data (fresh directories are made inside).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// fsync policy of the started server.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    #[serde(serialize_with = "as_debug")]
    fsync: Fsync,
    /// Cache size of the started server.
    #[arg(long, default_value_t = ByteSize::mib(256))]
    #[serde(serialize_with = "as_display")]
    cache_size: ByteSize,
    /// Cache size of the server the cached reads run on: large enough for the stream.
    #[arg(long, default_value_t = ByteSize::mib(1024))]
    #[serde(serialize_with = "as_display")]
    read_cache_size: ByteSize,
    /// gRPC connections the clients share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds each timed run lasts.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Events in the stream that is read forward.
    #[arg(long, default_value_t = 1_000_000)]
    stream_events: u64,
    /// Streams whose last event is read backward.
    #[arg(long, default_value_t = 100_000)]
    streams: usize,
    /// Log sizes (events, 10 per stream) at which start-up after a clean stop and after
    /// a kill -9, memory, and the append and read lines are measured.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000_u64, 10_000_000])]
    scale: Vec<u64>,
    /// Keep the scale logs in this directory (one subdirectory per size) and reuse them
    /// on the next run, instead of writing fresh ones in a temporary directory. Runs
    /// never change them: each measures a copy in `--data-dir` (sealed segments
    /// hard-linked when both are on one file system).
    #[arg(long)]
    scale_dir: Option<PathBuf>,
    /// Events in the log the scavenge section writes (streams of 10), half of whose
    /// streams it deletes before scavenging.
    #[arg(long, default_value_t = 10_000_000)]
    scavenge_events: u64,
    /// The scavenge section's rate limit, bytes a second (the call's own; 0: the
    /// server's setting).
    #[arg(long, default_value_t = ByteSize(0))]
    #[serde(serialize_with = "as_display")]
    scavenge_rate_limit: ByteSize,
    /// Where the backup section writes its backups (fresh directories inside): by
    /// default beside the data, on the same disk, the worst case; another disk, or
    /// /dev/shm, leaves the server's side alone in the figure.
    #[arg(long)]
    backup_dir: Option<PathBuf>,
    /// Only these sections: ceilings, appends, reads, fanout, security, backup, scavenge,
    /// scale.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only the append runs whose name contains this text ("batches of 1000 x 100"):
    /// for a quick before-and-after of one figure.
    #[arg(long)]
    appends_named: Option<String>,
    /// Run everything this many times and report each line's median run, with every
    /// run's rate beside it: this machine is shared, and one run can be off by half.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Small sizes and 1-second runs: to see the program work, not to quote.
    #[arg(long)]
    quick: bool,
    /// Pins the server binary this program starts to these CPUs (`taskset -c` syntax,
    /// "0"); run this program under `taskset -c` on the others, so that an A/B measures
    /// the server without the load generator on its cores.
    #[arg(long)]
    server_cpus: Option<String>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/evenire-bench.json")]
    json: PathBuf,
    /// Instead of the benchmark: this many kill -9 / restart cycles of the server binary
    /// under concurrent appends, checking the whole log after each (the long mode of
    /// server/tests/crash_recovery.rs).
    #[arg(long)]
    crash_cycles: Option<usize>,
    /// Replays a crash run (the seed is printed at its start).
    #[arg(long)]
    crash_seed: Option<u64>,
    /// With --crash-cycles: streams deleted and scavenges running beside the appenders,
    /// checking also that no reclaimed event comes back.
    #[arg(long, requires = "crash_cycles")]
    crash_scavenging: bool,
    /// Instead of the benchmark: a soak of this many seconds of mixed load against the
    /// server binary, sampling its memory every second.
    #[arg(long)]
    soak_seconds: Option<u64>,
    /// With --soak-seconds: hostile clients join the normal ones after the first third
    /// (an idle connection flood, read and subscription hogs, slow readers, clients that
    /// vanish mid-read), and the verdict compares the normal clients' p99 in the two.
    #[arg(long)]
    soak_hostile: bool,
}

fn as_debug<T: std::fmt::Debug, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:?}"))
}

fn as_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Args {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }

    fn wants_append(&self, load: &AppendLoad) -> bool {
        self.appends_named
            .as_ref()
            .is_none_or(|text| load.name().contains(text.as_str()))
    }

    /// The conditions every line shares, for the tables: which server, fsync policy,
    /// cache sizes, run length, connections.
    fn setup(&self) -> String {
        let server = match (&self.server, self.in_process) {
            (Some(uri), _) => uri.clone(),
            (None, true) => "in this process".to_string(),
            (None, false) => match &self.server_cpus {
                Some(cpus) => format!("evenire-server binary, its own process on CPUs {cpus}"),
                None => "evenire-server binary, its own process".to_string(),
            },
        };
        let meaning = match self.fsync {
            Fsync::Always => "fdatasync before every acknowledgement",
            Fsync::PowerLossUnsafe => "acknowledged once in the OS page cache",
        };
        format!(
            "server: {server}; fsync {} ({meaning}); cache {} ({} for the stream reads); \
             {} s per timed run; {} gRPC connections",
            fsync_arg(self.fsync),
            self.cache_size,
            self.read_cache_size,
            self.duration().as_secs_f64(),
            self.connections
        )
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(if self.quick { 1.0 } else { self.seconds })
    }
}

/// The fsync policy as the server's `--fsync` spells it.
fn fsync_arg(fsync: Fsync) -> &'static str {
    match fsync {
        Fsync::Always => "always",
        Fsync::PowerLossUnsafe => "power-loss-unsafe",
    }
}

/// The server a section runs against.
enum Server {
    External(String),
    InProcess(InProcess),
    Process(ServerProcess),
}

impl Server {
    async fn start(args: &Args, dir: &Path, cache: ByteSize) -> Result<Server, BoxError> {
        Self::start_with(args, dir, cache, &[]).await
    }

    /// [`start`](Self::start), with `extra` flags for a server binary it starts.
    async fn start_with(
        args: &Args,
        dir: &Path,
        cache: ByteSize,
        extra: &[String],
    ) -> Result<Server, BoxError> {
        if let Some(uri) = &args.server {
            return Ok(Server::External(uri.clone()));
        }
        if args.in_process {
            let mut config = evenire_server::Config::new(dir);
            config.fsync = args.fsync;
            config.cache_size = cache;
            return Ok(Server::InProcess(InProcess::start(config).await?));
        }
        let binary = server::binary(args.server_bin.as_deref())?;
        let cache = cache.to_string();
        let fsync = fsync_arg(args.fsync);
        let mut flags = vec!["--cache-size", &cache, "--fsync", fsync];
        flags.extend(extra.iter().map(String::as_str));
        let process = tokio::task::block_in_place(|| {
            ServerProcess::start_pinned(&binary, dir, &flags, args.server_cpus.as_deref())
        })?;
        Ok(Server::Process(process))
    }

    /// The server's process id when it is a process of its own (for its CPU time).
    fn pid(&self) -> Option<u32> {
        match self {
            Server::Process(server) => Some(server.child.id()),
            Server::External(_) | Server::InProcess(_) => None,
        }
    }

    fn uri(&self) -> String {
        match self {
            Server::External(uri) => uri.clone(),
            Server::InProcess(server) => server.uri.clone(),
            Server::Process(server) => server.uri(),
        }
    }

    async fn clients(&self, connections: usize) -> Result<Vec<Client>, BoxError> {
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            clients.push(Client::connect(self.uri()).await?);
        }
        Ok(clients)
    }

    async fn stop(self) -> Result<(), BoxError> {
        match self {
            Server::External(_) => Ok(()),
            Server::InProcess(server) => server.stop().await,
            Server::Process(server) => {
                server.kill();
                Ok(())
            }
        }
    }
}

/// Figures as they are measured: each printed at once, all kept for the closing table.
#[derive(Default)]
struct Results {
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Results {
    fn add(&mut self, figure: Figure) -> Figure {
        figure.print();
        self.figures.push(figure.clone());
        figure
    }

    fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  note: {note}");
        self.notes.push(note);
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = Args::parse();
    if let Some(seconds) = args.soak_seconds {
        let binary = server::binary(args.server_bin.as_deref())?;
        let cache_mib = args.cache_size.0 >> 20;
        return soak::run(&binary, seconds, args.soak_hostile, cache_mib, 100).await;
    }
    if let Some(cycles) = args.crash_cycles {
        let binary = server::binary(args.server_bin.as_deref())?;
        let seed = args
            .crash_seed
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        // The harness of server/tests/crash_recovery.rs, for as many cycles as asked.
        let report = match args.crash_scavenging {
            true => evenire_testkit::crash::run_scavenging(&binary, cycles, seed).await,
            false => evenire_testkit::crash::run(&binary, cycles, seed).await,
        };
        println!(
            "kill -9: {} cycles, {} appends sent, {} unanswered and retried, {} events in the log, \
             {} reclaimed, lost 0",
            report.cycles, report.sent, report.unanswered, report.events, report.reclaimed
        );
        return Ok(());
    }
    if args.quick {
        args.stream_events = args.stream_events.min(100_000);
        args.streams = args.streams.min(10_000);
        args.scavenge_events = args.scavenge_events.min(100_000);
        args.scale = vec![100_000];
    }
    let root = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    let machine = Machine::read(&root);
    machine.print();
    let setup = args.setup();
    println!("{setup}");
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut each_run = Vec::new();
    let mut notes = Vec::new();
    for run in 1..=args.runs {
        if args.runs > 1 {
            println!("run {run} of {}", args.runs);
        }
        let results = measure(&args, &root).await?;
        each_run.push(results.figures);
        notes.extend(results.notes.into_iter().map(|note| match args.runs {
            1 => note,
            _ => format!("run {run}: {note}"),
        }));
    }
    let figures = match args.runs {
        1 => each_run.pop().unwrap_or_default(),
        _ => report::medians(&each_run),
    };

    println!();
    match args.runs {
        1 => println!("closing table"),
        runs => println!("closing table: each line's median of {runs} runs"),
    }
    machine.print();
    println!("{setup}");
    report::print_header();
    for figure in &figures {
        figure.print();
    }
    for note in &notes {
        println!("note: {note}");
    }
    let run = Run {
        started_unix,
        machine,
        setup,
        settings: serde_json::to_value(&args)?,
        figures,
        each_run,
        notes,
    };
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&run)?)?;
    let markdown = args.json.with_extension("md");
    std::fs::write(&markdown, run.markdown())?;
    println!(
        "written: {} and {}",
        args.json.display(),
        markdown.display()
    );
    Ok(())
}

/// Every section asked for, once.
async fn measure(args: &Args, root: &Path) -> Result<Results, BoxError> {
    let mut results = Results::default();
    report::print_header();

    // The scale section starts servers of its own; the others need the ceilings.
    if ["ceilings", "appends", "fanout", "reads"]
        .iter()
        .any(|section| args.wants(section))
    {
        let ceilings = main_server_figures(args, &mut results, root).await?;
        if args.wants("reads") {
            read_figures(args, &mut results, root, &ceilings).await?;
        }
    }
    if args.wants("security") {
        security_figures(args, &mut results, root).await?;
    }
    if args.wants("backup") {
        backup_figures(args, &mut results, root).await?;
    }
    if args.wants("scavenge") {
        scavenge_figures(args, &mut results, root).await?;
    }
    if args.wants("scale") {
        scale_figures(args, &mut results, root).await?;
    }

    Ok(results)
}

/// The ceilings, then appends and fan-out, on one server over a fresh directory.
async fn main_server_figures(
    args: &Args,
    results: &mut Results,
    root: &Path,
) -> Result<Ceilings, BoxError> {
    let main_dir = tempfile::tempdir_in(root)?;
    let server = Server::start(args, main_dir.path(), args.cache_size).await?;
    let clients = server.clients(args.connections).await?;
    let ceilings = measure_ceilings(args, results, &server, main_dir.path()).await?;
    if args.wants("appends") {
        append_figures(args, results, &clients, server.pid(), &ceilings).await?;
    }
    if args.wants("fanout") {
        for subscribers in [1, 100] {
            let meter = CpuMeter::start(server.pid());
            let (figure, _) = reads::fan_out(&clients, subscribers, args.duration(), 100).await?;
            results.add(meter.finish(figure));
        }
    }
    drop(clients);
    server.stop().await?;
    Ok(ceilings)
}

/// What the other figures are compared with.
struct Ceilings {
    /// Empty calls per second, by concurrency.
    empty_rpc: BTreeMap<usize, f64>,
    /// Median latency of one empty call from one client.
    empty_rpc_latency: Duration,
    fdatasync_latency: Duration,
    /// Bytes per second made durable in 1 MiB writes.
    write_bandwidth: f64,
}

const CONCURRENCIES: [usize; 4] = [1, 16, 64, 256];

async fn measure_ceilings(
    args: &Args,
    results: &mut Results,
    server: &Server,
    dir: &Path,
) -> Result<Ceilings, BoxError> {
    let short = Duration::from_secs_f64(args.duration().as_secs_f64().min(2.0));
    let fsync = results.add(ceilings::fdatasync(dir, 4096, short)?);
    let write = results.add(ceilings::fdatasync(dir, 1 << 20, short)?);
    let mut empty_rpc = BTreeMap::new();
    let mut empty_rpc_latency = Duration::ZERO;
    let uri = server.uri();
    for concurrency in CONCURRENCIES {
        let figure = ceilings::empty_rpc(&uri, args.connections, concurrency, short);
        let figure = cpu::measured(server.pid(), figure).await?;
        if concurrency == 1 {
            empty_rpc_latency = p50(&figure);
        }
        empty_rpc.insert(concurrency, figure.rate);
        results.add(figure);
    }
    Ok(Ceilings {
        empty_rpc,
        empty_rpc_latency,
        fdatasync_latency: p50(&fsync),
        write_bandwidth: write.rate * 1024.0 * 1024.0,
    })
}

fn p50(figure: &Figure) -> Duration {
    figure
        .latency
        .as_ref()
        .map_or(Duration::ZERO, |l| Duration::from_secs_f64(l.p50_ms / 1e3))
}

/// The batch runs as (events per request, payload bytes, clients): 8 clients, and 32
/// for the big batches of small events, which 8 leave short of the machine: each
/// client waits for its batch's transfer, decoding, write and sync in turn, and both
/// cores were idle a seventh of the time.
const BATCH_LOADS: [(usize, usize, usize); 8] = [
    (10, 100, 8),
    (100, 100, 8),
    (1000, 100, 8),
    (10, 4096, 8),
    (100, 4096, 8),
    (1000, 4096, 8),
    (100, 100, 32),
    (1000, 100, 32),
];

async fn append_figures(
    args: &Args,
    results: &mut Results,
    clients: &[Client],
    server_pid: Option<u32>,
    ceilings: &Ceilings,
) -> Result<(), BoxError> {
    let duration = args.duration();
    for concurrency in CONCURRENCIES {
        for payload in [100, 4096] {
            if payload == 4096 && concurrency != 64 {
                continue;
            }
            let load = AppendLoad {
                batch: 1,
                payload,
                concurrency,
                duration,
                one_connection: false,
            };
            if !args.wants_append(&load) {
                continue;
            }
            let figure = cpu::measured(server_pid, appends::run(clients, load)).await?;
            let figure = if concurrency == 1 {
                let round_trip = ceilings.empty_rpc_latency + ceilings.fdatasync_latency;
                figure.against(
                    "1 / (empty RPC p50 + fdatasync p50)",
                    1.0 / round_trip.as_secs_f64().max(1e-9),
                )
            } else {
                figure.against(
                    format!("empty RPC, {concurrency} clients"),
                    ceilings.empty_rpc[&concurrency],
                )
            };
            results.add(figure);
        }
    }
    for (batch, payload, concurrency) in BATCH_LOADS {
        let load = AppendLoad {
            batch,
            payload,
            concurrency,
            duration,
            one_connection: false,
        };
        if !args.wants_append(&load) {
            continue;
        }
        let on_disk = on_disk_bytes_per_event(batch, payload);
        let figure = cpu::measured(server_pid, appends::run(clients, load)).await?;
        let figure = figure.against(
            format!("1 MiB write + fdatasync bandwidth / {on_disk:.0} B per event"),
            ceilings.write_bandwidth / on_disk,
        );
        results.add(figure);
    }
    // The tail on one shared connection: its p99 against its p50 is the figure to
    // watch (issue 26 asks for p99 within 2.5x of p50 at 32 writers).
    for writers in ONE_CONNECTION_WRITERS {
        let load = AppendLoad {
            batch: 1,
            payload: 100,
            concurrency: writers,
            duration,
            one_connection: true,
        };
        if !args.wants_append(&load) {
            continue;
        }
        let figure = cpu::measured(server_pid, appends::run(clients, load)).await?;
        let spread = figure
            .latency
            .as_ref()
            .map_or(0.0, |l| l.p99_ms / l.p50_ms.max(1e-9));
        let conditions = format!("{}; p99 / p50 = {spread:.1}", figure.conditions);
        results.add(figure.conditions(conditions));
    }
    Ok(())
}

/// Writers sharing one connection in the tail-latency lines.
const ONE_CONNECTION_WRITERS: [usize; 4] = [1, 8, 32, 128];

/// Bytes an event takes in the log when appended `batch` at a time.
fn on_disk_bytes_per_event(batch: usize, payload: usize) -> f64 {
    use evenire_server::store::{EventData, StreamId};
    let stream = StreamId {
        key: uuid::Uuid::nil(),
        stream_type: "bench".into(),
    };
    let events: Vec<_> = (0..batch)
        .map(|_| EventData {
            id: uuid::Uuid::nil(),
            event_type: "Benchmarked".into(),
            data: bytes::Bytes::from(vec![0; payload]),
            metadata: bytes::Bytes::new(),
        })
        .collect();
    evenire_server::store::record::encoded_append_len(&stream, &events) as f64 / batch as f64
}

/// Single-event appends and the stream read in plain text, then over TLS with a token,
/// each on a server just started over the same directory (security.rs).
async fn security_figures(args: &Args, results: &mut Results, root: &Path) -> Result<(), BoxError> {
    if args.server.is_some() || args.in_process {
        results.note("TLS lines need the server binary this program starts; skipped");
        return Ok(());
    }
    let dir = tempfile::tempdir_in(root)?;
    let transport = security::Transport::new();
    let stream = StreamId::new(uuid::Uuid::new_v4(), "bench-read");
    let server = Server::start(args, dir.path(), args.read_cache_size).await?;
    let clients = server.clients(1).await?;
    appends::fill_stream(&clients[0], &stream, args.stream_events, 100).await?;
    drop(clients);
    server.stop().await?;

    let server = Server::start(args, dir.path(), args.read_cache_size).await?;
    let clients = server.clients(args.connections).await?;
    let plain = security::measure(&clients, &stream, "plain text", args.duration()).await?;
    drop(clients);
    server.stop().await?;

    let flags = transport.server_args();
    let server = Server::start_with(args, dir.path(), args.read_cache_size, &flags).await?;
    let Server::Process(process) = &server else {
        return Err("the TLS server is the binary this program starts".into());
    };
    let clients = transport.clients(process, args.connections).await?;
    let secured = security::measure(&clients, &stream, "TLS + token", args.duration()).await?;
    drop(clients);
    server.stop().await?;
    for (plain, secured) in plain.into_iter().zip(secured) {
        let rate = plain.rate;
        results.add(plain);
        results.add(secured.against("the same in plain text, same run", rate));
    }
    Ok(())
}

/// Appends with and without backups running beside them, over a store of one
/// `--stream-events` stream (backup.rs).
async fn backup_figures(args: &Args, results: &mut Results, root: &Path) -> Result<(), BoxError> {
    let dir = tempfile::tempdir_in(root)?;
    let server = Server::start(args, dir.path(), args.cache_size).await?;
    let clients = server.clients(args.connections).await?;
    let stream = StreamId::new(uuid::Uuid::new_v4(), "bench-backup");
    appends::fill_stream(&clients[0], &stream, args.stream_events, 100).await?;
    let backups = tempfile::tempdir_in(args.backup_dir.as_deref().unwrap_or(root))?;
    let [alone, during] = backup::measure(&clients, backups.path(), args.duration()).await?;
    drop(clients);
    server.stop().await?;
    results.add(alone);
    results.add(during);
    Ok(())
}

/// A scavenge of a log half of whose streams were deleted, and appends beside it
/// (scavenge.rs).
async fn scavenge_figures(args: &Args, results: &mut Results, root: &Path) -> Result<(), BoxError> {
    if args.server.is_some() || args.in_process {
        results.note("scavenge needs the server binary started by this program; skipped");
        return Ok(());
    }
    let dir = tempfile::tempdir_in(root)?;
    scavenge::prepare(dir.path(), args.scavenge_events).await?;
    let flags = [
        "--metrics-listen".to_string(),
        "127.0.0.1:0".to_string(),
        "--segment-size".to_string(),
        scavenge::segment_size(args.scavenge_events).to_string(),
    ];
    let server = Server::start_with(args, dir.path(), args.cache_size, &flags).await?;
    let Server::Process(process) = &server else {
        return Err("the scavenge section starts the server binary".into());
    };
    let mut metrics = None;
    for _ in 0..100 {
        metrics = process
            .log_lines_with("metrics_listen=")
            .first()
            .and_then(|line| line.split("metrics_listen=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string);
        if metrics.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = metrics.ok_or("the server did not log its metrics address")?;
    let clients = server.clients(args.connections).await?;
    let sizes = || async {
        let mut disk_bytes = 0;
        for file in segment_files(dir.path())? {
            disk_bytes += std::fs::metadata(file)?.len();
        }
        let index_bytes = scavenge::index_bytes(&metrics).await?;
        Ok(scavenge::Sizes {
            disk_bytes,
            index_bytes,
        })
    };
    let rate = Some(args.scavenge_rate_limit.0).filter(|r| *r > 0);
    let measured =
        scavenge::measure(&clients, args.duration(), args.scavenge_events, rate, sizes).await?;
    let rewritten = process.log_lines_with("segment rewritten");
    drop(clients);
    server.stop().await?;
    let [alone, during, mut scavenged] = measured.figures;
    for (field, what) in [
        (
            "index_locked_us=",
            "the index locked for appends at the switch",
        ),
        ("plan_read_locked_us=", "read-locked while planning"),
    ] {
        if let Some((median, max)) = median_and_max(&rewritten, field) {
            scavenged.conditions = format!(
                "{}; {what} {:.1} ms per segment (median), {:.1} ms at most",
                scavenged.conditions,
                median as f64 / 1e3,
                max as f64 / 1e3
            );
        }
    }
    for figure in [alone, during, scavenged] {
        results.add(figure);
    }
    Ok(())
}

/// The median and the largest of the whole numbers after `field` in `lines`.
fn median_and_max(lines: &[String], field: &str) -> Option<(u64, u64)> {
    let mut values: Vec<u64> = lines
        .iter()
        .filter_map(|line| line.split(field).nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    values.sort_unstable();
    Some((*values.get(values.len() / 2)?, *values.last()?))
}

/// Reads from a server with a cache large enough for them, then from a restarted one
/// with the cache off and the OS page cache dropped.
async fn read_figures(
    args: &Args,
    results: &mut Results,
    root: &Path,
    ceilings: &Ceilings,
) -> Result<(), BoxError> {
    let dir = tempfile::tempdir_in(root)?;
    let server = Server::start(args, dir.path(), args.read_cache_size).await?;
    let clients = server.clients(args.connections).await?;
    let stream = StreamId::new(uuid::Uuid::new_v4(), "bench-read");
    appends::fill_stream(&clients[0], &stream, args.stream_events, 100).await?;
    let sensors = reads::fill_streams(&clients, args.streams, 1, 100).await?;
    let segments = segment_files(dir.path())?;
    let (bytes, elapsed) = ceilings::read_files(&segments)?;
    let events = args.stream_events + args.streams as u64;
    let per_event = bytes as f64 / events as f64;
    let warm_rate = bytes as f64 / elapsed.as_secs_f64() / per_event;
    let cached = reads::stream_forward(&clients[0], &stream, "read 1 stream forward, cached");
    let cached = cpu::measured(server.pid(), cached).await?;
    results.add(cached.against(
        format!("reading the segment files, OS cache warm, {per_event:.0} B per event"),
        warm_rate,
    ));
    let last = reads::last_event_backward(&clients, sensors, 64, args.duration());
    let last = cpu::measured(server.pid(), last).await?;
    results.add(last.against("empty RPC, 64 clients", ceilings.empty_rpc[&64]));
    let all = reads::log_forward(&clients[0], "read $all forward, cached");
    let all = cpu::measured(server.pid(), all).await?;
    results.add(all.against("reading the segment files, OS cache warm", warm_rate));
    drop(clients);
    server.stop().await?;
    if args.server.is_some() {
        results.note("cold reads need a server this program starts; skipped");
        return Ok(());
    }

    let server = Server::start(args, dir.path(), ByteSize(0)).await?;
    let clients = server.clients(1).await?;
    let cold = match ceilings::drop_os_cache() {
        Ok(()) => "cold",
        Err(why) => {
            results.note(why);
            "cache off, OS cache warm"
        }
    };
    let (bytes, elapsed) = ceilings::read_files(&segments)?;
    let file_rate = bytes as f64 / elapsed.as_secs_f64() / per_event;
    let _ = ceilings::drop_os_cache();
    let name = format!("read 1 stream forward, {cold}");
    let figure = reads::stream_forward(&clients[0], &stream, &name);
    let figure = cpu::measured(server.pid(), figure).await?;
    results.add(figure.against(format!("reading the segment files, {cold}"), file_rate));
    let _ = ceilings::drop_os_cache();
    let name = format!("read $all forward, {cold}");
    let figure = cpu::measured(server.pid(), reads::log_forward(&clients[0], &name)).await?;
    results.add(figure.against(format!("reading the segment files, {cold}"), file_rate));
    drop(clients);
    server.stop().await
}

fn segment_files(dir: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("segment-") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    Ok(files)
}

async fn scale_figures(args: &Args, results: &mut Results, root: &Path) -> Result<(), BoxError> {
    if args.server.is_some() || args.in_process {
        results.note("scale needs the server binary started by this program; skipped");
        return Ok(());
    }
    let binary = server::binary(args.server_bin.as_deref())?;
    let cache = args.cache_size.to_string();
    let empty = tempfile::tempdir_in(root)?;
    let baseline = tokio::task::block_in_place(|| {
        ServerProcess::start(&binary, empty.path(), &["--cache-size", &cache]).map(|p| {
            std::thread::sleep(Duration::from_millis(500));
            let rss = p.rss_mib();
            p.kill();
            rss
        })
    })?;
    results.note(format!("an empty server's RSS: {baseline:.0} MiB"));
    let scenario = scale::Scenario {
        binary: &binary,
        cache: &cache,
        baseline_mib: baseline,
        duration: args.duration(),
        stream_events: args.stream_events.min(100_000),
    };
    for &events in &args.scale {
        let per_stream = 10;
        let temporary;
        let dir = match &args.scale_dir {
            Some(kept) => kept.join(format!("{events}-events")),
            None => {
                temporary = tempfile::tempdir_in(root)?;
                temporary.path().to_path_buf()
            }
        };
        if !dir.join("segment-00000000000000000000.log").exists() {
            scale::fill(&dir, events, per_stream, 100).await?;
        }
        let work = tempfile::tempdir_in(root)?;
        let point =
            scale::measure(&scenario, &dir, work.path(), events, events / per_stream).await?;
        for figure in point.starts.into_iter().chain(point.loads) {
            results.add(figure);
        }
        results.note(format!(
            "{events} events in {} streams: RSS {:.0} MiB after start, index {:.0} B per event \
             (RSS above an empty server's); {:.0} MiB after reading the whole log",
            events / per_stream,
            point.rss_mib,
            point.index_bytes_per_event,
            point.rss_full_cache_mib
        ));
    }
    Ok(())
}
