//! Which tags deploy, proposed from what runs: the running tag itself, and when it looks
//! versioned (`v1.4.2`, `2026.12.07-abc`, a commit id) a pattern the next release would match,
//! offered for the user to confirm. Pure.

use pushdeploy::domain::image::ImageRef;

/// The `tags` proposed for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsProposal {
    /// What `tags` is set to: the running tags (or `latest` when only a digest runs).
    pub tags: Vec<String>,
    /// A pattern that would match the next versioned tag, written as a commented alternative.
    pub pattern: Option<String>,
    /// Why the line needs a look (`# check: …`), if it does.
    pub check: Option<String>,
}

/// `tags` from the images of one repository that run (every container's, in order).
pub fn propose_tags(images: &[&ImageRef]) -> TagsProposal {
    let mut tags: Vec<String> = Vec::new();
    for tag in images.iter().filter_map(|i| i.tag.clone()) {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        let digest = images.iter().find_map(|i| i.digest.as_ref()).map_or("a digest".into(), |d| d.to_string());
        return TagsProposal {
            tags: vec!["latest".into()],
            pattern: None,
            check: Some(format!(
                "the service runs {digest} by digest only, so no tag says which pushes deploy: name the tag your pipeline pushes"
            )),
        };
    }
    let versioned = tags.iter().find(|t| looks_versioned(t)).cloned();
    match versioned {
        None => TagsProposal { tags, pattern: None, check: None },
        Some(v) => {
            let pattern = pattern_of(&v);
            let check = format!(
                "{v:?} looks versioned: the next release has a new tag, which {v:?} never matches; the pattern below ({pattern:?}) deploys every push whose tag matches it: confirm it and use it instead"
            );
            TagsProposal { tags, pattern: Some(pattern), check: Some(check) }
        }
    }
}

/// True for a tag that names one build: a version (`v1.4.2`, `1.4`), a date (`2026.12.07-abc`,
/// `20261207`), a numbered name (`release-12`, `main-3f9a2c1`), a commit id (`3f9a2c1`).
pub fn looks_versioned(tag: &str) -> bool {
    let b = tag.as_bytes();
    let core = tag.trim_start_matches(['v', 'V']).as_bytes();
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let version = digits(core) > 0 && core.get(digits(core)) == Some(&b'.');
    let date = {
        let compact: Vec<u8> = b.iter().take(10).filter(|c| **c != b'.' && **c != b'-').copied().collect();
        compact.len() >= 8 && compact[..8].iter().all(u8::is_ascii_digit)
    };
    let numbered = match tag.find(|c: char| c.is_ascii_digit()) {
        Some(i) if i > 0 => {
            let before = b[i - 1];
            matches!(before, b'-' | b'_' | b'.') || (i == 1 && (b[0] == b'v' || b[0] == b'V'))
        }
        _ => false,
    };
    let commit = (7..=40).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && b.iter().any(u8::is_ascii_digit);
    version || date || numbered || commit
}

/// A pattern for the tags of the builds after `tag`: its prefix before the first digit and `*`
/// (`v1.4.2` → `v*`, `release-12` → `release-*`); without one, every run of letters and digits
/// as `*` (`2026.12.07-abc` → `*.*.*-*`), and a commit id as that many `?`.
pub fn pattern_of(tag: &str) -> String {
    let is_commit = tag.len() >= 7 && tag.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    if is_commit && !tag.contains('.') {
        return "?".repeat(tag.len());
    }
    match tag.find(|c: char| c.is_ascii_digit()) {
        Some(i) if i > 0 => format!("{}*", &tag[..i]),
        _ => {
            let mut out = String::new();
            for c in tag.chars() {
                if c.is_ascii_alphanumeric() {
                    if !out.ends_with('*') {
                        out.push('*');
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}
