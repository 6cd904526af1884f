//! ECS lifecycle hooks (blue/green, linear and canary deployments): the invocation ECS sends, the
//! answer it expects, and the smoke tally carried between invocations in `hookDetails`. Pure.
//!
//! The payload is AWS's "Lambda hooks for Amazon ECS service deployments": `executionId`,
//! `lifecycleStage`, `resourceArn` (the service deployment), `executionDetails` (`serviceArn`,
//! `targetServiceRevisionArn`, `testTrafficWeights`, `productionTrafficWeights`) and `hookDetails`
//! (the service's hook config merged with what the last IN_PROGRESS answer returned).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::{ServiceConfig, SmokeConfig};
use crate::error::InputError;
use crate::image::truncate;
use crate::inbound::{parse_service_arn, parse_service_deployment_arn};
use crate::record::{DeploymentRecord, Status};
use crate::smoke::judge::{Progress, Tally};

/// The key of pushdeploy's own entry in `hookDetails`; the rest of the map belongs to the user.
pub const DETAILS_KEY: &str = "pushdeploy";

/// ECS's own callback delay, for an answer that knows no smoke interval.
pub const DEFAULT_CALLBACK_MS: u64 = 30_000;

/// A lifecycle stage of an ECS service deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Reconciling a service with more than one ACTIVE revision.
    ReconcileService,
    /// Before the green revision's tasks start.
    PreScaleUp,
    /// Green tasks run and are healthy; no traffic yet.
    PostScaleUp,
    /// Test traffic shifts to green.
    TestTrafficShift,
    /// Green serves all test traffic; production still on blue.
    PostTestTrafficShift,
    /// Before a production shift (each step of linear and canary).
    PreProductionTrafficShift,
    /// Production traffic shifts (each step of linear and canary).
    ProductionTrafficShift,
    /// Green serves all production traffic; blue still runs until bake time ends.
    PostProductionTrafficShift,
}

/// Which listener a check goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The test listener (rule): green only, no users.
    Test,
    /// The production listener: users.
    Production,
}

impl Listener {
    /// `test` or `production`, as records and messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Test => "test",
            Listener::Production => "production",
        }
    }
}

impl Stage {
    /// Every stage, in the order a deployment passes them.
    pub const ALL: [Stage; 8] = [
        Stage::ReconcileService,
        Stage::PreScaleUp,
        Stage::PostScaleUp,
        Stage::TestTrafficShift,
        Stage::PostTestTrafficShift,
        Stage::PreProductionTrafficShift,
        Stage::ProductionTrafficShift,
        Stage::PostProductionTrafficShift,
    ];

    /// ECS's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::ReconcileService => "RECONCILE_SERVICE",
            Stage::PreScaleUp => "PRE_SCALE_UP",
            Stage::PostScaleUp => "POST_SCALE_UP",
            Stage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            Stage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            Stage::PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            Stage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            Stage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }

    /// The stage ECS names `s`.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The listener pushdeploy checks through at this stage; `None` where it checks nothing
    /// (green has no traffic yet, or the stage only announces a shift about to happen).
    pub fn listener(self) -> Option<Listener> {
        match self {
            Stage::PostTestTrafficShift => Some(Listener::Test),
            Stage::ProductionTrafficShift | Stage::PostProductionTrafficShift => Some(Listener::Production),
            _ => None,
        }
    }

    /// The stages pushdeploy can check at, for config errors.
    pub fn checking() -> Vec<&'static str> {
        Stage::ALL.into_iter().filter(|s| s.listener().is_some()).map(Stage::as_str).collect()
    }
}

/// One hook invocation, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HookInvocation {
    /// ECS's id of this hook execution.
    pub execution_id: String,
    /// The stage.
    pub stage: Stage,
    /// The service deployment (`arn:aws:ecs:…:service-deployment/cluster/service/id`).
    pub resource_arn: String,
    /// Cluster name, from `resourceArn` (a short `serviceArn` names none).
    pub cluster: String,
    /// Service name, from `serviceArn`.
    pub service: String,
    /// The green service revision.
    pub target_revision: String,
    /// Test traffic per revision ARN, in percent.
    pub test_weights: BTreeMap<String, f64>,
    /// Production traffic per revision ARN, in percent.
    pub production_weights: BTreeMap<String, f64>,
    /// `hookDetails` as ECS passed them.
    pub hook_details: Map<String, Value>,
}

/// True when `value` is shaped as a lifecycle hook invocation (rather than an EventBridge event).
pub fn is_hook_payload(value: &Value) -> bool {
    value.as_object().is_some_and(|o| {
        ["lifecycleStage", "executionDetails", "executionId", "hookDetails"].iter().any(|k| o.contains_key(*k))
    })
}

/// Parses a hook invocation; every missing or odd field is named.
pub fn parse(value: &Value) -> Result<HookInvocation, InputError> {
    let obj = value.as_object().ok_or_else(|| InputError::new("hook payload must be a JSON object"))?;
    let text = |o: &Map<String, Value>, k: &str, within: &str| -> Result<String, InputError> {
        match o.get(k) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 2048 => Ok(s.clone()),
            Some(other) => {
                Err(InputError::new(format!("{within}{k} is {}, not an ARN or id", truncate(&other.to_string()))))
            }
            None => Err(InputError::new(format!("{within}{k} is missing"))),
        }
    };
    let stage_name = text(obj, "lifecycleStage", "")?;
    let stage = Stage::parse(&stage_name).ok_or_else(|| {
        InputError::new(format!("lifecycleStage {:?} is not an ECS lifecycle stage", truncate(&stage_name)))
    })?;
    let execution_id = text(obj, "executionId", "")?;
    let resource_arn = text(obj, "resourceArn", "")?;
    let details = obj
        .get("executionDetails")
        .and_then(Value::as_object)
        .ok_or_else(|| InputError::new("executionDetails is missing or not an object"))?;
    let within = "executionDetails.";
    let service_arn = text(details, "serviceArn", within)?;
    let named = parse_service_arn(&service_arn)?;
    let target_revision = text(details, "targetServiceRevisionArn", within)?;
    if !target_revision.starts_with("arn:") || !target_revision.contains(":service-revision/") {
        return Err(InputError::new(format!(
            "executionDetails.targetServiceRevisionArn {:?} is not a service revision ARN",
            truncate(&target_revision)
        )));
    }
    // The service deployment's ARN always names the cluster; a service created before ECS's long
    // ARN format (and never migrated) has a `serviceArn` that does not.
    let (cluster, deployed) = parse_service_deployment_arn(&resource_arn).map_err(|_| {
        InputError::new(format!("resourceArn {:?} is not a service deployment ARN", truncate(&resource_arn)))
    })?;
    if deployed != named.service || named.cluster.as_ref().is_some_and(|c| *c != cluster) {
        return Err(InputError::new(format!(
            "resourceArn {:?} is a deployment of {cluster}/{deployed}, not of the service executionDetails.serviceArn names",
            truncate(&resource_arn)
        )));
    }
    let service = named.service;
    let weights = |k: &str| -> Result<BTreeMap<String, f64>, InputError> {
        match details.get(k) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(arn, w)| match w.as_f64() {
                    Some(w) if (0.0..=100.0).contains(&w) => Ok((arn.clone(), w)),
                    _ => Err(InputError::new(format!(
                        "{within}{k}[{}] is {}, not a percentage",
                        truncate(arn),
                        truncate(&w.to_string())
                    ))),
                })
                .collect(),
            Some(other) => Err(InputError::new(format!("{within}{k} is {}, not a map", truncate(&other.to_string())))),
        }
    };
    let test_weights = weights("testTrafficWeights")?;
    let production_weights = weights("productionTrafficWeights")?;
    let hook_details = match obj.get("hookDetails") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(InputError::new(format!("hookDetails is {}, not a map", truncate(&other.to_string()))))
        }
    };
    Ok(HookInvocation {
        execution_id,
        stage,
        resource_arn,
        cluster,
        service,
        target_revision,
        test_weights,
        production_weights,
        hook_details,
    })
}

impl HookInvocation {
    /// True when ECS is shifting traffic back to blue: it re-invokes the traffic-shift stages with
    /// green at 0 % and another revision above it. pushdeploy never stands in a rollback's way.
    pub fn rolling_back(&self) -> bool {
        let back = |w: &BTreeMap<String, f64>| {
            w.get(&self.target_revision) == Some(&0.0)
                && w.iter().any(|(arn, v)| *arn != self.target_revision && *v > 0.0)
        };
        matches!(self.stage, Stage::TestTrafficShift | Stage::ProductionTrafficShift)
            && (back(&self.production_weights) || back(&self.test_weights))
    }

    /// The share of production traffic green has at this stage, in percent: 0 before any
    /// production shift, the step's weight during one, 100 after the last.
    pub fn production_share(&self) -> f64 {
        match self.stage {
            Stage::PostProductionTrafficShift => {
                self.production_weights.get(&self.target_revision).copied().filter(|w| *w > 0.0).unwrap_or(100.0)
            }
            Stage::ProductionTrafficShift => {
                self.production_weights.get(&self.target_revision).copied().unwrap_or(100.0)
            }
            _ => 0.0,
        }
    }

    /// What one check is about: the stage, and for a production shift the step's weight (each
    /// step of a linear or canary deployment is checked on its own).
    pub fn check_key(&self) -> String {
        match self.stage {
            Stage::ProductionTrafficShift => format!("{}@{}", self.stage.as_str(), fmt_share(self.production_share())),
            s => s.as_str().to_string(),
        }
    }

    /// The timeline event of this check: `post_test_traffic_shift`, `production_traffic_shift_10pct`.
    pub fn timeline_event(&self) -> String {
        match self.stage {
            Stage::ProductionTrafficShift => {
                format!("{}_{}pct", self.stage.as_str().to_ascii_lowercase(), fmt_share(self.production_share()))
            }
            s => s.as_str().to_ascii_lowercase(),
        }
    }

    /// The tally an earlier IN_PROGRESS answer left in `hookDetails`, whichever check it was for:
    /// a hint to the record it belongs to, never the count itself (see [`tally_of`]).
    pub fn tally(&self) -> Option<Carried> {
        serde_json::from_value(self.hook_details.get(DETAILS_KEY)?.clone()).ok()
    }
}

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
    let settled_back = matches!(rec.status, Status::RolledBack | Status::Failed);
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
    // A duplicate or late invocation answers the verdict already given.
    if let Some(done) = rec.hook_checks.iter().find(|c| c.check == inv.check_key()) {
        return answer(if done.passed {
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
        return answer(if rec.status == Status::Verified {
            HookAnswer::succeeded(why)
        } else {
            HookAnswer::failed(why)
        });
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

/// A percentage as people write it: `10`, `12.5`.
pub fn fmt_share(w: f64) -> String {
    if w.fract() == 0.0 {
        format!("{w:.0}")
    } else {
        format!("{w}")
    }
}

/// The smoke tally carried in `hookDetails.pushdeploy` from one invocation to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The check it belongs to ([`HookInvocation::check_key`]).
    pub check: String,
    /// The deployment record it belongs to.
    pub deployment: String,
    /// Rounds run so far.
    pub rounds: u32,
    /// Passing rounds in a row so far.
    pub streak: u32,
    /// When the first round ran (epoch ms).
    pub started_ms: u64,
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

/// pushdeploy's budget for invocations that cannot advance a check, when no config says (an
/// unreadable config and no index written while it was readable): half an hour.
pub const DEFAULT_STUCK_MS: u64 = 30 * 60_000;

/// Invocations of one check that answered IN_PROGRESS without advancing it: a transient AWS
/// failure, an unreadable config, or a deployment whose record is not written yet. Without a
/// count, a lasting cause would hold the deployment until ECS's own hook timeout (a day by
/// default) and then let ECS's timeout action decide, which may be CONTINUE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stuck {
    /// The check ([`HookInvocation::check_key`]).
    pub check: String,
    /// Stuck invocations in a row.
    pub invocations: u32,
    /// When the first of them ran (epoch ms).
    pub since_ms: u64,
    /// When the last of them ran (epoch ms).
    pub last_ms: u64,
    /// Why the last one was stuck.
    pub why: String,
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

/// A FAILED answered once a stuck check's budget was spent: repeated to a late invocation, and
/// told once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpentBudget {
    /// The check.
    pub check: String,
    /// The reason answered.
    pub reason: String,
}

/// The index object of one ECS service deployment (`hooks/<cluster>/<service>/<id>.json`): what a
/// hook invocation can find from what ECS sends on every invocation (`resourceArn`), since
/// `hookDetails` returned at one stage are not passed to another stage's hook. It names the
/// deployment's record (one GET instead of the revision → task definition → deployment lookup),
/// and keeps the stuck count, which must be readable even when the record or the config is not.
/// Anyone in the account may have written it (the bucket policy says otherwise, but the hook does
/// not rely on that): the record it names is taken only once that record is tied to the same
/// service deployment; a stuck count can only make the hook answer FAILED sooner (ECS keeps blue).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HookIndex {
    /// The service deployment it indexes (`resourceArn`).
    pub service_deployment_arn: String,
    /// The id of the deployment record, once a lookup found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// pushdeploy's stuck budget for this service, as the config said when it was last readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_budget_ms: Option<u64>,
    /// The current stuck count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck: Option<Stuck>,
    /// A check failed on a spent budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<SpentBudget>,
}

impl HookIndex {
    /// An empty index of `service_deployment_arn`.
    pub fn of(service_deployment_arn: &str) -> Self {
        Self { service_deployment_arn: service_deployment_arn.to_string(), ..Self::default() }
    }
}

/// The key of the index object of the service deployment `inv` names:
/// `hooks/<cluster>/<service>/<service deployment id>.json`.
pub fn index_key(inv: &HookInvocation) -> Result<String, InputError> {
    let id = inv.resource_arn.rsplit('/').next().unwrap_or_default();
    let ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(InputError::new(format!(
            "resourceArn {:?} ends in no service deployment id",
            truncate(&inv.resource_arn)
        )));
    }
    Ok(format!("hooks/{}/{}/{id}.json", inv.cluster, inv.service))
}

/// The stuck count an earlier answer carried in `hookDetails.pushdeploy.stuck`: used only when the
/// index cannot be read, and then it can only make the answer FAILED sooner.
pub fn carried_stuck(payload: &Value) -> Option<Stuck> {
    serde_json::from_value(payload.get("hookDetails")?.get(DETAILS_KEY)?.get("stuck")?.clone()).ok()
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

/// `hookStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookStatus {
    /// The deployment goes on to the next stage.
    Succeeded,
    /// ECS rolls the deployment back to blue.
    Failed,
    /// ECS calls again after `callBackDelay` seconds.
    InProgress,
}

/// The answer ECS reads: `{"hookStatus", "callBackDelay", "hookDetails"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    /// The verdict.
    pub hook_status: HookStatus,
    /// Seconds until ECS calls again (IN_PROGRESS only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_delay: Option<u64>,
    /// pushdeploy's entry: the carried tally (IN_PROGRESS), or why it answered as it did.
    pub hook_details: Value,
}

impl HookAnswer {
    /// Go on, saying why.
    pub fn succeeded(why: impl Into<String>) -> Self {
        Self::settled(HookStatus::Succeeded, why.into())
    }

    /// Roll back, saying why.
    pub fn failed(why: impl Into<String>) -> Self {
        Self::settled(HookStatus::Failed, why.into())
    }

    fn settled(hook_status: HookStatus, reason: String) -> Self {
        Self { hook_status, call_back_delay: None, hook_details: json!({ DETAILS_KEY: { "reason": reason } }) }
    }

    /// Call again in `delay_ms` (whole seconds, at least one) with the tally so far.
    pub fn again(delay_ms: u64, carried: &Carried, why: impl Into<String>) -> Self {
        Self::in_progress(delay_ms, serde_json::to_value(carried).expect("a tally always serializes"), why.into())
    }

    /// Call again in `delay_ms`, keeping pushdeploy's entry as the invocation `payload` passed it
    /// (a stuck invocation is no round: the tally stays as it was) with the stuck count `stuck`.
    pub fn call_again(payload: &Value, delay_ms: u64, stuck: &Stuck, why: impl Into<String>) -> Self {
        let before = payload.get("hookDetails").and_then(|d| d.get(DETAILS_KEY));
        let mut details = match before {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            _ => json!({}),
        };
        details["stuck"] = serde_json::to_value(stuck).expect("a stuck count always serializes");
        Self::in_progress(delay_ms, details, why.into())
    }

    /// Call again at ECS's own interval, leaving everything as it was: an invocation ECS's state
    /// does not bear out is no round and changes nothing.
    pub fn in_progress_untouched(why: impl Into<String>) -> Self {
        Self::in_progress(DEFAULT_CALLBACK_MS, json!({}), why.into())
    }

    fn in_progress(delay_ms: u64, mut details: Value, why: String) -> Self {
        details["reason"] = Value::String(why);
        Self {
            hook_status: HookStatus::InProgress,
            call_back_delay: Some(delay_ms.div_ceil(1000).max(1)),
            hook_details: json!({ DETAILS_KEY: details }),
        }
    }

    /// The reason given, for logs and tests.
    pub fn reason(&self) -> &str {
        self.hook_details[DETAILS_KEY]["reason"].as_str().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let text = match name {
            "post-test" => include_str!("../events/ecs-hook-post-test-traffic-shift.json"),
            "canary" => include_str!("../events/ecs-hook-production-traffic-shift-canary.json"),
            "post-production" => include_str!("../events/ecs-hook-post-production-traffic-shift.json"),
            "rollback" => include_str!("../events/ecs-hook-production-traffic-shift-rollback.json"),
            _ => unreachable!(),
        };
        serde_json::from_str(text).unwrap()
    }

    use crate::record::HookCheck;

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
            at: "2026-11-27T08:01:00Z".into(),
        }
    }

    #[test]
    fn the_fixtures_parse_as_aws_documents_them() {
        let t = parse(&fixture("post-test")).unwrap();
        assert_eq!(t.stage, Stage::PostTestTrafficShift);
        assert_eq!((t.cluster.as_str(), t.service.as_str()), ("todo-cluster", "todo-backend"));
        assert_eq!(t.stage.listener(), Some(Listener::Test));
        assert_eq!(t.production_share(), 0.0);
        assert_eq!(t.check_key(), "POST_TEST_TRAFFIC_SHIFT");
        assert!(!t.rolling_back());
        let c = parse(&fixture("canary")).unwrap();
        assert_eq!(c.production_share(), 10.0);
        assert_eq!(c.check_key(), "PRODUCTION_TRAFFIC_SHIFT@10");
        assert_eq!(c.timeline_event(), "production_traffic_shift_10pct");
        assert!(!c.rolling_back());
        let p = parse(&fixture("post-production")).unwrap();
        assert_eq!((p.production_share(), p.stage.listener()), (100.0, Some(Listener::Production)));
        let r = parse(&fixture("rollback")).unwrap();
        assert!(r.rolling_back(), "green at 0 %, blue at 100 % at a traffic shift: ECS is rolling back");
        for name in ["post-test", "canary", "post-production", "rollback"] {
            assert!(is_hook_payload(&fixture(name)));
        }
        assert!(!is_hook_payload(&json!({"detail-type": "ECS Deployment State Change"})));
    }

    #[test]
    fn garbage_is_named() {
        let base = fixture("post-test");
        let err = |edit: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            edit(&mut v);
            parse(&v).unwrap_err().0
        };
        assert!(err(&|v| v["lifecycleStage"] = json!("DEPLOY_NOW")).contains("not an ECS lifecycle stage"));
        assert!(err(&|v| v["executionDetails"] = json!(7)).contains("executionDetails is missing"));
        assert!(err(&|v| v["executionDetails"]["serviceArn"] = json!("x")).contains("not an ECS service ARN"));
        assert!(err(&|v| v["executionDetails"]["targetServiceRevisionArn"] = json!(null))
            .contains("targetServiceRevisionArn"));
        assert!(err(&|v| v["executionDetails"]["productionTrafficWeights"] = json!({"a": 130}))
            .contains("not a percentage"));
        assert!(err(&|v| v["hookDetails"] = json!([1])).contains("hookDetails"));
        assert!(err(&|v| v["resourceArn"] = json!("arn:aws:ecs:x:1:service/a/b")).contains("service deployment ARN"));
        assert!(parse(&json!("POST_TEST_TRAFFIC_SHIFT")).is_err());
        // The service deployment must be one of the service the payload names.
        let other = "arn:aws:ecs:ap-southeast-2:123456789012:service-deployment/todo-cluster/todo-frontend/EZe5";
        assert!(err(&|v| v["resourceArn"] = json!(other)).contains("not of the service"));
        let elsewhere = "arn:aws:ecs:ap-southeast-2:123456789012:service-deployment/other/todo-backend/EZe5";
        assert!(err(&|v| v["resourceArn"] = json!(elsewhere)).contains("not of the service"));
    }

    #[test]
    fn a_short_service_arn_takes_its_cluster_from_the_service_deployment() {
        let mut v = fixture("post-test");
        v["executionDetails"]["serviceArn"] = json!("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-backend");
        let short = parse(&v).unwrap();
        let long = parse(&fixture("post-test")).unwrap();
        assert_eq!((short.cluster.as_str(), short.service.as_str()), ("todo-cluster", "todo-backend"));
        assert_eq!(short, long, "both forms of the same service are the same invocation");
        v["executionDetails"]["serviceArn"] = json!("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-frontend");
        assert!(parse(&v).unwrap_err().0.contains("not of the service"));
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
        use crate::record::TriggerRef;
        let svc = backend("['POST_TEST_TRAFFIC_SHIFT', 'POST_PRODUCTION_TRAFFIC_SHIFT']");
        let rec = crate::rollback::tests::record("d1", "td:2", Status::Started, "2026-11-27T08:00:00Z");
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
        let mut rec = crate::rollback::tests::record("d1", "td:2", Status::Started, "2026-11-20T10:00:00Z");
        let b = Budget { attempts: 5, consecutive: 2, interval_ms: 1500, timeout_ms: 600_000 };
        let fresh =
            Carried { check: inv.check_key(), deployment: "d1".into(), rounds: 0, streak: 0, started_ms: 1_000 };
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
        let mut rec = crate::rollback::tests::record("d1", "td:2", Status::Started, "2026-11-27T08:00:00Z");
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

    #[test]
    fn the_index_is_keyed_by_the_service_deployment_and_the_stuck_count_rides_in_hook_details() {
        let inv = parse(&fixture("post-test")).unwrap();
        let key = index_key(&inv).unwrap();
        let id = inv.resource_arn.rsplit('/').next().unwrap();
        assert_eq!(key, format!("hooks/todo-cluster/todo-backend/{id}.json"));
        let mut odd = inv.clone();
        odd.resource_arn = "arn:aws:ecs:r:1:service-deployment/c/s/../../x y".into();
        assert!(index_key(&odd).is_err());
        let s = Stuck { check: "k".into(), invocations: 2, since_ms: 1, last_ms: 2, why: "w".into() };
        let mut payload = fixture("post-test");
        payload["hookDetails"] = json!({"pushdeploy": {"rounds": 1, "check": "k"}, "team": "todo"});
        let answer = serde_json::to_value(HookAnswer::call_again(&payload, 1500, &s, "stuck")).unwrap();
        assert_eq!(answer["callBackDelay"], 2);
        assert_eq!(answer["hookDetails"]["pushdeploy"]["rounds"], 1, "the smoke tally stays as it was");
        payload["hookDetails"] = answer["hookDetails"].clone();
        assert_eq!(carried_stuck(&payload), Some(s));
        let index = HookIndex { record: Some("ecs-svc-1".into()), ..HookIndex::of(&inv.resource_arn) };
        let text = serde_json::to_value(&index).unwrap();
        assert_eq!(text, json!({"service_deployment_arn": inv.resource_arn, "record": "ecs-svc-1"}));
        assert_eq!(serde_json::from_value::<HookIndex>(text).unwrap(), index);
    }
}
