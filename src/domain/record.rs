//! The deployment record: what ran when, and was it good. One JSON object per rollout in S3.

use serde::{Deserialize, Serialize};

pub use super::hook_check::HookCheck;

use crate::domain::error::InputError;
use crate::domain::image::truncate;
use crate::domain::mode::Mode;
use crate::domain::passed_over::PassedOver;
use crate::domain::rollback_request::RollbackRequest;

/// Where a deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// UpdateService accepted; ECS is rolling out.
    Started,
    /// ECS reports the rollout finished; not yet smoke-tested.
    Completed,
    /// Smoke test passed.
    Verified,
    /// ECS's circuit breaker or the smoke test failed it.
    Failed,
    /// pushdeploy returned the service to the previous task definition.
    RolledBack,
    /// The rollback itself failed: a person must act.
    RollbackFailed,
}

impl Status {
    /// The name records and messages use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Completed => "completed",
            Status::Verified => "verified",
            Status::Failed => "failed",
            Status::RolledBack => "rolled_back",
            Status::RollbackFailed => "rollback_failed",
        }
    }
}

/// What caused a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerRef {
    /// An ECR push event.
    Push {
        /// EventBridge event id.
        event_id: String,
    },
    /// An operator's direct invocation.
    Manual {
        /// `redeploy`, `deploy`, `rollback`.
        action: String,
        /// Lambda request id of the invocation.
        request_id: String,
    },
    /// pushdeploy's own automatic rollback of another deployment.
    AutoRollback {
        /// The record id of the deployment that failed.
        of: String,
    },
}

impl TriggerRef {
    /// A one-word id for logs.
    pub fn id(&self) -> &str {
        match self {
            TriggerRef::Push { event_id } => event_id,
            TriggerRef::Manual { request_id, .. } => request_id,
            TriggerRef::AutoRollback { of } => of,
        }
    }
}

/// One timestamped step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// `pushed`, `started`, `ecs_in_progress`, `ecs_completed`, `verified`, `rolled_back`, …
    pub event: String,
    /// RFC 3339 time.
    pub at: String,
}

/// The deployment record, as DESIGN.md fixes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Record id: the ECS deployment id made key-safe (`ecs-svc-…`).
    pub id: String,
    /// ECS cluster.
    pub cluster: String,
    /// ECS service.
    pub service: String,
    /// The config's name for the service.
    pub name: String,
    /// ECR repository.
    pub repository: String,
    /// Tag that was deployed.
    pub tag: String,
    /// Digest that was deployed.
    pub digest: String,
    /// The digest-pinned image URI.
    pub image_uri: String,
    /// Rollout strategy used.
    pub strategy: String,
    /// What caused it.
    pub trigger: TriggerRef,
    /// When ECR reported the push, if a push caused it.
    pub pushed_at: Option<String>,
    /// The push event's own `time` (EventBridge's), if a push caused it: the order of the pushes a
    /// service acted on, which decides whether a later-arriving event is stale. Absent on records
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// Task definition the service ran before.
    pub previous_task_definition: String,
    /// Task definition this deployment runs.
    pub task_definition: String,
    /// ECS's id for the rollout (`ecs-svc/…`).
    pub ecs_deployment_id: String,
    /// Where it stands.
    pub status: Status,
    /// Containers whose images changed.
    pub containers: Vec<String>,
    /// Smoke test results, once verify has run.
    #[serde(default)]
    pub smoke: Option<serde_json::Value>,
    /// Why it ended as it did, when it did not pass.
    #[serde(default)]
    pub reason: Option<String>,
    /// The task definition a rollback returned the service to.
    #[serde(default)]
    pub rolled_back_to: Option<String>,
    /// The record id of the rollback's own deployment.
    #[serde(default)]
    pub rollback_deployment: Option<String>,
    /// The digest each container of `previous_task_definition` ran, as ECS resolved it: what a
    /// rollback pins a tag-based revision to, since the tag may point elsewhere by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_digests: Option<std::collections::BTreeMap<String, String>>,
    /// Who rolled it back when not pushdeploy: `ecs`, after a lifecycle hook answered FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_by: Option<String>,
    /// ECS's service deployment, when its lifecycle hooks called pushdeploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment_arn: Option<String>,
    /// The lifecycle hook's checks, one per stage (and per step of a linear or canary shift).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_checks: Vec<HookCheck>,
    /// The tally of the hook check in progress (rounds and streak across invocations). Kept on
    /// the record, never taken from `hookDetails`: anyone who may invoke verify can write those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_tally: Option<crate::domain::lifecycle::Carried>,
    /// Smoke tests verify started on this deployment. One that never reached a verdict died
    /// (out of memory, past its timeout): after a few, verify rolls back instead of testing again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub smoke_attempts: u32,
    /// `base = "family"`: the revision this deployment's copy was made from (the family's newest
    /// from a trusted registrant, or the revision the service ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// `base = "family"`: every field the copy changed besides the pushed image, against what ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_changes: Vec<String>,
    /// `base = "family"`: newer revisions of the family not copied, each with who registered it and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_over: Vec<PassedOver>,
    /// A rollback's: the record id of the verified deployment whose build it returned the service
    /// to (none when it returned to a revision pushdeploy never judged). What a later rollback
    /// reads to go further back, never forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    /// A manual rollback's: what the operator asked, where the target came from, who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<RollbackRequest>,
    /// `observe`: verify only records and tells its verdict. Left out for `enforce` (as before).
    #[serde(default, skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
    /// Steps with times.
    pub timeline: Vec<TimelineEntry>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl DeploymentRecord {
    /// Appends a timeline entry.
    pub fn stamp(&mut self, event: &str, at: String) {
        self.timeline.push(TimelineEntry { event: event.to_string(), at });
    }

    /// True when this deployment is itself a rollback (never smoke-tested, never rolled back).
    pub fn is_rollback(&self) -> bool {
        match &self.trigger {
            TriggerRef::AutoRollback { .. } => true,
            TriggerRef::Manual { action, .. } => action == "rollback",
            TriggerRef::Push { .. } => false,
        }
    }

    /// True once a verdict is in: nothing more happens to this deployment.
    pub fn is_settled(&self) -> bool {
        matches!(self.status, Status::Verified | Status::Failed | Status::RolledBack)
            || (self.status == Status::Completed && self.is_rollback())
    }

    /// When the rollout started (epoch seconds), from the timeline.
    pub fn started_at(&self) -> Option<f64> {
        self.timeline.iter().find(|e| e.event == "started").and_then(|e| epoch_seconds(&e.at))
    }

    /// Seconds from the push to the `verified` entry, for a verified deployment that records
    /// when its image was pushed.
    pub fn lead_time_seconds(&self) -> Option<f64> {
        if self.status != Status::Verified {
            return None;
        }
        let verified = self.timeline.iter().find(|e| e.event == "verified").and_then(|e| epoch_seconds(&e.at))?;
        Some(verified - self.pushed_at.as_deref().and_then(epoch_seconds)?)
    }

    /// The first 12 hex characters of the deployed digest, as `docker images` shows them.
    pub fn short_digest(&self) -> &str {
        self.digest.strip_prefix("sha256:").map_or(self.digest.as_str(), |h| &h[..h.len().min(12)])
    }

    /// True when a push caused it.
    pub fn is_push(&self) -> bool {
        matches!(self.trigger, TriggerRef::Push { .. })
    }

    /// Whether the timeline already has `event`.
    pub fn has(&self, event: &str) -> bool {
        self.timeline.iter().any(|e| e.event == event)
    }

    /// This record's S3 key.
    pub fn key(&self) -> String {
        record_key(&self.cluster, &self.service, &self.ecs_deployment_id)
            .expect("record built from a valid deployment id")
    }
}

/// What a rollback record needs beyond the service's identity.
#[derive(Debug, Clone)]
pub struct RollbackOf<'a> {
    /// A record of the same service, whose identity (cluster, service, name, repository, strategy,
    /// containers) the rollback's record shares.
    pub service_of: &'a DeploymentRecord,
    /// Automatic (verify) or manual (the operator).
    pub trigger: TriggerRef,
    /// The task definition rolled back from.
    pub from: &'a str,
    /// The task definition rolled back to.
    pub to: &'a str,
    /// The image the service returns to, with the tag and digest it was deployed as, when known.
    pub image_uri: String,
    /// Its tag.
    pub tag: String,
    /// Its digest.
    pub digest: String,
    /// The record id of the verified deployment it returns to, when there is one.
    pub restores: Option<&'a str>,
    /// ECS's id for the rollback's own deployment; `None` for the pending record a lease carries
    /// before UpdateService (whoever finishes it fills the id in).
    pub ecs_deployment_id: Option<&'a str>,
    /// Why, for the record.
    pub reason: String,
}

impl DeploymentRecord {
    /// The record of a rollback's own ECS deployment, so its events are recognised and never
    /// smoke-tested.
    pub fn rollback(r: RollbackOf<'_>) -> Result<DeploymentRecord, InputError> {
        Ok(DeploymentRecord {
            id: r.ecs_deployment_id.map(record_id).transpose()?.unwrap_or_default(),
            trigger: r.trigger,
            pushed_at: None,
            event_time: None,
            previous_task_definition: r.from.to_string(),
            task_definition: r.to.to_string(),
            ecs_deployment_id: r.ecs_deployment_id.unwrap_or_default().to_string(),
            status: Status::Started,
            tag: r.tag,
            digest: r.digest,
            image_uri: r.image_uri,
            smoke: None,
            reason: Some(r.reason),
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
            restores: r.restores.map(str::to_string),
            requested: None,
            mode: Mode::Enforce,
            timeline: vec![TimelineEntry { event: "started".into(), at: now() }],
            ..r.service_of.clone()
        })
    }
}

/// The ECS deployment id a record id was made from: `ecs-svc-123` → `ecs-svc/123`.
pub fn ecs_deployment_id(record_id: &str) -> Option<String> {
    record_id.strip_prefix("ecs-svc-").map(|n| format!("ecs-svc/{n}"))
}

/// The record id for an ECS deployment id: `ecs-svc/123` → `ecs-svc-123`.
pub fn record_id(ecs_deployment_id: &str) -> Result<String, InputError> {
    let ok = ecs_deployment_id.len() <= 64
        && ecs_deployment_id
            .strip_prefix("ecs-svc/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(ecs_deployment_id.replace('/', "-"))
    } else {
        Err(InputError::new(format!("{:?} is not an ECS deployment id", truncate(ecs_deployment_id))))
    }
}

/// `deployments/<cluster>/<service>/<record id>.json`: one GET from an ECS deployment event.
pub fn record_key(cluster: &str, service: &str, ecs_deployment_id: &str) -> Result<String, InputError> {
    Ok(format!("{}{}.json", records_prefix(cluster, service), record_id(ecs_deployment_id)?))
}

/// The prefix under which a service's history lives.
pub fn records_prefix(cluster: &str, service: &str) -> String {
    format!("deployments/{cluster}/{service}/")
}

/// Parses an RFC 3339 time into epoch seconds.
pub fn epoch_seconds(at: &str) -> Option<f64> {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from_str(at, DateTimeFormat::DateTime).ok().map(|d| d.as_secs_f64())
}

/// Epoch seconds as RFC 3339 UTC (whole seconds).
pub fn rfc3339(epoch_seconds: f64) -> String {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from_secs(epoch_seconds.floor() as i64)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Now, as RFC 3339 UTC.
pub fn now() -> String {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from(std::time::SystemTime::now())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_record_shares_the_service_and_names_both_revisions() {
        let deployed: DeploymentRecord = serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "c", "service": "s", "name": "backend", "repository": "r",
            "tag": "latest", "digest": "sha256:aa", "image_uri": "r@sha256:aa", "strategy": "pin-digest",
            "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": "2026-11-27T00:00:00Z",
            "previous_task_definition": "td:1", "task_definition": "td:2", "ecs_deployment_id": "ecs-svc/1",
            "status": "failed", "containers": ["backend"], "smoke": {"passed": false}, "reason": "smoke failed",
            "previous_digests": {"backend": "sha256:bb"},
            "timeline": [{"event": "started", "at": "2026-11-27T00:00:01Z"}]
        }))
        .unwrap();
        let r = DeploymentRecord::rollback(RollbackOf {
            service_of: &deployed,
            trigger: TriggerRef::AutoRollback { of: deployed.id.clone() },
            from: "td:2",
            to: "td:3",
            image_uri: "r@sha256:bb".into(),
            tag: String::new(),
            digest: "sha256:bb".into(),
            restores: Some("ecs-svc-0"),
            ecs_deployment_id: Some("ecs-svc/2"),
            reason: "automatic rollback of ecs-svc-1".into(),
        })
        .unwrap();
        assert_eq!((r.id.as_str(), r.key().as_str()), ("ecs-svc-2", "deployments/c/s/ecs-svc-2.json"));
        assert_eq!((r.previous_task_definition.as_str(), r.task_definition.as_str()), ("td:2", "td:3"));
        assert_eq!((r.name.as_str(), r.containers.clone()), ("backend", vec!["backend".to_string()]));
        assert!(r.is_rollback() && r.status == Status::Started && r.smoke.is_none() && r.pushed_at.is_none());
        assert!(r.previous_digests.is_none() && r.rolled_back_to.is_none());
        assert_eq!(r.restores.as_deref(), Some("ecs-svc-0"));
        assert_eq!(r.timeline.len(), 1);
        assert!(
            DeploymentRecord::rollback(RollbackOf {
                ecs_deployment_id: Some("../x"),
                ..RollbackOf {
                    service_of: &deployed,
                    trigger: TriggerRef::AutoRollback { of: String::new() },
                    from: "",
                    to: "",
                    image_uri: String::new(),
                    tag: String::new(),
                    digest: String::new(),
                    restores: None,
                    ecs_deployment_id: None,
                    reason: String::new(),
                }
            })
            .is_err(),
            "an id that is not ECS's is refused"
        );
    }

    #[test]
    fn a_family_base_is_kept_on_the_record_and_older_records_still_parse() {
        let mut r = crate::rules::rollback::tests::record("ecs-svc-1", "td:2", Status::Started, "2026-11-27T00:00:00Z");
        let plain = serde_json::to_value(&r).unwrap();
        for key in ["base", "base_changes", "passed_over"] {
            assert!(plain.get(key).is_none(), "{key} is left out when there is none: {plain}");
        }
        // A record written before these fields existed reads as having none.
        assert_eq!(serde_json::from_value::<DeploymentRecord>(plain.clone()).unwrap(), r);
        // Enforce mode is left out (the bytes of an enforce record are as before); observe is kept.
        assert!(plain.get("mode").is_none(), "{plain}");
        let mut observed = r.clone();
        observed.mode = crate::domain::mode::Mode::Observe;
        let json = serde_json::to_value(&observed).unwrap();
        assert_eq!(json["mode"], "observe");
        assert_eq!(serde_json::from_value::<DeploymentRecord>(json).unwrap(), observed);
        r.base = Some("td:1".into());
        r.base_changes = vec!["backend.environment.X: \"a\" → \"b\"".into()];
        r.passed_over = vec![PassedOver {
            task_definition: "td:3".into(),
            registered_by: Some("arn:aws:sts::1:assumed-role/dev/x".into()),
            reason: "its registrant is not in trusted_registrants".into(),
        }];
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["base"], "td:1");
        assert_eq!(json["base_changes"][0], "backend.environment.X: \"a\" → \"b\"");
        assert_eq!(json["passed_over"][0]["registered_by"], "arn:aws:sts::1:assumed-role/dev/x");
        assert_eq!(serde_json::from_value::<DeploymentRecord>(json).unwrap(), r);
    }

    #[test]
    fn keys_are_derived_from_the_ecs_deployment_id() {
        assert_eq!(
            record_key("todo-cluster", "todo-frontend", "ecs-svc/1234567890123456789").unwrap(),
            "deployments/todo-cluster/todo-frontend/ecs-svc-1234567890123456789.json"
        );
        assert!(record_id("ecs-svc/../../x").is_err());
        assert!(record_id("svc/1").is_err());
        assert!(record_id("ecs-svc/").is_err());
    }

    #[test]
    fn now_is_rfc3339() {
        let n = now();
        assert!(n.len() >= 20 && n.ends_with('Z') && n.as_bytes()[10] == b'T', "{n}");
    }
}
