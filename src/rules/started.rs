//! The record of a rollout: built in one piece from what was asked and what was decided, once the
//! service's lease is ours. The same value gives the lease's pending copy (before UpdateService,
//! so a crash taker can finish it) and the record written after ECS answered. Pure.

use std::collections::BTreeMap;

use crate::config::{ServiceConfig, Strategy};
use crate::domain::image::ImageRef;
use crate::domain::passed_over::PassedOver;
use crate::domain::record::{DeploymentRecord, Status, TimelineEntry, TriggerRef};
use crate::rules::decision::{source_of, ServiceState};
use crate::rules::plan::ServicePlan;

/// With `base = "family"`: the revision a rollout copied, what else it changed, and the newer
/// revisions passed over.
#[derive(Debug, Clone)]
pub struct Based<'a> {
    /// The revision copied.
    pub base: String,
    /// What it changes besides the image.
    pub changes: &'a [String],
    /// Newer revisions of the family not copied, and why.
    pub passed_over: &'a [PassedOver],
}

/// A rollout as started: everything its record says before ECS names its deployment.
#[derive(Debug, Clone)]
pub struct Started<'a> {
    /// The service rolled out.
    pub svc: &'a ServiceConfig,
    /// The image rolled out (its tag and digest).
    pub image: &'a ImageRef,
    /// What asked for it.
    pub trigger: &'a TriggerRef,
    /// ECR's push time, when known.
    pub pushed_at: Option<&'a str>,
    /// The push event's own time, for a push.
    pub event_time: Option<&'a str>,
    /// The image URI the containers get.
    pub image_uri: &'a str,
    /// The containers changed.
    pub containers: &'a [String],
    /// The revision the service ran.
    pub previous: &'a str,
    /// The revision it is updated to ("" while not yet registered).
    pub task_definition: String,
    /// `base = "family"`: what was copied.
    pub based: Option<Based<'a>>,
    /// When it started (RFC 3339), the same in the lease's copy and the record.
    pub at: String,
}

impl<'a> Started<'a> {
    /// The rollout of `plan` to `task_definition`, decided against `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn of_plan(
        svc: &'a ServiceConfig,
        image: &'a ImageRef,
        trigger: &'a TriggerRef,
        times: (Option<&'a str>, Option<&'a str>),
        plan: &'a ServicePlan,
        state: &'a ServiceState,
        task_definition: String,
        at: String,
    ) -> Self {
        let based = (svc.base == crate::config::Base::Family).then(|| Based {
            base: source_of(state).0,
            changes: &plan.base_changes,
            passed_over: &state.passed_over,
        });
        Started {
            svc,
            image,
            trigger,
            pushed_at: times.0,
            event_time: times.1,
            image_uri: &plan.image_uri,
            containers: &plan.containers,
            previous: &state.current_arn,
            task_definition,
            based,
            at,
        }
    }

    /// The lease's copy, before ECS answers: no deployment id yet, nor the digests captured.
    pub fn pending(&self) -> DeploymentRecord {
        self.record(String::new(), String::new(), None)
    }

    /// The record of the rollout ECS took as `ecs_deployment_id` (`id` is the record's id of it).
    pub fn record(
        &self,
        id: String,
        ecs_deployment_id: String,
        previous_digests: Option<BTreeMap<String, String>>,
    ) -> DeploymentRecord {
        let svc = self.svc;
        let mut timeline = Vec::new();
        if let Some(p) = self.pushed_at {
            timeline.push(TimelineEntry { event: "pushed".into(), at: p.to_string() });
        }
        timeline.push(TimelineEntry { event: "started".into(), at: self.at.clone() });
        DeploymentRecord {
            id,
            cluster: svc.cluster.clone(),
            service: svc.service.clone(),
            name: svc.name.clone(),
            repository: svc.repository.clone(),
            tag: self.image.tag.clone().unwrap_or_default(),
            digest: self.image.digest.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            image_uri: self.image_uri.to_string(),
            strategy: match svc.strategy {
                Strategy::PinDigest => "pin-digest".into(),
                Strategy::ForceNewDeployment => "force-new-deployment".into(),
            },
            trigger: self.trigger.clone(),
            pushed_at: self.pushed_at.map(str::to_string),
            event_time: self.event_time.map(str::to_string),
            previous_task_definition: self.previous.to_string(),
            task_definition: self.task_definition.clone(),
            ecs_deployment_id,
            status: Status::Started,
            containers: self.containers.to_vec(),
            smoke: None,
            reason: None,
            rolled_back_to: None,
            rollback_deployment: None,
            previous_digests,
            rolled_back_by: None,
            service_deployment_arn: None,
            hook_checks: Vec::new(),
            hook_tally: None,
            smoke_attempts: 0,
            base: self.based.as_ref().map(|b| b.base.clone()),
            base_changes: self.based.as_ref().map(|b| b.changes.to_vec()).unwrap_or_default(),
            passed_over: self.based.as_ref().map(|b| b.passed_over.to_vec()).unwrap_or_default(),
            restores: None,
            requested: None,
            mode: svc.mode,
            timeline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::taskdef::tests::{pushed, svc};

    #[test]
    fn the_lease_copy_and_the_record_are_the_same_rollout_but_for_what_ecs_answered() {
        let (s, image) = (svc(""), pushed());
        let trigger = TriggerRef::Push { event_id: "evt-1".into() };
        let containers = vec!["web".to_string()];
        let started = Started {
            svc: &s,
            image: &image,
            trigger: &trigger,
            pushed_at: Some("2026-11-20T10:00:00Z"),
            event_time: None,
            image_uri: "img@sha256:1",
            containers: &containers,
            previous: "td:1",
            task_definition: "td:2".into(),
            based: None,
            at: "2026-11-20T10:00:05Z".into(),
        };
        let pending = started.pending();
        let record = started.record("ecs-svc-1".into(), "ecs-svc/1".into(), Some(BTreeMap::new()));
        assert_eq!((pending.id.as_str(), pending.ecs_deployment_id.as_str()), ("", ""));
        assert_eq!(pending.timeline, record.timeline, "one start time in both");
        assert_eq!(
            DeploymentRecord { id: String::new(), ecs_deployment_id: String::new(), previous_digests: None, ..record },
            pending
        );
    }
}
