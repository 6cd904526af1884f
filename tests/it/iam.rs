//! IAM as AWS applies it: every call the functions make is checked against their roles in
//! template.yaml by the guard in front of moto (see testkit's `guard`), and an error a person must
//! act on reaches the record, the topic and the function's error result.

use std::time::{Duration, Instant};

use pushdeploy::aws::sns::Notifier;
use serde_json::Value;
use testkit::estate::{ecs_deployment_event, BUCKET, CLUSTER};
use testkit::guard::GuardedCall;
use testkit::iam::{Policies, Role};
use testkit::standin::Behaviour;

use crate::verify::Loop;

/// A role's calls of `operation` on resources containing `resource`.
fn calls<'a>(all: &'a [GuardedCall], role: Role, operation: &str, resource: &str) -> Vec<&'a GuardedCall> {
    all.iter()
        .filter(|c| {
            c.role == role && c.operation == operation && c.checks.iter().any(|(k, _)| k.resource.contains(resource))
        })
        .collect()
}

fn sid(statement: &Value) -> &str {
    statement["Sid"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_first_push_its_rollback_and_a_manual_rollback_run_within_the_template_roles() {
    let mut l = Loop::new().await;
    // The very first push of todo-backend: no lease object exists yet.
    let good = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &good).await["outcome"], "verified");
    let broken = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    assert_eq!(l.completed("todo-backend", &broken).await["outcome"], "rolled_back");
    let manual = l.deployer.handle(serde_json::json!({"action": "rollback", "service": "backend"}), "req").await;
    assert!(manual.is_ok(), "{manual:?}");

    let seen = l.emu.guard.calls();
    assert_eq!(l.emu.guard.denied().len(), 0, "denied: {:#?}", l.emu.guard.denied());
    // The first lease read was a 404 (the role may list the bucket), not S3's 403.
    let first_lease = calls(&seen, Role::Deploy, "s3:GetObject", "leases/todo-cluster/todo-backend.json");
    assert!(!first_lease.is_empty() && first_lease.iter().all(|c| c.allowed && !c.missing_key_denied));
    // The automatic rollback read and took the service lease, then moved the service.
    for op in ["s3:GetObject", "s3:PutObject"] {
        let v = calls(&seen, Role::Verify, op, "leases/todo-cluster/todo-backend.json");
        assert!(!v.is_empty(), "verify never made {op} on the lease");
        assert!(v.iter().all(|c| c.checks[0].1.allowed_by == ["ServiceLeases"]), "{v:#?}");
    }
    assert!(!calls(&seen, Role::Verify, "ecs:UpdateService", "service/todo-cluster/todo-backend").is_empty());
    // The manual rollback listed the service's records.
    assert!(!calls(&seen, Role::Deploy, "s3:ListObjectsV2", "pushdeploy-artifacts").is_empty());
    // RegisterTaskDefinition passed the task and execution roles to ECS tasks only.
    let passes: Vec<_> = seen.iter().flat_map(|c| &c.checks).filter(|(k, _)| k.action == "iam:PassRole").collect();
    assert!(passes.len() >= 4, "{passes:#?}");
    assert!(passes.iter().all(|(k, v)| v.allowed && k.context["iam:PassedToService"] == "ecs-tasks.amazonaws.com"));
}

#[tokio::test]
async fn a_rollback_denied_by_iam_is_rollback_failed_on_the_record_the_topic_and_the_error() {
    let mut l = Loop::new().await;
    let good = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &good).await["outcome"], "verified");
    let broken = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    let broken_td = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    // The verify role as the template had it: records only, no lease.
    l.emu.guard.set_policies(Policies::template().without(Role::Verify, |s| sid(s) == "ServiceLeases"));
    let event = ecs_deployment_event("ecs-denied", "todo-backend", &broken, "SERVICE_DEPLOYMENT_COMPLETED", "");

    let err = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap_err();

    assert!(err.to_string().contains("AccessDenied"), "{err}");
    let rec = l.record("todo-backend", &broken).await;
    assert_eq!(rec["status"], "rollback_failed");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("pushdeploy cannot roll back backend"), "{reason}");
    assert!(reason.contains("leases/todo-cluster/todo-backend.json") && reason.contains("AccessDenied"), "{reason}");
    assert!(reason.contains("is still serving"), "{reason}");
    let told = l.sink.notifications();
    let last = told.last().expect("a notification");
    assert!(last["Subject"].as_str().unwrap().starts_with("pushdeploy ROLLBACK FAILED"), "{last}");
    assert!(last["Message"].as_str().unwrap().contains("pushdeploy cannot roll back backend"));
    // Nothing moved: the broken revision still runs, and the guard saw the denied lease read.
    assert_eq!(l.aws().service_task_definition(CLUSTER, "todo-backend").await, broken_td);
    assert!(l.emu.guard.denied().iter().any(|c| c.role == Role::Verify && c.operation == "s3:GetObject"));
}

#[tokio::test]
async fn a_permanent_error_in_verify_reaches_the_record_and_the_topic_once_and_fails_the_invocation() {
    let mut l = Loop::new().await;
    let dep = l.push("todo-frontend", "frontend-good", Behaviour::Good).await;
    l.emu.guard.set_policies(Policies::template().without(Role::Verify, |s| {
        // TheClustersServicesWithShortArns (service/* of this cluster) would allow it too.
        matches!(sid(s), "CheckAndRollBackTheClustersServices" | "TheClustersServicesWithShortArns")
    }));
    let event = ecs_deployment_event("ecs-no-ecs", "todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let before = l.sink.notifications().len();

    let first = l.verifier.handle(event.clone(), Instant::now() + Duration::from_secs(60)).await;
    let retried = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await;

    let err = first.unwrap_err();
    assert!(!err.is_transient() && err.is_access_denied(), "{err}");
    assert!(retried.is_err(), "the retry fails the same way");
    let rec = l.record("todo-frontend", &dep).await;
    assert_eq!(rec["status"], "started", "neither verified nor rolled back");
    assert!(rec["reason"].as_str().unwrap().contains("ECS DescribeServices"), "{}", rec["reason"]);
    assert_eq!(rec["timeline"].as_array().unwrap().last().unwrap()["event"], "error");
    let told: Vec<Value> = l.sink.notifications().into_iter().skip(before).collect();
    assert_eq!(told.len(), 1, "one notification for the error, not one per retry: {told:#?}");
    assert!(told[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED: frontend"), "{}", told[0]);
    assert!(told[0]["Message"].as_str().unwrap().contains("AccessDenied"));
}

#[tokio::test]
async fn without_list_bucket_the_first_push_meets_s3s_403_and_is_notified_and_failed() {
    let mut l = Loop::new().await;
    l.deployer.notifier = Some(Notifier::new(l.aws().as_role(Role::Deploy).sns, l.sink.topic_arn.clone()));
    // The deploy role as the template had it: s3:ListBucket only under an s3:prefix condition.
    l.emu.guard.set_policies(Policies::template().without(Role::Deploy, |s| sid(s) == "ListTheBucket"));
    let before = l.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    let digest = l.aws().push_image("todo-frontend", "latest", "frontend-first").await;
    let event = testkit::estate::ecr_push_event("push-first", "todo-frontend", "latest", &digest);

    let err = l.deployer.handle(event, "req").await.unwrap_err();

    assert!(err.is_access_denied(), "{err}");
    assert!(err.to_string().contains("leases/todo-cluster/todo-frontend.json"), "{err}");
    let denied = l.emu.guard.denied();
    assert!(denied.iter().any(|c| c.missing_key_denied), "the missing lease read as 403: {denied:#?}");
    assert_eq!(l.aws().service_task_definition(CLUSTER, "todo-frontend").await, before, "nothing deployed");
    assert!(l.aws().keys(BUCKET).await.iter().all(|k| !k.starts_with("deployments/")));
    let told = l.sink.notifications();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED"), "{}", told[0]);
    assert!(told[0]["Message"].as_str().unwrap().contains("nothing was deployed"));
}

#[tokio::test]
async fn without_the_digests_it_ran_a_rollback_to_a_tag_is_refused_loudly_not_run() {
    let mut l = Loop::new().await;
    // deploy may not read the service's revisions: the digests the service ran stay unknown.
    l.emu.guard.set_policies(Policies::template().without(Role::Deploy, |s| {
        // TheClustersServicesWithShortArns (service/* of this cluster) would allow it too.
        matches!(sid(s), "ReadWhatTheServiceRan" | "TheClustersServicesWithShortArns")
    }));
    let broken = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    let broken_td = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert!(l.record("todo-backend", &broken).await.get("previous_digests").is_none());
    let event = ecs_deployment_event("ecs-unpinned", "todo-backend", &broken, "SERVICE_DEPLOYMENT_COMPLETED", "");
    // verify takes the digests from ECS's own history, never from the record: here ECS's
    // revisions name no digest (as for a deployment ECS resolved none for).
    l.emu.guard.set_fixture(
        "ecs:DescribeServiceRevisions",
        std::sync::Arc::new(|_req, mut answer| {
            for r in answer["serviceRevisions"].as_array_mut().into_iter().flatten() {
                r["containerImages"] = serde_json::json!([]);
            }
            answer
        }),
    );

    let err = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap_err();

    let rec = l.record("todo-backend", &broken).await;
    assert_eq!(rec["status"], "rollback_failed", "{err}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("backend (") && reason.contains("by tag and the digest it ran is unknown"), "{reason}");
    assert_eq!(l.aws().service_task_definition(CLUSTER, "todo-backend").await, broken_td, "not rolled onto the tag");
    assert!(l.sink.notifications().last().unwrap()["Subject"]
        .as_str()
        .unwrap()
        .starts_with("pushdeploy ROLLBACK FAILED"));
}

#[tokio::test]
async fn access_denied_outside_a_rollout_fails_as_permanent_access_denied_is_told_and_holds_nothing() {
    let mut l = Loop::new().await;
    l.deployer.notifier = Some(Notifier::new(l.aws().as_role(Role::Deploy).sns, l.sink.topic_arn.clone()));
    let before = l.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    let lease_is_free = |l: &Loop| {
        let aws = l.aws().clone();
        async move {
            let key = pushdeploy::domain::lease::lease_key(CLUSTER, "todo-frontend");
            if !aws.keys(BUCKET).await.contains(&key) {
                return true;
            }
            let lease: pushdeploy::domain::lease::Lease =
                serde_json::from_slice(&aws.object(BUCKET, &key).await).unwrap();
            lease.released || lease.expires_at_ms <= pushdeploy::domain::lease::now_ms()
        }
    };

    // ECR's DescribeImages denied: a push, and a manual deploy of a tag.
    l.emu.guard.set_policies(Policies::template().without(Role::Deploy, |s| sid(s) == "ResolveTags"));
    let digest = l.aws().push_image("todo-frontend", "latest", "frontend-denied").await;
    let push = testkit::estate::ecr_push_event("push-denied", "todo-frontend", "latest", &digest);
    let manual = serde_json::json!({"action": "deploy", "service": "frontend", "tag": "latest"});
    for (what, event) in [("push", push), ("manual deploy", manual)] {
        let err = l.deployer.handle(event, "req").await.unwrap_err();
        assert_eq!(err.error_type(), "Permanent.AccessDenied", "{what}: {err}");
        assert!(err.to_string().contains("ECR DescribeImages"), "{what}: {err}");
        assert!(lease_is_free(&l).await, "{what}: the service is not held");
    }
    // A manual rollback whose records cannot be listed.
    l.emu.guard.set_policies(Policies::template().without(Role::Deploy, |s| sid(s) == "ListTheBucket"));
    let err =
        l.deployer.handle(serde_json::json!({"action": "rollback", "service": "frontend"}), "req").await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.AccessDenied", "{err}");
    assert!(lease_is_free(&l).await, "the rollback handed the lease over");

    assert_eq!(l.aws().service_task_definition(CLUSTER, "todo-frontend").await, before, "nothing deployed");
    let told = l.sink.notifications();
    assert_eq!(told.len(), 3, "each one told: {told:#?}");
    assert!(told.iter().all(|t| t["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED")), "{told:#?}");
    assert!(told.iter().all(|t| t["Message"].as_str().unwrap().contains("AccessDenied")), "{told:#?}");
}

#[tokio::test]
async fn a_manual_rollback_of_a_service_that_vanished_is_rejected_and_told_not_retried() {
    let mut l = Loop::new().await;
    l.deployer.notifier = Some(Notifier::new(l.aws().as_role(Role::Deploy).sns, l.sink.topic_arn.clone()));
    l.aws().ecs.delete_service().cluster(CLUSTER).service("todo-frontend").force(true).send().await.unwrap();

    let answer = l.deployer.handle(serde_json::json!({"action": "rollback", "service": "frontend"}), "req").await;

    let answer = serde_json::to_value(answer.expect("a permanent refusal is answered, not retried")).unwrap();
    assert_eq!(answer["deployments"][0]["outcome"], "rejected", "{answer}");
    let told = l.sink.notifications();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED: frontend"), "{}", told[0]);
}
