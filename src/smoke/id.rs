//! The id the build under test hands back for the probe's item, made one path segment of the
//! clean-up request, or refused. Pure.
//!
//! That id comes from the build being tested, which may be broken or hostile: substituted as it
//! is, `../../admin/users/1` would send the probe's DELETE, with its headers, to another path of
//! the same origin. So only a "plain" id is used, percent-encoded as exactly one segment.

use std::fmt;

use serde_json::Value;

/// Longest id accepted, in characters: database keys, UUIDs and ULIDs are far shorter.
pub const MAX_ID_CHARS: usize = 200;

/// Why an id cannot be a path segment. Shown in the record by kind, never the id itself: it is
/// the build under test's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRefused {
    /// Not a string or a number (an object, an array, a boolean, null).
    NotScalar,
    /// The empty string: `todoItems/` is the collection, not the item.
    Empty,
    /// `.` or `..`: a step within or out of the path.
    DotSegment,
    /// Contains `/` or `\` (a URL parser reads both as a separator).
    PathSeparator,
    /// Contains `?` or `#`: the rest would become a query or a fragment.
    QueryOrFragment,
    /// Contains `%`: already encoded, which could hide any of the above (`%2e%2e%2f`).
    Percent,
    /// Contains a control character, a bidi override or whitespace.
    ControlOrSpace,
    /// Longer than [`MAX_ID_CHARS`].
    TooLong,
}

impl fmt::Display for IdRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdRefused::NotScalar => "is not a string or a number",
            IdRefused::Empty => "is empty",
            IdRefused::DotSegment => "is a dot segment (. or ..)",
            IdRefused::PathSeparator => "contains a path separator (/ or \\)",
            IdRefused::QueryOrFragment => "contains ? or #",
            IdRefused::Percent => "contains % (percent-encoding)",
            IdRefused::ControlOrSpace => "contains a control character or whitespace",
            IdRefused::TooLong => "is longer than 200 characters",
        })
    }
}

/// The value at `id_pointer` as one percent-encoded path segment, when it is a plain id: a number,
/// or a string that is not empty, `.` or `..`, has no `/`, `\`, `?`, `#`, `%`, control character
/// or whitespace, and is at most [`MAX_ID_CHARS`] long.
pub fn path_segment(id: &Value) -> Result<String, IdRefused> {
    let text = match id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(IdRefused::NotScalar),
    };
    if text.is_empty() {
        return Err(IdRefused::Empty);
    }
    if text.chars().count() > MAX_ID_CHARS {
        return Err(IdRefused::TooLong);
    }
    if text == "." || text == ".." {
        return Err(IdRefused::DotSegment);
    }
    for c in text.chars() {
        match c {
            '/' | '\\' => return Err(IdRefused::PathSeparator),
            '?' | '#' => return Err(IdRefused::QueryOrFragment),
            '%' => return Err(IdRefused::Percent),
            c if c.is_whitespace() || crate::domain::text::is_unsafe(c) => return Err(IdRefused::ControlOrSpace),
            _ => {}
        }
    }
    Ok(encode_segment(&text))
}

/// Percent-encodes every byte but RFC 3986's unreserved characters, so the result is one segment
/// whatever a URL parser makes of the others.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_uuids_and_plain_strings_are_one_segment() {
        assert_eq!(path_segment(&json!(42)), Ok("42".into()));
        assert_eq!(path_segment(&json!(-7)), Ok("-7".into()));
        assert_eq!(
            path_segment(&json!("0b6f7c1e-3a54-4c2a-9d7e-1f0e2d3c4b5a")),
            Ok("0b6f7c1e-3a54-4c2a-9d7e-1f0e2d3c4b5a".into())
        );
        assert_eq!(path_segment(&json!("item_1.v2~x")), Ok("item_1.v2~x".into()));
        assert_eq!(path_segment(&json!("...")), Ok("...".into()), "three dots are a name, not a step");
        // Anything else a parser might read is encoded: still the one segment.
        assert_eq!(path_segment(&json!("a;b=c:d@e")), Ok("a%3Bb%3Dc%3Ad%40e".into()));
        assert_eq!(path_segment(&json!("café")), Ok("caf%C3%A9".into()));
        assert_eq!(path_segment(&json!("x".repeat(MAX_ID_CHARS))), Ok("x".repeat(MAX_ID_CHARS)));
    }

    #[test]
    fn ids_that_could_leave_the_segment_are_refused_by_kind() {
        let refused = |v: Value| path_segment(&v).unwrap_err();
        assert_eq!(refused(json!("../../admin/users/1")), IdRefused::PathSeparator);
        assert_eq!(refused(json!("..\\..\\admin")), IdRefused::PathSeparator);
        assert_eq!(refused(json!("%2e%2e%2fadmin")), IdRefused::Percent);
        assert_eq!(refused(json!("..")), IdRefused::DotSegment);
        assert_eq!(refused(json!(".")), IdRefused::DotSegment);
        assert_eq!(refused(json!("")), IdRefused::Empty);
        assert_eq!(refused(json!("1?admin=true")), IdRefused::QueryOrFragment);
        assert_eq!(refused(json!("1#x")), IdRefused::QueryOrFragment);
        assert_eq!(refused(json!("1 2")), IdRefused::ControlOrSpace);
        assert_eq!(refused(json!("1\r\nX-Injected: 1")), IdRefused::ControlOrSpace);
        assert_eq!(refused(json!("1\u{202E}")), IdRefused::ControlOrSpace);
        assert_eq!(refused(json!("x".repeat(MAX_ID_CHARS + 1))), IdRefused::TooLong);
        for v in [json!(null), json!(true), json!({"id": 1}), json!([1])] {
            assert_eq!(refused(v), IdRefused::NotScalar);
        }
    }

    #[test]
    fn a_refusal_names_the_kind_and_never_the_id() {
        let shown = IdRefused::PathSeparator.to_string();
        assert_eq!(shown, "contains a path separator (/ or \\)");
        assert!(!shown.contains("admin"));
    }
}
