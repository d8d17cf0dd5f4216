//! Stream framing across read boundaries: a byte stream of several packets
//! decodes to exactly those packets, in order and with nothing left over,
//! however the reads split or merge it, through the `tokio_util` decoder
//! (`decode` and `decode_eof`).
#![cfg(feature = "tokio-codec")]

use bytes::{Bytes, BytesMut};
use pitaya_protocol::codec::{
    CodecError, HEADER_LEN, HandshakeRequest, HandshakeResponse, Message, MessageCodec, Packet,
    PacketCodec, PacketType, RouteDictionary,
};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Encodes `packets` back to back into one byte stream.
fn stream(packets: &[Packet]) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for packet in packets {
        packet.encode(&mut wire).expect("encodable packet");
    }
    wire.to_vec()
}

/// Feeds `reads` one after the other to a fresh codec, decoding everything
/// available after each read, and returns the packets and the leftover.
fn decode_reads<'a>(
    reads: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Vec<Packet>, BytesMut), CodecError> {
    let mut codec = PacketCodec::new();
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        while let Some(packet) = codec.decode(&mut buf)? {
            packets.push(packet);
        }
    }
    // At the end of the stream nothing may be pending.
    if let Some(packet) = codec.decode_eof(&mut buf)? {
        packets.push(packet);
    }
    Ok((packets, buf))
}

/// A conversation's worth of packets: handshake both ways, ack, heartbeats,
/// data messages of all kinds (plain, compressed, dictionary routes), a body
/// whose length needs the middle length byte, empty data and a kick.
fn conversation() -> Vec<Packet> {
    let dict =
        RouteDictionary::from_routes(["room.room.join", "onMessage"]).expect("valid dictionary");
    let codec = MessageCodec::default().with_dictionary(dict.clone());
    let plain = codec.clone().with_compression(false);
    let data = |message: Message| {
        Packet::new(
            PacketType::Data,
            codec.encode_to_bytes(&message).expect("encodable"),
        )
    };
    vec![
        Packet::new(
            PacketType::Handshake,
            HandshakeRequest::go_client_default().encode(),
        ),
        Packet::new(
            PacketType::Handshake,
            HandshakeResponse::ok(std::time::Duration::from_secs(30), dict.to_map(), "json")
                .encode(true),
        ),
        Packet::handshake_ack(),
        data(Message::request(
            1,
            "room.room.join",
            &br#"{"name":"a"}"#[..],
        )),
        Packet::heartbeat(),
        data(Message::response(1, &br#"{"code":0,"result":"ok"}"#[..])),
        data(Message::push("onMessage", vec![b'z'; 300])),
        data(Message::notify("chat.chat.say", &b"{}"[..])),
        Packet::new(PacketType::Data, Bytes::new()),
        data(Message::request(300, "room.room.leave", vec![b'q'; 257])),
        // Sent uncompressed, so its body needs the middle length byte.
        Packet::new(
            PacketType::Data,
            plain
                .encode_to_bytes(&Message::push("onMessage", vec![b'p'; 300]))
                .expect("encodable"),
        ),
        Packet::heartbeat(),
        data(Message::error_response(
            300,
            &br#"{"code":"PIT-500","msg":"boom"}"#[..],
        )),
        Packet::kick(),
    ]
}

#[test]
fn conversation_has_the_intended_shape() {
    let packets = conversation();
    let wire = stream(&packets);
    // A body of 256 bytes or more exercises the middle length byte.
    assert!(packets.iter().any(|p| p.body.len() >= 256));
    // Several empty-bodied packets, including two adjacent headers.
    assert!(packets.iter().filter(|p| p.body.is_empty()).count() >= 4);
    assert!(
        wire.len() > 500 && wire.len() < 4096,
        "{} bytes",
        wire.len()
    );
}

#[test]
fn merged_reads_yield_every_packet_at_once() {
    let packets = conversation();
    let wire = stream(&packets);
    let mut codec = PacketCodec::new();
    let mut buf = BytesMut::from(&wire[..]);
    for expected in &packets {
        assert_eq!(codec.decode(&mut buf).unwrap().as_ref(), Some(expected));
    }
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());

    // Merged reads that also end in the middle of a packet: the whole ones
    // come out, the partial one waits untouched.
    let n = packets.len();
    let start = wire.len() - (HEADER_LEN + packets[n - 2].body.len()) - HEADER_LEN;
    let cut = start + HEADER_LEN + 2;
    let mut buf = BytesMut::from(&wire[..cut]);
    let mut got = Vec::new();
    while let Some(packet) = codec.decode(&mut buf).unwrap() {
        got.push(packet);
    }
    assert_eq!(got, packets[..n - 2]);
    assert_eq!(&buf[..], &wire[start..cut]);
    buf.extend_from_slice(&wire[cut..]);
    assert_eq!(
        codec.decode(&mut buf).unwrap().as_ref(),
        Some(&packets[n - 2])
    );
    assert_eq!(
        codec.decode(&mut buf).unwrap().as_ref(),
        Some(&packets[n - 1])
    );
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
}

#[test]
fn every_two_way_split_yields_the_same_packets() {
    let packets = conversation();
    let wire = stream(&packets);
    for at in 0..=wire.len() {
        let (head, tail) = wire.split_at(at);
        let (got, rest) = decode_reads([head, tail]).unwrap();
        assert_eq!(got, packets, "split at {at}");
        assert!(rest.is_empty(), "split at {at}");
    }
}

#[test]
fn every_three_way_split_of_a_short_stream_yields_the_same_packets() {
    let packets = vec![
        Packet::heartbeat(),
        Packet::new(PacketType::Data, &b"\x04\x01{}"[..]),
        Packet::handshake_ack(),
        Packet::new(PacketType::Handshake, &br#"{"sys":{}}"#[..]),
        Packet::kick(),
    ];
    let wire = stream(&packets);
    for first in 0..=wire.len() {
        for second in first..=wire.len() {
            let reads = [&wire[..first], &wire[first..second], &wire[second..]];
            let (got, rest) = decode_reads(reads).unwrap();
            assert_eq!(got, packets, "splits at {first} and {second}");
            assert!(rest.is_empty());
        }
    }
}

#[test]
fn one_byte_reads_yield_the_same_packets() {
    let packets = conversation();
    let wire = stream(&packets);
    let mut codec = PacketCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut boundaries = Vec::new();
    for (at, byte) in wire.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        while let Some(packet) = codec.decode(&mut buf).unwrap() {
            got.push(packet);
            boundaries.push(at + 1);
        }
    }
    assert_eq!(got, packets);
    assert!(buf.is_empty());
    // Each packet comes out on the very byte that completes it.
    let mut end = 0;
    for (packet, boundary) in packets.iter().zip(&boundaries) {
        end += HEADER_LEN + packet.body.len();
        assert_eq!(*boundary, end);
    }
}

#[test]
fn data_packets_split_anywhere_decode_to_the_original_messages() {
    let codec = MessageCodec::default();
    let messages = vec![
        Message::request(u64::MAX, "a.b.c", vec![b'x'; 1000]),
        Message::push("onMessage", &br#"{"k":"v"}"#[..]),
        Message::response(7, Bytes::new()),
        Message::notify("é.€.😀", (0..=255u8).collect::<Vec<_>>()),
    ];
    let mut wire = BytesMut::new();
    for message in &messages {
        codec.encode_packet(message, &mut wire).unwrap();
    }
    for at in 0..=wire.len() {
        let (head, tail) = wire.split_at(at);
        let (packets, rest) = decode_reads([head, tail]).unwrap();
        assert!(rest.is_empty());
        let decoded: Vec<Message> = packets
            .into_iter()
            .map(|packet| {
                assert_eq!(packet.kind, PacketType::Data);
                codec.decode(packet.body).unwrap()
            })
            .collect();
        assert_eq!(decoded, messages, "split at {at}");
    }
}

#[test]
fn a_stream_ending_mid_packet_is_an_error_at_eof() {
    let packets = conversation();
    let wire = stream(&packets);
    // Cutting at any point that is not a packet boundary leaves bytes that
    // `decode_eof` refuses; cutting at a boundary ends cleanly.
    let mut boundaries = vec![0];
    for packet in &packets {
        boundaries.push(boundaries.last().unwrap() + HEADER_LEN + packet.body.len());
    }
    for cut in 0..=wire.len() {
        let result = decode_reads([&wire[..cut]]);
        if boundaries.contains(&cut) {
            let (got, rest) = result.unwrap();
            let whole = boundaries.iter().position(|&b| b == cut).unwrap();
            assert_eq!(got, packets[..whole], "cut at {cut}");
            assert!(rest.is_empty());
        } else {
            assert!(
                matches!(result, Err(CodecError::Io(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Random packets, random reads
// ---------------------------------------------------------------------------

fn packet() -> impl Strategy<Value = Packet> {
    let kind = prop::sample::select(vec![
        PacketType::Handshake,
        PacketType::HandshakeAck,
        PacketType::Heartbeat,
        PacketType::Data,
        PacketType::Kick,
    ]);
    let body = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 200..700),
    ];
    (kind, body).prop_map(|(kind, body)| Packet::new(kind, body))
}

/// Read sizes: single bytes, small reads, reads spanning several packets.
fn read_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![1usize]),
        4 => prop::collection::vec(
            prop_oneof![3 => Just(1usize), 3 => 1usize..=8, 2 => 1usize..=2000],
            1..40,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_reads_yield_the_same_packets(
        packets in prop::collection::vec(packet(), 1..16),
        sizes in read_sizes(),
    ) {
        let wire = stream(&packets);
        let mut reads = Vec::new();
        let mut rest = &wire[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (read, tail) = rest.split_at((*size).min(rest.len()));
            reads.push(read);
            rest = tail;
        }
        prop_assert_eq!(reads.concat(), wire.clone());
        let (got, rest) = decode_reads(reads).unwrap();
        prop_assert_eq!(got, packets);
        prop_assert!(rest.is_empty());
    }

    /// Arbitrary reads where some are empty (a read of zero bytes must not
    /// disturb anything).
    #[test]
    fn empty_reads_change_nothing(
        packets in prop::collection::vec(packet(), 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let wire = stream(&packets);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        // Repeated points make empty reads.
        let mut reads = Vec::new();
        let mut start = 0;
        for point in points {
            reads.push(&wire[start..point]);
            start = point;
        }
        reads.push(&wire[start..]);
        let (got, rest) = decode_reads(reads).unwrap();
        prop_assert_eq!(got, packets);
        prop_assert!(rest.is_empty());
    }
}
