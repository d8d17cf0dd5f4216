//! Payload serializers: how handler arguments, responses, pushes and error
//! payloads are turned into bytes. The handshake always uses JSON.
//!
//! [`SerializerKind::Json`] is Pitaya's default and what Pitaya clients
//! speak; [`SerializerKind::MessagePack`] is a pitaya-rs extension (structs
//! are encoded as maps, so dynamic clients can read them);
//! [`SerializerKind::Protobuf`] is Go Pitaya's `protobuf` serializer
//! (`pitaya.serializertype` 2), what most Unity and mobile clients use.
//!
//! JSON and MessagePack encode serde values ([`Serializer::serialize`],
//! [`Serializer::deserialize`]); protobuf encodes prost messages
//! ([`SerializerKind::encode_message`], [`SerializerKind::decode_message`]).
//! Asking a serializer for the other kind of value is a [`SerializerError`]
//! saying which call to use instead.
//!
//! ```
//! use pitaya_protocol::{Serializer, SerializerKind};
//!
//! let json = SerializerKind::Json;
//! let bytes = json.serialize(&serde_json::json!({"name": "a"})).unwrap();
//! assert_eq!(bytes, br#"{"name":"a"}"#);
//! let back: serde_json::Value = json.deserialize(&bytes).unwrap();
//! assert_eq!(back["name"], "a");
//! assert_eq!("msgpack".parse::<SerializerKind>().unwrap(), SerializerKind::MessagePack);
//! ```
//!
//! Protobuf payloads are prost messages (generated from a `.proto` file or
//! derived with the prost version [`protos::prost`](crate::protos::prost)
//! re-exports):
//!
//! ```
//! use pitaya_protocol::SerializerKind;
//! use pitaya_protocol::protos::prost;
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Join {
//!     #[prost(string, tag = "1")]
//!     name: String,
//! }
//!
//! let protobuf: SerializerKind = "protobuf".parse().unwrap();
//! let bytes = protobuf.encode_message(&Join { name: "a".into() }).unwrap();
//! assert_eq!(bytes, [0x0a, 0x01, b'a']);
//! let back: Join = protobuf.decode_message(&bytes).unwrap();
//! assert_eq!(back.name, "a");
//!
//! // serde values are not protobuf, prost messages are not JSON.
//! use pitaya_protocol::Serializer;
//! assert!(protobuf.serialize(&serde_json::json!({"name": "a"})).is_err());
//! assert!(SerializerKind::Json.encode_message(&Join { name: "a".into() }).is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use prost::Message;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a payload could not be (de)serialized.
#[derive(Debug, Error)]
#[error("{serializer} {direction}: {message}")]
pub struct SerializerError {
    serializer: &'static str,
    direction: &'static str,
    message: String,
}

impl SerializerError {
    fn encode(serializer: &'static str, err: impl fmt::Display) -> Self {
        Self {
            serializer,
            direction: "encode",
            message: err.to_string(),
        }
    }

    fn decode(serializer: &'static str, err: impl fmt::Display) -> Self {
        Self {
            serializer,
            direction: "decode",
            message: err.to_string(),
        }
    }
}

/// What the protobuf serializer says when asked for a serde value.
const PROTOBUF_NOT_SERDE: &str = "the protobuf serializer encodes prost messages, not serde values: \
     use a type deriving `prost::Message` with `encode_message`/`decode_message` \
     (`Session::push_message`, `Client::request_message`, `#[component(serializer = \"protobuf\")]`)";

/// What JSON and MessagePack say when asked for a prost message.
fn serde_not_protobuf(serializer: &'static str) -> String {
    format!(
        "the {serializer} serializer encodes serde values, not prost messages: \
         use a serde type with `serialize`/`deserialize`, or the protobuf serializer"
    )
}

/// Turns values into payload bytes and back.
pub trait Serializer: Send + Sync + 'static {
    /// Name announced in the handshake's `sys.serializer`.
    fn name(&self) -> &'static str;

    /// Serializes `value`.
    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, SerializerError>;

    /// Deserializes a `T` from `bytes`.
    fn deserialize<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8])
    -> Result<T, SerializerError>;
}

/// JSON payloads (`"json"`), Pitaya's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json;

impl Serializer for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, SerializerError> {
        serde_json::to_vec(value).map_err(|err| SerializerError::encode("json", err))
    }

    fn deserialize<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<T, SerializerError> {
        serde_json::from_slice(bytes).map_err(|err| SerializerError::decode("json", err))
    }
}

/// MessagePack payloads (`"msgpack"`), structs as maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessagePack;

impl Serializer for MessagePack {
    fn name(&self) -> &'static str {
        "msgpack"
    }

    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, SerializerError> {
        rmp_serde::to_vec_named(value).map_err(|err| SerializerError::encode("msgpack", err))
    }

    fn deserialize<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<T, SerializerError> {
        rmp_serde::from_slice(bytes).map_err(|err| SerializerError::decode("msgpack", err))
    }
}

/// Protobuf payloads (`"protobuf"`), Go Pitaya's `protobuf` serializer:
/// handler arguments, replies, pushes are prost messages and errors are
/// `protos.Error`.
///
/// It has no serde encoding: [`Serializer::serialize`] and
/// [`Serializer::deserialize`] always fail with an error pointing to
/// [`Protobuf::encode_message`] and [`Protobuf::decode_message`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protobuf;

impl Protobuf {
    /// The protobuf encoding of `message`.
    pub fn encode_message<M: Message>(&self, message: &M) -> Vec<u8> {
        message.encode_to_vec()
    }

    /// Decodes an `M` from its protobuf encoding.
    ///
    /// # Errors
    /// When `bytes` is not a valid encoding of `M`.
    pub fn decode_message<M: Message + Default>(&self, bytes: &[u8]) -> Result<M, SerializerError> {
        M::decode(bytes).map_err(|err| SerializerError::decode("protobuf", err))
    }
}

impl Serializer for Protobuf {
    fn name(&self) -> &'static str {
        "protobuf"
    }

    fn serialize<T: Serialize + ?Sized>(&self, _value: &T) -> Result<Vec<u8>, SerializerError> {
        Err(SerializerError::encode("protobuf", PROTOBUF_NOT_SERDE))
    }

    fn deserialize<'de, T: Deserialize<'de>>(
        &self,
        _bytes: &'de [u8],
    ) -> Result<T, SerializerError> {
        Err(SerializerError::decode("protobuf", PROTOBUF_NOT_SERDE))
    }
}

/// One of the built-in serializers, chosen at run time (from config, from a
/// server's handshake).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SerializerKind {
    /// [`Json`].
    #[default]
    Json,
    /// [`MessagePack`].
    MessagePack,
    /// [`Protobuf`]: prost messages, not serde values.
    Protobuf,
}

impl SerializerKind {
    /// Whether this serializer encodes prost messages (protobuf) rather than
    /// serde values (JSON, MessagePack).
    pub const fn is_protobuf(self) -> bool {
        matches!(self, Self::Protobuf)
    }

    /// Encodes a prost `message`: its protobuf encoding with
    /// [`SerializerKind::Protobuf`].
    ///
    /// # Errors
    /// With JSON and MessagePack, which encode serde values (use
    /// [`Serializer::serialize`]).
    pub fn encode_message<M: Message>(&self, message: &M) -> Result<Vec<u8>, SerializerError> {
        match self {
            Self::Protobuf => Ok(Protobuf.encode_message(message)),
            Self::Json | Self::MessagePack => Err(SerializerError::encode(
                self.name(),
                serde_not_protobuf(self.name()),
            )),
        }
    }

    /// Decodes a prost message from `bytes` with
    /// [`SerializerKind::Protobuf`].
    ///
    /// # Errors
    /// When `bytes` is not a valid encoding of `M`; with JSON and
    /// MessagePack, which decode serde values (use
    /// [`Serializer::deserialize`]).
    pub fn decode_message<M: Message + Default>(&self, bytes: &[u8]) -> Result<M, SerializerError> {
        match self {
            Self::Protobuf => Protobuf.decode_message(bytes),
            Self::Json | Self::MessagePack => Err(SerializerError::decode(
                self.name(),
                serde_not_protobuf(self.name()),
            )),
        }
    }
}

impl Serializer for SerializerKind {
    fn name(&self) -> &'static str {
        match self {
            Self::Json => Json.name(),
            Self::MessagePack => MessagePack.name(),
            Self::Protobuf => Protobuf.name(),
        }
    }

    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, SerializerError> {
        match self {
            Self::Json => Json.serialize(value),
            Self::MessagePack => MessagePack.serialize(value),
            Self::Protobuf => Protobuf.serialize(value),
        }
    }

    fn deserialize<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<T, SerializerError> {
        match self {
            Self::Json => Json.deserialize(bytes),
            Self::MessagePack => MessagePack.deserialize(bytes),
            Self::Protobuf => Protobuf.deserialize(bytes),
        }
    }
}

/// A serializer name no built-in serializer has.
#[derive(Debug, Error)]
#[error("unknown serializer {0:?} (expected \"json\", \"msgpack\" or \"protobuf\")")]
pub struct UnknownSerializer(pub String);

impl FromStr for SerializerKind {
    type Err = UnknownSerializer;

    fn from_str(name: &str) -> Result<Self, UnknownSerializer> {
        match name {
            "json" => Ok(Self::Json),
            "msgpack" | "messagepack" => Ok(Self::MessagePack),
            "protobuf" => Ok(Self::Protobuf),
            other => Err(UnknownSerializer(other.to_owned())),
        }
    }
}

impl fmt::Display for SerializerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Join {
        name: String,
        level: u32,
    }

    #[test]
    fn both_round_trip_structs() {
        let value = Join {
            name: "ana".into(),
            level: 3,
        };
        for kind in [SerializerKind::Json, SerializerKind::MessagePack] {
            let bytes = kind.serialize(&value).unwrap();
            assert_eq!(kind.deserialize::<Join>(&bytes).unwrap(), value, "{kind}");
        }
    }

    #[test]
    fn msgpack_writes_structs_as_maps() {
        let bytes = MessagePack
            .serialize(&Join {
                name: "a".into(),
                level: 1,
            })
            .unwrap();
        // fixmap of 2, then the key "name".
        assert_eq!(&bytes[..6], &[0x82, 0xa4, b'n', b'a', b'm', b'e']);
        let dynamic: serde_json::Value = MessagePack.deserialize(&bytes).unwrap();
        assert_eq!(dynamic, serde_json::json!({"name": "a", "level": 1}));
    }

    #[test]
    fn errors_name_the_serializer_and_direction() {
        let err = Json.deserialize::<Join>(b"{").unwrap_err();
        assert!(err.to_string().starts_with("json decode: "), "{err}");
        let err = MessagePack.deserialize::<Join>(&[0xc1]).unwrap_err();
        assert!(err.to_string().starts_with("msgpack decode: "), "{err}");
    }

    #[test]
    fn names_parse_back() {
        for kind in [
            SerializerKind::Json,
            SerializerKind::MessagePack,
            SerializerKind::Protobuf,
        ] {
            assert_eq!(kind.name().parse::<SerializerKind>().unwrap(), kind);
        }
        assert_eq!(SerializerKind::Protobuf.name(), "protobuf");
        let err = "proto".parse::<SerializerKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown serializer "proto" (expected "json", "msgpack" or "protobuf")"#
        );
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct JoinMsg {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(uint32, tag = "2")]
        level: u32,
    }

    #[test]
    fn protobuf_encodes_prost_messages() {
        let join = JoinMsg {
            name: "ana".into(),
            level: 3,
        };
        // Field 1, length-delimited "ana"; field 2, varint 3.
        let golden = [0x0a, 0x03, b'a', b'n', b'a', 0x10, 0x03];
        let kind = SerializerKind::Protobuf;
        assert_eq!(kind.encode_message(&join).unwrap(), golden);
        assert_eq!(Protobuf.encode_message(&join), golden);
        assert_eq!(kind.decode_message::<JoinMsg>(&golden).unwrap(), join);
        assert!(kind.is_protobuf());
        assert!(!SerializerKind::Json.is_protobuf());

        // A truncated message names the serializer and the direction.
        let err = kind.decode_message::<JoinMsg>(&golden[..3]).unwrap_err();
        assert!(err.to_string().starts_with("protobuf decode: "), "{err}");
    }

    #[test]
    fn protobuf_refuses_serde_values_and_serde_refuses_prost_messages() {
        let value = Join {
            name: "a".into(),
            level: 1,
        };
        let err = SerializerKind::Protobuf.serialize(&value).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("protobuf encode: the protobuf serializer encodes prost messages"),
            "{err}"
        );
        assert!(err.to_string().contains("encode_message"), "{err}");
        let err = SerializerKind::Protobuf
            .deserialize::<Join>(&[0x0a, 0x01, b'a'])
            .unwrap_err();
        assert!(err.to_string().starts_with("protobuf decode: "), "{err}");

        for kind in [SerializerKind::Json, SerializerKind::MessagePack] {
            let err = kind.encode_message(&JoinMsg::default()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{kind} encode: the {kind} serializer encodes serde values, not prost messages: \
                     use a serde type with `serialize`/`deserialize`, or the protobuf serializer"
                )
            );
            assert!(kind.decode_message::<JoinMsg>(b"").is_err(), "{kind}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::protos;

    proptest! {
        #[test]
        fn protobuf_decode_of_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = SerializerKind::Protobuf.decode_message::<protos::Error>(&bytes);
        }
    }
}
