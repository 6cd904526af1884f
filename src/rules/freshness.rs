//! Pure: whether a push event comes after the pushes a service already acted on.
//!
//! A push is stale when its tag now names another digest in ECR ([`crate::rules::plan::freshness`]) or
//! when the service already deployed a push whose event came later (a late or redelivered event).
//! The order is the events' own: EventBridge's `time` of each push, kept on the deployment record
//! it caused. ECR's `imagePushedAt` is no order at all: it keeps a digest's first push, so
//! pointing a tag back at an older digest (a rollback or promotion by retag) would look old; and
//! a time read from a task definition's tags is whatever anyone with `ecs:TagResource` set.

use crate::domain::record::{epoch_seconds, DeploymentRecord};

/// A push a service already acted on (deployed), as its deployment record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushActedOn {
    /// The push's EventBridge event id.
    pub event_id: String,
    /// The tag it pushed.
    pub tag: String,
    /// The digest it deployed.
    pub digest: String,
    /// The event's time, in whole epoch seconds.
    pub at: i64,
}

/// Whole epoch seconds of an RFC 3339 time: EventBridge's `time` has whole seconds, and a finer
/// time from elsewhere must not order two events of the same second.
pub fn whole_seconds(at: &str) -> Option<i64> {
    epoch_seconds(at).map(|s| s.floor() as i64)
}

/// The pushes of `repository` that `records` (one service's) say were acted on, with when each
/// event happened. A record written before event times were kept gives its `pushed_at` instead:
/// ECR's first push of the digest, never later than an event for it, so it can only understate
/// and never makes a newer event look stale. Rollbacks and manual actions are no pushes.
pub fn pushes_acted_on(records: &[DeploymentRecord], repository: &str) -> Vec<PushActedOn> {
    records
        .iter()
        .filter(|r| r.is_push() && r.repository == repository)
        .filter_map(|r| {
            let at = r.event_time.as_deref().or(r.pushed_at.as_deref()).and_then(whole_seconds)?;
            Some(PushActedOn { event_id: r.trigger.id().to_string(), tag: r.tag.clone(), digest: r.digest.clone(), at })
        })
        .collect()
}

/// The newest push in `acted` whose event came strictly after `event_time` (whole epoch seconds):
/// when there is one, an event at `event_time` is older than what the service was already given.
/// An event of the same second is not older: the tag's digest in ECR orders those.
pub fn newer_push_acted_on(acted: &[PushActedOn], event_time: i64) -> Option<&PushActedOn> {
    acted.iter().filter(|p| p.at > event_time).max_by_key(|p| p.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::{rfc3339, Status, TriggerRef};
    use crate::rules::rollback::tests::record;

    const T0: f64 = 1_800_000_000.0;

    /// A push record of `repository:tag` at `digest`, its event `secs` after T0.
    fn pushed(event: &str, repository: &str, tag: &str, digest: &str, secs: Option<f64>) -> DeploymentRecord {
        let mut r = record(event, &format!("td:{event}"), Status::Verified, &rfc3339(T0));
        r.trigger = TriggerRef::Push { event_id: event.into() };
        r.repository = repository.into();
        r.tag = tag.into();
        r.digest = digest.into();
        r.event_time = secs.map(|s| rfc3339(T0 + s));
        r
    }

    #[test]
    fn a_tag_moved_back_to_an_older_digest_is_newer_than_every_push_before_it() {
        // latest → v1 (t+10), latest → v2 (t+20), then latest back to v1's digest (t+30).
        let records = [
            pushed("e1", "app", "latest", "sha256:v1", Some(10.0)),
            pushed("e2", "app", "latest", "sha256:v2", Some(20.0)),
        ];
        let acted = pushes_acted_on(&records, "app");
        assert_eq!(newer_push_acted_on(&acted, T0 as i64 + 30), None, "the retag is the newest event: it deploys");
        // The first push, delivered again late, is older than the second one already deployed.
        let newer = newer_push_acted_on(&acted, T0 as i64 + 10).unwrap();
        assert_eq!((newer.event_id.as_str(), newer.digest.as_str(), newer.at), ("e2", "sha256:v2", T0 as i64 + 20));
        // The same event again, or another of the same second, is not older than itself.
        assert_eq!(newer_push_acted_on(&acted, T0 as i64 + 20), None);
    }

    #[test]
    fn only_pushes_of_the_same_repository_order_an_event() {
        let mut rollback = pushed("r", "app", "latest", "sha256:v0", Some(90.0));
        rollback.trigger = TriggerRef::Manual { action: "rollback".into(), request_id: "q".into() };
        let records = [
            pushed("sidecar", "envoy", "latest", "sha256:e", Some(50.0)),
            rollback,
            pushed("v1.1", "app", "v1.1", "sha256:v11", Some(20.0)),
        ];
        let acted = pushes_acted_on(&records, "app");
        assert_eq!(acted.len(), 1, "another repository's push and a rollback order nothing: {acted:?}");
        // A late v1.0 after v1.1 deployed (a service watching `v*`) is older; a later push is not.
        assert_eq!(newer_push_acted_on(&acted, T0 as i64 + 5).map(|p| p.tag.as_str()), Some("v1.1"));
        assert_eq!(newer_push_acted_on(&acted, T0 as i64 + 25), None);
    }

    #[test]
    fn a_record_from_before_event_times_understates_with_ecrs_first_push() {
        // Written before event_time was kept: pushed_at (ECR's imagePushedAt, sub-second) stands in.
        let mut old = pushed("old", "app", "latest", "sha256:v1", None);
        old.pushed_at = Some(rfc3339(T0 + 10.0).replace('Z', ".700Z"));
        let acted = pushes_acted_on(&[old.clone()], "app");
        assert_eq!(acted[0].at, T0 as i64 + 10, "whole seconds, as EventBridge's time has");
        assert_eq!(newer_push_acted_on(&acted, T0 as i64 + 10), None, "an event of that second is not older");
        assert!(newer_push_acted_on(&acted, T0 as i64 + 9).is_some());
        // A record with no time at all orders nothing.
        old.pushed_at = None;
        assert!(pushes_acted_on(&[old], "app").is_empty());
        // Records written before this change still parse (no event_time field).
        let json = serde_json::to_value(pushed("x", "app", "latest", "sha256:v1", None)).unwrap();
        assert!(json.get("event_time").is_none());
        let back: DeploymentRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.event_time, None);
    }
}
