//! Any bytes as an invocation payload: parsing answers, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pushdeploy::inbound::parse_bytes(data);
});
