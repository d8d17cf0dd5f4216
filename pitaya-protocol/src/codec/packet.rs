//! Packets: `type (1 byte) | body length (3 bytes, big-endian) | body`.
//!
//! [`PacketCodec`] frames a byte stream (TCP, TLS) into packets, handling
//! split and merged reads; [`Packet::decode_exact`] parses a WebSocket
//! message, which must hold exactly one packet.

use bytes::{Buf, BufMut, Bytes, BytesMut};
#[cfg(feature = "tokio-codec")]
use tokio_util::codec::{Decoder, Encoder};

use super::CodecError;

/// Length of a packet header: one type byte and a 3-byte body length.
pub const HEADER_LEN: usize = 4;

/// The largest body a 3-byte length can express (16 MiB - 1).
pub const MAX_PACKET_BODY: usize = 0x00ff_ffff;

/// The kind of a packet (its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Client handshake request or server handshake response (JSON body).
    Handshake = 0x01,
    /// Client acknowledgement of the handshake response (empty body).
    HandshakeAck = 0x02,
    /// Keep-alive, both directions (empty body).
    Heartbeat = 0x03,
    /// A [`Message`](super::Message), both directions.
    Data = 0x04,
    /// The server closes the connection (empty body).
    Kick = 0x05,
}

impl TryFrom<u8> for PacketType {
    type Error = CodecError;

    fn try_from(value: u8) -> Result<Self, CodecError> {
        Ok(match value {
            0x01 => Self::Handshake,
            0x02 => Self::HandshakeAck,
            0x03 => Self::Heartbeat,
            0x04 => Self::Data,
            0x05 => Self::Kick,
            other => return Err(CodecError::InvalidPacketType(other)),
        })
    }
}

/// One packet: its type and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// What the packet is.
    pub kind: PacketType,
    /// The body (empty for ack, heartbeat and kick).
    pub body: Bytes,
}

impl Packet {
    /// A packet of `kind` with `body`.
    pub fn new(kind: PacketType, body: impl Into<Bytes>) -> Self {
        Self {
            kind,
            body: body.into(),
        }
    }

    /// A heartbeat packet (`03 00 00 00`).
    pub fn heartbeat() -> Self {
        Self::new(PacketType::Heartbeat, Bytes::new())
    }

    /// A handshake acknowledgement packet (`02 00 00 00`).
    pub fn handshake_ack() -> Self {
        Self::new(PacketType::HandshakeAck, Bytes::new())
    }

    /// A kick packet (`05 00 00 00`).
    pub fn kick() -> Self {
        Self::new(PacketType::Kick, Bytes::new())
    }

    /// Bytes this packet takes on the wire.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Appends the packet (header and body) to `dst`.
    ///
    /// Fails if the body is longer than [`MAX_PACKET_BODY`].
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), CodecError> {
        put_header(self.kind, self.body.len(), dst)?;
        dst.extend_from_slice(&self.body);
        Ok(())
    }

    /// The packet as one freshly allocated buffer (for WebSocket frames).
    pub fn to_bytes(&self) -> Result<Bytes, CodecError> {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// Parses a buffer that must hold exactly one packet, as a WebSocket
    /// message does. Shorter or longer bodies than announced are errors, as
    /// in Pitaya's WebSocket acceptor.
    pub fn decode_exact(mut frame: Bytes, max_body_len: usize) -> Result<Self, CodecError> {
        if frame.len() < HEADER_LEN {
            return Err(CodecError::Truncated("packet header"));
        }
        let (kind, announced) = parse_header(&frame)?;
        if announced > max_body_len {
            return Err(CodecError::PacketTooLarge {
                len: announced,
                max: max_body_len,
            });
        }
        let actual = frame.len() - HEADER_LEN;
        if actual != announced {
            return Err(CodecError::PacketLengthMismatch { announced, actual });
        }
        frame.advance(HEADER_LEN);
        Ok(Self { kind, body: frame })
    }
}

/// Writes a packet header for a body of `body_len` bytes.
///
/// Used to frame a message encoded straight into the output buffer.
pub fn put_header(kind: PacketType, body_len: usize, dst: &mut BytesMut) -> Result<(), CodecError> {
    let len = u32::try_from(body_len)
        .ok()
        .filter(|&len| len as usize <= MAX_PACKET_BODY)
        .ok_or(CodecError::PacketTooLarge {
            len: body_len,
            max: MAX_PACKET_BODY,
        })?;
    dst.reserve(HEADER_LEN + body_len);
    dst.put_u32((u32::from(kind as u8) << 24) | len);
    Ok(())
}

/// Overwrites the length of a header written earlier at `header_start`.
pub(crate) fn patch_length(
    dst: &mut BytesMut,
    header_start: usize,
    body_len: usize,
) -> Result<(), CodecError> {
    if body_len > MAX_PACKET_BODY {
        dst.truncate(header_start);
        return Err(CodecError::PacketTooLarge {
            len: body_len,
            max: MAX_PACKET_BODY,
        });
    }
    let len = body_len.to_be_bytes();
    let n = len.len();
    dst[header_start + 1..header_start + 4].copy_from_slice(&len[n - 3..]);
    Ok(())
}

fn parse_header(src: &[u8]) -> Result<(PacketType, usize), CodecError> {
    let kind = PacketType::try_from(src[0])?;
    let len = usize::from(src[1]) << 16 | usize::from(src[2]) << 8 | usize::from(src[3]);
    Ok((kind, len))
}

/// Frames a byte stream into [`Packet`]s and back.
///
/// The decoder refuses, with [`CodecError::PacketTooLarge`], any header that
/// announces a body above its maximum; it never reserves memory for a body
/// it has not received (the caller's buffer grows with the bytes that
/// arrive), so a header alone costs nothing.
///
/// ```
/// use bytes::BytesMut;
/// use pitaya_protocol::codec::{Packet, PacketCodec, PacketType};
///
/// let mut codec = PacketCodec::new();
/// // A heartbeat and half of a handshake ack arrive in one read.
/// let mut buf = BytesMut::from(&[0x03, 0, 0, 0, 0x02, 0][..]);
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Packet::heartbeat()));
/// assert_eq!(codec.decode(&mut buf).unwrap(), None);
/// buf.extend_from_slice(&[0, 0]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap().kind, PacketType::HandshakeAck);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PacketCodec {
    max_body_len: usize,
}

impl PacketCodec {
    /// A codec accepting bodies up to [`MAX_PACKET_BODY`].
    pub fn new() -> Self {
        Self {
            max_body_len: MAX_PACKET_BODY,
        }
    }

    /// A codec accepting incoming bodies up to `max_body_len` bytes (capped
    /// at [`MAX_PACKET_BODY`]). Outgoing packets may use the protocol maximum.
    pub fn with_max_body_len(max_body_len: usize) -> Self {
        Self {
            max_body_len: max_body_len.min(MAX_PACKET_BODY),
        }
    }

    /// Changes the largest incoming body accepted from now on (capped at
    /// [`MAX_PACKET_BODY`]), e.g. to raise a small pre-handshake limit once
    /// the client has completed the handshake.
    pub fn set_max_body_len(&mut self, max_body_len: usize) {
        self.max_body_len = max_body_len.min(MAX_PACKET_BODY);
    }

    /// The largest incoming body this codec accepts.
    pub fn max_body_len(&self) -> usize {
        self.max_body_len
    }
}

impl Default for PacketCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketCodec {
    /// The next whole packet at the front of `src`, taken out of it; `None`
    /// until one has fully arrived. A header with an invalid type or a body
    /// over the maximum is an error as soon as its 4 bytes are there.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let (kind, len) = parse_header(src)?;
        if len > self.max_body_len {
            return Err(CodecError::PacketTooLarge {
                len,
                max: self.max_body_len,
            });
        }
        // The buffer grows with the bytes that arrive, never with the
        // length a header announces: a peer that sends a 4-byte header
        // announcing 16 MiB costs nothing until it sends the 16 MiB.
        if src.len() < HEADER_LEN + len {
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let body = src.split_to(len).freeze();
        Ok(Some(Packet { kind, body }))
    }
}

/// [`PacketCodec`] as a `tokio_util` decoder, for `FramedRead` and friends.
#[cfg(feature = "tokio-codec")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-codec")))]
impl Decoder for PacketCodec {
    type Item = Packet;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        PacketCodec::decode(self, src)
    }
}

#[cfg(feature = "tokio-codec")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-codec")))]
impl Encoder<Packet> for PacketCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        packet.encode(dst)
    }
}

#[cfg(feature = "tokio-codec")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-codec")))]
impl Encoder<&Packet> for PacketCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        packet.encode(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(packet: &Packet) -> Vec<u8> {
        packet.to_bytes().unwrap().to_vec()
    }

    #[test]
    fn golden_control_packets() {
        assert_eq!(wire(&Packet::handshake_ack()), [0x02, 0, 0, 0]);
        assert_eq!(wire(&Packet::heartbeat()), [0x03, 0, 0, 0]);
        assert_eq!(wire(&Packet::kick()), [0x05, 0, 0, 0]);
    }

    #[test]
    fn golden_handshake_and_data() {
        let body = br#"{"sys":{}}"#;
        let packet = Packet::new(PacketType::Handshake, &body[..]);
        let mut expected = vec![0x01, 0x00, 0x00, 0x0a];
        expected.extend_from_slice(body);
        assert_eq!(wire(&packet), expected);

        let big = Packet::new(PacketType::Data, vec![7u8; 0x01_0203]);
        let bytes = wire(&big);
        assert_eq!(&bytes[..4], &[0x04, 0x01, 0x02, 0x03]);
        assert_eq!(bytes.len(), 4 + 0x01_0203);
    }

    #[test]
    fn every_invalid_type_is_refused() {
        for byte in (0u8..=255).filter(|b| !(1..=5).contains(b)) {
            let mut buf = BytesMut::from(&[byte, 0, 0, 0][..]);
            let err = PacketCodec::new().decode(&mut buf).unwrap_err();
            assert!(matches!(err, CodecError::InvalidPacketType(b) if b == byte));
        }
    }

    #[test]
    fn oversize_header_is_refused_before_buffering() {
        let mut codec = PacketCodec::with_max_body_len(16);
        let mut buf = BytesMut::from(&[0x04, 0x00, 0x00, 0x11][..]);
        let capacity = buf.capacity();
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            CodecError::PacketTooLarge { len: 17, max: 16 }
        ));
        assert_eq!(
            buf.capacity(),
            capacity,
            "no memory reserved for the refused body"
        );
    }

    #[test]
    fn an_announced_body_reserves_nothing() {
        let mut codec = PacketCodec::new();
        let mut buf = BytesMut::with_capacity(8);
        buf.extend_from_slice(&[0x04, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() < 1024,
            "a 16 MiB header made the decoder reserve {} bytes",
            buf.capacity()
        );
    }

    #[test]
    fn exact_max_is_accepted() {
        let mut codec = PacketCodec::with_max_body_len(3);
        let mut buf = BytesMut::from(&[0x04, 0, 0, 3, b'a', b'b', b'c'][..]);
        let packet = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&packet.body[..], b"abc");
        assert!(buf.is_empty());
    }

    #[test]
    fn encoder_refuses_bodies_over_three_bytes_of_length() {
        let packet = Packet::new(PacketType::Data, vec![0u8; MAX_PACKET_BODY + 1]);
        let mut dst = BytesMut::new();
        assert!(matches!(
            packet.encode(&mut dst),
            Err(CodecError::PacketTooLarge { .. })
        ));
        let fits = Packet::new(PacketType::Data, vec![0u8; MAX_PACKET_BODY]);
        fits.encode(&mut dst).unwrap();
        assert_eq!(&dst[..4], &[0x04, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn decode_exact_checks_the_announced_length() {
        let ok = Bytes::from_static(&[0x04, 0, 0, 2, 1, 2]);
        assert_eq!(
            Packet::decode_exact(ok, MAX_PACKET_BODY).unwrap(),
            Packet::new(PacketType::Data, &[1u8, 2][..])
        );
        let short = Bytes::from_static(&[0x04, 0, 0, 3, 1, 2]);
        assert!(matches!(
            Packet::decode_exact(short, MAX_PACKET_BODY),
            Err(CodecError::PacketLengthMismatch {
                announced: 3,
                actual: 2
            })
        ));
        let long = Bytes::from_static(&[0x04, 0, 0, 1, 1, 2]);
        assert!(matches!(
            Packet::decode_exact(long, MAX_PACKET_BODY),
            Err(CodecError::PacketLengthMismatch {
                announced: 1,
                actual: 2
            })
        ));
        assert!(matches!(
            Packet::decode_exact(Bytes::from_static(&[0x04, 0]), MAX_PACKET_BODY),
            Err(CodecError::Truncated(_))
        ));
        let big = Bytes::from_static(&[0x04, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            Packet::decode_exact(big, 8),
            Err(CodecError::PacketTooLarge { len: 9, max: 8 })
        ));
    }

    #[test]
    fn patch_length_rewrites_header() {
        let mut dst = BytesMut::new();
        put_header(PacketType::Data, 0, &mut dst).unwrap();
        dst.extend_from_slice(&[9; 300]);
        patch_length(&mut dst, 0, 300).unwrap();
        assert_eq!(&dst[..4], &[0x04, 0x00, 0x01, 0x2c]);
    }
}
