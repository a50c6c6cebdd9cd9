//! List cursors: the opaque text a client hands back for the next page. It carries the last key
//! the previous page examined, and the next page starts after it, so keys written between pages
//! still appear (as Miniflare's cursor does).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::KvError;

pub fn encode(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key.as_bytes())
}

pub fn decode(cursor: &str) -> Result<String, KvError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| KvError::InvalidCursor)?;
    let key = String::from_utf8(bytes).map_err(|_| KvError::InvalidCursor)?;
    if key.is_empty() || key.len() > super::limits::MAX_KEY_BYTES {
        return Err(KvError::InvalidCursor);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects_garbage() {
        for k in ["a", "hello/wörld key", "\u{0}", &"x".repeat(512)] {
            assert_eq!(decode(&encode(k)).unwrap(), k);
        }
        for bad in ["", "!!!", "/w==", &encode(&"x".repeat(513))] {
            assert_eq!(decode(bad), Err(KvError::InvalidCursor), "{bad:?}");
        }
        // Not UTF-8 inside.
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode([0xff, 0xfe])),
            Err(KvError::InvalidCursor)
        );
    }
}
