//! TLS settings shared by pitaya-rs servers (`tls://` and `wss://`
//! acceptors) and clients: rustls with the ring provider, and no runtime
//! (the handshake itself belongs to `tokio-rustls` in the crates that do
//! I/O).
//!
//! - [`certs_from_pem`], [`private_key_from_pem`] (and their `_file`
//!   forms): PEM parsing with an [`Error`] that says what is missing or
//!   broken,
//! - [`ServerTls`] (or [`server_config`]): a certificate chain and its key,
//! - [`ClientTls`] (or [`roots_from_pem`] and [`client_config`]): the CA
//!   certificates a client trusts, or [`ClientTls::insecure`] for
//!   development against self-signed servers.
//!
//! ```
//! use pitaya_tls::{ClientTls, Error, ServerTls};
//!
//! // A self-signed certificate, as a test or a development server uses.
//! let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! let cert_pem = generated.cert.pem();
//! let key_pem = generated.key_pair.serialize_pem();
//!
//! let server = ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
//! assert!(server.rustls_config().alpn_protocols.is_empty());
//!
//! // The client trusts that certificate as its CA.
//! let client = ClientTls::from_ca_pem(cert_pem.as_bytes())?;
//! # let _ = client;
//!
//! // Errors say what is wrong with the input.
//! assert!(matches!(
//!     ServerTls::from_pem(key_pem.as_bytes(), key_pem.as_bytes()),
//!     Err(Error::NoCertificate)
//! ));
//! assert!(matches!(
//!     ServerTls::from_pem(cert_pem.as_bytes(), cert_pem.as_bytes()),
//!     Err(Error::NoPrivateKey)
//! ));
//! # Ok::<(), Error>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod error;
mod pem;
mod server;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub use client::{ClientTls, client_config, insecure_client_config, roots_from_pem};
pub use error::{Error, Result};
pub use pem::{
    certs_from_pem, certs_from_pem_file, private_key_from_pem, private_key_from_pem_file,
};
/// The rustls this crate builds its configurations with (for
/// [`ServerTls::from_rustls`] and [`ClientTls::from_rustls`]).
pub use rustls;
pub use server::{ServerTls, server_config};

/// The crypto provider of every configuration this crate builds: rustls'
/// ring provider with its defaults.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

    use super::*;

    /// A self-signed certificate for `names`: (cert pem, key pem).
    pub(crate) fn self_signed(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names).unwrap();
        (generated.cert.pem(), generated.key_pair.serialize_pem())
    }

    /// Moves every pending TLS record from `from` to `to`.
    fn pump(from: &mut Connection, to: &mut Connection) -> std::result::Result<(), rustls::Error> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut rest = &wire[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets()?;
        }
        Ok(())
    }

    /// An in-memory handshake of `client` with `server` for server name
    /// `name`: the first error of either side.
    fn handshake(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        name: &str,
    ) -> std::result::Result<(), rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut client = Connection::from(ClientConnection::new(client, name)?);
        let mut server = Connection::from(ServerConnection::new(server)?);
        for _ in 0..10 {
            pump(&mut client, &mut server)?;
            pump(&mut server, &mut client)?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    #[test]
    fn a_client_trusting_the_certificate_completes_a_handshake() {
        let (cert, key) = self_signed(&["localhost"]);
        let server = ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let client = ClientTls::from_ca_pem(cert.as_bytes()).unwrap();
        handshake(client.rustls_config(), server.rustls_config(), "localhost").unwrap();
        // The certificate is not valid for another name.
        let err = handshake(client.rustls_config(), server.rustls_config(), "other.test");
        assert!(
            matches!(err, Err(rustls::Error::InvalidCertificate(_))),
            "{err:?}"
        );
    }

    #[test]
    fn a_client_trusting_another_ca_is_refused() {
        let (cert, key) = self_signed(&["localhost"]);
        let (other, _) = self_signed(&["localhost"]);
        let server = ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let client = ClientTls::from_ca_pem(other.as_bytes()).unwrap();
        let err = handshake(client.rustls_config(), server.rustls_config(), "localhost");
        assert!(
            matches!(err, Err(rustls::Error::InvalidCertificate(_))),
            "{err:?}"
        );
    }

    #[test]
    fn an_insecure_client_accepts_any_certificate() {
        let (cert, key) = self_signed(&["localhost"]);
        let server = ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let client = ClientTls::insecure();
        handshake(client.rustls_config(), server.rustls_config(), "localhost").unwrap();
        handshake(client.rustls_config(), server.rustls_config(), "other.test").unwrap();
        // TLS 1.2 handshake signatures are checked too.
        let tls12 = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                certs_from_pem(cert.as_bytes()).unwrap(),
                private_key_from_pem(key.as_bytes()).unwrap(),
            )
            .unwrap();
        handshake(client.rustls_config(), Arc::new(tls12), "localhost").unwrap();
    }
}
