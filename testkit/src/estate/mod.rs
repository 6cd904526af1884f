//! The todo app's AWS estate on moto: cluster, Fargate services, ECR repositories, artifact bucket.
//!
//! The names, clients, events and configs live in modules of their own (none imports this one);
//! they are re-exported here, where the tests have always found them.

mod alb;
mod blue_green;
mod ecs;
mod stores;

use serde_json::json;

use pushdeploy::domain::image::Digest;

pub use crate::clients::Aws;
pub use crate::configs::{blue_green_config, deployer, family_base_config, local_config, verifier};
pub use crate::events::{ecr_push_event, ecs_deployment_event, hook_invocation, HookCall};
pub use crate::names::{fake_digest, registry, ACCOUNT, BUCKET, CLUSTER, REGION};
pub use alb::{TodoAlb, TODO_HOST};
pub use blue_green::{BlueGreenAlb, Followers};

/// The todo app: two Fargate services behind one ALB, each fed by its own repository.
pub struct TodoApp {
    /// Clients.
    pub aws: Aws,
    /// Digest of the frontend's first image.
    pub frontend_v0: Digest,
    /// Digest of the backend's first image.
    pub backend_v0: Digest,
}

impl TodoApp {
    /// Creates cluster, repositories (with a first image each), bucket and both services.
    pub async fn create(aws: Aws) -> Self {
        Self::build(aws, None).await
    }

    /// [`TodoApp::create`] with both services behind the todo app's ALB ([`TodoAlb`]), as the
    /// seed's Terraform runs it: what `pushdeploy init` reads.
    pub async fn create_behind_alb(aws: Aws) -> (Self, TodoAlb) {
        let alb = aws.create_todo_alb().await;
        (Self::build(aws, Some(&alb)).await, alb)
    }

    async fn build(aws: Aws, alb: Option<&TodoAlb>) -> Self {
        aws.ecs.create_cluster().cluster_name(CLUSTER).send().await.expect("create cluster");
        aws.create_bucket(BUCKET).await;
        let reg = registry();
        let mut digests = Vec::new();
        for (service, container) in [("todo-frontend", "frontend"), ("todo-backend", "backend")] {
            aws.create_repository(service).await;
            digests.push(aws.push_image(service, "latest", &format!("{service}-v0")).await);
            let td =
                aws.register_rich_task_definition(service, &[(container, format!("{reg}/{service}:latest"))]).await;
            let tg = alb.map(|a| if container == "frontend" { a.frontend.as_str() } else { a.backend.as_str() });
            aws.create_service_behind(CLUSTER, service, &td, tg.map(|tg| (tg, container))).await;
        }
        let backend_v0 = digests.pop().expect("two digests");
        let frontend_v0 = digests.pop().expect("two digests");
        Self { aws, frontend_v0, backend_v0 }
    }
}

/// A rewrite of ECS's DescribeServices answer for `service` as a blue/green service whose
/// lifecycle hook is pushdeploy's verify at `stages` (moto keeps no deploymentConfiguration),
/// shaped as the ECS API model defines `DeploymentConfiguration`; for `Guard::set_fixture`.
pub fn blue_green_service(service: &str, stages: &[&str]) -> crate::guard::Fixture {
    let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
    let service = service.to_string();
    std::sync::Arc::new(move |_request, mut answer| {
        for svc in answer["services"].as_array_mut().into_iter().flatten() {
            if svc["serviceName"] == service.as_str() {
                svc["deploymentConfiguration"] = json!({
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                    "strategy": "BLUE_GREEN",
                    "bakeTimeInMinutes": 5,
                    "lifecycleHooks": [{
                        "hookTargetArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:pushdeploy-verify"),
                        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/pushdeploy-HookInvokeRole"),
                        "lifecycleStages": stages,
                    }],
                });
            }
        }
        answer
    })
}
