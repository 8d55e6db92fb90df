//! What a benchmark run measured: one [`Figure`] per line of the closing table, with the
//! latency histogram it came from, the conditions it ran under and its ratio to the
//! machine's ceiling; printed as a table and written as JSON.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0
            .saturating_record((latency.as_micros() as u64).max(1));
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    fn summary(&self) -> Option<LatencySummary> {
        let ms = |us: u64| us as f64 / 1e3;
        (!self.0.is_empty()).then(|| LatencySummary {
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
            mean_ms: self.0.mean() / 1e3,
            samples: self.0.len(),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub samples: u64,
}

/// What a figure is compared with, as a rate in the figure's own unit.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub what: String,
    pub rate: f64,
}

/// CPU time spent per unit a figure counts (event, call, read), in µs.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub load_generator_us: f64,
    /// None when the server is not a process of its own.
    pub server_us: Option<f64>,
}

impl std::fmt::Display for CpuUse {
    /// "client / server" µs: two decimals below 10 µs, one above.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |v: f64| match v {
            v if v < 10.0 => format!("{v:.2}"),
            v => format!("{v:.1}"),
        };
        let server = self.server_us.map_or("-".to_string(), us);
        write!(f, "{} / {server}", us(self.load_generator_us))
    }
}

/// One measured line.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    /// What the rate counts: "events/s", "calls/s", "fsyncs/s".
    pub unit: &'static str,
    pub rate: f64,
    pub count: u64,
    pub seconds: f64,
    pub latency: Option<LatencySummary>,
    /// Events per request, payload, clients, connections: what this line varied.
    pub conditions: String,
    pub ceiling: Option<Ceiling>,
    /// The rate divided by the ceiling's rate.
    pub ratio: Option<f64>,
    /// CPU per unit counted, of the load generator and the server.
    pub cpu: Option<CpuUse>,
    /// With `--runs`: this line's rate in every run, in run order (this figure is the
    /// run with the median rate).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<f64>,
}

impl Figure {
    pub fn new(
        name: impl Into<String>,
        unit: &'static str,
        count: u64,
        elapsed: Duration,
        latencies: &Latencies,
    ) -> Figure {
        Figure {
            name: name.into(),
            unit,
            rate: count as f64 / elapsed.as_secs_f64().max(1e-9),
            count,
            seconds: elapsed.as_secs_f64(),
            latency: latencies.summary(),
            conditions: String::new(),
            ceiling: None,
            ratio: None,
            cpu: None,
            runs: Vec::new(),
        }
    }

    pub fn conditions(mut self, conditions: impl Into<String>) -> Figure {
        self.conditions = conditions.into();
        self
    }

    pub fn against(mut self, what: impl Into<String>, rate: f64) -> Figure {
        self.ratio = (rate > 0.0).then(|| self.rate / rate);
        self.ceiling = Some(Ceiling {
            what: what.into(),
            rate,
        });
        self
    }

    /// One line of the table: rate, percentiles, ratio.
    pub fn print(&self) {
        let latency = match &self.latency {
            Some(l) => format!(
                "{:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
            ),
            None => format!("{:>8} {:>8} {:>8} {:>8}", "", "", "", ""),
        };
        let ratio = self
            .ratio
            .map_or(String::new(), |r| format!("{:>6.0} %", r * 100.0));
        let cpu = self.cpu.as_ref().map_or(String::new(), ToString::to_string);
        println!(
            "{:<46} {:>12.0} {:<9} {latency} {ratio:>8} {cpu:>13}  {}",
            self.name, self.rate, self.unit, self.conditions
        );
    }
}

pub fn print_header() {
    println!(
        "{:<46} {:>12} {:<9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>13}  conditions",
        "what", "rate", "", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "ceiling", "CPU µs c / s"
    );
}

/// One line per figure name of several runs of the same lines: the figure of the run
/// whose rate is the median (of an even count, the higher of the middle two), whole,
/// so its latencies, ratio and CPU belong together, with every run's rate in `runs`.
/// Lines come in the order of the first run that has them.
pub fn medians(runs: &[Vec<Figure>]) -> Vec<Figure> {
    let mut names: Vec<&str> = Vec::new();
    for figure in runs.iter().flatten() {
        if !names.contains(&figure.name.as_str()) {
            names.push(&figure.name);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let same: Vec<&Figure> = runs.iter().flatten().filter(|f| f.name == name).collect();
            let mut by_rate = same.clone();
            by_rate.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let median = by_rate.get(by_rate.len() / 2)?;
            Some(Figure {
                runs: same.iter().map(|f| f.rate).collect(),
                ..(*median).clone()
            })
        })
        .collect()
}

/// The whole run, as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Run {
    pub started_unix: u64,
    pub machine: Machine,
    /// The conditions every line shares (server, fsync, cache, run length, connections).
    pub setup: String,
    pub settings: serde_json::Value,
    /// The figures; with `--runs`, each line's median run.
    pub figures: Vec<Figure>,
    /// With `--runs`: every run's figures, in run order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub each_run: Vec<Vec<Figure>>,
    pub notes: Vec<String>,
}

impl Run {
    /// The closing table as Markdown, for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "Machine: {} cores ({}), {:.1} GiB, Linux {}, data on {}.\n\n{}.\n\n",
            m.cores, m.cpu, m.memory_gib, m.kernel, m.data_dir_fs, self.setup
        );
        let several = self.each_run.len() > 1;
        if several {
            out += &format!(
                "Each line is the run with the median rate of {} runs; `runs` lists every run's rate.\n\n\
                 | what | rate (median) | runs | p50 ms | p99 ms | p99.9 ms | max ms | vs ceiling | CPU µs per unit, client / server | conditions |\n\
                 |---|---:|---|---:|---:|---:|---:|---|---:|---|\n",
                self.each_run.len()
            );
        } else {
            out += "| what | rate | p50 ms | p99 ms | p99.9 ms | max ms | vs ceiling | CPU µs per unit, client / server | conditions |\n\
                    |---|---:|---:|---:|---:|---:|---|---:|---|\n";
        }
        for f in &self.figures {
            let (p50, p99, p999, max) = f.latency.as_ref().map_or_else(Default::default, |l| {
                (
                    format!("{:.2}", l.p50_ms),
                    format!("{:.2}", l.p99_ms),
                    format!("{:.2}", l.p999_ms),
                    format!("{:.2}", l.max_ms),
                )
            });
            let ratio = match (&f.ceiling, f.ratio) {
                (Some(c), Some(r)) => format!("{:.0} % of {}", r * 100.0, c.what),
                _ => String::new(),
            };
            let cpu = f.cpu.as_ref().map_or(String::new(), ToString::to_string);
            let runs = match several {
                true => {
                    let rates: Vec<String> = f.runs.iter().map(|r| thousands(*r)).collect();
                    format!(" {} |", rates.join(", "))
                }
                false => String::new(),
            };
            out += &format!(
                "| {} | {} {} |{runs} {p50} | {p99} | {p999} | {max} | {ratio} | {cpu} | {} |\n",
                f.name,
                thousands(f.rate),
                f.unit,
                f.conditions
            );
        }
        for note in &self.notes {
            out += &format!("\nNote: {note}\n");
        }
        out
    }
}

/// A rate rounded to a whole number, with thousands separated: 1,234,567.
fn thousands(rate: f64) -> String {
    let digits = format!("{:.0}", rate.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub kernel: String,
    pub data_dir_fs: String,
}

impl Machine {
    pub fn read(data_dir: &std::path::Path) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            data_dir_fs: mount_of(data_dir),
        }
    }

    pub fn print(&self) {
        println!(
            "machine: {} cores ({}), {:.1} GiB, Linux {}, data on {}",
            self.cores, self.cpu, self.memory_gib, self.kernel, self.data_dir_fs
        );
    }
}

/// The file system type and device of the mount holding `path`, from /proc/mounts.
fn mount_of(path: &std::path::Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (device, point, fs) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with(point)
                .then(|| (point.len(), format!("{fs} ({device} at {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_string(), |(_, what)| what)
}

/// A counter that a one-line progress display reads twice a second while a run goes.
#[derive(Debug)]
pub struct Progress {
    done: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(what: &str) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let (counter, what) = (done.clone(), what.to_string());
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let n = counter.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                eprint!(
                    "\r  {what}: {n} in {:.0} s, {rate:.0}/s   ",
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            }
        });
        Progress { done, task }
    }

    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        eprint!("\r{:<100}\r", "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, rate: f64, p50_ms: f64) -> Figure {
        let mut latencies = Latencies::default();
        latencies.record(Duration::from_secs_f64(p50_ms / 1e3));
        let mut figure = Figure::new(name, "events/s", 1, Duration::from_secs(1), &latencies);
        figure.rate = rate;
        figure
    }

    #[test]
    fn each_line_is_its_median_run_whole_with_every_rate() {
        let runs = vec![
            vec![figure("a", 30.0, 3.0), figure("b", 5.0, 1.0)],
            vec![figure("a", 10.0, 1.0), figure("b", 7.0, 2.0)],
            vec![figure("a", 20.0, 2.0), figure("c", 1.0, 1.0)],
        ];
        let medians = medians(&runs);
        let names: Vec<&str> = medians.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        // The middle rate, with that run's own latency.
        assert_eq!(medians[0].rate, 20.0);
        assert_eq!(medians[0].latency.as_ref().map(|l| l.p50_ms), Some(2.0));
        assert_eq!(medians[0].runs, [30.0, 10.0, 20.0]);
        // Of two runs, the higher; a line missing from a run has the runs it is in.
        assert_eq!(medians[1].rate, 7.0);
        assert_eq!(medians[1].runs, [5.0, 7.0]);
        assert_eq!(medians[2].runs, [1.0]);
    }

    #[test]
    fn rates_are_written_with_thousands_separated() {
        let cases = [
            (0.4, "0"),
            (999.0, "999"),
            (1000.0, "1,000"),
            (1_234_567.5, "1,234,568"),
        ];
        for (rate, text) in cases {
            assert_eq!(thousands(rate), text);
        }
    }
}
