//! CloudWatch metrics without a single extra call: each verdict and each deployment started is
//! recorded through the `metrics` facade, and the functions flush it to stdout after every
//! invocation as Embedded Metric Format lines (`metrics_cloudwatch_embedded`), which CloudWatch
//! Logs turns into metrics in namespace [`NAMESPACE`], dimension `Service` (the config's name).
//! Without an installed recorder (tests, the CLI) recording does nothing.

use crate::domain::record::{DeploymentRecord, Status};

/// The CloudWatch namespace.
pub const NAMESPACE: &str = "pushdeploy";

/// One figure to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A count of one (`Deployments`, `Verified`, `RolledBack`, `Failed`, `RollbackFailed`).
    Count(&'static str),
    /// A duration in seconds (`LeadTimeSeconds`, `SmokeSeconds`).
    Seconds(&'static str, f64),
}

/// Counted for each service a deploy refused in a way a person must act on (a container the
/// config names is missing from the task definition, a vanished service, a held base change):
/// published to the topic too, while the invocation itself succeeds.
pub const ACTION_NEEDED: &str = "ActionNeeded";

/// Pure: what a verdict written on `rec` contributes. A rollback's own record has no verdict of
/// its own (its completion is not a deployment).
pub fn verdict(rec: &DeploymentRecord) -> Vec<Observation> {
    if rec.is_rollback() {
        return Vec::new();
    }
    let name = match rec.status {
        Status::Verified => "Verified",
        Status::RolledBack => "RolledBack",
        Status::Failed => "Failed",
        Status::RollbackFailed => "RollbackFailed",
        Status::Started | Status::Completed => return Vec::new(),
    };
    let mut out = vec![Observation::Count(name)];
    if let Some(lead) = rec.lead_time_seconds().filter(|_| rec.is_push()) {
        out.push(Observation::Seconds("LeadTimeSeconds", lead.max(0.0)));
    }
    if let Some(ms) = rec.smoke.as_ref().and_then(|s| s["duration_ms"].as_f64()) {
        out.push(Observation::Seconds("SmokeSeconds", ms / 1000.0));
    }
    out
}

/// Records `observations` for `service` through the `metrics` facade: once with the dimension
/// `Service`, once without (what the template's alarms and dashboard watch across services).
pub fn record(service: &str, observations: &[Observation]) {
    for o in observations {
        match o {
            Observation::Count(name) => {
                metrics::describe_counter!(*name, metrics::Unit::Count, "");
                metrics::counter!(*name, "Service" => service.to_string()).increment(1);
                metrics::counter!(*name).increment(1);
            }
            Observation::Seconds(name, value) => {
                metrics::describe_histogram!(*name, metrics::Unit::Seconds, "");
                metrics::histogram!(*name, "Service" => service.to_string()).record(*value);
                metrics::histogram!(*name).record(*value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: &str, trigger: serde_json::Value, smoke: serde_json::Value) -> DeploymentRecord {
        serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "c", "service": "s", "name": "backend", "repository": "r",
            "tag": "latest", "digest": "sha256:aa", "image_uri": "r@sha256:aa", "strategy": "pin-digest",
            "trigger": trigger, "pushed_at": "2026-11-27T00:00:00Z",
            "previous_task_definition": "td:1", "task_definition": "td:2", "ecs_deployment_id": "ecs-svc/1",
            "status": status, "containers": ["backend"], "smoke": smoke,
            "timeline": [{"event": "started", "at": "2026-11-27T00:00:05Z"}, {"event": "verified", "at": "2026-11-27T00:01:40Z"}]
        }))
        .unwrap()
    }

    #[test]
    fn each_verdict_counts_once_with_its_lead_time_and_smoke_time() {
        let push = serde_json::json!({"kind": "push", "event_id": "e"});
        let smoke = serde_json::json!({"passed": true, "duration_ms": 2500});
        assert_eq!(
            verdict(&rec("verified", push.clone(), smoke.clone())),
            vec![
                Observation::Count("Verified"),
                Observation::Seconds("LeadTimeSeconds", 100.0),
                Observation::Seconds("SmokeSeconds", 2.5)
            ]
        );
        assert_eq!(
            verdict(&rec("rolled_back", push.clone(), smoke)),
            vec![Observation::Count("RolledBack"), Observation::Seconds("SmokeSeconds", 2.5)]
        );
        assert_eq!(
            verdict(&rec("rollback_failed", push.clone(), serde_json::Value::Null)),
            vec![Observation::Count("RollbackFailed")]
        );
        assert_eq!(verdict(&rec("failed", push, serde_json::Value::Null)), vec![Observation::Count("Failed")]);
        let manual = serde_json::json!({"kind": "manual", "action": "redeploy", "request_id": "r"});
        assert_eq!(
            verdict(&rec("verified", manual, serde_json::Value::Null)),
            vec![Observation::Count("Verified")],
            "no push, no lead time"
        );
        let rollback = serde_json::json!({"kind": "auto_rollback", "of": "ecs-svc-0"});
        assert!(verdict(&rec("completed", rollback, serde_json::Value::Null)).is_empty());
    }
}
