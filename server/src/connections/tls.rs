//! TLS for client connections, with certificates that can be replaced while serving.
//!
//! The certificate chain, its key and (for mutual TLS) the CA that signs client
//! certificates are PEM files. They are read at start, where a bad file stops the
//! server, and again on SIGHUP and whenever one of them changes (checked every
//! [`POLL_INTERVAL`], which is how cert-manager's rotations are seen: it swaps the files
//! behind a symlink). A reload that fails keeps the configuration in use and logs why;
//! connections already open keep the configuration they were accepted with.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// How often the files are checked for a change.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where the server's TLS files are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, the server's own first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With it, a client must present a certificate this CA signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }
}

/// The TLS configuration in use, and the files it came from.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    /// The files' sizes and modification times when last read.
    seen: Mutex<Vec<Option<(u64, SystemTime)>>>,
}

impl Tls {
    /// Reads the files; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>, String> {
        let seen = fingerprint(&files);
        let config = server_config(&files)?;
        Ok(Arc::new(Tls {
            files,
            current: RwLock::new(Arc::new(config)),
            seen: Mutex::new(seen),
        }))
    }

    /// An acceptor with the configuration in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        TlsAcceptor::from(config)
    }

    /// Reads the files again: the new configuration is used for the connections
    /// accepted from now on, or, if a file is bad, the old one is kept. Returns whether
    /// the new one was taken.
    pub fn reload(&self, why: &str) -> bool {
        let seen = fingerprint(&self.files);
        if let Ok(mut last) = self.seen.lock() {
            *last = seen;
        }
        match server_config(&self.files) {
            Ok(config) => {
                match self.current.write() {
                    Ok(mut current) => *current = Arc::new(config),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
                }
                tracing::info!(cert = %self.files.cert.display(), "TLS files reloaded ({why})");
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "TLS files not reloaded ({why}); serving with the ones read before"
                );
                false
            }
        }
    }

    /// Whether a file changed since it was last read.
    fn changed(&self) -> bool {
        let now = fingerprint(&self.files);
        self.seen.lock().map_or(true, |last| *last != now)
    }

    /// Reloads on SIGHUP and when the files change, until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .inspect_err(
                |e| tracing::warn!(error = %e, "TLS files reload on change only: no SIGHUP"),
            )
            .ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hangups.as_mut() {
                    Some(signals) => signals.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = hangup => {
                    self.reload("SIGHUP");
                }
                _ = poll.tick() => {
                    if self.changed() {
                        self.reload("a file changed");
                    }
                }
            }
        }
    }
}

/// Each file's size and modification time, following symlinks; None where it cannot
/// be read (a rotation in progress, say).
fn fingerprint(files: &TlsFiles) -> Vec<Option<(u64, SystemTime)>> {
    files
        .paths()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "--tls-key {}: no private key read ({e})",
            files.key.display()
        )
    })?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(ca)? {
                roots.add(certificate).map_err(|e| {
                    format!(
                        "--tls-client-ca {}: not a CA certificate ({e})",
                        ca.display()
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "--tls-cert {} with --tls-key {}: {e}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    // gRPC runs over HTTP/2 only; clients of other languages insist on ALPN saying so.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file: at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|found| found.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: not read as PEM certificates ({e})", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}
