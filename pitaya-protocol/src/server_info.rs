//! A server's identity and its JSON form in service discovery, byte for
//! byte as Go Pitaya writes it.
//!
//! ```
//! use pitaya_protocol::server_info::ServerInfo;
//!
//! let server = ServerInfo::new("7f1c", "connector", true)
//!     .with_hostname("host-1")
//!     .with_metadata("region", "eu");
//! assert_eq!(
//!     server.to_json(),
//!     r#"{"id":"7f1c","type":"connector","metadata":{"region":"eu"},"frontend":true,"hostname":"host-1"}"#
//! );
//! assert_eq!(ServerInfo::from_json(server.to_json().as_bytes()).unwrap(), server);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use serde::{Deserialize, Deserializer, Serialize};

/// A server identity that cannot be registered: an empty ID or type, or
/// one with a `/` (they are segments of etcd keys and NATS subjects).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidServer(pub String);

/// A server's identity, as Go Pitaya's `cluster.Server`.
///
/// Its JSON form ([`to_json`](Self::to_json)) is the value stored in etcd:
/// `{"id":..,"type":..,"metadata":{..},"frontend":..,"hostname":..}`, in
/// that order, metadata keys sorted, `metadata` `{}` when empty, and `<`,
/// `>`, `&`, U+2028 and U+2029 escaped as Go's `encoding/json` does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Unique server ID (Go Pitaya uses a random UUIDv4). Must not contain `/`.
    #[serde(default)]
    pub id: String,
    /// Server type, e.g. `connector` or `room`. Must not contain `/`.
    #[serde(rename = "type", default)]
    pub server_type: String,
    /// Free-form metadata (`grpcHost`, `region`, ...).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Whether clients connect to this server.
    #[serde(default)]
    pub frontend: bool,
    /// The host name of the machine running the server.
    #[serde(default)]
    pub hostname: String,
}

impl ServerInfo {
    /// A server with no metadata; the hostname is this machine's
    /// ([`local_hostname`]).
    pub fn new(id: impl Into<String>, server_type: impl Into<String>, frontend: bool) -> Self {
        Self {
            id: id.into(),
            server_type: server_type.into(),
            metadata: BTreeMap::new(),
            frontend,
            hostname: local_hostname(),
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Replaces the hostname.
    #[must_use]
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }

    /// Checks the ID and type: both non-empty and without `/` (they are
    /// segments of etcd keys and NATS subjects).
    pub fn validate(&self) -> Result<(), InvalidServer> {
        for (what, value) in [("id", &self.id), ("type", &self.server_type)] {
            if value.is_empty() {
                return Err(InvalidServer(format!("server {what} is empty")));
            }
            if value.contains('/') {
                return Err(InvalidServer(format!(
                    "server {what} {value:?} contains '/'"
                )));
            }
        }
        Ok(())
    }

    /// The JSON Go Pitaya writes for this server (see the type's docs).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoJsonFormatter);
        // A struct of strings, a bool and a string map always serializes.
        if self.serialize(&mut serializer).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Parses the JSON of a server. Unknown fields are ignored, missing ones
    /// take their defaults and `"metadata":null` reads as empty, as in Go.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.server_type, self.id)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// This machine's host name (Go's `os.Hostname()`), or `""` if unknown.
///
/// Read from `/proc/sys/kernel/hostname`, then `/etc/hostname`, then the
/// `HOSTNAME` / `COMPUTERNAME` environment variables.
pub fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|var| std::env::var(var).ok()),
        )
        .find(|name| !name.is_empty())
        .unwrap_or_default()
}

/// serde_json's compact output plus the escapes Go's `encoding/json` adds
/// inside strings (HTML characters and the JavaScript line separators).
struct GoJsonFormatter;

impl serde_json::ser::Formatter for GoJsonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_json_golden() {
        let server = ServerInfo::new("a1b2", "connector", true).with_hostname("pod-1");
        assert_eq!(
            server.to_json(),
            r#"{"id":"a1b2","type":"connector","metadata":{},"frontend":true,"hostname":"pod-1"}"#
        );
        let server = ServerInfo::new("r1", "room", false)
            .with_hostname("h")
            .with_metadata("region", "eu")
            .with_metadata("grpcHost", "10.0.0.1");
        assert_eq!(
            server.to_json(),
            r#"{"id":"r1","type":"room","metadata":{"grpcHost":"10.0.0.1","region":"eu"},"frontend":false,"hostname":"h"}"#
        );
    }

    #[test]
    fn server_json_escapes_like_go() {
        let server = ServerInfo::new("x", "t", false)
            .with_hostname("a<b>&c\u{2028}\"é\n")
            .with_metadata("k&", "v>");
        assert_eq!(
            server.to_json(),
            r#"{"id":"x","type":"t","metadata":{"k\u0026":"v\u003e"},"frontend":false,"hostname":"a\u003cb\u003e\u0026c\u2028\"é\n"}"#
        );
        assert_eq!(
            ServerInfo::from_json(server.to_json().as_bytes()).unwrap(),
            server
        );
    }

    #[test]
    fn server_json_parses_go_variants() {
        let parsed = ServerInfo::from_json(
            br#"{"id":"i","type":"t","metadata":null,"frontend":true,"hostname":"h","extra":1}"#,
        )
        .unwrap();
        assert_eq!(parsed, ServerInfo::new("i", "t", true).with_hostname("h"));
        let sparse = ServerInfo::from_json(br#"{"id":"i","type":"t"}"#).unwrap();
        assert!(!sparse.frontend && sparse.metadata.is_empty() && sparse.hostname.is_empty());
        assert!(ServerInfo::from_json(b"not json").is_err());
    }

    #[test]
    fn validate_rejects_slashes_and_empty() {
        assert!(ServerInfo::new("a", "b", false).validate().is_ok());
        assert!(ServerInfo::new("a/b", "t", false).validate().is_err());
        assert!(ServerInfo::new("a", "t/x", false).validate().is_err());
        assert!(ServerInfo::new("", "t", false).validate().is_err());
        assert!(ServerInfo::new("a", "", false).validate().is_err());
    }
}
