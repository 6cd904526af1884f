//! Pure: which of pushdeploy's own revisions of a service it no longer needs (`keep_revisions`).

/// The revisions to deregister: all of `own` (pushdeploy's revisions, newest first) beyond the
/// newest `keep`, except those in `protected` (the one running, the previous one, the last
/// verified one), which a rollback may need.
pub fn prunable<'a>(own_newest_first: &'a [String], keep: usize, protected: &[&str]) -> Vec<&'a str> {
    own_newest_first.iter().skip(keep).map(String::as_str).filter(|arn| !protected.contains(arn)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_never_what_a_rollback_needs() {
        let own: Vec<String> = (2..=7).rev().map(|n| format!("td:{n}")).collect(); // td:7 … td:2
        assert_eq!(prunable(&own, 3, &["td:7", "td:6"]), ["td:4", "td:3", "td:2"]);
        // The previous revision is old (a rollback happened in between): still kept.
        assert_eq!(prunable(&own, 3, &["td:7", "td:3"]), ["td:4", "td:2"]);
        assert!(prunable(&own, 10, &[]).is_empty());
    }
}
