//! `evenire-test-certs DIR`: writes a CA (`ca.pem`), a server certificate for 127.0.0.1
//! and localhost (`server.crt`, `server.key`) and a client certificate with common name
//! `client` (`client.crt`, `client.key`) into DIR, for the Python and TypeScript
//! clients' tests: one maker of test certificates for every language (`tls.rs`).

use evenire_testkit::tls::Pki;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: evenire-test-certs DIR");
        return ExitCode::from(2);
    };
    let pki = Pki::new("ca");
    let written = [pki.server("server"), pki.client("client")];
    let mut files = vec![(pki.ca_file.clone(), "ca.pem".to_string())];
    for pair in &written {
        for path in [&pair.cert, &pair.key] {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            files.push((path.clone(), name.unwrap_or_default()));
        }
    }
    for (from, name) in files {
        if let Err(e) = std::fs::copy(&from, dir.join(&name)) {
            eprintln!(
                "evenire-test-certs: writing {name} into {}: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
