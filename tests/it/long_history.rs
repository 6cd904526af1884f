//! Rollback targets of a long-stable service, through the built `deploy` and `verify` binaries:
//! ECS's history read page by page as ListServiceDeployments pages it, and a revision deployed
//! before ECS kept service revisions (October 25, 2024), whose digests only its tasks still know.

use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, CLUSTER};
use testkit::guard::Emulator;
use testkit::runtime::FunctionProcess;
use testkit::standin::{Behaviour, TodoStandIn};

use crate::function::start_function;
use crate::support::{assert_returned_to, record_of};

const BACKEND: &str = "todo-backend";

struct Estate {
    emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
    deploy: FunctionProcess,
    verify: FunctionProcess,
}

impl Estate {
    async fn new() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let config = local_config(&standin.url());
        let deploy = start_function("deploy", &app.aws, &config, &[]).await;
        let verify = start_function("verify", &app.aws, &config, &[]).await;
        Self { emu, app, standin, deploy, verify }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }

    async fn running(&self) -> String {
        self.aws().service_task_definition(CLUSTER, BACKEND).await
    }

    async fn push(&self, seed: &str, behaviour: Behaviour) -> String {
        let digest = self.aws().push_image(BACKEND, "latest", seed).await;
        self.standin.set(digest.as_str(), behaviour);
        let answer = self.deploy.invoke(&ecr_push_event(&format!("evt-{seed}"), BACKEND, "latest", &digest)).await;
        let answer = answer.unwrap_or_else(|e| panic!("deploy {seed}: {e}"));
        assert_eq!(answer["outcome"], "started", "{answer}");
        answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string()
    }

    async fn completed(&self, dep: &str) -> Value {
        let id = format!("ecs-{}", dep.rsplit('/').next().unwrap_or(dep));
        let event = ecs_deployment_event(&id, BACKEND, dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
        self.verify.invoke(&event).await.unwrap_or_else(|e| panic!("verify: {e}"))
    }
}

#[tokio::test]
async fn a_rollback_finds_its_target_past_the_first_page_of_ecs_history() {
    let e = Estate::new().await;
    let terraform = e.running().await;
    let good = e.push("backend-paged-good", Behaviour::Good).await;
    assert_eq!(e.completed(&good).await["outcome"], "verified");
    let verified = e.running().await;
    let good_digest = record_of(e.aws(), BACKEND, &good).await["digest"].as_str().unwrap().to_string();
    // Then 55 deployments outside pushdeploy (the pipeline's, during a migration): the verified
    // deployment is now beyond the first 50 that ListServiceDeployments answers.
    for _ in 0..55 {
        e.aws()
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(BACKEND)
            .task_definition(&terraform)
            .force_new_deployment(true)
            .send()
            .await
            .unwrap();
    }
    let broken = e.push("backend-paged-broken", Behaviour::Broken).await;
    let answer = e.completed(&broken).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    // The newest verified deployment, read from the second page (its sidecar pinned too): not the
    // pipeline's revision the first page is full of.
    let now = assert_returned_to(e.aws(), BACKEND, &verified, ("backend", Some(&good_digest))).await;
    let rec = record_of(e.aws(), BACKEND, &broken).await;
    assert_eq!(rec["rolled_back_to"], now.as_str(), "{rec}");
    let listings = e
        .emu
        .guard
        .calls()
        .iter()
        .filter(|c| c.operation == "ecs:ListServiceDeployments" && c.role == testkit::iam::Role::Verify)
        .count();
    assert!(listings >= 2, "verify read {listings} page(s)");
    assert!(e.emu.guard.denied().is_empty(), "{:?}", e.emu.guard.denied());
}

#[tokio::test]
async fn the_first_redeploy_at_cutover_rolls_back_to_the_digest_the_old_tasks_ran() {
    let e = Estate::new().await;
    // Terraform's revision names `todo-backend:latest`, deployed before ECS kept service
    // revisions: ECS's history holds nothing of it, and only its running tasks know the digest.
    let terraform = e.running().await;
    e.emu.guard.ecs.predate(BACKEND);
    e.emu.guard.ecs.run_tasks(CLUSTER, BACKEND, &terraform, 2).await;
    let ran = e.app.backend_v0.as_str().to_string();
    // `latest` has moved on to a broken build since (pushed before pushdeploy watched the repository).
    let broken = e.aws().push_image(BACKEND, "latest", "backend-cutover-broken").await;
    e.standin.set(broken.as_str(), Behaviour::Broken);

    let answer = e.deploy.invoke(&json!({"action": "redeploy", "service": "backend"})).await.unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let dep = answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let redeployed = e.running().await;
    let rec = record_of(e.aws(), BACKEND, &dep).await;
    assert_eq!(rec["previous_task_definition"], terraform.as_str());
    assert_eq!(rec["previous_digests"]["backend"], ran.as_str(), "read from the running tasks: {rec}");

    // ECS replaces Terraform's tasks with the redeployed ones.
    let replaced = format!("Scaling activity initiated by (deployment {dep})");
    e.emu.guard.ecs.stop_tasks(BACKEND, &terraform, &replaced);
    e.emu.guard.ecs.run_tasks(CLUSTER, BACKEND, &redeployed, 2).await;
    let answer = e.completed(&dep).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    // Back on Terraform's revision pinned to the digest its tasks ran, not to what `latest` names now.
    let now = assert_returned_to(e.aws(), BACKEND, &terraform, ("backend", Some(&ran))).await;
    assert_ne!(now, terraform, "a pinned copy, not the tag");
    let rec = record_of(e.aws(), BACKEND, &dep).await;
    assert_eq!(rec["status"], "rolled_back", "{rec}");
    for (role, op) in [
        (testkit::iam::Role::Deploy, "ecs:ListTasks"),
        (testkit::iam::Role::Deploy, "ecs:DescribeTasks"),
        (testkit::iam::Role::Verify, "ecs:ListTasks"),
        (testkit::iam::Role::Verify, "ecs:DescribeTasks"),
    ] {
        assert!(e.emu.guard.calls().iter().any(|c| c.role == role && c.operation == op), "{role:?} {op}");
    }
    assert!(e.emu.guard.denied().is_empty(), "{:?}", e.emu.guard.denied());
}

#[tokio::test]
async fn without_ecs_history_or_tasks_the_cutover_rollback_is_refused_loudly() {
    let e = Estate::new().await;
    let terraform = e.running().await;
    e.emu.guard.ecs.predate(BACKEND);
    // No task of Terraform's revision left to ask (replaced more than an hour ago, say).
    let broken = e.aws().push_image(BACKEND, "latest", "backend-cutover-untold").await;
    e.standin.set(broken.as_str(), Behaviour::Broken);
    let answer = e.deploy.invoke(&json!({"action": "redeploy", "service": "backend"})).await.unwrap();
    let dep = answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let redeployed = e.running().await;
    let rec = record_of(e.aws(), BACKEND, &dep).await;
    assert!(rec["previous_digests"].is_null(), "{rec}");
    let id = format!("ecs-{}", dep.rsplit('/').next().unwrap());
    let event = ecs_deployment_event(&id, BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    assert!(e.verify.invoke(&event).await.is_err(), "a failed rollback fails the invocation");
    let rec = record_of(e.aws(), BACKEND, &dep).await;
    assert_eq!(rec["status"], "rollback_failed", "{rec}");
    assert_eq!(e.running().await, redeployed, "nothing guessed: {terraform} is not run by its tag");
}
