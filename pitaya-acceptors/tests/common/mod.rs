//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use pitaya_client::transport::{self, ConnectOptions, PacketReader, PacketWriter};
use pitaya_core::acceptor::Acceptor;
use pitaya_core::codec::{Packet, PacketType};

/// Bound on every step, so a broken test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(10);

/// Fails the test if `future` takes longer than [`STEP`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .expect("step timed out")
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert pem, key pem).
pub fn self_signed() -> (String, String) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    (generated.cert.pem(), generated.key_pair.serialize_pem())
}

/// Server and client TLS settings for one fresh certificate.
pub fn tls_pair() -> (pitaya_acceptors::TlsConfig, pitaya_client::TlsConfig) {
    let (cert, key) = self_signed();
    let server = pitaya_acceptors::TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let client = pitaya_client::TlsConfig::from_ca_pem(cert.as_bytes()).unwrap();
    (server, client)
}

/// Connects a pitaya-client transport to `url`.
pub async fn connect(
    url: &str,
    tls: Option<pitaya_client::TlsConfig>,
) -> pitaya_client::Result<(PacketWriter, PacketReader)> {
    let endpoint = url.parse()?;
    let options = ConnectOptions {
        tls,
        ..ConnectOptions::default()
    };
    transport::connect(&endpoint, &options).await
}

/// Connects a client to `url` while `acceptor` accepts and upgrades it.
pub async fn connected<A: Acceptor>(
    acceptor: &mut A,
    url: &str,
    tls: Option<pitaya_client::TlsConfig>,
) -> (A::Conn, PacketWriter, PacketReader) {
    let server = async {
        let raw = acceptor.accept().await.unwrap();
        A::upgrade(raw).await.unwrap()
    };
    let (conn, client) = within(async { tokio::join!(server, connect(url, tls)) }).await;
    let (writer, reader) = client.unwrap();
    (conn, writer, reader)
}

/// A data packet with `body`.
pub fn data(body: &[u8]) -> Packet {
    Packet::new(PacketType::Data, body.to_vec())
}

/// Packets encoded back to back.
pub fn frames(packets: &[Packet]) -> Vec<u8> {
    let mut out = Vec::new();
    for packet in packets {
        out.extend_from_slice(&packet.to_bytes().unwrap());
    }
    out
}

/// The next packet the client receives.
pub async fn client_next(reader: &mut PacketReader) -> Packet {
    within(reader.next())
        .await
        .expect("connection closed")
        .unwrap()
}
