//! `evenire-server`: parse the settings, set up logging, bind, and run until SIGINT or
//! SIGTERM. Or, with a subcommand, check or repair the data directory offline.

mod offline;

use clap::Parser;
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
    #[command(subcommand)]
    offline: Option<offline::Offline>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
