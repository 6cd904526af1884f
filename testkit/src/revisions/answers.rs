//! ECS's answers to what moto lacks: ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions, ListTasks, DescribeTasks.

use serde_json::{json, Value};

use super::{cluster_arn, ListenerRules, Revision, Revisions, TaskRun};
use crate::names::{ACCOUNT, REGION};

impl Revisions {
    /// ECS's answer to `operation` with `request`.
    pub fn answer(&self, operation: &str, request: &Value) -> Value {
        match operation {
            "ecs:ListServiceDeployments" => self.list_service_deployments(request),
            "ecs:DescribeServiceDeployments" => self.describe_service_deployments(request),
            "ecs:ListTasks" => self.list_tasks(request),
            "ecs:DescribeTasks" => self.describe_tasks(request),
            _ => self.describe_service_revisions(request),
        }
    }

    fn list_service_deployments(&self, request: &Value) -> Value {
        let recorded = self.recorded.lock().expect("lock");
        let cluster = request["cluster"].as_str().unwrap_or("default");
        // By name: the request may name the service by either form of its ARN, and a
        // service with a short ARN (`…:service/<name>`) is recorded under that one.
        let requested = request["service"].as_str().unwrap_or_default();
        let name = requested.rsplit('/').next().unwrap_or(requested);
        let wanted: Vec<&str> = strings(request, "status").collect();
        // Each deployment's status as the harness set it (a stuck or failed one), else SUCCESSFUL.
        let stages = self.stages.lock().expect("lock");
        let status_of = |r: &&Revision| stages.get(&r.deployment_arn).map_or("SUCCESSFUL".to_string(), |s| s.0.clone());
        let briefs: Vec<Value> = recorded
            .iter()
            .rev()
            .filter(|r| r.service_arn.rsplit('/').next() == Some(name) && r.cluster_arn == cluster_arn(cluster))
            .filter(|r| wanted.is_empty() || wanted.contains(&status_of(r).as_str()))
            .map(|r| {
                let status = status_of(&r);
                json!({
                    "serviceDeploymentArn": r.deployment_arn,
                    "serviceArn": r.service_arn,
                    "clusterArn": r.cluster_arn,
                    "createdAt": r.created_at,
                    "startedAt": r.created_at,
                    "finishedAt": r.created_at,
                    "targetServiceRevisionArn": r.arn,
                    "status": status,
                })
            })
            .collect();
        // Pages as ECS does: maxResults (20 when absent), then nextToken for the rest.
        page("serviceDeployments", &briefs, request, 20)
    }

    fn describe_service_deployments(&self, request: &Value) -> Value {
        let recorded = self.recorded.lock().expect("lock");
        let stages = self.stages.lock().expect("lock");
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in strings(request, "serviceDeploymentArns") {
            let Some(r) = recorded.iter().find(|r| r.deployment_arn == arn) else {
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
                continue;
            };
            let (status, stage) = stages.get(arn).cloned().unwrap_or_else(|| ("SUCCESSFUL".to_string(), None));
            let mut d = json!({
                "serviceDeploymentArn": r.deployment_arn,
                "serviceArn": r.service_arn,
                "clusterArn": r.cluster_arn,
                "createdAt": r.created_at,
                "startedAt": r.created_at,
                "updatedAt": r.created_at,
                "targetServiceRevision": {
                    "arn": r.arn,
                    "requestedTaskCount": 2,
                    "runningTaskCount": 2,
                    "pendingTaskCount": 0,
                },
                "status": status,
            });
            if let Some(stage) = stage {
                d["lifecycleStage"] = json!(stage);
            }
            found.push(d);
        }
        json!({ "serviceDeployments": found, "failures": failures })
    }

    fn list_tasks(&self, request: &Value) -> Value {
        let cluster = cluster_arn(request["cluster"].as_str().unwrap_or("default"));
        let wanted_status = request["desiredStatus"].as_str().unwrap_or("RUNNING");
        let tasks = self.tasks.lock().expect("lock");
        let arns: Vec<String> = tasks
            .iter()
            .filter(|t| t.cluster_arn == cluster)
            .filter(|t| request["serviceName"].as_str().is_none_or(|s| s == t.service))
            .filter(|t| (if t.stopped.is_some() { "STOPPED" } else { "RUNNING" }) == wanted_status)
            .map(|t| t.arn.clone())
            .collect();
        page("taskArns", &arns, request, 100)
    }

    fn describe_tasks(&self, request: &Value) -> Value {
        let tasks = self.tasks.lock().expect("lock");
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in strings(request, "tasks") {
            match tasks.iter().find(|t| t.arn == arn || t.arn.rsplit('/').next() == Some(arn)) {
                Some(t) => found.push(describe_task(t)),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        json!({ "tasks": found, "failures": failures })
    }

    fn describe_service_revisions(&self, request: &Value) -> Value {
        let recorded = self.recorded.lock().expect("lock");
        let mut revisions = Vec::new();
        let mut failures = Vec::new();
        let pairs = self.target_groups.lock().expect("lock");
        let rules = self.listener_rules.lock().expect("lock");
        for arn in strings(request, "serviceRevisionArns") {
            let Some(r) = recorded.iter().find(|r| r.arn == arn) else {
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
                continue;
            };
            let mut revision = json!({
                "serviceRevisionArn": r.arn,
                "serviceArn": r.service_arn,
                "clusterArn": r.cluster_arn,
                "taskDefinition": r.task_definition,
                "launchType": "FARGATE",
                "platformVersion": "1.4.0",
                "createdAt": r.created_at,
                "containerImages": r.images.iter().map(|(name, image, digest)| json!({
                    "containerName": name, "imageDigest": digest, "image": image
                })).collect::<Vec<_>>(),
            });
            // A blue/green revision names its pair, and the group that serves it.
            let service = r.service_arn.rsplit('/').next().unwrap_or_default();
            if let (Some(serving), Some((primary, alternate))) = (&r.serving, pairs.get(service)) {
                let rules = rules.get(service);
                revision["loadBalancers"] = load_balancers(primary, alternate, rules);
                revision["resolvedConfiguration"] = json!({"loadBalancers": [{
                    "targetGroupArn": serving,
                    "productionListenerRule": rules.map_or_else(production_rule, |r| r.0.clone()),
                }]});
            }
            revisions.push(revision);
        }
        json!({ "serviceRevisions": revisions, "failures": failures })
    }
}

/// The strings of the array `request[key]`.
fn strings<'a>(request: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    request[key].as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// The page a ListServiceDeployments or ListTasks request asks for, as the answer's `key`: from
/// the offset its `nextToken` names (a token this emulation issued), at most `maxResults` (else
/// `default`), with a `nextToken` when items are left.
fn page<T: Clone + serde::Serialize>(key: &str, items: &[T], request: &Value, default: usize) -> Value {
    let start = request["nextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("emulated-page-"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let size = request["maxResults"].as_u64().map_or(default, |m| m as usize);
    let end = (start + size).min(items.len());
    let mut out = json!({ key: items[start..end].to_vec() });
    if end < items.len() {
        out["nextToken"] = json!(format!("emulated-page-{end}"));
    }
    out
}

/// The production listener rule of the emulated blue/green services.
fn production_rule() -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/todo-alb/1/2/3")
}

/// A blue/green service's `loadBalancers`, as DescribeServices and DescribeServiceRevisions list
/// them: with the listener rules the harness set, else made-up ones.
pub(super) fn load_balancers(primary: &str, alternate: &str, rules: Option<&ListenerRules>) -> Value {
    let test = format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/todo-alb/1/2/4");
    let (production, test) = rules.map_or((production_rule(), test), |(p, t)| (p.clone(), t.clone()));
    json!([{
        "targetGroupArn": primary,
        "containerName": "app",
        "containerPort": 8080,
        "advancedConfiguration": {
            "alternateTargetGroupArn": alternate,
            "productionListenerRule": production,
            "testListenerRule": test,
            "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecs-load-balancers"),
        },
    }])
}

/// A task as DescribeTasks describes it.
fn describe_task(t: &TaskRun) -> Value {
    let status = if t.stopped.is_some() { "STOPPED" } else { "RUNNING" };
    let mut task = json!({
        "taskArn": t.arn,
        "clusterArn": t.cluster_arn,
        "taskDefinitionArn": t.task_definition,
        "group": format!("service:{}", t.service),
        "lastStatus": status,
        "desiredStatus": status,
        "launchType": "FARGATE",
        "startedAt": t.started_at,
        "containers": t.containers.iter().map(|(name, image, digest)| json!({
            "containerArn": format!("{}/{name}", t.arn.replace(":task/", ":container/")),
            "taskArn": t.arn,
            "name": name,
            "image": image,
            "imageDigest": digest,
            "lastStatus": status,
        })).collect::<Vec<_>>(),
    });
    if let Some((reason, code)) = &t.stopped {
        task["stoppedReason"] = json!(reason);
        task["stopCode"] = json!(code);
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_page_as_ecs_pages_them() {
        let items: Vec<u32> = (0..45).collect();
        let page = |items: &[u32], request: &Value, default: usize| {
            let out = page("items", items, request, default);
            let got: Vec<u64> = out["items"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            (got, out["nextToken"].as_str().map(str::to_string))
        };
        // No maxResults: ECS's default page of 20, and a nextToken for the rest.
        let (first, next) = page(&items, &json!({}), 20);
        assert_eq!((first.len(), first[0], next.as_deref()), (20, 0, Some("emulated-page-20")));
        let (second, next) = page(&items, &json!({"nextToken": next, "maxResults": 20}), 20);
        assert_eq!((second[0], next.as_deref()), (20, Some("emulated-page-40")));
        let (last, next) = page(&items, &json!({"nextToken": next, "maxResults": 20}), 20);
        assert_eq!((last.len(), next), (5, None), "no nextToken on the last page");
        let (all, next) = page(&items, &json!({"maxResults": 100}), 20);
        assert_eq!((all.len(), next), (45, None));
    }
}
