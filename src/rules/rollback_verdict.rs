//! The verdict once verify's automatic rollback has run, as a value: what the failed
//! deployment's record becomes, who hears of it and what verify answers, for each way the one
//! rollback ([`crate::flows::rollback`]) came out.

use crate::domain::names::short_name;
use crate::domain::record::{DeploymentRecord, Status};
use crate::rules::outcome::Outcome;
use crate::rules::verdict::{Next, Verdict};

/// How the rollback came out, as far as the failed deployment's record is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackCame {
    /// The service returns to `to`; `rollback_id` names the rollback's own record, when known.
    Done {
        /// The revision the service returns to.
        to: String,
        /// The rollback's own record.
        rollback_id: Option<String>,
    },
    /// The strategy kept the task definition: there is no earlier revision to return to.
    NothingEarlier,
    /// Another rollout replaced the failed revision first; it runs this one.
    Replaced(String),
    /// The rollback could not be carried out, for this reason.
    Failed(String),
}

/// The verdict on `rec` after its rollback came out as `came`. `why` is why it was rolled back
/// (`None` when finishing a rollback an earlier invocation decided, whose record says why).
pub fn after_rollback(rec: &DeploymentRecord, why: Option<String>, came: &RollbackCame, now: &str) -> Verdict {
    let why_now = why.clone().unwrap_or_else(|| rec.reason.clone().unwrap_or_default());
    let mut rec = rec.clone();
    match came {
        RollbackCame::Done { to, rollback_id } => {
            rec.status = Status::RolledBack;
            if let Some(why) = why {
                rec.reason = Some(why);
            }
            rec.rolled_back_to = Some(to.clone());
            if let Some(id) = rollback_id {
                rec.rollback_deployment = Some(id.clone());
            }
            rec.stamp("rolled_back", now.to_string());
            let said = format!("rolled back to {}: {}", short_name(to), rec.reason.as_deref().unwrap_or_default());
            Verdict::settled(rec, Outcome::RolledBack, Some(said), Next::Answer)
        }
        RollbackCame::NothingEarlier => {
            let reason = format!(
                "{why_now}; no automatic rollback: strategy {} kept task definition {}, so there is no earlier revision to return to (push the previous image to the tag again)",
                rec.strategy,
                short_name(&rec.task_definition)
            );
            failed(rec, reason, now)
        }
        RollbackCame::Replaced(running) => {
            let reason = format!(
                "{why_now}; not rolled back: {} replaced {} before the rollback could start",
                short_name(running),
                short_name(&rec.task_definition)
            );
            failed(rec, reason, now)
        }
        RollbackCame::Failed(error) => {
            let to = rec.rolled_back_to.as_deref().map(|to| format!(" to {}", short_name(to))).unwrap_or_default();
            // A retry's `why` already carries the failure: the reason says it once.
            let first = why_now.split("; pushdeploy cannot roll back").next().unwrap_or(&why_now).to_string();
            let reason = format!(
                "{first}; pushdeploy cannot roll back {}{to}: {error}; the broken revision {} is still serving",
                rec.name,
                short_name(&rec.task_definition)
            );
            // A retry that fails the same way has told everyone already: the record and the message stand.
            if rec.status == Status::RollbackFailed && rec.reason.as_deref() == Some(reason.as_str()) {
                return Verdict::then(&rec, Next::Answer);
            }
            rec.status = Status::RollbackFailed;
            rec.reason = Some(reason);
            rec.stamp("rollback_failed", now.to_string());
            Verdict::settled(rec, Outcome::Failed, None, Next::Answer)
        }
    }
}

/// The deployment failed and stays where it is: settled, told, answered with its reason.
fn failed(mut rec: DeploymentRecord, reason: String, now: &str) -> Verdict {
    rec.status = Status::Failed;
    rec.reason = Some(reason);
    rec.stamp("failed", now.to_string());
    Verdict::settled(rec, Outcome::Failed, None, Next::Answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::verdict::{Reply, Tell, Write};

    const NOW: &str = "2026-12-07T20:00:00Z";

    fn failed_deployment() -> DeploymentRecord {
        let mut r = crate::rules::rollback::tests::record("d2", "todo-backend:6", Status::Completed, NOW);
        r.previous_task_definition = "arn:aws:ecs:eu-west-1:123456789012:task-definition/todo-backend:5".into();
        r
    }

    fn said(v: &Verdict) -> Option<(Outcome, String)> {
        match &v.answer {
            Some(Reply::Event(s)) => Some((s.outcome, s.reason.clone())),
            _ => None,
        }
    }

    #[test]
    fn each_way_a_rollback_comes_out_has_one_record_one_telling_and_one_answer() {
        let to = "arn:aws:ecs:eu-west-1:123456789012:task-definition/todo-backend:5".to_string();
        let cases: Vec<(RollbackCame, Status, &str, Outcome, &str)> = vec![
            (
                RollbackCame::Done { to: to.clone(), rollback_id: Some("r1".into()) },
                Status::RolledBack,
                "rolled_back",
                Outcome::RolledBack,
                "rolled back to todo-backend:5: smoke failed",
            ),
            (RollbackCame::NothingEarlier, Status::Failed, "failed", Outcome::Failed, "no earlier revision"),
            (
                RollbackCame::Replaced("todo-backend:7".into()),
                Status::Failed,
                "failed",
                Outcome::Failed,
                "not rolled back: todo-backend:7 replaced todo-backend:6",
            ),
            (
                RollbackCame::Failed("AccessDenied".into()),
                Status::RollbackFailed,
                "rollback_failed",
                Outcome::Failed,
                "pushdeploy cannot roll back backend: AccessDenied; the broken revision todo-backend:6 is still serving",
            ),
        ];
        for (came, status, stamp, outcome, reason) in cases {
            let v = after_rollback(&failed_deployment(), Some("smoke failed".into()), &came, NOW);
            assert_eq!(v.record.status, status, "{came:?}");
            assert_eq!(v.record.timeline.last().map(|t| (t.event.as_str(), t.at.as_str())), Some((stamp, NOW)));
            assert!(v.record.reason.as_deref().unwrap_or_default().starts_with("smoke failed"), "{came:?}");
            assert_eq!((v.write, v.tell, v.next.clone()), (Write::Save, Tell::Everyone, Next::Answer), "{came:?}");
            let (o, r) = said(&v).expect("answered");
            assert_eq!(o, outcome, "{came:?}");
            assert!(r.contains(reason), "{came:?}: {r}");
        }
    }

    #[test]
    fn a_rollback_done_names_its_target_and_its_own_record() {
        let to = "arn:aws:ecs:eu-west-1:123456789012:task-definition/todo-backend:5".to_string();
        let v = after_rollback(
            &failed_deployment(),
            Some("smoke failed".into()),
            &RollbackCame::Done { to: to.clone(), rollback_id: Some("r1".into()) },
            NOW,
        );
        assert_eq!(v.record.rolled_back_to.as_deref(), Some(to.as_str()));
        assert_eq!(v.record.rollback_deployment.as_deref(), Some("r1"));
    }

    #[test]
    fn finishing_an_earlier_decision_keeps_its_reason() {
        let mut rec = failed_deployment();
        rec.reason = Some("smoke failed at round 3".into());
        let came = RollbackCame::Done { to: "todo-backend:5".into(), rollback_id: None };
        let v = after_rollback(&rec, None, &came, NOW);
        assert_eq!(v.record.reason.as_deref(), Some("smoke failed at round 3"));
        assert_eq!(v.record.rollback_deployment, None);
        assert_eq!(said(&v).map(|s| s.1), Some("rolled back to todo-backend:5: smoke failed at round 3".into()));
    }

    #[test]
    fn a_retry_failing_the_same_way_writes_and_tells_nothing_again() {
        let came = RollbackCame::Failed("AccessDenied".into());
        let first = after_rollback(&failed_deployment(), Some("smoke failed".into()), &came, NOW);
        let why_again = first.record.reason.clone();
        let again = after_rollback(&first.record, why_again, &came, "2026-12-07T20:01:00Z");
        assert_eq!((again.write, again.tell), (Write::Nothing, Tell::Nobody));
        assert_eq!(again.record, first.record);
        let other =
            after_rollback(&first.record, Some("smoke failed".into()), &RollbackCame::Failed("gone".into()), NOW);
        assert_eq!((other.write, other.tell), (Write::Save, Tell::Everyone), "a new cause is told");
    }
}
