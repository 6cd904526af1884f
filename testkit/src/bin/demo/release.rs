//! The demo's world (the estate, the stand-in app, the two functions) and one release through it.

use std::path::Path;

use serde_json::Value;
use testkit::estate::{ecr_push_event, ecs_deployment_event, Aws, BUCKET, CLUSTER};
use testkit::iam::Role;
use testkit::runtime::FunctionProcess;
use testkit::standin::{Behaviour, TodoStandIn};

use crate::show::{images, invoke, print_timeline, short, text};

/// The estate, the stand-in app, and deploy and verify under their runtime-API hosts.
pub struct Demo {
    /// The harness's clients.
    pub aws: Aws,
    /// ECS's service deployments as the demo plays them (moto has none).
    pub ecs: std::sync::Arc<testkit::revisions::Revisions>,
    /// The todo app behind its "ALB".
    pub app: TodoStandIn,
    /// deploy (shared with the local Lambda Invoke endpoint).
    pub deploy: std::sync::Arc<FunctionProcess>,
    /// verify.
    pub verify: FunctionProcess,
    /// The number of the last event the demo made up.
    pub seq: u32,
    /// The record id of the first deployment verify rolled back.
    pub rolled_back: Option<String>,
}

/// What the functions' environments share: the harness's clients and the verdicts' topic.
pub struct Envs {
    /// The harness's clients.
    pub aws: Aws,
    /// The SNS topic verdicts go to.
    pub topic: String,
}

impl Envs {
    /// The environment of a function signing as `role`, reading `config`.
    pub fn of(&self, role: Role, config: &Path) -> Vec<(String, String)> {
        let mut env = self.aws.function_env(role);
        env.push(("PUSHDEPLOY_CONFIG".into(), config.display().to_string()));
        env.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
        env.push(("PUSHDEPLOY_TOPIC_ARN".into(), self.topic.clone()));
        env.push(("RUST_LOG".into(), "info".into()));
        env
    }
}

impl Demo {
    /// Push → deploy → ECS events → verify of `service:latest`; answers the push event.
    pub async fn release(&mut self, service: &str, seed: &str, behaviour: Behaviour) -> Value {
        self.release_tag(service, "latest", seed, behaviour).await
    }

    /// Push → deploy → ECS events → verify, printing what each step did; answers the push event.
    pub async fn release_tag(&mut self, service: &str, tag: &str, seed: &str, behaviour: Behaviour) -> Value {
        self.seq += 1;
        let before = self.aws.service_task_definition(CLUSTER, service).await;
        let digest = self.aws.push_image(service, tag, seed).await;
        self.app.set(digest.as_str(), behaviour);
        println!("  pushed {service}:{tag} @ {}…", &digest.as_str()[..19]);
        let push = ecr_push_event(&format!("push-{}", self.seq), service, tag, &digest);
        let answer = self.invoke_deploy(&push).await;
        let d = &answer["deployments"][0];
        println!("  deploy: {}  {}", answer["outcome"], text(&d["reason"]));
        let Some(dep) = d["ecs_deployment_id"].as_str().map(str::to_string) else { return push };
        println!("    now runs {}", images(&self.aws, text(&d["task_definition"])).await);
        for key in d["written"].as_array().into_iter().flatten() {
            println!("    wrote s3://{BUCKET}/{}", text(key));
        }
        println!("  ECS reports the rollout in progress, then completed → verify");
        self.invoke_verify(service, &dep, "SERVICE_DEPLOYMENT_IN_PROGRESS").await;
        let verdict = self.invoke_verify(service, &dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
        let v = &verdict["deployments"][0];
        println!("  verify: {}  {}", verdict["outcome"], text(&v["reason"]));
        let record = self.record(service, &dep).await;
        if record["status"] == "rolled_back" && self.rolled_back.is_none() {
            self.rolled_back = record["id"].as_str().map(str::to_string);
        }
        if let Some(rollback) = record["rollback_deployment"].as_str() {
            let rollback = pushdeploy::domain::record::ecs_deployment_id(rollback).expect("a record id");
            let done = self.invoke_verify(service, &rollback, "SERVICE_DEPLOYMENT_COMPLETED").await;
            println!(
                "  rollback deployment completed → verify: {}  {}",
                done["outcome"],
                text(&done["deployments"][0]["reason"])
            );
        }
        let now = self.aws.service_task_definition(CLUSTER, service).await;
        println!("  {service} runs {} (was {})", short(&now), short(&before));
        if record["rolled_back_to"].is_string() {
            let was = self.aws.images_of(&before).await.first().map(|(_, i)| i.clone()).unwrap_or_default();
            println!(
                "    {} (the revision it returned to names {was}, which points at the build just rolled back)",
                images(&self.aws, &now).await
            );
        }
        print_timeline(&self.record(service, &dep).await);
        push
    }

    /// deploy's answer to `event`.
    pub async fn invoke_deploy(&self, event: &Value) -> Value {
        invoke(&self.deploy, event).await
    }

    /// verify's answer to ECS's `what` event for `deployment` of `service`.
    pub async fn invoke_verify(&mut self, service: &str, deployment: &str, what: &str) -> Value {
        self.seq += 1;
        let event = ecs_deployment_event(&format!("ecs-{}", self.seq), service, deployment, what, "");
        invoke(&self.verify, &event).await
    }

    /// The deployment record of `deployment` of `service`.
    pub async fn record(&self, service: &str, deployment: &str) -> Value {
        let key = pushdeploy::domain::record::record_key(CLUSTER, service, deployment).expect("deployment id");
        serde_json::from_slice(&self.aws.object(BUCKET, &key).await).unwrap_or_default()
    }
}
