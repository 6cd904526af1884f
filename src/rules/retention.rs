//! Pure: which of pushdeploy's own revisions of a family it no longer needs (`keep_revisions`).
//!
//! A family can be shared: staging and production (or a canary service) run revisions of one
//! family, so what one service's deployment may prune is decided over every configured service:
//! never a revision any of them runs, nor one it could roll back to.

use std::collections::BTreeSet;

use crate::domain::ecs_view::RanRevision;
use crate::domain::record::DeploymentRecord;
use crate::rules::rollback;

/// How many revisions of a family pruning describes in one run beyond `keep_revisions`: older ones
/// are left for the next verified deployment's run.
pub const PRUNED_PER_RUN: usize = 100;

/// The most revisions of a family pruning describes in one run, whatever `keep_revisions` says.
pub const DESCRIBED_PER_RUN: usize = 500;

/// How many of a family's newest revisions one run of pruning describes for `keep`.
pub fn described_per_run(keep: usize) -> usize {
    (keep + PRUNED_PER_RUN).min(DESCRIBED_PER_RUN)
}

/// What one configured ECS service has in use and could return to, as read for pruning.
#[derive(Debug, Clone, Default)]
pub struct ServiceUse {
    /// `cluster/service`, for logs.
    pub service: String,
    /// The task definitions ECS has in use for it: the service's own first, then every
    /// deployment's (the one a rollout replaces among them).
    pub running: Vec<String>,
    /// ECS's history of it: the revisions it ran ([`crate::aws::ecs::EcsClient::ran_revisions`]).
    pub ran: Vec<RanRevision>,
    /// Its most recently written deployment records.
    pub records: Vec<DeploymentRecord>,
}

/// Every revision a service in `uses` runs or could return to, under `keep_revisions = keep`:
/// - every task definition ECS has in use for it;
/// - its newest rollback targets, `keep - 1` of them but at least one (with what it runs, `keep`
///   revisions per service), each what [`crate::rules::rollback::choose_target`] picks a step further
///   back than the last: the one rule automatic and manual rollbacks share;
/// - for a deployment not yet judged, both its revision and the one it replaced (an automatic
///   rollback returns there).
pub fn protected(uses: &[ServiceUse], keep: usize) -> BTreeSet<String> {
    let depth = keep.saturating_sub(1).max(1);
    let mut kept = BTreeSet::new();
    for u in uses {
        kept.extend(u.running.iter().cloned());
        for r in u.records.iter().filter(|r| !r.is_settled()) {
            kept.insert(r.task_definition.clone());
            kept.insert(r.previous_task_definition.clone());
        }
        // The targets a rollback would choose, by the one rule rollbacks use, each one a step
        // further back than the last.
        let Some(mut from) = u.running.first().cloned() else { continue };
        for _ in 0..depth {
            let Ok(target) = rollback::choose_target(&u.records, &from, &u.ran) else { break };
            from = target.revision.task_definition.clone();
            kept.insert(from.clone());
        }
    }
    kept.retain(|td| !td.is_empty());
    kept
}

/// The revisions to deregister: all of `own` (pushdeploy's revisions, newest first) beyond the
/// newest `keep`, except those in `protected` ([`protected`]).
pub fn prunable<'a>(own_newest_first: &'a [String], keep: usize, protected: &BTreeSet<String>) -> Vec<&'a str> {
    own_newest_first.iter().skip(keep).filter(|arn| !protected.contains(*arn)).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::{Status, TriggerRef};
    use crate::rules::rollback::tests::{ran, record};

    fn set(tds: &[&str]) -> BTreeSet<String> {
        tds.iter().map(|t| t.to_string()).collect()
    }

    /// A service running `running`, which ran `ran_tds`, with one record per `(td, status, day)`.
    fn service(running: &[&str], ran_tds: &[&str], records: &[(&str, Status, u32)]) -> ServiceUse {
        ServiceUse {
            service: "c/s".into(),
            running: running.iter().map(|t| t.to_string()).collect(),
            ran: ran(ran_tds),
            records: records
                .iter()
                .map(|(td, status, day)| {
                    let mut r = record(td, td, *status, &format!("2026-11-{day:02}T10:00:00Z"));
                    r.previous_task_definition = String::new();
                    r
                })
                .collect(),
        }
    }

    #[test]
    fn keeps_the_newest_and_never_what_is_protected() {
        let own: Vec<String> = (2..=7).rev().map(|n| format!("td:{n}")).collect(); // td:7 … td:2
        assert_eq!(prunable(&own, 3, &set(&["td:7", "td:6"])), ["td:4", "td:3", "td:2"]);
        assert_eq!(prunable(&own, 3, &set(&["td:7", "td:3"])), ["td:4", "td:2"]);
        assert!(prunable(&own, 10, &set(&[])).is_empty());
    }

    #[test]
    fn a_staging_deployment_never_prunes_what_production_runs_or_would_roll_back_to() {
        use Status::Verified;
        // One family: production on web:3 (verified web:2 before it), staging on web:6.
        let production = service(
            &["web:3"],
            &["web:3", "web:2", "web:1"],
            &[("web:1", Verified, 1), ("web:2", Verified, 2), ("web:3", Verified, 3)],
        );
        let staging = service(
            &["web:6"],
            &["web:6", "web:5", "web:4"],
            &[("web:4", Verified, 4), ("web:5", Verified, 5), ("web:6", Verified, 6)],
        );
        let own: Vec<String> = (1..=6).rev().map(|n| format!("web:{n}")).collect();
        let kept = protected(&[production.clone(), staging.clone()], 1);
        assert_eq!(kept, set(&["web:2", "web:3", "web:5", "web:6"]));
        assert_eq!(prunable(&own, 1, &kept), ["web:4", "web:1"]);
        // keep_revisions = 3: each service keeps what it runs and two rollbacks deep.
        assert_eq!(prunable(&own, 3, &protected(&[production.clone(), staging.clone()], 3)), Vec::<&str>::new());
        // keep_revisions = 2 on one service alone: what it runs and the revision before it.
        assert_eq!(protected(std::slice::from_ref(&production), 2), set(&["web:2", "web:3"]));
    }

    #[test]
    fn only_a_verified_deployment_ecs_ran_is_a_rollback_target() {
        use Status::{Failed, RolledBack, Started, Verified};
        // web:4 runs; web:3 failed, web:2 is verified but ECS's history has no run of it (a record
        // is an object in a bucket), web:1 is verified and ran.
        let u = service(
            &["web:4"],
            &["web:4", "web:3", "web:1"],
            &[("web:1", Verified, 1), ("web:2", Verified, 2), ("web:3", Failed, 3), ("web:4", Verified, 4)],
        );
        assert_eq!(protected(std::slice::from_ref(&u), 1), set(&["web:1", "web:4"]));
        // A rollback's own record is never a target, nor a deployment it rolled back.
        let mut back = service(&["web:1"], &["web:2", "web:1"], &[("web:1", Verified, 1), ("web:2", RolledBack, 2)]);
        let mut rb = record("rb", "web:1", Verified, "2026-11-03T10:00:00Z");
        rb.trigger = TriggerRef::AutoRollback { of: "web:2".into() };
        back.records.push(rb);
        assert_eq!(protected(&[back], 4), set(&["web:1"]), "after a rollback to web:1, nothing older was verified");
        // A deployment in flight keeps the revision it replaced, where a rollback returns it.
        let mut flight = service(&["web:8", "web:7"], &["web:7"], &[("web:8", Started, 8)]);
        flight.records[0].previous_task_definition = "web:6".into();
        assert_eq!(protected(&[flight], 1), set(&["web:6", "web:7", "web:8"]));
    }

    #[test]
    fn a_run_describes_a_bounded_window() {
        assert_eq!(described_per_run(20), 120);
        assert_eq!(described_per_run(1000), DESCRIBED_PER_RUN);
    }
}
