//! Pitaya's error payload and its well-known codes.
//!
//! An error goes to the client as a response with the error flag set and a
//! body holding `{"code":"PIT-404","msg":"...","metadata":{...}}` encoded
//! with the session's serializer; empty fields are left out, as Go's
//! `omitempty` does.
//!
//! ```
//! use pitaya_protocol::{PitayaError, Serializer, SerializerKind, error::codes};
//!
//! let err = PitayaError::new(codes::NOT_FOUND, "pitaya/handler: room.room.foo not found");
//! let body = SerializerKind::Json.serialize(&err).unwrap();
//! assert_eq!(body, br#"{"code":"PIT-404","msg":"pitaya/handler: room.room.foo not found"}"#);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

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
    fn display_shows_code_msg_and_metadata() {
        let err = PitayaError::new(codes::NOT_FOUND, "gone").with_metadata("route", "a.b");
        assert_eq!(err.to_string(), r#"PIT-404: gone {"route": "a.b"}"#);
    }
}
