//! The ECS lifecycle-hook vocabulary (blue/green, linear and canary deployments): the stages,
//! the listeners checked through, the answer ECS expects, the smoke tally carried between
//! invocations in `hookDetails`, and the index object of a service deployment. Plain data.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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
    /// The check it belongs to (`HookInvocation::check_key` in `inbound::hook`).
    pub check: String,
    /// The deployment record it belongs to.
    pub deployment: String,
    /// Rounds run so far.
    pub rounds: u32,
    /// Passing rounds in a row so far.
    pub streak: u32,
    /// When the first round ran (epoch ms).
    pub started_ms: u64,
    /// At a production step with analysis: the active checks passed, and the step waits for the
    /// analysis alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active_passed: bool,
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
    /// The check (`HookInvocation::check_key` in `inbound::hook`).
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
