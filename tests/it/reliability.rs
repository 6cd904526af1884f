//! Real delivery: duplicates, disorder, concurrency and crashes converge to one correct rollout.

use std::time::Duration;

use futures_util::future::join_all;
use pushdeploy::domain::lease::{lease_key, Lease};
use serde_json::Value;
use testkit::estate::{registry, BUCKET, CLUSTER};

use crate::support::{World, TODO_CONFIG};

async fn records(w: &World, service: &str) -> Vec<String> {
    w.aws()
        .keys(BUCKET)
        .await
        .into_iter()
        .filter(|k| k.starts_with(&format!("deployments/{CLUSTER}/{service}/")))
        .collect()
}

async fn primary_deployment(w: &World, service: &str) -> String {
    let out = w.aws().ecs.describe_services().cluster(CLUSTER).services(service).send().await.unwrap();
    let d = out.services()[0].deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap();
    d.id().unwrap().to_string()
}

/// True when every lease in the bucket has been let go of by its holder.
async fn leases_released(w: &World) -> bool {
    let mut all = true;
    for key in w.aws().keys(BUCKET).await.into_iter().filter(|k| k.starts_with("leases/")) {
        let lease: Lease = serde_json::from_slice(&w.aws().object(BUCKET, &key).await).unwrap();
        all &= lease.released;
    }
    all
}

/// Delivers like Lambda's async retries: an invocation that fails is tried again, under its
/// own request id (each delivery is an invocation of its own; Lambda's retries keep its id).
async fn deliver(w: &World, event: &Value) -> Value {
    static DELIVERIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let request_id = format!("delivery-{}", DELIVERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    for _ in 0..50 {
        match w.deployer.handle(event.clone(), &request_id).await {
            Ok(s) => return serde_json::to_value(s).unwrap(),
            Err(e) => {
                assert!(e.is_transient(), "only transient failures are retried: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("never converged: {event}");
}

#[tokio::test]
async fn the_same_event_100_times_and_20_at_once_rolls_out_once() {
    let w = World::new(TODO_CONFIG).await;
    let (event, digest) = w.push("evt-dup", "todo-frontend", "latest", "frontend-v1").await;

    // Twenty deliveries: twenty invocations, each with its own request id.
    let at_once = join_all((0..20).map(|i| {
        let (d, e) = (&w.deployer, event.clone());
        async move { d.handle(e, &format!("req-{i}")).await }
    }))
    .await;
    let outcomes: Vec<String> = at_once
        .iter()
        .map(|r| match r {
            Ok(s) => serde_json::to_value(s).unwrap()["outcome"].as_str().unwrap().to_string(),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "started").count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o == "started" || o == "unchanged"), "{outcomes:?}");
    for _ in 0..100 {
        assert_eq!(deliver(&w, &event).await["outcome"], "unchanged");
    }

    assert_eq!(w.aws().revisions("todo-frontend").await.len(), 2, "exactly one new revision");
    let recs = records(&w, "todo-frontend").await;
    assert_eq!(recs.len(), 1, "exactly one record: {recs:?}");
    let primary = primary_deployment(&w, "todo-frontend").await;
    assert_eq!(
        recs[0],
        pushdeploy::domain::record::record_key(CLUSTER, "todo-frontend", &primary).unwrap(),
        "exactly one UpdateService: the record's"
    );
    let td = w.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    assert_eq!(w.aws().images_of(&td).await[0].1, format!("{}/todo-frontend@{digest}", registry()));
    assert!(leases_released(&w).await, "every lease was released");
}

#[tokio::test]
async fn pushes_of_different_tags_converge_on_the_newest_whatever_the_order() {
    let w = World::new(TODO_CONFIG).await;
    let (older, _) = w.push("evt-v1", "todo-backend", "v1.0.0", "backend-v1").await;
    // ECR's imagePushedAt has one-second resolution here: keep the pushes apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (newer, newest) = w.push("evt-v2", "todo-backend", "v2.0.0", "backend-v2").await;

    // Newest first, then the older one arrives late: the older is superseded.
    assert_eq!(deliver(&w, &newer).await["outcome"], "started");
    let late = deliver(&w, &older).await;
    assert_eq!(late["outcome"], "superseded", "{late}");
    assert!(late["reason"].as_str().unwrap().contains("newer push already deployed"), "{late}");
    let td = w.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert!(w.aws().images_of(&td).await[0].1.ends_with(newest.as_str()));

    // Both at once against a fresh service: serialised by the lease, the newest still wins.
    let w = World::new(TODO_CONFIG).await;
    let (older, _) = w.push("evt-a", "todo-backend", "v1.0.0", "backend-v1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (newer, newest) = w.push("evt-b", "todo-backend", "v2.0.0", "backend-v2").await;
    let (a, b) = tokio::join!(deliver(&w, &older), deliver(&w, &newer));
    let td = w.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert!(w.aws().images_of(&td).await[0].1.ends_with(newest.as_str()), "{a} {b}");
    assert_eq!(b["outcome"], "started");
    assert!(["started", "superseded"].contains(&a["outcome"].as_str().unwrap()), "{a}");
}

#[tokio::test]
async fn a_live_lease_holds_other_rollouts_and_an_expired_one_is_taken_over() {
    let w = World::new(TODO_CONFIG).await;
    let (event, _) = w.push("evt-l", "todo-frontend", "latest", "frontend-v1").await;
    let key = lease_key(CLUSTER, "todo-frontend");
    let (live, now_ms) = crate::support::lease_held_by("someone-else");
    w.aws().put_json(BUCKET, &key, &live).await;
    let before = w.snapshot().await;
    // Waited for until the wait bound of the invocation's deadline, then a transient failure.
    let deadline = pushdeploy::domain::timing::Deadline::after(Duration::from_secs(6));
    let err = w.deployer.handle_before(event.clone(), "req", deadline).await.unwrap_err();
    assert!(err.is_transient() && err.to_string().contains("someone-else"), "{err}");
    assert_eq!(err.error_type(), "Transient.LeaseBusy");
    // It polled until the bound (within one pause of it), and stopped well before the deadline.
    let now = std::time::Instant::now();
    assert!(now + Duration::from_millis(1100) >= deadline.wait_until(), "it waited for the lease");
    assert!(now < deadline.work_until(), "and gave up with time left to answer");
    assert_eq!(w.snapshot().await, before, "nothing changed while someone else held the service");

    let expired = Lease { expires_at_ms: now_ms - 1, ..live };
    w.aws().put_json(BUCKET, &key, &expired).await;
    assert_eq!(deliver(&w, &event).await["outcome"], "started");
}

/// Deploys `event`, then makes it as if the invocation died right after UpdateService: no record,
/// no artifacts, and its lease (carrying the rollout in flight) left behind, expired. A push's
/// lease is taken before its revision is registered (`revision_known` false); a manual action's
/// or a force-new-deployment's names the revision.
async fn crash_after_update_service(w: &World, event: &Value, revision_known: bool) -> String {
    let answer = deliver(w, event).await;
    assert_eq!(answer["outcome"], "started");
    let record_key = answer["deployments"][0]["written"][2].as_str().unwrap().to_string();
    let mut pending: pushdeploy::domain::record::DeploymentRecord =
        serde_json::from_slice(&w.aws().object(BUCKET, &record_key).await).unwrap();
    for key in w.aws().keys(BUCKET).await {
        w.aws().s3.delete_object().bucket(BUCKET).key(&key).send().await.unwrap();
    }
    pending.id.clear();
    pending.ecs_deployment_id.clear();
    if !revision_known {
        pending.task_definition.clear();
        pending.containers.clear();
    }
    let stale = Lease {
        holder: event["id"].as_str().unwrap().into(),
        invocation: None,
        image_uri: pending.image_uri.clone(),
        expires_at_ms: 1,
        pending: Some(pending),
        released: false,
        task_definition: None,
    };
    let key = lease_key(CLUSTER, "todo-frontend");
    w.aws().put_json(BUCKET, &key, &stale).await;
    record_key
}

async fn assert_recovered(w: &World, record_key: &str) {
    assert_eq!(w.aws().revisions("todo-frontend").await.len(), 2, "the rollout itself is not repeated");
    let rec: Value = serde_json::from_slice(&w.aws().object(BUCKET, record_key).await).unwrap();
    assert_eq!(rec["ecs_deployment_id"], primary_deployment(w, "todo-frontend").await.as_str());
    let running = w.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    assert_eq!(rec["task_definition"], running.as_str(), "the record names the revision the service runs");
    assert_eq!(rec["containers"], serde_json::json!(["frontend"]));
    let events: Vec<&str> = rec["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events.last(), Some(&"recovered"));
    assert!(w
        .aws()
        .keys(BUCKET)
        .await
        .contains(&"imagedefinitions/todo-cluster/todo-frontend/imagedefinitions.json".to_string()));
    assert!(leases_released(w).await, "the lease was released after recovery");
}

#[tokio::test]
async fn a_crash_between_update_service_and_the_record_is_finished_by_the_retry() {
    let w = World::new(TODO_CONFIG).await;
    let (event, _) = w.push("evt-crash", "todo-frontend", "latest", "frontend-v1").await;
    let record_key = crash_after_update_service(&w, &event, false).await;
    let retry = deliver(&w, &event).await;
    assert_eq!(retry["outcome"], "unchanged", "{retry}");
    assert_recovered(&w, &record_key).await;
}

#[tokio::test]
async fn a_crashed_rollout_is_finished_even_by_an_event_that_deploys_nothing() {
    let w = World::new(TODO_CONFIG).await;
    let (older, _) = w.push("evt-older", "todo-frontend", "latest", "frontend-v0b").await;
    let (event, _) = w.push("evt-crash2", "todo-frontend", "latest", "frontend-v1").await;
    let record_key = crash_after_update_service(&w, &event, true).await;
    // The next thing to arrive is a late, superseded push: it takes the expired lease, so it must finish the record.
    let late = deliver(&w, &older).await;
    assert_eq!(late["outcome"], "superseded", "{late}");
    assert_recovered(&w, &record_key).await;
}

/// Every answer of a batch of concurrent invocations, failing the test on any error.
async fn all_answer(results: Vec<Result<pushdeploy::rules::outcome::Summary, pushdeploy::Error>>) -> Vec<Value> {
    results
        .into_iter()
        .map(|r| serde_json::to_value(r.expect("every invocation answers: a busy service is waited for")).unwrap())
        .collect()
}

#[tokio::test]
async fn two_pushes_for_one_service_at_once_on_two_instances_both_answer_and_the_newest_runs() {
    let w = World::new(TODO_CONFIG).await;
    let other_instance = crate::support::deployer(w.aws(), TODO_CONFIG);
    // v1.4.2 first, then latest: both current for their tags, both matched by the backend.
    let (older, _) = w.push("evt-old", "todo-backend", "v1.4.2", "backend-v142").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // ECR push times have one-second resolution
    let (newer, newest) = w.push("evt-new", "todo-backend", "latest", "backend-v15").await;

    let (a, b) = tokio::join!(w.deployer.handle(older, "i1"), other_instance.handle(newer, "i2"));
    let answers = all_answer(vec![a, b]).await;

    let outcomes: Vec<&str> = answers.iter().map(|a| a["deployments"][0]["outcome"].as_str().unwrap()).collect();
    let td = w.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert!(w.aws().images_of(&td).await[0].1.ends_with(newest.as_str()), "the newest push runs: {outcomes:?}");
    // Each push has its record, or its truthful superseded.
    let started = outcomes.iter().filter(|o| **o == "started").count();
    assert!(outcomes.iter().all(|o| matches!(*o, "started" | "superseded")), "{outcomes:?}");
    assert_eq!(records(&w, "todo-backend").await.len(), started);
    assert!(leases_released(&w).await);
}

#[tokio::test]
async fn latest_and_a_version_tag_of_one_digest_pushed_at_once_roll_out_once() {
    let w = World::new(TODO_CONFIG).await;
    let other_instance = crate::support::deployer(w.aws(), TODO_CONFIG);
    let (latest, digest) = w.push("evt-latest", "todo-backend", "latest", "backend-v2").await;
    // CI tags the same build twice: same manifest, second tag.
    let version_digest = w.aws().push_image("todo-backend", "v2.0.0", "backend-v2").await;
    assert_eq!(version_digest, digest);
    let version = testkit::estate::ecr_push_event("evt-version", "todo-backend", "v2.0.0", &digest);

    let (a, b) = tokio::join!(w.deployer.handle(latest, "i1"), other_instance.handle(version, "i2"));
    let answers = all_answer(vec![a, b]).await;

    let mut outcomes: Vec<&str> = answers.iter().map(|a| a["deployments"][0]["outcome"].as_str().unwrap()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["started", "unchanged"], "{answers:?}");
    let td = w.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert!(w.aws().images_of(&td).await[0].1.ends_with(digest.as_str()));
    assert_eq!(records(&w, "todo-backend").await.len(), 1, "one rollout, one record");
}

#[tokio::test]
async fn lambdas_retry_of_an_invocation_that_died_adopts_its_live_lease_at_once() {
    let w = World::new(TODO_CONFIG).await;
    let (event, _) = w.push("evt-oom", "todo-frontend", "latest", "frontend-v1").await;
    let record_key = crash_after_update_service(&w, &event, false).await;
    // The invocation died (out of memory) a second into its deadline: its lease is still live.
    let key = lease_key(CLUSTER, "todo-frontend");
    let mut lease: Lease = serde_json::from_slice(&w.aws().object(BUCKET, &key).await).unwrap();
    lease.invocation = Some("req-oom".into());
    lease.expires_at_ms = pushdeploy::domain::lease::now_ms() + 30_000;
    w.aws().put_json(BUCKET, &key, &lease).await;

    // A duplicate delivery of the event (another invocation) cannot tell the holder died: it
    // answers `unchanged` and changes nothing.
    let dup = serde_json::to_value(w.deployer.handle(event.clone(), "req-dup").await.unwrap()).unwrap();
    assert_eq!(dup["deployments"][0]["outcome"], "unchanged", "{dup}");
    assert!(dup["deployments"][0]["reason"].as_str().unwrap().contains("another delivery of evt-oom"), "{dup}");
    assert!(!w.aws().keys(BUCKET).await.contains(&record_key));

    // Lambda's retry comes under the dead invocation's request id: it adopts at once, without
    // waiting for the lease to lapse.
    let started = std::time::Instant::now();
    let retry = serde_json::to_value(w.deployer.handle(event.clone(), "req-oom").await.unwrap()).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(retry["outcome"], "unchanged", "{retry}");
    assert_recovered(&w, &record_key).await;
}
