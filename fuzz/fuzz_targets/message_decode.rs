//! `MessageCodec::decode` (the body of a data packet) with a route
//! dictionary and a small bound on inflated bodies.
//!
//! Input layout:
//!
//! ```text
//! byte 0   inflate bound: < 0x80 -> byte * 16 (0..=2032 bytes, the usual
//!          small bound); else (byte & 0x7f) * 1024 (up to 127 KiB, so the
//!          ratio check, which spares outputs up to 64 KiB, can matter)
//! byte 1   inflate ratio bound (0 = off)
//! rest     the message (`flag | id varint | route | body`)
//! ```
//!
//! Invariants:
//! - decoding never panics;
//! - a zlib-flagged body never inflates past the size bound, nor past the
//!   ratio bound when its output is over `RATIO_FREE_LEN`;
//! - `decode` is `decode_deferred` then `inflate_body`;
//! - a decoded message re-encodes (compression off) and decodes back to the
//!   same kind, id, route, body and error flag; that encoding is canonical
//!   (re-encoding the result gives the same bytes);
//! - the same holds with compression on (every body tried) and through a
//!   whole data packet (`encode_packet` -> `PacketCodec` -> `decode`).

#![no_main]

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pitaya_core::codec::compression::RATIO_FREE_LEN;
use pitaya_core::codec::{
    CodecError, Message, MessageCodec, MessageType, PacketCodec, PacketType, RouteDictionary,
};

const FLAG_ROUTE_COMPRESSED: u8 = 0x01;
const FLAG_BODY_COMPRESSED: u8 = 0x10;
const FLAG_ERROR: u8 = 0x20;

fn dictionary() -> &'static RouteDictionary {
    static DICT: OnceLock<RouteDictionary> = OnceLock::new();
    DICT.get_or_init(|| {
        RouteDictionary::new([
            ("room.room.join", 1),
            ("onMessage", 2),
            ("chat.room.send", 3),
            ("connector.entry.hello", 0x0100),
            ("a.b", 0xffff),
        ])
        .expect("valid dictionary")
    })
}

fn fields(m: &Message) -> (MessageType, u64, &str, &[u8], bool) {
    (m.kind, m.id, m.route.as_str(), &m.body[..], m.error)
}

fuzz_target!(|data: &[u8]| {
    let [selector, ratio, message @ ..] = data else {
        return;
    };
    let (selector, ratio) = (*selector, *ratio);
    let max = if selector < 0x80 {
        usize::from(selector) * 16
    } else {
        usize::from(selector & 0x7f) * 1024
    };
    let codec = MessageCodec::default()
        .with_dictionary(dictionary().clone())
        .with_max_inflated_len(max)
        .with_max_inflate_ratio(u32::from(ratio));
    assert_eq!(codec.max_inflated_len(), max);

    let result = codec.decode(Bytes::copy_from_slice(message));
    // decode == decode_deferred + inflate_body.
    let deferred = codec
        .decode_deferred(Bytes::copy_from_slice(message))
        .and_then(|(mut m, compressed)| {
            assert_eq!(
                compressed,
                message[0] & FLAG_BODY_COMPRESSED != 0,
                "deferred flag is wrong"
            );
            if compressed {
                m.body = codec.inflate_body(&m.body)?;
            }
            Ok(m)
        });
    match (&result, &deferred) {
        (Ok(a), Ok(b)) => assert_eq!(fields(a), fields(b), "decode differs from decode_deferred"),
        (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        _ => panic!("decode {result:?} but decode_deferred {deferred:?}"),
    }
    let decoded = match result {
        Ok(decoded) => decoded,
        Err(CodecError::InflatedTooLarge { max: reported }) => {
            assert_eq!(reported, max);
            assert!(message[0] & FLAG_BODY_COMPRESSED != 0);
            return;
        }
        Err(CodecError::InflateRatioExceeded { ratio: reported }) => {
            assert_eq!(reported, u32::from(ratio));
            assert!(message[0] & FLAG_BODY_COMPRESSED != 0);
            return;
        }
        Err(_) => return,
    };

    let flag = message[0];
    assert_eq!(
        decoded.kind as u8,
        (flag >> 1) & 0x07,
        "kind is not the flag's"
    );
    assert_eq!(decoded.error, flag & FLAG_ERROR != 0, "error flag lost");
    if !decoded.kind.has_id() {
        assert_eq!(decoded.id, 0, "id on a message type without ids");
    }
    if !decoded.kind.has_route() {
        assert!(decoded.route.is_empty(), "route on a response");
    } else if flag & FLAG_ROUTE_COMPRESSED != 0 {
        assert!(
            dictionary().code(&decoded.route).is_some(),
            "coded route not in the dictionary"
        );
    } else {
        assert!(decoded.route.len() <= 255);
    }
    if flag & FLAG_BODY_COMPRESSED != 0 {
        let inflated = decoded.body.len();
        assert!(inflated <= max, "inflated body {inflated} > max {max}");
        if ratio > 0 && inflated > RATIO_FREE_LEN {
            // The compressed body is at most the message minus its flag.
            let compressed = message.len() - 1;
            assert!(
                inflated <= compressed * usize::from(ratio),
                "{compressed} bytes inflated to {inflated}, over ratio {ratio}"
            );
        }
    } else {
        // An uncompressed body is the tail of the input, as is.
        assert!(
            message.ends_with(&decoded.body),
            "plain body is not the input's tail"
        );
    }

    // Round trip, compression off.
    let plain = codec.clone().with_compression(false);
    let bytes = plain
        .encode_to_bytes(&decoded)
        .expect("a decoded message re-encodes");
    assert_eq!(
        bytes[0] & FLAG_BODY_COMPRESSED,
        0,
        "compressed with compression off"
    );
    let again = plain
        .decode(bytes.clone())
        .expect("re-encoded message decodes");
    assert_eq!(
        fields(&again),
        fields(&decoded),
        "plain round trip changed the message"
    );
    let bytes2 = plain.encode_to_bytes(&again).expect("re-encodes");
    assert_eq!(bytes2, bytes, "encoding is not canonical");

    // Round trip, compression on for every body (decode with a bound that
    // fits the body, which may be larger than `max` when it came plain).
    let packed = MessageCodec::default()
        .with_dictionary(dictionary().clone())
        .with_compression_threshold(0)
        .with_max_inflated_len(decoded.body.len())
        .with_max_inflate_ratio(0);
    let bytes = packed
        .encode_to_bytes(&decoded)
        .expect("re-encodes compressed");
    let again = packed
        .decode(bytes)
        .expect("compressed re-encoding decodes");
    assert_eq!(
        fields(&again),
        fields(&decoded),
        "compressed round trip changed the message"
    );

    // Through a whole data packet.
    let mut wire = BytesMut::new();
    plain
        .encode_packet(&decoded, &mut wire)
        .expect("fits a packet");
    let packet = PacketCodec::new()
        .decode(&mut wire)
        .expect("valid packet")
        .expect("whole packet");
    assert!(wire.is_empty(), "packet left bytes behind");
    assert_eq!(packet.kind, PacketType::Data);
    let again = plain.decode(packet.body).expect("packet body decodes");
    assert_eq!(
        fields(&again),
        fields(&decoded),
        "packet round trip changed the message"
    );
});
