//! Bytes on the wire for the hot path: requests pre-encoded once per
//! connection with only the id written per send, and responses read just
//! far enough to find their id (error responses are decoded in full).

use bytes::{BufMut, Bytes, BytesMut};
use pitaya_protocol::codec::{
    HEADER_LEN, MAX_PACKET_BODY, Message, MessageCodec, MessageType, PacketType, RouteDictionary,
    varint,
};
use pitaya_protocol::error::codes;
use pitaya_protocol::{PitayaError, Serializer, SerializerKind};

/// The request body, as the user gave it.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    /// JSON text (sent as is to JSON servers, transcoded for msgpack).
    Json {
        /// The text, trimmed.
        text: Bytes,
        /// The parsed value, for transcoding.
        value: serde_json::Value,
    },
    /// Bytes sent verbatim whatever the serializer.
    Raw(Bytes),
}

impl Payload {
    /// Parses `--payload` text; it must be JSON.
    pub(crate) fn from_json_text(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let value =
            serde_json::from_str(text).map_err(|err| format!("--payload is not JSON: {err}"))?;
        Ok(Self::Json {
            text: Bytes::copy_from_slice(text.as_bytes()),
            value,
        })
    }

    /// Reads `--payload-file` contents: JSON if they parse, raw otherwise.
    pub(crate) fn from_file_contents(contents: Vec<u8>) -> Self {
        let trimmed = contents.trim_ascii();
        match serde_json::from_slice(trimmed) {
            Ok(value) => Self::Json {
                text: Bytes::copy_from_slice(trimmed),
                value,
            },
            Err(_) => Self::Raw(Bytes::from(contents)),
        }
    }

    /// The body to send to a server whose handshake announced `serializer`.
    /// Unknown serializers (e.g. Go's `protobuf`) get the bytes as given.
    pub(crate) fn encode_for(&self, serializer: &str) -> Result<Bytes, String> {
        match self {
            Self::Raw(bytes) => Ok(bytes.clone()),
            Self::Json { text, value } => match serializer.parse::<SerializerKind>() {
                Ok(SerializerKind::MessagePack) => SerializerKind::MessagePack
                    .serialize(value)
                    .map(Bytes::from)
                    .map_err(|err| err.to_string()),
                _ => Ok(text.clone()),
            },
        }
    }
}

/// A request packet with everything but the id encoded once.
///
/// A request is `header | flag | varint id | route | body`; only the id
/// (and therefore the length in the header) changes between sends.
#[derive(Clone, Debug)]
pub(crate) struct RequestTemplate {
    flag: u8,
    /// Route (length-prefixed or dictionary code) followed by the body.
    tail: Bytes,
}

impl RequestTemplate {
    /// Builds the template with the codec, so route compression and the
    /// flag are exactly what the codec would produce. Bodies are not
    /// compressed.
    pub(crate) fn new(
        route: &str,
        body: Bytes,
        dictionary: RouteDictionary,
    ) -> Result<Self, String> {
        let codec = MessageCodec::default()
            .with_compression(false)
            .with_dictionary(dictionary);
        // Id 1 is one varint byte: flag at 0, id at 1, the rest follows.
        let encoded = codec
            .encode_to_bytes(&Message::request(1, route, body))
            .map_err(|err| format!("cannot encode the request: {err}"))?;
        if encoded.len() < 2 {
            return Err("cannot encode the request: too short".into());
        }
        let template = Self {
            flag: encoded[0],
            tail: encoded.slice(2..),
        };
        if template.max_body_len() > MAX_PACKET_BODY {
            return Err(format!(
                "request too large: {} bytes, the protocol allows {MAX_PACKET_BODY}",
                template.max_body_len()
            ));
        }
        Ok(template)
    }

    /// The longest packet body this template produces (10-byte id).
    fn max_body_len(&self) -> usize {
        1 + 10 + self.tail.len()
    }

    /// Appends the whole request packet with `id` to `dst`.
    pub(crate) fn encode(&self, id: u64, dst: &mut BytesMut) {
        let body_len = 1 + varint::len(id) + self.tail.len();
        dst.reserve(HEADER_LEN + body_len);
        // Checked in `new`: the body fits the 3-byte length.
        #[allow(clippy::cast_possible_truncation)]
        dst.put_u32((u32::from(PacketType::Data as u8) << 24) | body_len as u32);
        dst.put_u8(self.flag);
        varint::put(id, dst);
        dst.extend_from_slice(&self.tail);
    }
}

/// A whole notify packet, encoded once and sent by reference count.
pub(crate) fn notify_packet(
    route: &str,
    body: Bytes,
    dictionary: RouteDictionary,
) -> Result<Bytes, String> {
    let codec = MessageCodec::default()
        .with_compression(false)
        .with_dictionary(dictionary);
    let mut dst = BytesMut::new();
    codec
        .encode_packet(&Message::notify(route, body), &mut dst)
        .map_err(|err| format!("cannot encode the notify: {err}"))?;
    Ok(dst.freeze())
}

/// What a data packet from the server is, read from its first bytes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A response to request `id`; `error` if the error flag is set.
    Response {
        /// The request id.
        id: u64,
        /// Whether the body is an error payload.
        error: bool,
    },
    /// A push (ignored).
    Push,
}

/// Reads the flag and the id of a data packet body.
pub(crate) fn peek_message(body: &[u8]) -> Result<Incoming, String> {
    const ERROR: u8 = 0x20;
    let flag = *body.first().ok_or("empty data packet")?;
    match (flag >> 1) & 0x07 {
        t if t == MessageType::Response as u8 => {
            let (id, _) =
                varint::get(&body[1..]).map_err(|err| format!("invalid response id: {err}"))?;
            Ok(Incoming::Response {
                id,
                error: flag & ERROR != 0,
            })
        }
        t if t == MessageType::Push as u8 => Ok(Incoming::Push),
        t => Err(format!("unexpected message type {t} from the server")),
    }
}

/// Decodes an error response's code: the payload in `serializer` (trying
/// JSON then MessagePack for serializers this tool does not know); an
/// undecodable payload counts as `PIT-000`.
pub(crate) fn error_code(
    codec: &MessageCodec,
    serializer: Option<SerializerKind>,
    body: Bytes,
) -> String {
    let Ok(message) = codec.decode(body) else {
        return codes::UNKNOWN.to_owned();
    };
    let decoded: Option<PitayaError> = match serializer {
        Some(kind) => PitayaError::decode(kind, &message.body).ok(),
        None => SerializerKind::Json
            .deserialize(&message.body)
            .or_else(|_| SerializerKind::MessagePack.deserialize(&message.body))
            .ok(),
    };
    decoded.map_or_else(
        || codes::UNKNOWN.to_owned(),
        |err| err.code_or_unknown().to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(entries: &[(&str, u16)]) -> RouteDictionary {
        RouteDictionary::new(entries.iter().copied()).unwrap()
    }

    #[test]
    fn template_matches_the_codec_for_any_id() {
        for dictionary in [dict(&[]), dict(&[("echo.echo.echo", 7)])] {
            let codec = MessageCodec::default()
                .with_compression(false)
                .with_dictionary(dictionary.clone());
            let body = Bytes::from_static(br#"{"msg":"hello"}"#);
            let template =
                RequestTemplate::new("echo.echo.echo", body.clone(), dictionary).unwrap();
            let mut dst = BytesMut::new();
            for id in [1, 2, 127, 128, 300, 16_383, 16_384, 1 << 35, u64::MAX] {
                dst.clear();
                template.encode(id, &mut dst);
                let mut expected = BytesMut::new();
                codec
                    .encode_packet(
                        &Message::request(id, "echo.echo.echo", body.clone()),
                        &mut expected,
                    )
                    .unwrap();
                assert_eq!(dst, expected, "id {id}");
            }
        }
    }

    #[test]
    fn template_appends_several_packets() {
        let template = RequestTemplate::new("a.b", Bytes::from_static(b"{}"), dict(&[])).unwrap();
        let mut dst = BytesMut::new();
        template.encode(1, &mut dst);
        template.encode(2, &mut dst);
        assert_eq!(
            &dst[..],
            b"\x04\x00\x00\x08\x00\x01\x03a.b{}\x04\x00\x00\x08\x00\x02\x03a.b{}"
        );
    }

    #[test]
    fn refuses_long_routes() {
        assert!(RequestTemplate::new(&"x".repeat(256), Bytes::new(), dict(&[])).is_err());
        assert!(notify_packet(&"x".repeat(256), Bytes::new(), dict(&[])).is_err());
    }

    #[test]
    fn notify_packet_is_the_codec_output() {
        let packet = notify_packet("a.b", Bytes::from_static(b"{}"), dict(&[])).unwrap();
        assert_eq!(&packet[..], b"\x04\x00\x00\x07\x02\x03a.b{}");
    }

    #[test]
    fn peeks_responses_and_pushes() {
        let codec = MessageCodec::default();
        for id in [1, 300, 1 << 40] {
            let ok = codec.encode_to_bytes(&Message::response(id, "{}")).unwrap();
            assert_eq!(
                peek_message(&ok),
                Ok(Incoming::Response { id, error: false })
            );
            let err = codec
                .encode_to_bytes(&Message::error_response(id, "{}"))
                .unwrap();
            assert_eq!(
                peek_message(&err),
                Ok(Incoming::Response { id, error: true })
            );
        }
        let push = codec
            .encode_to_bytes(&Message::push("onMsg", "{}"))
            .unwrap();
        assert_eq!(peek_message(&push), Ok(Incoming::Push));
        assert!(peek_message(b"").is_err());
        assert!(peek_message(&[0x04]).is_err(), "no id");
        assert!(peek_message(&[0x04, 0x80]).is_err(), "truncated id");
        assert!(peek_message(&[0x00, 0x01]).is_err(), "a request");
    }

    #[test]
    fn decodes_error_codes_in_both_serializers() {
        let err = PitayaError::new("PIT-404", "not found");
        for kind in [SerializerKind::Json, SerializerKind::MessagePack] {
            // Compression on: long enough bodies arrive zlib-compressed.
            let codec = MessageCodec::default();
            let body = codec
                .encode_to_bytes(&Message::error_response(3, kind.serialize(&err).unwrap()))
                .unwrap();
            assert_eq!(error_code(&codec, Some(kind), body.clone()), "PIT-404");
            assert_eq!(error_code(&codec, None, body), "PIT-404");
        }
        // A protobuf server's errors are protos.Error messages.
        let codec = MessageCodec::default();
        let body = codec
            .encode_to_bytes(&Message::error_response(
                3,
                err.encode(SerializerKind::Protobuf),
            ))
            .unwrap();
        assert_eq!(
            error_code(&codec, Some(SerializerKind::Protobuf), body),
            "PIT-404"
        );
        let codec = MessageCodec::default();
        let empty = codec
            .encode_to_bytes(&Message::error_response(3, "{}"))
            .unwrap();
        assert_eq!(
            error_code(&codec, Some(SerializerKind::Json), empty),
            "PIT-000"
        );
        let garbage = codec
            .encode_to_bytes(&Message::error_response(3, "nope"))
            .unwrap();
        assert_eq!(
            error_code(&codec, Some(SerializerKind::Json), garbage),
            "PIT-000"
        );
    }

    #[test]
    fn payloads() {
        let json = Payload::from_json_text(r#" {"a":1} "#).unwrap();
        assert_eq!(&json.encode_for("json").unwrap()[..], br#"{"a":1}"#);
        assert_eq!(&json.encode_for("protobuf").unwrap()[..], br#"{"a":1}"#);
        assert_eq!(
            &json.encode_for("msgpack").unwrap()[..],
            &[0x81, 0xa1, b'a', 0x01]
        );
        assert!(Payload::from_json_text("{nope").is_err());

        let raw = Payload::from_file_contents(vec![0xff, 0x00]);
        assert_eq!(&raw.encode_for("msgpack").unwrap()[..], &[0xff, 0x00]);
        let file = Payload::from_file_contents(b"{\"a\":1}\n".to_vec());
        assert_eq!(&file.encode_for("json").unwrap()[..], br#"{"a":1}"#);
    }
}
