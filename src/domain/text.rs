//! Text from outside pushdeploy (a response, an event field, a tag, a record read back from S3)
//! made safe to put in front of a person: in an SNS message a chat client shows, or on the
//! operator's terminal. Pure.

use std::borrow::Cow;

/// What an unsafe character is shown as.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` would act on a terminal or a chat client rather than be shown: every C0 control
/// (a line break too: inside a reason it would forge a line of its own), DEL, every C1 control
/// (U+009B is a terminal's CSI, as `ESC [` is), the bidirectional formatting characters that
/// reorder what is shown (U+202E makes `gpj.exe` read as `exe.jpg`), and the Unicode line and
/// paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// `s` with every unsafe character (see [`is_unsafe`]) replaced by U+FFFD; borrowed when there is
/// none, which is nearly always.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_unsafe) {
        Cow::Owned(s.chars().map(|c| if is_unsafe(c) { REPLACEMENT } else { c }).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// JSON text as serde_json writes it, with every unsafe character escaped as `\uXXXX`: the same
/// JSON value (a reader of the record loses nothing), safe to show. serde_json already escapes
/// C0 controls inside strings, so a raw line break is the layout's own and stays; DEL, C1 and the
/// bidi characters it leaves raw are escaped here (all are in the BMP, so one `\u` each).
pub fn json_printable(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c != '\n' && is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `path` without its query string or fragment, for a record, a log line or a message: a check
/// path's `?token=…` is for the app, not for everyone who reads the record.
pub fn without_query(path: &str) -> &str {
    path.find(['?', '#']).map_or(path, |i| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_line_breaks_and_bidi_overrides_are_replaced() {
        assert_eq!(printable("\x1b[2Jcleared"), "\u{FFFD}[2Jcleared", "ANSI clear screen");
        assert_eq!(printable("ok\rFAILED"), "ok\u{FFFD}FAILED", "a carriage return overwriting the line");
        assert_eq!(printable("a\nforged line"), "a\u{FFFD}forged line");
        assert_eq!(printable("invoice\u{202E}fdp.exe"), "invoice\u{FFFD}fdp.exe", "right-to-left override");
        assert_eq!(
            printable("\u{9b}31m\u{7f}\u{2066}x\u{2069}"),
            "\u{FFFD}31m\u{FFFD}\u{FFFD}x\u{FFFD}",
            "C1 CSI, DEL, isolates"
        );
        assert_eq!(printable("\0\t"), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn ordinary_text_is_kept_as_it_is_and_borrowed() {
        for s in ["GET todoItems: status 500, expected 200", "todo-backend:5 → todo-backend:4", "日本語 ✓ émoji 🚀", ""]
        {
            assert!(matches!(printable(s), Cow::Borrowed(t) if t == s), "{s}");
        }
    }

    #[test]
    fn json_keeps_its_value_and_layout_but_shows_no_control() {
        let value = serde_json::json!({"reason": "a\u{1b}[2J\r\u{202E}b\u{85}", "n": 1});
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let shown = json_printable(&pretty);
        assert!(!shown.chars().any(|c| c != '\n' && is_unsafe(c)), "{shown}");
        assert_eq!(shown.lines().count(), pretty.lines().count(), "the layout's line breaks stay");
        assert!(shown.contains(r"\u202e") && shown.contains(r"\u001b"), "{shown}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&shown).unwrap(), value, "the same value");
        assert!(matches!(json_printable("{\n  \"a\": 1\n}"), Cow::Borrowed(_)));
    }
}
