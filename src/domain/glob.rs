//! Tag patterns: `*` matches any run of characters, `?` exactly one; everything else is literal.

use std::fmt;

/// A validated tag pattern such as `latest`, `v*` or `release-??`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern(String);

impl TagPattern {
    /// Validates a pattern: tag characters plus `*` and `?`, at most 128 characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("a tag pattern must not be empty".into());
        }
        if s.len() > 128 {
            return Err(format!("tag pattern is {} characters long; tags have at most 128", s.len()));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-*?".contains(*c))) {
            return Err(format!(
                "tag pattern {s:?} has {c:?}: only A-Z a-z 0-9 _ . - and the wildcards * and ? are allowed"
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// True when the pattern has no wildcard, so it names exactly one tag.
    pub fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `tag` matches the whole pattern.
    pub fn matches(&self, tag: &str) -> bool {
        wildcard_match(self.0.as_bytes(), tag.as_bytes())
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative wildcard matching with single-star backtracking: linear in practice, no recursion.
pub(crate) fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        TagPattern::parse(p).unwrap().matches(t)
    }

    #[test]
    fn literal_and_wildcards() {
        assert!(m("latest", "latest"));
        assert!(!m("latest", "latest2"));
        assert!(m("v*", "v1.4.2"));
        assert!(m("v*", "v"));
        assert!(!m("v*", "latest"));
        assert!(m("release-??", "release-12"));
        assert!(!m("release-??", "release-123"));
        assert!(m("*-prod", "api-prod"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*", "anything"));
    }

    #[test]
    fn refuses_bad_patterns() {
        assert!(TagPattern::parse("").is_err());
        assert!(TagPattern::parse("v[0-9]").is_err());
        assert!(TagPattern::parse("a b").is_err());
        assert!(TagPattern::parse(&"x".repeat(129)).is_err());
        assert!(TagPattern::parse("latest").unwrap().is_literal());
        assert!(!TagPattern::parse("v*").unwrap().is_literal());
    }
}
