//! `evenire-server`: parse the settings, set up logging, bind, and run until SIGINT or
//! SIGTERM. Or, with a subcommand, check or repair the data directory offline.

use clap::{Parser, Subcommand};
use evenire_server::store::repair::{self, Health};
use evenire_server::{Config, run};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: under a long mixed load glibc's per-thread arenas
/// kept growing (a third of the resident memory in a soak), and its malloc and free
/// were a tenth of the server's CPU at 64 appending clients. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "evenire-server", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    offline: Option<Offline>,
}

/// Offline work on --data-dir, with no server running.
#[derive(Debug, Subcommand)]
enum Offline {
    /// Check every record of the log and report; changes nothing. Exit 1 if damaged.
    Verify,
    /// Cut the log at its first damaged record so that the server can start again.
    /// Everything after that record is lost: see what with --dry-run first, and prefer
    /// restoring the file from a backup.
    Repair {
        /// Report what would be cut, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(offline) = cli.offline {
        return offline_command(&cli.config, offline);
    }
    let config = cli.config;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("evenire-server: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().map_or(config.listen, |a| a);
    tracing::info!(
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

/// Runs `verify` or `repair` and prints what it found.
fn offline_command(config: &Config, offline: Offline) -> ExitCode {
    let dir = &config.data_dir;
    let outcome = match offline {
        Offline::Verify => repair::verify(dir).map(|h| (h, "verify", true)),
        Offline::Repair { dry_run } => {
            let lock = if dry_run {
                None
            } else {
                match evenire_server::store::lock_dir(&evenire_server::store::fs::RealFs, dir) {
                    Ok(lock) => Some(lock),
                    Err(e) => {
                        eprintln!("evenire-server: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            };
            let outcome = repair::repair(dir, dry_run).map(|h| (h, "repair", dry_run));
            drop(lock);
            outcome
        }
    };
    let (health, command, changed_nothing) = match outcome {
        Ok(found) => found,
        Err(e) => {
            eprintln!("evenire-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verb = if changed_nothing { "would cut" } else { "cut" };
    match health {
        Health::Sound {
            segments,
            records,
            events,
            torn,
        } => {
            println!(
                "{}: sound: {segments} segment(s), {records} record(s), {events} event(s)",
                dir.display()
            );
            if let Some(torn) = torn {
                println!(
                    "torn write at the end of {} at offset {} ({} bytes, past what sync marks \
                     say was synced): {} ({verb} it; the server also does at start)",
                    torn.path.display(),
                    torn.valid_len,
                    torn.dropped,
                    torn.reason
                );
            }
            ExitCode::SUCCESS
        }
        Health::Damaged(damage) => {
            println!("damaged: {}", damage.error);
            println!(
                "{verb} the log there: {} byte(s) of {} from offset {}, and {} later segment(s) \
                 ({} bytes)",
                damage.bytes_cut,
                damage.path.display(),
                damage.offset,
                damage.later_segments.len(),
                damage.later_bytes
            );
            if command == "verify" || changed_nothing {
                println!(
                    "restore the file from a backup, or run `evenire-server repair` to cut the                      log there (losing what follows)"
                );
                return ExitCode::FAILURE;
            }
            println!("repaired: the server can start");
            ExitCode::SUCCESS
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
