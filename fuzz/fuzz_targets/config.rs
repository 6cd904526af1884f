//! Any text as pushdeploy.toml: validation answers with a located error, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = pushdeploy::config::Config::parse(text, "fuzz.toml") {
            assert_eq!(e.file, "fuzz.toml");
            assert!(!e.key.is_empty());
        }
    }
});
