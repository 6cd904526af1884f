//! Pure: which deployment a manual rollback returns a service to.

use crate::aws::ecs::RanRevision;
use crate::confirm::rollback_target;
use crate::record::{DeploymentRecord, Status};
use crate::taskdef::short_name;

/// The last `verified` deployment before the current one that ECS's history shows the service
/// ran (`ran`), with the reason it was chosen.
///
/// "Current" is the newest record whose task definition the service runs now; when pushdeploy
/// has no record of it (someone deployed by hand), every record is older than it. A verified
/// record whose task definition ECS never ran for the service is passed over: records are
/// objects in a bucket, and only ECS's own history says what ran.
pub fn choose_target<'a>(
    records: &'a [DeploymentRecord],
    current_task_definition: &str,
    ran: &[RanRevision],
) -> Result<(&'a DeploymentRecord, String), String> {
    let mut by_time: Vec<&DeploymentRecord> = records.iter().collect();
    by_time.sort_by(|a, b| b.started_at().unwrap_or(0.0).total_cmp(&a.started_at().unwrap_or(0.0)));
    let current = by_time.iter().position(|r| r.task_definition == current_task_definition);
    let older = &by_time[current.map_or(0, |i| i + 1)..];
    let candidates: Vec<&&DeploymentRecord> = older
        .iter()
        .filter(|r| r.status == Status::Verified && r.task_definition != current_task_definition && !r.is_rollback())
        .collect();
    let passed_over: Vec<&str> = candidates
        .iter()
        .filter(|r| rollback_target(&r.task_definition, ran).is_err())
        .map(|r| short_name(&r.task_definition))
        .collect();
    let chosen = candidates.into_iter().find(|r| rollback_target(&r.task_definition, ran).is_ok()).ok_or_else(|| {
        let mut why = format!(
            "no verified deployment before the current {} to return to ({} record(s) looked at)",
            short_name(current_task_definition),
            records.len()
        );
        if !passed_over.is_empty() {
            why.push_str(&format!(
                "; verified record(s) naming {} were passed over: ECS's history of the service shows no successful deployment of them",
                passed_over.join(", ")
            ));
        }
        why
    })?;
    let verified_at = chosen.timeline.iter().find(|e| e.event == "verified").map_or("?", |e| e.at.as_str());
    let why = format!(
        "{} ran {}:{} ({}), verified at {verified_at}: the last verified deployment before the current {}",
        short_name(&chosen.task_definition),
        chosen.repository,
        chosen.tag,
        chosen.id,
        short_name(current_task_definition)
    );
    Ok((chosen, why))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{TimelineEntry, TriggerRef};

    pub fn record(id: &str, td: &str, status: Status, started: &str) -> DeploymentRecord {
        DeploymentRecord {
            id: id.into(),
            cluster: "c".into(),
            service: "s".into(),
            name: "backend".into(),
            repository: "todo-backend".into(),
            tag: "latest".into(),
            digest: "sha256:x".into(),
            image_uri: "r/todo-backend@sha256:x".into(),
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
            timeline: vec![TimelineEntry { event: "started".into(), at: started.into() }],
        }
    }

    /// ECS's history: the service ran every one of `tds`.
    pub fn ran(tds: &[&str]) -> Vec<RanRevision> {
        tds.iter().map(|td| RanRevision { task_definition: td.to_string(), digests: Default::default() }).collect()
    }

    #[test]
    fn picks_the_newest_verified_before_the_current() {
        let rs = vec![
            record("1", "td:1", Status::Verified, "2026-11-20T10:00:00Z"),
            record("2", "td:2", Status::Verified, "2026-11-21T10:00:00Z"),
            record("3", "td:3", Status::RolledBack, "2026-11-22T10:00:00Z"),
            record("4", "td:4", Status::Verified, "2026-11-23T10:00:00Z"),
        ];
        let history = ran(&["td:1", "td:2", "td:3", "td:4"]);
        let (r, why) = choose_target(&rs, "td:4", &history).unwrap();
        assert_eq!(r.id, "2", "the rolled-back td:3 is skipped");
        assert!(why.contains("td:2") && why.contains("before the current td:4"), "{why}");
        // Running something pushdeploy never recorded: the newest verified one is the target.
        assert_eq!(choose_target(&rs, "td:9", &history).unwrap().0.id, "4");
    }

    #[test]
    fn no_verified_deployment_is_an_answer_not_a_guess() {
        let rs = vec![
            record("1", "td:1", Status::Failed, "2026-11-20T10:00:00Z"),
            record("2", "td:2", Status::Verified, "2026-11-21T10:00:00Z"),
        ];
        let history = ran(&["td:1", "td:2"]);
        assert!(choose_target(&rs, "td:2", &history)
            .unwrap_err()
            .contains("no verified deployment before the current td:2"));
        assert!(choose_target(&[], "td:1", &history).is_err());
    }

    #[test]
    fn a_verified_record_ecs_never_ran_is_passed_over() {
        // A record planted in the bucket: "verified", naming a task definition the service never ran.
        let rs = vec![
            record("1", "td:1", Status::Verified, "2026-11-20T10:00:00Z"),
            record("2", "evil:1", Status::Verified, "2026-11-21T10:00:00Z"),
            record("3", "td:3", Status::Verified, "2026-11-22T10:00:00Z"),
        ];
        let (r, _) = choose_target(&rs, "td:3", &ran(&["td:1", "td:3"])).unwrap();
        assert_eq!(r.id, "1");
        let why = choose_target(&rs[1..], "td:3", &ran(&["td:3"])).unwrap_err();
        assert!(why.contains("passed over") && why.contains("evil:1"), "{why}");
    }
}
