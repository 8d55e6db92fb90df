//! Kill -9 under load, against the real binary: the harness of
//! `evenire_testkit::crash` for a few cycles, plain and amid deletes and scavenges.
//!
//! `EVENIRE_CRASH_CYCLES` sets the number of kill/restart cycles (default 4);
//! `EVENIRE_CRASH_SEED` replays a run (the seed is printed). The long mode is
//! `evenire-bench --crash-cycles N`, or this test with a larger count.

#[test]
fn nothing_acknowledged_is_lost_across_kill_9() {
    let (runtime, binary, cycles, seed) = settings();
    let report = runtime.block_on(evenire_testkit::crash::run(binary, cycles, seed));
    assert_eq!(report.cycles, cycles);
    assert!(report.unanswered <= report.sent && report.events >= report.sent - report.unanswered);
}

/// Streams deleted and scavenges running while the appenders append: the kill lands in
/// scavenges too, and nothing live is lost, nothing duplicated, no reclaimed event back.
#[test]
fn nothing_live_is_lost_or_reclaimed_comes_back_across_kill_9_amid_scavenges() {
    let (runtime, binary, cycles, seed) = settings();
    let report = runtime.block_on(evenire_testkit::crash::run_scavenging(binary, cycles, seed));
    assert_eq!(report.cycles, cycles);
    assert!(
        report.reclaimed > 0,
        "the scavenges reclaimed deleted events"
    );
}

fn settings() -> (
    tokio::runtime::Runtime,
    &'static std::path::Path,
    usize,
    u64,
) {
    let cycles: usize = std::env::var("EVENIRE_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("EVENIRE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_evenire-server"));
    (runtime, binary, cycles, seed)
}
