//! TLS settings for `tls://` and `wss://` endpoints (rustls with ring,
//! loaded by [`pitaya_tls`]).

use std::sync::Arc;

use pitaya_tls::ClientTls;
use pitaya_tls::rustls::ClientConfig;
use pitaya_tls::rustls::pki_types::ServerName;

/// Why TLS settings could not be built ([`Error::TlsSettings`]).
pub use pitaya_tls::Error as TlsError;

use crate::{Error, Result};

/// How a client checks the server's certificate.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    inner: ClientTls,
}

impl TlsConfig {
    /// Trusts the CA (or self-signed) certificates in a PEM bundle.
    ///
    /// ```
    /// # let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
    /// let tls = pitaya_client::TlsConfig::from_ca_pem(pem.as_bytes()).unwrap();
    /// # let _ = tls;
    /// ```
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self> {
        Ok(ClientTls::from_ca_pem(pem)?.into())
    }

    /// Accepts any server certificate, as Go's pitaya-cli does
    /// (`InsecureSkipVerify`). Handshake signatures are still checked.
    /// For development against self-signed servers only.
    pub fn insecure() -> Self {
        ClientTls::insecure().into()
    }

    /// Uses a rustls configuration built by the caller.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        ClientTls::from_rustls(config).into()
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.inner.rustls_config()
    }

    /// Connects TLS over `io` for server name `host`.
    pub(crate) async fn connect<IO>(
        &self,
        host: &str,
        io: IO,
    ) -> Result<tokio_rustls::client::TlsStream<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|err| Error::Tls(format!("invalid server name {host:?}: {err}")))?;
        tokio_rustls::TlsConnector::from(self.inner.rustls_config())
            .connect(name, io)
            .await
            .map_err(|err| Error::Tls(err.to_string()))
    }
}

impl From<ClientTls> for TlsConfig {
    fn from(inner: ClientTls) -> Self {
        Self { inner }
    }
}

#[cfg(test)]
mod tests {
    // The PEM cases themselves are pitaya-tls' tests; these check that its
    // errors reach this crate's `Error` whole.
    use super::*;

    #[test]
    fn ca_pem_errors_become_client_errors() {
        let err = TlsConfig::from_ca_pem(b"").unwrap_err();
        assert!(
            matches!(err, Error::TlsSettings(TlsError::NoCertificate)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "tls: invalid pem: no certificate found");
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = TlsConfig::from_ca_pem(junk.as_bytes()).unwrap_err();
        assert!(
            matches!(err, Error::TlsSettings(TlsError::CaCertificate(_))),
            "{err:?}"
        );
    }
}
