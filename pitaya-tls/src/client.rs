//! Client settings: the certificates a client trusts.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{Error, Result, certs_from_pem, crypto_provider};

/// A root store holding every certificate of the PEM bundle `pem` (CA or
/// self-signed certificates; other sections, such as keys, are skipped).
///
/// # Errors
///
/// Those of [`certs_from_pem`], and [`Error::CaCertificate`] for a
/// certificate rustls cannot use as a trust anchor.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem)? {
        roots.add(cert).map_err(Error::CaCertificate)?;
    }
    Ok(roots)
}

/// A rustls client configuration trusting `roots`: the ring provider, its
/// safe default protocol versions and no client authentication.
///
/// # Errors
///
/// [`Error::Rustls`] if the provider supports none of the protocol
/// versions (never with ring).
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A rustls client configuration that accepts any server certificate, as
/// Go's pitaya-cli does (`InsecureSkipVerify`). Handshake signatures are
/// still checked.
///
/// **Warning**: this trusts whoever answers, so anyone on the path can
/// read and change the traffic. For development against self-signed
/// servers only.
pub fn insecure_client_config() -> Arc<ClientConfig> {
    let provider = crypto_provider();
    let verifier = Arc::new(AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        })
        .expect("the ring provider supports the default protocol versions");
    Arc::new(config)
}

/// How a client checks the server's certificate, ready for rustls.
///
/// Cheap to clone (the rustls configuration is shared).
///
/// ```
/// # let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
/// let tls = pitaya_tls::ClientTls::from_ca_pem(pem.as_bytes())?;
/// let config = tls.rustls_config(); // for tokio_rustls::TlsConnector::from
/// # let _ = config;
/// # Ok::<(), pitaya_tls::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// Trusts the CA (or self-signed) certificates in a PEM bundle, every
    /// one of them ([`roots_from_pem`]).
    ///
    /// # Errors
    ///
    /// Those of [`roots_from_pem`].
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self> {
        Ok(Self::from_rustls(client_config(roots_from_pem(pem)?)?))
    }

    /// [`ClientTls::from_ca_pem`] on the contents of the file at `path`
    /// ([`Error::ReadFile`] names the path when it cannot be read).
    pub fn from_ca_pem_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_ca_pem(&crate::pem::read(path.as_ref())?)
    }

    /// Accepts any server certificate, as Go's pitaya-cli does
    /// (`InsecureSkipVerify`). Handshake signatures are still checked.
    /// For development against self-signed servers only
    /// ([`insecure_client_config`]).
    pub fn insecure() -> Self {
        Self::from_rustls(insecure_client_config())
    }

    /// Uses a rustls configuration built by the caller.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// The verifier of [`insecure_client_config`]: any certificate, valid
/// handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::self_signed;

    #[test]
    fn ca_pem_needs_a_certificate() {
        let (_, key) = self_signed(&["localhost"]);
        assert!(matches!(
            ClientTls::from_ca_pem(b""),
            Err(Error::NoCertificate)
        ));
        assert!(matches!(
            ClientTls::from_ca_pem(&[0xff, 0x00, 0x13]),
            Err(Error::NoCertificate)
        ));
        // A key but no certificate.
        assert!(matches!(
            ClientTls::from_ca_pem(key.as_bytes()),
            Err(Error::NoCertificate)
        ));
    }

    #[test]
    fn ca_pem_reports_broken_sections() {
        let (cert, _) = self_signed(&["localhost"]);
        let cut = &cert[..cert.len() / 2];
        let err = ClientTls::from_ca_pem(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::CertificatePem(_)), "{err:?}");
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = ClientTls::from_ca_pem(bad.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::CertificatePem(_)), "{err:?}");
        // Well-formed base64 that is no certificate.
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = ClientTls::from_ca_pem(junk.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::CaCertificate(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("adding CA certificate: "),
            "{err}"
        );
    }

    #[test]
    fn ca_pem_takes_every_certificate_of_a_bundle() {
        let (first, first_key) = self_signed(&["a.test"]);
        let (second, _) = self_signed(&["b.test"]);
        let bundle = format!("{first}{first_key}{second}");
        assert_eq!(roots_from_pem(bundle.as_bytes()).unwrap().len(), 2);
        assert!(ClientTls::from_ca_pem(bundle.as_bytes()).is_ok());
    }

    #[test]
    fn ca_pem_files_are_read_and_missing_files_name_the_path() {
        let (cert, _) = self_signed(&["localhost"]);
        let path = std::env::temp_dir().join(format!("pitaya-tls-ca-{}.pem", std::process::id()));
        std::fs::write(&path, cert).unwrap();
        let loaded = ClientTls::from_ca_pem_file(&path);
        std::fs::remove_file(&path).unwrap();
        loaded.unwrap();
        let err = ClientTls::from_ca_pem_file("/nonexistent/ca.pem").unwrap_err();
        assert!(matches!(err, Error::ReadFile { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
