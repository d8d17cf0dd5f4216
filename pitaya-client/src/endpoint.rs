use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Where a Pitaya server listens, and over which transport.
///
/// ```
/// use pitaya_client::Endpoint;
///
/// let ep: Endpoint = "ws://127.0.0.1:3251/game".parse().unwrap();
/// assert_eq!(ep.host_port(), "127.0.0.1:3251");
/// assert_eq!(ep.host(), "127.0.0.1");
/// assert_eq!("localhost:3250".parse::<Endpoint>().unwrap(), "tcp://localhost:3250".parse().unwrap());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Plain TCP, `tcp://host:port` or `host:port`.
    Tcp {
        /// `host:port`.
        addr: String,
    },
    /// TLS over TCP, `tls://host:port`.
    Tls {
        /// `host:port`.
        addr: String,
    },
    /// WebSocket, `ws://host:port/path`.
    Ws {
        /// `host:port`.
        addr: String,
        /// Path (starts with `/`).
        path: String,
    },
    /// WebSocket over TLS, `wss://host:port/path`.
    Wss {
        /// `host:port`.
        addr: String,
        /// Path (starts with `/`).
        path: String,
    },
}

impl Endpoint {
    /// `host:port` to connect to.
    pub fn host_port(&self) -> &str {
        match self {
            Self::Tcp { addr }
            | Self::Tls { addr }
            | Self::Ws { addr, .. }
            | Self::Wss { addr, .. } => addr,
        }
    }

    /// The host part (no brackets around IPv6 addresses); the TLS server name.
    pub fn host(&self) -> &str {
        let addr = self.host_port();
        if let Some(rest) = addr.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        addr.rsplit_once(':').map_or(addr, |(host, _)| host)
    }

    /// Whether the transport uses TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls { .. } | Self::Wss { .. })
    }

    /// Whether the transport is WebSocket.
    pub fn is_websocket(&self) -> bool {
        matches!(self, Self::Ws { .. } | Self::Wss { .. })
    }

    /// The WebSocket URL, for WebSocket endpoints.
    pub fn url(&self) -> Option<String> {
        match self {
            Self::Ws { addr, path } => Some(format!("ws://{addr}{path}")),
            Self::Wss { addr, path } => Some(format!("wss://{addr}{path}")),
            _ => None,
        }
    }
}

fn split_authority(rest: &str, default_port: u16) -> Option<(String, String)> {
    let (authority, path) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let has_port = if authority.starts_with('[') {
        authority.contains("]:")
    } else {
        authority.contains(':')
    };
    let addr = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    Some((addr, path.to_owned()))
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidEndpoint(text.to_owned());
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").unwrap_or(("tcp", text));
        let endpoint = match scheme {
            "tcp" | "tls" => {
                let (addr, path) = split_authority(rest, 0).ok_or_else(invalid)?;
                if path != "/" || addr.ends_with(":0") {
                    return Err(invalid());
                }
                if scheme == "tcp" {
                    Self::Tcp { addr }
                } else {
                    Self::Tls { addr }
                }
            }
            "ws" => {
                let (addr, path) = split_authority(rest, 80).ok_or_else(invalid)?;
                Self::Ws { addr, path }
            }
            "wss" => {
                let (addr, path) = split_authority(rest, 443).ok_or_else(invalid)?;
                Self::Wss { addr, path }
            }
            _ => return Err(invalid()),
        };
        Ok(endpoint)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { addr } => write!(f, "tcp://{addr}"),
            Self::Tls { addr } => write!(f, "tls://{addr}"),
            Self::Ws { addr, path } => write!(f, "ws://{addr}{path}"),
            Self::Wss { addr, path } => write!(f, "wss://{addr}{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Endpoint {
        text.parse().unwrap()
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            parse("127.0.0.1:3250"),
            Endpoint::Tcp {
                addr: "127.0.0.1:3250".into()
            }
        );
        assert_eq!(
            parse("tls://example.com:3252"),
            Endpoint::Tls {
                addr: "example.com:3252".into()
            }
        );
        assert_eq!(
            parse("ws://localhost:3251"),
            Endpoint::Ws {
                addr: "localhost:3251".into(),
                path: "/".into()
            }
        );
        assert_eq!(
            parse("wss://example.com/ws/game"),
            Endpoint::Wss {
                addr: "example.com:443".into(),
                path: "/ws/game".into()
            }
        );
        assert_eq!(parse("tcp://[::1]:3250").host(), "::1");
        assert_eq!(parse("ws://[::1]/x").host_port(), "[::1]:80");
    }

    #[test]
    fn display_round_trips() {
        for text in ["tcp://a:1", "tls://a:2", "ws://a:3/p", "wss://a:4/"] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn rejects_nonsense() {
        for text in [
            "",
            "tcp://",
            "http://a:1",
            "tcp://a",
            "tcp://a:1/path",
            "ws://",
        ] {
            assert!(text.parse::<Endpoint>().is_err(), "{text:?}");
        }
    }
}
