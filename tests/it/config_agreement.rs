//! What a config means, agreed by both functions and played through the binaries: deploy refuses
//! a config verify could not run, verify never answers an event it cannot judge, a rejection a
//! person must act on is told, and one ECS service is judged by every entry that names it.

use serde_json::Value;
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::runtime::FunctionProcess;
use testkit::standin::{Behaviour, SnsSink, TodoStandIn};

use crate::function::start_function;
use crate::support::Snapshot;

/// The record of `deployment` of `service`, as the bucket holds it.
async fn record(aws: &Aws, service: &str, deployment: &str) -> Value {
    let key = pushdeploy::domain::record::record_key(CLUSTER, service, deployment).unwrap();
    serde_json::from_slice(&aws.object(BUCKET, &key).await).unwrap()
}

async fn upload(aws: &Aws, config: &str) {
    aws.s3
        .put_object()
        .bucket(BUCKET)
        .key("pushdeploy.toml")
        .body(config.as_bytes().to_vec().into())
        .send()
        .await
        .expect("upload the config");
}

/// The frontend alone from the local config: 5 attempts × (100 ms + 2000 ms) = 10.5 s at worst.
fn frontend_only(app: &str) -> String {
    let all = local_config(app);
    let backend = all.find("[[service]]\nname = \"backend\"").expect("the backend entry");
    all[..backend].to_string()
}

/// The sum of EMF metric `name` for `service` in `logs`.
fn metric(logs: &[String], name: &str, service: &str) -> f64 {
    logs.iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some() && v["Service"] == service)
        .filter_map(|v| v[name].as_f64())
        .sum()
}

fn timeline(rec: &Value) -> Vec<String> {
    rec["timeline"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn deploy_refuses_a_smoke_budget_verify_cannot_keep_and_verify_fails_what_it_cannot_judge_until_the_fix() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    // What template.yaml gives both functions: verify's 30 s timeout leaves 10 s for a smoke test.
    let env = [
        ("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "30"),
        ("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str()),
        ("PUSHDEPLOY_CONFIG_RECHECK_SECONDS", "0"),
    ];
    let too_slow = frontend_only(&standin.url());
    let fits = too_slow.replace("attempts = 5", "attempts = 4");

    // 1. deploy refuses the config verify could not run, naming the budget; nothing changes.
    let deploy = start_function("deploy", &app.aws, &too_slow, &env).await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-agree-1").await;
    let original = app.aws.service_task_definition(CLUSTER, "todo-frontend").await;
    let before = Snapshot::take(&app.aws).await;
    let refused = deploy.invoke(&ecr_push_event("evt-slow", "todo-frontend", "latest", &digest)).await.unwrap();
    assert_eq!(refused["outcome"], "rejected", "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(reason.contains("service[0].smoke"), "{reason}");
    assert!(reason.contains("10500 ms does not fit in the 10000 ms the verify function has"), "{reason}");
    assert_eq!(Snapshot::take(&app.aws).await, before, "no revision, no rollout, no record");
    assert_eq!(sink.notifications().len(), 1, "the config error is told once");

    // 2. With a config that fits, the push deploys.
    upload(&app.aws, &fits).await;
    let started = deploy.invoke(&ecr_push_event("evt-fits", "todo-frontend", "latest", &digest)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let deployed = app.aws.service_task_definition(CLUSTER, "todo-frontend").await;
    assert_ne!(deployed, original);

    // 3. verify meets a config it cannot run (uploaded past `validate`, or a verify deployed with
    //    a shorter timeout): the invocation fails, every time, and is never answered.
    upload(&app.aws, &too_slow).await;
    let verify = start_function("verify", &app.aws, &too_slow, &env).await;
    let completed = ecs_deployment_event("ecs-agree", "todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    for _ in 0..2 {
        let failed = verify.invoke(&completed).await.expect_err("an event verify cannot judge fails the invocation");
        assert_eq!(failed["errorType"], "Permanent.Config", "{failed}");
        let message = failed["errorMessage"].as_str().unwrap();
        assert!(message.contains("service[0].smoke") && message.contains("failed-invocations queue"), "{message}");
    }
    let rec = record(&app.aws, "todo-frontend", &dep).await;
    assert_eq!(rec["status"], "started", "no verdict: {rec}");
    assert!(rec["reason"].as_str().unwrap().contains("cannot judge deployment"), "{rec}");
    assert_eq!(timeline(&rec).iter().filter(|e| *e == "error").count(), 1, "said once: {rec}");
    let told = sink.notifications();
    assert_eq!(told.len(), 2, "deploy's and verify's one message each: {told:#?}");
    assert!(told[1]["Message"].as_str().unwrap().contains("service[0].smoke"), "{}", told[1]);
    assert_eq!(app.aws.service_task_definition(CLUSTER, "todo-frontend").await, deployed, "nothing rolled back");

    // 4. The config is fixed: the re-delivered event (Lambda's retry, or a redrive) is judged.
    upload(&app.aws, &fits).await;
    let judged = verify.invoke(&completed).await.expect("judged once the config is fixed");
    assert_eq!(judged["outcome"], "verified", "{judged}");
    let rec = record(&app.aws, "todo-frontend", &dep).await;
    assert_eq!(rec["status"], "verified", "{rec}");
    assert_eq!(rec["smoke"]["passed"], true, "{rec}");
    assert_eq!(app.aws.service_task_definition(CLUSTER, "todo-frontend").await, deployed);
    assert!(app.aws.images_of(&deployed).await[0].1.ends_with(digest.as_str()));
    deploy.stop().await;
    verify.stop().await;
}

#[tokio::test]
async fn a_push_rejected_for_a_missing_container_is_told_once_and_counted() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    // Terraform renamed the container: the config still names `web`.
    let config = local_config(&standin.url()).replacen(
        "repository = \"todo-frontend\"\ntags = [\"latest\"]\n",
        "repository = \"todo-frontend\"\ntags = [\"latest\"]\ncontainers = [\"web\"]\n",
        1,
    );
    assert!(config.contains("containers = [\"web\"]"));
    let deploy = start_function("deploy", &app.aws, &config, &[("PUSHDEPLOY_TOPIC_ARN", &sink.topic_arn)]).await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-renamed").await;
    let before = Snapshot::take(&app.aws).await;

    let answer = deploy.invoke(&ecr_push_event("evt-renamed", "todo-frontend", "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "rejected", "{answer}");
    let reason = answer["deployments"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("container \"web\" is not in todo-frontend:1"), "{reason}");
    assert_eq!(Snapshot::take(&app.aws).await, before, "nothing deployed, nothing recorded");

    let told = sink.notifications();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED"), "{}", told[0]);
    let message = told[0]["Message"].as_str().unwrap();
    assert!(message.contains("frontend") && message.contains("container \"web\" is not in"), "{message}");
    assert_eq!(metric(&deploy.logs(), "ActionNeeded", "frontend"), 1.0, "the error metric, once");

    // A routine answer (a tag no service watches) tells nobody and counts nothing.
    let other = app.aws.push_image("todo-frontend", "dev", "frontend-dev").await;
    let ignored = deploy.invoke(&ecr_push_event("evt-dev", "todo-frontend", "dev", &other)).await.unwrap();
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    assert_eq!(sink.notifications().len(), 1);
    assert_eq!(metric(&deploy.logs(), "ActionNeeded", "frontend"), 1.0);
    deploy.stop().await;
}

/// The backend's task runs a second image, from another repository (its log router, mirrored
/// into this account's ECR under the stack's repository prefix, as every repository the deploy
/// role may read is): two entries name the one ECS service, and only the second has a smoke test.
fn two_entries(app: &str) -> String {
    format!(
        r#"[defaults]
cluster = "{CLUSTER}"

[[service]]
name = "log-router"
service = "todo-backend"
repository = "todo-log-router"
tags = ["stable"]
containers = ["log_router"]

[[service]]
name = "backend"
service = "todo-backend"
repository = "todo-backend"
tags = ["latest"]
containers = ["backend"]

[service.smoke]
url = "{app}api/"
attempts = 2
interval_ms = 100
timeout_ms = 2000
consecutive = 1

[[service.smoke.check]]
path = "todoItems"
status = 200
"#
    )
}

async fn deploy_and_complete(
    aws: &Aws,
    deploy: &FunctionProcess,
    verify: &FunctionProcess,
    seed: &str,
    standin: &TodoStandIn,
    behaviour: Behaviour,
) -> (String, String, Value) {
    let digest = aws.push_image("todo-backend", "latest", seed).await;
    standin.set(digest.as_str(), behaviour);
    let started = deploy.invoke(&ecr_push_event(seed, "todo-backend", "latest", &digest)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let event = ecs_deployment_event(seed, "todo-backend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    (dep, digest.to_string(), verify.invoke(&event).await.unwrap())
}

#[tokio::test]
async fn two_entries_for_one_ecs_service_are_judged_by_every_entry_s_smoke_test() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    let config = two_entries(&standin.url());
    let env = [("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str())];
    let deploy = start_function("deploy", &app.aws, &config, &env).await;
    let verify = start_function("verify", &app.aws, &config, &env).await;

    let (good, good_digest, verdict) =
        deploy_and_complete(&app.aws, &deploy, &verify, "backend-two-good", &standin, Behaviour::Good).await;
    assert_eq!(verdict["outcome"], "verified", "{verdict}");
    let rec = record(&app.aws, "todo-backend", &good).await;
    assert_eq!(rec["smoke"]["passed"], true, "tested by the second entry's checks: {rec}");

    let (broken, _, verdict) =
        deploy_and_complete(&app.aws, &deploy, &verify, "backend-two-broken", &standin, Behaviour::Broken).await;
    assert_eq!(verdict["outcome"], "rolled_back", "never \"no smoke test configured\": {verdict}");
    let rec = record(&app.aws, "todo-backend", &broken).await;
    assert_eq!(rec["status"], "rolled_back", "{rec}");
    assert_eq!(rec["smoke"]["passed"], false, "{rec}");
    assert!(!rec["reason"].as_str().unwrap().contains("no smoke test configured"), "{rec}");
    // Back on the verified build (a copy of its revision pinned to the digests it ran).
    let running = app.aws.service_task_definition(CLUSTER, "todo-backend").await;
    let images = app.aws.images_of(&running).await;
    let backend = images.iter().find(|(c, _)| c == "backend").expect("the backend container");
    assert!(backend.1.ends_with(&good_digest), "{images:?}");
    let rollback = rec["rollback_deployment"].as_str().expect("the rollback is recorded");
    assert!(app.aws.keys(BUCKET).await.iter().any(|k| k.contains(rollback)), "the rollback's own record");
    let told = sink.notifications();
    assert!(told.iter().any(|n| n["Subject"].as_str().unwrap().contains("ROLLED BACK")), "{told:#?}");
    deploy.stop().await;
    verify.stop().await;
}
