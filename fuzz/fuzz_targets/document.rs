//! Document validation on any JSON: never panics, whatever the fields hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = couchkv::couch::check_document(doc);
    }
});
