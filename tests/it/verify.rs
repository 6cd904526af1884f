//! The verify path against moto and a local stand-in app: verdicts, rollbacks, notifications.

use std::time::{Duration, Instant};

use pushdeploy::flows::deploy::Deployer;
use pushdeploy::flows::verify::Verifier;
use serde_json::{json, Value};
use testkit::estate::{ecs_deployment_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::standin::{Behaviour, SnsSink, TodoStandIn};

use crate::support::{assert_returned_to, deployer, verifier, Snapshot};

/// moto behind the IAM guard, the estate, the stand-in app, a topic, a deployer and a verifier.
pub(crate) struct Loop {
    pub(crate) app: TodoApp,
    pub(crate) standin: TodoStandIn,
    pub(crate) sink: SnsSink,
    pub(crate) deployer: Deployer,
    pub(crate) verifier: Verifier,
    seq: u32,
    pub(crate) emu: Emulator,
}

impl Loop {
    pub(crate) async fn new() -> Self {
        Self::with_config(local_config).await
    }

    /// The loop with the config `config` makes of the stand-in's URL.
    pub(crate) async fn with_config(config: impl FnOnce(&str) -> String) -> Self {
        let moto = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&moto.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
        let config = config(&standin.url());
        let deployer = deployer(&app.aws, &config);
        let verifier = verifier(&app.aws, &config, Some(&sink.topic_arn));
        Self { app, standin, sink, deployer, verifier, seq: 0, emu: moto }
    }

    pub(crate) fn aws(&self) -> &Aws {
        &self.app.aws
    }

    /// Pushes an image that behaves as `b`, delivers the push, and answers the ECS deployment id.
    pub(crate) async fn push(&mut self, service: &str, seed: &str, b: Behaviour) -> String {
        self.seq += 1;
        let digest = self.aws().push_image(service, "latest", seed).await;
        self.standin.set(digest.as_str(), b);
        let event = testkit::estate::ecr_push_event(&format!("push-{}", self.seq), service, "latest", &digest);
        let answer = serde_json::to_value(self.deployer.handle(event, "req").await.unwrap()).unwrap();
        assert_eq!(answer["outcome"], "started", "{answer}");
        answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string()
    }

    pub(crate) async fn ecs_says(&mut self, service: &str, deployment: &str, what: &str, reason: &str) -> Value {
        self.seq += 1;
        let event = ecs_deployment_event(&format!("ecs-{}", self.seq), service, deployment, what, reason);
        let summary = self.verifier.handle(event, Instant::now() + Duration::from_secs(120)).await.expect("verdict");
        serde_json::to_value(summary).unwrap()
    }

    pub(crate) async fn completed(&mut self, service: &str, deployment: &str) -> Value {
        self.ecs_says(service, deployment, "SERVICE_DEPLOYMENT_COMPLETED", "completed").await
    }

    pub(crate) async fn record(&self, service: &str, deployment: &str) -> Value {
        let key = pushdeploy::domain::record::record_key(CLUSTER, service, deployment).unwrap();
        serde_json::from_slice(&self.aws().object(BUCKET, &key).await).unwrap()
    }
}

fn timeline(record: &Value) -> Vec<String> {
    record["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_good_rollout_is_verified_recorded_and_notified() {
    let mut l = Loop::new().await;
    let dep = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    let deployed = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert_eq!(l.ecs_says("todo-backend", &dep, "SERVICE_DEPLOYMENT_IN_PROGRESS", "").await["outcome"], "started");

    let answer = l.completed("todo-backend", &dep).await;

    assert_eq!(answer["outcome"], "verified", "{answer}");
    assert_eq!(l.aws().service_task_definition(CLUSTER, "todo-backend").await, deployed);
    let rec = l.record("todo-backend", &dep).await;
    assert_eq!(rec["status"], "verified");
    assert_eq!(timeline(&rec), vec!["pushed", "started", "ecs_in_progress", "ecs_completed", "verified"]);
    let smoke = &rec["smoke"];
    assert_eq!(smoke["passed"], true);
    assert_eq!(smoke["rounds_run"], 2);
    assert_eq!(smoke["rounds"][0]["checks"][0]["check"], "GET todoItems");
    assert_eq!(smoke["rounds"][0]["checks"][0]["status"], 200);
    assert_eq!(smoke["read_after_write"]["reads_seen"], 6);
    assert_eq!(smoke["read_after_write"]["cleaned_up"], true);
    assert_eq!(l.standin.item_count(), 0, "the probe deleted what it wrote");
    let notes = l.sink.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy verified: backend latest@"), "{}", notes[0]);
    let message = notes[0]["Message"].as_str().unwrap();
    assert!(message.lines().next().unwrap().contains("backend (todo-cluster/todo-backend) latest@"));
    assert!(message.contains("\"status\": \"verified\""));

    // A duplicate delivery changes nothing and says so.
    let before = Snapshot::take(l.aws()).await;
    let again = l.completed("todo-backend", &dep).await;
    assert_eq!(again["outcome"], "verified");
    assert!(again["reason"].as_str().unwrap().contains("already verified"));
    assert_eq!(Snapshot::take(l.aws()).await, before);
    assert_eq!(l.sink.notifications().len(), 1);
}

#[tokio::test]
async fn a_broken_rollout_is_rolled_back_and_the_rollback_is_not_smoke_tested() {
    let mut l = Loop::new().await;
    let before = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let dep = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    let broken = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert_ne!(broken, before);

    let answer = l.completed("todo-backend", &dep).await;

    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    // Back on the good revision: the estate's is Terraform-style (`todo-backend:latest`), and the
    // tag now points at the broken build, so the rollback runs a copy pinned to what ran before.
    let good = Some(l.app.backend_v0.as_str());
    let now = assert_returned_to(l.aws(), "todo-backend", &before, ("backend", good)).await;
    let rec = l.record("todo-backend", &dep).await;
    assert_eq!(rec["status"], "rolled_back");
    assert_eq!(rec["rolled_back_to"], now.as_str());
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.starts_with("GET todoItems: status 500, expected 200"), "{reason}");
    assert_eq!(rec["smoke"]["passed"], false);
    assert_eq!(rec["smoke"]["rounds_run"], 4, "fails as soon as 2 in a row are out of reach in 5");
    assert_eq!(timeline(&rec).last().unwrap(), "rolled_back");
    let notes = l.sink.notifications();
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ROLLED BACK: backend"), "{notes:?}");

    // The rollback is recorded as its own deployment; its completion is not smoke-tested.
    let rollback_id =
        pushdeploy::domain::record::ecs_deployment_id(rec["rollback_deployment"].as_str().unwrap()).unwrap();
    let rb = l.record("todo-backend", &rollback_id).await;
    assert_eq!(rb["trigger"], json!({"kind": "auto_rollback", "of": dep.replace('/', "-")}));
    assert_eq!(rb["task_definition"], now.as_str());
    assert!(rb["image_uri"].as_str().unwrap().ends_with(l.app.backend_v0.as_str()), "{}", rb["image_uri"]);
    let answer = l.completed("todo-backend", &rollback_id).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let rb = l.record("todo-backend", &rollback_id).await;
    assert_eq!(rb["status"], "completed");
    assert!(rb["smoke"].is_null());
    assert_eq!(l.aws().service_task_definition(CLUSTER, "todo-backend").await, now);
    // The app really answers again: the pinned copy runs the good build, not what `latest` is now.
    let ok = reqwest::get(format!("{}/api/todoItems", l.standin.url().trim_end_matches('/'))).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn a_rollback_waits_for_a_rollout_in_flight_and_holds_the_service_lease() {
    use pushdeploy::domain::lease::{lease_key, Lease};
    let mut l = Loop::new().await;
    let before = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let dep = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    let broken = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    // Another rollout of the service is in flight: it holds the lease.
    let key = lease_key(CLUSTER, "todo-backend");
    let busy = Lease {
        holder: "evt-newer".into(),
        invocation: None,
        image_uri: "newer".into(),
        expires_at_ms: pushdeploy::domain::lease::now_ms() + 60_000,
        pending: None,
        released: false,
        task_definition: None,
    };
    l.aws().put_json(BUCKET, &key, &busy).await;
    let event = ecs_deployment_event("ecs-held", "todo-backend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    // Still held at the deadline: a transient failure, nothing moved.
    let err = l.verifier.handle(event.clone(), Instant::now() + Duration::from_millis(1500)).await.unwrap_err();
    assert!(err.is_transient() && err.to_string().contains("evt-newer"), "{err}");
    assert_eq!(
        l.aws().service_task_definition(CLUSTER, "todo-backend").await,
        broken,
        "no rollback under someone else's lease"
    );

    // That rollout lets go while the retried event waits for it: the rollback goes on at once,
    // and the lease says where it left the service.
    let released = Lease { released: true, expires_at_ms: 0, ..busy };
    let (aws, lease_key) = (l.aws().clone(), key.clone());
    let let_go = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        aws.put_json(BUCKET, &lease_key, &released).await;
    });
    let answer =
        serde_json::to_value(l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap())
            .unwrap();
    let_go.await.unwrap();
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let now = assert_returned_to(l.aws(), "todo-backend", &before, ("backend", Some(l.app.backend_v0.as_str()))).await;
    let lease: Lease = serde_json::from_slice(&l.aws().object(BUCKET, &key).await).unwrap();
    assert!(lease.released, "{lease:?}");
    assert_eq!(lease.task_definition.as_deref(), Some(now.as_str()));
    assert!(lease.holder.starts_with("rollback of "), "{lease:?}");
}

#[tokio::test]
async fn state_kept_in_one_task_is_caught_by_the_read_after_write_probe() {
    let mut l = Loop::new().await;
    let before = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let dep = l.push("todo-backend", "backend-per-task", Behaviour::StatePerTask).await;
    let answer = l.completed("todo-backend", &dep).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let rec = l.record("todo-backend", &dep).await;
    assert!(
        rec["reason"].as_str().unwrap().starts_with("read-after-write: 3 of 6 reads saw the item"),
        "{}",
        rec["reason"]
    );
    assert_eq!(rec["smoke"]["read_after_write"]["passed"], false);
    assert_returned_to(l.aws(), "todo-backend", &before, ("backend", Some(l.app.backend_v0.as_str()))).await;
}

#[tokio::test]
async fn a_foreign_deployment_is_ignored_and_nothing_is_touched() {
    let mut l = Loop::new().await;
    let before = Snapshot::take(l.aws()).await;
    let answer = l.completed("todo-frontend", "ecs-svc/1234567890123456789").await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("not started by pushdeploy"));
    assert_eq!(Snapshot::take(l.aws()).await, before);
    assert!(l.sink.notifications().is_empty());
}

#[tokio::test]
async fn the_circuit_breaker_is_recorded_as_failed_and_never_verified() {
    let mut l = Loop::new().await;
    let dep = l.push("todo-frontend", "frontend-crashloop", Behaviour::Good).await;
    // ECS's circuit breaker failed it (it says so in DescribeServices, as the event does).
    l.emu.guard.ecs.set_rollout_state(&dep, "FAILED");
    let answer = l
        .ecs_says(
            "todo-frontend",
            &dep,
            "SERVICE_DEPLOYMENT_FAILED",
            "ECS deployment circuit breaker: tasks failed to start.",
        )
        .await;
    assert_eq!(answer["outcome"], "failed", "{answer}");
    let rec = l.record("todo-frontend", &dep).await;
    assert_eq!(rec["status"], "failed");
    assert!(rec["reason"].as_str().unwrap().contains("circuit breaker"));
    assert!(l.sink.notifications()[0]["Subject"].as_str().unwrap().starts_with("pushdeploy FAILED"));
    // A late COMPLETED for the same deployment does not turn it into a success.
    assert_eq!(l.completed("todo-frontend", &dep).await["outcome"], "failed");
    assert_eq!(l.record("todo-frontend", &dep).await["status"], "failed");
}

#[tokio::test]
async fn completed_after_ecs_rolled_back_is_failed_not_verified() {
    let mut l = Loop::new().await;
    let before = l.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    let dep = l.push("todo-frontend", "frontend-v2", Behaviour::Good).await;
    // ECS's circuit breaker (with rollback on) put the old revision back.
    l.aws()
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("todo-frontend")
        .task_definition(&before)
        .send()
        .await
        .unwrap();
    let answer = l.completed("todo-frontend", &dep).await;
    assert_eq!(answer["outcome"], "failed", "{answer}");
    let rec = l.record("todo-frontend", &dep).await;
    assert_eq!(rec["status"], "failed");
    assert!(rec["reason"].as_str().unwrap().contains("ECS rolled it back"), "{}", rec["reason"]);
    assert!(rec["smoke"].is_null(), "no smoke test ran against the old revision");
}

#[tokio::test]
async fn redirects_off_host_and_oversized_bodies_fail_the_smoke_test() {
    let mut l = Loop::new().await;
    let dep = l.push("todo-frontend", "frontend-redirect", Behaviour::RedirectsAway).await;
    let answer = l.completed("todo-frontend", &dep).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let reason = l.record("todo-frontend", &dep).await["reason"].as_str().unwrap().to_string();
    // Only the scheme and host of where it pointed: an off-site Location may carry codes and state.
    assert!(reason.contains("redirect to another host refused (http://127.0.0.2:9)"), "{reason}");
    assert!(!reason.contains("/elsewhere"), "{reason}");

    let dep = l.push("todo-frontend", "frontend-huge", Behaviour::HugeBody).await;
    let answer = l.completed("todo-frontend", &dep).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let rec = l.record("todo-frontend", &dep).await;
    assert!(rec["reason"].as_str().unwrap().contains("exceeds the cap (1048576 bytes read"), "{}", rec["reason"]);
}

#[tokio::test]
async fn the_target_health_gate_holds_rounds_until_every_target_is_healthy() {
    let mut l = Loop::new().await;
    let empty = l.aws().create_target_group("todo-frontend-empty", &[]).await;
    let healthy = l.aws().create_target_group("todo-frontend-tg", &["10.0.1.10", "10.0.2.10"]).await;
    for (arn, want) in [(empty, "rolled_back"), (healthy, "verified")] {
        let config = local_config(&l.standin.url()).replacen(
            "consecutive = 2\n",
            &format!("consecutive = 2\ntarget_group_arn = \"{arn}\"\n"),
            1,
        );
        l.verifier = verifier(l.aws(), &config, None);
        let dep = l.push("todo-frontend", &format!("frontend-{want}"), Behaviour::Good).await;
        let answer = l.completed("todo-frontend", &dep).await;
        assert_eq!(answer["outcome"], want, "{answer}");
        if want == "rolled_back" {
            let rec = l.record("todo-frontend", &dep).await;
            assert!(
                rec["reason"].as_str().unwrap().starts_with("the target group has no registered targets"),
                "{}",
                rec["reason"]
            );
        }
    }
}

#[tokio::test]
async fn a_blue_green_gate_follows_the_target_group_that_serves_the_revision_after_a_swap() {
    let mut l = Loop::new().await;
    // The configured group is blue's, drained since ECS swapped the pair; green's serves.
    let blue = l.aws().create_target_group("todo-frontend-blue", &[]).await;
    let green = l.aws().create_target_group("todo-frontend-green", &["10.0.1.10", "10.0.2.10"]).await;
    l.emu.guard.ecs.set_target_groups("todo-frontend", &blue, &green);
    let config = local_config(&l.standin.url()).replacen(
        "consecutive = 2\n",
        &format!("consecutive = 2\ntarget_group_arn = \"{blue}\"\n"),
        1,
    );
    l.verifier = verifier(l.aws(), &config, None);
    let dep = l.push("todo-frontend", "frontend-bg-green", Behaviour::Good).await;
    let answer = l.completed("todo-frontend", &dep).await;
    assert_eq!(answer["outcome"], "verified", "gated on green, which serves it, not on blue: {answer}");
    let describe_revisions = |l: &Loop| {
        let calls = l.emu.guard.calls();
        calls
            .iter()
            .filter(|c| c.role == testkit::iam::Role::Verify && c.operation == "ecs:DescribeServiceRevisions")
            .count()
    };
    assert_eq!(describe_revisions(&l), 1, "the pair costs verify one DescribeServiceRevisions");

    // The next deployment swaps them back: its revision registers in blue, and the gate judges
    // blue (empty here), whatever the config names.
    let config = config.replace(&blue, &green);
    l.verifier = verifier(l.aws(), &config, None);
    let dep = l.push("todo-frontend", "frontend-bg-blue", Behaviour::Good).await;
    let answer = l.completed("todo-frontend", &dep).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let rec = l.record("todo-frontend", &dep).await;
    assert!(rec["reason"].as_str().unwrap().starts_with("the target group has no registered targets"), "{rec}");
    assert!(l.emu.guard.denied().is_empty(), "{:?}", l.emu.guard.denied());
}

#[tokio::test]
async fn manual_rollback_returns_to_the_last_verified_deployment() {
    let mut l = Loop::new().await;
    let before = Snapshot::take(l.aws()).await;
    let answer = serde_json::to_value(
        l.deployer.handle(json!({"action": "rollback", "service": "backend"}), "req-0").await.unwrap(),
    )
    .unwrap();
    assert_eq!(answer["outcome"], "rejected", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("no verified deployment"), "{answer}");
    assert_eq!(Snapshot::take(l.aws()).await, before);

    let first = l.push("todo-backend", "backend-v1", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &first).await["outcome"], "verified");
    let v1 = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let second = l.push("todo-backend", "backend-v2", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &second).await["outcome"], "verified");
    let v2 = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert_ne!(v1, v2);

    let answer = serde_json::to_value(
        l.deployer.handle(json!({"action": "rollback", "service": "backend"}), "req-1").await.unwrap(),
    )
    .unwrap();

    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    // v1 pins the backend; its log router sidecar is by tag, so the copy pins that too.
    let v1_backend = l.aws().images_of(&v1).await[0].1.clone();
    let now = assert_returned_to(l.aws(), "todo-backend", &v1, ("backend", v1_backend.split('@').nth(1))).await;
    let d = &answer["deployments"][0];
    assert_eq!(d["task_definition"], now.as_str());
    let why = d["reason"].as_str().unwrap();
    assert!(
        why.contains("todo-backend:2")
            && why.contains(&first.replace('/', "-"))
            && why.contains("before todo-backend:3"),
        "{why}"
    );
    let rb = l.record("todo-backend", d["ecs_deployment_id"].as_str().unwrap()).await;
    assert_eq!(rb["trigger"]["kind"], "manual");
    assert_eq!(rb["trigger"]["action"], "rollback");
    assert_eq!(rb["previous_task_definition"], v2.as_str());
    // Its completion is recorded, never smoke-tested.
    let answer = l.completed("todo-backend", d["ecs_deployment_id"].as_str().unwrap()).await;
    assert_eq!(answer["outcome"], "rolled_back");
}

#[tokio::test]
async fn a_failed_rollback_is_recorded_notified_and_retried() {
    let mut l = Loop::new().await;
    let dep = l.push("todo-frontend", "frontend-broken", Behaviour::Broken).await;
    // The revision to return to no longer exists (deleted by hand): ECS's history names it, and
    // reading it fails.
    let gone = "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-frontend-gone:1";
    let broken = l.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    l.emu.guard.set_fixture(
        "ecs:DescribeServiceRevisions",
        std::sync::Arc::new(move |_req, mut answer| {
            for r in answer["serviceRevisions"].as_array_mut().into_iter().flatten() {
                if r["taskDefinition"] != broken.as_str() {
                    r["taskDefinition"] = json!(gone);
                }
            }
            answer
        }),
    );
    let event = ecs_deployment_event("ecs-rb", "todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "completed");

    let err = l.verifier.handle(event.clone(), Instant::now() + Duration::from_secs(60)).await.unwrap_err();

    // Returned as an error, so Lambda retries it and then parks it; classified by its cause, as a
    // manual rollback's failure is: no retry brings a deleted revision back.
    assert!(!err.is_transient() && err.error_type() == "Permanent.AwsRefused", "{err}");
    let rec = l.record("todo-frontend", &dep).await;
    assert_eq!(rec["status"], "rollback_failed");
    assert!(
        rec["reason"].as_str().unwrap().contains("pushdeploy cannot roll back frontend: ECS DescribeTaskDefinition"),
        "{}",
        rec["reason"]
    );
    assert!(l.sink.notifications()[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ROLLBACK FAILED"));
    // The retry tries the rollback again and does not smoke-test again.
    assert!(l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.is_err());
    assert_eq!(l.record("todo-frontend", &dep).await["smoke"]["rounds_run"], rec["smoke"]["rounds_run"]);
    // ... and tells no one again: the record and the message already say it.
    assert_eq!(l.record("todo-frontend", &dep).await["timeline"], rec["timeline"]);
    assert_eq!(l.sink.notifications().len(), 1, "{:?}", l.sink.notifications());
}

#[tokio::test]
async fn keep_revisions_deregisters_old_copies_but_never_what_a_rollback_needs() {
    let mut l = Loop::new().await;
    let config = local_config(&l.standin.url()).replacen(
        "repository = \"todo-frontend\"",
        "repository = \"todo-frontend\"\nkeep_revisions = 2",
        1,
    );
    l.deployer = deployer(l.aws(), &config);
    l.verifier = verifier(l.aws(), &config, None);
    let terraform = l.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    let mut ours = Vec::new();
    for i in 1..=4 {
        let dep = l.push("todo-frontend", &format!("frontend-keep-{i}"), Behaviour::Good).await;
        ours.push(l.aws().service_task_definition(CLUSTER, "todo-frontend").await);
        assert_eq!(l.completed("todo-frontend", &dep).await["outcome"], "verified");
    }
    let mut seen = Vec::new();
    for arn in ours.iter().chain(std::iter::once(&terraform)) {
        let out = l.aws().ecs.describe_task_definition().task_definition(arn).send().await.unwrap();
        seen.push(out.task_definition().unwrap().status().unwrap().as_str().to_string());
    }
    // The two newest of ours stay (the one running and the previous one); Terraform's is not ours.
    assert_eq!(seen, ["INACTIVE", "INACTIVE", "ACTIVE", "ACTIVE", "ACTIVE"], "{ours:?}");
}

#[tokio::test]
async fn a_rollback_takes_over_a_lease_a_failed_deploy_handed_over_and_rolls_back_at_once() {
    use pushdeploy::domain::lease::{lease_key, Lease};
    let mut l = Loop::new().await;
    let before = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let dep = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    let broken = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    // A later push failed before ECS took it and handed its lease over: it carries that rollout,
    // which never ran.
    let mut pending: pushdeploy::domain::record::DeploymentRecord =
        serde_json::from_value(l.record("todo-backend", &dep).await).unwrap();
    pending.previous_task_definition = broken.clone();
    pending.task_definition.clear();
    pending.image_uri = format!("{}/todo-backend@sha256:{}", testkit::estate::registry(), "9".repeat(64));
    let handed_over = Lease::new(
        "evt-failed".into(),
        Some("req-failed".into()),
        pending.image_uri.clone(),
        pushdeploy::domain::lease::now_ms() + 30_000,
        Some(pending),
    )
    .handed_over();
    let key = lease_key(CLUSTER, "todo-backend");
    l.aws().put_json(BUCKET, &key, &handed_over).await;

    let started = Instant::now();
    let answer = l.completed("todo-backend", &dep).await;

    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no waiting for a deploy to adopt it: {:?}",
        started.elapsed()
    );
    let now = assert_returned_to(l.aws(), "todo-backend", &before, ("backend", Some(l.app.backend_v0.as_str()))).await;
    let lease: Lease = serde_json::from_slice(&l.aws().object(BUCKET, &key).await).unwrap();
    assert!(lease.released && lease.task_definition.as_deref() == Some(now.as_str()), "{lease:?}");
}

#[tokio::test]
async fn a_manual_rollback_waits_for_a_rollout_in_flight_instead_of_refusing() {
    use pushdeploy::domain::lease::{lease_key, Lease};
    let mut l = Loop::new().await;
    let first = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &first).await["outcome"], "verified");
    let verified = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let second = l.push("todo-backend", "backend-good-2", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &second).await["outcome"], "verified");
    // Another rollout holds the service, and lets go 300 ms later.
    let key = lease_key(CLUSTER, "todo-backend");
    let busy = Lease::new(
        "evt-newer".into(),
        Some("req-newer".into()),
        "newer".into(),
        pushdeploy::domain::lease::now_ms() + 60_000,
        None,
    );
    l.aws().put_json(BUCKET, &key, &busy).await;
    let (aws, lease_key) = (l.aws().clone(), key.clone());
    let let_go = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        aws.put_json(BUCKET, &lease_key, &busy.released(None)).await;
    });

    let started = Instant::now();
    let answer = serde_json::to_value(
        l.deployer.handle(json!({"action": "rollback", "service": "backend"}), "req-op").await.unwrap(),
    )
    .unwrap();
    let_go.await.unwrap();

    assert_eq!(answer["deployments"][0]["outcome"], "rolled_back", "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the lease");
    let rec: pushdeploy::domain::record::DeploymentRecord =
        serde_json::from_slice(&l.aws().object(BUCKET, answer["deployments"][0]["written"][0].as_str().unwrap()).await)
            .unwrap();
    // Back to the first verified revision (a copy of it pinned to what its sidecar ran).
    let reason = rec.reason.clone().unwrap_or_default();
    assert!(rec.is_rollback() && reason.starts_with(pushdeploy::domain::names::short_name(&verified)), "{rec:?}");

    // Still held at the invocation's wait bound: a transient failure an operator can tell apart.
    let held = Lease::new(
        "evt-stuck".into(),
        Some("req-stuck".into()),
        "stuck".into(),
        pushdeploy::domain::lease::now_ms() + 60_000,
        None,
    );
    l.aws().put_json(BUCKET, &key, &held).await;
    let deadline = pushdeploy::domain::timing::Deadline::after(Duration::from_secs(4));
    let err = l
        .deployer
        .handle_before(json!({"action": "rollback", "service": "backend"}), "req-op2", deadline)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Transient.LeaseBusy", "{err}");
    assert!(err.to_string().contains("evt-stuck"), "{err}");
}
