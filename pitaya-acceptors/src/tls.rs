//! TLS settings shared by [`TcpAcceptor`](crate::TcpAcceptor) (`tls://`)
//! and [`WsAcceptor`](crate::WsAcceptor) (`wss://`): rustls with the ring
//! provider, loaded by [`pitaya_tls`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use pitaya_tls::ServerTls;
use pitaya_tls::rustls::ServerConfig;

use crate::Result;

/// A server certificate chain and its private key, ready for rustls.
///
/// Cheap to clone (the rustls configuration is shared).
///
/// ```no_run
/// use pitaya_acceptors::{TcpAcceptor, TlsConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let acceptor = TcpAcceptor::bind("0.0.0.0:3250").await?.with_tls(tls);
/// # let _ = acceptor; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    inner: ServerTls,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn_protocols", &self.inner.rustls_config().alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1) from files, as Pitaya's
    /// `NewTCPAcceptor(addr, certFile, keyFile)` does.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Ok(ServerTls::from_pem_files(cert, key)?.into())
    }

    /// Builds the configuration from a PEM certificate chain (leaf first)
    /// and a PEM private key.
    ///
    /// ```
    /// # let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert_pem, key_pem) = (generated.cert.pem(), generated.key_pair.serialize_pem());
    /// let tls = pitaya_acceptors::TlsConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
    /// # let _ = tls;
    /// # Ok::<(), pitaya_acceptors::Error>(())
    /// ```
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self> {
        Ok(ServerTls::from_pem(cert, key)?.into())
    }

    /// Uses a rustls configuration built by the caller (client
    /// authentication, ALPN, certificate resolvers, another provider).
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        ServerTls::from_rustls(config).into()
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ServerConfig> {
        self.inner.rustls_config()
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.inner.rustls_config())
    }
}

impl From<ServerTls> for TlsConfig {
    fn from(inner: ServerTls) -> Self {
        Self { inner }
    }
}

#[cfg(test)]
mod tests {
    // The PEM cases themselves are pitaya-tls' tests; these check that its
    // errors reach this crate's `Error` whole.
    use super::*;
    use crate::{Error, TlsError};

    #[test]
    fn pem_errors_become_acceptor_errors() {
        let err = TlsConfig::from_pem(b"", b"").unwrap_err();
        assert!(
            matches!(err, Error::Tls(TlsError::NoCertificate)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "invalid pem: no certificate found");
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = generated.cert.pem();
        let err = TlsConfig::from_pem(cert.as_bytes(), b"nothing").unwrap_err();
        assert!(matches!(err, Error::Tls(TlsError::NoPrivateKey)), "{err:?}");
        // A key that does not match the certificate.
        let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let err = TlsConfig::from_pem(cert.as_bytes(), other.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::Tls(TlsError::Rustls(_))), "{err:?}");
        let key = generated.key_pair.serialize_pem();
        let tls = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(format!("{tls:?}"), "TlsConfig { alpn_protocols: [], .. }");
    }

    #[test]
    fn missing_files_name_the_path() {
        let err =
            TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(
            matches!(&err, Error::Tls(TlsError::ReadFile { path, .. }) if path.ends_with("cert.pem")),
            "{err:?}"
        );
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
