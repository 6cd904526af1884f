//! Mending moto's own answers where they depart from ECS's.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::answers::load_balancers;
use super::{ListenerRules, Revision, Revisions, TargetGroupPair};

impl Revisions {
    /// Mends moto's answer where it departs from ECS's: moto keeps the first task definition on a
    /// service's PRIMARY deployment however often UpdateService changes it (ECS names the
    /// revision the deployment rolls out). True when the answer changed.
    ///
    /// moto also leaves every rollout IN_PROGRESS (it runs no tasks): the PRIMARY deployment is
    /// reported COMPLETED, as ECS reports a rollout that finished, unless the harness set its
    /// state ([`Revisions::set_rollout_state`]).
    ///
    /// A task definition moto describes or registers gets the `registeredBy` ECS would give it.
    pub fn amend(&self, operation: &str, answer: &mut Value) -> bool {
        if matches!(operation, "ecs:DescribeTaskDefinition" | "ecs:RegisterTaskDefinition") {
            return self.add_registrant(&mut answer["taskDefinition"]);
        }
        if !matches!(operation, "ecs:DescribeServices" | "ecs:UpdateService" | "ecs:CreateService") {
            return false;
        }
        let seen = Seen {
            described: operation == "ecs:DescribeServices",
            states: self.rollout_states.lock().expect("lock").clone(),
            recorded: self.recorded.lock().expect("lock").clone(),
            pairs: self.target_groups.lock().expect("lock").clone(),
            rules: self.listener_rules.lock().expect("lock").clone(),
        };
        let services: Vec<&mut Value> = match answer {
            Value::Object(o) if o.contains_key("services") => {
                o.get_mut("services").and_then(Value::as_array_mut).map(|a| a.iter_mut().collect()).unwrap_or_default()
            }
            Value::Object(o) => o.get_mut("service").into_iter().collect(),
            _ => Vec::new(),
        };
        let mut changed = false;
        for svc in services {
            changed |= seen.amend_service(svc);
        }
        changed
    }

    /// Adds the `registeredBy` ECS would give the task definition `td`; true when it did.
    fn add_registrant(&self, td: &mut Value) -> bool {
        let by =
            td["taskDefinitionArn"].as_str().and_then(|arn| self.registrants.lock().expect("lock").get(arn).cloned());
        match by {
            Some(by) if td.is_object() && td["registeredBy"].is_null() => {
                td["registeredBy"] = Value::String(by);
                true
            }
            _ => false,
        }
    }
}

/// What the emulation knows when it mends a service answer (copied out of its locks).
struct Seen {
    /// The answer is DescribeServices'.
    described: bool,
    states: HashMap<String, String>,
    recorded: Vec<Revision>,
    pairs: HashMap<String, TargetGroupPair>,
    rules: HashMap<String, ListenerRules>,
}

impl Seen {
    /// Mends one service of an answer; true when it changed.
    fn amend_service(&self, svc: &mut Value) -> bool {
        let mut changed = false;
        // The revision ECS runs now (the newest it started), as `currentServiceRevisions`.
        let service_arn = svc["serviceArn"].as_str();
        if let Some(r) = self.recorded.iter().rev().find(|r| Some(r.service_arn.as_str()) == service_arn) {
            svc["currentServiceRevisions"] = json!([{
                "arn": r.arn, "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0
            }]);
            svc["currentServiceDeployment"] = json!(r.deployment_arn);
            changed = true;
        }
        let name = svc["serviceName"].as_str().unwrap_or_default().to_string();
        if let Some((primary, alternate)) = self.pairs.get(&name) {
            svc["loadBalancers"] = load_balancers(primary, alternate, self.rules.get(&name));
            changed = true;
        }
        let Some(td) = svc["taskDefinition"].as_str().map(str::to_string) else { return changed };
        for d in svc["deployments"].as_array_mut().into_iter().flatten() {
            changed |= self.amend_deployment(d, &td);
        }
        changed
    }

    /// Names `td` on a PRIMARY deployment, and its rollout state as ECS would; true when it changed.
    fn amend_deployment(&self, d: &mut Value, td: &str) -> bool {
        let mut changed = false;
        if d["status"] == "PRIMARY" && d["taskDefinition"] != td {
            d["taskDefinition"] = Value::String(td.to_string());
            changed = true;
        }
        let set = d["id"].as_str().and_then(|id| self.states.get(id)).cloned();
        let state = match set {
            Some(state) => Some(state),
            None if self.described && d["status"] == "PRIMARY" => Some("COMPLETED".to_string()),
            None => None,
        };
        if let Some(state) = state.filter(|s| d["rolloutState"] != s.as_str()) {
            d["rolloutState"] = Value::String(state);
            changed = true;
        }
        changed
    }
}
