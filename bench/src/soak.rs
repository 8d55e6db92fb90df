//! `evenire-bench --soak-seconds N [--soak-hostile]`: the soak of
//! `evenire_testkit::soak` against the server binary, printed with its verdict.

use crate::server::BoxError;
use evenire_testkit::process::ServerProcess;
use evenire_testkit::soak::{self, SoakConfig, SoakReport};
use std::path::Path;

/// Runs the soak and prints the samples and a verdict; an error if it failed.
pub async fn run(
    binary: &Path,
    seconds: u64,
    hostile: bool,
    cache_mib: u64,
    payload: usize,
) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let cache = format!("{cache_mib}MiB");
    let server = ServerProcess::start(binary, dir.path(), &["--cache-size", &cache])?;
    let config = SoakConfig {
        seconds,
        hostile,
        payload,
        cache_mib: cache_mib as f64,
        max_open_reads: 512,
    };
    println!(
        "soak: {seconds} s against {} (cache {cache}, payload {payload} B): 32 appenders on one \
         connection, 4 readers, 8 subscribers, connection churn every 50 ms{}",
        binary.display(),
        if hostile {
            "; after the first third, beside hostile clients from 127.0.0.2 (an idle \
             connection flood, a read hog, a subscription hog, 4 slow readers, clients that \
             vanish mid-read)"
        } else {
            ""
        }
    );
    println!(
        "{:>6} {:>10} {:>14} {:>16} {:>8}",
        "t (s)", "RSS MiB", "appended", "delivered", "phase"
    );
    let report = soak::run(&server, &config, |line| println!("{line}")).await?;
    server.kill();
    let failures = verdict(&report, &config);
    match failures.is_empty() {
        true => Ok(()),
        false => Err(format!("the soak failed: {}", failures.join("; ")).into()),
    }
}

/// Prints the figures and returns what failed.
fn verdict(report: &SoakReport, config: &SoakConfig) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, phase) in [("alone", &report.alone), ("beside", &report.beside)] {
        println!(
            "normal appends {name:>6}: {:>8.0}/s over {:>5.1} s, p50 {:.2} ms, p99 {:.2} ms, \
             p99.9 {:.2} ms, errors {}",
            phase.rate(),
            phase.seconds,
            phase.quantile_ms(0.5),
            phase.quantile_ms(0.99),
            phase.quantile_ms(0.999),
            phase.errors
        );
        if phase.errors > 0 {
            failures.push(format!("{} errors of normal clients {name}", phase.errors));
        }
    }
    let ratio = report.beside.quantile_ms(0.99) / report.alone.quantile_ms(0.99).max(1e-9);
    println!(
        "p99 beside the hostile clients / p99 alone: {ratio:.2} (the soak asks for at most 2)"
    );
    if config.hostile && ratio > 2.0 {
        failures.push(format!("p99 grew {ratio:.2}x beside the hostile clients"));
    }
    let h = &report.hostile;
    if config.hostile {
        println!(
            "hostile: {} idle connections, {} calls held unread at most, {} refused, {} \
             vanished mid-read, {} events to slow readers",
            h.idle_connections, h.calls_held, h.calls_refused, h.vanished, h.slow_reads
        );
    }
    let (peak, bound) = (report.peak_mib(), report.memory_bound_mib(config));
    let levelled = report.levelled_off();
    println!(
        "memory: {:.1} MiB at start, peak {peak:.1} MiB, bound {bound:.1} MiB (start + cache + \
         pending appends + 512 open reads x 0.75 MiB + index); {}",
        report.rss_start_mib,
        match levelled {
            Some(true) => "levelled off",
            Some(false) => "still growing beyond the index",
            None => "too short to tell whether it levelled off",
        }
    );
    if peak > bound {
        failures.push(format!(
            "peak memory {peak:.1} MiB over the bound {bound:.1} MiB"
        ));
    }
    if levelled == Some(false) {
        failures.push("memory did not level off".into());
    }
    failures
}
