//! The CPU time the load generator and the server spent over a timed run, per unit it
//! counted (event, call, read). Steadier than a rate on a shared machine, where an hour
//! can be half as fast as the next but the work per event stays the same; and it says
//! which side a figure is bound by when both share the cores.
//!
//! From `/proc/<pid>/stat`: user and system time of all of a process's threads, the
//! ended ones included, in USER_HZ ticks (1/100 s on x86 and Arm Linux); a run of a few
//! seconds uses hundreds of them.

use crate::report::{CpuUse, Figure};
use std::time::Duration;

/// User-space ticks per second of the times in `/proc/<pid>/stat`.
const USER_HZ: f64 = 100.0;

/// The CPU times of the load generator and of the server (when it is a process of its
/// own) at the start of a run.
#[derive(Debug)]
pub struct CpuMeter {
    server: Option<u32>,
    load_generator_at_start: Option<Duration>,
    server_at_start: Option<Duration>,
}

impl CpuMeter {
    /// Starts measuring this process and the server process `server`, if any.
    pub fn start(server: Option<u32>) -> CpuMeter {
        CpuMeter {
            server,
            load_generator_at_start: cpu_time(std::process::id()),
            server_at_start: server.and_then(cpu_time),
        }
    }

    /// `figure` with the CPU time spent since the start per unit it counted.
    pub fn finish(self, mut figure: Figure) -> Figure {
        let count = figure.count.max(1) as f64;
        let per_unit = |start: Option<Duration>, pid: Option<u32>| {
            let spent = cpu_time(pid?)?.checked_sub(start?)?;
            Some(spent.as_secs_f64() * 1e6 / count)
        };
        if let Some(load_generator_us) =
            per_unit(self.load_generator_at_start, Some(std::process::id()))
        {
            figure.cpu = Some(CpuUse {
                load_generator_us,
                server_us: per_unit(self.server_at_start, self.server),
            });
        }
        figure
    }
}

/// Runs `run` and adds to its figure the CPU this process and the server process
/// `server` (if any) spent meanwhile.
pub async fn measured<E>(
    server: Option<u32>,
    run: impl Future<Output = Result<Figure, E>>,
) -> Result<Figure, E> {
    let meter = CpuMeter::start(server);
    Ok(meter.finish(run.await?))
}

/// User plus system time of process `pid`, all its threads.
fn cpu_time(pid: u32) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime plus stime of a `/proc/<pid>/stat` line: its 14th and 15th fields, the 12th
/// and 13th after the command name, which is in parentheses and may hold spaces.
fn parse_stat(stat: &str) -> Option<Duration> {
    let mut after_name = stat.rsplit_once(')')?.1.split_whitespace();
    let user: u64 = after_name.nth(11)?.parse().ok()?;
    let system: u64 = after_name.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((user + system) as f64 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 1536 0 0 0 \
                    250 75 0 0 20 0 9 0 1234 567890 1234 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(3_250)));
        assert_eq!(parse_stat("4242 (cut) S 1 2"), None);
    }

    #[test]
    fn this_process_cpu_time_grows_while_it_works() {
        let before = cpu_time(std::process::id()).expect("this process's stat");
        let mut x = 0u64;
        // Rounds until the kernel has counted some ticks, however busy the machine is;
        // a few hundred do it, ten thousand mean the time never moves.
        for _ in 0..10_000 {
            if cpu_time(std::process::id()).expect("stat") >= before + Duration::from_millis(50) {
                return;
            }
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        panic!("no CPU time counted for this process's work");
    }
}
