//! The token file (`--auth-tokens`): who may call, with which role, on which streams.
//!
//! TOML, or JSON when the file name ends in `.json`, with the same keys:
//!
//! ```toml
//! [[token]]
//! name = "billing"                 # shown in logs and errors; the token never is
//! sha256 = "9f86d081884c7d65..."   # hex SHA-256 of the token: the file holds no secret
//! role = "write"                   # read, write or admin
//! stream_types = ["order", "invoice"]   # optional: stream-type prefixes it is limited to
//!
//! [[client_certificate]]
//! common_name = "reporting"        # the CN of a client certificate (mutual TLS)
//! role = "read"
//! ```

use super::{Role, Scope};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// One credential's name, role and scope.
#[derive(Debug, Clone)]
pub struct Grant {
    pub name: Arc<str>,
    pub role: Role,
    pub scope: Scope,
}

/// The file, checked.
#[derive(Debug, Default)]
pub struct Rules {
    /// SHA-256 digests of tokens, each with what it grants.
    pub tokens: Vec<([u8; 32], Grant)>,
    /// Client certificate common names, each with what it grants.
    pub certificates: Vec<(String, Grant)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    client_certificate: Vec<CertificateEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    role: Role,
    #[serde(default)]
    stream_types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateEntry {
    common_name: String,
    role: Role,
    #[serde(default)]
    stream_types: Option<Vec<String>>,
}

/// Reads and checks the token file; the error names the file and the entry.
pub fn load(path: &Path) -> Result<Rules, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--auth-tokens {}: {e}", path.display()))?;
    parse(&text, path.extension().is_some_and(|e| e == "json"))
        .map_err(|e| format!("--auth-tokens {}: {e}", path.display()))
}

fn parse(text: &str, json: bool) -> Result<Rules, String> {
    let file: File = match json {
        true => serde_json::from_str(text).map_err(|e| e.to_string())?,
        false => toml::from_str(text).map_err(|e| e.to_string())?,
    };
    let mut rules = Rules::default();
    let mut names = std::collections::HashSet::new();
    for entry in file.token {
        let at = format!("token `{}`", entry.name);
        if entry.name.is_empty() || !names.insert(entry.name.clone()) {
            return Err(format!("{at}: names must be given and differ"));
        }
        let digest = hex_digest(&entry.sha256).ok_or_else(|| {
            format!(
                "{at}: sha256 must be 64 hexadecimal digits (the token's SHA-256, not the token)"
            )
        })?;
        let grant = grant(entry.name, entry.role, entry.stream_types, &at)?;
        rules.tokens.push((digest, grant));
    }
    for entry in file.client_certificate {
        let at = format!("client_certificate `{}`", entry.common_name);
        if entry.common_name.is_empty() || !names.insert(entry.common_name.clone()) {
            return Err(format!(
                "{at}: common names must be given and differ from every other name"
            ));
        }
        let grant = grant(
            entry.common_name.clone(),
            entry.role,
            entry.stream_types,
            &at,
        )?;
        rules.certificates.push((entry.common_name, grant));
    }
    Ok(rules)
}

fn grant(
    name: String,
    role: Role,
    stream_types: Option<Vec<String>>,
    at: &str,
) -> Result<Grant, String> {
    if let Some(prefixes) = &stream_types
        && (prefixes.is_empty() || prefixes.iter().any(String::is_empty))
    {
        return Err(format!(
            "{at}: stream_types lists the prefixes it is limited to; leave it out for all streams"
        ));
    }
    Ok(Grant {
        name: name.into(),
        role,
        scope: Scope(stream_types.map(Into::into)),
    })
}

fn hex_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn toml_and_json_say_the_same() {
        let toml = format!(
            "[[token]]\nname = \"billing\"\nsha256 = \"{DIGEST}\"\nrole = \"write\"\nstream_types = [\"order\"]\n\n\
             [[client_certificate]]\ncommon_name = \"reporting\"\nrole = \"read\"\n"
        );
        let json = format!(
            r#"{{"token": [{{"name": "billing", "sha256": "{DIGEST}", "role": "write", "stream_types": ["order"]}}],
                "client_certificate": [{{"common_name": "reporting", "role": "read"}}]}}"#
        );
        for rules in [parse(&toml, false), parse(&json, true)] {
            let rules = rules.expect("a valid file");
            assert_eq!(rules.tokens.len(), 1);
            let (digest, grant) = &rules.tokens[0];
            assert_eq!(digest[0], 0x9f);
            assert_eq!((&*grant.name, grant.role), ("billing", Role::Write));
            assert!(grant.scope.allows("order-line") && !grant.scope.allows("sensor"));
            let (name, grant) = &rules.certificates[0];
            assert_eq!((name.as_str(), grant.role), ("reporting", Role::Read));
            assert!(grant.scope.allows("anything"));
        }
    }

    #[test]
    fn mistakes_are_named() {
        let bad = [
            (
                "[[token]]\nname = \"a\"\nsha256 = \"secret\"\nrole = \"read\"\n",
                "64 hexadecimal",
            ),
            (
                &*format!("[[token]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nrole = \"root\"\n"),
                "root",
            ),
            (
                &*format!(
                    "[[token]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nrole = \"read\"\ntoken = \"x\"\n"
                ),
                "token",
            ),
            (
                &*format!(
                    "[[token]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nrole = \"read\"\n[[token]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nrole = \"read\"\n"
                ),
                "differ",
            ),
            (
                &*format!(
                    "[[token]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nrole = \"read\"\nstream_types = []\n"
                ),
                "leave it out",
            ),
        ];
        for (text, says) in bad {
            let error = parse(text, false).expect_err(text);
            assert!(error.contains(says), "`{error}` should say `{says}`");
        }
    }
}
