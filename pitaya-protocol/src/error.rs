//! Pitaya's error payload and its well-known codes.
//!
//! An error goes to the client as a response with the error flag set and a
//! body holding `{"code":"PIT-404","msg":"...","metadata":{...}}` encoded
//! with the session's serializer ([`PitayaError::encode`]): JSON or
//! MessagePack with empty fields left out, as Go's `omitempty` does, or,
//! with the protobuf serializer, the protobuf encoding of `protos.Error`
//! (`code = 1`, `msg = 2`, `metadata = 3`, see [`protos::Error`]).
//!
//! ```
//! use pitaya_protocol::{PitayaError, SerializerKind, error::codes};
//!
//! let err = PitayaError::new(codes::NOT_FOUND, "pitaya/handler: room.room.foo not found");
//! let body = err.encode(SerializerKind::Json);
//! assert_eq!(body, br#"{"code":"PIT-404","msg":"pitaya/handler: room.room.foo not found"}"#);
//!
//! let err = PitayaError::new("PIT-400", "bad");
//! let body = err.encode(SerializerKind::Protobuf);
//! assert_eq!(body, b"\x0a\x07PIT-400\x12\x03bad");
//! assert_eq!(PitayaError::decode(SerializerKind::Protobuf, &body).unwrap(), err);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use prost::Message;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::protos;
use crate::serializer::{Serializer, SerializerError, SerializerKind};

/// Pitaya's error codes.
pub mod codes {
    /// Unknown error: plain errors, panics, a null reply.
    pub const UNKNOWN: &str = "PIT-000";
    /// Bad request: undecodable route or payload, request on a notify route.
    pub const BAD_REQUEST: &str = "PIT-400";
    /// Handler or remote not found.
    pub const NOT_FOUND: &str = "PIT-404";
    /// RPC timed out.
    pub const REQUEST_TIMEOUT: &str = "PIT-408";
    /// Write to the connection failed.
    pub const CLOSED_REQUEST: &str = "PIT-498";
    /// The client closed the connection.
    pub const CLIENT_CLOSED_REQUEST: &str = "PIT-499";
    /// Internal error.
    pub const INTERNAL: &str = "PIT-500";
    /// Client-side request timeout (never sent by a server).
    pub const CLIENT_TIMEOUT: &str = "PIT-504";
}

/// An error as Pitaya sends it: a code, a message and string metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PitayaError {
    /// Error code, `PIT-xxx` for Pitaya's own or an app-defined one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
    /// Extra key/value data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl PitayaError {
    /// An error with `code` and `msg` and no metadata.
    pub fn new(code: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            msg: msg.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The error payload as `serializer` encodes it for a client: JSON or
    /// MessagePack of this struct (empty fields left out), or the protobuf
    /// encoding of [`protos::Error`] with [`SerializerKind::Protobuf`].
    pub fn encode(&self, serializer: SerializerKind) -> Vec<u8> {
        match serializer {
            SerializerKind::Protobuf => self.to_proto().encode_to_vec(),
            // Strings and a string map always serialize; JSON is the last
            // resort should a serializer ever refuse.
            other => other
                .serialize(self)
                .or_else(|_| SerializerKind::Json.serialize(self))
                .unwrap_or_default(),
        }
    }

    /// Decodes an error payload encoded by `serializer` (see
    /// [`PitayaError::encode`]). Fields missing from the payload are left
    /// empty (an empty code reads as `PIT-000` through
    /// [`code_or_unknown`](Self::code_or_unknown)).
    ///
    /// # Errors
    /// When `bytes` is not an error payload of `serializer`.
    pub fn decode(serializer: SerializerKind, bytes: &[u8]) -> Result<Self, SerializerError> {
        match serializer {
            SerializerKind::Protobuf => {
                let proto: crate::protos::Error = serializer.decode_message(bytes)?;
                Ok(Self {
                    code: proto.code,
                    msg: proto.msg,
                    metadata: proto.metadata,
                })
            }
            other => other.deserialize(bytes),
        }
    }

    /// The `protos.Error` message with this error's fields.
    fn to_proto(&self) -> crate::protos::Error {
        crate::protos::Error {
            code: self.code.clone(),
            msg: self.msg.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// The code, or `PIT-000` when it is empty (as Pitaya reads it).
    pub fn code_or_unknown(&self) -> &str {
        if self.code.is_empty() {
            codes::UNKNOWN
        } else {
            &self.code
        }
    }
}

impl fmt::Display for PitayaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code_or_unknown(), self.msg)?;
        if !self.metadata.is_empty() {
            write!(f, " {:?}", self.metadata)?;
        }
        Ok(())
    }
}

impl std::error::Error for PitayaError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Serializer, SerializerKind};

    #[test]
    fn golden_json_with_and_without_metadata() {
        let bare = PitayaError::new(codes::BAD_REQUEST, "bad");
        assert_eq!(
            SerializerKind::Json.serialize(&bare).unwrap(),
            br#"{"code":"PIT-400","msg":"bad"}"#
        );
        let with = PitayaError::new("RH-000", "no room").with_metadata("room", "7");
        assert_eq!(
            SerializerKind::Json.serialize(&with).unwrap(),
            br#"{"code":"RH-000","msg":"no room","metadata":{"room":"7"}}"#
        );
        assert_eq!(
            SerializerKind::Json
                .serialize(&PitayaError::default())
                .unwrap(),
            b"{}"
        );
    }

    #[test]
    fn decodes_partial_payloads_in_both_serializers() {
        let err: PitayaError = SerializerKind::Json.deserialize(br#"{"msg":"x"}"#).unwrap();
        assert_eq!(err.code_or_unknown(), codes::UNKNOWN);
        let full = PitayaError::new(codes::INTERNAL, "boom").with_metadata("a", "b");
        let packed = SerializerKind::MessagePack.serialize(&full).unwrap();
        assert_eq!(
            SerializerKind::MessagePack
                .deserialize::<PitayaError>(&packed)
                .unwrap(),
            full
        );
    }

    #[test]
    fn golden_protobuf_with_and_without_metadata() {
        // protos.Error: code = 1, msg = 2 (strings: tag (n << 3) | 2, length,
        // bytes), metadata = 3 (one length-delimited entry per pair, holding
        // key = 1 and value = 2).
        let with = PitayaError::new("PIT-404", "not found").with_metadata("route", "a.b");
        let mut golden = vec![0x0a, 0x07];
        golden.extend_from_slice(b"PIT-404");
        golden.extend_from_slice(&[0x12, 0x09]);
        golden.extend_from_slice(b"not found");
        // Entry of 12 bytes: 0a 05 "route" 12 03 "a.b".
        golden.extend_from_slice(&[0x1a, 0x0c, 0x0a, 0x05]);
        golden.extend_from_slice(b"route");
        golden.extend_from_slice(&[0x12, 0x03]);
        golden.extend_from_slice(b"a.b");
        assert_eq!(with.encode(SerializerKind::Protobuf), golden);

        // Empty fields are not written (proto3): an empty error is no bytes.
        assert_eq!(
            PitayaError::default().encode(SerializerKind::Protobuf),
            Vec::<u8>::new()
        );
        let bare = PitayaError::new("", "x");
        assert_eq!(bare.encode(SerializerKind::Protobuf), [0x12, 0x01, b'x']);

        // Metadata entries are written in key order.
        let two = PitayaError::new("E", "")
            .with_metadata("b", "2")
            .with_metadata("a", "1");
        assert_eq!(
            two.encode(SerializerKind::Protobuf),
            [
                0x0a, 0x01, b'E', 0x1a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'1', 0x1a, 0x06, 0x0a,
                0x01, b'b', 0x12, 0x01, b'2'
            ]
        );
    }

    #[test]
    fn encode_decode_round_trip_in_every_serializer() {
        let errors = [
            PitayaError::default(),
            PitayaError::new(codes::BAD_REQUEST, "bad"),
            PitayaError::new("RH-000", "no room")
                .with_metadata("room", "7")
                .with_metadata("ünï", "çødé"),
        ];
        for kind in [
            SerializerKind::Json,
            SerializerKind::MessagePack,
            SerializerKind::Protobuf,
        ] {
            for err in &errors {
                let bytes = err.encode(kind);
                assert_eq!(&PitayaError::decode(kind, &bytes).unwrap(), err, "{kind}");
            }
        }
        assert_eq!(
            PitayaError::new(codes::BAD_REQUEST, "bad").encode(SerializerKind::Json),
            br#"{"code":"PIT-400","msg":"bad"}"#
        );
    }

    #[test]
    fn protobuf_decode_is_the_go_wire_format() {
        // Bytes as Go's proto.Marshal(&protos.Error{Code: "PIT-500", Msg: "boom"})
        // writes them, in field order.
        let err =
            PitayaError::decode(SerializerKind::Protobuf, b"\x0a\x07PIT-500\x12\x04boom").unwrap();
        assert_eq!(err, PitayaError::new(codes::INTERNAL, "boom"));
        // Unknown fields are skipped, as protobuf requires.
        let err = PitayaError::decode(SerializerKind::Protobuf, b"\x20\x01\x12\x01x").unwrap();
        assert_eq!(err.msg, "x");
        assert_eq!(err.code_or_unknown(), codes::UNKNOWN);
        // A truncated payload and a JSON one are errors.
        assert!(PitayaError::decode(SerializerKind::Protobuf, b"\x0a\x07PIT").is_err());
        assert!(PitayaError::decode(SerializerKind::Protobuf, br#"{"code":"PIT-404"}"#).is_err());
        assert!(PitayaError::decode(SerializerKind::Json, b"\x0a\x01x").is_err());
    }

    #[test]
    fn display_shows_code_msg_and_metadata() {
        let err = PitayaError::new(codes::NOT_FOUND, "gone").with_metadata("route", "a.b");
        assert_eq!(err.to_string(), r#"PIT-404: gone {"route": "a.b"}"#);
    }
}
