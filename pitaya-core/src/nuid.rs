//! Request ids in the NATS "nuid" format Go Pitaya uses for `request.id`:
//! 22 base62 characters, a 12-character random prefix shared by a run of
//! ids and a 10-character sequence that grows by a random step.

use std::cell::RefCell;

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PREFIX_LEN: usize = 12;
const SEQ_LEN: usize = 10;
/// 62^10: the sequence wraps here, and a new prefix is drawn.
const MAX_SEQ: u64 = 839_299_365_868_340_224;
const MIN_INC: u64 = 33;
const MAX_INC: u64 = 333;

struct State {
    prefix: [u8; PREFIX_LEN],
    seq: u64,
    inc: u64,
}

impl State {
    fn new() -> Self {
        let mut state = Self {
            prefix: [b'0'; PREFIX_LEN],
            seq: 0,
            inc: 0,
        };
        state.reset();
        state
    }

    fn reset(&mut self) {
        for byte in &mut self.prefix {
            *byte = DIGITS[usize::try_from(fastrand::u64(..) % 62).unwrap_or(0)];
        }
        self.seq = fastrand::u64(..) % MAX_SEQ;
        self.inc = MIN_INC + fastrand::u64(..) % (MAX_INC - MIN_INC);
    }
}

thread_local! {
    // One generator per thread, each with its own random prefix: no lock
    // shared by every forwarded request.
    static STATE: RefCell<State> = RefCell::new(State::new());
}

/// The next id.
pub(crate) fn next() -> String {
    STATE.with(|state| next_from(&mut state.borrow_mut()))
}

fn next_from(state: &mut State) -> String {
    state.seq += state.inc;
    if state.seq >= MAX_SEQ {
        state.reset();
    }
    let mut id = [0u8; PREFIX_LEN + SEQ_LEN];
    id[..PREFIX_LEN].copy_from_slice(&state.prefix);
    let mut seq = state.seq;
    for slot in id[PREFIX_LEN..].iter_mut().rev() {
        *slot = DIGITS[usize::try_from(seq % 62).unwrap_or(0)];
        seq /= 62;
    }
    String::from_utf8_lossy(&id).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_base62_chars_unique_and_share_a_prefix() {
        let ids: Vec<String> = (0..1000).map(|_| next()).collect();
        for id in &ids {
            assert_eq!(id.len(), 22, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let same_prefix = ids.windows(2).filter(|w| w[0][..12] == w[1][..12]).count();
        assert!(same_prefix >= 998, "the prefix changes only on wrap");
    }
}
