use thiserror::Error;

/// Why bytes could not be decoded into (or encoded from) packets and messages.
///
/// Every decoding error means the peer sent something Pitaya would also
/// refuse; a server closes that connection.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The packet type byte is not 1..=5.
    #[error("invalid packet type {0:#04x}")]
    InvalidPacketType(u8),
    /// A packet announces (or would need) a body larger than allowed.
    #[error("packet body of {len} bytes exceeds the maximum of {max} bytes")]
    PacketTooLarge {
        /// Body length announced or requested.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A WebSocket message did not hold exactly one whole packet.
    #[error("frame holds {actual} body bytes but its header announces {announced}")]
    PacketLengthMismatch {
        /// Body length from the header.
        announced: usize,
        /// Body bytes actually present.
        actual: usize,
    },
    /// The message type bits hold 4..=7.
    #[error("invalid message type {0}")]
    InvalidMessageType(u8),
    /// The message ended before a field it needs.
    #[error("message truncated while reading its {0}")]
    Truncated(&'static str),
    /// The message id varint is longer than 64 bits.
    #[error("message id does not fit in 64 bits")]
    IdOverflow,
    /// A compressed route code is not in the route dictionary.
    #[error("route code {0} is not in the route dictionary")]
    UnknownRouteCode(u16),
    /// A route is not valid UTF-8.
    #[error("route is not valid utf-8")]
    RouteNotUtf8,
    /// A route is longer than the 255 bytes its length byte can express.
    #[error("route of {0} bytes is longer than 255 bytes")]
    RouteTooLong(usize),
    /// A compressed body is not a valid zlib stream.
    #[error("invalid zlib body: {0}")]
    Inflate(String),
    /// A compressed body inflates to more than the allowed size.
    #[error("compressed body inflates to more than {max} bytes")]
    InflatedTooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// A compressed body inflates to more than the allowed multiple of
    /// its compressed size.
    #[error("compressed body inflates to more than {ratio} times its size")]
    InflateRatioExceeded {
        /// The configured maximum ratio.
        ratio: u32,
    },
    /// A handshake body is not the JSON Pitaya expects.
    #[error("invalid handshake: {0}")]
    Handshake(#[from] serde_json::Error),
    /// An I/O error from the underlying transport (used by framed streams).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
