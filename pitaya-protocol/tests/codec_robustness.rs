//! Hostile input: arbitrary bytes never panic and are judged exactly as a
//! simple reference parser judges them, the stream decoder never buffers
//! more than one maximum-sized frame, and zlib bombs stop at the inflate
//! limit.

use bytes::{Bytes, BytesMut};
use pitaya_protocol::codec::{
    CodecError, DEFAULT_MAX_INFLATE_RATIO, DEFAULT_MAX_INFLATED_LEN, HEADER_LEN, HandshakeRequest,
    HandshakeResponse, MAX_PACKET_BODY, Message, MessageCodec, MessageType, Packet, PacketCodec,
    RouteDictionary, compression,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Reference model of packet framing
// ---------------------------------------------------------------------------

/// How a byte stream ends, according to the reference model.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte was consumed or the rest is an incomplete packet.
    NeedMore,
    /// A header has a type byte outside 1..=5.
    InvalidType(u8),
    /// A header announces a body above the maximum.
    TooLarge(usize),
}

/// Frames `bytes` the way the protocol says: packets (type, body) until the
/// bytes run out or a header is refused.
fn model_frames(bytes: &[u8], max_body: usize) -> (Vec<(u8, Vec<u8>)>, End) {
    let mut packets = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.len() < HEADER_LEN {
            return (packets, End::NeedMore);
        }
        let kind = rest[0];
        if !(1..=5).contains(&kind) {
            return (packets, End::InvalidType(kind));
        }
        let len = usize::from(rest[1]) << 16 | usize::from(rest[2]) << 8 | usize::from(rest[3]);
        if len > max_body {
            return (packets, End::TooLarge(len));
        }
        if rest.len() < HEADER_LEN + len {
            return (packets, End::NeedMore);
        }
        packets.push((kind, rest[HEADER_LEN..HEADER_LEN + len].to_vec()));
        rest = &rest[HEADER_LEN + len..];
    }
}

/// Runs `codec` over `buf` until it wants more bytes or fails.
fn drain(
    codec: &mut PacketCodec,
    buf: &mut BytesMut,
    out: &mut Vec<(u8, Vec<u8>)>,
) -> Result<(), CodecError> {
    while let Some(packet) = codec.decode(buf)? {
        out.push((packet.kind as u8, packet.body.to_vec()));
    }
    Ok(())
}

fn end_of(result: Result<(), CodecError>) -> End {
    match result {
        Ok(()) => End::NeedMore,
        Err(CodecError::InvalidPacketType(kind)) => End::InvalidType(kind),
        Err(CodecError::PacketTooLarge { len, .. }) => End::TooLarge(len),
        Err(other) => panic!("unexpected decoder error {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Byte streams that are mostly packet-shaped: valid packets, headers with
/// huge or bad lengths or types, and raw garbage, in any order.
fn hostile_stream(max_body: usize) -> impl Strategy<Value = Vec<u8>> {
    let valid = (1u8..=5, prop::collection::vec(any::<u8>(), 0..=64)).prop_map(|(kind, body)| {
        let mut bytes = header(kind, body.len());
        bytes.extend_from_slice(&body);
        bytes
    });
    let near_max = (1u8..=5, (max_body.saturating_sub(8))..=max_body).prop_map(|(kind, len)| {
        let mut bytes = header(kind, len);
        bytes.resize(HEADER_LEN + len, 0xa5);
        bytes
    });
    let announce = (1u8..=5, 0usize..=MAX_PACKET_BODY).prop_map(|(kind, len)| header(kind, len));
    let huge = (1u8..=5).prop_map(|kind| vec![kind, 0xff, 0xff, 0xff]);
    let just_over = (1u8..=5).prop_map(move |kind| header(kind, max_body + 1));
    let garbage = prop::collection::vec(any::<u8>(), 0..32);
    let segment = prop_oneof![
        6 => valid,
        1 => near_max,
        1 => announce,
        1 => huge,
        1 => just_over,
        2 => garbage,
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..2048),
        3 => prop::collection::vec(segment, 0..12).prop_map(|parts| parts.concat()),
    ]
}

/// A header of `kind` announcing `len` (at most `MAX_PACKET_BODY`).
fn header(kind: u8, len: usize) -> Vec<u8> {
    let len = u32::try_from(len)
        .expect("len fits in 3 bytes")
        .to_be_bytes();
    vec![kind, len[1], len[2], len[3]]
}

/// Chunk sizes for splitting a stream into reads, biased towards 1 byte.
fn chunk_sizes(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![2 => Just(1usize), 3 => 1..=max], 1..64)
}

/// Splits `bytes` into reads of the given sizes (cycled).
fn chunks<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().expect("non-empty sizes")).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        out.push(chunk);
        rest = tail;
    }
    out
}

// ---------------------------------------------------------------------------
// Packets: arbitrary bytes
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// One read holding arbitrary bytes: the codec yields exactly the
    /// model's packets and stops where the model stops; after `Ok(None)` the
    /// unconsumed bytes are left untouched.
    #[test]
    fn packet_codec_matches_model_on_one_read(
        max_body in prop_oneof![Just(0usize), Just(16), Just(1024), Just(MAX_PACKET_BODY)],
        bytes in hostile_stream(1024),
    ) {
        let (expected, expected_end) = model_frames(&bytes, max_body);
        let mut codec = PacketCodec::with_max_body_len(max_body);
        prop_assert_eq!(codec.max_body_len(), max_body);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut got = Vec::new();
        let end = end_of(drain(&mut codec, &mut buf, &mut got));
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(&end, &expected_end);
        let consumed: usize = got.iter().map(|(_, body)| HEADER_LEN + body.len()).sum();
        prop_assert_eq!(&buf[..], &bytes[consumed..], "unconsumed bytes are kept as they were");
    }

    /// The same arbitrary bytes split into arbitrary reads end the same way.
    #[test]
    fn packet_codec_matches_model_on_any_chunking(
        bytes in hostile_stream(256),
        sizes in chunk_sizes(300),
    ) {
        let (expected, expected_end) = model_frames(&bytes, 256);
        let mut codec = PacketCodec::with_max_body_len(256);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut result = Ok(());
        for chunk in chunks(&bytes, &sizes) {
            buf.extend_from_slice(chunk);
            result = drain(&mut codec, &mut buf, &mut got);
            if result.is_err() {
                break;
            }
        }
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(end_of(result), expected_end);
    }

    /// `decode_exact` (one WebSocket message) accepts exactly the frames
    /// holding one whole packet within the limit.
    #[test]
    fn decode_exact_matches_model(
        max_body in prop_oneof![Just(0usize), Just(64), Just(MAX_PACKET_BODY)],
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            hostile_stream(64),
        ],
    ) {
        let result = Packet::decode_exact(Bytes::from(bytes.clone()), max_body);
        if bytes.len() < HEADER_LEN {
            prop_assert!(matches!(result, Err(CodecError::Truncated(_))), "{:?}", result);
            return Ok(());
        }
        let announced = usize::from(bytes[1]) << 16 | usize::from(bytes[2]) << 8 | usize::from(bytes[3]);
        let actual = bytes.len() - HEADER_LEN;
        match result {
            Ok(packet) => {
                prop_assert!((1..=5).contains(&bytes[0]));
                prop_assert_eq!(packet.kind as u8, bytes[0]);
                prop_assert!(announced <= max_body);
                prop_assert_eq!(announced, actual);
                prop_assert_eq!(&packet.body[..], &bytes[HEADER_LEN..]);
            }
            Err(CodecError::InvalidPacketType(kind)) => {
                prop_assert_eq!(kind, bytes[0]);
                prop_assert!(!(1..=5).contains(&kind));
            }
            Err(CodecError::PacketTooLarge { len, max }) => {
                prop_assert!((1..=5).contains(&bytes[0]));
                prop_assert_eq!((len, max), (announced, max_body));
                prop_assert!(len > max);
            }
            Err(CodecError::PacketLengthMismatch { announced: a, actual: b }) => {
                prop_assert!((1..=5).contains(&bytes[0]));
                prop_assert!(announced <= max_body);
                prop_assert_eq!((a, b), (announced, actual));
                prop_assert_ne!(a, b);
            }
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }
}

// ---------------------------------------------------------------------------
// Packets: bounded buffering
// ---------------------------------------------------------------------------

const SMALL_MAX: usize = 1024;
const MAX_READ: usize = 64;

/// The bound on `BytesMut::capacity()` while the codec frames a stream.
///
/// Every reservation made on the buffer asks for at most
/// `R = HEADER_LEN + SMALL_MAX + MAX_READ` bytes in total: the codec's own
/// reservation is for one header and a body it accepted (`<= SMALL_MAX`),
/// and a read appends `<= MAX_READ` bytes to less than one unfinished frame
/// (`< HEADER_LEN + SMALL_MAX`, else the codec would have framed it).
/// `BytesMut` (bytes 1.x) only grows by reallocating to
/// `max(2 * old_capacity, offset + requested)` where `offset + len <=
/// old_capacity`, and only when the request does not fit, which cannot
/// happen once the allocation reaches `2R`; so the allocation stays below
/// `4R`. A decoder that reserved what a header announces before checking
/// it would reach 16 MiB here.
const CAPACITY_BOUND: usize = 4 * (HEADER_LEN + SMALL_MAX + MAX_READ);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packet_codec_buffers_at_most_one_max_frame(
        bytes in hostile_stream(SMALL_MAX),
        sizes in chunk_sizes(MAX_READ),
        keep_packets in any::<bool>(),
    ) {
        let mut codec = PacketCodec::with_max_body_len(SMALL_MAX);
        let mut buf = BytesMut::new();
        let mut kept = Vec::new();
        'reads: for chunk in chunks(&bytes, &sizes) {
            buf.extend_from_slice(chunk);
            prop_assert!(buf.capacity() < CAPACITY_BOUND, "capacity {} after a read", buf.capacity());
            loop {
                let (len_before, capacity_before) = (buf.len(), buf.capacity());
                let result = codec.decode(&mut buf);
                prop_assert!(buf.capacity() < CAPACITY_BOUND, "capacity {} after decode", buf.capacity());
                match result {
                    Ok(Some(packet)) => {
                        prop_assert!(packet.body.len() <= SMALL_MAX);
                        // Holding on to bodies keeps the buffer shared, which
                        // takes a different growth path in `BytesMut`.
                        if keep_packets {
                            kept.push(packet);
                        }
                    }
                    Ok(None) => {
                        prop_assert_eq!(buf.len(), len_before, "nothing consumed");
                        // Nothing is reserved for an announced frame: the
                        // buffer grows only with the bytes that arrive.
                        prop_assert_eq!(buf.capacity(), capacity_before);
                        if buf.len() >= HEADER_LEN {
                            let announced = usize::from(buf[1]) << 16
                                | usize::from(buf[2]) << 8
                                | usize::from(buf[3]);
                            prop_assert!(announced <= SMALL_MAX);
                        }
                        continue 'reads;
                    }
                    Err(err) => {
                        // Refused before reserving or consuming anything.
                        prop_assert_eq!(buf.len(), len_before);
                        prop_assert_eq!(buf.capacity(), capacity_before);
                        if let CodecError::PacketTooLarge { len, max } = err {
                            prop_assert!(len > SMALL_MAX);
                            prop_assert_eq!(max, SMALL_MAX);
                        } else {
                            prop_assert!(matches!(err, CodecError::InvalidPacketType(_)), "{:?}", err);
                        }
                        break 'reads;
                    }
                }
            }
        }
    }

    /// A header announcing more than the maximum is refused as soon as its
    /// 4 bytes are in, whatever follows, without reserving anything.
    #[test]
    fn oversize_header_is_refused_before_buffering(
        kind in 1u8..=5,
        announced in prop_oneof![Just(SMALL_MAX + 1), Just(MAX_PACKET_BODY), (SMALL_MAX + 1)..=MAX_PACKET_BODY],
        split in 0usize..=HEADER_LEN,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut codec = PacketCodec::with_max_body_len(SMALL_MAX);
        let mut wire = header(kind, announced);
        wire.extend_from_slice(&tail);
        let mut buf = BytesMut::from(&wire[..split]);
        if split < HEADER_LEN {
            prop_assert!(codec.decode(&mut buf).unwrap().is_none());
            buf.extend_from_slice(&wire[split..]);
        }
        let (len, capacity) = (buf.len(), buf.capacity());
        let err = codec.decode(&mut buf).unwrap_err();
        prop_assert!(
            matches!(err, CodecError::PacketTooLarge { len: l, max: SMALL_MAX } if l == announced),
            "{:?}", err
        );
        prop_assert_eq!((buf.len(), buf.capacity()), (len, capacity));
    }
}

#[test]
fn max_body_len_is_capped_at_the_protocol_maximum() {
    assert_eq!(
        PacketCodec::with_max_body_len(usize::MAX).max_body_len(),
        MAX_PACKET_BODY
    );
    assert_eq!(PacketCodec::new().max_body_len(), MAX_PACKET_BODY);
    // With the protocol maximum no 3-byte length is too large.
    let mut buf = BytesMut::from(&[0x04, 0xff, 0xff, 0xff][..]);
    assert!(PacketCodec::new().decode(&mut buf).unwrap().is_none());
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

fn dictionary() -> RouteDictionary {
    RouteDictionary::new([("room.room.join", 1), ("onMessage", 2), ("a", 0xffff)])
        .expect("valid dictionary")
}

/// Checks what a successful decode of arbitrary `bytes` may return.
fn check_decoded(
    bytes: &[u8],
    result: Result<Message, CodecError>,
    max_inflated: usize,
) -> Result<(), TestCaseError> {
    let Ok(message) = result else {
        return Ok(());
    };
    let flag = bytes[0];
    prop_assert_eq!(message.kind as u8, (flag >> 1) & 0x07);
    prop_assert_eq!(message.error, flag & 0x20 != 0);
    if !message.kind.has_id() {
        prop_assert_eq!(message.id, 0);
    }
    if !message.kind.has_route() {
        prop_assert_eq!(message.route.as_str(), "");
    }
    if flag & 0x10 == 0 {
        prop_assert!(
            bytes.ends_with(&message.body),
            "plain body is the tail of the input"
        );
    } else {
        prop_assert!(message.body.len() <= max_inflated);
    }
    Ok(())
}

/// A valid message prefix (flag, id, route) with the body compression bit
/// set, followed by `tail` as the supposed zlib stream.
fn compressed_flagged(kind: MessageType, id: u64, error: bool, tail: &[u8]) -> Vec<u8> {
    let message = Message {
        kind,
        id: if kind.has_id() { id } else { 0 },
        route: if kind.has_route() {
            "room.room.join".to_owned()
        } else {
            String::new()
        },
        body: Bytes::new(),
        error,
    };
    let prefix = MessageCodec::default()
        .with_compression(false)
        .encode_to_bytes(&message)
        .expect("encodable");
    let mut bytes = prefix.to_vec();
    bytes[0] |= 0x10;
    bytes.extend_from_slice(tail);
    bytes
}

fn message_kind() -> impl Strategy<Value = MessageType> {
    prop::sample::select(vec![
        MessageType::Request,
        MessageType::Notify,
        MessageType::Response,
        MessageType::Push,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_decode_never_panics(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            // Valid-looking flag bytes (types 0..=3, any other bits).
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(flag, rest)| [vec![flag & 0xf7], rest].concat()),
        ],
    ) {
        let with_dict = MessageCodec::default().with_dictionary(dictionary());
        let limited = MessageCodec::default().with_max_inflated_len(256);
        for (codec, max) in [(&MessageCodec::default(), MAX_PACKET_BODY), (&with_dict, MAX_PACKET_BODY), (&limited, 256)] {
            let result = codec.decode(Bytes::from(bytes.clone()));
            if bytes.is_empty() {
                prop_assert!(matches!(result, Err(CodecError::Truncated(_))));
            }
            check_decoded(&bytes, result, max)?;
        }
    }

    /// The compression bit with whatever follows: garbage, a zlib magic and
    /// garbage, a truncated or corrupted real stream, or a real stream.
    #[test]
    fn compressed_bodies_never_panic_and_respect_the_limit(
        kind in message_kind(),
        id in any::<u64>(),
        error in any::<bool>(),
        plain in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            (any::<u8>(), 0usize..2000).prop_map(|(b, n)| vec![b; n]),
        ],
        garbage in prop::collection::vec(any::<u8>(), 0..300),
        cut in any::<prop::sample::Index>(),
        flip in (any::<prop::sample::Index>(), 1u8..=255),
        variant in 0u8..5,
    ) {
        const MAX: usize = 512;
        let deflated = compression::deflate(&plain);
        let tail = match variant {
            0 => garbage,
            1 => [&[0x78, 0x9c][..], &garbage].concat(),
            2 => deflated[..cut.index(deflated.len())].to_vec(),
            3 => {
                let mut corrupted = deflated;
                let at = flip.0.index(corrupted.len());
                corrupted[at] ^= flip.1;
                corrupted
            }
            _ => deflated,
        };
        let bytes = compressed_flagged(kind, id, error, &tail);
        for max in [MAX, MAX_PACKET_BODY] {
            let codec = MessageCodec::default().with_max_inflated_len(max);
            let result = codec.decode(Bytes::from(bytes.clone()));
            match variant {
                // A zlib stream cut short never completes.
                2 => prop_assert!(
                    matches!(result, Err(CodecError::Inflate(_) | CodecError::InflatedTooLarge { .. })),
                    "{:?}", result
                ),
                4 if plain.len() <= max => {
                    let message = result.expect("a real zlib stream within the limit");
                    prop_assert_eq!(&message.body[..], &plain[..]);
                    prop_assert_eq!(message.kind, kind);
                }
                4 => prop_assert!(
                    matches!(result, Err(CodecError::InflatedTooLarge { max: m }) if m == max),
                    "{:?}", result
                ),
                _ => check_decoded(&bytes, result, max)?,
            }
        }
    }
}

#[test]
fn zlib_bomb_in_a_data_packet_stops_at_the_inflate_limit() {
    // 16 MiB of zeros deflate to about 16 KiB.
    let bomb = compression::deflate(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 20_000, "bomb is {} bytes", bomb.len());
    for kind in [
        MessageType::Request,
        MessageType::Notify,
        MessageType::Response,
        MessageType::Push,
    ] {
        let message = compressed_flagged(kind, 42, false, &bomb);
        // The packet itself is small enough for a modest frame limit.
        let mut wire = header(0x04, message.len());
        wire.extend_from_slice(&message);
        let mut buf = BytesMut::from(&wire[..]);
        let packet = PacketCodec::with_max_body_len(64 << 10)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        let codec = MessageCodec::default().with_max_inflated_len(4096);
        assert!(
            matches!(
                codec.decode(packet.body.clone()),
                Err(CodecError::InflatedTooLarge { max: 4096 })
            ),
            "{kind:?}"
        );
        // The default limits refuse it too: by the 1 MiB size bound, and
        // with a size bound of a whole packet, by its expansion ratio.
        assert!(matches!(
            MessageCodec::default().decode(packet.body.clone()),
            Err(CodecError::InflatedTooLarge {
                max: DEFAULT_MAX_INFLATED_LEN
            })
        ));
        assert!(matches!(
            MessageCodec::default()
                .with_max_inflated_len(MAX_PACKET_BODY)
                .decode(packet.body),
            Err(CodecError::InflateRatioExceeded {
                ratio: DEFAULT_MAX_INFLATE_RATIO
            })
        ));
    }
}

#[test]
fn inflate_limit_is_inclusive() {
    let codec = MessageCodec::default().with_max_inflated_len(4096);
    for (len, fits) in [(0, true), (4095, true), (4096, true), (4097, false)] {
        let bytes = compressed_flagged(
            MessageType::Response,
            1,
            false,
            &compression::deflate(&vec![7u8; len]),
        );
        let result = codec.decode(Bytes::from(bytes));
        if fits {
            assert_eq!(result.unwrap().body.len(), len);
        } else {
            assert!(matches!(
                result,
                Err(CodecError::InflatedTooLarge { max: 4096 })
            ));
        }
    }
    // A limit of zero still admits an empty body.
    let empty = compressed_flagged(MessageType::Push, 0, false, &compression::deflate(b""));
    let zero = MessageCodec::default().with_max_inflated_len(0);
    assert!(zero.decode(Bytes::from(empty)).unwrap().body.is_empty());
}

// ---------------------------------------------------------------------------
// Handshakes
// ---------------------------------------------------------------------------

fn handshake_bytes() -> impl Strategy<Value = Vec<u8>> {
    let json_ish = "[{}\\[\\]\":,0-9a-zA-Z .eE+-]{0,200}".prop_map(String::into_bytes);
    let keyed = (
        prop::sample::select(vec![
            "{\"sys\":",
            "{\"user\":",
            "{\"code\":200,\"sys\":",
            "{\"sys\":{\"heartbeat\":",
            "{\"sys\":{\"dict\":",
            "{\"sys\":{\"platform\":",
        ]),
        "[{}\\[\\]\":,0-9a-z .eE+-]{0,100}",
    )
        .prop_map(|(head, rest)| format!("{head}{rest}").into_bytes());
    let garbage = prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        2 => garbage.clone(),
        2 => json_ish.clone(),
        2 => keyed.clone(),
        1 => garbage.clone().prop_map(|g| [&[0x78, 0x9c][..], &g].concat()),
        1 => garbage.prop_map(|g| [&[0x1f, 0x8b, 0x08, 0x00][..], &g].concat()),
        1 => prop_oneof![json_ish, keyed].prop_map(|j| compression::deflate(&j)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn handshake_decoders_never_panic(bytes in handshake_bytes()) {
        let request = HandshakeRequest::decode(&bytes);
        let response = HandshakeResponse::decode(&bytes);
        // Requests are plain JSON: a zlib or gzip body is never one.
        if compression::looks_compressed(&bytes) {
            prop_assert!(request.is_err());
        }
        // Anything accepted re-encodes to something that decodes the same:
        // the user block is kept raw, byte for byte.
        if let Ok(request) = request {
            let again = HandshakeRequest::decode(&request.encode()).unwrap();
            prop_assert_eq!(&again.sys, &request.sys);
            prop_assert_eq!(again.user_json(), request.user_json());
        }
        if let Ok(response) = response {
            for compress in [false, true] {
                let again = HandshakeResponse::decode(&response.encode(compress)).unwrap();
                prop_assert_eq!(&again.sys.dict, &response.sys.dict);
                prop_assert_eq!(again.code, response.code);
                prop_assert_eq!(&again.sys.serializer, &response.sys.serializer);
            }
        }
    }
}

#[test]
fn deeply_nested_handshakes_are_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let mut request = b"{\"user\":{\"a\":".to_vec();
    request.extend(std::iter::repeat_n(b'[', depth));
    assert!(HandshakeRequest::decode(&request).is_err());
    let mut response = b"{\"code\":200,\"sys\":{\"dict\":{\"a\":".to_vec();
    response.extend(std::iter::repeat_n(b'[', depth));
    assert!(HandshakeResponse::decode(&response).is_err());
    assert!(HandshakeResponse::decode(&compression::deflate(&response)).is_err());
}

#[test]
fn handshake_response_bomb_is_refused() {
    // More than the 1 MiB a client inflates, hidden in ~1 KiB of zlib.
    let mut json = b"{\"code\":200,\"sys\":{\"serializer\":\"".to_vec();
    json.extend(std::iter::repeat_n(b'a', 2 << 20));
    json.extend_from_slice(b"\"}}");
    let bomb = compression::deflate(&json);
    assert!(bomb.len() < 4096);
    assert!(matches!(
        HandshakeResponse::decode(&bomb),
        Err(CodecError::InflatedTooLarge { .. })
    ));
}
