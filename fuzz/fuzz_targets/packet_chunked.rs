//! `PacketCodec` (the TCP/TLS framer) against a reference model, fed whole
//! and in arbitrary chunks, plus `Packet::decode_exact` (WebSocket frames).
//!
//! Input layout (all read with `arbitrary::Unstructured`, one byte each):
//!
//! ```text
//! byte 0      max body: < 0x80 -> PacketCodec::with_max_body_len(byte),
//!             else PacketCodec::new() (MAX_PACKET_BODY)
//! byte 1      n = byte % 16 chunk sizes follow (0 -> the stream is fed whole)
//! n bytes     chunk sizes 0..=255, used in a cycle until the stream is fed
//! rest        the byte stream
//! ```
//!
//! Invariants:
//! - whole-buffer decoding yields exactly what a straightforward model of
//!   the framing (`type | len24 | body`) yields: same packets, same error
//!   at the same place, same unconsumed tail;
//! - chunked decoding yields the same sequence and tail;
//! - the decoder's buffer never holds much more memory than was fed
//!   (`capacity <= 2 * fed + SLACK`): an announced length alone must not
//!   make it allocate;
//! - every header announcing more than the maximum is an error, before the
//!   body arrives;
//! - `decode_exact` agrees with the model on a single-packet frame.

#![no_main]

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pitaya_core::codec::{CodecError, HEADER_LEN, MAX_PACKET_BODY, Packet, PacketCodec};

/// Allowance over `2 * fed` for the allocator's and `BytesMut`'s rounding.
const SLACK: usize = 64;

/// What decoding a stream produced: the packets, how it ended, and the
/// bytes left in the buffer.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    packets: Vec<(u8, Vec<u8>)>,
    /// `None`: ran out of input; `Some(debug string)`: stopped on an error.
    error: Option<String>,
    rest: Vec<u8>,
}

/// The framing as the spec describes it, with no buffering subtleties.
fn model(stream: &[u8], max: usize) -> Outcome {
    let mut packets = Vec::new();
    let mut at = 0;
    let error = loop {
        let rest = &stream[at..];
        if rest.len() < HEADER_LEN {
            break None;
        }
        if !(1..=5).contains(&rest[0]) {
            break Some(format!("{:?}", CodecError::InvalidPacketType(rest[0])));
        }
        let len = usize::from(rest[1]) << 16 | usize::from(rest[2]) << 8 | usize::from(rest[3]);
        if len > max {
            break Some(format!("{:?}", CodecError::PacketTooLarge { len, max }));
        }
        if rest.len() < HEADER_LEN + len {
            break None;
        }
        packets.push((rest[0], rest[HEADER_LEN..HEADER_LEN + len].to_vec()));
        at += HEADER_LEN + len;
    };
    Outcome {
        packets,
        error,
        rest: stream[at..].to_vec(),
    }
}

/// Decodes everything `buf` holds; `Err` stops the stream (as `FramedRead`
/// does). Returns true once an error was seen.
fn drain(
    codec: &mut PacketCodec,
    buf: &mut BytesMut,
    fed: usize,
    max: usize,
    out: &mut Outcome,
) -> bool {
    loop {
        let result = codec.decode(buf);
        assert!(
            buf.capacity() <= 2 * fed + SLACK,
            "decoder buffer capacity {} after {} bytes fed (max body {})",
            buf.capacity(),
            fed,
            max,
        );
        match result {
            Ok(Some(packet)) => {
                assert!(packet.body.len() <= max, "body over the maximum accepted");
                out.packets.push((packet.kind as u8, packet.body.to_vec()));
            }
            Ok(None) => return false,
            Err(err) => {
                out.error = Some(format!("{err:?}"));
                return true;
            }
        }
    }
}

fn decode_chunked(stream: &[u8], chunks: &[usize], max: usize) -> Outcome {
    let mut codec = PacketCodec::with_max_body_len(max);
    let mut buf = BytesMut::new();
    let mut out = Outcome {
        packets: Vec::new(),
        error: None,
        rest: Vec::new(),
    };
    let mut fed = 0;
    let mut sizes = chunks.iter().copied().cycle();
    // At least one byte per full cycle, so the loop always ends.
    let cycle_total: usize = chunks.iter().sum();
    let mut stopped = false;
    while fed < stream.len() {
        let mut size = sizes.next().unwrap_or(stream.len());
        if cycle_total == 0 {
            size = stream.len();
        }
        let end = (fed + size).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        if drain(&mut codec, &mut buf, fed, max, &mut out) {
            stopped = true;
            break;
        }
    }
    if !stopped {
        // Decoding again with nothing new is harmless (no packet, no error).
        let before = out.packets.len();
        let again = drain(&mut codec, &mut buf, fed, max, &mut out);
        assert!(
            !again && out.packets.len() == before,
            "decode with no new bytes changed the outcome"
        );
    }
    // On an error the decoder consumed nothing of the bad packet: the
    // buffer starts at its header (chunked: possibly not all of it fed).
    out.rest = buf.to_vec();
    out
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let selector: u8 = u.arbitrary().unwrap_or(0xff);
    let max = if selector < 0x80 {
        usize::from(selector)
    } else {
        MAX_PACKET_BODY
    };
    let count: u8 = u.arbitrary().unwrap_or(0);
    let chunks: Vec<usize> = (0..count % 16)
        .map(|_| usize::from(u.arbitrary::<u8>().unwrap_or(1)))
        .collect();
    let stream = u.take_rest();

    let codec = if max == MAX_PACKET_BODY {
        PacketCodec::new()
    } else {
        PacketCodec::with_max_body_len(max)
    };
    assert_eq!(codec.max_body_len(), max);

    let expected = model(stream, max);

    // Whole buffer at once.
    let whole = decode_chunked(stream, &[], max);
    assert_eq!(
        whole, expected,
        "whole-buffer decoding differs from the model"
    );

    // Arbitrary chunks.
    if !chunks.is_empty() {
        let chunked = decode_chunked(stream, &chunks, max);
        assert_eq!(
            chunked.packets, expected.packets,
            "chunking changed the packets"
        );
        assert_eq!(chunked.error, expected.error, "chunking changed the error");
        if expected.error.is_none() {
            assert_eq!(chunked.rest, expected.rest, "chunking changed the tail");
        } else {
            assert!(
                expected.rest.starts_with(&chunked.rest),
                "chunked tail is not a prefix of the model's"
            );
        }
    }

    // Oversize headers are refused as soon as the header is complete.
    if stream.len() >= HEADER_LEN && (1..=5).contains(&stream[0]) {
        let len =
            usize::from(stream[1]) << 16 | usize::from(stream[2]) << 8 | usize::from(stream[3]);
        let mut header_only = BytesMut::from(&stream[..HEADER_LEN]);
        let result = PacketCodec::with_max_body_len(max).decode(&mut header_only);
        if len > max {
            assert!(
                matches!(result, Err(CodecError::PacketTooLarge { len: l, max: m }) if l == len && m == max),
                "header announcing {len} > {max} not refused: {result:?}"
            );
        } else if len > 0 {
            assert!(
                matches!(result, Ok(None)),
                "incomplete packet decoded: {result:?}"
            );
        }
    }

    // A WebSocket frame holds exactly one packet.
    let exact = Packet::decode_exact(Bytes::copy_from_slice(stream), max);
    let single =
        expected.error.is_none() && expected.packets.len() == 1 && expected.rest.is_empty();
    match &exact {
        Ok(packet) => {
            assert!(
                single,
                "decode_exact accepted what the stream model does not see as one packet"
            );
            assert_eq!(
                (packet.kind as u8, packet.body.to_vec()),
                expected.packets[0]
            );
            assert_eq!(packet.encoded_len(), stream.len());
            assert_eq!(
                &packet.to_bytes().expect("re-encode")[..],
                stream,
                "re-encoding differs"
            );
        }
        Err(_) => assert!(!single, "decode_exact refused a single whole packet"),
    }
});
