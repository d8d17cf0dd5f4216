//! zlib and gzip inflation with an output bound, checked against flate2's
//! streaming decoder, plus deflate -> inflate round trips at the bound.
//!
//! Input layout: bytes 0..3 are a big-endian bound, taken modulo
//! `1 MiB + 1`; byte 3 is a ratio bound for `inflate_bounded` (0 = none);
//! the rest is the compressed stream (and, for the round trips, the plain
//! text).
//!
//! Invariants:
//! - `inflate`, `gunzip` and `inflate_if_compressed` never panic and never
//!   return more than the bound (except `inflate_if_compressed` on input
//!   without a magic, which it returns as is);
//! - `inflate` agrees with flate2's `ZlibDecoder`: an `Ok` is exactly what
//!   the reference decodes, `InflatedTooLarge` means the reference produced
//!   more than the bound, and a stream the reference refuses is refused;
//! - `inflate_bounded` with a ratio is `inflate`, except that it refuses
//!   (`InflateRatioExceeded`) exactly the outputs longer than both
//!   `RATIO_FREE_LEN` and `ratio * input length` (when that is below the
//!   size bound);
//! - `deflate(x)` inflates back to `x` with the bound `x.len()`, and is
//!   refused as too large with `x.len() - 1`; `deflate_if_smaller` output
//!   is strictly shorter and inflates back to `x`.

#![no_main]

use std::io::Read;

use flate2::read::ZlibDecoder;
use libfuzzer_sys::fuzz_target;
use pitaya_core::codec::CodecError;
use pitaya_core::codec::compression::{
    RATIO_FREE_LEN, deflate, deflate_if_smaller, gunzip, inflate, inflate_bounded,
    inflate_if_compressed, is_gzip, is_zlib,
};

const MAX_BOUND: usize = 1 << 20;

/// What flate2's reader makes of `input`, reading at most `max + 1` bytes.
fn reference(input: &[u8], max: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    ZlibDecoder::new(input)
        .take(max as u64 + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, stream) = data.split_at(4);
    let max = (usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]))
        % (MAX_BOUND + 1);
    let ratio = head[3];

    // zlib, against the reference.
    let ours = inflate(stream, max);
    let theirs = reference(stream, max);
    match (&ours, &theirs) {
        (Ok(out), Ok(expected)) => {
            assert!(
                out.len() <= max,
                "inflate returned {} > {max} bytes",
                out.len()
            );
            assert_eq!(out, expected, "inflate differs from flate2");
        }
        (Ok(out), Err(err)) => panic!(
            "inflate accepted ({} bytes) what flate2 refuses: {err}",
            out.len()
        ),
        (Err(CodecError::InflatedTooLarge { max: reported }), reference) => {
            assert_eq!(*reported, max);
            assert!(
                matches!(reference, Ok(expected) if expected.len() == max + 1),
                "inflate says too large, flate2 says {:?}",
                reference.as_ref().map(Vec::len)
            );
        }
        (Err(CodecError::Inflate(_)), Ok(expected)) => {
            // flate2's reader ends a truncated stream quietly; ours refuses it.
            assert!(
                expected.len() <= max,
                "refused a stream flate2 inflates past the bound"
            );
        }
        (Err(CodecError::Inflate(_)), Err(_)) => {}
        (Err(other), _) => panic!("unexpected inflate error {other:?}"),
    }
    // The per-thread inflater is reset: the same call gives the same answer.
    assert_eq!(
        format!("{:?}", inflate(stream, max)),
        format!("{ours:?}"),
        "inflate is not repeatable"
    );

    // The same with a ratio bound: it only lowers the size bound, to
    // `ratio_cap`, when that is the smaller one.
    let ratio_cap = (stream.len() * usize::from(ratio)).max(RATIO_FREE_LEN);
    let bounded = inflate_bounded(stream, max, (ratio > 0).then_some(u32::from(ratio)));
    match (&bounded, &ours) {
        (Ok(out), Ok(expected)) => {
            assert_eq!(out, expected, "inflate_bounded differs from inflate");
            assert!(
                ratio == 0 || out.len() <= ratio_cap,
                "ratio bound not enforced"
            );
        }
        (Err(CodecError::InflateRatioExceeded { ratio: reported }), _) => {
            assert_eq!(*reported, u32::from(ratio));
            assert!(
                ratio > 0 && ratio_cap < max,
                "ratio refusal with the ratio off or above the size bound"
            );
            let produced = reference(stream, ratio_cap).map(|v| v.len()).unwrap_or(0);
            assert_eq!(
                produced,
                ratio_cap + 1,
                "ratio refused a stream that stays under the ratio"
            );
        }
        (Err(CodecError::InflatedTooLarge { .. }), Err(CodecError::InflatedTooLarge { .. })) => {}
        (Err(CodecError::Inflate(_)), Err(CodecError::Inflate(_))) => {}
        _ => panic!(
            "inflate_bounded {:?} but inflate {:?}",
            bounded.as_ref().map(Vec::len),
            ours.as_ref().map(Vec::len)
        ),
    }

    // gzip.
    match gunzip(stream, max) {
        Ok(out) => assert!(
            out.len() <= max,
            "gunzip returned {} > {max} bytes",
            out.len()
        ),
        Err(CodecError::InflatedTooLarge { max: reported }) => assert_eq!(reported, max),
        Err(CodecError::Inflate(_)) => {}
        Err(other) => panic!("unexpected gunzip error {other:?}"),
    }

    // Sniffing.
    match inflate_if_compressed(stream, max) {
        Ok(out) if is_zlib(stream) || is_gzip(stream) => assert!(out.len() <= max),
        Ok(out) => assert_eq!(out, stream, "plain input not returned as is"),
        Err(_) => assert!(is_zlib(stream) || is_gzip(stream), "plain input refused"),
    }

    // Round trips with the plain text bounded by `max`.
    let plain = &stream[..stream.len().min(max)];
    let packed = deflate(plain);
    assert!(is_zlib(&packed), "deflate output has no zlib magic");
    assert_eq!(
        inflate(&packed, plain.len()).expect("round trip at the exact bound"),
        plain
    );
    assert_eq!(
        inflate(&packed, max).expect("round trip under the bound"),
        plain
    );
    if let Some(short) = plain.len().checked_sub(1) {
        assert!(
            matches!(inflate(&packed, short), Err(CodecError::InflatedTooLarge { max: m }) if m == short),
            "one byte over the bound not refused"
        );
    }
    if let Some(smaller) = deflate_if_smaller(plain) {
        assert!(
            smaller.len() < plain.len(),
            "deflate_if_smaller is not smaller"
        );
        assert_eq!(inflate(&smaller, plain.len()).expect("round trip"), plain);
    }
});
