//! TLS for client connections, with certificates that can be replaced while serving.
//!
//! The certificate chain, its key and (for mutual TLS) the CA that signs client
//! certificates are PEM files, read again when they change (`reload.rs`); connections
//! already open keep the configuration they were accepted with.

use crate::reload::Reloading;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

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

/// The TLS configuration in use, read again when its files change.
pub type Tls = Reloading<ServerConfig>;

/// Reads the files; an error names the file and what is wrong with it.
pub fn load(files: TlsFiles) -> Result<Arc<Tls>, String> {
    let paths = files.paths().map(Path::to_path_buf).collect();
    Reloading::load("TLS files", paths, Box::new(move || server_config(&files)))
}

/// An acceptor with the configuration in use now.
pub fn acceptor(tls: &Tls) -> TlsAcceptor {
    TlsAcceptor::from(tls.current())
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

/// The subject common name of a certificate, if it has one in UTF-8.
pub fn common_name(certificate: &CertificateDer<'_>) -> Option<Arc<str>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.into())
}
