//! The attacks of an ordinary role in the account, played against the built `deploy` and `verify`
//! binaries under the Lambda runtime API: planted records, forged ECS events and hook payloads,
//! a hostile build's traversal id, an unreviewed base revision. Each is refused and production
//! never runs what the attacker chose.

use aws_sdk_ecs::types::KeyValuePair;
use serde_json::{json, Map, Value};
use testkit::estate::{
    blue_green_config, ecr_push_event, ecs_deployment_event, family_base_config, hook_invocation, local_config, Aws,
    HookCall, TodoApp, BUCKET, CLUSTER,
};
use testkit::guard::Emulator;
use testkit::standin::{Behaviour, TodoStandIn};

use crate::function::start_function;
use crate::support::{record_of, Snapshot};

const BACKEND: &str = "todo-backend";

struct Estate {
    emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
}

impl Estate {
    async fn new() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        Self { emu, app, standin }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }
}

/// The backend's running revision with an admin task role, registered by someone else.
async fn evil_revision(aws: &Aws) -> String {
    let running = aws.service_task_definition(CLUSTER, BACKEND).await;
    aws.signing_as("developer")
        .register_revision_like(
            &running,
            |td| td.task_role_arn = Some("arn:aws:iam::123456789012:role/admin".into()),
            Vec::new(),
        )
        .await
}

#[tokio::test]
async fn the_verify_binary_believes_no_planted_record_and_no_forged_event() {
    let e = Estate::new().await;
    let config = local_config(&e.standin.url());
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let verify = start_function("verify", e.aws(), &config, &[]).await;
    let original = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    let digest = e.aws().push_image(BACKEND, "latest", "backend-bin-steer").await;
    let started = deploy.invoke(&ecr_push_event("evt-bin-steer", BACKEND, "latest", &digest)).await.unwrap();
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let deployed = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    let completed = ecs_deployment_event("ecs-bin-steer", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");

    // A COMPLETED while ECS still rolls out: the invocation fails (retried, then parked), nothing changes.
    e.emu.guard.ecs.set_rollout_state(&dep, "IN_PROGRESS");
    let before = (Snapshot::take(e.aws()).await, e.standin.served().len());
    let err = verify.invoke(&completed).await.unwrap_err();
    assert!(err.to_string().contains("is not confirmed"), "{err}");
    assert_eq!((Snapshot::take(e.aws()).await, e.standin.served().len()), before);

    // A record rewritten to "rollback_failed" towards the attacker's revision.
    e.emu.guard.ecs.set_rollout_state(&dep, "COMPLETED");
    let evil = evil_revision(e.aws()).await;
    let mut rec = record_of(e.aws(), BACKEND, &dep).await;
    rec["status"] = json!("rollback_failed");
    rec["rolled_back_to"] = json!(evil);
    rec["previous_task_definition"] = json!(evil);
    let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, &dep).unwrap();
    e.aws().put_json(BUCKET, &key, &rec).await;
    // Neither planted ARN is read: the rollback returns to what ECS's history shows the service
    // ran before (Terraform's revision), never to the attacker's.
    let answer = verify.invoke(&completed).await.unwrap();
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let now = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    assert!(now != evil && now != deployed, "{now}");
    crate::support::pinned_copy_of(e.aws(), &now, &original).await.unwrap();
    let rec = record_of(e.aws(), BACKEND, &dep).await;
    assert_eq!((rec["status"].as_str(), rec["rolled_back_to"].as_str()), (Some("rolled_back"), Some(now.as_str())));
    verify.stop().await;
    deploy.stop().await;
    assert!(e.emu.guard.denied().is_empty(), "{:?}", e.emu.guard.denied());
}

#[tokio::test]
async fn the_verify_binary_checks_only_what_ecs_confirms_and_keeps_its_own_tally() {
    let e = Estate::new().await;
    let config = blue_green_config(&e.standin.url(), &e.standin.test_url(), 5, 2);
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let verify = start_function("verify", e.aws(), &config, &[]).await;
    let blue = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    e.standin.hold_production(BACKEND, &blue);
    let digest = e.aws().push_image(BACKEND, "latest", "backend-bin-hook").await;
    let started = deploy.invoke(&ecr_push_event("evt-bin-hook", BACKEND, "latest", &digest)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let (deployment, revision) = e.aws().newest_service_deployment(CLUSTER, BACKEND).await;
    e.emu.guard.ecs.set_service_deployment(&deployment, "IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
    let call = |stage: &'static str, details: Option<Value>| {
        hook_invocation(&HookCall {
            execution_id: "exec-bin",
            stage,
            service: BACKEND,
            deployment: &deployment,
            revision: &revision,
            production: None,
            hook_details: details,
        })
    };

    // A stage ECS is not at: nothing checked, nothing written.
    let before = (Snapshot::take(e.aws()).await, e.standin.served().len());
    let answer = verify.invoke(&call("POST_PRODUCTION_TRAFFIC_SHIFT", None)).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer}");
    assert!(answer["hookDetails"]["pushdeploy"]["reason"].as_str().unwrap().contains("ECS does not confirm"));
    assert_eq!((Snapshot::take(e.aws()).await, e.standin.served().len()), before);

    // A forged count of one passing round already in: one round is still one round.
    let rec_id = record_of(e.aws(), BACKEND, &dep).await["id"].as_str().unwrap().to_string();
    let mut forged = Map::new();
    forged.insert(
        "pushdeploy".into(),
        json!({"check": "POST_TEST_TRAFFIC_SHIFT", "deployment": rec_id, "rounds": 1, "streak": 1, "started_ms": pushdeploy::domain::timing::now_ms()}),
    );
    let answer = verify.invoke(&call("POST_TEST_TRAFFIC_SHIFT", Some(Value::Object(forged)))).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer}");
    assert_eq!(record_of(e.aws(), BACKEND, &dep).await["hook_tally"]["rounds"], 1);
    verify.stop().await;
    deploy.stop().await;
}

#[tokio::test]
async fn the_verify_binary_never_aims_the_probes_delete_outside_the_smoke_url() {
    let e = Estate::new().await;
    let config = local_config(&e.standin.url());
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let verify = start_function("verify", e.aws(), &config, &[]).await;
    let digest = e.aws().push_image(BACKEND, "latest", "backend-bin-traversal").await;
    e.standin.set(digest.as_str(), Behaviour::AnswersId("../../admin/users/1"));
    let started = deploy.invoke(&ecr_push_event("evt-bin-trav", BACKEND, "latest", &digest)).await.unwrap();
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let answer = verify
        .invoke(&ecs_deployment_event("ecs-bin-trav", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED", ""))
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let served = e.standin.served();
    assert!(served.iter().all(|s| s.path.starts_with("/api/")), "{served:?}");
    assert!(!served.iter().any(|s| s.method == "DELETE"), "no clean-up sent: {served:?}");
    assert!(!answer.to_string().contains("admin/users"), "the id is never echoed: {answer}");
    verify.stop().await;
    deploy.stop().await;
}

#[tokio::test]
async fn the_deploy_binary_copies_no_revision_an_untrusted_principal_registered() {
    let e = Estate::new().await;
    let config = family_base_config(&local_config(&e.standin.url()));
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let trusted = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    let theirs = e
        .aws()
        .signing_as("developer")
        .register_revision_like(
            &trusted,
            |td| {
                td.task_role_arn = Some("arn:aws:iam::123456789012:role/admin".into());
                let c = &mut td.container_definitions.as_mut().unwrap()[0];
                c.environment = Some(vec![KeyValuePair::builder().name("TODO_ENV").value("debug").build()]);
            },
            Vec::new(),
        )
        .await;
    let digest = e.aws().push_image(BACKEND, "latest", "backend-bin-base").await;
    let answer = deploy.invoke(&ecr_push_event("evt-bin-base", BACKEND, "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let running = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    assert_ne!(running, theirs);
    let out = e.aws().ecs.describe_task_definition().task_definition(&running).send().await.unwrap();
    let td = out.task_definition().unwrap();
    assert_ne!(td.task_role_arn(), Some("arn:aws:iam::123456789012:role/admin"), "not the developer's task role");
    let c = &td.container_definitions()[0];
    assert!(c.image().unwrap().ends_with(digest.as_str()));
    assert!(!c.environment().iter().any(|kv| kv.value() == Some("debug")), "not the developer's environment");
    assert!(answer.to_string().contains("passed over"), "{answer}");
    deploy.stop().await;
}

#[tokio::test]
async fn the_deploy_binary_refuses_another_accounts_push_before_touching_a_lease() {
    let e = Estate::new().await;
    let config = local_config(&e.standin.url());
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let digest = e.aws().push_image(BACKEND, "latest", "backend-bin-foreign").await;
    let mut event = ecr_push_event("evt-bin-foreign", BACKEND, "latest", &digest);
    event["account"] = json!("999999999999");
    // A busy service: another rollout holds its lease, which the foreign push must not wait on.
    let (held, _) = crate::support::lease_held_by("another-rollout");
    e.aws().put_json(BUCKET, &pushdeploy::domain::lease::lease_key(CLUSTER, BACKEND), &held).await;
    let before = Snapshot::take(e.aws()).await;
    let started = std::time::Instant::now();
    let answer = deploy.invoke(&event).await.unwrap();
    assert_eq!(answer["outcome"], "rejected", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains("999999999999") && reason.contains("123456789012"), "names both accounts: {reason}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "answered without waiting on the lease");
    assert_eq!(Snapshot::take(e.aws()).await, before, "no object, revision or deployment changed");
    // Neither read nor written: the lease (the function's init reads its config and warms its
    // connections with a describe each, before any event).
    let lease_calls: Vec<String> = e
        .emu
        .guard
        .calls()
        .into_iter()
        .filter(|c| c.role == testkit::iam::Role::Deploy)
        .flat_map(|c| c.checks.into_iter().map(|(check, _)| format!("{} {}", check.action, check.resource)))
        .filter(|c| c.contains("/leases/") || c.starts_with("ecs:UpdateService") || c.starts_with("ecs:Register"))
        .collect();
    assert!(lease_calls.is_empty(), "the refusal touched no lease and no service: {lease_calls:?}");
}
