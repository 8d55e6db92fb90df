//! The server's settings: each one a command-line flag and an `EVENIRE_*` environment
//! variable, with the default that `--help` shows.

use crate::store::{FsyncPolicy, StoreConfig, StreamRules};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Evenire: an event store served over gRPC.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "EVENIRE_LISTEN", default_value = "127.0.0.1:5243")]
    pub listen: SocketAddr,

    /// Directory that holds the log. Created if missing; one server at a time.
    /// Given before or after an offline subcommand (`verify --data-dir X`).
    #[arg(
        long,
        env = "EVENIRE_DATA_DIR",
        default_value = "./evenire-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Memory for recently written and read events (e.g. 256MiB, 1GiB; 0 turns the cache off).
    #[arg(long, env = "EVENIRE_CACHE_SIZE", default_value_t = ByteSize::mib(256))]
    pub cache_size: ByteSize,

    /// Keep the event-id index on disk (in `<data-dir>/index`) rather than wholly in
    /// memory. Off by default until its cost on batch appends is paid down (see
    /// docs/storage.md, "The index on disk").
    #[arg(long, env = "EVENIRE_INDEX_ON_DISK")]
    pub index_on_disk: bool,

    /// Memory for the blocks of the index on disk (in `<data-dir>/index`) that look-ups
    /// read most (its filters and the event ids found recently) and, as much again, for
    /// the entries of the streams written most recently (some 80 bytes each); the
    /// others' are read from the index on disk when needed.
    #[arg(long, env = "EVENIRE_INDEX_CACHE_SIZE", default_value_t = ByteSize::mib(64))]
    pub index_cache_size: ByteSize,

    /// When appends are acknowledged: `always` = after fdatasync (survives power loss);
    /// `power-loss-unsafe` = once in the OS page cache (survives a process crash only;
    /// for benchmarks and tests).
    #[arg(long, env = "EVENIRE_FSYNC", value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,

    /// Size at which a log segment is closed and the next one started.
    #[arg(long, env = "EVENIRE_SEGMENT_SIZE", default_value_t = ByteSize::mib(64))]
    pub segment_size: ByteSize,

    /// Largest event: its data plus its metadata.
    #[arg(long, env = "EVENIRE_MAX_EVENT_SIZE", default_value_t = ByteSize::mib(4))]
    pub max_event_size: ByteSize,

    /// Most events in one append.
    #[arg(long, env = "EVENIRE_MAX_EVENTS_PER_APPEND", default_value_t = 10_000)]
    pub max_events_per_append: usize,

    /// Largest request message, encoded.
    #[arg(long, env = "EVENIRE_MAX_REQUEST_SIZE", default_value_t = ByteSize::mib(16))]
    pub max_request_size: ByteSize,

    /// Appends (in bytes) that may wait for the disk at once; later ones wait their turn.
    #[arg(long, env = "EVENIRE_MAX_PENDING_BYTES", default_value_t = ByteSize::mib(64))]
    pub max_pending_bytes: ByteSize,

    /// Most client connections open at once; more are closed as they arrive.
    #[arg(long, env = "EVENIRE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Most connections open at once from one client address (an IPv6 /64 counts as one);
    /// more are closed as they arrive. Raise it when clients reach the server through a
    /// proxy or NAT that gives them one address.
    #[arg(long, env = "EVENIRE_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Seconds a new connection has to send the HTTP/2 preface before it is closed.
    #[arg(long, env = "EVENIRE_HANDSHAKE_TIMEOUT_SECS", default_value_t = 5)]
    pub handshake_timeout_secs: u64,

    /// Most calls in flight on one connection (HTTP/2 concurrent streams).
    #[arg(long, env = "EVENIRE_MAX_CONCURRENT_STREAMS", default_value_t = 256)]
    pub max_concurrent_streams: u32,

    /// Most reads and subscriptions in progress at once; more get RESOURCE_EXHAUSTED.
    /// Each holds up to about 0.75 MiB while its client does not read (docs/operations.md).
    #[arg(long, env = "EVENIRE_MAX_OPEN_READS", default_value_t = 512)]
    pub max_open_reads: usize,

    /// Most reads and subscriptions in progress on one connection, so that one client
    /// cannot take every read; more get RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "EVENIRE_MAX_OPEN_READS_PER_CONNECTION",
        default_value_t = 256
    )]
    pub max_open_reads_per_connection: usize,

    /// Most reads and subscriptions in progress from one client address (an IPv6 /64
    /// counts as one), over all its connections; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "EVENIRE_MAX_OPEN_READS_PER_IP", default_value_t = 384)]
    pub max_open_reads_per_ip: usize,

    /// Rules for every stream of a type that has none of its own, as
    /// `TYPE:max-count=N[,truncate-before=V]`; several types separated by `;` (or the
    /// flag repeated). A stream's own rules, once set (even to none), replace them.
    #[arg(
        long,
        env = "EVENIRE_DEFAULT_RULES",
        value_delimiter = ';',
        value_name = "TYPE:RULES"
    )]
    pub default_rules: Vec<TypeRules>,

    /// Snapshots kept of each stream, the newest by version; older ones are forgotten
    /// as newer ones are saved.
    #[arg(long, env = "EVENIRE_SNAPSHOTS_PER_STREAM", default_value_t = 1)]
    pub snapshots_per_stream: usize,

    /// Bytes a second that backups may read, all together (0: no limit): what keeps a
    /// backup from slowing appends (docs/operations.md, "Backup and restore").
    #[arg(long, env = "EVENIRE_BACKUP_RATE_LIMIT", default_value_t = ByteSize::mib(128))]
    pub backup_rate_limit: ByteSize,

    /// Bytes a second a scavenge reads and writes at most, unless the call says
    /// otherwise (0: no limit). Unpaced, a scavenge takes a core and stalls appends
    /// (BENCHMARKS.md, "Scavenging beside appends"). docs/storage.md, "Reclaiming space".
    #[arg(long, env = "EVENIRE_SCAVENGE_RATE_LIMIT", default_value_t = ByteSize::mib(64))]
    pub scavenge_rate_limit: ByteSize,

    /// Runs a scavenge this often (`30m`, `6h`, `1d`, or seconds), the first one an
    /// interval after the start; off by default. A scavenge started by hand meanwhile
    /// makes the scheduled one wait for the next interval.
    #[arg(long, env = "EVENIRE_SCAVENGE_INTERVAL", value_parser = parse_interval)]
    pub scavenge_interval: Option<std::time::Duration>,

    /// Seconds that shutdown waits for requests in flight before closing them.
    #[arg(long, env = "EVENIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Serve TLS with this certificate chain (PEM, the server's certificate first);
    /// needs --tls-key. Re-read on SIGHUP and when the file changes.
    #[arg(long, env = "EVENIRE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "EVENIRE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: refuse clients without a certificate signed by this CA (PEM).
    #[arg(long, env = "EVENIRE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Bearer tokens and client certificate names with their roles (TOML, or JSON for
    /// a .json name; docs/security.md). Re-read on SIGHUP and when the file changes.
    #[arg(long, env = "EVENIRE_AUTH_TOKENS", value_name = "FILE")]
    pub auth_tokens: Option<PathBuf>,

    /// Who may use reflection: `open` to anyone, `authenticated` to any known caller,
    /// `off`. Default: `authenticated` with --auth-tokens, else `open`.
    #[arg(long, env = "EVENIRE_REFLECTION", value_enum)]
    pub reflection: Option<Reflection>,

    /// Also serve grpc.health.v1 alone, in clear, on this address: for probes that
    /// cannot speak TLS, such as kubelet's gRPC probes. Off by default.
    #[arg(long, env = "EVENIRE_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// Serve metrics in the Prometheus text format at `/metrics` over HTTP on this
    /// address (docs/operations.md, "Metrics"). Off by default.
    #[arg(long, env = "EVENIRE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// The web admin (docs/admin.md): `on` serves its page, and the API over gRPC-Web
    /// for it, on --admin-listen; `off` does not.
    #[arg(long, env = "EVENIRE_ADMIN", value_enum, default_value_t = Admin::On)]
    pub admin: Admin,

    /// Where the web admin is served. Default: --listen's host and the port after its
    /// (any free port when --listen's is 0).
    #[arg(long, env = "EVENIRE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Log lines as `text` for people or `json` (one object per line) for log shippers;
    /// `RUST_LOG` sets the level.
    #[arg(long, env = "EVENIRE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve on an address other than loopback without TLS and client authentication.
    /// Without it, such a server refuses to start.
    #[arg(long, env = "EVENIRE_INSECURE")]
    pub insecure: bool,
}

impl Config {
    /// The defaults, with the log in `data_dir`: what tests and embedders start from.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5243)),
            data_dir: data_dir.into(),
            cache_size: ByteSize::mib(256),
            index_on_disk: false,
            index_cache_size: ByteSize::mib(64),
            fsync: Fsync::Always,
            segment_size: ByteSize::mib(64),
            max_event_size: ByteSize::mib(4),
            max_events_per_append: 10_000,
            max_request_size: ByteSize::mib(16),
            max_pending_bytes: ByteSize::mib(64),
            max_connections: 1024,
            max_connections_per_ip: 256,
            handshake_timeout_secs: 5,
            max_concurrent_streams: 256,
            max_open_reads: 512,
            max_open_reads_per_connection: 256,
            max_open_reads_per_ip: 384,
            default_rules: Vec::new(),
            snapshots_per_stream: 1,
            backup_rate_limit: ByteSize::mib(128),
            scavenge_rate_limit: ByteSize::mib(64),
            scavenge_interval: None,
            shutdown_grace_secs: 10,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            auth_tokens: None,
            reflection: None,
            health_listen: None,
            metrics_listen: None,
            admin: Admin::On,
            // Not the port after --listen's: servers started side by side (tests) would
            // all want the same one.
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            log_format: LogFormat::Text,
            insecure: false,
        }
    }

    /// Refuses settings the log format cannot honour: a record's length is a u32, so a
    /// request (one record) is capped at 1 GiB.
    pub fn validate(&self) -> Result<(), String> {
        const MAX_REQUEST: ByteSize = ByteSize(1 << 30);
        if self.max_request_size > MAX_REQUEST {
            return Err(format!(
                "--max-request-size {} is over the largest supported, {MAX_REQUEST}",
                self.max_request_size
            ));
        }
        if self.max_event_size > self.max_request_size {
            return Err(format!(
                "--max-event-size {} is over --max-request-size {}",
                self.max_event_size, self.max_request_size
            ));
        }
        if self.segment_size < ByteSize(1024) {
            return Err(format!(
                "--segment-size {} is under the smallest supported, 1KiB",
                self.segment_size
            ));
        }
        if self.max_events_per_append == 0 {
            return Err("--max-events-per-append must be at least 1".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together: give both or neither".into());
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err("--tls-client-ca needs --tls-cert and --tls-key".into());
        }
        Ok(())
    }

    /// The TLS files, when the server serves TLS.
    pub(crate) fn tls_files(&self) -> Option<crate::connections::tls::TlsFiles> {
        Some(crate::connections::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// Refuses to serve clients beyond this machine in clear or without knowing who
    /// they are, unless `--insecure` says to: `listening` is the bound address.
    pub fn check_exposure(&self, listening: SocketAddr) -> Result<(), String> {
        let authenticated = self.tls_client_ca.is_some() || self.auth_tokens.is_some();
        if listening.ip().is_loopback() || self.insecure {
            return Ok(());
        }
        match (self.tls_cert.is_some(), authenticated) {
            (true, true) => Ok(()),
            (tls, _) => Err(format!(
                "refusing to serve {listening}, an address other machines can reach, {}: \
                 give --tls-cert and --tls-key with --auth-tokens or --tls-client-ca, or \
                 --insecure to serve it anyway",
                match tls {
                    false => "in clear text and to anyone",
                    true => "to clients that give no credentials",
                },
            )),
        }
    }

    /// What the store needs of the settings.
    pub fn store(&self) -> StoreConfig {
        StoreConfig {
            data_dir: self.data_dir.clone(),
            cache_bytes: self.cache_size.0,
            index_cache_bytes: self.index_on_disk.then_some(self.index_cache_size.0),
            index_entries_kept: self.index_on_disk.then(|| {
                let entries = self.index_cache_size.0 / crate::store::STREAM_BYTES as u64;
                usize::try_from(entries).unwrap_or(usize::MAX)
            }),
            fsync: match self.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::PowerLossUnsafe => FsyncPolicy::PowerLossUnsafe,
            },
            segment_size: self.segment_size.0,
            max_pending_bytes: self.max_pending_bytes.0,
            fs: std::sync::Arc::new(crate::store::fs::RealFs),
            snapshots_per_stream: self.snapshots_per_stream,
            default_rules: self
                .default_rules
                .iter()
                .map(|rules| (Arc::from(rules.stream_type.as_str()), rules.rules))
                .collect(),
        }
    }

    /// The bounds on client connections.
    pub(crate) fn connection_limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs.max(1)),
        }
    }

    /// How long shutdown waits for requests in flight.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// The `--log-format` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `--admin` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Admin {
    On,
    Off,
}

impl Config {
    /// Where the web admin is served, if it is: --admin-listen, else the port after
    /// --listen's on its host (a free one when that is 0).
    pub fn admin_address(&self) -> Option<SocketAddr> {
        if self.admin == Admin::Off {
            return None;
        }
        let next_port = match self.listen.port() {
            0 => 0,
            port => port.checked_add(1).unwrap_or(0),
        };
        Some(
            self.admin_listen
                .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), next_port)),
        )
    }
}

/// The `--reflection` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reflection {
    /// Anyone may list the services and fetch their descriptors.
    Open,
    /// Only callers the token file knows.
    Authenticated,
    /// Not served.
    Off,
}

impl Config {
    /// `--reflection`, or its default for the other settings.
    pub fn reflection(&self) -> Reflection {
        self.reflection.unwrap_or(match self.auth_tokens {
            Some(_) => Reflection::Authenticated,
            None => Reflection::Open,
        })
    }
}

/// The `--fsync` choices; see [`FsyncPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    /// fdatasync before every acknowledgement.
    Always,
    /// No fsync: loses acknowledged appends on power loss.
    PowerLossUnsafe,
}

/// The `--default-rules` of one stream type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRules {
    pub stream_type: String,
    pub rules: StreamRules,
}

impl FromStr for TypeRules {
    type Err = String;

    /// `sensor:max-count=1000,truncate-before=5`.
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "write TYPE:max-count=N[,truncate-before=V][,max-age=30d]";
        let (stream_type, list) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("`{text}` names no stream type: {usage}"))?;
        if stream_type.is_empty() || stream_type.len() > crate::store::MAX_TYPE_LEN {
            return Err(format!("`{text}`: the stream type must be 1 to 255 bytes"));
        }
        let mut rules = StreamRules::default();
        for rule in list.split(',') {
            let (name, value) = rule
                .split_once('=')
                .ok_or_else(|| format!("`{rule}` in `{text}` is not NAME=VALUE: {usage}"))?;
            let name = name.trim();
            let value: u64 = match name {
                "max-age" => parse_seconds(value).map_err(|e| format!("{e} (in `{text}`)"))?,
                _ => value
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{rule}` in `{text}`: not a whole number"))?,
            };
            match name {
                "max-count" | "max-age" if value == 0 => {
                    return Err(format!("`{text}`: {name} 0 would keep nothing"));
                }
                "max-count" => rules.max_count = Some(value),
                "max-age" => rules.max_age_seconds = Some(value),
                "truncate-before" => rules.truncate_before = Some(value),
                other => {
                    return Err(format!(
                        "`{other}` in `{text}` is not a rule: max-count, truncate-before or \
                         max-age"
                    ));
                }
            }
        }
        Ok(TypeRules {
            stream_type: stream_type.to_string(),
            rules,
        })
    }
}

/// A number of bytes, written with an optional binary unit: `4096`, `64KiB`, `4MiB`,
/// `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n << 20)
    }

    /// As a `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

const UNITS: [(&str, u64); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (number, multiplier) = UNITS
            .iter()
            .find_map(|(unit, m)| s.strip_suffix(unit).map(|n| (n.trim(), *m)))
            .unwrap_or((s, 1));
        let n: u64 = number.parse().map_err(|_| {
            format!("`{s}` is not a size: use a whole number with an optional KiB, MiB or GiB")
        })?;
        n.checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, m) = UNITS
            .iter()
            .find(|(_, m)| self.0 != 0 && self.0.is_multiple_of(*m))
            .copied()
            .unwrap_or(("", 1));
        write!(f, "{}{unit}", self.0 / m)
    }
}

/// A duration as `--scavenge-interval` takes it: [`parse_seconds`], at least a minute.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let seconds = parse_seconds(text)?;
    if seconds < 60 {
        return Err(format!(
            "`{}` is under the shortest interval, a minute",
            text.trim()
        ));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// Seconds, written as a whole number with `s`, `m`, `h` or `d`, or without a unit.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let usage = || format!("`{text}`: use a whole number with s, m, h or d, as in `6h`");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(usage()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .ok_or_else(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_in_binary_units() {
        assert_eq!("4MiB".parse(), Ok(ByteSize(4 << 20)));
        assert_eq!("64 KiB".parse(), Ok(ByteSize(64 << 10)));
        assert_eq!("1000".parse(), Ok(ByteSize(1000)));
        assert_eq!("0".parse(), Ok(ByteSize(0)));
        assert!("4MB".parse::<ByteSize>().is_err());
        assert!("99999999999GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize::mib(256).to_string(), "256MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(0).to_string(), "0");
    }

    #[test]
    fn default_rules_parse_and_are_refused_by_name() {
        let parsed: TypeRules = "sensor:max-count=1000,truncate-before=5"
            .parse()
            .expect("rules");
        assert_eq!(parsed.stream_type, "sensor");
        assert_eq!(parsed.rules.max_count, Some(1000));
        assert_eq!(parsed.rules.truncate_before, Some(5));
        let aged: TypeRules = "sensor:max-age=30d".parse().expect("an age");
        assert_eq!(aged.rules.max_age_seconds, Some(30 * 86_400));
        for (bad, says) in [
            ("max-count=5", "names no stream type"),
            (":max-count=5", "1 to 255 bytes"),
            ("sensor:max-count", "NAME=VALUE"),
            ("sensor:max-count=lots", "not a whole number"),
            ("sensor:max-count=0", "keep nothing"),
            ("sensor:max-age=0", "keep nothing"),
            ("sensor:max-age=5 weeks", "s, m, h or d"),
            ("sensor:max-size=5", "not a rule"),
        ] {
            let refused = bad.parse::<TypeRules>().expect_err(bad);
            assert!(refused.contains(says), "{bad}: {refused}");
        }
    }

    #[test]
    fn serving_beyond_loopback_needs_tls_and_client_authentication_or_insecure() {
        let anywhere: SocketAddr = "0.0.0.0:5243".parse().expect("an address");
        let mut config = Config::new("data");
        assert!(
            config
                .check_exposure("127.0.0.1:5243".parse().expect("v4"))
                .is_ok()
        );
        assert!(
            config
                .check_exposure("[::1]:5243".parse().expect("v6"))
                .is_ok()
        );
        let refused = config.check_exposure(anywhere).expect_err("in clear");
        assert!(refused.contains("in clear text") && refused.contains("--insecure"));
        config.tls_cert = Some("server.crt".into());
        config.tls_key = Some("server.key".into());
        let refused = config.check_exposure(anywhere).expect_err("TLS alone");
        assert!(refused.contains("no credentials"), "{refused}");
        config.tls_client_ca = Some("ca.pem".into());
        assert!(config.check_exposure(anywhere).is_ok());
        let mut insecure = Config::new("data");
        insecure.insecure = true;
        assert!(insecure.check_exposure(anywhere).is_ok());
    }

    #[test]
    fn intervals_parse_in_whole_units_of_at_least_a_minute() {
        assert_eq!(
            parse_interval("6h"),
            Ok(std::time::Duration::from_secs(21_600))
        );
        assert_eq!(parse_interval("90"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(
            parse_interval("1d"),
            Ok(std::time::Duration::from_secs(86_400))
        );
        assert!(
            parse_interval("30s")
                .expect_err("short")
                .contains("a minute")
        );
        assert!(
            parse_interval("6 weeks")
                .expect_err("unit")
                .contains("s, m, h or d")
        );
        assert!(parse_interval("h").is_err());
    }
}
