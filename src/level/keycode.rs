//! The order-preserving encoding of byte keys as Workers KV keys.
//!
//! Workers KV keys are UTF-8 and compared by their bytes; level keys are arbitrary bytes. Each
//! level key is written as base-64 digits over an alphabet in ascending ASCII order
//! (`-0-9A-Z_a-z`), most significant bit first, the last digit padded with zero bits. Because the
//! alphabet is sorted and the padding is zeros, `a < b` as bytes exactly when
//! `encode(a) < encode(b)`; the length of the encoding determines the length of the key, so the
//! encoding is one to one. The digits need no escaping in URLs.
//!
//! An `n`-byte key takes `ceil(8n / 6)` characters.

const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// Characters `encode` produces for a key of `n` bytes.
pub fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(6)
}

/// The longest key whose encoding fits in `chars` characters.
pub fn max_key_len(chars: usize) -> usize {
    chars * 6 / 8
}

/// Appends the encoding of `key` to `out`.
pub fn encode_into(key: &[u8], out: &mut String) {
    out.reserve(encoded_len(key.len()));
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in key {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
}

pub fn encode(key: &[u8]) -> String {
    let mut s = String::new();
    encode_into(key, &mut s);
    s
}

fn digit(c: u8) -> Option<u32> {
    match c {
        b'-' => Some(0),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 1),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 11),
        b'_' => Some(37),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 38),
        _ => None,
    }
}

/// The key an encoding stands for; `None` for text that no key encodes to.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let n = text.len() * 6 / 8;
    if encoded_len(n) != text.len() {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in text.as_bytes() {
        acc = (acc << 6) | digit(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // The padding bits must be zero, or two texts would stand for one key.
    if acc != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_sorted() {
        assert!(ALPHABET.windows(2).all(|w| w[0] < w[1]));
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(digit(c), Some(i as u32));
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(encoded_len(0), 0);
        assert_eq!(encoded_len(1), 2);
        assert_eq!(encoded_len(3), 4);
        assert_eq!(max_key_len(511), 383);
        assert_eq!(encoded_len(383), 511);
        assert_eq!(encoded_len(384), 512);
    }

    #[test]
    fn roundtrip_and_order_exhaustive_short_keys() {
        // Every key of up to two bytes over a spread of byte values.
        let bytes = [0u8, 1, 2, 0x3f, 0x40, 0x7f, 0x80, 0xfe, 0xff];
        let mut keys: Vec<Vec<u8>> = vec![vec![]];
        for &a in &bytes {
            keys.push(vec![a]);
            for &b in &bytes {
                keys.push(vec![a, b]);
                keys.push(vec![a, b, 0]);
                keys.push(vec![a, b, 0xff, 1]);
            }
        }
        for a in &keys {
            assert_eq!(decode(&encode(a)).as_ref(), Some(a));
            for b in &keys {
                assert_eq!(a.cmp(b), encode(a).cmp(&encode(b)), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn rejects_non_encodings() {
        assert_eq!(decode("-"), None, "a length no key has");
        assert_eq!(decode("-0"), None, "nonzero padding bits");
        assert_eq!(decode("!!"), None, "outside the alphabet");
        assert_eq!(decode(""), Some(vec![]));
    }
}
