//! Pure: whether a digest is one pushdeploy rolled back, read from the service's recent records,
//! and what a deploy of it answers.
//!
//! The knowledge comes from the service's deployment records in the artifact bucket: a record
//! with status `rolled_back` names the digest that was rolled back. The bucket is writable only
//! by the functions' roles; and even a forged record could only make pushdeploy *refuse* a digest
//! (a person then deploys it with `force`), never run one: nothing here chooses what to deploy.

use crate::config::ServiceConfig;
use crate::domain::record::{DeploymentRecord, Status};

/// How many of a service's most recently written records a deploy reads for rollbacks: about a
/// dozen rollouts back, each with its rollback's own record. A build rolled back longer ago than
/// that is no longer refused (its rollback is still in `pushdeploy history`).
pub const HISTORY_SCANNED: usize = 30;

/// Longest part of a rollback's reason quoted in a refusal (the record has all of it).
const REASON_QUOTED: usize = 300;

/// A rollback of a digest, as its deployment's record tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The record id of the deployment that was rolled back (`ecs-svc-…`).
    pub deployment: String,
    /// The digest it ran.
    pub digest: String,
    /// The tag it was deployed as.
    pub tag: String,
    /// When it was rolled back (or, without that entry, started).
    pub at: String,
    /// Why it was rolled back.
    pub reason: String,
}

/// The newest rollback of `digest` among `records` that no verified deployment of the same digest
/// has followed: a build deployed with `force` afterwards and verified is trusted again. The
/// records of rollbacks themselves (which run the digest returned to) are not deployments of it.
pub fn find(records: &[DeploymentRecord], digest: &str) -> Option<RolledBack> {
    let started = |r: &DeploymentRecord| r.started_at().unwrap_or(0.0);
    let of_digest = || records.iter().filter(|r| !r.is_rollback() && r.digest == digest);
    let newest =
        of_digest().filter(|r| r.status == Status::RolledBack).max_by(|a, b| started(a).total_cmp(&started(b)))?;
    if of_digest().any(|r| r.status == Status::Verified && started(r) > started(newest)) {
        return None;
    }
    let at = ["rolled_back", "started"]
        .iter()
        .find_map(|event| newest.timeline.iter().find(|e| e.event == *event))
        .map_or_else(String::new, |e| e.at.clone());
    Some(RolledBack {
        deployment: newest.id.clone(),
        digest: newest.digest.clone(),
        tag: newest.tag.clone(),
        at,
        reason: newest.reason.clone().unwrap_or_else(|| "(the record gives no reason)".into()),
    })
}

/// What an operator runs to go past the refusal: `redeploy` with force when redeploying, else
/// `deploy` of `tag` with force.
pub fn way_through(svc: &ServiceConfig, redeploy: bool, tag: Option<&str>) -> String {
    if redeploy {
        return format!(
            "`pushdeploy redeploy {0} --force` ({{\"action\": \"redeploy\", \"service\": \"{0}\", \"force\": true}})",
            svc.name
        );
    }
    let tag = tag.filter(|t| !t.is_empty()).unwrap_or("TAG");
    format!(
        "`pushdeploy deploy {0} {tag} --force` ({{\"action\": \"deploy\", \"service\": \"{0}\", \"tag\": \"{tag}\", \"force\": true}})",
        svc.name
    )
}

/// Why a deploy of a rolled-back digest is refused, quoting the rollback, and how to go past it.
pub fn refusal(found: &RolledBack, way_through: &str) -> String {
    let mut reason: String = found.reason.chars().take(REASON_QUOTED).collect();
    if reason.len() < found.reason.len() {
        reason.push('…');
    }
    let deployed_as = if found.tag.is_empty() { String::new() } else { format!(" (deployed as {})", found.tag) };
    format!(
        "{}{deployed_as} was rolled back by pushdeploy at {} (deployment {}): {reason}. It is not deployed again unless forced: {way_through}; a new build pushed to the tag deploys as usual",
        found.digest, found.at, found.deployment
    )
}

/// The note on a forced deploy of a rolled-back digest.
pub fn forced_note(found: &RolledBack) -> String {
    format!("forced past the rollback of {} at {} ({})", found.digest, found.at, found.deployment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::{TimelineEntry, TriggerRef};
    use crate::rules::rollback::tests::record;
    use crate::rules::taskdef::tests::svc;

    fn of(id: &str, digest: &str, status: Status, started: &str) -> DeploymentRecord {
        let mut r = record(id, &format!("td:{id}"), status, started);
        r.digest = digest.into();
        r
    }

    #[test]
    fn a_rolled_back_digest_is_found_with_its_reason_and_another_is_not() {
        let mut bad = of("2", "sha256:bad", Status::RolledBack, "2026-11-21T10:00:00Z");
        bad.reason = Some("GET todoItems: status 500, expected 200".into());
        bad.timeline.push(TimelineEntry { event: "rolled_back".into(), at: "2026-11-21T10:05:00Z".into() });
        let rs = vec![of("1", "sha256:good", Status::Verified, "2026-11-20T10:00:00Z"), bad];
        let found = find(&rs, "sha256:bad").unwrap();
        assert_eq!(
            found,
            RolledBack {
                deployment: "2".into(),
                digest: "sha256:bad".into(),
                tag: "latest".into(),
                at: "2026-11-21T10:05:00Z".into(),
                reason: "GET todoItems: status 500, expected 200".into(),
            }
        );
        assert_eq!(find(&rs, "sha256:good"), None, "a verified build deploys");
        assert_eq!(find(&rs, "sha256:new"), None, "a build pushdeploy never ran deploys");
        assert_eq!(find(&[], "sha256:bad"), None);
    }

    #[test]
    fn only_a_verified_deployment_after_the_rollback_clears_it() {
        let rolled = of("2", "sha256:bad", Status::RolledBack, "2026-11-21T10:00:00Z");
        let earlier = of("1", "sha256:bad", Status::Verified, "2026-11-20T10:00:00Z");
        assert!(find(&[earlier, rolled.clone()], "sha256:bad").is_some(), "verified before, rolled back since");
        let forced = of("3", "sha256:bad", Status::Started, "2026-11-22T10:00:00Z");
        assert!(find(&[rolled.clone(), forced], "sha256:bad").is_some(), "a forced rollout not verified yet");
        let again = of("4", "sha256:bad", Status::RolledBack, "2026-11-23T10:00:00Z");
        let verified = of("3", "sha256:bad", Status::Verified, "2026-11-22T10:00:00Z");
        assert_eq!(find(&[rolled.clone(), verified.clone()], "sha256:bad"), None, "forced and verified since");
        let newest = find(&[rolled, verified, again], "sha256:bad").unwrap();
        assert_eq!(newest.deployment, "4", "rolled back once more after it was verified");
    }

    #[test]
    fn a_rollback_record_running_the_digest_is_not_a_rollback_of_it() {
        // A rollback's own record carries the digest it returned to, with whatever status.
        let mut back = of("2", "sha256:good", Status::RolledBack, "2026-11-21T10:00:00Z");
        back.trigger = TriggerRef::AutoRollback { of: "ecs-svc-1".into() };
        assert_eq!(find(&[back.clone()], "sha256:good"), None);
        back.trigger = TriggerRef::Manual { action: "rollback".into(), request_id: "r".into() };
        assert_eq!(find(&[back], "sha256:good"), None);
        // A failed deployment pushdeploy did not roll back (ECS's circuit breaker did) is not refused.
        assert_eq!(find(&[of("3", "sha256:x", Status::Failed, "2026-11-21T10:00:00Z")], "sha256:x"), None);
    }

    #[test]
    fn the_refusal_quotes_the_rollback_and_names_force() {
        let found = RolledBack {
            deployment: "ecs-svc-2".into(),
            digest: "sha256:bad".into(),
            tag: "latest".into(),
            at: "2026-11-21T10:05:00Z".into(),
            reason: "x".repeat(400),
        };
        let s = svc("");
        let why = refusal(&found, &way_through(&s, false, Some("latest")));
        assert!(
            why.starts_with("sha256:bad (deployed as latest) was rolled back by pushdeploy at 2026-11-21T10:05:00Z (deployment ecs-svc-2): xxx"),
            "{why}"
        );
        assert!(why.contains(&format!("{}…", "x".repeat(300))) && !why.contains(&"x".repeat(301)), "{why}");
        assert!(why.contains(&format!("`pushdeploy deploy {} latest --force`", s.name)), "{why}");
        assert!(why.contains("\"force\": true"), "{why}");
        let why = refusal(&found, &way_through(&s, true, None));
        assert!(why.contains(&format!("`pushdeploy redeploy {} --force`", s.name)), "{why}");
        assert!(forced_note(&found).contains("forced past the rollback of sha256:bad"));
    }

    /// Observe mode rolled nothing back: a build it only observed failing is deployed again on a
    /// push (the record says `failed`, not `rolled_back`).
    #[test]
    fn an_observed_failure_is_not_refused_as_rolled_back() {
        let mut observed = of("2", "sha256:bad", Status::Failed, "2026-11-21T10:00:00Z");
        observed.mode = crate::domain::mode::Mode::Observe;
        observed.reason = Some("observe: would roll back: GET /: status 500".into());
        observed.timeline.push(TimelineEntry { event: "would_roll_back".into(), at: "2026-11-21T10:05:00Z".into() });
        assert!(observed.observed_failure());
        assert_eq!(find(&[observed], "sha256:bad"), None);
    }
}
