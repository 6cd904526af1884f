//! Errors that keep verify from a verdict: a permanent AWS error put on the record and told
//! once, and events verify cannot judge while its own config is broken.

use serde_json::Value;
use tracing::{error, warn};

use super::Verifier;
use crate::aws::records::{Found, RecordStore};
use crate::config::UnreadableService;
use crate::domain::error::Error;
use crate::domain::record::{self, DeploymentRecord};
use crate::inbound::{self as event, EcsDeploymentEvent, Trigger};
use crate::rules::notify::{problem_message, Problem};
use crate::rules::outcome::{Outcome, Summary};
use crate::rules::unreadable;

impl Verifier {
    /// Puts a permanent AWS error on the deployment's record (when it can be read and written) and
    /// publishes it once: a retry that meets the same error does not notify again.
    pub(super) async fn report_problem(&self, e: &EcsDeploymentEvent, err: &Error) {
        error!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "error", error = %err, "decision");
        let name = self.config.by_ecs_service(e.cluster(), &e.service).map_or(e.service.as_str(), |s| s.name.as_str());
        let reason = format!("pushdeploy could not verify deployment {}: {err}", e.deployment_id);
        let mut already_told = false;
        if let Ok(Found::Record(rec)) = self.records().get(e.cluster(), &e.service, &e.deployment_id).await {
            already_told = already_says(&rec, &reason);
            if let Some(rec) = with_error(&rec, &reason) {
                if let Err(w) = self.save(&rec).await {
                    warn!(deployment_id = %e.deployment_id, error = %w, "could not put the error on the record");
                }
            }
        }
        if already_told {
            return;
        }
        let target = format!("{}/{}", e.cluster(), e.service);
        let message = problem_message(&Problem {
            function: "verify",
            service: name,
            target: Some(&target),
            doing: "verify",
            error: &err.to_string(),
            consequence: &format!(
                "deployment {} is neither verified nor rolled back; Lambda retries the event, then keeps it in the dead-letter queue for a redrive once this is fixed",
                e.deployment_id
            ),
        });
        self.publish(&message).await;
    }
}

impl Verifier {
    /// An event about a deployment of a service whose config entry this release cannot read: not
    /// judged with settings it cannot read. A deployment pushdeploy did not start is ignored, as
    /// for any service; one it started says so on its record and to the topic (once), and the
    /// invocation fails, so the event waits in the failed-invocations queue for a redrive.
    pub(super) async fn not_judged(&self, e: &EcsDeploymentEvent, u: &UnreadableService) -> Result<Summary, Error> {
        let rec = match self.records().get(e.cluster(), &e.service, &e.deployment_id).await? {
            Found::Record(r) => *r,
            Found::Absent => {
                let reason = format!("deployment {} of {} was not started by pushdeploy", e.deployment_id, u.target());
                return Ok(Summary::only(Outcome::Ignored, reason));
            }
            Found::Unreadable(key, err) => {
                return Ok(Summary::only(Outcome::Rejected, format!("record {key} is unreadable: {err}")))
            }
        };
        let reason = unreadable::not_judged_reason(u, &e.deployment_id);
        error!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "not_judged", reason = %reason, "decision");
        if let Some(noted) = unreadable::not_judged(&rec, &reason, record::now()) {
            if let Err(w) = self.save(&noted).await {
                warn!(deployment_id = %e.deployment_id, error = %w, "could not put the reason on the record");
            }
            let target = u.target();
            let message = problem_message(&Problem {
                function: "verify",
                service: u.name(),
                target: Some(&target),
                doing: "verify",
                error: &reason,
                consequence: "the deployment goes on as ECS runs it, with no smoke test and no rollback by pushdeploy (ECS's circuit breaker still acts)",
            });
            self.publish(&message).await;
        }
        Err(unreadable::not_judged_error(u, &e.deployment_id).into())
    }
}

/// True when `rec` already carries `reason` as its latest error: a retry meeting the same error.
fn already_says(rec: &DeploymentRecord, reason: &str) -> bool {
    rec.reason.as_deref() == Some(reason) && rec.timeline.last().is_some_and(|t| t.event == "error")
}

/// Pure: `rec` with `reason` as its error (`reason`, timeline `error`), or `None` when there is
/// nothing to write: it already says so, or it has its verdict (an error never overwrites one).
pub fn with_error(rec: &DeploymentRecord, reason: &str) -> Option<DeploymentRecord> {
    if rec.is_settled() || already_says(rec, reason) {
        return None;
    }
    let mut rec = rec.clone();
    rec.reason = Some(reason.to_string());
    rec.stamp("error", record::now());
    Some(rec)
}

/// What verify does with an event while its own state keeps it from judging any (an invalid
/// config, a missing setting: `why`). An ECS deployment event is never answered: its record, when
/// there is one, says why (once), and the invocation fails (`Err`, the message for Lambda), so
/// Lambda retries it, the function's Errors metric counts it, and the failed-invocations queue
/// keeps it for a redrive once the config is fixed. The topic heard of the config when it was
/// read. Anything else is answered as [`Verifier::handle`] would: it was never verify's to judge.
pub async fn cannot_judge(records: Option<&RecordStore>, payload: Value, why: &str) -> Result<Summary, String> {
    let e =
        match event::parse(payload) {
            Err(e) => return Ok(Summary::only(Outcome::Rejected, e.0)),
            Ok(Trigger::EcsDeployment(e)) => e,
            Ok(_) => return Ok(Summary::only(
                Outcome::Rejected,
                "verify takes ECS Deployment State Change events; pushes and manual actions go to the deploy function",
            )),
        };
    let reason = format!(
        "pushdeploy cannot judge deployment {} until its config is fixed: {why}; the event is retried, then kept in the failed-invocations queue: redrive it after the fix",
        e.deployment_id
    );
    error!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "error", error = %why, "decision");
    // An event about a short-ARN service may name no cluster; without the config, no record is found.
    if let (Some(records), Some(cluster)) = (records, e.cluster.as_deref()) {
        // Best effort: the error reaches Lambda's metric and queue whether or not the record says it.
        match records.get(cluster, &e.service, &e.deployment_id).await {
            Ok(Found::Record(rec)) => {
                if let Some(rec) = with_error(&rec, &reason) {
                    if let Err(w) = records.put(&rec).await {
                        warn!(deployment_id = %e.deployment_id, error = %w, "could not put the error on the record");
                    }
                }
            }
            Ok(_) => {}
            Err(w) => {
                warn!(deployment_id = %e.deployment_id, error = %w, "could not read the record to put the error on it")
            }
        }
    }
    Err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::Status;

    fn rec(status: &str) -> DeploymentRecord {
        serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "c", "service": "s", "name": "backend", "repository": "r",
            "tag": "latest", "digest": "sha256:aa", "image_uri": "r@sha256:aa", "strategy": "pin-digest",
            "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": "2026-11-27T00:00:00Z",
            "previous_task_definition": "td:1", "task_definition": "td:2", "ecs_deployment_id": "ecs-svc/1",
            "status": status, "containers": ["backend"],
            "timeline": [{"event": "started", "at": "2026-11-27T00:00:05Z"}]
        }))
        .unwrap()
    }

    #[test]
    fn an_error_goes_on_an_open_record_once_and_never_over_a_verdict() {
        let noted = with_error(&rec("started"), "config invalid").expect("an open record takes the error");
        assert_eq!(noted.reason.as_deref(), Some("config invalid"));
        assert_eq!(noted.timeline.last().unwrap().event, "error");
        assert_eq!(noted.status, Status::Started, "the error is no verdict");
        assert!(with_error(&noted, "config invalid").is_none(), "a retry meeting the same error writes nothing");
        assert!(with_error(&noted, "another error").is_some());
        assert!(with_error(&rec("verified"), "config invalid").is_none());
        assert!(with_error(&rec("rolled_back"), "config invalid").is_none());
    }
}
