//! Round-trip properties of the client wire codec: `decode(encode(x)) == x`
//! for packets, messages and handshake bodies, plus the exact byte layout
//! and compression choices the encoder makes along the way.
//!
//! Robustness against hostile input lives in `codec_robustness.rs`, stream
//! framing across read boundaries in `codec_chunking.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pitaya_protocol::codec::{
    ClientSys, CodecError, HEADER_LEN, HandshakeRequest, HandshakeResponse, MAX_PACKET_BODY,
    Message, MessageCodec, MessageType, Packet, PacketCodec, PacketType, RouteDictionary,
    ServerSys, compression,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
#[cfg(feature = "tokio-codec")]
use tokio_util::codec::Encoder;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

const PACKET_TYPES: [PacketType; 5] = [
    PacketType::Handshake,
    PacketType::HandshakeAck,
    PacketType::Heartbeat,
    PacketType::Data,
    PacketType::Kick,
];

const MESSAGE_TYPES: [MessageType; 4] = [
    MessageType::Request,
    MessageType::Notify,
    MessageType::Response,
    MessageType::Push,
];

fn packet_type() -> impl Strategy<Value = PacketType> {
    prop::sample::select(&PACKET_TYPES[..])
}

fn message_type() -> impl Strategy<Value = MessageType> {
    prop::sample::select(&MESSAGE_TYPES[..])
}

/// Bodies of 0..4096 bytes: random bytes (rarely compressible), runs of one
/// byte and repeated JSON-ish text (compressible), and short bodies around
/// the size where compression starts to pay off.
fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..4096),
        1 => prop::collection::vec(any::<u8>(), 0..32),
        1 => (any::<u8>(), 0usize..4096).prop_map(|(byte, len)| vec![byte; len]),
        1 => (0usize..200).prop_map(|n| {
            let mut text = String::from("{\"players\":[");
            for i in 0..n {
                text.push_str(&format!("{{\"id\":{i},\"name\":\"p{}\"}},", i % 7));
            }
            text.push_str("]}");
            text.into_bytes()
        }),
        1 => (prop::collection::vec(any::<u8>(), 1..8), 0usize..40)
            .prop_map(|(unit, times)| unit.repeat(times)),
    ]
    .prop_map(Bytes::from)
}

/// Ids over the whole `u64` range, biased towards varint length boundaries.
fn message_id() -> impl Strategy<Value = u64> {
    let boundary = (1u32..=9, 0u64..=2).prop_map(|(groups, delta)| {
        // 2^(7k) - 1, 2^(7k) and 2^(7k) + 1: the edges of a k-byte varint.
        (1u64 << (7 * groups)).wrapping_sub(1).wrapping_add(delta)
    });
    prop_oneof![
        3 => any::<u64>(),
        1 => 0u64..300,
        1 => boundary,
        1 => prop::sample::select(vec![0, 1, 127, 128, 1 << 63, u64::MAX - 1, u64::MAX]),
    ]
}

/// Keeps the longest prefix of whole characters that fits in 255 bytes.
fn fit_route(chars: impl IntoIterator<Item = char>) -> String {
    let mut route = String::new();
    for c in chars {
        if route.len() + c.len_utf8() > 255 {
            break;
        }
        route.push(c);
    }
    route
}

/// Routes of 0..=255 UTF-8 bytes, with 1- to 4-byte characters and routes
/// of exactly 255 bytes.
fn route() -> impl Strategy<Value = String> {
    let multi_byte = prop::sample::select(vec!['a', '.', 'é', 'ß', '€', '中', '😀', '\u{10ffff}']);
    prop_oneof![
        3 => "[a-zA-Z][a-zA-Z0-9_]{0,20}\\.[a-zA-Z0-9_]{1,20}\\.[a-zA-Z0-9_]{1,20}",
        2 => prop::collection::vec(any::<char>(), 0..=255).prop_map(fit_route),
        2 => prop::collection::vec(multi_byte, 0..=255).prop_map(fit_route),
        1 => prop::sample::select(vec![
            String::new(),
            "r".repeat(255),
            "€".repeat(85),
            format!("{}abc", "😀".repeat(63)),
            format!("{}a", "é".repeat(127)),
            " padded.route ".to_owned(),
        ]),
    ]
}

/// A canonical message: the id only where the type carries one, the route
/// only where the type carries one.
fn message() -> impl Strategy<Value = Message> {
    (message_type(), message_id(), route(), body(), any::<bool>()).prop_map(
        |(kind, id, route, body, error)| Message {
            kind,
            id: if kind.has_id() { id } else { 0 },
            route: if kind.has_route() {
                route
            } else {
                String::new()
            },
            body,
            error,
        },
    )
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Reference varint length: one byte per started group of 7 bits.
fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// A dictionary holding some filler routes and, if `route` is given, that
/// route with `code`. Fillers never collide with `route` or `code`.
fn dictionary(route: Option<&str>, code: u16) -> RouteDictionary {
    let mut entries: Vec<(String, u16)> = Vec::new();
    if let Some(route) = route {
        entries.push((route.to_owned(), code));
    }
    for i in 1..=3u16 {
        let filler = format!("filler.route.n{i}");
        if Some(filler.as_str()) != route {
            entries.push((filler, code.wrapping_add(i)));
        }
    }
    RouteDictionary::new(entries).expect("distinct routes and codes")
}

/// Whether a dictionary can hold `route` (dictionaries trim their routes and
/// refuse empty ones, so only such routes can ever be compressed).
fn dictionary_can_hold(route: &str) -> bool {
    !route.is_empty() && route.trim() == route
}

fn encode_message(codec: &MessageCodec, message: &Message) -> Bytes {
    codec.encode_to_bytes(message).expect("encodable message")
}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

fn check_packet_round_trip(packet: &Packet) -> Result<(), TestCaseError> {
    let wire = packet.to_bytes().expect("body within MAX_PACKET_BODY");
    let len = packet.body.len();
    prop_assert_eq!(wire.len(), HEADER_LEN + len);
    prop_assert_eq!(packet.encoded_len(), wire.len());
    prop_assert_eq!(wire[0], packet.kind as u8);
    let len_bytes = u32::try_from(len)
        .expect("checked by to_bytes")
        .to_be_bytes();
    prop_assert_eq!(&wire[1..4], &len_bytes[1..]);
    prop_assert_eq!(&wire[HEADER_LEN..], &packet.body[..]);

    // Two copies back to back, written by the tokio-util Encoder impls
    // (owned and borrowed) when they are built: the same bytes.
    let mut via_encoder = BytesMut::new();
    #[cfg(feature = "tokio-codec")]
    {
        PacketCodec::new()
            .encode(packet, &mut via_encoder)
            .expect("encodable");
        PacketCodec::new()
            .encode(packet.clone(), &mut via_encoder)
            .expect("encodable");
    }
    #[cfg(not(feature = "tokio-codec"))]
    for _ in 0..2 {
        packet.encode(&mut via_encoder).expect("encodable");
    }
    prop_assert_eq!(&via_encoder[..wire.len()], &wire[..]);
    prop_assert_eq!(&via_encoder[wire.len()..], &wire[..]);

    // WebSocket path: exactly one packet per frame.
    let exact = Packet::decode_exact(wire.clone(), MAX_PACKET_BODY).expect("valid frame");
    prop_assert_eq!(&exact, packet);
    // A limit of exactly the body length still accepts it.
    let tight = Packet::decode_exact(wire, len).expect("body fits the limit");
    prop_assert_eq!(&tight, packet);

    // Stream path: both copies come back, nothing is left over.
    let mut codec = PacketCodec::new();
    prop_assert_eq!(
        codec.decode(&mut via_encoder).expect("valid"),
        Some(packet.clone())
    );
    prop_assert_eq!(
        codec.decode(&mut via_encoder).expect("valid"),
        Some(packet.clone())
    );
    prop_assert_eq!(codec.decode(&mut via_encoder).expect("valid"), None);
    prop_assert!(via_encoder.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn packet_round_trips(kind in packet_type(), body in body()) {
        check_packet_round_trip(&Packet::new(kind, body))?;
    }
}

#[test]
fn large_packets_round_trip() {
    for len in [0x1_0000, 0x1_0203, 1 << 20, MAX_PACKET_BODY] {
        // Non-uniform content so a misplaced byte would show.
        let body: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        for kind in [PacketType::Data, PacketType::Handshake] {
            check_packet_round_trip(&Packet::new(kind, body.clone())).unwrap();
        }
    }
    let too_big = Packet::new(PacketType::Data, vec![0u8; MAX_PACKET_BODY + 1]);
    let mut dst = BytesMut::from(&b"kept"[..]);
    assert!(matches!(
        too_big.encode(&mut dst),
        Err(CodecError::PacketTooLarge { len, max: MAX_PACKET_BODY }) if len == MAX_PACKET_BODY + 1
    ));
    assert_eq!(&dst[..], b"kept", "a refused packet writes nothing");
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// Checks one message against one dictionary setting, with compression on
/// and off.
fn check_message_round_trip(
    message: &Message,
    dict: &RouteDictionary,
) -> Result<(), TestCaseError> {
    let plain_codec = MessageCodec::default()
        .with_dictionary(dict.clone())
        .with_compression(false);
    // Threshold 0: Pitaya's rule, compress whenever strictly shorter.
    let zip_codec = MessageCodec::default()
        .with_dictionary(dict.clone())
        .with_compression(true)
        .with_compression_threshold(0);
    let kind = message.kind;
    let code = if kind.has_route() {
        dict.code(&message.route)
    } else {
        None
    };

    // Exact layout of the uncompressed encoding.
    let plain = encode_message(&plain_codec, message);
    let mut flag = (kind as u8) << 1;
    if message.error {
        flag |= 0x20;
    }
    if code.is_some() {
        flag |= 0x01;
    }
    prop_assert_eq!(plain[0], flag, "flag byte");
    let id_len = if kind.has_id() {
        varint_len(message.id)
    } else {
        0
    };
    let route_len = match (kind.has_route(), code) {
        (false, _) => 0,
        (true, Some(_)) => 2,
        (true, None) => 1 + message.route.len(),
    };
    let prefix_len = 1 + id_len + route_len;
    prop_assert_eq!(plain.len(), prefix_len + message.body.len());
    prop_assert_eq!(&plain[prefix_len..], &message.body[..]);
    if let Some(code) = code {
        prop_assert_eq!(&plain[1 + id_len..prefix_len], &code.to_be_bytes()[..]);
    } else if kind.has_route() {
        prop_assert_eq!(usize::from(plain[1 + id_len]), message.route.len());
        prop_assert_eq!(&plain[2 + id_len..prefix_len], message.route.as_bytes());
    }

    // Compression: used iff strictly shorter, and then it is exactly the
    // zlib stream of the body behind the same prefix.
    let zipped = encode_message(&zip_codec, message);
    let deflated = compression::deflate(&message.body);
    let compressed = zipped[0] & 0x10 != 0;
    prop_assert_eq!(compressed, zipped.len() < plain.len());
    prop_assert_eq!(compressed, deflated.len() < message.body.len());
    if compressed {
        prop_assert_eq!(zipped[0], flag | 0x10);
        prop_assert_eq!(&zipped[1..prefix_len], &plain[1..prefix_len]);
        prop_assert_eq!(&zipped[prefix_len..], &deflated[..]);
    } else {
        prop_assert_eq!(&zipped, &plain);
    }

    // Both encodings decode to the original, whichever codec decodes
    // (decoding always honours the compression flag).
    for bytes in [&plain, &zipped] {
        for codec in [&plain_codec, &zip_codec] {
            let decoded = codec.decode((*bytes).clone()).expect("valid message");
            prop_assert_eq!(&decoded, message);
        }
    }

    // A peer without the dictionary cannot resolve a compressed route.
    if let Some(code) = code {
        let result = MessageCodec::default().decode(plain.clone());
        prop_assert!(
            matches!(result, Err(CodecError::UnknownRouteCode(c)) if c == code),
            "expected UnknownRouteCode({}), got {:?}",
            code,
            result
        );
    }

    // Whole data packets: header + the same message bytes, and back.
    for (codec, expected) in [(&plain_codec, &plain), (&zip_codec, &zipped)] {
        let mut wire = BytesMut::new();
        codec.encode_packet(message, &mut wire).expect("encodable");
        let packet = PacketCodec::new()
            .decode(&mut wire)
            .expect("valid packet")
            .expect("whole packet");
        prop_assert!(wire.is_empty());
        prop_assert_eq!(packet.kind, PacketType::Data);
        prop_assert_eq!(&packet.body, expected);
        prop_assert_eq!(&codec.decode(packet.body).expect("valid message"), message);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn message_round_trips_without_dictionary(message in message()) {
        check_message_round_trip(&message, &RouteDictionary::default())?;
        // A dictionary that does not hold the route changes nothing.
        check_message_round_trip(&message, &dictionary(None, 7))?;
    }

    #[test]
    fn message_round_trips_with_dictionary(message in message(), code in any::<u16>()) {
        let holds = message.kind.has_route() && dictionary_can_hold(&message.route);
        let dict = dictionary(holds.then_some(message.route.as_str()), code);
        if message.kind.has_route() {
            prop_assert_eq!(dict.code(&message.route).is_some(), holds);
        }
        check_message_round_trip(&message, &dict)?;
    }

    #[test]
    fn every_flag_combination_round_trips(
        kind in message_type(),
        id in message_id(),
        error in any::<bool>(),
        compressible in any::<bool>(),
        use_dict in any::<bool>(),
    ) {
        // Forces both sides of every flag bit with small, fixed bodies.
        let body = if compressible { Bytes::from(vec![b'x'; 200]) } else { Bytes::from_static(b"{}") };
        let message = Message {
            kind,
            id: if kind.has_id() { id } else { 0 },
            route: if kind.has_route() { "room.room.join".to_owned() } else { String::new() },
            body,
            error,
        };
        let dict = dictionary(use_dict.then_some("room.room.join"), 3);
        check_message_round_trip(&message, &dict)?;
        let zipped = MessageCodec::default().with_dictionary(dict).encode_to_bytes(&message).unwrap();
        prop_assert_eq!(zipped[0] & 0x10 != 0, compressible);
        prop_assert_eq!(zipped[0] & 0x01 != 0, use_dict && kind.has_route());
    }
}

/// Bodies whose zlib form is exactly as long as they are, or one byte
/// shorter: the first must be sent plain, the second compressed.
#[test]
fn compression_threshold_is_strictly_shorter() {
    let mut seed = 0x2545_f491_u32;
    let mut noise = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        seed.to_be_bytes()[0]
    };
    let (mut equal, mut one_shorter) = (0, 0);
    for run in (0..40).step_by(3) {
        for total in 10..60 {
            let mut body = vec![b'a'; run.min(total)];
            body.resize_with(total, &mut noise);
            let deflated = compression::deflate(&body).len();
            let message = Message::response(1, body.clone());
            let bytes = MessageCodec::default()
                .with_compression_threshold(0)
                .encode_to_bytes(&message)
                .unwrap();
            if deflated == body.len() {
                equal += 1;
                assert_eq!(bytes[0] & 0x10, 0, "equal length stays plain: {body:?}");
                assert_eq!(&bytes[2..], &body[..]);
            } else if deflated + 1 == body.len() {
                one_shorter += 1;
                assert_eq!(bytes[0] & 0x10, 0x10, "one byte shorter is compressed");
                assert_eq!(bytes.len(), 2 + deflated);
            }
            let decoded = MessageCodec::default().decode(bytes).unwrap();
            assert_eq!(decoded, message);
        }
    }
    assert!(equal > 0 && one_shorter > 0, "{equal} {one_shorter}");
}

#[test]
fn routes_over_255_bytes_are_refused_unless_in_the_dictionary() {
    let long = "é".repeat(128); // 256 bytes
    for kind in [MessageType::Request, MessageType::Notify, MessageType::Push] {
        let message = Message {
            kind,
            id: 1,
            route: long.clone(),
            body: Bytes::new(),
            error: false,
        };
        assert!(matches!(
            MessageCodec::default().encode_to_bytes(&message),
            Err(CodecError::RouteTooLong(256))
        ));
        let dict = dictionary(Some(&long), 9);
        let codec = MessageCodec::default().with_dictionary(dict);
        let bytes = codec.encode_to_bytes(&message).unwrap();
        let mut expected = message.clone();
        if !kind.has_id() {
            expected.id = 0;
        }
        assert_eq!(codec.decode(bytes).unwrap(), expected);
    }
}

// ---------------------------------------------------------------------------
// Handshakes
// ---------------------------------------------------------------------------

/// JSON values without non-integral floats (which serde_json only
/// round-trips exactly with its `float_roundtrip` feature), plus floats that
/// are exact binary fractions.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-(1i32 << 20)..(1 << 20)).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn client_sys() -> impl Strategy<Value = ClientSys> {
    (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        prop_oneof![Just(String::new()), any::<String>()],
        prop_oneof![Just(String::new()), any::<String>()],
    )
        .prop_map(
            |(platform, lib_version, client_build_number, client_version, client_type, version)| {
                ClientSys {
                    platform,
                    lib_version,
                    client_build_number,
                    client_version,
                    client_type,
                    version,
                }
            },
        )
}

fn handshake_request() -> impl Strategy<Value = HandshakeRequest> {
    let user = prop::option::of(
        prop::collection::btree_map(any::<String>(), json_value(), 0..6)
            .prop_map(|map| map.into_iter().collect::<Map<String, Value>>()),
    );
    (client_sys(), user).prop_map(|(sys, user)| {
        let request = HandshakeRequest {
            sys,
            ..HandshakeRequest::default()
        };
        match user {
            Some(user) => request.with_user(&user),
            None => request,
        }
    })
}

/// Heartbeats that survive "seconds as a JSON number": whole seconds up to
/// 2^53 (serialized as integers, exact as f64), and whole milliseconds below
/// ~46 days, where the f64 nearest to `s.mmm` is within half a nanosecond so
/// the decoder's rounding to the nearest nanosecond restores it exactly.
fn heartbeat() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..=3600).prop_map(Duration::from_secs),
        (0u64..=(1 << 53)).prop_map(Duration::from_secs),
        prop::sample::select(vec![0, 1, 30, 1 << 32, 1 << 53]).prop_map(Duration::from_secs),
        (0u64..4_000_000, 1u32..1000).prop_map(|(s, ms)| Duration::new(s, ms * 1_000_000)),
        (0u64..60, 1u32..1000).prop_map(|(s, ms)| Duration::new(s, ms * 1_000_000)),
    ]
}

fn handshake_response() -> impl Strategy<Value = HandshakeResponse> {
    let code = prop_oneof![Just(200u16), Just(400u16), any::<u16>()];
    let dict = prop_oneof![
        prop::collection::btree_map(any::<String>(), any::<u16>(), 0..8),
        // Large, repetitive dictionaries, which the encoder compresses.
        (0u16..300).prop_map(|n| {
            (0..n)
                .map(|i| (format!("room.room.route{i}"), i))
                .collect::<BTreeMap<_, _>>()
        }),
    ];
    let serializer = prop_oneof![
        Just("json".to_owned()),
        Just("protobuf".to_owned()),
        any::<String>()
    ];
    (code, dict, heartbeat(), serializer).prop_map(|(code, dict, heartbeat, serializer)| {
        HandshakeResponse {
            code,
            sys: ServerSys {
                dict,
                heartbeat,
                serializer,
            },
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn handshake_request_round_trips(request in handshake_request()) {
        let body = request.encode();
        prop_assert_eq!(&HandshakeRequest::decode(&body).expect("own encoding"), &request);
        // Through a handshake packet as well.
        let wire = Packet::new(PacketType::Handshake, body).to_bytes().unwrap();
        let packet = Packet::decode_exact(wire, MAX_PACKET_BODY).unwrap();
        prop_assert_eq!(HandshakeRequest::decode(&packet.body).unwrap(), request);
    }

    #[test]
    fn handshake_response_round_trips(response in handshake_response()) {
        let plain = response.encode(false);
        let json: Value = serde_json::from_slice(&plain).expect("plain JSON");
        // Whole seconds go out as integers (Go clients parse an int),
        // fractions as floats.
        let heartbeat = &json["sys"]["heartbeat"];
        if response.sys.heartbeat.subsec_nanos() == 0 {
            prop_assert_eq!(heartbeat.as_u64(), Some(response.sys.heartbeat.as_secs()));
        } else {
            prop_assert!(heartbeat.is_f64(), "fractional heartbeat {:?}", heartbeat);
        }
        prop_assert_eq!(&HandshakeResponse::decode(&plain).expect("own encoding"), &response);

        // Compression: zlib iff strictly shorter, and it inflates to the
        // plain JSON.
        let zipped = response.encode(true);
        let deflated = compression::deflate(&plain);
        if deflated.len() < plain.len() {
            prop_assert!(compression::is_zlib(&zipped));
            prop_assert_eq!(&zipped[..], &deflated[..]);
            prop_assert_eq!(compression::inflate(&zipped, plain.len()).unwrap(), plain.to_vec());
        } else {
            prop_assert_eq!(&zipped, &plain);
        }
        prop_assert_eq!(HandshakeResponse::decode(&zipped).expect("own encoding"), response);
    }
}

#[test]
fn heartbeat_edge_values_round_trip() {
    for heartbeat in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(1500),
        Duration::from_millis(999),
        Duration::new(3_999_999, 999_000_000),
        Duration::from_secs(30),
        Duration::from_secs(1 << 53),
    ] {
        let response = HandshakeResponse::ok(heartbeat, BTreeMap::new(), "json");
        for compress in [false, true] {
            let decoded = HandshakeResponse::decode(&response.encode(compress)).unwrap();
            assert_eq!(decoded.sys.heartbeat, heartbeat, "compress={compress}");
        }
    }
}
