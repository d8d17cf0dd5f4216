//! Handshake bodies (always JSON, whatever the serializer).
//!
//! Client -> server: `{"sys":{"platform","libVersion","clientBuildNumber","clientVersion"},"user":{...}}`
//! (pomelo clients send `sys.type` and `sys.version` instead).
//! Server -> client: `{"code":200,"sys":{"dict":{...},"heartbeat":30,"serializer":"json"}}`,
//! zlib-compressed when that is shorter and compression is on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CodecError, compression};

/// Largest handshake response a client inflates (1 MiB).
const MAX_HANDSHAKE_LEN: usize = 1 << 20;

/// The handshake a client sends.
///
/// ```
/// use pitaya_core::codec::HandshakeRequest;
///
/// let hs = HandshakeRequest::decode(br#"{"sys":{"platform":"mac","clientBuildNumber":20},"user":{"age":30}}"#).unwrap();
/// assert_eq!(hs.sys.platform, "mac");
/// assert_eq!(hs.sys.client_build_number, "20");
/// assert_eq!(hs.user.unwrap()["age"], 30);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// Client library information.
    #[serde(default)]
    pub sys: ClientSys,
    /// Application-defined data, free form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Map<String, Value>>,
}

/// The `sys` block of a client handshake. Every field is a string; numbers
/// and booleans are accepted and turned into strings, missing keys are
/// empty, unknown keys are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSys {
    /// Platform, e.g. `"mac"`, `"android"`, `"desktop"`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub platform: String,
    /// Client library version, e.g. libpitaya's `"4.6.2-"`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub lib_version: String,
    /// Application build number.
    #[serde(default, deserialize_with = "lenient_string")]
    pub client_build_number: String,
    /// Application version.
    #[serde(default, deserialize_with = "lenient_string")]
    pub client_version: String,
    /// Pomelo clients' client type, e.g. `"js-websocket"` (`sys.type`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub client_type: String,
    /// Pomelo clients' library version (`sys.version`).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub version: String,
}

impl HandshakeRequest {
    /// The handshake Go's pitaya client sends by default.
    pub fn go_client_default() -> Self {
        Self {
            sys: ClientSys {
                platform: "mac".into(),
                lib_version: "0.3.5-release".into(),
                client_build_number: "20".into(),
                client_version: "2.1".into(),
                ..ClientSys::default()
            },
            user: Some(Map::from_iter([("age".to_owned(), Value::from(30))])),
        }
    }

    /// Parses a client handshake body. Like Go's decoder, the body and its
    /// `sys` block must be JSON objects (`null` counts as empty).
    pub fn decode(body: &[u8]) -> Result<Self, CodecError> {
        let mut value: Value = serde_json::from_slice(body)?;
        let object_or_null =
            |value: Option<&Value>| matches!(value, None | Some(Value::Null | Value::Object(_)));
        if !object_or_null(Some(&value)) || !object_or_null(value.get("sys")) {
            return Err(CodecError::Handshake(
                <serde_json::Error as de::Error>::custom(
                    "handshake and its sys block must be JSON objects",
                ),
            ));
        }
        match &mut value {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) if map.get("sys").is_some_and(Value::is_null) => {
                map.remove("sys");
            }
            _ => {}
        }
        Ok(serde_json::from_value(value)?)
    }

    /// The JSON body of this handshake.
    pub fn encode(&self) -> Bytes {
        // Serializing plain strings and a JSON map cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The handshake response a server sends.
///
/// ```
/// use std::time::Duration;
/// use pitaya_core::codec::HandshakeResponse;
///
/// let ok = HandshakeResponse::ok(Duration::from_secs(30), Default::default(), "json");
/// assert_eq!(
///     &ok.encode(false)[..],
///     br#"{"code":200,"sys":{"dict":{},"heartbeat":30,"serializer":"json"}}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResponse {
    /// `200` accepted, `400` refused (the server then closes).
    pub code: u16,
    /// Server settings.
    #[serde(default)]
    pub sys: ServerSys,
}

/// The `sys` block of a handshake response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerSys {
    /// Route compression dictionary (`{}` when none).
    #[serde(default)]
    pub dict: BTreeMap<String, u16>,
    /// Heartbeat interval; a JSON number of seconds (`30`, `1.5`).
    #[serde(default, with = "seconds")]
    pub heartbeat: Duration,
    /// Name of the payload serializer (`"json"`, `"msgpack"`, ...).
    #[serde(default = "default_serializer")]
    pub serializer: String,
}

impl Default for ServerSys {
    fn default() -> Self {
        Self {
            dict: BTreeMap::new(),
            heartbeat: Duration::ZERO,
            serializer: default_serializer(),
        }
    }
}

fn default_serializer() -> String {
    "json".into()
}

impl HandshakeResponse {
    /// Code of an accepted handshake.
    pub const OK: u16 = 200;
    /// Code of a refused handshake.
    pub const REFUSED: u16 = 400;

    /// An accepting response.
    pub fn ok(heartbeat: Duration, dict: BTreeMap<String, u16>, serializer: &str) -> Self {
        Self {
            code: Self::OK,
            sys: ServerSys {
                dict,
                heartbeat,
                serializer: serializer.to_owned(),
            },
        }
    }

    /// The same response with code 400, which refuses the client.
    #[must_use]
    pub fn refused(mut self) -> Self {
        self.code = Self::REFUSED;
        self
    }

    /// Whether the server accepted the handshake.
    pub fn is_ok(&self) -> bool {
        self.code == Self::OK
    }

    /// The body to send: JSON with sorted keys, zlib-compressed if
    /// `compress` is set and that is strictly shorter (as Pitaya does).
    pub fn encode(&self, compress: bool) -> Bytes {
        // Integers, strings and a string-keyed map always serialize.
        let json = serde_json::to_vec(self).unwrap_or_default();
        if compress && let Some(deflated) = compression::deflate_if_smaller(&json) {
            return Bytes::from(deflated);
        }
        Bytes::from(json)
    }

    /// Parses a response body, inflating it if it starts with a zlib or gzip
    /// magic.
    pub fn decode(body: &[u8]) -> Result<Self, CodecError> {
        let json = compression::inflate_if_compressed(body, MAX_HANDSHAKE_LEN)?;
        Ok(serde_json::from_slice(&json)?)
    }
}

mod seconds {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if value.subsec_nanos() == 0 {
            serializer.serialize_u64(value.as_secs())
        } else {
            serializer.serialize_f64(value.as_secs_f64())
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        // Zero, negative or absurd values disable heartbeats, as in libpitaya.
        Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO))
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Lenient;

    impl Visitor<'_> for Lenient {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, number, boolean or null")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_unit<E: de::Error>(self) -> Result<String, E> {
            Ok(String::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<String, E> {
            Ok(String::new())
        }
    }

    deserializer.deserialize_any(Lenient)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_RESPONSE: &[u8] =
        br#"{"code":200,"sys":{"dict":{},"heartbeat":30,"serializer":"json"}}"#;

    #[test]
    fn golden_default_response_is_65_bytes_and_stays_plain() {
        let response = HandshakeResponse::ok(Duration::from_secs(30), BTreeMap::new(), "json");
        assert_eq!(DEFAULT_RESPONSE.len(), 0x41);
        assert_eq!(&response.encode(false)[..], DEFAULT_RESPONSE);
        assert_eq!(
            &response.encode(true)[..],
            DEFAULT_RESPONSE,
            "compressed form is longer"
        );
    }

    #[test]
    fn fractional_heartbeat_and_sorted_dict() {
        let dict = BTreeMap::from([
            ("onMessage".to_owned(), 4),
            ("chat.room.join".to_owned(), 1),
        ]);
        let response = HandshakeResponse::ok(Duration::from_millis(1500), dict, "msgpack");
        assert_eq!(
            &response.encode(false)[..],
            &br#"{"code":200,"sys":{"dict":{"chat.room.join":1,"onMessage":4},"heartbeat":1.5,"serializer":"msgpack"}}"#[..]
        );
    }

    #[test]
    fn refused_response_keeps_sys() {
        let response =
            HandshakeResponse::ok(Duration::from_secs(30), BTreeMap::new(), "json").refused();
        assert_eq!(
            &response.encode(false)[..],
            &br#"{"code":400,"sys":{"dict":{},"heartbeat":30,"serializer":"json"}}"#[..]
        );
        assert!(
            !HandshakeResponse::decode(&response.encode(false))
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn large_dictionary_is_compressed_and_decoded() {
        let dict: BTreeMap<String, u16> = (0..200u16)
            .map(|i| (format!("room.room.route{i}"), i))
            .collect();
        let response = HandshakeResponse::ok(Duration::from_secs(10), dict, "json");
        let body = response.encode(true);
        assert!(compression::is_zlib(&body));
        assert_eq!(HandshakeResponse::decode(&body).unwrap(), response);
    }

    #[test]
    fn response_decode_defaults() {
        let response = HandshakeResponse::decode(br#"{"code":200,"sys":{"heartbeat":3}}"#).unwrap();
        assert_eq!(response.sys.serializer, "json");
        assert_eq!(response.sys.heartbeat, Duration::from_secs(3));
        let negative =
            HandshakeResponse::decode(br#"{"code":200,"sys":{"heartbeat":-1}}"#).unwrap();
        assert_eq!(negative.sys.heartbeat, Duration::ZERO);
        assert!(HandshakeResponse::decode(b"nope").is_err());
    }

    #[test]
    fn go_client_request_parses() {
        let body = br#"{"sys":{"platform":"mac","libVersion":"0.3.5-release","clientBuildNumber":"20","clientVersion":"2.1"},"user":{"age":30}}"#;
        let request = HandshakeRequest::decode(body).unwrap();
        assert_eq!(request, HandshakeRequest::go_client_default());
        assert_eq!(
            HandshakeRequest::decode(&request.encode()).unwrap(),
            request
        );
    }

    #[test]
    fn libpitaya_request_without_user_parses() {
        let body = br#"{"sys":{"platform":"desktop","libVersion":"4.6.2-","clientBuildNumber":"1","clientVersion":"0.1"}}"#;
        let request = HandshakeRequest::decode(body).unwrap();
        assert_eq!(request.sys.lib_version, "4.6.2-");
        assert_eq!(request.user, None);
        assert_eq!(&request.encode()[..], &body[..]);
    }

    #[test]
    fn pomelo_request_parses() {
        let body = br#"{"sys":{"type":"js-websocket","version":"0.0.1","rsa":{}},"user":{}}"#;
        let request = HandshakeRequest::decode(body).unwrap();
        assert_eq!(request.sys.client_type, "js-websocket");
        assert_eq!(request.sys.version, "0.0.1");
        assert_eq!(request.sys.platform, "");
        assert_eq!(request.user, Some(Map::new()));
    }

    #[test]
    fn odd_but_valid_requests_parse() {
        assert_eq!(
            HandshakeRequest::decode(b"{}").unwrap(),
            HandshakeRequest::default()
        );
        let request = HandshakeRequest::decode(
            br#"{"sys":{"platform":null,"clientBuildNumber":7,"clientVersion":true},"user":null}"#,
        )
        .unwrap();
        assert_eq!(request.sys.client_build_number, "7");
        assert_eq!(request.sys.client_version, "true");
        assert!(HandshakeRequest::decode(b"[1,2]").is_err());
        assert!(HandshakeRequest::decode(b"[]").is_err());
        assert!(HandshakeRequest::decode(br#"{"sys":["mac","1"]}"#).is_err());
        assert_eq!(
            HandshakeRequest::decode(b"null").unwrap(),
            HandshakeRequest::default()
        );
        assert_eq!(
            HandshakeRequest::decode(br#"{"sys":null}"#).unwrap(),
            HandshakeRequest::default()
        );
        assert!(HandshakeRequest::decode(br#"{"sys":{"platform":{}}}"#).is_err());
        assert!(HandshakeRequest::decode(b"").is_err());
    }
}
