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
use serde::de::DeserializeOwned;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{CodecError, compression};

/// Largest handshake response a client inflates (1 MiB).
const MAX_HANDSHAKE_LEN: usize = 1 << 20;

/// The handshake a client sends.
///
/// The application's `user` block is kept as the raw JSON the client sent
/// (a JSON object, as Go's `map[string]interface{}`), never parsed into a
/// tree: a session costs the bytes the client sent and no more. Parse it on
/// demand with [`user_data`](Self::user_data) or
/// [`user_map`](Self::user_map).
///
/// ```
/// use pitaya_protocol::codec::HandshakeRequest;
///
/// let hs = HandshakeRequest::decode(br#"{"sys":{"platform":"mac","clientBuildNumber":20},"user":{"age":30}}"#).unwrap();
/// assert_eq!(hs.sys.platform, "mac");
/// assert_eq!(hs.sys.client_build_number, "20");
/// assert_eq!(hs.user_json(), Some(r#"{"age":30}"#));
/// assert_eq!(hs.user_map().unwrap()["age"], 30);
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// Client library information.
    #[serde(default)]
    pub sys: ClientSys,
    /// Application-defined data: the raw JSON object the client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Box<RawValue>>,
}

impl PartialEq for HandshakeRequest {
    fn eq(&self, other: &Self) -> bool {
        self.sys == other.sys && self.user_json() == other.user_json()
    }
}

/// The handshake as it travels, borrowing from the body: `user` stays raw
/// and `sys` is checked to be an object before it is read.
#[derive(Deserialize)]
struct WireRequest<'a> {
    #[serde(default, borrow)]
    sys: Option<&'a RawValue>,
    #[serde(default, borrow)]
    user: Option<&'a RawValue>,
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
            user: RawValue::from_string(r#"{"age":30}"#.to_owned()).ok(),
        }
    }

    /// Parses a client handshake body. Like Go's decoder, the body, its
    /// `sys` block and its `user` block must be JSON objects (`null` counts
    /// as absent). `user` is validated but kept as raw JSON.
    pub fn decode(body: &[u8]) -> Result<Self, CodecError> {
        if json_is_null(body) {
            return Ok(Self::default());
        }
        if !json_is_object(body) {
            return Err(not_an_object("handshake"));
        }
        let wire: WireRequest<'_> = serde_json::from_slice(body)?;
        let sys = match wire.sys {
            None => ClientSys::default(),
            Some(raw) if json_is_object(raw.get().as_bytes()) => serde_json::from_str(raw.get())?,
            Some(_) => return Err(not_an_object("sys block")),
        };
        let user = match wire.user {
            None => None,
            Some(raw) if json_is_object(raw.get().as_bytes()) => Some(raw.to_owned()),
            Some(_) => return Err(not_an_object("user block")),
        };
        Ok(Self { sys, user })
    }

    /// The JSON body of this handshake.
    pub fn encode(&self) -> Bytes {
        // Serializing plain strings and raw JSON cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The raw JSON of the `user` block, if the client sent one.
    pub fn user_json(&self) -> Option<&str> {
        self.user.as_deref().map(RawValue::get)
    }

    /// Size in bytes of the raw `user` block (0 without one).
    pub fn user_len(&self) -> usize {
        self.user_json().map_or(0, str::len)
    }

    /// Parses the `user` block into `T` (`None` without one).
    ///
    /// ```
    /// use pitaya_protocol::codec::HandshakeRequest;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Login { token: String }
    ///
    /// let hs = HandshakeRequest::decode(br#"{"user":{"token":"abc"}}"#).unwrap();
    /// let login: Login = hs.user_data().unwrap().unwrap();
    /// assert_eq!(login.token, "abc");
    /// ```
    pub fn user_data<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.user_json().map(serde_json::from_str).transpose()
    }

    /// The `user` block as a JSON map (`None` without one). Parses it on
    /// every call.
    pub fn user_map(&self) -> Option<Map<String, Value>> {
        self.user_data().ok().flatten()
    }

    /// Replaces the `user` block with `user`, serialized to JSON.
    pub fn set_user<T: Serialize + ?Sized>(&mut self, user: &T) -> Result<(), serde_json::Error> {
        self.user = Some(serde_json::value::to_raw_value(user)?);
        Ok(())
    }

    /// This handshake with the `user` block `user` (a JSON object).
    #[must_use]
    pub fn with_user(mut self, user: &Map<String, Value>) -> Self {
        // A map of JSON values always serializes.
        self.user = serde_json::value::to_raw_value(user).ok();
        self
    }
}

fn first_byte(json: &[u8]) -> Option<u8> {
    json.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn json_is_object(json: &[u8]) -> bool {
    first_byte(json) == Some(b'{')
}

fn json_is_null(json: &[u8]) -> bool {
    json.trim_ascii() == b"null"
}

fn not_an_object(what: &str) -> CodecError {
    CodecError::Handshake(<serde_json::Error as de::Error>::custom(format!(
        "{what} must be a JSON object"
    )))
}

/// The handshake response a server sends.
///
/// ```
/// use std::time::Duration;
/// use pitaya_protocol::codec::HandshakeResponse;
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
        assert!(request.user.is_none());
        assert_eq!(&request.encode()[..], &body[..]);
    }

    #[test]
    fn pomelo_request_parses() {
        let body = br#"{"sys":{"type":"js-websocket","version":"0.0.1","rsa":{}},"user":{}}"#;
        let request = HandshakeRequest::decode(body).unwrap();
        assert_eq!(request.sys.client_type, "js-websocket");
        assert_eq!(request.sys.version, "0.0.1");
        assert_eq!(request.sys.platform, "");
        assert_eq!(request.user_map(), Some(Map::new()));
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
        assert!(HandshakeRequest::decode(br#"{"user":5}"#).is_err());
        assert!(HandshakeRequest::decode(br#"{"user":[1]}"#).is_err());
        assert!(
            HandshakeRequest::decode(br#" {"user":null} "#)
                .unwrap()
                .user
                .is_none()
        );
    }

    #[test]
    fn user_block_is_kept_raw_not_parsed() {
        let zeros = vec!["0"; 10_000].join(",");
        let body = format!(r#"{{"sys":{{}},"user":{{"a":[{zeros}]}}}}"#);
        let request = HandshakeRequest::decode(body.as_bytes()).unwrap();
        let raw = request.user_json().unwrap();
        assert_eq!(raw.len(), body.len() - r#"{"sys":{},"user":}"#.len());
        assert_eq!(request.user_len(), raw.len());
        let map = request.user_map().unwrap();
        assert_eq!(map["a"].as_array().unwrap().len(), 10_000);
        assert_eq!(
            HandshakeRequest::decode(&request.encode()).unwrap(),
            request
        );
    }
}
