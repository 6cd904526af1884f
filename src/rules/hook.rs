//! The hook decision: what one lifecycle hook invocation about a recorded deployment asks for
//! (answer at once, or run a smoke round), the round's count, and the stuck budget. Pure.

use crate::config::{ServiceConfig, SmokeConfig};
use crate::domain::lifecycle::{Carried, HookAnswer, Listener, Stage, Stuck};
use crate::domain::record::{DeploymentRecord, Status};
use crate::inbound::hook::HookInvocation;
use crate::rules::judge::{Progress, Tally};

/// The tally the record keeps for this very check of this deployment, if a round has run.
pub fn tally_of(rec: &DeploymentRecord, inv: &HookInvocation) -> Option<Carried> {
    rec.hook_tally.clone().filter(|c| c.check == inv.check_key() && c.deployment == rec.id)
}

/// Why this invocation is one of a rollback's traffic shifts, or `None`. ECS has no rollback stage:
/// it invokes the TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks again, shifting back to
/// blue, with `targetServiceRevisionArn` still naming green. Any one of these says so: ECS reports
/// the service deployment rolling back; green is at 0 % of a shift's weights; green's production
/// share is below one the record shows it already reached; or the weights are empty and the
/// record is already rolled back or failed.
pub fn rollback_shift(inv: &HookInvocation, rec: &DeploymentRecord, ecs_rolling_back: bool) -> Option<&'static str> {
    if !matches!(inv.stage, Stage::TestTrafficShift | Stage::ProductionTrafficShift) {
        return None;
    }
    if ecs_rolling_back {
        return Some("ECS reports the service deployment rolling back");
    }
    if inv.rolling_back() {
        return Some("green is at 0 %");
    }
    let green = inv.production_weights.get(&inv.target_revision).copied();
    if let (Some(now), Some(reached)) = (green, reached_share(rec)) {
        if inv.stage == Stage::ProductionTrafficShift && now < reached {
            return Some("green's production share is below one it already reached");
        }
    }
    // An observed failure kept serving: nothing to shift back from.
    let settled_back = matches!(rec.status, Status::RolledBack | Status::Failed) && !rec.observed_failure();
    if inv.production_weights.is_empty() && inv.test_weights.is_empty() && settled_back {
        return Some("no weights, and the deployment is already rolled back");
    }
    None
}

/// The highest share of production traffic the record shows green reached: its production
/// checks, and the production shift steps on its timeline (`production_traffic_shift_10pct`).
fn reached_share(rec: &DeploymentRecord) -> Option<f64> {
    let checks = rec.hook_checks.iter().filter(|c| c.check.starts_with(Stage::ProductionTrafficShift.as_str()));
    let stamped = rec
        .timeline
        .iter()
        .filter_map(|e| e.event.strip_prefix("production_traffic_shift_")?.strip_suffix("pct")?.parse::<f64>().ok());
    checks.map(|c| c.production_share).chain(stamped).filter(|w| w.is_finite()).reduce(f64::max)
}

/// What to do with an invocation about a deployment pushdeploy recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Answer at once, after putting `stamp` on the timeline (once), if any.
    Answer {
        /// The answer.
        answer: HookAnswer,
        /// A timeline event to record first.
        stamp: Option<String>,
    },
    /// Run a round of `smoke` through `listener`, within `budget`.
    Check {
        /// The listener the checks go through.
        listener: Listener,
        /// The smoke test, aimed at that listener.
        smoke: Box<SmokeConfig>,
        /// Attempts, streak, callback delay and the hook's timeout.
        budget: Budget,
    },
}

/// Decides what an invocation about `rec` asks for, given the service's config and whether ECS
/// itself reports the service deployment rolling back (`ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`).
pub fn decide(rec: &DeploymentRecord, svc: &ServiceConfig, inv: &HookInvocation, ecs_rolling_back: bool) -> Decision {
    let answer = |answer: HookAnswer| Decision::Answer { answer, stamp: None };
    if rec.is_rollback() {
        return answer(HookAnswer::succeeded("a rollback: pushdeploy does not check rollbacks"));
    }
    // Before any verdict already given: a rollback's shift at the weight of a failed step has the
    // same check key as that step, and a settled record would otherwise answer FAILED to it.
    if let Some(why) = rollback_shift(inv, rec, ecs_rolling_back) {
        return Decision::Answer {
            answer: HookAnswer::succeeded(format!(
                "ECS is shifting traffic back to the previous revision ({why}); pushdeploy never holds up a rollback"
            )),
            stamp: Some("ecs_rolling_back".into()),
        };
    }
    if let Some(given) = already_given(rec, inv) {
        return answer(given);
    }
    let hook = svc.hook.as_ref().filter(|h| h.stages.contains(&inv.stage));
    match (inv.stage.listener(), hook, svc.smoke.as_ref()) {
        (Some(listener), Some(hook), Some(smoke)) => Decision::Check {
            listener,
            budget: Budget {
                attempts: smoke.attempts,
                consecutive: smoke.consecutive,
                interval_ms: smoke.interval_ms,
                timeout_ms: hook.timeout_ms(),
            },
            smoke: Box::new(smoke.through(listener)),
        },
        _ => Decision::Answer {
            answer: HookAnswer::succeeded(format!(
                "{} is not a stage [service.hook] of {} checks at: nothing to check",
                inv.stage.as_str(),
                svc.name
            )),
            stamp: Some(inv.timeline_event()),
        },
    }
}

/// The verdict already given to this check, or to the whole deployment: a duplicate or late
/// invocation answers it again.
fn already_given(rec: &DeploymentRecord, inv: &HookInvocation) -> Option<HookAnswer> {
    if rec.observed_failure() {
        // Observe mode gave its verdict: ECS hears SUCCEEDED at every stage after it, as at the first.
        let why =
            format!("deployment {} is already failed, observed only: {}", rec.id, rec.reason.as_deref().unwrap_or(""));
        return Some(HookAnswer::succeeded(why));
    }
    if let Some(done) = rec.hook_checks.iter().find(|c| c.check == inv.check_key()) {
        return Some(if done.passed {
            HookAnswer::succeeded(format!("{} already passed ({} rounds)", done.check, done.rounds))
        } else {
            HookAnswer::failed(format!(
                "{} already failed: {}",
                done.check,
                done.reason.as_deref().unwrap_or("no reason recorded")
            ))
        });
    }
    if rec.is_settled() {
        let why = format!(
            "deployment {} is already {}: {}",
            rec.id,
            rec.status.as_str(),
            rec.reason.as_deref().unwrap_or("no reason recorded")
        );
        return Some(if rec.status == Status::Verified { HookAnswer::succeeded(why) } else { HookAnswer::failed(why) });
    }
    None
}

/// What a smoke check at a hook stage may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rounds allowed.
    pub attempts: u32,
    /// Passing rounds in a row required.
    pub consecutive: u32,
    /// ECS's callback delay between rounds.
    pub interval_ms: u64,
    /// The hook's timeout (`timeoutConfiguration.timeoutInMinutes`).
    pub timeout_ms: u64,
}

/// Whether another round can still lead to a pass; `Err` says why not.
pub fn before_round(c: &Carried, b: &Budget, now_ms: u64) -> Result<(), String> {
    let needed = b.consecutive.saturating_sub(c.streak);
    let left = b.attempts.saturating_sub(c.rounds);
    if left < needed || left == 0 {
        return Err(format!(
            "{} of {} rounds used with {} passing in a row: {needed} more passing rounds cannot fit in the {left} left",
            c.rounds, b.attempts, c.streak
        ));
    }
    // The soonest a pass can come: `needed` rounds, a callback delay apart. (The carried values
    // come back from ECS as the last answer left them, but are not trusted to be sane.)
    let soonest = now_ms.saturating_add(u64::from(needed.saturating_sub(1)).saturating_mul(b.interval_ms));
    if c.started_ms > now_ms.saturating_add(60_000) {
        return Err(format!(
            "the carried tally says the check started at {} ms, in the future: not a tally pushdeploy wrote",
            c.started_ms
        ));
    }
    if soonest > c.started_ms.saturating_add(b.timeout_ms) {
        return Err(format!(
            "the hook's timeout ({} min) would pass before {needed} more passing rounds, {} s apart",
            b.timeout_ms / 60_000,
            b.interval_ms / 1000
        ));
    }
    Ok(())
}

/// What one more stuck invocation comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StuckStep {
    /// Ask ECS to call again; the budget is not spent.
    Again(Stuck),
    /// The budget is spent: answer FAILED, saying why.
    Spent(Stuck, String),
}

/// Counts one stuck invocation of `check` at `now_ms` (`why` it is stuck) into `prior`, the count
/// so far. A count of another check, one whose last invocation is more than `gap_ms` ago (a
/// call-back in between advanced the check), or one dated in the future (not a count pushdeploy
/// wrote) starts afresh. Once the stuck invocations span `budget_ms`, the answer is FAILED.
pub fn count_stuck(
    prior: Option<&Stuck>,
    check: &str,
    why: &str,
    now_ms: u64,
    budget_ms: u64,
    gap_ms: u64,
) -> StuckStep {
    let carries_on = |p: &&Stuck| {
        p.check == check
            && p.since_ms <= p.last_ms
            && p.last_ms <= now_ms.saturating_add(60_000)
            && now_ms.saturating_sub(p.last_ms) <= gap_ms
    };
    let s = match prior.filter(carries_on) {
        Some(p) => Stuck {
            check: check.to_string(),
            invocations: p.invocations.saturating_add(1),
            since_ms: p.since_ms,
            last_ms: now_ms.max(p.last_ms),
            why: why.to_string(),
        },
        None => {
            Stuck { check: check.to_string(), invocations: 1, since_ms: now_ms, last_ms: now_ms, why: why.to_string() }
        }
    };
    let spent = s.last_ms.saturating_sub(s.since_ms);
    if s.invocations < 2 || spent < budget_ms {
        return StuckStep::Again(s);
    }
    let reason = format!(
        "{check} could not be checked for {} s over {} invocations (last: {why}): pushdeploy's budget of {} s for a stuck hook is spent, so it answers FAILED and ECS rolls back before its own hook timeout would act",
        spent / 1000,
        s.invocations,
        budget_ms / 1000
    );
    StuckStep::Spent(s, reason)
}

/// What a round came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The streak is complete.
    Passed(Carried),
    /// It can no longer pass.
    Failed(Carried),
    /// Ask ECS to call again.
    Again(Carried),
}

/// Counts one round into the carried tally.
pub fn after_round(mut c: Carried, b: &Budget, passed: bool) -> Step {
    let mut tally = Tally::resume(b.attempts, b.consecutive, c.rounds, c.streak);
    let progress = tally.record(passed);
    c.rounds = tally.rounds();
    c.streak = tally.streak();
    match progress {
        Progress::Pass => Step::Passed(c),
        Progress::Fail => Step::Failed(c),
        Progress::Continue => Step::Again(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::HookStatus;
    use crate::inbound::hook::parse;
    use crate::inbound::hook::tests::fixture;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    use crate::domain::record::HookCheck;

    /// A check that failed on a 500, as a record keeps it.
    fn failed_check(check: &str, listener: &str, production_share: f64, rounds: u32) -> HookCheck {
        HookCheck {
            check: check.into(),
            listener: listener.into(),
            production_share,
            passed: false,
            reason: Some("GET /: status 500".into()),
            rounds,
            smoke: Value::Null,
            reached: None,
            analysis: None,
            at: "2026-11-27T08:01:00Z".into(),
        }
    }

    fn backend(stages: &str) -> ServiceConfig {
        let text = format!(
            "[[service]]\nname='backend'\nservice='todo-backend'\ncluster='todo-cluster'\nrepository='todo-backend'\ntags=['latest']\n[service.smoke]\nurl='http://prod/'\ntest_url='http://test/'\nattempts=4\nconsecutive=2\ninterval_ms=2500\n[[service.smoke.check]]\npath='/'\n[service.hook]\nstages={stages}\ntimeout_minutes=30\n"
        );
        crate::config::Config::parse(&text, "t.toml").unwrap().services.remove(0)
    }

    fn answered(d: Decision) -> (HookStatus, String, Option<String>) {
        match d {
            Decision::Answer { answer, stamp } => (answer.hook_status, answer.reason().to_string(), stamp),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_invocation_is_decided_from_the_record_and_the_config() {
        use crate::domain::record::TriggerRef;
        let svc = backend("['POST_TEST_TRAFFIC_SHIFT', 'POST_PRODUCTION_TRAFFIC_SHIFT']");
        let rec = crate::rules::rollback::tests::record("d1", "td:2", Status::Started, "2026-11-27T08:00:00Z");
        let post_test = parse(&fixture("post-test")).unwrap();

        let Decision::Check { listener, smoke, budget } = decide(&rec, &svc, &post_test, false) else { panic!() };
        assert_eq!((listener, smoke.url.as_str()), (Listener::Test, "http://test/"));
        assert_eq!(budget, Budget { attempts: 4, consecutive: 2, interval_ms: 2500, timeout_ms: 1_800_000 });
        let Decision::Check { smoke, .. } = decide(&rec, &svc, &parse(&fixture("post-production")).unwrap(), false)
        else {
            panic!()
        };
        assert_eq!(smoke.url, "http://prod/");

        // A stage the config does not check at goes on, and lands on the timeline.
        let (status, why, stamp) = answered(decide(&rec, &svc, &parse(&fixture("canary")).unwrap(), false));
        assert_eq!((status, stamp.as_deref()), (HookStatus::Succeeded, Some("production_traffic_shift_10pct")));
        assert!(why.contains("not a stage [service.hook] of backend checks at"), "{why}");

        let (status, _, stamp) = answered(decide(&rec, &svc, &parse(&fixture("rollback")).unwrap(), false));
        assert_eq!((status, stamp.as_deref()), (HookStatus::Succeeded, Some("ecs_rolling_back")));

        let mut done = rec.clone();
        done.hook_checks.push(failed_check("POST_TEST_TRAFFIC_SHIFT", "test", 0.0, 3));
        done.status = Status::RolledBack;
        let (status, why, _) = answered(decide(&done, &svc, &post_test, false));
        assert_eq!(
            (status, why.as_str()),
            (HookStatus::Failed, "POST_TEST_TRAFFIC_SHIFT already failed: GET /: status 500")
        );
        let (status, why, _) = answered(decide(&done, &svc, &parse(&fixture("post-production")).unwrap(), false));
        assert_eq!(status, HookStatus::Failed, "a later stage of a failed deployment: {why}");
        done.status = Status::Verified;
        done.hook_checks.clear();
        assert_eq!(answered(decide(&done, &svc, &post_test, false)).0, HookStatus::Succeeded);

        let mut rollback = rec.clone();
        rollback.trigger = TriggerRef::AutoRollback { of: "d0".into() };
        assert_eq!(
            answered(decide(&rollback, &svc, &post_test, false)).1,
            "a rollback: pushdeploy does not check rollbacks"
        );
    }

    #[test]
    fn the_tally_is_the_records_and_belongs_to_one_check() {
        let mut inv = parse(&fixture("post-test")).unwrap();
        let mut rec = crate::rules::rollback::tests::record("d1", "td:2", Status::Started, "2026-11-20T10:00:00Z");
        let b = Budget { attempts: 5, consecutive: 2, interval_ms: 1500, timeout_ms: 600_000 };
        let fresh = Carried {
            check: inv.check_key(),
            deployment: "d1".into(),
            rounds: 0,
            streak: 0,
            started_ms: 1_000,
            active_passed: false,
        };
        let Step::Again(c) = after_round(fresh.clone(), &b, true) else { panic!() };
        let answer = HookAnswer::again(b.interval_ms, &c, "1 of 2");
        let v = serde_json::to_value(&answer).unwrap();
        assert_eq!(v["hookStatus"], "IN_PROGRESS");
        assert_eq!(v["callBackDelay"], 2, "whole seconds, rounded up");
        assert_eq!(v["hookDetails"]["pushdeploy"]["rounds"], 1);
        inv.hook_details = v["hookDetails"].as_object().unwrap().clone();
        inv.hook_details.insert("S3_BUCKET".into(), json!("theirs"));
        assert_eq!(inv.tally(), Some(c.clone()), "hookDetails carry it as a hint to the record");
        assert_eq!(tally_of(&rec, &inv), None, "a count in hookDetails alone is not taken");
        rec.hook_tally = Some(c.clone());
        assert_eq!(tally_of(&rec, &inv), Some(c.clone()));
        rec.id = "d2".into();
        assert_eq!(tally_of(&rec, &inv), None, "another deployment's tally is not this one's");
        rec.id = "d1".into();
        inv.stage = Stage::PostProductionTrafficShift;
        assert_eq!(tally_of(&rec, &inv), None, "another stage starts afresh");
        assert!(matches!(after_round(c, &b, true), Step::Passed(p) if p.rounds == 2 && p.streak == 2));
        let v = serde_json::to_value(HookAnswer::failed("x")).unwrap();
        assert_eq!(v, json!({"hookStatus": "FAILED", "hookDetails": {"pushdeploy": {"reason": "x"}}}));
    }

    #[test]
    fn a_budget_that_cannot_pass_fails_at_once() {
        let b = Budget { attempts: 5, consecutive: 3, interval_ms: 10_000, timeout_ms: 60_000 };
        let c = |rounds, streak, started_ms| Carried {
            check: "k".into(),
            deployment: "d".into(),
            rounds,
            streak,
            started_ms,
            active_passed: false,
        };
        assert!(before_round(&c(0, 0, 0), &b, 0).is_ok());
        assert!(before_round(&c(2, 0, 0), &b, 0).is_ok(), "3 left, 3 needed");
        assert!(before_round(&c(3, 0, 0), &b, 0).unwrap_err().contains("cannot fit in the 2 left"));
        assert!(before_round(&c(5, 5, 0), &b, 0).is_err(), "every attempt used");
        // 3 rounds 10 s apart need 20 s; 45 s of a 60 s timeout are gone.
        assert!(before_round(&c(0, 0, 0), &b, 40_000).is_ok());
        assert!(before_round(&c(0, 0, 0), &b, 45_000).unwrap_err().contains("timeout (1 min)"));
        assert!(before_round(&c(0, 0, u64::MAX), &b, 45_000).unwrap_err().contains("in the future"));
        assert!(before_round(&c(u32::MAX, u32::MAX, 0), &b, u64::MAX).is_err(), "no overflow");
    }

    #[test]
    fn a_rollbacks_traffic_shifts_are_never_refused() {
        let svc = backend("['POST_TEST_TRAFFIC_SHIFT', 'PRODUCTION_TRAFFIC_SHIFT']");
        let mut rec = crate::rules::rollback::tests::record("d1", "td:2", Status::Started, "2026-11-27T08:00:00Z");
        let canary = parse(&fixture("canary")).unwrap();
        let green = canary.target_revision.clone();
        let blue = canary.production_weights.keys().find(|k| **k != green).unwrap().clone();
        let shift = |g: f64, b: f64| {
            let mut inv = canary.clone();
            inv.production_weights = BTreeMap::from([(green.clone(), g), (blue.clone(), b)]);
            inv
        };
        // A canary step forward is checked; ECS reporting its deployment rolling back is not.
        assert!(matches!(decide(&rec, &svc, &shift(10.0, 90.0), false), Decision::Check { .. }));
        let (status, why, stamp) = answered(decide(&rec, &svc, &shift(10.0, 90.0), true));
        assert_eq!((status, stamp.as_deref()), (HookStatus::Succeeded, Some("ecs_rolling_back")));
        assert!(why.contains("ECS reports the service deployment rolling back"), "{why}");

        // The step at 10 % failed: the record is rolled back, and ECS shifts back through 10 %
        // (the same check key) and 5 %: neither is refused, neither is checked.
        rec.hook_checks.push(failed_check("PRODUCTION_TRAFFIC_SHIFT@10", "production", 10.0, 1));
        rec.status = Status::RolledBack;
        for (g, b) in [(10.0, 90.0), (5.0, 95.0), (0.0, 100.0)] {
            let (status, _, stamp) = answered(decide(&rec, &svc, &shift(g, b), true));
            assert_eq!((status, stamp.as_deref()), (HookStatus::Succeeded, Some("ecs_rolling_back")), "{g}");
        }
        // Without ECS's word: 5 % is below the 10 % green reached, so it moves back to blue.
        assert!(rollback_shift(&shift(5.0, 95.0), &rec, false).unwrap().contains("below one it already reached"));
        assert_eq!(rollback_shift(&shift(0.0, 100.0), &rec, false), Some("green is at 0 %"));
        // Empty weights on a record already rolled back.
        let mut bare = parse(&fixture("canary")).unwrap();
        bare.production_weights.clear();
        bare.test_weights.clear();
        assert_eq!(rollback_shift(&bare, &rec, false), Some("no weights, and the deployment is already rolled back"));
        bare.stage = Stage::TestTrafficShift;
        assert_eq!(answered(decide(&rec, &svc, &bare, false)).0, HookStatus::Succeeded);
        // An open record with empty weights, or a step forward past what was reached, is no rollback.
        let mut open = rec.clone();
        open.status = Status::Started;
        assert_eq!(rollback_shift(&bare, &open, false), None);
        open.hook_checks[0].passed = true;
        assert_eq!(rollback_shift(&shift(20.0, 80.0), &open, false), None);
        // Only the traffic-shift stages are ever a rollback's.
        let post_test = parse(&fixture("post-test")).unwrap();
        assert_eq!(rollback_shift(&post_test, &rec, true), None);
    }

    #[test]
    fn after_an_observed_failure_every_stage_answers_succeeded_and_none_is_a_rollback() {
        let svc = backend("['POST_TEST_TRAFFIC_SHIFT', 'PRODUCTION_TRAFFIC_SHIFT', 'POST_PRODUCTION_TRAFFIC_SHIFT']");
        let mut rec = crate::rules::rollback::tests::record("d1", "td:2", Status::Failed, "2026-11-27T08:00:00Z");
        rec.hook_checks.push(failed_check("POST_TEST_TRAFFIC_SHIFT", "test", 0.0, 3));
        rec.mode = crate::domain::mode::Mode::Observe;
        rec.reason = Some("observe: would answer FAILED: POST_TEST_TRAFFIC_SHIFT check failed".into());
        rec.stamp(crate::domain::mode::WOULD_ROLL_BACK, "2026-11-27T08:01:00Z".into());
        let mut bare = parse(&fixture("canary")).unwrap();
        bare.production_weights.clear();
        bare.test_weights.clear();
        for (name, inv) in [
            ("the failed check again", parse(&fixture("post-test")).unwrap()),
            ("a later check", parse(&fixture("post-production")).unwrap()),
            ("a canary step", parse(&fixture("canary")).unwrap()),
            ("a shift with no weights", bare),
        ] {
            let (status, why, stamp) = answered(decide(&rec, &svc, &inv, false));
            assert_eq!((status, stamp), (HookStatus::Succeeded, None), "{name}: {why}");
            assert!(
                why.starts_with("deployment d1 is already failed, observed only: observe: would answer FAILED"),
                "{name}: {why}"
            );
        }
        // The same record in enforce mode (no observed failure on it) answers FAILED.
        rec.timeline.pop();
        assert_eq!(answered(decide(&rec, &svc, &parse(&fixture("post-test")).unwrap(), false)).0, HookStatus::Failed);
    }

    #[test]
    fn stuck_invocations_fail_the_hook_once_the_budget_is_spent() {
        let (budget, gap) = (600_000, 90_000);
        let StuckStep::Again(first) = count_stuck(None, "POST_TEST_TRAFFIC_SHIFT", "throttled", 1_000, budget, gap)
        else {
            panic!()
        };
        assert_eq!((first.invocations, first.since_ms, first.last_ms), (1, 1_000, 1_000));
        // Every 30 s: still within ten minutes after 19 more.
        let mut s = first.clone();
        for i in 1..20u64 {
            match count_stuck(Some(&s), "POST_TEST_TRAFFIC_SHIFT", "throttled", 1_000 + i * 30_000, budget, gap) {
                StuckStep::Again(next) => s = next,
                other => panic!("{i}: {other:?}"),
            }
        }
        assert_eq!(s.invocations, 20);
        let StuckStep::Spent(spent, why) =
            count_stuck(Some(&s), "POST_TEST_TRAFFIC_SHIFT", "throttled", 601_000, budget, gap)
        else {
            panic!()
        };
        assert_eq!(spent.invocations, 21);
        assert!(why.contains("could not be checked for 600 s over 21 invocations (last: throttled)"), "{why}");
        assert!(why.contains("budget of 600 s"), "{why}");
        // Another check, a long gap (the check moved on in between) or a count from the future
        // starts afresh.
        let fresh = |step: StuckStep| matches!(step, StuckStep::Again(s) if s.invocations == 1);
        assert!(fresh(count_stuck(Some(&s), "POST_PRODUCTION_TRAFFIC_SHIFT", "x", 601_000, budget, gap)));
        assert!(fresh(count_stuck(Some(&s), "POST_TEST_TRAFFIC_SHIFT", "x", s.last_ms + gap + 1, budget, gap)));
        let future = Stuck { since_ms: u64::MAX - 1, last_ms: u64::MAX, ..s.clone() };
        assert!(fresh(count_stuck(Some(&future), "POST_TEST_TRAFFIC_SHIFT", "x", 601_000, budget, gap)));
        let backwards = Stuck { since_ms: 5, last_ms: 1, ..s.clone() };
        assert!(fresh(count_stuck(Some(&backwards), "POST_TEST_TRAFFIC_SHIFT", "x", 2, budget, gap)));
        // One invocation alone never spends a budget, however small.
        assert!(matches!(count_stuck(None, "k", "x", 5, 0, gap), StuckStep::Again(_)));
    }
}
