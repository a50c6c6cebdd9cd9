//! Byte-order range arithmetic: turns a [`ListOptions`](crate::ListOptions) (prefix plus bounds)
//! into one pair of byte bounds, so every backend scans exactly the keys it must.

use std::cmp::Ordering;
use std::ops::Bound;

/// A lower and an upper bound on byte keys.
pub type ByteRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// when there is none (an empty prefix, or one made only of 0xFF bytes).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// Byte bounds `(lower, upper)` covering keys that start with `prefix` and lie within
/// `start`..`end`. `None` when the range is empty.
pub fn key_bounds(prefix: &str, start: &Bound<String>, end: &Bound<String>) -> Option<ByteRange> {
    byte_bounds(prefix.as_bytes(), as_bytes(start), as_bytes(end))
}

/// [`key_bounds`] for byte keys.
pub fn byte_bounds(prefix: &[u8], start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Option<ByteRange> {
    let prefix_lower = Bound::Included(prefix.to_vec());
    let prefix_upper = match prefix_successor(prefix) {
        Some(s) => Bound::Excluded(s),
        None => Bound::Unbounded,
    };
    let lower = tighter_lower(prefix_lower, start);
    let upper = tighter_upper(prefix_upper, end);
    if is_empty(&lower, &upper) {
        None
    } else {
        Some((lower, upper))
    }
}

/// Whether `key` lies within the bounds.
pub fn contains(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    let above = match lower {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => key <= u.as_slice(),
        Bound::Excluded(u) => key < u.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

fn as_bytes(b: &Bound<String>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(s) => Bound::Included(s.as_bytes().to_vec()),
        Bound::Excluded(s) => Bound::Excluded(s.as_bytes().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The greater of two lower bounds.
pub fn tighter_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Greater => a,
                Ordering::Less => b,
                Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
                Ordering::Equal => b,
            }
        }
    }
}

/// The lesser of two upper bounds.
pub fn tighter_upper(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Less => a,
                Ordering::Greater => b,
                Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
                Ordering::Equal => b,
            }
        }
    }
}

/// Whether no key lies within the bounds.
pub fn is_empty(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u))
        | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_skips_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn bounds_combine_prefix_and_range() {
        let (l, u) = key_bounds("a", &Bound::Excluded("ab".into()), &Bound::Unbounded).unwrap();
        assert_eq!(l, Bound::Excluded(b"ab".to_vec()));
        assert_eq!(u, Bound::Excluded(b"b".to_vec()));
        assert!(key_bounds("b", &Bound::Unbounded, &Bound::Excluded("a".into())).is_none());
        assert!(key_bounds(
            "",
            &Bound::Included("a".into()),
            &Bound::Excluded("a".into())
        )
        .is_none());
        assert!(key_bounds(
            "",
            &Bound::Included("a".into()),
            &Bound::Included("a".into())
        )
        .is_some());
    }
}
