//! What can go wrong loading TLS settings.

use std::path::PathBuf;

use rustls::pki_types::pem;

/// Why a certificate, a key or a rustls configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The certificate input holds no `CERTIFICATE` section (it is empty,
    /// no PEM at all, or only a key).
    #[error("invalid pem: no certificate found")]
    NoCertificate,
    /// The key input holds no PKCS#8, PKCS#1 or SEC1 private key section.
    #[error("invalid pem: no private key found")]
    NoPrivateKey,
    /// A section of the certificate input is broken (cut before its end
    /// marker, invalid base64, ...).
    #[error("invalid pem: reading certificates: {0}")]
    CertificatePem(#[source] pem::Error),
    /// A section of the private key input is broken.
    #[error("invalid pem: reading the private key: {0}")]
    PrivateKeyPem(#[source] pem::Error),
    /// A certificate or key file could not be read.
    #[error("reading {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A CA certificate is well-formed PEM but no certificate rustls can
    /// trust (e.g. bytes that are no X.509 certificate).
    #[error("adding CA certificate: {0}")]
    CaCertificate(#[source] rustls::Error),
    /// rustls refused the configuration (e.g. a key that does not match
    /// the certificate).
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
