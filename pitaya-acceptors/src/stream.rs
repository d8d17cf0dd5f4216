//! Packet framing over a byte stream (TCP or TLS), shared by [`TcpConn`].
//!
//! Memory: the read buffer exists only while bytes of an unfinished
//! packet (or pipelined packets not yet handed out) are waiting. Socket
//! reads land in a chunk on the stack of the polling call, so an idle
//! connection keeps no buffer at all once [`PacketStream::shrink`] ran.
//!
//! [`TcpConn`]: crate::TcpConn

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use pitaya_core::acceptor::ConnError;
use pitaya_core::codec::{HEADER_LEN, Packet, PacketCodec, PacketType};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE;

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 8 * 1024;

/// Bound on the shutdown (TLS close_notify and FIN) when closing.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames a byte stream into packets.
#[derive(Debug)]
pub(crate) struct PacketStream<S> {
    io: S,
    /// Bytes read but not yet handed out as packets.
    buf: BytesMut,
    /// Checks headers against the current limit.
    codec: PacketCodec,
    /// The acceptor's maximum: the limit never goes above it.
    cap: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    /// Frames `io`, never accepting bodies over `cap` bytes. The limit
    /// starts at [`DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE`] (or `cap`
    /// if smaller) until [`set_max_body_len`](Self::set_max_body_len).
    pub(crate) fn new(io: S, cap: usize) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            codec: PacketCodec::with_max_body_len(
                cap.min(DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE),
            ),
            cap,
        }
    }

    /// Sets the largest body accepted from now on, capped at the
    /// acceptor's maximum. A packet whose header was already accepted is
    /// checked again against the new limit when it is decoded.
    pub(crate) fn set_max_body_len(&mut self, max_body_len: usize) {
        self.codec.set_max_body_len(max_body_len.min(self.cap));
    }

    /// The largest body currently accepted.
    pub(crate) fn max_body_len(&self) -> usize {
        self.codec.max_body_len()
    }

    /// The stream under the framing.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// The next packet; `None` on a clean end of stream. Cancel-safe: all
    /// state lives in `self`, and bytes read are stored before returning.
    pub(crate) async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        poll_fn(|cx| self.poll_read_packet(cx)).await
    }

    fn poll_read_packet(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Packet>, ConnError>> {
        loop {
            // The codec checks the header (type, length against the
            // limit) and never reserves room for the announced body: the
            // buffer grows only with the bytes that arrive.
            if let Some(packet) = self.codec.decode(&mut self.buf)? {
                return Poll::Ready(Ok(Some(packet)));
            }
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let filled = read.filled();
            if filled.is_empty() {
                if self.buf.is_empty() {
                    return Poll::Ready(Ok(None));
                }
                return Poll::Ready(Err(ConnError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a packet",
                ))));
            }
            self.buf.extend_from_slice(filled);
        }
    }

    /// Whether `read_packet` would return without waiting: a whole packet
    /// is buffered (or a header the codec refuses, an error to report).
    pub(crate) fn has_buffered_packet(&self) -> bool {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return false;
        };
        let len =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        PacketType::try_from(header[0]).is_err()
            || len > self.codec.max_body_len()
            || self.buf.len() >= HEADER_LEN + len
    }

    /// Writes all of `frames` and flushes.
    pub(crate) async fn write_frames(&mut self, frames: &[u8]) -> io::Result<()> {
        self.io.write_all(frames).await?;
        self.io.flush().await
    }

    /// Shuts the stream down (TLS close_notify, then FIN), bounded in time.
    pub(crate) async fn close(&mut self) {
        match tokio::time::timeout(CLOSE_TIMEOUT, self.io.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::trace!(error = %err, "shutdown failed"),
            Err(_) => tracing::trace!("shutdown timed out"),
        }
    }

    /// Drops the read buffer if it holds nothing.
    pub(crate) fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }

    /// Capacity of the read buffer.
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use pitaya_core::codec::{CodecError, MAX_PACKET_BODY};
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};

    use super::*;

    fn pair(max_body_len: usize) -> (PacketStream<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(1 << 20);
        (PacketStream::new(server, max_body_len), client)
    }

    fn wire(packet: &Packet) -> Vec<u8> {
        packet.to_bytes().unwrap().to_vec()
    }

    #[tokio::test]
    async fn merged_packets_are_buffered_and_split() {
        let (mut conn, mut peer) = pair(1024);
        let data = Packet::new(PacketType::Data, &b"hello"[..]);
        let mut bytes = wire(&Packet::heartbeat());
        bytes.extend(wire(&data));
        bytes.extend(wire(&Packet::handshake_ack()));
        peer.write_all(&bytes).await.unwrap();

        assert!(
            !conn.has_buffered_packet(),
            "nothing read from the socket yet"
        );
        assert_eq!(conn.read_packet().await.unwrap(), Some(Packet::heartbeat()));
        assert!(conn.has_buffered_packet());
        assert_eq!(conn.read_packet().await.unwrap(), Some(data));
        assert!(conn.has_buffered_packet());
        assert_eq!(
            conn.read_packet().await.unwrap(),
            Some(Packet::handshake_ack())
        );
        assert!(!conn.has_buffered_packet());
        conn.shrink();
        assert_eq!(conn.buffer_capacity(), 0);
    }

    #[tokio::test]
    async fn split_packets_are_reassembled_and_reads_are_cancel_safe() {
        let (mut conn, mut peer) = pair(1024);
        let packet = Packet::new(PacketType::Data, vec![7u8; 300]);
        let bytes = wire(&packet);
        for piece in [&bytes[..2], &bytes[2..4], &bytes[4..100], &bytes[100..299]] {
            peer.write_all(piece).await.unwrap();
            // A read started and dropped before the packet is complete
            // loses nothing.
            assert!(conn.read_packet().now_or_never().is_none());
            assert!(!conn.has_buffered_packet());
        }
        peer.write_all(&bytes[299..]).await.unwrap();
        assert_eq!(conn.read_packet().await.unwrap(), Some(packet));
    }

    #[tokio::test]
    async fn oversize_header_fails_before_buffering() {
        let (mut conn, mut peer) = pair(16);
        peer.write_all(&[0x04, 0xff, 0xff, 0xff]).await.unwrap();
        let err = conn.read_packet().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnError::Codec(CodecError::PacketTooLarge {
                    len: 0xff_ffff,
                    max: 16
                })
            ),
            "{err}"
        );
        assert!(
            conn.buffer_capacity() < 1024,
            "no room reserved for the body"
        );
        assert!(
            conn.has_buffered_packet(),
            "the error is ready without waiting"
        );
    }

    #[tokio::test]
    async fn a_new_stream_starts_at_the_pre_handshake_limit() {
        let (mut conn, mut peer) = pair(MAX_PACKET_BODY);
        assert_eq!(
            conn.max_body_len(),
            DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
        );
        let len = DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE + 1;
        let [_, l1, l2, l3] = u32::try_from(len).unwrap().to_be_bytes();
        let header = [0x04, l1, l2, l3];
        peer.write_all(&header).await.unwrap();
        let err = conn.read_packet().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnError::Codec(CodecError::PacketTooLarge { len: l, max })
                    if l == len && max == DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
            ),
            "{err}"
        );

        // A smaller acceptor maximum wins over the default.
        let (conn, _peer) = pair(100);
        assert_eq!(conn.max_body_len(), 100);
    }

    #[tokio::test]
    async fn the_limit_moves_within_the_acceptor_maximum() {
        let (mut conn, mut peer) = pair(100_000);
        conn.set_max_body_len(usize::MAX);
        assert_eq!(
            conn.max_body_len(),
            100_000,
            "capped at the acceptor's maximum"
        );
        let big = Packet::new(PacketType::Data, vec![1u8; 100_000]);
        peer.write_all(&wire(&big)).await.unwrap();
        assert_eq!(conn.read_packet().await.unwrap(), Some(big));

        conn.set_max_body_len(10);
        assert_eq!(conn.max_body_len(), 10);
        peer.write_all(&[0x04, 0, 0, 11]).await.unwrap();
        let err = conn.read_packet().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnError::Codec(CodecError::PacketTooLarge { len: 11, max: 10 })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_buffer_grows_with_the_bytes_that_arrive() {
        let (mut conn, mut peer) = pair(MAX_PACKET_BODY);
        conn.set_max_body_len(MAX_PACKET_BODY);
        // A header announcing 16 MiB - 1 and three body bytes.
        peer.write_all(&[0x04, 0xff, 0xff, 0xff, 1, 2, 3])
            .await
            .unwrap();
        assert!(conn.read_packet().now_or_never().is_none());
        assert!(!conn.has_buffered_packet());
        assert!(
            conn.buffer_capacity() < 1024,
            "nothing reserved for the announced body: {}",
            conn.buffer_capacity()
        );
    }

    #[tokio::test]
    async fn invalid_type_fails() {
        let (mut conn, mut peer) = pair(16);
        peer.write_all(&[0x06, 0, 0, 0]).await.unwrap();
        let err = conn.read_packet().await.unwrap_err();
        assert!(
            matches!(err, ConnError::Codec(CodecError::InvalidPacketType(6))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn end_of_stream() {
        let (mut conn, peer) = pair(16);
        drop(peer);
        assert_eq!(conn.read_packet().await.unwrap(), None);

        let (mut conn, mut peer) = pair(16);
        peer.write_all(&[0x04, 0, 0, 5, 1, 2]).await.unwrap();
        drop(peer);
        let err = conn.read_packet().await.unwrap_err();
        assert!(
            matches!(&err, ConnError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof),
            "{err}"
        );
    }

    #[tokio::test]
    async fn idle_connection_keeps_no_buffer_after_big_packets() {
        let (mut conn, mut peer) = pair(1 << 20);
        conn.set_max_body_len(1 << 20);
        let big = Packet::new(PacketType::Data, vec![1u8; 200_000]);
        let writer = tokio::spawn({
            let bytes = wire(&big);
            async move {
                peer.write_all(&bytes).await.unwrap();
                peer
            }
        });
        let read = conn.read_packet().await.unwrap().unwrap();
        assert_eq!(read, big);
        drop(read);
        let _peer = writer.await.unwrap();
        conn.shrink();
        assert_eq!(conn.buffer_capacity(), 0);
    }

    #[tokio::test]
    async fn partial_packet_survives_shrink() {
        let (mut conn, mut peer) = pair(1024);
        peer.write_all(&[0x04, 0, 0, 3, b'a']).await.unwrap();
        assert!(conn.read_packet().now_or_never().is_none());
        conn.shrink();
        peer.write_all(b"bc").await.unwrap();
        let packet = conn.read_packet().await.unwrap().unwrap();
        assert_eq!(&packet.body[..], b"abc");
    }

    #[tokio::test]
    async fn writes_reach_the_peer() {
        let (mut conn, mut peer) = pair(1024);
        let mut frames = wire(&Packet::heartbeat());
        frames.extend(wire(&Packet::kick()));
        conn.write_frames(&frames).await.unwrap();
        conn.close().await;
        let mut received = Vec::new();
        peer.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, frames);
    }
}
