//! Server settings: a certificate chain and its private key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Result, certs_from_pem, certs_from_pem_file, crypto_provider, private_key_from_pem};

/// A rustls server configuration for a certificate chain (leaf first) and
/// its private key: the ring provider, its safe default protocol versions
/// (TLS 1.2 and 1.3), no client authentication and no ALPN protocols (as
/// Go Pitaya's `tls.Config{Certificates: ...}`: the Pitaya protocol over
/// TLS and WebSocket over TLS need neither).
///
/// # Errors
///
/// [`Error::Rustls`](crate::Error::Rustls) when rustls refuses the chain
/// or the key (e.g. a key that does not match the certificate).
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// A server certificate chain and its private key, ready for rustls.
///
/// Cheap to clone (the rustls configuration is shared).
///
/// ```
/// # let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let (cert_pem, key_pem) = (generated.cert.pem(), generated.key_pair.serialize_pem());
/// let tls = pitaya_tls::ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
/// let config = tls.rustls_config(); // for tokio_rustls::TlsAcceptor::from
/// # let _ = config;
/// # Ok::<(), pitaya_tls::Error>(())
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1) from files, as Pitaya's
    /// `NewTCPAcceptor(addr, certFile, keyFile)` does.
    ///
    /// # Errors
    ///
    /// [`Error::ReadFile`](crate::Error::ReadFile) naming the file that
    /// cannot be read, and the errors of [`ServerTls::from_pem`].
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let certs = certs_from_pem_file(cert)?;
        let key = crate::private_key_from_pem_file(key)?;
        Ok(Self::from_rustls(server_config(certs, key)?))
    }

    /// Builds the configuration ([`server_config`]) from a PEM certificate
    /// chain (leaf first) and a PEM private key.
    ///
    /// # Errors
    ///
    /// Those of [`certs_from_pem`], [`private_key_from_pem`] and
    /// [`server_config`].
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self> {
        let certs = certs_from_pem(cert)?;
        let key = private_key_from_pem(key)?;
        Ok(Self::from_rustls(server_config(certs, key)?))
    }

    /// Uses a rustls configuration built by the caller (client
    /// authentication, ALPN, certificate resolvers, another provider).
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        Self { config }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::tests::self_signed;

    #[test]
    fn refuses_empty_garbage_and_mismatched_pem() {
        assert!(matches!(
            ServerTls::from_pem(b"", b""),
            Err(Error::NoCertificate)
        ));
        let (cert, key) = self_signed(&["localhost"]);
        assert!(matches!(
            ServerTls::from_pem(cert.as_bytes(), b"nothing"),
            Err(Error::NoPrivateKey)
        ));
        assert!(matches!(
            ServerTls::from_pem(key.as_bytes(), key.as_bytes()),
            Err(Error::NoCertificate)
        ));
        // A key that does not match the certificate.
        let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let err = ServerTls::from_pem(cert.as_bytes(), other.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::Rustls(_)), "{err:?}");
        assert!(err.to_string().starts_with("tls configuration: "), "{err}");
        assert!(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
        // Key and chain in one input.
        let bundle = format!("{key}{cert}");
        assert!(ServerTls::from_pem(bundle.as_bytes(), bundle.as_bytes()).is_ok());
    }

    #[test]
    fn sets_no_alpn() {
        let (cert, key) = self_signed(&["localhost"]);
        let tls = ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert!(tls.rustls_config().alpn_protocols.is_empty());
        assert_eq!(format!("{tls:?}"), "ServerTls { alpn_protocols: [], .. }");
    }

    #[test]
    fn pem_files_are_read_and_missing_files_name_the_path() {
        let (cert, key) = self_signed(&["localhost"]);
        let dir = std::env::temp_dir().join(format!("pitaya-tls-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let loaded = ServerTls::from_pem_files(&cert_path, &key_path);
        let missing_key = ServerTls::from_pem_files(&cert_path, dir.join("missing.pem"));
        std::fs::remove_dir_all(&dir).unwrap();
        loaded.unwrap();
        assert!(
            matches!(&missing_key, Err(Error::ReadFile { path, .. }) if path.ends_with("missing.pem")),
            "{missing_key:?}"
        );

        let err =
            ServerTls::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
