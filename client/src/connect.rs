//! How a client reaches the server: the address, TLS, and the credentials each call
//! carries.

use crate::client::{Client, MAX_FRAME_BYTES};
use crate::error::Error;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Settings for a connection, from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    uri: String,
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
    token: Option<String>,
}

/// The address a client uses when given none: `EVENIRE_SERVER`, else the server's
/// default, `http://127.0.0.1:5243`.
pub fn default_address() -> String {
    std::env::var("EVENIRE_SERVER")
        .ok()
        .filter(|address| !address.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:5243".into())
}

/// `host:port` as `http://host:port`; addresses with a scheme as they are.
fn with_scheme(address: String) -> String {
    let address = address.trim();
    match address.contains("://") {
        true => address.to_string(),
        false => format!("http://{address}"),
    }
}

impl ClientBuilder {
    pub(crate) fn new(uri: String) -> Self {
        ClientBuilder {
            uri: with_scheme(uri),
            ca: None,
            identity: None,
            domain: None,
            token: None,
        }
    }

    /// Trust servers whose certificate this CA signed (PEM), instead of the system's
    /// roots. Implies TLS.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(pem.into());
        self
    }

    /// Present this certificate (PEM, with its chain) and key (PEM) to a server that
    /// asks for one (mutual TLS). Implies TLS.
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Check the server's certificate for this name instead of the address's host.
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    /// Send this bearer token with every call. An empty one sends none.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Connects. TLS is used for an `https://` address; an `http://` address with TLS
    /// settings is refused, as a setting that cannot be meant.
    pub async fn connect(self) -> Result<Client, Error> {
        let credentials = Credentials::bearer(self.token.as_deref())?;
        Ok(Client::with_credentials(self.channel().await?, credentials))
    }

    /// The connection alone, without the token: for other services on the same server
    /// (`grpc.health.v1`, which asks for no credentials).
    pub async fn channel(&self) -> Result<Channel, Error> {
        let mut endpoint = Endpoint::from_shared(self.uri.clone())
            .map_err(|e| Error::InvalidUri(format!("{}: {e}", self.uri)))?
            .tcp_nodelay(true)
            .max_frame_size(MAX_FRAME_BYTES);
        let https = match endpoint.uri().scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(Error::InvalidUri(format!(
                    "{}: the address must be host:port, http://host:port or https://host:port",
                    self.uri
                )));
            }
        };
        if endpoint.uri().port_u16().is_none() {
            return Err(Error::InvalidUri(format!(
                "{}: the address needs a port (the server's default is 5243)",
                self.uri
            )));
        }
        let wants_tls = self.ca.is_some() || self.identity.is_some() || self.domain.is_some();
        if wants_tls && !https {
            return Err(Error::InvalidUri(format!(
                "{}: TLS settings were given, so the address must start with https://",
                self.uri
            )));
        }
        if https {
            let mut tls = ClientTlsConfig::new();
            tls = match &self.ca {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = &self.identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            if let Some(domain) = &self.domain {
                tls = tls.domain_name(domain);
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        Ok(endpoint.connect().await?)
    }
}

/// What every call carries: the bearer token, when there is one.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    authorization: Option<MetadataValue<Ascii>>,
}

impl Credentials {
    fn bearer(token: Option<&str>) -> Result<Self, Error> {
        let authorization = match token {
            None => None,
            Some(token) => {
                let mut value: MetadataValue<Ascii> =
                    format!("Bearer {token}").parse().map_err(|_| {
                        Error::InvalidArgument("the token must be printable ASCII".into())
                    })?;
                // Kept out of debug output and logs.
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Credentials { authorization })
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_with_or_without_a_scheme() {
        assert_eq!(
            with_scheme("127.0.0.1:5243".into()),
            "http://127.0.0.1:5243"
        );
        assert_eq!(with_scheme(" https://db:5243 ".into()), "https://db:5243");
        assert_eq!(with_scheme("http://[::1]:5243".into()), "http://[::1]:5243");
    }

    #[tokio::test]
    async fn a_malformed_address_is_an_invalid_uri_not_a_connection_error() {
        for address in [
            "ftp://127.0.0.1:5243",
            "127.0.0.1",
            "http://",
            "not an address",
        ] {
            match ClientBuilder::new(address.into()).connect().await {
                Err(Error::InvalidUri(message)) => assert!(!message.is_empty()),
                other => panic!("{address}: {other:?}"),
            }
        }
    }
}
