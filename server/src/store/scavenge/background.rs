//! The CPU class of a scavenge's bulk work.
//!
//! A scavenge reads, checks and writes whole segments: on a busy server that work took
//! the CPU from appends, and their p99 doubled while it ran (even at a modest rate
//! limit, and with a lower nice value). Run on a thread of Linux's idle scheduling
//! class (SCHED_IDLE), the same work only gets the CPU that appends and reads leave
//! over, and a wakeup of any of theirs takes the CPU back at once.
//!
//! Such a thread may wait long for the CPU, and so would anyone waiting on a lock it
//! held. So only work that takes no lock the store's other threads use runs there
//! (reading, scanning and writing a segment); the scavenge's own thread, of the normal
//! class, does the planning and the switch, which take the index's locks.

use crate::store::error::StoreError;

/// Runs `work` on a thread of the idle class and returns what it returns. Where the
/// class cannot be set, the work runs on that thread all the same, at normal priority.
pub fn in_background<T: Send>(
    work: impl FnOnce() -> Result<T, StoreError> + Send,
) -> Result<T, StoreError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("evenire-scavenge-bulk".into())
            .spawn_scoped(scope, || {
                lower_to_idle_class();
                work()
            })
            .map_err(|e| StoreError::io("starting a scavenge thread", e))?;
        match thread.join() {
            Ok(done) => done,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(target_os = "linux")]
fn lower_to_idle_class() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
        tracing::debug!(error = ?e, "a scavenge thread stays in the normal CPU class");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_to_idle_class() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::in_background;

    /// The scheduling policy of the calling thread, from /proc (field 41 of `stat`).
    fn policy() -> u32 {
        crate::store::index::priority::thread_stat_field(41)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(u32::MAX)
    }

    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;

    #[test]
    fn work_runs_in_the_idle_class_and_the_caller_stays_normal() {
        let before = policy();
        let inside = in_background(|| Ok(policy())).expect("the work runs");
        assert_eq!(before, SCHED_OTHER);
        assert_eq!(inside, SCHED_IDLE);
        assert_eq!(policy(), SCHED_OTHER);
    }

    #[test]
    fn an_error_of_the_work_comes_back() {
        let failed = in_background::<()>(|| Err(crate::store::error::StoreError::ShuttingDown));
        assert!(matches!(
            failed,
            Err(crate::store::error::StoreError::ShuttingDown)
        ));
    }
}
