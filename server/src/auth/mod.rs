//! Who may call: bearer tokens and client certificates from the token file
//! (`rules.rs`), each with a role and optionally a set of stream-type prefixes.
//!
//! - `read`: Read, ReadAll, Subscribe, ListStreams, GetStream, GetServerInfo;
//! - `write`: those and Append;
//! - `admin`: everything, DeleteStream included.
//!
//! A credential limited to stream-type prefixes touches only those streams: a call
//! naming another stream is denied, and `$all` reads, subscriptions and listings skip
//! what lies outside. Without `--auth-tokens` every caller may do everything
//! ([`Access::open`]), which the server allows on loopback, behind mutual TLS, or with
//! `--insecure` (`Config::check_exposure`).
//!
//! Tokens are never kept or logged: the file holds their SHA-256, a presented token is
//! hashed and the digests compared in constant time.

pub mod rules;

use crate::connections::Peer;
use crate::reload::Reloading;
use rules::{Grant, Rules};
use std::fmt;
use std::sync::Arc;
use tonic::{Request, Status};

/// What a credential may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// The stream-type prefixes a credential is limited to; None: every stream.
#[derive(Debug, Clone, Default)]
pub struct Scope(pub Option<Arc<[String]>>);

impl Scope {
    pub fn allows(&self, stream_type: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|prefixes| prefixes.iter().any(|p| stream_type.starts_with(p.as_str())))
    }

    /// Whether every stream is in scope.
    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }
}

/// Who made a call, as far as the server let it in.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: Arc<str>,
    pub role: Role,
    pub scope: Scope,
}

impl Caller {
    /// Denies a call on a stream of `stream_type` outside the caller's scope.
    pub fn may_touch(&self, stream_type: &str) -> Result<(), Status> {
        match self.scope.allows(stream_type) {
            true => Ok(()),
            false => Err(Status::permission_denied(format!(
                "`{}` may only touch streams whose type starts with {}; `{stream_type}` does not",
                self.name,
                self.scope
                    .0
                    .as_deref()
                    .map(describe_prefixes)
                    .unwrap_or_default(),
            ))),
        }
    }
}

fn describe_prefixes(prefixes: &[String]) -> String {
    let quoted: Vec<String> = prefixes.iter().map(|p| format!("`{p}`")).collect();
    quoted.join(" or ")
}

/// Lets through the calls of callers `Access` knows, whatever their role: for services
/// outside the event store's own, such as reflection.
#[derive(Debug, Clone)]
pub struct Authenticated(Access);

impl tonic::service::Interceptor for Authenticated {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.0.authenticate(&request).map(|_| request)
    }
}

/// `service` for the callers `access` knows; not served without one.
pub fn guarded<S>(
    service: S,
    access: Option<Access>,
) -> Option<tonic::service::interceptor::InterceptedService<S, Authenticated>> {
    access.map(|access| {
        tonic::service::interceptor::InterceptedService::new(service, Authenticated(access))
    })
}

/// The token file in use, or none: everyone may do everything.
#[derive(Debug, Clone, Default)]
pub struct Access {
    rules: Option<Arc<Reloading<Rules>>>,
}

impl Access {
    /// Every caller may do everything.
    pub fn open() -> Self {
        Access { rules: None }
    }

    /// Callers as the token file, read again when it changes, says.
    pub fn with_rules(rules: Arc<Reloading<Rules>>) -> Self {
        Access { rules: Some(rules) }
    }

    /// Who makes `request`, if the call `call` needs no more than the caller's role:
    /// `UNAUTHENTICATED` without known credentials, `PERMISSION_DENIED` when the role
    /// is short.
    pub fn caller<T>(
        &self,
        request: &Request<T>,
        call: &str,
        needs: Role,
    ) -> Result<Caller, Status> {
        let caller = self.authenticate(request)?;
        if caller.role < needs {
            return Err(Status::permission_denied(format!(
                "{call} needs the `{needs}` role; `{}` has `{}`",
                caller.name, caller.role
            )));
        }
        Ok(caller)
    }

    /// Who makes `request`, whatever it asks.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let Some(rules) = &self.rules else {
            return Ok(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
                scope: Scope::default(),
            });
        };
        let rules = rules.current();
        let grant = match request.metadata().get("authorization") {
            Some(value) => {
                let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
                    Status::unauthenticated("the authorization header must be `Bearer <token>`")
                })?;
                token_grant(&rules, token).ok_or_else(|| {
                    Status::unauthenticated("the bearer token is not known: mistyped, or revoked")
                })?
            }
            None => certificate_grant(&rules, request).ok_or_else(|| {
                Status::unauthenticated(
                    "no credentials: send the header `authorization: Bearer <token>`, or a \
                     client certificate the server knows",
                )
            })?,
        };
        Ok(Caller {
            name: grant.name.clone(),
            role: grant.role,
            scope: grant.scope.clone(),
        })
    }
}

/// The token of `Bearer <token>` (the scheme in any case, as RFC 9110 allows).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn token_grant<'a>(rules: &'a Rules, token: &str) -> Option<&'a Grant> {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let digest = digest.as_ref();
    // Every entry is compared in full, so the time taken says nothing of which one
    // matched or how much of it.
    let mut found = None;
    for (known, grant) in &rules.tokens {
        if equal_in_constant_time(known, digest) && found.is_none() {
            found = Some(grant);
        }
    }
    found
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

fn certificate_grant<'a, T>(rules: &'a Rules, request: &Request<T>) -> Option<&'a Grant> {
    let name = request
        .extensions()
        .get::<Peer>()?
        .client_common_name
        .as_deref()?;
    rules
        .certificates
        .iter()
        .find(|(common_name, _)| common_name == name)
        .map(|(_, grant)| grant)
}

/// Reads the token file, to be read again when it changes.
pub fn load(path: std::path::PathBuf) -> Result<Arc<Reloading<Rules>>, String> {
    let paths = vec![path.clone()];
    Reloading::load("token file", paths, Box::new(move || rules::load(&path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header_in_any_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn digests_compare_whole() {
        assert!(equal_in_constant_time(&[1, 2, 3], &[1, 2, 3]));
        assert!(!equal_in_constant_time(&[1, 2, 3], &[1, 2, 4]));
        assert!(!equal_in_constant_time(&[1, 2], &[1, 2, 3]));
    }

    #[test]
    fn roles_include_the_ones_before_them() {
        assert!(Role::Admin > Role::Write && Role::Write > Role::Read);
    }
}
