//! Certificates made at test time: a CA, a server certificate for 127.0.0.1 and
//! `localhost`, client certificates (one expired), all in a temporary directory that
//! goes with the [`Pki`]. Nothing secret is ever committed.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// A certificate and its key, as PEM, and where they were written.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA that signs server and client certificates, and the directory its files are in.
#[derive(Debug)]
pub struct Pki {
    dir: TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA's certificate, PEM, and its file.
    pub ca_pem: String,
    pub ca_file: PathBuf,
}

impl Pki {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("a directory for certificates");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("the CA's certificate");
        let ca_pem = ca.pem();
        let ca_file = dir.path().join(format!("{name}.pem"));
        std::fs::write(&ca_file, &ca_pem).expect("write the CA's certificate");
        Pki {
            dir,
            ca,
            ca_pem,
            ca_file,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A server certificate for 127.0.0.1, ::1 and `localhost`, written as `name`.
    pub fn server(&self, name: &str) -> Pair {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string()]).expect("a server's names");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(name, params)
    }

    /// A client certificate whose subject is `CN=<common_name>`.
    pub fn client(&self, common_name: &str) -> Pair {
        self.sign(common_name, client_params(common_name))
    }

    /// A client certificate that expired yesterday.
    pub fn expired_client(&self, common_name: &str) -> Pair {
        let mut params = client_params(common_name);
        params.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        params.not_after = OffsetDateTime::now_utc() - Duration::days(1);
        self.sign(common_name, params)
    }

    fn sign(&self, name: &str, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("a signed certificate");
        let pair = Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: self.dir.path().join(format!("{name}.crt")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        std::fs::write(&pair.cert, &pair.cert_pem).expect("write a certificate");
        std::fs::write(&pair.key, &pair.key_pem).expect("write a key");
        pair
    }
}

fn client_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// A token file (`--auth-tokens`) in `dir` that gives each (token, role) its role,
/// named after the token; returns its path.
pub fn token_file(dir: &Path, tokens: &[(&str, &str)]) -> PathBuf {
    let mut text = String::new();
    for (token, role) in tokens {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!(
            "[[token]]\nname = \"{token}\"\nsha256 = \"{hex}\"\nrole = \"{role}\"\n\n"
        ));
    }
    let path = dir.join("tokens.toml");
    std::fs::write(&path, text).expect("write the token file");
    path
}
