//! A short soak in CI (`evenire_testkit::soak`): normal clients alone, then beside
//! hostile ones, against the real binary. No normal client may see an error, and the
//! server's memory must stay under the bound docs/operations.md gives. The latency
//! figures are printed, not asserted: `evenire-bench --soak-seconds N --soak-hostile`
//! is where they are measured.

use evenire_testkit::process::ServerProcess;
use evenire_testkit::soak::{self, SoakConfig};

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_clients_see_no_errors_beside_hostile_ones_and_memory_stays_bounded() {
    let seconds = std::env::var("EVENIRE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(&common::binary(), dir.path(), &["--cache-size", "16MiB"])
        .unwrap_or_else(|e| panic!("{e}"));
    let config = SoakConfig {
        seconds,
        hostile: true,
        payload: 100,
        cache_mib: 16.0,
        max_open_reads: 512,
    };
    let report = soak::run(&server, &config, |line| println!("{line}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    server.kill();
    for (name, phase) in [("alone", &report.alone), ("beside", &report.beside)] {
        println!(
            "{name}: {} appends, p50 {:.2} ms, p99 {:.2} ms, errors {}",
            phase.appends,
            phase.quantile_ms(0.5),
            phase.quantile_ms(0.99),
            phase.errors
        );
        assert!(phase.appends > 0, "normal clients appended {name}");
        assert_eq!(phase.errors, 0, "normal clients saw errors {name}");
    }
    println!("{:?}", report.hostile);
    assert!(
        report.hostile.calls_refused > 0,
        "the hogs met the per-address limits"
    );
    assert!(report.hostile.vanished > 0 && report.hostile.idle_connections > 0);
    let (peak, bound) = (report.peak_mib(), report.memory_bound_mib(&config));
    println!("memory: peak {peak:.1} MiB, bound {bound:.1} MiB");
    assert!(
        peak <= bound,
        "peak {peak:.1} MiB over the bound {bound:.1} MiB"
    );
}
