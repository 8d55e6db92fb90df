//! `evenire-server`: parse the settings, set up logging, bind, and run until SIGINT or
//! SIGTERM. Or, with a subcommand, check or repair the data directory offline.

mod config_file;
mod offline;

use clap::{CommandFactory, FromArgMatches, Parser};
use evenire_server::config::LogFormat;
use evenire_server::{Config, run};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: under a long mixed load glibc's per-thread arenas
/// kept growing (a third of the resident memory in a soak), and its malloc and free
/// were a tenth of the server's CPU at 64 appending clients. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The version, the commit it was built from and the build profile (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("EVENIRE_COMMIT"),
    ", ",
    env!("EVENIRE_BUILD_PROFILE"),
    " build)"
);

#[derive(Debug, Parser)]
#[command(name = "evenire-server", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Read settings from this TOML file: one key per flag, named as the flag
    /// (`cache-size = "1GiB"`). Flags and environment variables override it.
    #[arg(
        long = "config",
        id = "config",
        env = "EVENIRE_CONFIG",
        value_name = "FILE",
        global = true
    )]
    config_file: Option<std::path::PathBuf>,
    /// Print the settings in effect, and where each came from, as a config file; then
    /// exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    offline: Option<offline::Offline>,
}

/// Parses the command line, the environment and the `--config` file, in that order of
/// precedence; prints the settings and exits for `--print-config`; exits 2 with the
/// reason when any of them is wrong.
fn parse() -> Cli {
    let command = Cli::command();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let given = command.clone().get_matches_from(&args);
    let path = given.get_one::<std::path::PathBuf>("config").cloned();
    let file = path.as_ref().map(|path| {
        config_file::read(path, &command, &given).unwrap_or_else(|e| {
            eprintln!("evenire-server: {e}");
            std::process::exit(2)
        })
    });
    let mut with_file = args.clone();
    if let Some(settings) = &file {
        with_file.splice(1..1, settings.flags.iter().cloned());
    }
    let effective = match (command.clone().try_get_matches_from(&with_file), &path) {
        (Ok(matches), _) => matches,
        (Err(e), Some(path)) => {
            let _ = e.print();
            eprintln!(
                "(the settings of {} are read as flags, before the command line's)",
                path.display()
            );
            std::process::exit(2)
        }
        (Err(e), None) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&effective).unwrap_or_else(|e| e.exit());
    if cli.print_config {
        let file = path.as_deref().zip(file.as_ref());
        print!("{}", config_file::print(&command, &given, &effective, file));
        std::process::exit(0);
    }
    cli
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = parse();
    if let Some(offline) = cli.offline {
        return offline::run(&cli.config, offline);
    }
    let config = cli.config;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One JSON object per line, the fields at the top level: what log shippers
        // (Loki, Elasticsearch, CloudWatch) parse without configuration.
        LogFormat::Json => logs.json().flatten_event(true).with_ansi(false).init(),
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("evenire-server: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().map_or(config.listen, |a| a);
    tracing::info!(
        version = VERSION,
        listen = %bound,
        data_dir = %config.data_dir.display(),
        fsync = ?config.fsync,
        cache_size = %config.cache_size,
        "starting"
    );
    match run(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("evenire-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
