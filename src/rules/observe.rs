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

use crate::domain::mode::{Mode, WOULD_ROLL_BACK};
use crate::domain::record::{DeploymentRecord, Status};

/// The reason an observed failure of an ECS deployment event records and tells.
pub fn would_roll_back_reason(why: &str) -> String {
    format!("observe: would roll back: {why}")
}

/// The reason an observed failure of a lifecycle hook check records and tells; `enforced` is
/// what enforce mode would have answered FAILED with.
pub fn would_answer_failed_reason(enforced: &str) -> String {
    format!("observe: would answer FAILED: {enforced}; answered SUCCEEDED, so the deployment went on")
}

/// The record of a failure observe mode only observed, saying `reason`: settled `failed`, stamped
/// `would_roll_back`, nothing rolled back.
pub fn observed(rec: &mut DeploymentRecord, reason: String, now: &str) {
    rec.status = Status::Failed;
    rec.mode = Mode::Observe;
    rec.reason = Some(reason);
    rec.stamp(WOULD_ROLL_BACK, now.to_string());
}

impl DeploymentRecord {
    /// True for a failure verify only observed: in enforce mode it would have rolled the
    /// deployment back (or answered its hook FAILED); in observe mode the service kept running it.
    /// Never verified (never a rollback target), never rolled back (never refused again).
    pub fn observed_failure(&self) -> bool {
        self.status == Status::Failed && self.has(WOULD_ROLL_BACK)
    }
}
