//! ECS service revisions and service deployments, which moto lacks.
//!
//! ECS resolves every image tag to a digest when a deployment starts (software version
//! consistency) and keeps the result in the deployment's service revision, so the digests a
//! service ran stay known after its tag moves. The guard shows this emulation every
//! CreateService and UpdateService that moto accepted; it resolves the task definition's images
//! then (through moto's ECR; images of other registries get a stable made-up digest) and answers
//! ListServiceDeployments and DescribeServiceRevisions from what it recorded, shaped as ECS's API
//! model (botocore's `ecs/2014-11-13/service-2.json`) defines them.
//!
//! moto starts no tasks for a service (and its tasks' containers carry no `imageDigest`): the
//! harness says which tasks a service runs ([`Revisions::run_tasks`], [`Revisions::stop_tasks`])
//! and ListTasks and DescribeTasks are answered from that, shaped as ECS's API model defines
//! them. A service whose deployments predate service revisions (October 25, 2024) is played by
//! [`Revisions::predate`]; a blue/green service's target group pair by [`Revisions::set_target_groups`],
//! each revision then served by the other group of the pair than the one before (ECS alternates
//! them), which the revision's `resolvedConfiguration` names.
//!
//! moto also leaves out a task definition's `registeredBy`, which ECS fills with the principal
//! that registered the revision: the guard names the signer of each RegisterTaskDefinition it
//! passes ([`crate::iam::registrant_of`]), and the emulation adds it to moto's answers.

mod amend;
mod answers;

use std::sync::Mutex;

use serde_json::Value;

use crate::clients::Aws;
use crate::names::{fake_digest, registry, ACCOUNT, REGION};

#[derive(Debug, Clone)]
struct Revision {
    arn: String,
    deployment_arn: String,
    service_arn: String,
    cluster_arn: String,
    task_definition: String,
    /// (container name, image, digest).
    images: Vec<(String, String, String)>,
    created_at: f64,
    /// For a blue/green service: the target group that serves this revision.
    serving: Option<String>,
}

/// A task the harness says a service runs (or ran).
#[derive(Debug, Clone)]
struct TaskRun {
    arn: String,
    cluster_arn: String,
    service: String,
    task_definition: String,
    /// (container name, image, digest ECS resolved when the task started).
    containers: Vec<(String, String, String)>,
    /// `None` while running; else (stoppedReason, stopCode).
    stopped: Option<(String, String)>,
    started_at: f64,
}

/// A blue/green service's target groups as the harness set them: (primary, alternate).
type TargetGroupPair = (String, String);

/// A blue/green service's listener rules as the harness set them: (production, test).
type ListenerRules = (String, String);

/// The recorded revisions of every service, and where the harness (playing ECS) says a
/// deployment stands.
pub struct Revisions {
    harness: Aws,
    recorded: Mutex<Vec<Revision>>,
    /// `rolloutState` of a deployment (`ecs-svc/…`) in DescribeServices, when the harness set one;
    /// otherwise ECS has completed it (moto runs no tasks, so its rollouts never finish by themselves).
    rollout_states: Mutex<std::collections::HashMap<String, String>>,
    /// (`status`, `lifecycleStage`) of a service deployment ARN, when the harness set them;
    /// otherwise SUCCESSFUL with no stage.
    stages: Mutex<std::collections::HashMap<String, (String, Option<String>)>>,
    /// Task definition ARN → the principal that registered it.
    registrants: Mutex<std::collections::HashMap<String, String>>,
    /// (cluster name, service name) → the service's ARN as ECS gave it: short
    /// (`…:service/<name>`) for a service created while the account's `serviceLongArnFormat` was
    /// disabled, which is the ARN IAM authorizes calls on that service against.
    service_arns: Mutex<std::collections::HashMap<(String, String), String>>,
    /// The tasks services run or ran.
    tasks: Mutex<Vec<TaskRun>>,
    /// Service name → its blue/green target group pair.
    target_groups: Mutex<std::collections::HashMap<String, TargetGroupPair>>,
    /// Service name → its blue/green listener rules (else made-up ARNs are named).
    listener_rules: Mutex<std::collections::HashMap<String, ListenerRules>>,
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn cluster_arn(cluster: &str) -> String {
    if cluster.starts_with("arn:") {
        cluster.to_string()
    } else {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}")
    }
}

impl Revisions {
    /// An emulation that resolves tags through `harness` (clients that bypass the guard).
    pub fn new(harness: Aws) -> Self {
        Self {
            harness,
            recorded: Mutex::new(Vec::new()),
            rollout_states: Mutex::new(Default::default()),
            stages: Mutex::new(Default::default()),
            registrants: Mutex::new(Default::default()),
            service_arns: Mutex::new(Default::default()),
            tasks: Mutex::new(Vec::new()),
            target_groups: Mutex::new(Default::default()),
            listener_rules: Mutex::new(Default::default()),
        }
    }

    /// From now on `service` (its name) is blue/green over `primary` and `alternate`: DescribeServices
    /// lists them (`loadBalancers[].advancedConfiguration.alternateTargetGroupArn`), and each
    /// revision started from now on is served by the other group than the revision before it, the
    /// first by `alternate` (green takes the group blue does not serve), as its
    /// `resolvedConfiguration` says.
    pub fn set_target_groups(&self, service: &str, primary: &str, alternate: &str) {
        self.target_groups
            .lock()
            .expect("lock")
            .insert(service.to_string(), (primary.to_string(), alternate.to_string()));
    }

    /// From now on `service`'s `advancedConfiguration` (and its revisions' `resolvedConfiguration`)
    /// name these listener rules (ARNs of rules that exist in moto's ELBv2), not made-up ones.
    pub fn set_listener_rules(&self, service: &str, production: &str, test: &str) {
        self.listener_rules
            .lock()
            .expect("lock")
            .insert(service.to_string(), (production.to_string(), test.to_string()));
    }

    /// Every deployment of `service` so far predates service revisions (October 25, 2024): ECS
    /// neither lists nor describes them.
    pub fn predate(&self, service: &str) {
        self.recorded.lock().expect("lock").retain(|r| r.service_arn.rsplit('/').next() != Some(service));
    }

    /// Starts `count` tasks of `task_definition` for `service` in `cluster`, each container's image
    /// resolved to the digest it names now (as ECS resolves a tag when a task starts).
    pub async fn run_tasks(&self, cluster: &str, service: &str, task_definition: &str, count: usize) {
        let described = self
            .harness
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .expect("the task definition exists");
        let td = described.task_definition().expect("a task definition");
        let mut containers = Vec::new();
        for c in td.container_definitions() {
            let image = c.image().unwrap_or_default().to_string();
            let digest = self.resolve(&image).await;
            containers.push((c.name().unwrap_or_default().to_string(), image, digest));
        }
        let arn = td.task_definition_arn().unwrap_or(task_definition).to_string();
        let mut tasks = self.tasks.lock().expect("lock");
        for _ in 0..count {
            let n = tasks.len() + 1;
            let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
            tasks.push(TaskRun {
                arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster_name}/{n:032x}"),
                cluster_arn: cluster_arn(cluster),
                service: service.to_string(),
                task_definition: arn.clone(),
                containers: containers.clone(),
                stopped: None,
                started_at: now_secs(),
            });
        }
    }

    /// Stops every running task of `task_definition` for `service`, as the scheduler does when a
    /// deployment replaces them (`stopCode` ServiceSchedulerInitiated, `reason` as stoppedReason).
    pub fn stop_tasks(&self, service: &str, task_definition: &str, reason: &str) {
        for t in self.tasks.lock().expect("lock").iter_mut() {
            if t.service == service && t.task_definition == task_definition && t.stopped.is_none() {
                t.stopped = Some((reason.to_string(), "ServiceSchedulerInitiated".to_string()));
            }
        }
    }

    /// `resource` as IAM sees it: a long-form service ARN (`…:service/<cluster>/<name>`, as the
    /// guard builds it from a request's cluster and name) becomes the short ARN ECS gave that
    /// service, if it gave it one. `None` when nothing changes.
    pub fn as_ecs_names_it(&self, resource: &str) -> Option<String> {
        let rest = resource.strip_prefix(&format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/"))?;
        let (cluster, service) = rest.split_once('/')?;
        let actual =
            self.service_arns.lock().expect("lock").get(&(cluster.to_string(), service.to_string())).cloned()?;
        (actual != resource).then_some(actual)
    }

    /// Remembers the ARN of each service in an ECS answer (CreateService, UpdateService,
    /// DescribeServices).
    fn remember_service_arns(&self, answer: &Value) {
        let services = answer["services"].as_array().cloned().unwrap_or_else(|| vec![answer["service"].clone()]);
        let mut arns = self.service_arns.lock().expect("lock");
        for svc in &services {
            if let (Some(arn), Some(cluster), Some(name)) =
                (svc["serviceArn"].as_str(), svc["clusterArn"].as_str(), svc["serviceName"].as_str())
            {
                let cluster = cluster.rsplit('/').next().unwrap_or(cluster).to_string();
                arns.insert((cluster, name.to_string()), arn.to_string());
            }
        }
    }

    /// True for the operations answered here.
    pub fn answers(operation: &str) -> bool {
        matches!(
            operation,
            "ecs:ListServiceDeployments"
                | "ecs:DescribeServiceRevisions"
                | "ecs:DescribeServiceDeployments"
                | "ecs:ListTasks"
                | "ecs:DescribeTasks"
        )
    }

    /// From now on DescribeServices reports deployment `id` (`ecs-svc/…`) in `rollout_state`
    /// (`IN_PROGRESS`, `COMPLETED`, `FAILED`), as ECS would.
    pub fn set_rollout_state(&self, id: &str, rollout_state: &str) {
        self.rollout_states.lock().expect("lock").insert(id.to_string(), rollout_state.to_string());
    }

    /// From now on DescribeServiceDeployments reports `deployment_arn` with `status` at `stage`.
    pub fn set_service_deployment(&self, deployment_arn: &str, status: &str, stage: Option<&str>) {
        self.stages
            .lock()
            .expect("lock")
            .insert(deployment_arn.to_string(), (status.to_string(), stage.map(str::to_string)));
    }

    /// Whether ECS starts a new deployment for an UpdateService `request`: when forced, or when it
    /// names a revision other than the one the service is on (ECS's own rule; moto's is "forced").
    pub async fn update_starts_deployment(&self, request: &Value) -> bool {
        if request["forceNewDeployment"] == Value::Bool(true) {
            return true;
        }
        let Some(asked) = request["taskDefinition"].as_str() else { return false };
        let (cluster, service) = (request["cluster"].as_str().unwrap_or("default"), request["service"].as_str());
        let Some(service) = service else { return false };
        let Ok(out) = self.harness.ecs.describe_services().cluster(cluster).services(service).send().await else {
            return true;
        };
        let current = out.services().first().and_then(|s| s.task_definition()).unwrap_or_default();
        !(current == asked || current.ends_with(&format!("task-definition/{asked}")))
    }

    /// Records the revision a successful CreateService or UpdateService started, and who
    /// (`registrant`, the request's signer) registered a revision RegisterTaskDefinition created.
    pub async fn observe(&self, operation: &str, registrant: Option<&str>, answer: &[u8]) {
        if operation == "ecs:RegisterTaskDefinition" {
            let arn = serde_json::from_slice::<Value>(answer)
                .ok()
                .and_then(|a| a["taskDefinition"]["taskDefinitionArn"].as_str().map(str::to_string));
            if let (Some(arn), Some(by)) = (arn, registrant) {
                self.registrants.lock().expect("lock").insert(arn, by.to_string());
            }
            return;
        }
        if !matches!(operation, "ecs:CreateService" | "ecs:UpdateService" | "ecs:DescribeServices") {
            return;
        }
        let Ok(answer) = serde_json::from_slice::<Value>(answer) else { return };
        self.remember_service_arns(&answer);
        if operation == "ecs:DescribeServices" {
            return;
        }
        let service = &answer["service"];
        let (Some(svc_arn), Some(cluster), Some(td)) =
            (service["serviceArn"].as_str(), service["clusterArn"].as_str(), service["taskDefinition"].as_str())
        else {
            return;
        };
        let Ok(described) = self.harness.ecs.describe_task_definition().task_definition(td).send().await else {
            return;
        };
        let mut images = Vec::new();
        for c in described.task_definition().map(|t| t.container_definitions()).unwrap_or_default() {
            let image = c.image().unwrap_or_default().to_string();
            let digest = self.resolve(&image).await;
            images.push((c.name().unwrap_or_default().to_string(), image, digest));
        }
        let mut recorded = self.recorded.lock().expect("lock");
        let n = recorded.len() + 1;
        let service_name = svc_arn.rsplit('/').next().unwrap_or_default();
        // ECS alternates a blue/green service's groups: green takes the one the revision before
        // did not serve.
        let serving = self.target_groups.lock().expect("lock").get(service_name).map(|(primary, alternate)| {
            match recorded.iter().rev().find(|r| r.service_arn == svc_arn).and_then(|r| r.serving.as_deref()) {
                Some(last) if last == alternate => primary.clone(),
                _ => alternate.clone(),
            }
        });
        let cluster_name = cluster.rsplit('/').next().unwrap_or_default();
        let id = format!("{:019}", 4_000_000_000_000_000_000u64 + n as u64);
        recorded.push(Revision {
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{cluster_name}/{service_name}/{id}"),
            deployment_arn: format!(
                "arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{cluster_name}/{service_name}/d{id}"
            ),
            service_arn: svc_arn.to_string(),
            cluster_arn: cluster.to_string(),
            task_definition: td.to_string(),
            images,
            created_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
                + n as f64 / 1000.0,
            serving,
        });
    }

    /// The digest ECS would resolve `image` to now.
    async fn resolve(&self, image: &str) -> String {
        if let Some((_, digest)) = image.split_once('@') {
            return digest.to_string();
        }
        let ours = format!("{}/", registry());
        if let Some((repo, tag)) = image.strip_prefix(&ours).and_then(|r| r.rsplit_once(':')) {
            let found = self
                .harness
                .ecr
                .describe_images()
                .repository_name(repo)
                .image_ids(aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(tag).build())
                .send()
                .await;
            if let Some(d) =
                found.ok().and_then(|o| o.image_details().first().and_then(|d| d.image_digest().map(str::to_string)))
            {
                return d;
            }
        }
        fake_digest(image)
    }
}
