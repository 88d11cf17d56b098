//! Finding the bytes a JSON string literal must escape, eight at a time.
//!
//! Snapshot values are mostly long runs of plain text (a ~1 KB document is
//! escaped once as MongoDB JSON and once more as the JsonConverter's string),
//! and a byte-at-a-time loop was ~10 % of the snapshot's CPU. Scanning a
//! 64-bit word per step finds the next `"`, `\` or control byte with a few
//! integer operations and leaves the per-byte work to the bytes that need it.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether JSON requires `b` to be escaped inside a string literal.
#[inline]
#[must_use]
pub fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The index of the first byte at or after `from` that [`needs_escape`], or
/// `bytes.len()` if there is none.
#[inline]
#[must_use]
pub fn next_escape(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Classic "has a byte less than n" / "has a zero byte" tests. A
        // borrow can only flag bytes *after* a real match, so the lowest
        // flagged byte is always a real one.
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let quote = w ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let hits = (control | quote | backslash) & HIGHS;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && !needs_escape(bytes[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(bytes: &[u8], from: usize) -> usize {
        (from..bytes.len())
            .find(|&i| needs_escape(bytes[i]))
            .unwrap_or(bytes.len())
    }

    #[test]
    fn agrees_with_a_byte_loop_at_every_position() {
        // Every byte value at every offset within a word, with plain text,
        // non-ASCII bytes and other escapable bytes around it.
        for special in 0u8..=255 {
            for pos in 0..19 {
                let mut s: Vec<u8> = "abcdéfgh\u{7f}ijklmnopq".bytes().collect();
                s.truncate(19);
                s[pos] = special;
                for from in 0..s.len() {
                    assert_eq!(next_escape(&s, from), slow(&s, from), "{s:?} from {from}");
                }
            }
        }
        let mixed = b"x\"y\\z\n\x00\x1f \x20\x21\x5b\x5d\xff\x80\x7f";
        for from in 0..mixed.len() {
            assert_eq!(next_escape(mixed, from), slow(mixed, from));
        }
        assert_eq!(next_escape(b"", 0), 0);
        assert_eq!(next_escape(b"plain text only!", 0), 16);
    }
}
