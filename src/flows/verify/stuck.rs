//! Hook invocations that cannot advance their check (a transient failure, an unreadable config, a
//! record not written yet): counted in the service deployment's index object, IN_PROGRESS until
//! the stuck budget is spent, then FAILED once, with the reason on the record and told once.

use serde_json::Value;
use tracing::{error, info, warn};

use crate::aws::records::{Found, RecordStore};
use crate::aws::sns::Notifier;
use crate::config::Mode;
use crate::domain::lifecycle::{self, HookAnswer, HookIndex};
use crate::domain::record;
use crate::domain::timing;
use crate::inbound::hook::{self as inbound, HookInvocation};
use crate::rules::hook::{self, StuckStep};
use crate::rules::hook_verdict::{self as verdict, HookFailure};
use crate::rules::notify::{problem_message, Problem};

/// A rollback's traffic shift is never refused, not even when nothing could be read: the
/// payload itself shows green at 0 %. Nothing is written for it.
fn rollback_shift_passes(inv: &HookInvocation, why: &str) -> HookAnswer {
    let why = format!(
        "ECS is shifting traffic back to the previous revision (green is at 0 %); pushdeploy never holds up a rollback (not recorded: {why})"
    );
    info!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "succeeded", reason = %why, "decision");
    HookAnswer::succeeded(why)
}

/// What the config says of a stuck invocation's service.
#[derive(Debug, Clone, Copy)]
pub struct StuckSettings {
    /// The call-back delay (the smoke test's interval).
    pub delay_ms: u64,
    /// `stuck_minutes`; `None` when the config cannot say.
    pub budget_ms: Option<u64>,
    /// Observe mode answers SUCCEEDED where enforce answers FAILED. Read from the config at every
    /// invocation, never from the index (anyone may write that): enforce when the config cannot say.
    pub mode: Mode,
}

impl StuckSettings {
    /// A service whose config cannot be read: the default delay and budget, enforced.
    pub fn unknown() -> Self {
        Self { delay_ms: lifecycle::DEFAULT_CALLBACK_MS, budget_ms: None, mode: Mode::Enforce }
    }
}

/// Answers an invocation that cannot advance its check (`why`: a transient failure, an unreadable
/// config, a record not written yet): IN_PROGRESS, counted in the service deployment's index
/// object, until the stuck invocations span `budget_ms` (the config's `stuck_minutes`; the index's
/// copy, or [`lifecycle::DEFAULT_STUCK_MS`], when the config cannot be read). Then FAILED, with the
/// reason on the record tied to this service deployment and one message; a later invocation of
/// the same check answers the same FAILED and tells nobody again. In observe mode SUCCEEDED
/// instead of FAILED, the record an observed failure.
///
/// The count lives in the index object, not in `hookDetails`: whoever invokes verify chooses
/// `hookDetails`, and the index is found from `resourceArn` whether or not the record or the config
/// can be read. When the index itself cannot be read (S3 failing), the count `hookDetails` carry
/// back is used, since it can only bring the FAILED sooner.
pub async fn stuck(
    records: &RecordStore,
    notifier: Option<&Notifier>,
    payload: &Value,
    inv: &HookInvocation,
    settings: StuckSettings,
    why: &str,
) -> HookAnswer {
    let StuckSettings { delay_ms, budget_ms, mode } = settings;
    if inv.rolling_back() {
        return rollback_shift_passes(inv, why);
    }
    let (key, readable, mut index) = read_index(records, inv).await;
    let check = inv.check_key();
    if let Some(spent) = index.spent.as_ref().filter(|s| s.check == check) {
        let answer = verdict::hook_failure_answer(&spent.reason, mode);
        info!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = if mode.is_observe() { "succeeded" } else { "failed" }, reason = %spent.reason, "decision");
        return answer;
    }
    let prior = if readable { index.stuck.clone() } else { inbound::carried_stuck(payload) };
    let budget = budget_ms.or(index.stuck_budget_ms).unwrap_or(lifecycle::DEFAULT_STUCK_MS);
    if budget_ms.is_some() {
        index.stuck_budget_ms = budget_ms;
    }
    // Stuck invocations come a call-back apart; a longer gap means one in between moved the check on.
    let gap = delay_ms.div_ceil(1000) * 1000 * 2 + 60_000;
    match hook::count_stuck(prior.as_ref(), &check, why, timing::now_ms(), budget, gap) {
        StuckStep::Again(s) => {
            index.stuck = Some(s.clone());
            if let (Some(key), true) = (&key, readable) {
                if let Err(e) = records.put_hook_index(key, &index).await {
                    warn!(key = %key, error = %e, "could not count the stuck invocation in the hook index; hookDetails carry it");
                }
            }
            let said = format!(
                "{why}; ECS calls again ({} stuck invocation(s) so far; FAILED once they span {} s)",
                s.invocations,
                budget / 1000
            );
            warn!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "in_progress", reason = %said, "decision");
            HookAnswer::call_again(payload, delay_ms, &s, said)
        }
        StuckStep::Spent(s, reason) => {
            error!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = if mode.is_observe() { "succeeded" } else { "failed" }, reason = %reason, "decision");
            index.stuck = Some(s);
            index.spent = Some(lifecycle::SpentBudget { check: check.clone(), reason: reason.clone() });
            // Not over an index that could not be read: it may name the record.
            if let (Some(key), true) = (&key, readable) {
                if let Err(e) = records.put_hook_index(key, &index).await {
                    warn!(key = %key, error = %e, "could not note the spent budget in the hook index");
                }
            }
            tell_stuck(records, notifier, inv, index.record.as_deref(), &reason, mode).await;
            verdict::hook_failure_answer(&reason, mode)
        }
    }
}

/// Puts a spent stuck budget on the record tied to this service deployment (ECS rolls it back on
/// the FAILED) and tells once: the verdict's message, or, with no record to put it on, a problem
/// message. Best effort: the FAILED answer stands either way.
async fn tell_stuck(
    records: &RecordStore,
    notifier: Option<&Notifier>,
    inv: &HookInvocation,
    record_id: Option<&str>,
    reason: &str,
    mode: Mode,
) {
    let read = match record_id.and_then(record::ecs_deployment_id) {
        Some(ecs_id) => records.get(&inv.cluster, &inv.service, &ecs_id).await.ok(),
        None => None,
    };
    let tied = match read {
        Some(Found::Record(rec)) if rec.service_deployment_arn.as_deref() == Some(inv.resource_arn.as_str()) => {
            Some(*rec)
        }
        _ => None,
    };
    let message = match tied {
        Some(rec) => {
            let Some(rec) = verdict::failed_hook(&rec, HookFailure::Stuck, reason, mode, &record::now()) else {
                return;
            };
            if let Err(e) = records.put(&rec).await {
                warn!(deployment_id = %rec.id, error = %e, "could not put the spent stuck budget on the record");
            }
            crate::flows::metrics::record(&rec.name, &crate::flows::metrics::verdict(&rec));
            crate::rules::notify::verdict_message(&rec)
        }
        None => {
            let target = format!("{}/{}", inv.cluster, inv.service);
            problem_message(&Problem {
                function: "verify",
                service: &inv.service,
                target: Some(&target),
                doing: &format!("check {}", inv.stage.as_str()),
                error: reason,
                consequence: match mode {
                    Mode::Enforce => "the lifecycle hook answered FAILED, so ECS rolls the deployment back to the revision that served before; fix the cause, then push again",
                    Mode::Observe => "observe mode: the lifecycle hook answered SUCCEEDED, so the deployment went on unchecked; fix the cause before enforcing",
                },
            })
        }
    };
    if let Some(n) = notifier {
        n.send(&message).await;
    }
}

/// The index object of the invocation's service deployment: its key (none for an odd
/// `resourceArn`), whether it could be read, and the index (empty when absent, unreadable or
/// about another service deployment).
async fn read_index(records: &RecordStore, inv: &HookInvocation) -> (Option<String>, bool, HookIndex) {
    let key = inbound::index_key(inv).ok();
    let read = match &key {
        Some(key) => {
            records.hook_index(key).await.map_err(|e| warn!(key = %key, error = %e, "could not read the hook index"))
        }
        None => Err(()),
    };
    let readable = read.is_ok();
    let index = read
        .ok()
        .flatten()
        .filter(|i| i.service_deployment_arn == inv.resource_arn)
        .unwrap_or_else(|| HookIndex::of(&inv.resource_arn));
    (key, readable, index)
}
