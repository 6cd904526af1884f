//! Observe mode as a property of the verdict, not of the step that applies it: where enforce
//! mode would roll a deployment back (or answer its lifecycle hook FAILED, so that ECS would),
//! observe mode gives an observed failure instead: the record settles `failed` saying what
//! enforce would have done, everyone is told, and the next step is only to answer (SUCCEEDED, to
//! a hook). Pure; [`crate::rules::verdict::decide`] and
//! [`crate::rules::hook_verdict::check_done`] ask here when the service's mode is `observe`.
//!
//! An observed failure is never `verified` (so never a rollback target, [`crate::rules::rollback`])
//! and never `rolled_back` (so its build is not refused again, [`crate::rules::rolled_back`]): it
//! is a `failed` deployment that kept serving.

use crate::domain::lifecycle::HookAnswer;
use crate::domain::mode::{Mode, WOULD_ROLL_BACK};
use crate::domain::record::{DeploymentRecord, Status};
use crate::rules::outcome::Outcome;
use crate::rules::verdict::{Next, Tell, Verdict, Write};

/// The reason an observed failure of an ECS deployment event records and tells.
pub fn would_roll_back_reason(why: &str) -> String {
    format!("observe: would roll back: {why}")
}

/// The reason an observed failure of a lifecycle hook check records and tells; `enforced` is
/// what enforce mode would have answered FAILED with.
pub fn would_answer_failed_reason(enforced: &str) -> String {
    format!("observe: would answer FAILED: {enforced}; answered SUCCEEDED, so the deployment went on")
}

/// The verdict on an event where enforce mode would roll back for `why`: the record settles
/// `failed`, stamped `would_roll_back`, told to everyone; nothing is rolled back or pruned.
pub fn would_roll_back(mut rec: DeploymentRecord, why: &str, now: &str) -> Verdict {
    observed(&mut rec, would_roll_back_reason(why), now);
    Verdict::settled(rec, Outcome::Failed, None, Next::Answer)
}

/// The verdict on a hook check where enforce mode would answer FAILED with `enforced`: the
/// record (its failed check already on it) settles `failed`, told to everyone, and ECS hears
/// SUCCEEDED.
pub fn would_answer_failed(mut rec: DeploymentRecord, enforced: &str, now: &str) -> Verdict {
    let reason = would_answer_failed_reason(enforced);
    observed(&mut rec, reason.clone(), now);
    Verdict::hook(rec, Write::Save, Tell::Everyone, HookAnswer::succeeded(reason))
}

fn observed(rec: &mut DeploymentRecord, reason: String, now: &str) {
    rec.status = Status::Failed;
    rec.mode = Mode::Observe;
    rec.reason = Some(reason);
    rec.stamp(WOULD_ROLL_BACK, now.to_string());
}
