//! Messages: the payload of a [`PacketType::Data`](super::PacketType) packet.
//!
//! ```text
//! flag (1 byte) | id (varint, request/response) | route (request/notify/push) | body
//! flag: bit0 route is a 2-byte dictionary code, bits1-3 type,
//!       bit4 body is zlib, bit5 body is an error payload
//! route: 1-byte length + bytes, or 2-byte big-endian code
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::packet::{self, HEADER_LEN, PacketType};
use super::{CodecError, RouteDictionary, compression, varint};

const ROUTE_COMPRESSED: u8 = 0x01;
const TYPE_MASK: u8 = 0x07;
const BODY_COMPRESSED: u8 = 0x10;
const ERROR: u8 = 0x20;

/// Default bound on an inflated (zlib) message body (1 MiB, NATS's default
/// maximum payload, so anything larger could not be forwarded anyway).
/// Go Pitaya bounds it only by the packet size.
pub const DEFAULT_MAX_INFLATED_LEN: usize = 1 << 20;

/// Default bound on how many times larger than its compressed form an
/// inflated body may be (bodies up to
/// [`RATIO_FREE_LEN`](compression::RATIO_FREE_LEN) are exempt). JSON game
/// messages rarely compress beyond 10x; zlib bombs reach 1000x.
pub const DEFAULT_MAX_INFLATE_RATIO: u32 = 100;

/// Bodies shorter than this are never compressed by default.
///
/// Pitaya tries to deflate every body; for the short bodies most game
/// messages have, that almost never pays (zlib adds 6 bytes of framing) and
/// resetting the deflate state costs more than the rest of a request.
/// Receivers handle both forms, so this changes no behaviour a client can
/// rely on; set the threshold to 0 for Pitaya's exact choice.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 128;

/// The kind of a message (flag bits 1-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Client to server, expects a [`MessageType::Response`] with its id.
    Request = 0,
    /// Client to server, no response.
    Notify = 1,
    /// Server to client, answers a request.
    Response = 2,
    /// Server to client, unsolicited, carries a route.
    Push = 3,
}

impl MessageType {
    /// Whether messages of this type carry an id.
    pub fn has_id(self) -> bool {
        matches!(self, Self::Request | Self::Response)
    }

    /// Whether messages of this type carry a route.
    pub fn has_route(self) -> bool {
        matches!(self, Self::Request | Self::Notify | Self::Push)
    }
}

impl TryFrom<u8> for MessageType {
    type Error = CodecError;

    fn try_from(value: u8) -> Result<Self, CodecError> {
        Ok(match value {
            0 => Self::Request,
            1 => Self::Notify,
            2 => Self::Response,
            3 => Self::Push,
            other => return Err(CodecError::InvalidMessageType(other)),
        })
    }
}

/// One message. Route compression and body compression are encoding
/// choices of the [`MessageCodec`]; a decoded message holds the route string
/// and the inflated body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What the message is.
    pub kind: MessageType,
    /// Request/response id (0 and ignored for notify and push).
    pub id: u64,
    /// Route (empty and ignored for responses).
    pub route: String,
    /// Serialized payload.
    pub body: Bytes,
    /// Whether the body is an error payload (responses only, in practice).
    pub error: bool,
}

impl Message {
    /// A request with `id` (clients use ids >= 1).
    pub fn request(id: u64, route: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::new(MessageType::Request, id, route.into(), body.into(), false)
    }

    /// A notify (no id, no response).
    pub fn notify(route: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::new(MessageType::Notify, 0, route.into(), body.into(), false)
    }

    /// A successful response to request `id`.
    pub fn response(id: u64, body: impl Into<Bytes>) -> Self {
        Self::new(MessageType::Response, id, String::new(), body.into(), false)
    }

    /// An error response to request `id`; `body` is a serialized
    /// [`PitayaError`](crate::PitayaError).
    pub fn error_response(id: u64, body: impl Into<Bytes>) -> Self {
        Self::new(MessageType::Response, id, String::new(), body.into(), true)
    }

    /// A push on `route`.
    pub fn push(route: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::new(MessageType::Push, 0, route.into(), body.into(), false)
    }

    fn new(kind: MessageType, id: u64, route: String, body: Bytes, error: bool) -> Self {
        Self {
            kind,
            id,
            route,
            body,
            error,
        }
    }
}

/// Encodes and decodes [`Message`]s with a route dictionary and Pitaya's
/// body compression.
///
/// Defaults follow Pitaya: empty dictionary, compression **on** (a body is
/// sent zlib-compressed when that is strictly shorter), and inflated bodies
/// bounded by [`DEFAULT_MAX_INFLATED_LEN`] so a small zlib bomb cannot
/// allocate without limit.
///
/// ```
/// use pitaya_protocol::codec::{Message, MessageCodec, RouteDictionary};
///
/// let dict = RouteDictionary::new([("room.room.join", 3)]).unwrap();
/// let codec = MessageCodec::default().with_dictionary(dict);
/// let bytes = codec.encode_to_bytes(&Message::request(5, "room.room.join", "{}")).unwrap();
/// assert_eq!(&bytes[..], &[0x01, 0x05, 0x00, 0x03, b'{', b'}']);
/// assert_eq!(codec.decode(bytes).unwrap().route, "room.room.join");
/// ```
#[derive(Clone, Debug)]
pub struct MessageCodec {
    dictionary: RouteDictionary,
    compress: bool,
    compression_threshold: usize,
    max_inflated_len: usize,
    max_inflate_ratio: Option<u32>,
}

impl Default for MessageCodec {
    fn default() -> Self {
        Self {
            dictionary: RouteDictionary::default(),
            compress: true,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            max_inflated_len: DEFAULT_MAX_INFLATED_LEN,
            max_inflate_ratio: Some(DEFAULT_MAX_INFLATE_RATIO),
        }
    }
}

impl MessageCodec {
    /// Uses `dictionary` to compress and resolve routes.
    #[must_use]
    pub fn with_dictionary(mut self, dictionary: RouteDictionary) -> Self {
        self.dictionary = dictionary;
        self
    }

    /// Turns body compression on or off for encoding (decoding always
    /// inflates flagged bodies).
    #[must_use]
    pub fn with_compression(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Only bodies of at least `threshold` bytes are compressed (default
    /// [`DEFAULT_COMPRESSION_THRESHOLD`]; 0 tries every body, as Pitaya).
    #[must_use]
    pub fn with_compression_threshold(mut self, threshold: usize) -> Self {
        self.compression_threshold = threshold;
        self
    }

    /// Bounds inflated bodies to `max` bytes (default
    /// [`DEFAULT_MAX_INFLATED_LEN`]).
    #[must_use]
    pub fn with_max_inflated_len(mut self, max: usize) -> Self {
        self.max_inflated_len = max;
        self
    }

    /// Bounds inflated bodies to `ratio` times their compressed size
    /// (default [`DEFAULT_MAX_INFLATE_RATIO`]; 0 turns the ratio check
    /// off, leaving only the size bound).
    #[must_use]
    pub fn with_max_inflate_ratio(mut self, ratio: u32) -> Self {
        self.max_inflate_ratio = (ratio > 0).then_some(ratio);
        self
    }

    /// The bound on inflated bodies, in bytes.
    pub fn max_inflated_len(&self) -> usize {
        self.max_inflated_len
    }

    /// The route dictionary.
    pub fn dictionary(&self) -> &RouteDictionary {
        &self.dictionary
    }

    /// Whether bodies are compressed when that makes them shorter.
    pub fn compression(&self) -> bool {
        self.compress
    }

    /// Appends `message` (without a packet header) to `dst`.
    pub fn encode(&self, message: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let kind = message.kind;
        let mut flag = (kind as u8) << 1;
        if message.error {
            flag |= ERROR;
        }
        let code = if kind.has_route() {
            self.dictionary.code(&message.route)
        } else {
            None
        };
        if code.is_some() {
            flag |= ROUTE_COMPRESSED;
        }
        if kind.has_route() && code.is_none() && message.route.len() > 255 {
            return Err(CodecError::RouteTooLong(message.route.len()));
        }
        let deflated = if self.compress && message.body.len() >= self.compression_threshold {
            compression::deflate_if_smaller(&message.body)
        } else {
            None
        };
        if deflated.is_some() {
            flag |= BODY_COMPRESSED;
        }
        let body: &[u8] = deflated.as_deref().unwrap_or(&message.body);

        dst.reserve(1 + varint::len(message.id) + 1 + message.route.len() + body.len());
        dst.put_u8(flag);
        if kind.has_id() {
            varint::put(message.id, dst);
        }
        if kind.has_route() {
            match code {
                Some(code) => dst.put_u16(code),
                None => {
                    // Checked above: at most 255 bytes.
                    #[allow(clippy::cast_possible_truncation)]
                    dst.put_u8(message.route.len() as u8);
                    dst.extend_from_slice(message.route.as_bytes());
                }
            }
        }
        dst.extend_from_slice(body);
        Ok(())
    }

    /// Appends a whole data packet carrying `message` to `dst`.
    pub fn encode_packet(&self, message: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        packet::put_header(PacketType::Data, 0, dst)?;
        if let Err(err) = self.encode(message, dst) {
            dst.truncate(start);
            return Err(err);
        }
        let body_len = dst.len() - start - HEADER_LEN;
        packet::patch_length(dst, start, body_len)
    }

    /// `message` encoded into a new buffer (without a packet header).
    pub fn encode_to_bytes(&self, message: &Message) -> Result<Bytes, CodecError> {
        let mut dst = BytesMut::new();
        self.encode(message, &mut dst)?;
        Ok(dst.freeze())
    }

    /// Decodes a data packet's body. The body of the result shares `src`'s
    /// memory unless it had to be inflated.
    pub fn decode(&self, src: Bytes) -> Result<Message, CodecError> {
        let (mut message, compressed) = self.decode_deferred(src)?;
        if compressed {
            message.body = self.inflate_body(&message.body)?;
        }
        Ok(message)
    }

    /// Decodes a data packet's body but leaves a compressed body as it came:
    /// the `bool` says whether it still needs [`inflate_body`](Self::inflate_body).
    /// A server uses this to know which request a body belongs to before
    /// it spends work on it (and to answer that request if inflating fails).
    pub fn decode_deferred(&self, mut src: Bytes) -> Result<(Message, bool), CodecError> {
        let flag = *src.first().ok_or(CodecError::Truncated("flag"))?;
        let kind = MessageType::try_from((flag >> 1) & TYPE_MASK)?;
        let mut offset = 1;

        let mut id = 0;
        if kind.has_id() {
            let (value, used) = varint::get(&src[offset..])?;
            id = value;
            offset += used;
        }

        let mut route = String::new();
        if kind.has_route() {
            if flag & ROUTE_COMPRESSED != 0 {
                let bytes = src
                    .get(offset..offset + 2)
                    .ok_or(CodecError::Truncated("route code"))?;
                let code = u16::from_be_bytes([bytes[0], bytes[1]]);
                offset += 2;
                route = self
                    .dictionary
                    .route(code)
                    .ok_or(CodecError::UnknownRouteCode(code))?
                    .to_owned();
            } else {
                let len = usize::from(*src.get(offset).ok_or(CodecError::Truncated("route"))?);
                offset += 1;
                let bytes = src
                    .get(offset..offset + len)
                    .ok_or(CodecError::Truncated("route"))?;
                route = std::str::from_utf8(bytes)
                    .map_err(|_| CodecError::RouteNotUtf8)?
                    .to_owned();
                offset += len;
            }
        }

        src.advance(offset);
        let message = Message {
            kind,
            id,
            route,
            body: src,
            error: flag & ERROR != 0,
        };
        Ok((message, flag & BODY_COMPRESSED != 0))
    }

    /// Inflates a compressed body within this codec's size and ratio limits.
    pub fn inflate_body(&self, body: &[u8]) -> Result<Bytes, CodecError> {
        compression::inflate_bounded(body, self.max_inflated_len, self.max_inflate_ratio)
            .map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> MessageCodec {
        MessageCodec::default().with_compression(false)
    }

    fn hex(codec: &MessageCodec, message: &Message) -> Vec<u8> {
        codec.encode_to_bytes(message).unwrap().to_vec()
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn golden_request_packet_from_the_spec() {
        let message = Message::request(1, "room.room.join", &br#"{"name":"a"}"#[..]);
        let mut dst = BytesMut::new();
        plain().encode_packet(&message, &mut dst).unwrap();
        let expected = concat(&[
            &[0x04, 0x00, 0x00, 0x1d],
            &[0x00],
            &[0x01],
            &[0x0e],
            b"room.room.join",
            br#"{"name":"a"}"#,
        ]);
        assert_eq!(dst.to_vec(), expected);
    }

    #[test]
    fn golden_notify() {
        let message = Message::notify("room.room.join", &b"{}"[..]);
        let expected = concat(&[&[0x02, 0x0e], b"room.room.join", b"{}"]);
        assert_eq!(hex(&plain(), &message), expected);
    }

    #[test]
    fn golden_response_packet_from_the_spec() {
        let body = br#"{"code":0,"result":"ok"}"#;
        let mut dst = BytesMut::new();
        plain()
            .encode_packet(&Message::response(1, &body[..]), &mut dst)
            .unwrap();
        let expected = concat(&[&[0x04, 0x00, 0x00, 0x1a, 0x04, 0x01], body]);
        assert_eq!(dst.to_vec(), expected);
    }

    #[test]
    fn golden_error_response() {
        let body = br#"{"code":"PIT-404","msg":"x"}"#;
        let expected = concat(&[&[0x24, 0x01], body]);
        assert_eq!(
            hex(&plain(), &Message::error_response(1, &body[..])),
            expected
        );
    }

    #[test]
    fn golden_compressed_error_response() {
        let body = vec![b'e'; 64];
        let codec = MessageCodec::default().with_compression_threshold(0);
        let bytes = hex(&codec, &Message::error_response(0, body));
        assert_eq!(&bytes[..4], &[0x34, 0x00, 0x78, 0x9c]);
    }

    #[test]
    fn golden_push() {
        let expected = concat(&[&[0x06, 0x09], b"onMessage", b"{}"]);
        assert_eq!(
            hex(&plain(), &Message::push("onMessage", &b"{}"[..])),
            expected
        );
    }

    #[test]
    fn golden_compressed_route_request_and_push() {
        let dict = RouteDictionary::new([("room.room.join", 3), ("onMessage", 4)]).unwrap();
        let codec = plain().with_dictionary(dict);
        assert_eq!(
            hex(&codec, &Message::request(5, "room.room.join", &b"{}"[..])),
            [0x01, 0x05, 0x00, 0x03, b'{', b'}']
        );
        assert_eq!(
            hex(&codec, &Message::push("onMessage", &b"{}"[..])),
            [0x07, 0x00, 0x04, b'{', b'}']
        );
        assert_eq!(
            hex(&codec, &Message::notify("room.room.join", Bytes::new())),
            [0x03, 0x00, 0x03]
        );
    }

    #[test]
    fn golden_multi_byte_ids() {
        assert_eq!(
            hex(&plain(), &Message::response(300, Bytes::new())),
            [0x04, 0xac, 0x02]
        );
        assert_eq!(
            hex(&plain(), &Message::response(129, Bytes::new())),
            [0x04, 0x81, 0x01]
        );
    }

    #[test]
    fn compression_is_used_only_when_smaller() {
        let codec = MessageCodec::default();
        let small = hex(&codec, &Message::response(1, &b"{\"a\":1}"[..]));
        assert_eq!(small[0], 0x04, "short body stays plain");
        let big = vec![b'z'; 500];
        let bytes = codec
            .encode_to_bytes(&Message::push("onMessage", big.clone()))
            .unwrap();
        assert_eq!(bytes[0], 0x16, "push + compressed body");
        let decoded = codec.decode(bytes).unwrap();
        assert_eq!(decoded.body, big);
        assert_eq!(decoded.route, "onMessage");
    }

    #[test]
    fn bodies_under_the_threshold_stay_plain() {
        let repetitive = vec![b'a'; 100];
        let default = MessageCodec::default();
        assert_eq!(
            hex(&default, &Message::response(1, repetitive.clone()))[0],
            0x04
        );
        let pitaya = MessageCodec::default().with_compression_threshold(0);
        assert_eq!(
            hex(&pitaya, &Message::response(1, repetitive.clone()))[0],
            0x14
        );
        let at_threshold = MessageCodec::default().with_compression_threshold(100);
        assert_eq!(
            hex(&at_threshold, &Message::response(1, repetitive))[0],
            0x14
        );
    }

    #[test]
    fn decode_refuses_malformed_messages() {
        let codec = plain();
        let cases: &[(&[u8], &str)] = &[
            (&[], "empty"),
            (&[0x08], "type 4"),
            (&[0x0e, 0x00], "type 7"),
            (&[0x00], "request without id"),
            (&[0x00, 0x80], "unterminated id"),
            (&[0x00, 0x01], "request without route length"),
            (&[0x00, 0x01, 0x05, b'a'], "route shorter than its length"),
            (&[0x01, 0x01, 0x00], "route code truncated"),
            (&[0x01, 0x01, 0x00, 0x09], "unknown route code"),
            (&[0x02, 0x02, 0xff, 0xfe], "route not utf-8"),
            (&[0x14, 0x01, 0x01, 0x02], "bad zlib body"),
        ];
        for (bytes, why) in cases {
            assert!(
                codec.decode(Bytes::copy_from_slice(bytes)).is_err(),
                "{why} should be refused"
            );
        }
    }

    #[test]
    fn decode_zlib_bomb_is_bounded() {
        let bomb = compression::deflate(&vec![b' '; 1 << 20]);
        let mut bytes = vec![0x12, 0x01, b'a'];
        bytes.extend_from_slice(&bomb);
        let codec = plain().with_max_inflated_len(1024);
        assert!(matches!(
            codec.decode(Bytes::from(bytes)),
            Err(CodecError::InflatedTooLarge { max: 1024 })
        ));
    }

    #[test]
    fn decode_refuses_bombs_by_ratio_by_default() {
        let bomb = compression::deflate(&vec![b' '; 512 * 1024]);
        let mut bytes = vec![0x12, 0x01, b'a'];
        bytes.extend_from_slice(&bomb);
        assert!(matches!(
            plain().decode(Bytes::from(bytes.clone())),
            Err(CodecError::InflateRatioExceeded {
                ratio: DEFAULT_MAX_INFLATE_RATIO
            })
        ));
        let (message, compressed) = plain().decode_deferred(Bytes::from(bytes)).unwrap();
        assert!(compressed);
        assert_eq!(
            (message.kind, message.route.as_str()),
            (MessageType::Notify, "a")
        );
        assert_eq!(
            plain()
                .with_max_inflate_ratio(0)
                .inflate_body(&message.body)
                .unwrap()
                .len(),
            512 * 1024
        );
    }

    #[test]
    fn long_routes_are_refused_when_encoding() {
        let route = "r".repeat(256);
        assert!(matches!(
            plain().encode_to_bytes(&Message::notify(route, Bytes::new())),
            Err(CodecError::RouteTooLong(256))
        ));
        let ok = "r".repeat(255);
        let bytes = plain()
            .encode_to_bytes(&Message::notify(ok.clone(), Bytes::new()))
            .unwrap();
        assert_eq!(plain().decode(bytes).unwrap().route, ok);
    }

    #[test]
    fn encode_packet_leaves_buffer_clean_on_error() {
        let mut dst = BytesMut::from(&b"keep"[..]);
        let too_long = Message::notify("r".repeat(300), Bytes::new());
        assert!(plain().encode_packet(&too_long, &mut dst).is_err());
        assert_eq!(&dst[..], b"keep");
    }

    #[test]
    fn response_ignores_route_and_notify_ignores_id() {
        let codec = plain();
        let mut response = Message::response(7, &b"x"[..]);
        response.route = "ignored".into();
        assert_eq!(hex(&codec, &response), [0x04, 0x07, b'x']);
        let mut notify = Message::notify("a", &b"x"[..]);
        notify.id = 9;
        assert_eq!(hex(&codec, &notify), [0x02, 0x01, b'a', b'x']);
    }
}
