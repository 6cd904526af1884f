//! Manual actions built around fuzzed strings: parsing answers, never panics, and what it accepts
//! names a service and (for deploy) a valid tag.
#![no_main]

use pushdeploy::inbound::{parse, ManualAction, Trigger};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{0}');
    let (action, service, tag) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let mut v = serde_json::json!({"action": action, "service": service});
    if let Some(tag) = tag {
        v["tag"] = serde_json::Value::String(tag.to_string());
    }
    if let Ok(Trigger::Manual(m)) = parse(v) {
        assert!(!m.service().is_empty() && m.service().len() <= 256);
        if let ManualAction::Deploy { tag, .. } = &m {
            assert!(pushdeploy::domain::image::validate_tag(tag).is_ok());
        }
    }
});
