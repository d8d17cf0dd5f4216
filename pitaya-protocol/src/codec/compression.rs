//! zlib (RFC 1950) bodies, as Pitaya's "gzip" flag means.
//!
//! Deflate and inflate state is kept per thread and reset between calls, so
//! compressing a message costs no allocation beyond its output.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::CodecError;

/// zlib output is at least 2 header + 3 deflate + 4 checksum bytes, so no
/// input this short can shrink.
const MIN_SHRINKABLE_LEN: usize = 10;

thread_local! {
    static DEFLATER: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), true));
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(true));
}

/// zlib-compresses `input` (default level, as Go's `zlib.NewWriter`).
pub fn deflate(input: &[u8]) -> Vec<u8> {
    // A zlib stream never exceeds input + 5 bytes per 16 KiB block + 11.
    let bound = input.len() + (input.len() / 16_384 + 1) * 5 + 11;
    run_deflate(input, bound).unwrap_or_default()
}

/// zlib-compresses `input` and returns the result only if it is strictly
/// shorter, which is when Pitaya sends a body compressed.
pub fn deflate_if_smaller(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() < MIN_SHRINKABLE_LEN {
        return None;
    }
    run_deflate(input, input.len() - 1)
}

/// Deflates into at most `limit` bytes; `None` if the output did not fit.
fn run_deflate(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    DEFLATER.with(|cell| {
        let mut deflater = cell.borrow_mut();
        deflater.reset();
        let mut out = Vec::with_capacity(limit);
        let status = deflater.compress_vec(input, &mut out, FlushCompress::Finish);
        match status {
            Ok(Status::StreamEnd) => Some(out),
            _ => None,
        }
    })
}

/// Output up to this size is never refused for its expansion ratio: small
/// messages legitimately compress far better than large ones.
pub const RATIO_FREE_LEN: usize = 64 * 1024;

/// Inflates a zlib stream, refusing output longer than `max_len` bytes.
pub fn inflate(input: &[u8], max_len: usize) -> Result<Vec<u8>, CodecError> {
    inflate_bounded(input, max_len, None)
}

/// Inflates a zlib stream, refusing output longer than `max_len` bytes and,
/// with a `max_ratio`, output that grows past [`RATIO_FREE_LEN`] and more
/// than `max_ratio` times the input. Both are checked while inflating, so
/// a refused stream costs at most the limit, never its full expansion.
///
/// ```
/// use pitaya_protocol::codec::{CodecError, compression};
///
/// let bomb = compression::deflate(&vec![0u8; 1 << 20]); // ~1 KiB
/// assert!(matches!(
///     compression::inflate_bounded(&bomb, 16 << 20, Some(100)),
///     Err(CodecError::InflateRatioExceeded { ratio: 100 })
/// ));
/// ```
pub fn inflate_bounded(
    input: &[u8],
    max_len: usize,
    max_ratio: Option<u32>,
) -> Result<Vec<u8>, CodecError> {
    let ratio_cap = max_ratio.map(|ratio| {
        (
            ratio,
            input
                .len()
                .saturating_mul(ratio as usize)
                .max(RATIO_FREE_LEN),
        )
    });
    INFLATER.with(|cell| {
        let mut inflater = cell.borrow_mut();
        inflater.reset(true);
        let result = run_inflate(&mut inflater, input, max_len, ratio_cap);
        inflater.reset(true);
        result
    })
}

fn run_inflate(
    inflater: &mut Decompress,
    input: &[u8],
    max_len: usize,
    ratio_cap: Option<(u32, usize)>,
) -> Result<Vec<u8>, CodecError> {
    let (max_len, ratio) = match ratio_cap {
        Some((ratio, cap)) if cap < max_len => (cap, Some(ratio)),
        _ => (max_len, None),
    };
    // Room for max_len + 1 bytes tells "exactly max" from "too big".
    let hard_cap = max_len.saturating_add(1);
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).max(64).min(hard_cap));
    loop {
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let produced_before = out.len();
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|err| CodecError::Inflate(err.to_string()))?;
        if out.len() > max_len {
            return Err(match ratio {
                Some(ratio) => CodecError::InflateRatioExceeded { ratio },
                None => CodecError::InflatedTooLarge { max: max_len },
            });
        }
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                if out.len() == out.capacity() {
                    let grow = out.len().max(64).min(hard_cap - out.len());
                    out.reserve_exact(grow);
                } else if out.len() == produced_before
                    && usize::try_from(inflater.total_in()).unwrap_or(usize::MAX) == consumed
                {
                    return Err(CodecError::Inflate("truncated stream".into()));
                }
            }
        }
    }
}

/// Inflates a gzip (RFC 1952) stream, refusing output over `max_len` bytes.
pub fn gunzip(input: &[u8], max_len: usize) -> Result<Vec<u8>, CodecError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(input)
        .take(max_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| CodecError::Inflate(err.to_string()))?;
    if out.len() > max_len {
        return Err(CodecError::InflatedTooLarge { max: max_len });
    }
    Ok(out)
}

/// Whether `data` starts with a zlib (`78 01|5e|9c|da`) or gzip (`1f 8b`)
/// magic, which is how clients tell a compressed handshake response.
pub fn looks_compressed(data: &[u8]) -> bool {
    is_zlib(data) || is_gzip(data)
}

/// Whether `data` starts with a zlib magic.
pub fn is_zlib(data: &[u8]) -> bool {
    matches!(data, [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..])
}

/// Whether `data` starts with a gzip magic.
pub fn is_gzip(data: &[u8]) -> bool {
    matches!(data, [0x1f, 0x8b, ..])
}

/// Inflates `data` if it carries a zlib or gzip magic, else returns it as is.
pub fn inflate_if_compressed(data: &[u8], max_len: usize) -> Result<Vec<u8>, CodecError> {
    if is_zlib(data) {
        inflate(data, max_len)
    } else if is_gzip(data) {
        gunzip(data, max_len)
    } else {
        Ok(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let input = br#"{"code":200,"result":"a fairly repetitive result result result"}"#;
        let packed = deflate(input);
        assert!(is_zlib(&packed));
        assert_eq!(inflate(&packed, 1024).unwrap(), input);
    }

    #[test]
    fn empty_input_round_trips() {
        let packed = deflate(b"");
        assert_eq!(inflate(&packed, 0).unwrap(), b"");
    }

    #[test]
    fn only_strictly_smaller_output_is_used() {
        assert_eq!(deflate_if_smaller(b"{}"), None);
        assert_eq!(deflate_if_smaller(br#"{"a":"x"}"#), None);
        let repetitive = vec![b'a'; 1000];
        let packed = deflate_if_smaller(&repetitive).unwrap();
        assert!(packed.len() < repetitive.len());
        assert_eq!(inflate(&packed, 1000).unwrap(), repetitive);
    }

    #[test]
    fn inflate_limit_stops_a_zip_bomb() {
        let bomb = deflate(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 2048);
        assert!(matches!(
            inflate(&bomb, 4096),
            Err(CodecError::InflatedTooLarge { max: 4096 })
        ));
        assert_eq!(inflate(&bomb, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn ratio_limit_stops_a_bomb_below_the_size_limit() {
        let bomb = deflate(&vec![0u8; 1 << 20]);
        assert!(matches!(
            inflate_bounded(&bomb, 16 << 20, Some(100)),
            Err(CodecError::InflateRatioExceeded { ratio: 100 })
        ));
        // Without a ratio (or a generous one) the same stream inflates.
        assert_eq!(
            inflate_bounded(&bomb, 1 << 20, None).unwrap().len(),
            1 << 20
        );
        assert_eq!(
            inflate_bounded(&bomb, 1 << 20, Some(10_000)).unwrap().len(),
            1 << 20
        );
        // Small outputs are never refused for their ratio.
        let small = deflate(&vec![0u8; RATIO_FREE_LEN]);
        assert_eq!(
            inflate_bounded(&small, 1 << 20, Some(2)).unwrap().len(),
            RATIO_FREE_LEN
        );
        // The size limit still wins when it is the smaller one.
        assert!(matches!(
            inflate_bounded(&bomb, 4096, Some(100)),
            Err(CodecError::InflatedTooLarge { max: 4096 })
        ));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(inflate(b"\x78\x9cnot zlib at all", 1024).is_err());
        let packed = deflate(&[b'x'; 100]);
        assert!(inflate(&packed[..packed.len() - 3], 1024).is_err());
        assert!(inflate(b"", 1024).is_err());
    }

    #[test]
    fn gzip_is_detected_and_inflated() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(b"{\"code\":200}").unwrap();
        let gz = encoder.finish().unwrap();
        assert!(looks_compressed(&gz));
        assert_eq!(inflate_if_compressed(&gz, 64).unwrap(), b"{\"code\":200}");
        assert_eq!(inflate_if_compressed(b"{}", 64).unwrap(), b"{}");
        assert!(!looks_compressed(b"{\"code\":200}"));
    }
}
