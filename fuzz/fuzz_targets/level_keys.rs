//! The level layer's key encoding: round-trips any bytes, keeps byte order, and decoding any
//! text never panics.
#![no_main]

use couchkv::level::keycode::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &[u8], &str)| {
    let (a, b, text) = input;
    let (ea, eb) = (encode(a), encode(b));
    assert_eq!(decode(&ea).as_deref(), Some(a));
    assert_eq!(a.cmp(b), ea.as_bytes().cmp(eb.as_bytes()), "order is kept");
    if let Some(bytes) = decode(text) {
        assert_eq!(decode(&encode(&bytes)), Some(bytes));
    }
});
