//! Pure: where a rollback returns a service, and what it runs there. One rule for verify's
//! automatic rollback and the operator's `rollback` ([`crate::flows::rollback`] carries it out).
//!
//! The service's history is read newest first from its records, with each rollback read as the
//! service returning to the build it restored: the deployments it rolled away from are passed
//! over, so a second rollback goes further back and never forward again. From the deployment
//! being rolled away from, the target is the newest deployment pushdeploy verified that ECS's
//! own history shows the service ran. Only when there is none: a revision ECS ran to completion
//! that pushdeploy never judged (one a rollback returned to, or one deployed before or beside
//! pushdeploy). A revision that never ran healthy (stuck, or failed by ECS or by pushdeploy) is
//! never a target; no target is an answer, not a guess.

use std::collections::HashSet;

use crate::domain::ecs_view::RanRevision;
use crate::domain::error::AwsError;
use crate::domain::names::short_name;
use crate::domain::record::{DeploymentRecord, Status};
use crate::rules::confirm::rollback_target;

/// Where a rollback goes, and why.
#[derive(Debug)]
pub struct Target<'a> {
    /// The revision, as ECS's history holds it (with the digests ECS resolved when it ran).
    pub revision: &'a RanRevision,
    /// The verified deployment it returns to; `None` when pushdeploy never judged the revision.
    pub restores: Option<&'a DeploymentRecord>,
    /// One line for the record, the answer and the message.
    pub why: String,
}

/// What a rollback will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The task definition ARN UpdateService is given.
    pub task_definition: String,
    /// The images a pinned copy names by digest (empty when the target itself runs).
    pub pinned: Vec<String>,
}

/// Why a rollback has nothing safe to run.
#[derive(Debug)]
pub enum NotPrepared {
    /// The target names an image by tag and ECS's history holds no digest for it: running it
    /// would pull whatever the tag names now, perhaps the very build rolled back.
    Unsafe(String),
    /// Reading the target or registering its copy failed.
    Aws(AwsError),
}

/// The service's most recently started record.
pub fn newest(records: &[DeploymentRecord]) -> Option<&DeploymentRecord> {
    records.iter().max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)))
}

/// The revision the running one (`current`) replaced, by the newest build record naming it:
/// ECS's history may not hold it (deployed before it kept service revisions), and its tasks show
/// what it ran. Empty when no record names `current`.
pub fn replaced_by(records: &[DeploymentRecord], current: &str) -> String {
    records
        .iter()
        .filter(|r| r.task_definition == current && !r.is_rollback())
        .max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)))
        .map(|r| r.previous_task_definition.clone())
        .unwrap_or_default()
}

/// One step of the service's history, as a rollback reads it.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// A deployment of a build (a push, `deploy`, `redeploy`), with pushdeploy's verdict.
    Build(&'a DeploymentRecord),
    /// A rollback whose restored deployment is not among the records read: the service ran the
    /// rollback's revision, which pushdeploy never tested as a build.
    ReturnedTo(&'a DeploymentRecord),
}

/// The rollback target for a service rolled away from `from` (the failed deployment's task
/// definition for an automatic rollback, the running one for a manual one), chosen from its
/// `records` (any order) and `ran`, ECS's history of what it ran (newest first). `Err` says
/// plainly why there is none.
pub fn choose_target<'a>(
    records: &'a [DeploymentRecord],
    from: &str,
    ran: &'a [RanRevision],
) -> Result<Target<'a>, String> {
    let mut by_time: Vec<&DeploymentRecord> = records.iter().collect();
    by_time.sort_by(|a, b| {
        b.started_at().unwrap_or(0.0).total_cmp(&a.started_at().unwrap_or(0.0)).then_with(|| b.id.cmp(&a.id))
    });
    let steps = history(&by_time, from);
    let mut passed_over = Vec::new();
    if let Some(target) = last_verified(&steps, from, ran, &mut passed_over) {
        return Ok(target);
    }
    if let Some(target) = never_judged(&steps, records, from, ran) {
        return Ok(target);
    }
    let mut why = format!(
        "no verified deployment before {} to return to, and ECS's history shows no other revision the service ran to completion ({} record(s), {} revision(s) looked at)",
        short_name(from),
        records.len(),
        ran.len()
    );
    if !passed_over.is_empty() {
        why.push_str(&format!(
            "; verified record(s) naming {} were passed over: ECS's history of the service shows no successful deployment of them",
            passed_over.join(", ")
        ));
    }
    Err(why)
}

/// The newest verified build among `steps` that ECS's history shows the service ran; the
/// verified ones it does not show are noted in `passed_over`.
fn last_verified<'a>(
    steps: &[Step<'a>],
    from: &str,
    ran: &'a [RanRevision],
    passed_over: &mut Vec<&'a str>,
) -> Option<Target<'a>> {
    for step in steps {
        let Step::Build(r) = step else { continue };
        if r.status != Status::Verified || r.task_definition == from {
            continue;
        }
        match rollback_target(&r.task_definition, ran).ok() {
            Some(revision) => {
                let verified_at = r.timeline.iter().find(|e| e.event == "verified").map_or("?", |e| e.at.as_str());
                let why = format!(
                    "{} ran {}:{} ({}), verified at {verified_at}: the last verified deployment before {}",
                    short_name(&r.task_definition),
                    r.repository,
                    r.tag,
                    r.id,
                    short_name(from)
                );
                return Some(Target { revision, restores: Some(*r), why });
            }
            None => passed_over.push(short_name(&r.task_definition)),
        }
    }
    None
}

/// No verified deployment to return to: a revision ECS ran to completion that pushdeploy never
/// judged, newest first: one a rollback returned to, then one nobody recorded.
fn never_judged<'a>(
    steps: &[Step<'a>],
    records: &'a [DeploymentRecord],
    from: &str,
    ran: &'a [RanRevision],
) -> Option<Target<'a>> {
    let in_ecs = |td: &str| rollback_target(td, ran).ok();
    let returned_to = steps.iter().filter_map(|s| match s {
        Step::ReturnedTo(r) => Some(r.task_definition.as_str()),
        Step::Build(_) => None,
    });
    let recorded: HashSet<&str> = records.iter().map(|r| r.task_definition.as_str()).collect();
    let unrecorded = ran.iter().map(|r| r.task_definition.as_str()).filter(|td| !recorded.contains(td));
    // The images ECS ran for `from`: a revision never judged that ran those very images (the
    // source of the pinned copy running now) is where the service already is.
    let running_digests = in_ecs(from).map(|r| &r.digests).filter(|d| !d.is_empty());
    for td in returned_to.chain(unrecorded).filter(|td| *td != from) {
        if let Some(revision) = in_ecs(td).filter(|r| running_digests != Some(&r.digests)) {
            let whose = if recorded.contains(td) {
                "a revision a rollback returned the service to"
            } else {
                "a revision deployed outside pushdeploy"
            };
            let why = format!(
                "{}, {whose} that ECS's history shows the service ran to completion (pushdeploy never tested it): no verified deployment before {} to return to",
                short_name(td),
                short_name(from)
            );
            return Some(Target { revision, restores: None, why });
        }
    }
    None
}

/// The steps before the one the service is rolled away from, newest first.
///
/// The step rolled away from is the newest record naming `from`; when no record does (someone
/// deployed by hand), every record is older. A rollback stands for the deployment it restored:
/// what lies between them was rolled away from and is skipped.
fn history<'a>(by_time: &[&'a DeploymentRecord], from: &str) -> Vec<Step<'a>> {
    let index_of = |id: &str| by_time.iter().position(|r| r.id == id);
    let mut steps = Vec::new();
    let mut i = match by_time.iter().position(|r| r.task_definition == from) {
        Some(anchor) => below(by_time, anchor, &index_of),
        None => 0,
    };
    // Each step moves strictly down the list, so the walk ends.
    while i < by_time.len() {
        let r = by_time[i];
        if !r.is_rollback() {
            steps.push(Step::Build(r));
            i += 1;
            continue;
        }
        match restored(by_time, i, &index_of) {
            Some(j) => i = j,
            None => {
                steps.push(Step::ReturnedTo(r));
                i = below(by_time, i, &index_of);
            }
        }
    }
    steps
}

/// The index just past step `i` and what it rolled away from.
fn below(by_time: &[&DeploymentRecord], i: usize, index_of: &dyn Fn(&str) -> Option<usize>) -> usize {
    let r = by_time[i];
    if !r.is_rollback() {
        return i + 1;
    }
    if let Some(j) = restored(by_time, i, index_of) {
        return below(by_time, j, index_of);
    }
    // What it rolled away from: the newest older step naming the revision it left.
    match (i + 1..by_time.len()).find(|&j| by_time[j].task_definition == r.previous_task_definition) {
        Some(j) => below(by_time, j, index_of),
        None => i + 1,
    }
}

/// The index of the deployment rollback `i` restored, when it is among the records and older.
/// Records written before `restores` existed name it by the build's digest.
fn restored(by_time: &[&DeploymentRecord], i: usize, index_of: &dyn Fn(&str) -> Option<usize>) -> Option<usize> {
    let r = by_time[i];
    let found = match &r.restores {
        Some(id) => index_of(id),
        None if !r.digest.is_empty() => (i + 1..by_time.len()).find(|&j| {
            !by_time[j].is_rollback() && by_time[j].status == Status::Verified && by_time[j].digest == r.digest
        }),
        None => None,
    };
    found.filter(|&j| j > i && !by_time[j].is_rollback())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::record::{RollbackOf, TimelineEntry, TriggerRef};

    pub fn record(id: &str, td: &str, status: Status, started: &str) -> DeploymentRecord {
        DeploymentRecord {
            id: id.into(),
            cluster: "c".into(),
            service: "s".into(),
            name: "backend".into(),
            repository: "todo-backend".into(),
            tag: "latest".into(),
            digest: format!("sha256:{id}"),
            image_uri: format!("r/todo-backend@sha256:{id}"),
            strategy: "pin-digest".into(),
            trigger: TriggerRef::Push { event_id: "e".into() },
            pushed_at: None,
            event_time: None,
            previous_task_definition: "prev".into(),
            task_definition: td.into(),
            ecs_deployment_id: format!("ecs-svc/{id}"),
            status,
            containers: vec!["backend".into()],
            smoke: None,
            reason: None,
            rolled_back_to: None,
            rollback_deployment: None,
            previous_digests: None,
            rolled_back_by: None,
            service_deployment_arn: None,
            hook_checks: Vec::new(),
            hook_tally: None,
            smoke_attempts: 0,
            base: None,
            base_changes: Vec::new(),
            passed_over: Vec::new(),
            restores: None,
            requested: None,
            mode: crate::domain::mode::Mode::Enforce,
            timeline: vec![TimelineEntry { event: "started".into(), at: started.into() }],
        }
    }

    /// The record of a rollback from `from` to `to` that restored `restores` (when known).
    pub fn rollback_record(
        id: &str,
        from: &str,
        to: &str,
        restores: Option<&DeploymentRecord>,
        of: &DeploymentRecord,
        started: &str,
    ) -> DeploymentRecord {
        let mut r = DeploymentRecord::rollback(RollbackOf {
            service_of: of,
            trigger: TriggerRef::Manual { action: "rollback".into(), request_id: "r".into() },
            from,
            to,
            image_uri: restores.map_or(String::new(), |r| r.image_uri.clone()),
            tag: String::new(),
            digest: restores.map_or(String::new(), |r| r.digest.clone()),
            restores: restores.map(|r| r.id.as_str()),
            ecs_deployment_id: Some(&format!("ecs-svc/{id}")),
            reason: "test".into(),
        })
        .unwrap();
        r.status = Status::Completed;
        r.timeline = vec![TimelineEntry { event: "started".into(), at: started.into() }];
        r
    }

    /// ECS's history: the service ran every one of `tds` to completion, newest first.
    pub fn ran(tds: &[&str]) -> Vec<RanRevision> {
        tds.iter()
            .map(|td| RanRevision { task_definition: td.to_string(), digests: Default::default(), at: None })
            .collect()
    }

    fn at(day: u32) -> String {
        format!("2026-11-{day:02}T10:00:00Z")
    }

    fn target(records: &[DeploymentRecord], from: &str, history: &[RanRevision]) -> String {
        choose_target(records, from, history).map(|t| t.revision.task_definition.clone()).unwrap_or_else(|e| e)
    }

    #[test]
    fn picks_the_newest_verified_before_the_one_rolled_away_from() {
        let rs = vec![
            record("1", "td:1", Status::Verified, &at(20)),
            record("2", "td:2", Status::Verified, &at(21)),
            record("3", "td:3", Status::RolledBack, &at(22)),
            record("4", "td:4", Status::Verified, &at(23)),
        ];
        let history = ran(&["td:4", "td:3", "td:2", "td:1"]);
        let t = choose_target(&rs, "td:4", &history).unwrap();
        assert_eq!(t.restores.unwrap().id, "2", "the rolled-back td:3 is skipped");
        assert!(t.why.contains("td:2") && t.why.contains("before td:4"), "{}", t.why);
        // Running something pushdeploy never recorded: the newest verified one is the target.
        assert_eq!(target(&rs, "td:9", &history), "td:4");
    }

    #[test]
    fn an_automatic_rollback_never_lands_on_a_revision_that_did_not_run_healthy() {
        // td:2 stuck IN_PROGRESS (no circuit breaker): ECS's history has no successful run of it,
        // and pushdeploy never verified it. td:3 failed its smoke test. td:1 ran before pushdeploy.
        let stuck = record("2", "td:2", Status::Started, &at(21));
        let broken = record("3", "td:3", Status::Started, &at(22));
        let rs = vec![stuck, broken];
        assert_eq!(target(&rs, "td:3", &ran(&["td:3", "td:1"])), "td:1");
        // One pushdeploy itself recorded failed, though ECS completed it.
        let rs = vec![record("2", "td:2", Status::Failed, &at(21)), record("3", "td:3", Status::Started, &at(22))];
        assert_eq!(target(&rs, "td:3", &ran(&["td:3", "td:2", "td:1"])), "td:1");
        // Nothing healthy at all: said plainly.
        let why = target(&rs, "td:3", &ran(&["td:3", "td:2"]));
        assert!(why.starts_with("no verified deployment before td:3"), "{why}");
    }

    #[test]
    fn a_verified_deployment_wins_over_a_revision_nobody_tested() {
        let rs = vec![
            record("2", "td:2", Status::Verified, &at(21)),
            record("3", "td:3", Status::RolledBack, &at(22)),
            record("4", "td:4", Status::Started, &at(23)),
        ];
        // td:9 was deployed by hand after td:2: ECS ran it, pushdeploy never tested it.
        let history = ran(&["td:4", "td:9", "td:2"]);
        let t = choose_target(&rs, "td:4", &history).unwrap();
        assert_eq!((t.revision.task_definition.as_str(), t.restores.map(|r| r.id.as_str())), ("td:2", Some("2")));
        let t = choose_target(&rs[1..], "td:4", &history).unwrap();
        assert_eq!(t.revision.task_definition, "td:9");
        assert!(t.restores.is_none() && t.why.contains("deployed outside pushdeploy"), "{}", t.why);
    }

    #[test]
    fn rollback_twice_goes_further_back_and_never_forward() {
        let v1 = record("1", "td:1", Status::Verified, &at(20));
        let v2 = record("2", "td:2", Status::Verified, &at(21));
        let v3 = record("3", "td:3", Status::Verified, &at(22));
        let history = ran(&["td:3", "td:2", "td:1"]);
        let mut rs = vec![v1.clone(), v2.clone(), v3.clone()];
        assert_eq!(target(&rs, "td:3", &history), "td:2");
        rs.push(rollback_record("r1", "td:3", "td:2", Some(&v2), &v3, &at(23)));
        assert_eq!(target(&rs, "td:2", &history), "td:1", "the second rollback goes further back");
        rs.push(rollback_record("r2", "td:2", "td:1", Some(&v1), &v3, &at(24)));
        let why = target(&rs, "td:1", &history);
        assert!(why.starts_with("no verified deployment before td:1"), "already at the oldest: {why}");
    }

    #[test]
    fn rollback_twice_through_pinned_copies_goes_further_back() {
        // Each rollback ran a pinned copy (td:4 of td:2, then td:5 of td:1).
        let v1 = record("1", "td:1", Status::Verified, &at(20));
        let v2 = record("2", "td:2", Status::Verified, &at(21));
        let v3 = record("3", "td:3", Status::Verified, &at(22));
        let history = ran(&["td:4", "td:3", "td:2", "td:1"]);
        let mut rs = vec![v1.clone(), v2.clone(), v3.clone()];
        rs.push(rollback_record("r1", "td:3", "td:4", Some(&v2), &v3, &at(23)));
        assert_eq!(target(&rs, "td:4", &history), "td:1");
        // A record written before `restores`: the restored build is found by its digest.
        let mut legacy = rollback_record("r1", "td:3", "td:4", Some(&v2), &v3, &at(23));
        legacy.restores = None;
        rs[3] = legacy;
        assert_eq!(target(&rs, "td:4", &history), "td:1");
    }

    #[test]
    fn an_automatic_rollback_after_a_manual_one_returns_to_what_ran_before_it() {
        // td:3 was rolled back by hand to td:2; td:5 then failed: back to td:2, not the rejected td:3.
        let v2 = record("2", "td:2", Status::Verified, &at(21));
        let v3 = record("3", "td:3", Status::Verified, &at(22));
        let r1 = rollback_record("r1", "td:3", "td:2", Some(&v2), &v3, &at(23));
        let failed = record("5", "td:5", Status::Started, &at(24));
        let rs = vec![v2, v3, r1, failed];
        assert_eq!(target(&rs, "td:5", &ran(&["td:5", "td:2", "td:3", "td:2"])), "td:2");
    }

    #[test]
    fn a_cutover_that_fails_twice_returns_to_the_pipelines_revision_both_times() {
        // td:1 ran before pushdeploy (CodePipeline). td:2 failed and was rolled back to td:1.
        let failed2 = record("2", "td:2", Status::RolledBack, &at(21));
        let mut r1 = rollback_record("r1", "td:2", "td:1", None, &failed2, &at(22));
        r1.trigger = TriggerRef::AutoRollback { of: "2".into() };
        let failed3 = record("3", "td:3", Status::Started, &at(23));
        let rs = vec![failed2, r1, failed3];
        let history = ran(&["td:3", "td:1", "td:2", "td:1"]);
        let t = choose_target(&rs, "td:3", &history).unwrap();
        assert_eq!(t.revision.task_definition, "td:1");
        assert!(t.why.contains("a rollback returned the service to"), "{}", t.why);
        // A manual rollback from the pipeline's revision has nowhere older to go.
        let why = target(&rs[..2], "td:1", &ran(&["td:1", "td:2", "td:1"]));
        assert!(why.starts_with("no verified deployment before td:1"), "{why}");
        // Nor from a pinned copy of it (td:7), the same images ECS ran for td:1.
        let mut rs = rs[..1].to_vec();
        let mut r1 = rollback_record("r1", "td:2", "td:7", None, &rs[0], &at(22));
        r1.trigger = TriggerRef::AutoRollback { of: "2".into() };
        rs.push(r1);
        let mut history = ran(&["td:7", "td:2", "td:1"]);
        for r in history.iter_mut().filter(|r| r.task_definition != "td:2") {
            r.digests.insert("backend".into(), "sha256:pipeline".into());
        }
        let why = target(&rs, "td:7", &history);
        assert!(why.starts_with("no verified deployment before td:7"), "{why}");
    }

    #[test]
    fn a_verified_record_ecs_never_ran_is_passed_over() {
        // A record planted in the bucket: "verified", naming a task definition the service never ran.
        let rs = vec![
            record("1", "td:1", Status::Verified, &at(20)),
            record("2", "evil:1", Status::Verified, &at(21)),
            record("3", "td:3", Status::Verified, &at(22)),
        ];
        assert_eq!(target(&rs, "td:3", &ran(&["td:3", "td:1"])), "td:1");
        let why = target(&rs[1..], "td:3", &ran(&["td:3"]));
        assert!(why.contains("passed over") && why.contains("evil:1"), "{why}");
        assert!(choose_target(&[], "td:1", &ran(&["td:1"])).is_err());
    }

    /// A deployment observe mode failed kept serving but was never verified: a later rollback
    /// passes over it to the last verified deployment, however recently it ran.
    #[test]
    fn an_observed_failure_is_never_a_rollback_target() {
        let mut observed = record("2", "td:2", Status::Failed, &at(21));
        observed.mode = crate::domain::mode::Mode::Observe;
        observed.stamp(crate::domain::mode::WOULD_ROLL_BACK, at(21));
        assert!(observed.observed_failure());
        let rs = vec![
            record("1", "td:1", Status::Verified, &at(20)),
            observed,
            record("3", "td:3", Status::Started, &at(22)),
        ];
        // The push after it fails: back to td:1, not to td:2 that ran just before.
        assert_eq!(target(&rs, "td:3", &ran(&["td:3", "td:2", "td:1"])), "td:1");
        // An operator's rollback of the observed failure itself: back to td:1 too.
        assert_eq!(target(&rs, "td:2", &ran(&["td:2", "td:1"])), "td:1");
        // With no verified deployment at all, td:2 is recorded (and failed): never a target.
        let why = target(&rs[1..], "td:3", &ran(&["td:3", "td:2"]));
        assert!(why.starts_with("no verified deployment before td:3"), "{why}");
    }
}
