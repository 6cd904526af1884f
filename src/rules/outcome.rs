//! The JSON answer every invocation returns.

use serde::Serialize;

use crate::rules::taskdef::ContainerChange;

/// What an invocation (or one service within it) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The rollback itself failed.
    RollbackFailed,
    /// A failing rollout was returned to its previous task definition.
    RolledBack,
    /// ECS failed the rollout, or rolled it back itself; no verdict of ours was needed.
    Failed,
    /// A rollout passed its smoke test.
    Verified,
    /// A rollout was started.
    Started,
    /// A plan was answered; nothing changed.
    Planned,
    /// An operator paused the service (`pushdeploy pause`): nothing changed, nothing is replayed.
    Paused,
    /// The service already runs that digest.
    Unchanged,
    /// A newer push of the same tag exists.
    Superseded,
    /// This release of pushdeploy cannot read the service's config entry: nothing changed.
    ConfigUnreadable,
    /// Nothing to do for this event.
    Ignored,
    /// Bad input: nothing changed.
    Rejected,
}

impl Outcome {
    /// The name answers and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::RollbackFailed => "rollback_failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::Failed => "failed",
            Outcome::Verified => "verified",
            Outcome::Started => "started",
            Outcome::Planned => "planned",
            Outcome::Paused => "paused",
            Outcome::Unchanged => "unchanged",
            Outcome::Superseded => "superseded",
            Outcome::ConfigUnreadable => "config_unreadable",
            Outcome::Ignored => "ignored",
            Outcome::Rejected => "rejected",
        }
    }
}

/// What happened to one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentSummary {
    /// The config's name for the service.
    pub service: String,
    /// ECS cluster/service.
    pub target: String,
    /// What it came to.
    pub outcome: Outcome,
    /// Why, in a sentence.
    pub reason: String,
    /// The digest-pinned image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The rollout action (`register-task-definition`, `force-new-deployment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// Container image changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ContainerChange>,
    /// The revision the new one is a copy of (`base = "family"`: the family's newest from a trusted registrant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Every field the new revision changes against the one the service runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<String>,
    /// `base = "family"`: what the base changes besides the image (`diff` without the push's own image lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub base_changes: Vec<String>,
    /// `base = "family"`: newer revisions of the family not copied (no trusted registrant registered them), and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passed_over: Vec<crate::domain::passed_over::PassedOver>,
    /// Task definition before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_task_definition: Option<String>,
    /// Task definition after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// ECS deployment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs_deployment_id: Option<String>,
    /// `plan`: how ECS rolls the service out (strategy, lifecycle hooks) and where that disagrees with the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs_rollout: Option<String>,
    /// S3 keys written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<String>,
    /// `rollback` with no target to return to: the revisions ECS's history shows the service ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<crate::rules::rollback_to::Candidate>,
    /// `plan`: what will fail though the plan is sound (a role the stack does not pass).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Refused for a permanent AWS error a person must act on (published to the topic).
    #[serde(skip)]
    pub needs_attention: bool,
}

impl DeploymentSummary {
    /// A summary with only the outcome and reason filled in.
    pub fn new(service: &str, target: String, outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            service: service.to_string(),
            target,
            outcome,
            reason: reason.into(),
            image: None,
            action: None,
            changes: Vec::new(),
            base: None,
            diff: Vec::new(),
            base_changes: Vec::new(),
            passed_over: Vec::new(),
            previous_task_definition: None,
            task_definition: None,
            ecs_deployment_id: None,
            ecs_rollout: None,
            written: Vec::new(),
            candidates: Vec::new(),
            warnings: Vec::new(),
            needs_attention: false,
        }
    }
}

/// The invocation's answer: `{"outcome", "deployments", "reason"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The most significant per-service outcome (or the invocation's own).
    pub outcome: Outcome,
    /// Per service.
    pub deployments: Vec<DeploymentSummary>,
    /// Why, in a sentence.
    pub reason: String,
}

impl Summary {
    /// An answer about the invocation as a whole, touching no service.
    pub fn only(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self { outcome, deployments: Vec::new(), reason: reason.into() }
    }

    /// Folds per-service results: the most significant outcome leads.
    pub fn of(deployments: Vec<DeploymentSummary>) -> Self {
        let outcome = deployments.iter().map(|d| d.outcome).min().unwrap_or(Outcome::Ignored);
        let reason = deployments.iter().map(|d| format!("{}: {}", d.service, d.reason)).collect::<Vec<_>>().join("; ");
        Self { outcome, deployments, reason }
    }
}

impl Outcome {
    /// The outcome a settled record answers with.
    pub fn of_settled(rec: &crate::domain::record::DeploymentRecord) -> Outcome {
        use crate::domain::record::Status;
        match rec.status {
            Status::Verified => Outcome::Verified,
            Status::RolledBack => Outcome::RolledBack,
            Status::Completed => Outcome::RolledBack,
            Status::RollbackFailed => Outcome::RollbackFailed,
            Status::Failed | Status::Started => Outcome::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_outranks_unchanged() {
        let s = Summary::of(vec![
            DeploymentSummary::new("a", "c/a".into(), Outcome::Unchanged, "same digest"),
            DeploymentSummary::new("b", "c/b".into(), Outcome::Started, "rolling"),
        ]);
        assert_eq!(s.outcome, Outcome::Started);
        assert_eq!(s.reason, "a: same digest; b: rolling");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["outcome"], "started");
        assert_eq!(v["deployments"][0]["outcome"], "unchanged");
        for o in [
            Outcome::RollbackFailed,
            Outcome::RolledBack,
            Outcome::Verified,
            Outcome::Planned,
            Outcome::Paused,
            Outcome::Superseded,
            Outcome::ConfigUnreadable,
            Outcome::Ignored,
            Outcome::Rejected,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
