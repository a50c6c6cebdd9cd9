//! The KV list cursor: decoding anything never panics, and every valid key's (1–512 bytes)
//! cursor decodes to it.
#![no_main]

use couchkv::kv::cursor::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (garbage, key) = input;
    if let Ok(k) = decode(garbage) {
        assert_eq!(decode(&encode(&k)).ok(), Some(k));
    }
    let valid = !key.is_empty() && key.len() <= 512;
    assert_eq!(decode(&encode(key)).is_ok(), valid);
    if valid {
        assert_eq!(decode(&encode(key)).ok().as_deref(), Some(key));
    }
});
