//! Parsing of a lifecycle hook invocation: the payload is AWS's "Lambda hooks for Amazon ECS
//! service deployments": `executionId`, `lifecycleStage`, `resourceArn` (the service deployment),
//! `executionDetails` (`serviceArn`, `targetServiceRevisionArn`, `testTrafficWeights`,
//! `productionTrafficWeights`) and `hookDetails` (the service's hook config merged with what the
//! last IN_PROGRESS answer returned). Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::domain::error::InputError;
use crate::domain::image::truncate;
use crate::domain::lifecycle::{fmt_share, Carried, Stage, Stuck, DETAILS_KEY};
use crate::inbound::{parse_service_arn, parse_service_deployment_arn};

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
    let test_weights = weights(details, "testTrafficWeights")?;
    let production_weights = weights(details, "productionTrafficWeights")?;
    let hook_details = hook_details(obj)?;
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

/// `executionDetails.<k>`: traffic per revision ARN, each a percentage; absent or null is none.
fn weights(details: &Map<String, Value>, k: &str) -> Result<BTreeMap<String, f64>, InputError> {
    let within = "executionDetails.";
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
}

/// `hookDetails`, a map; absent or null is empty.
fn hook_details(obj: &Map<String, Value>) -> Result<Map<String, Value>, InputError> {
    match obj.get("hookDetails") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(InputError::new(format!("hookDetails is {}, not a map", truncate(&other.to_string())))),
    }
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
    /// a hint to the record it belongs to, never the count itself (see [`crate::rules::hook::tally_of`]).
    pub fn tally(&self) -> Option<Carried> {
        serde_json::from_value(self.hook_details.get(DETAILS_KEY)?.clone()).ok()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::lifecycle::{HookAnswer, HookIndex, Listener};
    use serde_json::json;

    pub(crate) fn fixture(name: &str) -> Value {
        let text = match name {
            "post-test" => include_str!("../../events/ecs-hook-post-test-traffic-shift.json"),
            "canary" => include_str!("../../events/ecs-hook-production-traffic-shift-canary.json"),
            "post-production" => include_str!("../../events/ecs-hook-post-production-traffic-shift.json"),
            "rollback" => include_str!("../../events/ecs-hook-production-traffic-shift-rollback.json"),
            _ => unreachable!(),
        };
        serde_json::from_str(text).unwrap()
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
