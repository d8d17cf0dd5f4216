//! Certificates and private keys from PEM bytes or files.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// Every `CERTIFICATE` section of `pem`, in order (for a server: the leaf
/// first, then its intermediates; for a client: a CA bundle). Other
/// sections, such as keys, are skipped.
///
/// # Errors
///
/// [`Error::CertificatePem`] for a broken section, [`Error::NoCertificate`]
/// when there is no certificate at all.
///
/// ```
/// # let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
/// let certs = pitaya_tls::certs_from_pem(pem.as_bytes())?;
/// assert_eq!(certs.len(), 1);
/// # Ok::<(), pitaya_tls::Error>(())
/// ```
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::CertificatePem)?;
    if certs.is_empty() {
        return Err(Error::NoCertificate);
    }
    Ok(certs)
}

/// [`certs_from_pem`] on the contents of the file at `path`
/// ([`Error::ReadFile`] names the path when it cannot be read).
pub fn certs_from_pem_file(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>> {
    certs_from_pem(&read(path.as_ref())?)
}

/// The first PKCS#8, PKCS#1 or SEC1 private key of `pem` (other sections,
/// such as certificates, are skipped, so a key and its chain may share one
/// file).
///
/// # Errors
///
/// [`Error::PrivateKeyPem`] for a broken section, [`Error::NoPrivateKey`]
/// when there is no key at all.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|err| match err {
        pem::Error::NoItemsFound => Error::NoPrivateKey,
        err => Error::PrivateKeyPem(err),
    })
}

/// [`private_key_from_pem`] on the contents of the file at `path`
/// ([`Error::ReadFile`] names the path when it cannot be read).
pub fn private_key_from_pem_file(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>> {
    private_key_from_pem(&read(path.as_ref())?)
}

/// The contents of the file at `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::self_signed;

    #[test]
    fn certificates_need_a_certificate_section() {
        let (cert, key) = self_signed(&["localhost"]);
        assert!(matches!(certs_from_pem(b""), Err(Error::NoCertificate)));
        // Bytes that are no PEM at all.
        assert!(matches!(
            certs_from_pem(&[0xff, 0x00, 0x13]),
            Err(Error::NoCertificate)
        ));
        // A key where the certificate should be.
        assert!(matches!(
            certs_from_pem(key.as_bytes()),
            Err(Error::NoCertificate)
        ));
        assert_eq!(
            certs_from_pem(b"").unwrap_err().to_string(),
            "invalid pem: no certificate found"
        );
        assert_eq!(certs_from_pem(cert.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn broken_certificate_sections_are_reported() {
        let (cert, _) = self_signed(&["localhost"]);
        // A section cut before its end marker.
        let cut = &cert[..cert.len() / 2];
        let err = certs_from_pem(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::CertificatePem(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("invalid pem: reading certificates: "),
            "{err}"
        );
        // Broken base64 inside a well-formed section.
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = certs_from_pem(bad.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::CertificatePem(_)), "{err:?}");
    }

    #[test]
    fn private_keys_need_a_key_section() {
        let (cert, key) = self_signed(&["localhost"]);
        // A certificate where the key should be: no key section at all.
        let err = private_key_from_pem(cert.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::NoPrivateKey), "{err:?}");
        assert_eq!(err.to_string(), "invalid pem: no private key found");
        assert!(matches!(
            private_key_from_pem(b"nothing"),
            Err(Error::NoPrivateKey)
        ));
        // A section cut before its end marker.
        let cut = &key[..key.len() / 2];
        let err = private_key_from_pem(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::PrivateKeyPem(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("invalid pem: reading the private key: "),
            "{err}"
        );
        assert!(private_key_from_pem(key.as_bytes()).is_ok());
    }

    #[test]
    fn a_key_and_its_chain_may_share_one_input() {
        let (cert, key) = self_signed(&["localhost"]);
        // In either order, as many deployments do.
        for bundle in [format!("{key}{cert}"), format!("{cert}{key}")] {
            assert_eq!(certs_from_pem(bundle.as_bytes()).unwrap().len(), 1);
            assert!(private_key_from_pem(bundle.as_bytes()).is_ok());
        }
    }

    #[test]
    fn files_are_read_and_missing_files_name_the_path() {
        let (cert, key) = self_signed(&["localhost"]);
        let dir = std::env::temp_dir().join(format!("pitaya-tls-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let certs = certs_from_pem_file(&cert_path);
        let key = private_key_from_pem_file(&key_path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(certs.unwrap().len(), 1);
        key.unwrap();

        for err in [
            certs_from_pem_file("/nonexistent/cert.pem").unwrap_err(),
            private_key_from_pem_file("/nonexistent/cert.pem").unwrap_err(),
        ] {
            assert!(
                matches!(&err, Error::ReadFile { path, .. } if path == Path::new("/nonexistent/cert.pem")),
                "{err:?}"
            );
            assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
        }
    }
}
