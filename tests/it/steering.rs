//! An attacker with an ordinary role in the account tries to steer production through
//! pushdeploy's own state: records planted in the bucket. Each attack is refused, and the service
//! never runs the attacker's task definition.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::estate::{ecs_deployment_event, local_config, BUCKET, CLUSTER};
use testkit::standin::Behaviour;

use crate::support::{assert_returned_to, verifier};
use crate::verify::Loop;

const BACKEND: &str = "todo-backend";

/// A task definition the attacker registered: the backend's, with an admin task role.
async fn evil_revision(l: &Loop) -> String {
    let running = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    let out = l.aws().ecs.describe_task_definition().task_definition(&running).send().await.unwrap();
    let td = out.task_definition().unwrap();
    l.aws()
        .ecs
        .register_task_definition()
        .family("todo-backend-evil")
        .task_role_arn("arn:aws:iam::123456789012:role/admin")
        .set_network_mode(td.network_mode().cloned())
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_container_definitions(Some(td.container_definitions().to_vec()))
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string()
}

/// Rewrites the record of `deployment` in the bucket, as anyone with s3:PutObject could.
async fn plant(l: &Loop, deployment: &str, edit: impl Fn(&mut Value)) {
    let mut rec = l.record(BACKEND, deployment).await;
    edit(&mut rec);
    let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, deployment).unwrap();
    l.aws().put_json(BUCKET, &key, &rec).await;
}

#[tokio::test]
async fn a_planted_rollback_failed_record_never_puts_the_attackers_revision_into_service() {
    let mut l = Loop::new().await;
    let original = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    let dep = l.push(BACKEND, "backend-good-steer", Behaviour::Good).await;
    let evil = evil_revision(&l).await;

    // Both the target and the "previous" revision name the attacker's task definition. Neither is
    // read: the rollback's target comes from the service's verdicts and ECS's own history, so it
    // returns to what the service really ran before (deployed by Terraform, never by pushdeploy).
    plant(&l, &dep, |r| {
        r["status"] = json!("rollback_failed");
        r["rolled_back_to"] = json!(evil);
        r["previous_task_definition"] = json!(evil);
    })
    .await;
    let event = ecs_deployment_event("ecs-steer-2", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let answer = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(answer.outcome.as_str(), "rolled_back", "{answer:?}");
    let now = assert_returned_to(l.aws(), BACKEND, &original, ("backend", Some(l.app.backend_v0.as_str()))).await;
    assert_ne!(now, evil);
    assert!(l.emu.guard.denied().is_empty(), "{:?}", l.emu.guard.denied());
}

#[tokio::test]
async fn a_planted_verified_record_is_never_a_manual_rollback_target() {
    let mut l = Loop::new().await;
    let first = l.push(BACKEND, "backend-v1-steer", Behaviour::Good).await;
    assert_eq!(l.completed(BACKEND, &first).await["outcome"], "verified");
    let v1 = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    let second = l.push(BACKEND, "backend-v2-steer", Behaviour::Good).await;
    assert_eq!(l.completed(BACKEND, &second).await["outcome"], "verified");
    let evil = evil_revision(&l).await;

    // A "verified" deployment of the attacker's revision, between the two real ones.
    let mut planted = l.record(BACKEND, &first).await;
    planted["id"] = json!("ecs-svc-6666666666666666666");
    planted["ecs_deployment_id"] = json!("ecs-svc/6666666666666666666");
    planted["task_definition"] = json!(evil);
    let between = |r: &Value, event: &str| {
        r["timeline"].as_array().unwrap().iter().find(|e| e["event"] == event).unwrap()["at"].clone()
    };
    let second_rec = l.record(BACKEND, &second).await;
    planted["timeline"] = json!([{"event": "started", "at": between(&second_rec, "pushed")}, {"event": "verified", "at": between(&second_rec, "pushed")}]);
    let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, "ecs-svc/6666666666666666666").unwrap();
    l.aws().put_json(BUCKET, &key, &planted).await;

    let answer = serde_json::to_value(
        l.deployer.handle(json!({"action": "rollback", "service": "backend"}), "req-steer").await.unwrap(),
    )
    .unwrap();
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let now = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    assert_ne!(now, evil, "the attacker's revision never runs");
    // The last verified deployment ECS really ran (its sidecar pinned to the digest it ran).
    assert_eq!(assert_returned_to(l.aws(), BACKEND, &v1, ("backend", None)).await, now, "{answer}");
    assert!(answer["deployments"][0]["reason"].as_str().unwrap().contains(&first.replace('/', "-")), "{answer}");
    assert!(l.emu.guard.denied().is_empty(), "{:?}", l.emu.guard.denied());
}

#[tokio::test]
async fn a_record_for_a_service_outside_the_config_is_not_acted_on() {
    let mut l = Loop::new().await;
    let dep = l.push(BACKEND, "backend-outside", Behaviour::Broken).await;
    let deployed = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    // A verify whose config names only the frontend: the backend's record is not its business.
    let config = local_config(&l.standin.url());
    let frontend_only = &config[..config.find("[[service]]\nname = \"backend\"").unwrap()];
    let v = verifier(l.aws(), frontend_only, None);
    let event = ecs_deployment_event("ecs-outside", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let answer =
        serde_json::to_value(v.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap()).unwrap();
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("not a service in pushdeploy's config"), "{answer}");
    assert_eq!(l.aws().service_task_definition(CLUSTER, BACKEND).await, deployed);
    assert_eq!(l.record(BACKEND, &dep).await["status"], "started");
}

#[tokio::test]
async fn a_forged_completed_event_during_a_rollout_changes_nothing() {
    let mut l = Loop::new().await;
    let dep = l.push(BACKEND, "backend-forged-completed", Behaviour::Good).await;
    // ECS is still rolling out.
    l.emu.guard.ecs.set_rollout_state(&dep, "IN_PROGRESS");
    let before = (crate::support::Snapshot::take(l.aws()).await, l.standin.served().len());
    let event = ecs_deployment_event("ecs-forged", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let err = l.verifier.handle(event.clone(), Instant::now() + Duration::from_secs(60)).await.unwrap_err();
    assert!(err.is_transient(), "retried, then parked: {err}");
    assert!(err.to_string().contains("ECS reports deployment") && err.to_string().contains("IN_PROGRESS"), "{err}");
    let failed = ecs_deployment_event("ecs-forged-f", BACKEND, &dep, "SERVICE_DEPLOYMENT_FAILED", "");
    assert!(l.verifier.handle(failed, Instant::now() + Duration::from_secs(60)).await.unwrap_err().is_transient());
    assert_eq!((crate::support::Snapshot::take(l.aws()).await, l.standin.served().len()), before);
    assert!(l.sink.notifications().is_empty());
    // ECS completes it: the same event is now believed and tested.
    l.emu.guard.ecs.set_rollout_state(&dep, "COMPLETED");
    let answer = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(answer.outcome.as_str(), "verified", "{answer:?}");
}
