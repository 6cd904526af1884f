//! A production traffic step judged on evidence. Describe: ECS's word on green's target group,
//! the test listener's rule (DescribeRules) and green's targets (DescribeTargetHealth), and what
//! real traffic did on green and on blue (one GetMetricData). Decide: where the active checks may
//! go ([`canary::active_route`]), the analysis ([`analysis::judge`]) and the step's call
//! ([`canary::step_call`]). Apply: the verdict, as any hook check's.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Verifier;
use crate::config::{AnalysisConfig, ServiceConfig, SmokeConfig};
use crate::domain::error::Error;
use crate::domain::lifecycle::{Carried, Listener};
use crate::domain::record::{self, DeploymentRecord};
use crate::domain::timing;
use crate::inbound::hook::HookInvocation;
use crate::rules::analysis::{self, Analysis, Call, Evidence, GroupFigures};
use crate::rules::canary::{self, Active, GreenSeen, Route, RuleSeen, StepCall};
use crate::rules::hook::{self, Budget, Step};
use crate::rules::hook_verdict::{self as verdict, CanaryEvidence, CheckSeen};
use crate::rules::verdict::Verdict;
use crate::smoke::engine;

/// What a production step sees: where the active checks may go, and the analysis.
pub(super) struct StepSeen {
    /// The active checks' route.
    pub route: Route,
    /// The analysis of the step's window so far.
    pub analysis: Analysis,
}

impl Verifier {
    /// One invocation of a production step with `[service.analysis]`: at most one active round
    /// (through the test listener, when its rule is proven to reach green alone) and one read of
    /// the load balancer's metrics since the step began.
    pub(super) async fn check_step(
        &self,
        rec: DeploymentRecord,
        inv: &HookInvocation,
        svc: &ServiceConfig,
        cfg: &AnalysisConfig,
        budget: &Budget,
        deadline: Instant,
    ) -> Result<Verdict, Error> {
        let now_ms = timing::now_ms();
        let (carried, rec) = self.tally(rec, inv, now_ms).await?;
        // Undecided steps follow the policy while one more call-back still fits in the hook's timeout.
        let ends = carried.started_ms.saturating_add(budget.timeout_ms).saturating_sub(budget.interval_ms.max(1_000));
        let budget_left = ends.saturating_sub(now_ms);
        let seen = self.describe_step(inv, cfg, carried.started_ms, now_ms, budget_left).await?;
        let smoke = svc.smoke.as_ref().expect("a hook is configured only with a smoke test");
        let (active, carried, report) = match &seen.route {
            Route::Test(_) | Route::Production(_) if carried.active_passed => (Active::Passed, carried, Value::Null),
            Route::Test(_) => self.active_round(&smoke.through(Listener::Test), carried, budget, deadline).await?,
            Route::Production(_) => {
                self.active_round(&smoke.through(Listener::Production), carried, budget, deadline).await?
            }
            Route::Skipped(r) => (Active::Skipped(r.note.clone()), carried, Value::Null),
        };
        let evidence = CanaryEvidence {
            reached: serde_json::to_value(seen.route.reached()).expect("serializes"),
            analysis: Some(serde_json::to_value(&seen.analysis.findings).expect("serializes")),
            summary: seen.analysis.summary.clone(),
        };
        let listener = match seen.route {
            Route::Test(_) => Listener::Test,
            _ => Listener::Production,
        };
        let active = match active {
            Active::Failed(why) => {
                Active::Failed(format!("active checks through the {} listener: {why}", listener.as_str()))
            }
            other => other,
        };
        let done = |verdict| {
            let seen =
                CheckSeen { listener, rounds: carried.rounds, smoke: report.clone(), verdict, canary: Some(evidence) };
            verdict::check_done(&rec, inv, seen, svc.mode, &record::now())
        };
        // A failure's reason carries the figures it rests on (green vs blue, requests, p-value).
        let call = match &seen.analysis.call {
            Call::Fail(why) => Call::Fail(format!("{why}; {}", seen.analysis.summary)),
            other => other.clone(),
        };
        Ok(match canary::step_call(&active, &call) {
            StepCall::Pass => done(Ok(())),
            StepCall::Fail(why) => done(Err(why)),
            StepCall::Again(why) => verdict::step_again(&rec, &carried, &why, call_back_ms(&active, cfg, smoke)),
        })
    }

    /// The tally of this check: the record's, or a fresh one saved on the record first.
    pub(super) async fn tally(
        &self,
        rec: DeploymentRecord,
        inv: &HookInvocation,
        now_ms: u64,
    ) -> Result<(Carried, DeploymentRecord), Error> {
        if let Some(c) = hook::tally_of(&rec, inv) {
            return Ok((c, rec));
        }
        let (fresh, started) = verdict::check_started(&rec, inv, now_ms, &record::now());
        self.save(&started.record).await?;
        Ok((fresh, started.record))
    }

    /// One active round, counted into the tally; its report for the record.
    async fn active_round(
        &self,
        smoke: &SmokeConfig,
        carried: Carried,
        budget: &Budget,
        deadline: Instant,
    ) -> Result<(Active, Carried, Value), Error> {
        if let Err(why) = hook::before_round(&carried, budget, timing::now_ms()) {
            return Ok((Active::Failed(why), carried, Value::Null));
        }
        if Instant::now() + Duration::from_millis(smoke.invocation_ms()) > deadline {
            return Ok((
                Active::Running("too little of this invocation left for a round".into()),
                carried,
                Value::Null,
            ));
        }
        let resolved = self.secrets.resolve(smoke).await?;
        let round = engine::one_round(smoke, &self.http, Some(&self.elbv2), &resolved, carried.rounds + 1).await;
        let passed = round.passed;
        Ok(match hook::after_round(carried, budget, passed) {
            Step::Again(c) => {
                let how = format!(
                    "round {} {}; {} of {} passing in a row",
                    c.rounds,
                    if passed { "passed" } else { "failed" },
                    c.streak,
                    budget.consecutive
                );
                (Active::Running(how), c, json!({ "last_round": round }))
            }
            Step::Failed(c) => {
                let why = engine::failure_reason(smoke, &round, c.rounds);
                (Active::Failed(why), c, json!({ "last_round": round }))
            }
            // No read-after-write probe here: it ran at POST_TEST_TRAFFIC_SHIFT, and at a
            // production step its writes would land in users' data while the analysis judges.
            Step::Passed(mut c) => {
                c.active_passed = true;
                (Active::Passed, c, json!({ "last_round": round }))
            }
        })
    }

    /// Where green is and what real traffic did on it and on blue since the step began.
    async fn describe_step(
        &self,
        inv: &HookInvocation,
        cfg: &AnalysisConfig,
        started_ms: u64,
        now_ms: u64,
        budget_left_ms: u64,
    ) -> Result<StepSeen, Error> {
        let service = self.ecs.service_now(&inv.cluster, &inv.service).await?;
        let pair = canary::pair_of(cfg, &service.load_balancers);
        let resolved = self.ecs.revision_target_groups(&inv.target_revision).await?;
        let green = pair.as_ref().and_then(|p| p.green_among(&resolved));
        let rule = match pair.as_ref().and_then(|p| p.test_rule.clone()) {
            Some(arn) => Some(RuleSeen { forwards: self.elbv2.rule_forwards(&arn).await?, rule: arn }),
            None => None,
        };
        let targets = match &green {
            Some(g) => self.elbv2.target_states(g).await?.len(),
            None => 0,
        };
        let seen = GreenSeen {
            revision: &inv.target_revision,
            group: green.as_deref(),
            targets,
            production_share: inv.production_share(),
        };
        let route = canary::active_route(rule.as_ref(), &seen, !cfg.production_checks);
        let elapsed_ms = now_ms.saturating_sub(started_ms);
        let figures = match (&pair, &green) {
            (Some(p), Some(g)) => {
                let blue = p.blue_of(g).expect("green is one of the pair");
                let lb = self.load_balancer(cfg, p, g).await?;
                let read = self
                    .metrics
                    .window(&lb, &[g.clone(), blue], timing::epoch_s(started_ms), timing::epoch_s(now_ms))
                    .await?;
                Some(read)
            }
            _ => None,
        };
        let analysis = match figures {
            Some(mut read) if read.len() == 2 => {
                let baseline = read.pop().expect("two groups");
                let green = read.pop().expect("two groups");
                let ev = Evidence { green, baseline, elapsed_ms, budget_left_ms: Some(budget_left_ms) };
                analysis::judge(cfg, &ev)
            }
            _ => unknown_groups(cfg, pair.is_some(), elapsed_ms),
        };
        Ok(StepSeen { route, analysis })
    }

    /// The load balancer whose metrics name the groups: configured, else the one in the listener
    /// rules' ARNs, else the one green's group is attached to (DescribeTargetGroups).
    async fn load_balancer(&self, cfg: &AnalysisConfig, pair: &canary::Pair, green: &str) -> Result<String, Error> {
        // The production rule's load balancer is the one that carries the users' traffic.
        let named =
            cfg.load_balancer.clone().or_else(|| pair.production_rule.clone()).or_else(|| pair.test_rule.clone());
        if let Some(dim) = named.as_deref().and_then(crate::rules::alb_metrics::dimension_of) {
            return Ok(dim);
        }
        let attached = self.elbv2.load_balancer_of(green).await?;
        attached.as_deref().and_then(crate::rules::alb_metrics::dimension_of).ok_or_else(|| {
            Error::Aws(crate::domain::error::AwsError {
                action: "ELBv2 DescribeTargetGroups",
                target: green.to_string(),
                detail: "green's target group is attached to no Application Load Balancer: it has no metrics".into(),
                hint: "the service's load balancer, or [service.analysis] load_balancer",
                transient: false,
            })
        })
    }
}

/// When ECS should call again: the smoke interval while active rounds run; once they are done
/// (or skipped), a fifth of the window, at most a minute (ALB metrics change once a minute), so a
/// long window is not read every few seconds.
fn call_back_ms(active: &Active, cfg: &AnalysisConfig, smoke: &SmokeConfig) -> u64 {
    match active {
        Active::Running(_) => smoke.interval_ms,
        _ => (cfg.window_ms / 5).clamp(smoke.interval_ms, 60_000.max(smoke.interval_ms)),
    }
}

/// The analysis when the groups cannot be told apart: nothing to compare, so the step fails (the
/// safe side) with what to fix.
fn unknown_groups(cfg: &AnalysisConfig, paired: bool, elapsed_ms: u64) -> Analysis {
    let why = if paired {
        "ECS's service revision for green names neither group of the service's blue/green pair: green's traffic cannot be told from blue's"
    } else {
        "the service has no blue/green target group pair (loadBalancers' alternateTargetGroupArn) and [service.analysis] names none (target_groups)"
    };
    let empty = |g: &str| GroupFigures { target_group: g.to_string(), ..GroupFigures::default() };
    let ev = Evidence { green: empty("green"), baseline: empty("blue"), elapsed_ms, budget_left_ms: Some(0) };
    let mut a = analysis::judge(cfg, &ev);
    a.call = Call::Fail(why.to_string());
    a.summary = why.to_string();
    a
}

/// What a production step's checks without analysis reached: blue and green, by weight.
pub(super) fn production_only(inv: &HookInvocation) -> CanaryEvidence {
    let green =
        GreenSeen { revision: &inv.target_revision, group: None, targets: 0, production_share: inv.production_share() };
    let route = canary::active_route(None, &green, false);
    CanaryEvidence {
        reached: serde_json::to_value(route.reached()).expect("serializes"),
        analysis: None,
        summary: String::new(),
    }
}
