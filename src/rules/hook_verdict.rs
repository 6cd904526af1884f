//! The verdict on a lifecycle hook invocation, as a value ([`Verdict`]): what one check's round
//! (or an answer decided before any round) makes of the record, and what ECS hears. Pure.

use serde_json::Value;

use crate::domain::lifecycle::{fmt_share, Carried, HookAnswer, Listener};
use crate::domain::mode::Mode;
use crate::domain::record::{DeploymentRecord, HookCheck, Status};
use crate::inbound::hook::HookInvocation;
use crate::rules::taskdef::short_name;
use crate::rules::verdict::{Mark, Next, Tell, Verdict, Write};

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
    let fresh = Carried {
        check: inv.check_key(),
        deployment: rec.id.clone(),
        rounds: 0,
        streak: 0,
        started_ms: now_ms,
        active_passed: false,
    };
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

/// A production step with analysis that is not decided yet: the tally (and whether the active
/// checks already passed) is saved, and ECS calls again after `interval_ms`.
pub fn step_again(rec: &DeploymentRecord, c: &Carried, why: &str, interval_ms: u64) -> Verdict {
    let mut rec = rec.clone();
    rec.hook_tally = Some(c.clone());
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
    /// A production step judged with analysis: what the active checks reached and what the
    /// analysis read; `None` for a smoke-only check.
    pub canary: Option<CanaryEvidence>,
}

/// What a production step's verdict rests on besides the smoke rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryEvidence {
    /// Which listener, rule, target group and revision the active checks reached (`rules::canary::Reached`).
    pub reached: Value,
    /// The analysis's findings (`rules::analysis::Findings`), when it could read the metrics.
    pub analysis: Option<Value>,
    /// The analysis in one line, with its figures.
    pub summary: String,
}

impl CheckSeen {
    /// How the check was judged, for its reason: ` through the test listener`, or nothing for a
    /// step with analysis (its reason says whether the analysis or the active checks failed).
    fn judged(&self) -> String {
        match self.analysed() {
            // The reason names what failed: the analysis, or the active checks and their listener.
            Some(_) => String::new(),
            None => format!(" through the {} listener", self.listener.as_str()),
        }
    }

    /// The evidence, when the step was judged with analysis.
    fn analysed(&self) -> Option<&CanaryEvidence> {
        self.canary.as_ref().filter(|c| c.analysis.is_some())
    }
}

/// A check's verdict: a pass goes on the record (the deployment's verdict waits for ECS) and
/// answers SUCCEEDED; a failure also records the rollback ECS makes on FAILED, and tells. In
/// observe mode a failure is an observed one ([`crate::rules::observe`]): ECS hears SUCCEEDED.
pub fn check_done(rec: &DeploymentRecord, inv: &HookInvocation, seen: CheckSeen, mode: Mode, now: &str) -> Verdict {
    let mut rec = rec.clone();
    rec.hook_tally = None;
    let judged = seen.judged();
    let why = match &seen.verdict {
        Ok(()) => {
            let why = match seen.analysed() {
                Some(c) => format!("{}: passed on the load balancer's metrics: {}", inv.check_key(), c.summary),
                None => format!("{}: smoke test passed{judged} in {} round(s)", inv.check_key(), seen.rounds),
            };
            rec.hook_checks.push(hook_check(inv, seen, None, now));
            rec.stamp(&format!("{}_passed", inv.timeline_event()), now.to_string());
            return Verdict::hook(rec, Write::Save, Tell::Nobody, HookAnswer::succeeded(why));
        }
        Err(why) => why.clone(),
    };
    let share = inv.production_share();
    let touched = if share == 0.0 {
        "production never served it".to_string()
    } else {
        format!("{}% of production traffic reached it", fmt_share(share))
    };
    let rolls = if mode == Mode::Observe { "would roll back" } else { "rolls back" };
    let reason = format!(
        "{} check failed{judged}: {why}; ECS {rolls} to {}: {touched}",
        inv.check_key(),
        short_name(&rec.previous_task_definition)
    );
    rec.hook_checks.push(hook_check(inv, seen, Some(why), now));
    rec.service_deployment_arn = Some(inv.resource_arn.clone());
    rec.stamp(&format!("{}_failed", inv.timeline_event()), now.to_string());
    if mode == Mode::Observe {
        let reason = crate::rules::observe::would_answer_failed_reason(&reason);
        crate::rules::observe::observed(&mut rec, reason.clone(), now);
        return Verdict::hook(rec, Write::Save, Tell::Everyone, HookAnswer::succeeded(reason));
    }
    rolled_back_by_ecs(&mut rec, &reason);
    rec.stamp(Mark::RolledBack.as_str(), now.to_string());
    Verdict::hook(rec, Write::Save, Tell::Everyone, HookAnswer::failed(reason))
}

/// The record of one check's verdict: passed unless it says why it failed.
fn hook_check(inv: &HookInvocation, seen: CheckSeen, failed: Option<String>, now: &str) -> HookCheck {
    let (reached, analysis) = match seen.canary {
        Some(c) => (Some(c.reached), c.analysis),
        None => (None, None),
    };
    HookCheck {
        check: inv.check_key(),
        listener: seen.listener.as_str().into(),
        production_share: inv.production_share(),
        passed: failed.is_none(),
        reason: failed,
        rounds: seen.rounds,
        smoke: seen.smoke,
        reached,
        analysis,
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

/// The record once a hook failed for `why` other than a check: answered FAILED, ECS rolls it
/// back; in observe mode answered SUCCEEDED ([`hook_failure_answer`]), an observed failure that
/// keeps serving. `None` when the record already has its verdict.
pub fn failed_hook(
    rec: &DeploymentRecord,
    why: HookFailure,
    reason: &str,
    mode: Mode,
    now: &str,
) -> Option<DeploymentRecord> {
    if rec.is_settled() {
        return None;
    }
    let mut rec = rec.clone();
    match mode {
        Mode::Enforce => rolled_back_by_ecs(&mut rec, reason),
        Mode::Observe => {
            crate::rules::observe::observed(&mut rec, crate::rules::observe::would_answer_failed_reason(reason), now)
        }
    }
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

/// The answer to a hook that failed for `reason` other than a check (a spent stuck budget, a
/// permanent AWS failure): FAILED, so ECS rolls back; in observe mode SUCCEEDED, saying so.
pub fn hook_failure_answer(reason: &str, mode: Mode) -> HookAnswer {
    match mode {
        Mode::Enforce => HookAnswer::failed(reason.to_string()),
        Mode::Observe => HookAnswer::succeeded(crate::rules::observe::would_answer_failed_reason(reason)),
    }
}

fn rolled_back_by_ecs(rec: &mut DeploymentRecord, reason: &str) {
    rec.status = Status::RolledBack;
    rec.rolled_back_by = Some("ecs".into());
    rec.rolled_back_to = Some(rec.previous_task_definition.clone());
    rec.reason = Some(reason.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::HookStatus;
    use crate::inbound::hook::{parse, tests::fixture};
    use crate::rules::verdict::tests::{record, NOW};
    use crate::rules::verdict::Reply;

    fn invocation() -> HookInvocation {
        parse(&fixture("post-test")).unwrap()
    }

    fn hook_answer(v: &Verdict) -> (HookStatus, String) {
        match &v.answer {
            Some(Reply::Hook(a)) => (a.hook_status, a.reason().to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hook_answer_decided_before_any_round_stamps_and_ties_the_record_once() {
        let inv = invocation();
        let rec = record(Status::Started);
        let go = || HookAnswer::succeeded("nothing to check");
        let rows: [(&str, Option<&str>, bool, Write); 4] = [
            ("no stamp", None, false, Write::Nothing),
            ("a new stamp", Some("ecs_rolling_back"), false, Write::Save),
            ("stamped, not tied", Some("started"), false, Write::Save),
            ("stamped and tied", Some("started"), true, Write::Nothing),
        ];
        for (name, stamp, tied, write) in rows {
            let mut rec = rec.clone();
            if tied {
                rec.service_deployment_arn = Some(inv.resource_arn.clone());
            }
            let v = hook_answered(&rec, &inv, go(), stamp, NOW);
            assert_eq!((v.write, v.tell, &v.next), (write, Tell::Nobody, &Next::Answer), "{name}");
            assert_eq!(hook_answer(&v).0, HookStatus::Succeeded, "{name}");
            if let Some(s) = stamp {
                assert!(v.record.has(s), "{name}");
                assert_eq!(v.record.service_deployment_arn.as_deref(), Some(inv.resource_arn.as_str()), "{name}");
            }
        }
    }

    #[test]
    fn each_step_of_a_hook_check_has_its_verdict() {
        let inv = invocation();
        let rec = record(Status::Started);
        let (fresh, started) = check_started(&rec, &inv, 5_000, NOW);
        assert_eq!((fresh.rounds, fresh.started_ms, fresh.deployment.as_str()), (0, 5_000, "ecs-svc-1"));
        assert_eq!((started.write, started.record.hook_tally.as_ref()), (Write::Save, Some(&fresh)));
        assert!(started.record.has("post_test_traffic_shift"));

        let v = no_time(&started.record, &fresh, 2_500);
        assert_eq!((v.write, hook_answer(&v).0), (Write::Nothing, HookStatus::InProgress));

        let one = Carried { rounds: 1, streak: 1, ..fresh.clone() };
        let v = round_again(&started.record, Listener::Test, &one, true, 2, 2_500);
        assert_eq!((v.write, v.tell), (Write::Save, Tell::Nobody));
        assert_eq!(v.record.hook_tally, Some(one));
        assert_eq!(
            hook_answer(&v),
            (HookStatus::InProgress, "round 1 passed through the test listener; 1 of 2 passing in a row so far".into())
        );

        let seen =
            |verdict| CheckSeen { listener: Listener::Test, rounds: 3, smoke: Value::Null, verdict, canary: None };
        let passed = check_done(&started.record, &inv, seen(Ok(())), Mode::Enforce, NOW);
        assert_eq!((passed.write, passed.tell, passed.record.status), (Write::Save, Tell::Nobody, Status::Started));
        assert_eq!(passed.record.hook_tally, None);
        assert!(passed.record.hook_checks[0].passed && passed.record.has("post_test_traffic_shift_passed"));
        assert_eq!(hook_answer(&passed).0, HookStatus::Succeeded);

        let failed = check_done(&started.record, &inv, seen(Err("GET /: status 500".into())), Mode::Enforce, NOW);
        assert_eq!((failed.write, failed.tell), (Write::Save, Tell::Everyone));
        let r = &failed.record;
        assert_eq!((r.status, r.rolled_back_by.as_deref()), (Status::RolledBack, Some("ecs")));
        assert_eq!(r.rolled_back_to.as_deref(), Some("arn:td/app:1"));
        assert!(r.has("post_test_traffic_shift_failed") && r.timeline.last().unwrap().event == "rolled_back");
        let (status, why) = hook_answer(&failed);
        assert_eq!(status, HookStatus::Failed);
        assert_eq!(
            why,
            "POST_TEST_TRAFFIC_SHIFT check failed through the test listener: GET /: status 500; ECS rolls back to app:1: production never served it"
        );
    }

    #[test]
    fn in_observe_mode_a_failed_check_answers_succeeded_and_records_what_it_would_have_answered() {
        let inv = invocation();
        let (_, started) = check_started(&record(Status::Started), &inv, 5_000, NOW);
        let seen =
            |verdict| CheckSeen { listener: Listener::Test, rounds: 3, smoke: Value::Null, verdict, canary: None };
        let passed = check_done(&started.record, &inv, seen(Ok(())), Mode::Observe, NOW);
        let enforced = check_done(&started.record, &inv, seen(Ok(())), Mode::Enforce, NOW);
        assert_eq!(passed, enforced, "a pass is the same verdict in either mode");

        let v = check_done(&started.record, &inv, seen(Err("GET /: status 500".into())), Mode::Observe, NOW);
        assert_eq!((v.write, v.tell, &v.next), (Write::Save, Tell::Everyone, &Next::Answer));
        let r = &v.record;
        assert_eq!((r.status, r.mode), (Status::Failed, Mode::Observe));
        assert_eq!((r.rolled_back_by.as_deref(), r.rolled_back_to.as_deref()), (None, None), "nothing rolled back");
        assert!(!r.hook_checks[0].passed && r.has("post_test_traffic_shift_failed") && r.observed_failure());
        assert_eq!(r.timeline.last().unwrap().event, "would_roll_back");
        let (status, why) = hook_answer(&v);
        assert_eq!(status, HookStatus::Succeeded);
        assert_eq!(
            why,
            "observe: would answer FAILED: POST_TEST_TRAFFIC_SHIFT check failed through the test listener: GET /: status 500; ECS would roll back to app:1: production never served it; answered SUCCEEDED, so the deployment went on"
        );
        assert_eq!(r.reason.as_deref(), Some(why.as_str()));
    }

    #[test]
    fn a_hook_that_fails_for_another_reason_rolls_an_open_record_back() {
        let mut open = record(Status::Started);
        open.hook_tally = Some(Carried {
            check: "k".into(),
            deployment: "ecs-svc-1".into(),
            rounds: 1,
            streak: 0,
            started_ms: 1,
            active_passed: false,
        });
        let error = failed_hook(&open, HookFailure::Error, "AccessDenied", Mode::Enforce, NOW).unwrap();
        assert_eq!((error.status, error.timeline.last().unwrap().event.as_str()), (Status::RolledBack, "error"));
        assert!(error.hook_tally.is_some(), "an error leaves the tally");
        let stuck = failed_hook(&open, HookFailure::Stuck, "stuck", Mode::Enforce, NOW).unwrap();
        assert_eq!((stuck.hook_tally.as_ref(), stuck.timeline.last().unwrap().event.as_str()), (None, "hook_stuck"));
        assert_eq!(stuck.reason.as_deref(), Some("stuck"));
        assert_eq!(failed_hook(&record(Status::Verified), HookFailure::Stuck, "x", Mode::Enforce, NOW), None);
        assert_eq!(hook_failure_answer("stuck", Mode::Enforce), HookAnswer::failed("stuck".to_string()));
    }

    #[test]
    fn in_observe_mode_a_hook_that_fails_for_another_reason_answers_succeeded_and_rolls_nothing_back() {
        let open = record(Status::Started);
        for (why, event) in [(HookFailure::Error, "error"), (HookFailure::Stuck, "hook_stuck")] {
            let rec = failed_hook(&open, why, "AccessDenied", Mode::Observe, NOW).unwrap();
            assert_eq!(
                (rec.status, rec.mode, rec.timeline.last().unwrap().event.as_str()),
                (Status::Failed, Mode::Observe, event)
            );
            assert!(rec.observed_failure() && rec.rolled_back_by.is_none() && rec.rolled_back_to.is_none(), "{rec:?}");
            assert_eq!(
                rec.reason.as_deref(),
                Some("observe: would answer FAILED: AccessDenied; answered SUCCEEDED, so the deployment went on")
            );
        }
        let answer = hook_failure_answer("AccessDenied", Mode::Observe);
        assert_eq!(
            answer,
            HookAnswer::succeeded(
                "observe: would answer FAILED: AccessDenied; answered SUCCEEDED, so the deployment went on".to_string()
            )
        );
    }
}
