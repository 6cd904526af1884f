//! The verdict on an ECS deployment event or a lifecycle hook invocation, as a value: what the
//! record becomes, who hears of it, what verify does next and what it answers. Pure: verify's
//! flows describe (AWS reads), ask [`decide`] (or a hook verdict below) and apply the value in one
//! place; `now` is passed in, so every verdict is a function of what was described.

use serde_json::Value;

use crate::domain::lifecycle::HookAnswer;
use crate::domain::record::{DeploymentRecord, Status};
use crate::inbound::{DeploymentState, EcsDeploymentEvent};
use crate::rules::outcome::Outcome;
use crate::rules::taskdef::short_name;

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
    pub fn then(record: &DeploymentRecord, next: Next) -> Self {
        Verdict { record: record.clone(), write: Write::Nothing, tell: Tell::Nobody, next, answer: None }
    }

    /// Saved, settled and told; answered with `outcome` and the record's reason unless `said`.
    pub fn settled(record: DeploymentRecord, outcome: Outcome, said: Option<String>, next: Next) -> Self {
        let reason = said.unwrap_or_else(|| record.reason.clone().unwrap_or_default());
        let answer = Some(Reply::Event(Said { outcome, reason, wrote: true }));
        Verdict { record, write: Write::Save, tell: Tell::Everyone, next, answer }
    }

    /// Saved, told nobody, then `next`.
    pub fn saved(record: DeploymentRecord, next: Next) -> Self {
        Verdict { record, write: Write::Save, tell: Tell::Nobody, next, answer: None }
    }

    /// Answers a hook invocation, writing `record` when `write` says so.
    pub fn hook(record: DeploymentRecord, write: Write, tell: Tell, answer: HookAnswer) -> Self {
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
    /// The service's mode: in `observe`, a rollback verify would decide is an observed failure.
    pub mode: crate::domain::mode::Mode,
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
        let said = Said { outcome: Outcome::of_settled(rec), reason, wrote: false };
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
    rec.mode = d.mode; // The record says the mode its verdict is given in, whatever it started in.
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
            return decided_to_roll_back(rec, why, d);
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
    decided_to_roll_back(rec, why, d)
}

/// Verified: `reason` on the record, `said` in the answer.
fn verified(mut rec: DeploymentRecord, reason: Option<String>, said: String, next: Next, now: &str) -> Verdict {
    rec.status = Status::Verified;
    rec.reason = reason;
    rec.stamp(Mark::Verified.as_str(), now.to_string());
    Verdict::settled(rec, Outcome::Verified, Some(said), next)
}

/// The decision to roll back is saved before acting on it, so a retry after a crash knows the
/// rollback is ours ([`RollbackState::Decided`]). In observe mode: an observed failure, no action.
fn decided_to_roll_back(mut rec: DeploymentRecord, why: String, d: &Described) -> Verdict {
    if d.mode == crate::domain::mode::Mode::Observe {
        crate::rules::observe::observed(&mut rec, crate::rules::observe::would_roll_back_reason(&why), &d.now);
        return Verdict::settled(rec, Outcome::Failed, None, Next::Answer);
    }
    rec.reason = Some(why.clone());
    rec.stamp(Mark::SmokeFailed.as_str(), d.now.clone());
    Verdict::saved(rec, Next::RollBack { why })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::record::{HookCheck, TriggerRef};
    use serde_json::json;

    pub(crate) const NOW: &str = "2026-11-27T09:00:00Z";
    const AT: &str = "2026-11-27T08:59:00Z";

    pub(crate) fn record(status: Status) -> DeploymentRecord {
        let mut rec: DeploymentRecord = serde_json::from_value(json!({
            "id": "ecs-svc-1", "cluster": "c", "service": "s", "name": "backend", "repository": "r",
            "tag": "latest", "digest": "sha256:aa", "image_uri": "r@sha256:aa", "strategy": "pin-digest",
            "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": "2026-11-27T00:00:00Z",
            "previous_task_definition": "arn:td/app:1", "task_definition": "arn:td/app:2",
            "ecs_deployment_id": "ecs-svc/1", "status": "started", "containers": ["backend"],
            "timeline": [{"event": "started", "at": "2026-11-27T00:00:05Z"}]
        }))
        .unwrap();
        rec.status = status;
        rec
    }

    fn event(state: DeploymentState) -> EcsDeploymentEvent {
        EcsDeploymentEvent {
            event_id: "ev-1".into(),
            time: Some(AT.into()),
            cluster: Some("c".into()),
            service: "s".into(),
            deployment_id: "ecs-svc/1".into(),
            state,
            reason: Some("tasks failed to start".into()),
        }
    }

    fn next_kind(next: &Next) -> String {
        match next {
            Next::Answer => "answer".into(),
            Next::Prune => "prune".into(),
            Next::Read(Ask::Service) => "read service".into(),
            Next::Read(Ask::Confirmation) => "read confirmation".into(),
            Next::RunSmoke => "run smoke".into(),
            Next::RollBack { why } => format!("roll back: {why}"),
            Next::FinishRollback { primary } => format!("finish rollback {}", primary.as_deref().unwrap_or("-")),
            Next::Refuse { event, why } => format!("refuse {event}: {why}"),
        }
    }

    /// What the event, the record and what was described are.
    struct Case {
        name: &'static str,
        state: DeploymentState,
        status: Status,
        tweak: fn(&mut DeploymentRecord),
        running: Option<&'static str>,
        confirmed: Option<Result<(), &'static str>>,
        smoke_configured: bool,
        smoke: Option<bool>,
        mode: crate::domain::mode::Mode,
    }

    /// What the verdict must be: the record's status and newest timeline event, the write, the
    /// telling, the next step (its start), and the answer's outcome and reason (its start).
    struct Expect {
        status: Status,
        mark: &'static str,
        write: Write,
        tell: Tell,
        next: &'static str,
        answer: Option<(Outcome, &'static str)>,
    }

    fn nothing(_: &mut DeploymentRecord) {}

    fn case(name: &'static str, state: DeploymentState, status: Status) -> Case {
        Case {
            name,
            state,
            status,
            tweak: nothing,
            running: None,
            confirmed: None,
            smoke_configured: true,
            smoke: None,
            mode: crate::domain::mode::Mode::Enforce,
        }
    }

    fn expect(status: Status, mark: &'static str, write: Write, tell: Tell, next: &'static str) -> Expect {
        Expect { status, mark, write, tell, next, answer: None }
    }

    fn described<'a>(c: &Case, e: &'a EcsDeploymentEvent, rec: &'a DeploymentRecord) -> Described<'a> {
        Described {
            event: e,
            record: rec,
            smoke_configured: c.smoke_configured,
            mode: c.mode,
            service: c.running.map(|r| ServiceSeen { running: r.into(), primary: Some("ecs-svc/9".into()) }),
            confirmed: c.confirmed.map(|r| r.map_err(str::to_string)),
            smoke: c.smoke.map(|passed| SmokeSeen {
                passed,
                reason: (!passed).then(|| "GET /: status 500".to_string()),
                rounds: 3,
                duration_ms: 1200,
                report: json!({"passed": passed}),
            }),
            event_at: AT.into(),
            now: NOW.into(),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn table() -> Vec<(Case, Expect)> {
        use DeploymentState::{Completed, Failed as EcsFailed, InProgress};
        use Status::*;
        let td2 = Some("arn:td/app:2");
        let td1 = Some("arn:td/app:1");
        let ok = Some(Ok(()));
        let answered = |e: Expect, outcome, said| Expect { answer: Some((outcome, said)), ..e };
        vec![
            (
                case("a verified record answers its verdict", Completed, Verified),
                answered(
                    expect(Verified, "started", Write::Nothing, Tell::Nobody, "answer"),
                    Outcome::Verified,
                    "already verified",
                ),
            ),
            (
                case("a rolled-back record answers its verdict", InProgress, RolledBack),
                answered(
                    expect(RolledBack, "started", Write::Nothing, Tell::Nobody, "answer"),
                    Outcome::RolledBack,
                    "already rolled_back",
                ),
            ),
            (
                case("a failed record answers its verdict", EcsFailed, Failed),
                answered(
                    expect(Failed, "started", Write::Nothing, Tell::Nobody, "answer"),
                    Outcome::Failed,
                    "already failed",
                ),
            ),
            (
                Case {
                    tweak: |r| r.trigger = TriggerRef::AutoRollback { of: "d0".into() },
                    ..case("a completed rollback answers its verdict", Completed, Status::Completed)
                },
                answered(
                    expect(Status::Completed, "started", Write::Nothing, Tell::Nobody, "answer"),
                    Outcome::RolledBack,
                    "already completed",
                ),
            ),
            (
                case("in progress is stamped once and logged", InProgress, Started),
                answered(
                    expect(Started, "ecs_in_progress", Write::Save, Tell::Log("started"), "answer"),
                    Outcome::Started,
                    "ECS reports the rollout in progress",
                ),
            ),
            (
                Case {
                    tweak: |r| r.stamp("ecs_in_progress", AT.into()),
                    ..case("in progress again writes nothing", InProgress, Started)
                },
                answered(
                    expect(Started, "ecs_in_progress", Write::Nothing, Tell::Log("started"), "answer"),
                    Outcome::Started,
                    "ECS reports the rollout in progress",
                ),
            ),
            (
                case("failed asks what the service runs", EcsFailed, Started),
                expect(Started, "started", Write::Nothing, Tell::Nobody, "read service"),
            ),
            (
                Case { running: td2, ..case("failed asks ECS to confirm", EcsFailed, Started) },
                expect(Started, "started", Write::Nothing, Tell::Nobody, "read confirmation"),
            ),
            (
                Case {
                    running: td2,
                    confirmed: Some(Err("ECS says IN_PROGRESS")),
                    ..case("failed unconfirmed is refused", EcsFailed, Started)
                },
                expect(
                    Started,
                    "started",
                    Write::Nothing,
                    Tell::Nobody,
                    "refuse SERVICE_DEPLOYMENT_FAILED: ECS says IN_PROGRESS",
                ),
            ),
            (
                Case { running: td2, confirmed: ok, ..case("failed confirmed settles failed", EcsFailed, Started) },
                answered(
                    expect(Failed, "ecs_failed", Write::Save, Tell::Everyone, "answer"),
                    Outcome::Failed,
                    "ECS deployment failed: tasks failed to start",
                ),
            ),
            (
                Case {
                    tweak: |r| r.reason = Some("cannot roll back".into()),
                    ..case("a failed rollback is tried again", Completed, RollbackFailed)
                },
                expect(RollbackFailed, "started", Write::Nothing, Tell::Nobody, "roll back: cannot roll back"),
            ),
            (
                Case {
                    tweak: |r| r.trigger = TriggerRef::AutoRollback { of: "d0".into() },
                    ..case("a rollback's own deployment completes", Completed, Started)
                },
                answered(
                    expect(Status::Completed, "ecs_completed", Write::Save, Tell::Everyone, "answer"),
                    Outcome::RolledBack,
                    "rollback to app:2 completed",
                ),
            ),
            (
                case("completed asks what the service runs", Completed, Started),
                expect(Started, "ecs_completed", Write::Nothing, Tell::Nobody, "read service"),
            ),
            (
                Case {
                    running: td1,
                    tweak: |r| r.stamp("smoke_failed", AT.into()),
                    ..case("a decided rollback that went through is finished", Completed, Started)
                },
                expect(Started, "ecs_completed", Write::Nothing, Tell::Nobody, "finish rollback ecs-svc/9"),
            ),
            (
                Case { running: td1, ..case("back on the previous revision undecided is failed", Completed, Started) },
                answered(
                    expect(Failed, "failed", Write::Save, Tell::Everyone, "answer"),
                    Outcome::Failed,
                    "the service runs app:1, not app:2",
                ),
            ),
            (
                Case {
                    running: Some("arn:td/other:7"),
                    tweak: |r| r.stamp("smoke_failed", AT.into()),
                    ..case("another revision is failed even after a decided rollback", Completed, Started)
                },
                answered(
                    expect(Failed, "failed", Write::Save, Tell::Everyone, "answer"),
                    Outcome::Failed,
                    "the service runs other:7",
                ),
            ),
            (
                Case { running: td2, ..case("completed asks ECS to confirm", Completed, Started) },
                expect(Started, "ecs_completed", Write::Nothing, Tell::Nobody, "read confirmation"),
            ),
            (
                Case {
                    running: td2,
                    confirmed: Some(Err("not primary")),
                    ..case("completed unconfirmed is refused", Completed, Started)
                },
                expect(
                    Started,
                    "started",
                    Write::Nothing,
                    Tell::Nobody,
                    "refuse SERVICE_DEPLOYMENT_COMPLETED: not primary",
                ),
            ),
            (
                Case {
                    running: td2,
                    confirmed: ok,
                    tweak: |r| r.hook_checks.push(passed_check()),
                    ..case("checked by the hook is verified untested", Completed, Started)
                },
                answered(
                    expect(Verified, "verified", Write::Save, Tell::Everyone, "prune"),
                    Outcome::Verified,
                    "checked by the lifecycle hook at POST_TEST_TRAFFIC_SHIFT",
                ),
            ),
            (
                Case {
                    running: td2,
                    confirmed: ok,
                    smoke_configured: false,
                    ..case("no smoke test is verified, nothing pruned", Completed, Started)
                },
                answered(
                    expect(Verified, "verified", Write::Save, Tell::Everyone, "answer"),
                    Outcome::Verified,
                    "no smoke test configured",
                ),
            ),
            (
                Case {
                    running: td2,
                    confirmed: ok,
                    ..case("a smoke test runs after the attempt is saved", Completed, Started)
                },
                expect(Started, "ecs_completed", Write::Save, Tell::Nobody, "run smoke"),
            ),
            (
                Case {
                    running: td2,
                    confirmed: ok,
                    tweak: |r| r.smoke_attempts = 2,
                    ..case("tests that keep dying roll back untested", Completed, Started)
                },
                expect(
                    Started,
                    "smoke_failed",
                    Write::Save,
                    Tell::Nobody,
                    "roll back: verify started the smoke test 2 times",
                ),
            ),
            (
                Case {
                    running: td2,
                    confirmed: ok,
                    smoke: Some(true),
                    ..case("a passed smoke test is verified and pruned", Completed, Started)
                },
                answered(
                    expect(Verified, "verified", Write::Save, Tell::Everyone, "prune"),
                    Outcome::Verified,
                    "smoke test passed: 3 round(s) in 1200 ms",
                ),
            ),
            (
                Case {
                    running: td2,
                    confirmed: ok,
                    smoke: Some(false),
                    ..case("a failed smoke test is rolled back, decided first", Completed, Started)
                },
                expect(Started, "smoke_failed", Write::Save, Tell::Nobody, "roll back: GET /: status 500"),
            ),
        ]
    }

    fn passed_check() -> HookCheck {
        HookCheck {
            check: "POST_TEST_TRAFFIC_SHIFT".into(),
            listener: "test".into(),
            production_share: 0.0,
            passed: true,
            reason: None,
            rounds: 2,
            smoke: Value::Null,
            reached: None,
            analysis: None,
            at: AT.into(),
        }
    }

    #[test]
    fn every_event_and_record_verify_handles_has_one_verdict() {
        for (c, want) in table() {
            let mut rec = record(c.status);
            (c.tweak)(&mut rec);
            let e = event(c.state);
            let v = decide(&described(&c, &e, &rec));
            let name = c.name;
            assert_eq!(v.record.status, want.status, "{name}");
            assert_eq!(v.record.timeline.last().unwrap().event, want.mark, "{name}");
            assert_eq!((v.write, v.tell), (want.write, want.tell), "{name}");
            let next = next_kind(&v.next);
            assert!(next.starts_with(want.next), "{name}: {next}");
            match (&v.answer, want.answer) {
                (Some(Reply::Event(said)), Some((outcome, reason))) => {
                    assert_eq!(said.outcome, outcome, "{name}");
                    assert!(said.reason.starts_with(reason), "{name}: {}", said.reason);
                    assert_eq!(said.wrote, want.write == Write::Save || want.tell != Tell::Nobody, "{name}");
                }
                (None, None) => {}
                (got, want) => panic!("{name}: answered {got:?}, want {want:?}"),
            }
            // A settle always writes the record it tells of.
            assert!(v.tell != Tell::Everyone || v.write == Write::Save, "{name}");
        }
    }

    #[test]
    fn the_smoke_test_is_counted_once_and_its_report_kept() {
        let e = event(DeploymentState::Completed);
        let rec = record(Status::Started);
        let c = Case { running: Some("arn:td/app:2"), confirmed: Some(Ok(())), ..case("", e.state, Status::Started) };
        let before = decide(&described(&c, &e, &rec));
        assert_eq!((before.record.smoke_attempts, before.record.smoke.clone()), (1, None));
        assert_eq!(before.record.timeline.last().unwrap().at, AT, "ECS's own time");
        let after = decide(&described(&Case { smoke: Some(false), ..c }, &e, &rec));
        assert_eq!(after.record.smoke_attempts, 1, "decided again from the record as read");
        assert_eq!(after.record.smoke, Some(json!({"passed": false})));
        assert_eq!(after.record.reason.as_deref(), Some("GET /: status 500"));
        assert_eq!(RollbackState::of(&after.record), RollbackState::Decided);
        assert_eq!(RollbackState::of(&rec), RollbackState::Undecided);
    }

    /// Observe mode changes exactly the verdicts that would roll back: each becomes an observed
    /// failure, settled and told, with nothing rolled back; every other verdict is enforce's.
    #[test]
    fn observe_turns_each_rollback_and_nothing_else_into_an_observed_failure() {
        use crate::domain::mode::Mode;
        let mut observed = 0;
        for (c, _) in table() {
            let mut rec = record(c.status);
            (c.tweak)(&mut rec);
            let e = event(c.state);
            let name = c.name;
            let enforced = decide(&described(&c, &e, &rec));
            let v = decide(&described(&Case { mode: Mode::Observe, ..c }, &e, &rec));
            let Next::RollBack { why } = &enforced.next else {
                // Once ECS confirms a completion, the record says the mode it is judged in.
                let same =
                    Verdict { record: DeploymentRecord { mode: Mode::Enforce, ..v.record.clone() }, ..v.clone() };
                assert_eq!(same, enforced, "{name}: observe changes only a rollback");
                continue;
            };
            if rec.status == Status::RollbackFailed {
                // A rollback enforce mode started before the service was put in observe mode is
                // retried: observe mode only changes the verdicts it gives itself.
                assert_eq!(v, enforced, "{name}");
                continue;
            }
            observed += 1;
            assert_eq!((v.write, v.tell, &v.next), (Write::Save, Tell::Everyone, &Next::Answer), "{name}");
            let r = &v.record;
            assert_eq!((r.status, r.mode), (Status::Failed, Mode::Observe), "{name}");
            assert_eq!(r.reason.clone().unwrap(), format!("observe: would roll back: {why}"), "{name}");
            assert_eq!(r.timeline.last().map(|t| (t.event.as_str(), t.at.as_str())), Some(("would_roll_back", NOW)));
            assert!(r.observed_failure() && r.is_settled(), "{name}");
            assert_eq!(RollbackState::of(r), RollbackState::Undecided, "{name}: no rollback decided");
            assert!(r.rolled_back_to.is_none() && r.rolled_back_by.is_none(), "{name}");
            let Some(Reply::Event(said)) = &v.answer else { panic!("{name}: {:?}", v.answer) };
            assert_eq!(
                (said.outcome, said.reason.as_str(), said.wrote),
                (Outcome::Failed, r.reason.as_deref().unwrap(), true)
            );
        }
        assert_eq!(observed, 2, "a failed smoke test and tests that keep dying");
    }

    #[test]
    fn an_observed_failure_is_settled_and_answers_its_verdict_again() {
        use crate::domain::mode::Mode;
        let e = event(DeploymentState::Completed);
        let c = Case {
            running: Some("arn:td/app:2"),
            confirmed: Some(Ok(())),
            smoke: Some(false),
            mode: Mode::Observe,
            ..case("", e.state, Status::Started)
        };
        let first = decide(&described(&c, &e, &record(Status::Started)));
        assert_eq!(first.record.reason.as_deref(), Some("observe: would roll back: GET /: status 500"));
        let again = decide(&described(&c, &e, &first.record));
        assert_eq!((again.write, again.tell, &again.next), (Write::Nothing, Tell::Nobody, &Next::Answer));
        let Some(Reply::Event(said)) = again.answer else { panic!() };
        assert_eq!(said.outcome, Outcome::Failed);
        assert_eq!(said.reason, "already failed (observe: would roll back: GET /: status 500): nothing to do");
    }

    #[test]
    fn a_deployment_started_in_observe_mode_and_judged_in_enforce_mode_says_enforce() {
        use crate::domain::mode::Mode;
        let e = event(DeploymentState::Completed);
        let mut rec = record(Status::Started);
        rec.mode = Mode::Observe;
        let c = Case {
            running: Some("arn:td/app:2"),
            confirmed: Some(Ok(())),
            smoke: Some(false),
            ..case("", e.state, Status::Started)
        };
        let v = decide(&described(&c, &e, &rec));
        assert_eq!((v.record.mode, next_kind(&v.next).as_str()), (Mode::Enforce, "roll back: GET /: status 500"));
        let passed = decide(&described(&Case { smoke: Some(true), ..c }, &e, &rec));
        assert_eq!((passed.record.status, passed.record.mode), (Status::Verified, Mode::Enforce));
    }
}
