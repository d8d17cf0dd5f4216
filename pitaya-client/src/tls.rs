//! TLS settings for `tls://` and `wss://` endpoints (rustls with ring).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{Error, Result};

/// How a client checks the server's certificate.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
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
        let mut roots = RootCertStore::empty();
        let mut found = false;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|err| Error::Tls(format!("reading CA pem: {err}")))?;
            roots
                .add(cert)
                .map_err(|err| Error::Tls(format!("adding CA certificate: {err}")))?;
            found = true;
        }
        if !found {
            return Err(Error::Tls("no certificate in CA pem".into()));
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::Tls(err.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Accepts any server certificate, as Go's pitaya-cli does
    /// (`InsecureSkipVerify`). Handshake signatures are still checked.
    /// For development against self-signed servers only.
    pub fn insecure() -> Self {
        let provider = Arc::new(ring::default_provider());
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
        Self {
            config: Arc::new(config),
        }
    }

    /// Uses a rustls configuration built by the caller.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
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
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, io)
            .await
            .map_err(|err| Error::Tls(err.to_string()))
    }
}

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

    fn tls_error(result: Result<TlsConfig>) -> String {
        match result {
            Err(Error::Tls(message)) => message,
            Err(other) => panic!("expected a TLS error, got {other:?}"),
            Ok(_) => panic!("expected a TLS error, got a configuration"),
        }
    }

    #[test]
    fn ca_pem_needs_a_certificate() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = generated.key_pair.serialize_pem();
        assert_eq!(
            tls_error(TlsConfig::from_ca_pem(b"")),
            "no certificate in CA pem"
        );
        assert_eq!(
            tls_error(TlsConfig::from_ca_pem(&[0xff, 0x00, 0x13])),
            "no certificate in CA pem"
        );
        // A key but no certificate.
        assert_eq!(
            tls_error(TlsConfig::from_ca_pem(key.as_bytes())),
            "no certificate in CA pem"
        );
    }

    #[test]
    fn ca_pem_reports_broken_sections() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = generated.cert.pem();
        let cut = &cert[..cert.len() / 2];
        let message = tls_error(TlsConfig::from_ca_pem(cut.as_bytes()));
        assert!(message.starts_with("reading CA pem: "), "{message}");
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let message = tls_error(TlsConfig::from_ca_pem(bad.as_bytes()));
        assert!(message.starts_with("reading CA pem: "), "{message}");
        // Well-formed base64 that is no certificate.
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let message = tls_error(TlsConfig::from_ca_pem(junk.as_bytes()));
        assert!(message.starts_with("adding CA certificate: "), "{message}");
    }

    #[test]
    fn ca_pem_takes_every_certificate_of_a_bundle() {
        let first = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let second = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let bundle = format!(
            "{}{}{}",
            first.cert.pem(),
            first.key_pair.serialize_pem(),
            second.cert.pem()
        );
        assert!(TlsConfig::from_ca_pem(bundle.as_bytes()).is_ok());
    }
}
