//! JSON typed by the user <-> payload bytes in the session's serializer.

use std::fmt::Write as _;

use bytes::Bytes;
use pitaya_client::{Error, SerializerKind};
use pitaya_protocol::{Serializer, SerializerError};
use serde_json::Value;

/// The body to send for `value` (an empty body when there is none).
pub(crate) fn encode(
    value: Option<&Value>,
    serializer: SerializerKind,
) -> Result<Bytes, SerializerError> {
    match value {
        None => Ok(Bytes::new()),
        Some(value) => Ok(Bytes::from(serializer.serialize(value)?)),
    }
}

/// A received body as JSON text; a body that is not valid in the
/// serializer is shown as text, or as hex when it is not UTF-8.
pub(crate) fn render(body: &[u8], serializer: SerializerKind, pretty: bool) -> String {
    if body.is_empty() {
        return "(empty)".into();
    }
    match serializer.deserialize::<Value>(body) {
        Ok(value) => to_json(&value, pretty),
        Err(_) => match std::str::from_utf8(body) {
            Ok(text) => text.to_owned(),
            Err(_) => {
                let mut hex = String::with_capacity(body.len() * 2 + 16);
                let _ = write!(hex, "<{} bytes> ", body.len());
                for byte in body {
                    let _ = write!(hex, "{byte:02x}");
                }
                hex
            }
        },
    }
}

/// `value` as compact or pretty JSON.
pub(crate) fn to_json(value: &Value, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // A `Value` always serializes.
    text.unwrap_or_default()
}

/// An error as the CLI prints it: `error <code>: <message>`.
pub(crate) fn describe(err: &Error) -> String {
    match err {
        Error::Server(server) => {
            let mut text = format!("error {}: {}", server.code_or_unknown(), server.msg);
            if !server.metadata.is_empty() {
                let metadata = serde_json::to_string(&server.metadata).unwrap_or_default();
                let _ = write!(text, " {metadata}");
            }
            text
        }
        other => format!("error {}: {other}", other.code()),
    }
}

#[cfg(test)]
mod tests {
    use pitaya_client::PitayaError;
    use serde_json::json;

    use super::*;

    #[test]
    fn json_and_msgpack_round_trip_through_value() {
        let value = json!({"name": "ana", "level": 3, "tags": ["a"], "ok": true});
        for serializer in [SerializerKind::Json, SerializerKind::MessagePack] {
            let body = encode(Some(&value), serializer).unwrap();
            assert_eq!(
                render(&body, serializer, false),
                value.to_string(),
                "{serializer}"
            );
        }
        assert_eq!(
            &encode(Some(&value), SerializerKind::Json).unwrap()[..],
            value.to_string().as_bytes()
        );
        assert_eq!(
            encode(None, SerializerKind::MessagePack).unwrap(),
            Bytes::new()
        );
    }

    #[test]
    fn pretty_and_odd_bodies() {
        assert_eq!(
            render(br#"{"a":1}"#, SerializerKind::Json, true),
            "{\n  \"a\": 1\n}"
        );
        assert_eq!(render(b"", SerializerKind::Json, false), "(empty)");
        assert_eq!(
            render(b"plain text", SerializerKind::Json, false),
            "plain text"
        );
        assert_eq!(
            render(&[0xff, 0x00], SerializerKind::Json, false),
            "<2 bytes> ff00"
        );
    }

    #[test]
    fn errors_show_their_code() {
        let err = Error::Server(PitayaError::new("PIT-404", "gone").with_metadata("route", "a.b"));
        assert_eq!(describe(&err), r#"error PIT-404: gone {"route":"a.b"}"#);
        assert_eq!(describe(&Error::Closed), "error PIT-499: connection closed");
    }
}
