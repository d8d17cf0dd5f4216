//! TLS settings shared by [`TcpAcceptor`](crate::TcpAcceptor) (`tls://`)
//! and [`WsAcceptor`](crate::WsAcceptor) (`wss://`): rustls with the ring
//! provider.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

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
    config: Arc<ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1) from files, as Pitaya's
    /// `NewTCPAcceptor(addr, certFile, keyFile)` does.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| Error::ReadFile {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert = read(cert.as_ref())?;
        let key = read(key.as_ref())?;
        Self::from_pem(&cert, &key)
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
        let certs = parse_certs(cert)?;
        let key = parse_key(key)?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::Tls(err.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| Error::Tls(err.to_string()))?;
        Ok(Self {
            config: Arc::new(config),
        })
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

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| Error::Pem(format!("reading certificates: {err}")))?;
    if certs.is_empty() {
        return Err(Error::Pem("no certificate found".into()));
    }
    Ok(certs)
}

/// The first PKCS#8, PKCS#1 or SEC1 key of `pem` (other sections, such as
/// certificates, are skipped).
fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|err| match err {
        pem::Error::NoItemsFound => Error::Pem("no private key found".into()),
        err => Error::Pem(format!("reading the private key: {err}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_garbage_pem() {
        assert!(matches!(TlsConfig::from_pem(b"", b""), Err(Error::Pem(_))));
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = generated.cert.pem();
        assert!(matches!(
            TlsConfig::from_pem(cert.as_bytes(), b"nothing"),
            Err(Error::Pem(_))
        ));
        // A key that does not match the certificate.
        let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(matches!(
            TlsConfig::from_pem(cert.as_bytes(), other.as_bytes()),
            Err(Error::Tls(_))
        ));
        let key = generated.key_pair.serialize_pem();
        assert!(TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
    }

    #[test]
    fn pem_errors_say_what_is_missing() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = generated.cert.pem();
        let key = generated.key_pair.serialize_pem();
        let pem_error = |result: Result<TlsConfig>| match result {
            Err(Error::Pem(message)) => message,
            other => panic!("expected a PEM error, got {other:?}"),
        };
        // A certificate where the key should be: no key section at all.
        assert_eq!(
            pem_error(TlsConfig::from_pem(cert.as_bytes(), cert.as_bytes())),
            "no private key found"
        );
        // A key where the certificate should be.
        assert_eq!(
            pem_error(TlsConfig::from_pem(key.as_bytes(), key.as_bytes())),
            "no certificate found"
        );
        // Bytes that are no PEM at all.
        assert_eq!(
            pem_error(TlsConfig::from_pem(&[0xff, 0x00, 0x13], key.as_bytes())),
            "no certificate found"
        );
        // A section cut before its end marker.
        let cut_cert = &cert[..cert.len() / 2];
        let message = pem_error(TlsConfig::from_pem(cut_cert.as_bytes(), key.as_bytes()));
        assert!(message.starts_with("reading certificates: "), "{message}");
        let cut_key = &key[..key.len() / 2];
        let message = pem_error(TlsConfig::from_pem(cert.as_bytes(), cut_key.as_bytes()));
        assert!(
            message.starts_with("reading the private key: "),
            "{message}"
        );
        // Broken base64 inside a well-formed section.
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let message = pem_error(TlsConfig::from_pem(bad.as_bytes(), key.as_bytes()));
        assert!(message.starts_with("reading certificates: "), "{message}");
        // Key and chain in one file, in either order, as many deployments do.
        let bundle = format!("{key}{cert}");
        assert!(TlsConfig::from_pem(bundle.as_bytes(), bundle.as_bytes()).is_ok());
    }

    #[test]
    fn missing_files_name_the_path() {
        let err =
            TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
