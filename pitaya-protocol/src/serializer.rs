//! Payload serializers: how handler arguments, responses, pushes and error
//! payloads are turned into bytes. The handshake always uses JSON.
//!
//! [`SerializerKind::Json`] is Pitaya's default and what Pitaya clients
//! speak; [`SerializerKind::MessagePack`] is a pitaya-rs extension (structs
//! are encoded as maps, so dynamic clients can read them).
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

use std::fmt;
use std::str::FromStr;

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
}

impl Serializer for SerializerKind {
    fn name(&self) -> &'static str {
        match self {
            Self::Json => Json.name(),
            Self::MessagePack => MessagePack.name(),
        }
    }

    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, SerializerError> {
        match self {
            Self::Json => Json.serialize(value),
            Self::MessagePack => MessagePack.serialize(value),
        }
    }

    fn deserialize<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<T, SerializerError> {
        match self {
            Self::Json => Json.deserialize(bytes),
            Self::MessagePack => MessagePack.deserialize(bytes),
        }
    }
}

/// A serializer name no built-in serializer has.
#[derive(Debug, Error)]
#[error("unknown serializer {0:?} (expected \"json\" or \"msgpack\")")]
pub struct UnknownSerializer(pub String);

impl FromStr for SerializerKind {
    type Err = UnknownSerializer;

    fn from_str(name: &str) -> Result<Self, UnknownSerializer> {
        match name {
            "json" => Ok(Self::Json),
            "msgpack" | "messagepack" => Ok(Self::MessagePack),
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
        for kind in [SerializerKind::Json, SerializerKind::MessagePack] {
            assert_eq!(kind.name().parse::<SerializerKind>().unwrap(), kind);
        }
        assert!("protobuf".parse::<SerializerKind>().is_err());
    }
}
