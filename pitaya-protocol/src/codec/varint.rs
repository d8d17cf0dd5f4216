//! Base-128 varints, as message ids are encoded: low 7 bits first, the
//! high bit set when more bytes follow (0 -> `00`, 300 -> `ac 02`).

use bytes::BufMut;

use super::CodecError;

/// Appends `value` as a base-128 varint.
pub fn put(mut value: u64, dst: &mut impl BufMut) {
    while value >= 0x80 {
        // Truncation is the point: keep the low 7 bits and mark continuation.
        #[allow(clippy::cast_possible_truncation)]
        dst.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    dst.put_u8(value as u8);
}

/// Reads a varint from the front of `src`, returning it and the bytes used;
/// fails on a truncated varint or one that does not fit in 64 bits.
pub fn get(src: &[u8]) -> Result<(u64, usize), CodecError> {
    let mut value: u64 = 0;
    for (index, &byte) in src.iter().enumerate() {
        let shift = 7 * index;
        let low = u64::from(byte & 0x7f);
        if shift >= 64 || (shift == 63 && low > 1) {
            return Err(CodecError::IdOverflow);
        }
        value |= low << shift;
        if byte < 0x80 {
            return Ok((value, index + 1));
        }
    }
    Err(CodecError::Truncated("id"))
}

/// Number of bytes `value` takes as a varint.
pub fn len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put(value, &mut out);
        out
    }

    #[test]
    fn spec_examples() {
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(1), [0x01]);
        assert_eq!(encoded(127), [0x7f]);
        assert_eq!(encoded(129), [0x81, 0x01]);
        assert_eq!(encoded(300), [0xac, 0x02]);
    }

    #[test]
    fn max_value_round_trips() {
        let bytes = encoded(u64::MAX);
        assert_eq!(bytes.len(), 10);
        assert_eq!(get(&bytes).unwrap(), (u64::MAX, 10));
        assert_eq!(len(u64::MAX), 10);
    }

    #[test]
    fn overflow_and_truncation_are_errors() {
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(matches!(get(&too_big), Err(CodecError::IdOverflow)));
        assert!(matches!(get(&[0xff; 11]), Err(CodecError::IdOverflow)));
        assert!(matches!(
            get(&[0x80, 0x80]),
            Err(CodecError::Truncated("id"))
        ));
        assert!(matches!(get(&[]), Err(CodecError::Truncated("id"))));
    }

    #[test]
    fn len_matches_encoding() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(len(value), encoded(value).len(), "value {value}");
        }
    }
}
