//! The CPU priority of the index's background work: the ingester and fjall's
//! compaction threads run at the lowest priority of the normal class (nice 19), so
//! that on a busy server they take the CPU that appends and reads leave over. Pinned to
//! one core with the load of batch appends, they took a third of the rate at normal
//! priority (storage.md, "The index on disk").
//!
//! Nice 19 rather than the idle class a scavenge's bulk work uses: the writer may wait
//! on a lock of fjall's these threads hold (a look-up the filter could not rule out),
//! and a nice 19 thread still gets a share of a busy CPU, an idle-class one next to
//! none. How far the ingester may fall behind is bounded apart (`ingest.rs`).

/// Lowers the calling thread to nice 19; threads it starts inherit it. Where that
/// cannot be done, it stays as it is.
#[cfg(target_os = "linux")]
pub fn lower_to_nice_19() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let normal = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, normal)
    {
        tracing::debug!(error = ?e, "an index thread stays at normal priority");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn lower_to_nice_19() {}

/// Field `n` (from 1, as proc(5) numbers them) of the calling thread's
/// `/proc/thread-self/stat`.
#[cfg(all(test, target_os = "linux"))]
pub fn thread_stat_field(n: usize) -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which is in parentheses, start at field 3.
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(n - 3)?.parse().ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_thread_and_those_it_starts_run_at_nice_19() {
        const NICE: usize = 19;
        let niceness = std::thread::spawn(|| {
            let before = thread_stat_field(NICE);
            lower_to_nice_19();
            let after = thread_stat_field(NICE);
            let child = std::thread::spawn(|| thread_stat_field(NICE))
                .join()
                .ok()
                .flatten();
            (before, after, child)
        })
        .join()
        .expect("the thread runs");
        assert_eq!(niceness, (Some(0), Some(19), Some(19)));
        assert_eq!(thread_stat_field(NICE), Some(0), "the caller's stays");
    }
}
