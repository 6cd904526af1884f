//! The verdict on an ECS deployment event or a lifecycle hook invocation, as a value: what the
//! record becomes, who hears of it, what verify does next and what it answers. Pure: verify's
//! flows describe (AWS reads), ask [`decide`] (or a hook verdict below) and apply the value in one
//! place; `now` is passed in, so every verdict is a function of what was described.

use serde_json::Value;

use crate::domain::lifecycle::{fmt_share, Carried, HookAnswer, Listener};
use crate::event::{DeploymentState, EcsDeploymentEvent};
use crate::inbound::hook::HookInvocation;
use crate::outcome::Outcome;
use crate::record::{DeploymentRecord, HookCheck, Status};
use crate::taskdef::short_name;

/// Smoke tests that died before a verdict after which a deployment is rolled back untested:
/// Lambda delivers an event three times (two retries), so the third delivery decides.
pub const SMOKE_ATTEMPTS_BEFORE_ROLLBACK: u32 = 2;

/// The timeline events a verdict puts on a record, as the record stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// ECS reported the rollout in progress.
    EcsInProgress,
    /// ECS reported the deployment failed.
    EcsFailed,
    /// ECS reported the deployment completed.
    EcsCompleted,
    /// pushdeploy found the deployment failed.
    Failed,
    /// The deployment passed its checks.
    Verified,
    /// The smoke test failed (or never reached a verdict) and verify decided to roll back.
    SmokeFailed,
    /// The deployment was rolled back.
    RolledBack,
}

impl Mark {
    /// The timeline event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::EcsInProgress => "ecs_in_progress",
            Mark::EcsFailed => "ecs_failed",
            Mark::EcsCompleted => "ecs_completed",
            Mark::Failed => "failed",
            Mark::Verified => "verified",
            Mark::SmokeFailed => "smoke_failed",
            Mark::RolledBack => "rolled_back",
        }
    }
}

/// What a record as read says about a rollback verify decided: the decision is saved before the
/// rollback starts, so a retry after a crash recognises a rollback already running as its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackState {
    /// No rollback was decided.
    Undecided,
    /// verify decided to roll back ([`Mark::SmokeFailed`] is on the timeline).
    Decided,
}

impl RollbackState {
    /// The state `rec` is in.
    pub fn of(rec: &DeploymentRecord) -> Self {
        if rec.has(Mark::SmokeFailed.as_str()) {
            RollbackState::Decided
        } else {
            RollbackState::Undecided
        }
    }
}

/// Whether the record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Nothing is written.
    Nothing,
    /// The record is saved.
    Save,
}

/// Who hears of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    /// Nobody: no decision line, no metric, no message.
    Nobody,
    /// The decision line in the log only, with this outcome.
    Log(&'static str),
    /// Settled: the record is saved, the decision logged, counted and notified.
    Everyone,
}

/// What the flow describes next before it can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// What the service runs now (DescribeServices).
    Service,
    /// ECS's own word on the event (the deployment and any service deployment tied to it).
    Confirmation,
}

/// What verify does after writing and telling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Answer.
    Answer,
    /// Deregister old revisions (`keep_revisions`), then answer.
    Prune,
    /// Read more, then decide again.
    Read(Ask),
    /// Run the smoke test (after saving the record), then decide again with its result.
    RunSmoke,
    /// Roll the service back, saying `why`; the rollback settles and answers.
    RollBack {
        /// Why it is rolled back.
        why: String,
    },
    /// Record a rollback ECS already runs (verify decided it, then died); `primary` is the
    /// rollback's ECS deployment.
    FinishRollback {
        /// ECS's primary deployment, the rollback's.
        primary: Option<String>,
    },
    /// Refuse an event ECS's state does not bear out (the invocation fails and is retried).
    Refuse {
        /// The event's name.
        event: &'static str,
        /// Why ECS does not bear it out.
        why: String,
    },
}

/// What an event's verdict answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, as the answer says it.
    pub reason: String,
    /// True when the record was written.
    pub wrote: bool,
}

/// The answer a verdict returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// To an ECS deployment event.
    Event(Said),
    /// To a lifecycle hook invocation.
    Hook(HookAnswer),
}

/// The verdict: what the record becomes, who hears of it, what to do next, what to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The record as it becomes (as read, when the verdict changes nothing).
    pub record: DeploymentRecord,
    /// Whether it is written (a settle writes it too).
    pub write: Write,
    /// Who hears of it.
    pub tell: Tell,
    /// What to do next.
    pub next: Next,
    /// The answer; `None` when the next step answers (a rollback) or more must be described.
    pub answer: Option<Reply>,
}

impl Verdict {
    /// Nothing written or told: `next` first.
    fn then(record: &DeploymentRecord, next: Next) -> Self {
        Verdict { record: record.clone(), write: Write::Nothing, tell: Tell::Nobody, next, answer: None }
    }

    /// Saved, settled and told; answered with `outcome` and the record's reason unless `said`.
    fn settled(record: DeploymentRecord, outcome: Outcome, said: Option<String>, next: Next) -> Self {
        let reason = said.unwrap_or_else(|| record.reason.clone().unwrap_or_default());
        let answer = Some(Reply::Event(Said { outcome, reason, wrote: true }));
        Verdict { record, write: Write::Save, tell: Tell::Everyone, next, answer }
    }

    /// Saved, told nobody, then `next`.
    fn saved(record: DeploymentRecord, next: Next) -> Self {
        Verdict { record, write: Write::Save, tell: Tell::Nobody, next, answer: None }
    }

    /// Answers a hook invocation, writing `record` when `write` says so.
    fn hook(record: DeploymentRecord, write: Write, tell: Tell, answer: HookAnswer) -> Self {
        Verdict { record, write, tell, next: Next::Answer, answer: Some(Reply::Hook(answer)) }
    }
}

/// What an event's smoke test came to, as verify ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeSeen {
    /// True when it passed.
    pub passed: bool,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// Rounds run.
    pub rounds: u32,
    /// How long it took.
    pub duration_ms: u64,
    /// The report, as the record keeps it.
    pub report: Value,
}

/// What the service runs now, as ECS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSeen {
    /// The task definition of the primary deployment.
    pub running: String,
    /// ECS's primary deployment.
    pub primary: Option<String>,
}

/// Everything verify has described about an ECS deployment event so far.
#[derive(Debug, Clone)]
pub struct Described<'a> {
    /// The event.
    pub event: &'a EcsDeploymentEvent,
    /// The deployment's record, as read.
    pub record: &'a DeploymentRecord,
    /// True when the service's config has a smoke test.
    pub smoke_configured: bool,
    /// What the service runs, once read.
    pub service: Option<ServiceSeen>,
    /// ECS's word on the event, once asked: `Err` says why it does not bear the event out.
    pub confirmed: Option<Result<(), String>>,
    /// The smoke test's result, once run.
    pub smoke: Option<SmokeSeen>,
    /// When the event happened (its own time, else when verify took it), for ECS's stamps.
    pub event_at: String,
    /// Now, RFC 3339, for the verdict's stamps.
    pub now: String,
}

/// The verdict on an ECS deployment event about a record pushdeploy wrote.
pub fn decide(d: &Described) -> Verdict {
    let rec = d.record;
    if rec.is_settled() {
        let reason = format!(
            "already {} ({}): nothing to do",
            rec.status.as_str(),
            rec.reason.as_deref().unwrap_or("no reason recorded")
        );
        let said = Said { outcome: settled_outcome(rec), reason, wrote: false };
        return Verdict { answer: Some(Reply::Event(said)), ..Verdict::then(rec, Next::Answer) };
    }
    match d.event.state {
        DeploymentState::InProgress => in_progress(d),
        DeploymentState::Failed => failed(d),
        DeploymentState::Completed => completed(d),
    }
}

/// The rollout started: stamped once, logged, never told.
fn in_progress(d: &Described) -> Verdict {
    let mut rec = d.record.clone();
    let write = if rec.has(Mark::EcsInProgress.as_str()) {
        Write::Nothing
    } else {
        rec.stamp(Mark::EcsInProgress.as_str(), d.event_at.clone());
        Write::Save
    };
    let reason = "ECS reports the rollout in progress; recorded".to_string();
    let answer = Some(Reply::Event(Said { outcome: Outcome::Started, reason, wrote: true }));
    Verdict { record: rec, write, tell: Tell::Log("started"), next: Next::Answer, answer }
}

/// ECS says the deployment failed: once ECS's state bears it out, the record says so.
fn failed(d: &Described) -> Verdict {
    if d.service.is_none() {
        return Verdict::then(d.record, Next::Read(Ask::Service));
    }
    match &d.confirmed {
        None => Verdict::then(d.record, Next::Read(Ask::Confirmation)),
        Some(Err(why)) => Verdict::then(d.record, refuse("SERVICE_DEPLOYMENT_FAILED", why)),
        Some(Ok(())) => {
            let mut rec = d.record.clone();
            rec.status = Status::Failed;
            let said = d.event.reason.as_deref().unwrap_or("no reason given");
            rec.reason = Some(format!("ECS deployment failed: {said}"));
            rec.stamp(Mark::EcsFailed.as_str(), d.now.clone());
            Verdict::settled(rec, Outcome::Failed, None, Next::Answer)
        }
    }
}

fn refuse(event: &'static str, why: &str) -> Next {
    Next::Refuse { event, why: why.to_string() }
}

/// ECS says the rollout completed: the rollback's own deployment completes; a service that runs
/// another revision failed (or was rolled back); otherwise checked, tested or rolled back.
fn completed(d: &Described) -> Verdict {
    if d.record.status == Status::RollbackFailed {
        // A retried event after a failed rollback: try the rollback again, do not re-test.
        let why = d.record.reason.clone().unwrap_or_default();
        return Verdict::then(d.record, Next::RollBack { why });
    }
    let mut rec = d.record.clone();
    if !rec.has(Mark::EcsCompleted.as_str()) {
        rec.stamp(Mark::EcsCompleted.as_str(), d.event_at.clone());
    }
    if rec.is_rollback() {
        rec.status = Status::Completed;
        let said = format!("rollback to {} completed", short_name(&rec.task_definition));
        return Verdict::settled(rec, Outcome::RolledBack, Some(said), Next::Answer);
    }
    let Some(seen) = &d.service else { return Verdict::then(&rec, Next::Read(Ask::Service)) };
    let returned_to = rec.rolled_back_to.as_deref().unwrap_or(&rec.previous_task_definition);
    let elsewhere = seen.running != rec.task_definition;
    if elsewhere && seen.running == returned_to && RollbackState::of(&rec) == RollbackState::Decided {
        // Our own rollback went through before the invocation that made it died: finish recording it.
        return Verdict::then(&rec, Next::FinishRollback { primary: seen.primary.clone() });
    }
    if elsewhere {
        rec.status = Status::Failed;
        rec.reason = Some(format!(
            "the service runs {}, not {} that this deployment registered: ECS rolled it back (circuit breaker) or another deployment replaced it{}",
            short_name(&seen.running),
            short_name(&rec.task_definition),
            d.event.reason.as_deref().map(|r| format!("; ECS says: {r}")).unwrap_or_default()
        ));
        rec.stamp(Mark::Failed.as_str(), d.now.clone());
        return Verdict::settled(rec, Outcome::Failed, None, Next::Answer);
    }
    // Anyone who may invoke verify can send a COMPLETED event: ECS itself must say so before
    // a deployment is tested, verified or rolled back.
    match &d.confirmed {
        None => Verdict::then(&rec, Next::Read(Ask::Confirmation)),
        Some(Err(why)) => Verdict::then(d.record, refuse("SERVICE_DEPLOYMENT_COMPLETED", why)),
        Some(Ok(())) => checked(d, rec),
    }
}

/// A completed rollout ECS confirms: verified on the hook's checks, untested without a smoke
/// test, else smoke-tested (or rolled back untested when tests keep dying).
fn checked(d: &Described, mut rec: DeploymentRecord) -> Verdict {
    if !rec.hook_checks.is_empty() {
        // The lifecycle hook checked before (and while) traffic shifted; a failed check has
        // already settled the record, so every check here passed. Not tested again.
        let checks: Vec<&str> = rec.hook_checks.iter().map(|c| c.check.as_str()).collect();
        let reason = format!("checked by the lifecycle hook at {}; ECS completed the deployment", checks.join(", "));
        return verified(rec, Some(reason.clone()), reason, Next::Prune, &d.now);
    }
    if !d.smoke_configured {
        let reason = "no smoke test configured: ECS reports the rollout completed".to_string();
        return verified(rec, Some(reason.clone()), reason, Next::Answer, &d.now);
    }
    let Some(smoke) = &d.smoke else {
        // A smoke test that kills verify (out of memory, past its timeout) would otherwise die
        // on every retry and leave the deployment serving untested.
        if rec.smoke_attempts >= SMOKE_ATTEMPTS_BEFORE_ROLLBACK {
            let why = format!(
                "verify started the smoke test {} times and never reached a verdict (the invocation died: out of memory or past its timeout?); rolled back rather than left serving untested",
                rec.smoke_attempts
            );
            return decided_to_roll_back(rec, why, &d.now);
        }
        rec.smoke_attempts += 1;
        return Verdict::saved(rec, Next::RunSmoke);
    };
    rec.smoke_attempts += 1;
    rec.smoke = Some(smoke.report.clone());
    if smoke.passed {
        let said = format!("smoke test passed: {} round(s) in {} ms", smoke.rounds, smoke.duration_ms);
        return verified(rec, None, said, Next::Prune, &d.now);
    }
    let why = smoke.reason.clone().unwrap_or_else(|| "smoke test failed".into());
    decided_to_roll_back(rec, why, &d.now)
}

/// Verified: `reason` on the record, `said` in the answer.
fn verified(mut rec: DeploymentRecord, reason: Option<String>, said: String, next: Next, now: &str) -> Verdict {
    rec.status = Status::Verified;
    rec.reason = reason;
    rec.stamp(Mark::Verified.as_str(), now.to_string());
    Verdict::settled(rec, Outcome::Verified, Some(said), next)
}

/// The decision to roll back is saved before acting on it, so a retry after a crash knows the
/// rollback is ours ([`RollbackState::Decided`]).
fn decided_to_roll_back(mut rec: DeploymentRecord, why: String, now: &str) -> Verdict {
    rec.reason = Some(why.clone());
    rec.stamp(Mark::SmokeFailed.as_str(), now.to_string());
    Verdict::saved(rec, Next::RollBack { why })
}

/// The outcome a settled record answers with.
pub fn settled_outcome(rec: &DeploymentRecord) -> Outcome {
    match rec.status {
        Status::Verified => Outcome::Verified,
        Status::RolledBack => Outcome::RolledBack,
        Status::Completed => Outcome::RolledBack,
        Status::RollbackFailed => Outcome::RollbackFailed,
        Status::Failed | Status::Started => Outcome::Failed,
    }
}

/// A hook invocation answered before any round ([`crate::rules::hook::Decision::Answer`]):
/// `stamp` goes on the timeline once and ties the record to ECS's service deployment.
pub fn hook_answered(
    rec: &DeploymentRecord,
    inv: &HookInvocation,
    answer: HookAnswer,
    stamp: Option<&str>,
    now: &str,
) -> Verdict {
    let mut rec = rec.clone();
    let tied = rec.service_deployment_arn.as_deref() == Some(&inv.resource_arn);
    let write = match stamp {
        Some(event) if !(rec.has(event) && tied) => {
            if !rec.has(event) {
                rec.stamp(event, now.to_string());
            }
            rec.service_deployment_arn = Some(inv.resource_arn.clone());
            Write::Save
        }
        _ => Write::Nothing,
    };
    Verdict::hook(rec, write, Tell::Nobody, answer)
}

/// The first round of a check: the tally starts on the record (hookDetails come back from
/// whoever invoked, so they only ever point at it), the check goes on the timeline once, and the
/// record is tied to ECS's service deployment. The record is saved before the round.
pub fn check_started(rec: &DeploymentRecord, inv: &HookInvocation, now_ms: u64, now: &str) -> (Carried, Verdict) {
    let fresh =
        Carried { check: inv.check_key(), deployment: rec.id.clone(), rounds: 0, streak: 0, started_ms: now_ms };
    let mut rec = rec.clone();
    rec.hook_tally = Some(fresh.clone());
    if !rec.has(&inv.timeline_event()) {
        rec.stamp(&inv.timeline_event(), now.to_string());
    }
    rec.service_deployment_arn = Some(inv.resource_arn.clone());
    (fresh, Verdict::saved(rec, Next::RunSmoke))
}

/// Too little of the invocation is left for a round: ECS calls again, nothing is written.
pub fn no_time(rec: &DeploymentRecord, carried: &Carried, interval_ms: u64) -> Verdict {
    let why = "too little of this invocation left for a round; ECS calls again";
    Verdict::hook(rec.clone(), Write::Nothing, Tell::Nobody, HookAnswer::again(interval_ms, carried, why))
}

/// A round that neither passed nor failed the check: the tally is saved and ECS calls again.
pub fn round_again(
    rec: &DeploymentRecord,
    listener: Listener,
    c: &Carried,
    passed: bool,
    consecutive: u32,
    interval_ms: u64,
) -> Verdict {
    let mut rec = rec.clone();
    rec.hook_tally = Some(c.clone());
    let why = format!(
        "round {} {} through the {} listener; {} of {consecutive} passing in a row so far",
        c.rounds,
        if passed { "passed" } else { "failed" },
        listener.as_str(),
        c.streak,
    );
    Verdict::hook(rec, Write::Save, Tell::Nobody, HookAnswer::again(interval_ms, c, why))
}

/// What a finished check came to, as the round and the probe left it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSeen {
    /// The listener it went through.
    pub listener: Listener,
    /// Rounds run.
    pub rounds: u32,
    /// The smoke report.
    pub smoke: Value,
    /// `Err` says why it failed.
    pub verdict: Result<(), String>,
}

/// A check's verdict: a pass goes on the record (the deployment's verdict waits for ECS) and
/// answers SUCCEEDED; a failure also records the rollback ECS makes on FAILED, and tells.
pub fn check_done(rec: &DeploymentRecord, inv: &HookInvocation, seen: CheckSeen, now: &str) -> Verdict {
    let mut rec = rec.clone();
    rec.hook_tally = None;
    let listener = seen.listener.as_str();
    let why = match seen.verdict {
        Ok(()) => {
            rec.hook_checks.push(hook_check(inv, seen.listener, seen.rounds, seen.smoke, None, now));
            rec.stamp(&format!("{}_passed", inv.timeline_event()), now.to_string());
            let why = format!(
                "{}: smoke test passed through the {listener} listener in {} round(s)",
                inv.check_key(),
                seen.rounds
            );
            return Verdict::hook(rec, Write::Save, Tell::Nobody, HookAnswer::succeeded(why));
        }
        Err(why) => why,
    };
    let share = inv.production_share();
    let touched = if share == 0.0 {
        "production never served it".to_string()
    } else {
        format!("{}% of production traffic reached it", fmt_share(share))
    };
    let reason = format!(
        "{} check failed through the {listener} listener: {why}; ECS rolls back to {}: {touched}",
        inv.check_key(),
        short_name(&rec.previous_task_definition)
    );
    rec.hook_checks.push(hook_check(inv, seen.listener, seen.rounds, seen.smoke, Some(why), now));
    rolled_back_by_ecs(&mut rec, &reason);
    rec.service_deployment_arn = Some(inv.resource_arn.clone());
    rec.stamp(&format!("{}_failed", inv.timeline_event()), now.to_string());
    rec.stamp(Mark::RolledBack.as_str(), now.to_string());
    Verdict::hook(rec, Write::Save, Tell::Everyone, HookAnswer::failed(reason))
}

/// The record of one check's verdict: passed unless it says why it failed.
fn hook_check(
    inv: &HookInvocation,
    listener: Listener,
    rounds: u32,
    smoke: Value,
    failed: Option<String>,
    now: &str,
) -> HookCheck {
    HookCheck {
        check: inv.check_key(),
        listener: listener.as_str().into(),
        production_share: inv.production_share(),
        passed: failed.is_none(),
        reason: failed,
        rounds,
        smoke,
        at: now.to_string(),
    }
}

/// Why a hook answered FAILED other than on a check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFailure {
    /// A permanent AWS failure (timeline `error`).
    Error,
    /// The stuck budget is spent (timeline `hook_stuck`; the tally is dropped).
    Stuck,
}

/// The record once a hook answered FAILED for `why` other than a check: ECS rolls it back.
/// `None` when the record already has its verdict.
pub fn failed_hook(rec: &DeploymentRecord, why: HookFailure, reason: &str, now: &str) -> Option<DeploymentRecord> {
    if rec.is_settled() {
        return None;
    }
    let mut rec = rec.clone();
    rolled_back_by_ecs(&mut rec, reason);
    let event = match why {
        HookFailure::Error => "error",
        HookFailure::Stuck => {
            rec.hook_tally = None;
            "hook_stuck"
        }
    };
    rec.stamp(event, now.to_string());
    Some(rec)
}

fn rolled_back_by_ecs(rec: &mut DeploymentRecord, reason: &str) {
    rec.status = Status::RolledBack;
    rec.rolled_back_by = Some("ecs".into());
    rec.rolled_back_to = Some(rec.previous_task_definition.clone());
    rec.reason = Some(reason.to_string());
}
