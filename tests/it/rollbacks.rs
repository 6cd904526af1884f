//! Rollbacks when luck is bad, played through the built `deploy` and `verify` binaries: a
//! revision that never ran healthy, no healthy revision at all, two rollbacks in a row, a manual
//! rollback whose invocation fails after ECS took it, and a record write that fails while another
//! push waits for the service. Each ends with what runs, what the records say and what was told.

use std::time::Duration;

use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::faults::{Fault, FaultProxy};
use testkit::guard::Emulator;
use testkit::runtime::FunctionProcess;
use testkit::standin::{Behaviour, SnsSink, TodoStandIn};

use crate::function::start_function;
use crate::support::{pinned_copy_of, record_of};

const BACKEND: &str = "todo-backend";

struct Estate {
    emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
    sink: SnsSink,
    deploy: FunctionProcess,
    verify: FunctionProcess,
    config: String,
}

impl Estate {
    async fn new() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
        let config = local_config(&standin.url());
        let topic = [("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str())];
        let deploy = start_function("deploy", &app.aws, &config, &topic).await;
        let verify = start_function("verify", &app.aws, &config, &topic).await;
        Self { emu, app, standin, sink, deploy, verify, config }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }

    async fn running(&self) -> String {
        self.aws().service_task_definition(CLUSTER, BACKEND).await
    }

    /// Pushes a backend build and deploys it: (ECS deployment id, the revision it rolled out).
    async fn push(&self, seed: &str, behaviour: Behaviour) -> (String, String) {
        let digest = self.aws().push_image(BACKEND, "latest", seed).await;
        self.standin.set(digest.as_str(), behaviour);
        let answer = self.deploy.invoke(&ecr_push_event(&format!("evt-{seed}"), BACKEND, "latest", &digest)).await;
        let answer = answer.unwrap_or_else(|e| panic!("deploy {seed}: {e}"));
        assert_eq!(answer["outcome"], "started", "{answer}");
        (answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string(), self.running().await)
    }

    /// ECS reports the deployment completed: verify's answer (an error is a failed invocation).
    async fn completed(&self, dep: &str) -> Result<Value, Value> {
        let id = format!("ecs-{}", dep.rsplit('/').next().unwrap_or(dep));
        let event = ecs_deployment_event(&id, BACKEND, dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
        self.verify.invoke(&event).await
    }

    /// A good build, deployed and verified.
    async fn verified(&self, seed: &str) -> (String, String) {
        let (dep, td) = self.push(seed, Behaviour::Good).await;
        assert_eq!(self.completed(&dep).await.unwrap()["outcome"], "verified");
        (dep, td)
    }

    async fn rollback(&self, via: &FunctionProcess) -> Result<Value, Value> {
        via.invoke(&json!({"action": "rollback", "service": "backend"})).await
    }

    async fn record(&self, dep: &str) -> Value {
        record_of(self.aws(), BACKEND, dep).await
    }

    async fn records(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for k in self.aws().keys(BUCKET).await.into_iter().filter(|k| k.starts_with("deployments/")) {
            out.push(serde_json::from_slice(&self.aws().object(BUCKET, &k).await).unwrap());
        }
        out
    }

    /// ECS's PRIMARY deployment of the backend.
    async fn primary(&self) -> String {
        let out = self.aws().ecs.describe_services().cluster(CLUSTER).services(BACKEND).send().await.unwrap();
        let svc = &out.services()[0];
        svc.deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap().id().unwrap().to_string()
    }

    fn subjects(&self) -> Vec<String> {
        self.sink.notifications().iter().map(|n| n["Subject"].as_str().unwrap_or_default().to_string()).collect()
    }

    async fn stop(self) {
        self.deploy.stop().await;
        self.verify.stop().await;
        assert!(self.emu.guard.denied().is_empty(), "{:?}", self.emu.guard.denied());
    }
}

/// The sum of an EMF metric across a function's log lines (the per-service documents).
fn emf_count(lines: &[String], name: &str) -> f64 {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([["Service"]]))
        .filter_map(|v| v[name].as_f64())
        .sum()
}

/// Whether `now` is `revision` or a copy of it pinned to the digests it ran: every image the
/// same, but one `revision` names by tag, which the copy names by a digest.
async fn runs(aws: &Aws, now: &str, revision: &str) -> bool {
    if now == revision {
        return true;
    }
    let Ok(ran) = pinned_copy_of(aws, now, revision).await else { return false };
    let was = aws.images_of(revision).await;
    ran.iter().zip(&was).all(|((_, image), (_, before))| image == before || !before.contains('@'))
}

#[tokio::test]
async fn an_automatic_rollback_skips_a_revision_that_never_ran_healthy() {
    let e = Estate::new().await;
    let (good, good_td) = e.verified("backend-rb-good").await;
    // The next build never reaches steady state and the service has no circuit breaker: ECS's
    // deployment stays IN_PROGRESS until the next one stops it. pushdeploy never verifies it.
    let (stuck, stuck_td) = e.push("backend-rb-stuck", Behaviour::Good).await;
    let (stuck_sd, _) = e.aws().newest_service_deployment(CLUSTER, BACKEND).await;
    e.emu.guard.ecs.set_rollout_state(&stuck, "IN_PROGRESS");
    e.emu.guard.ecs.set_service_deployment(&stuck_sd, "IN_PROGRESS", None);
    let (broken, broken_td) = e.push("backend-rb-broken", Behaviour::Broken).await;
    e.emu.guard.ecs.set_service_deployment(&stuck_sd, "STOPPED", None);
    assert_eq!(e.record(&broken).await["previous_task_definition"], stuck_td.as_str());

    let answer = e.completed(&broken).await.unwrap();

    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let now = e.running().await;
    assert!(runs(e.aws(), &now, &good_td).await, "back on the verified {good_td}, not the stuck {stuck_td}: {now}");
    let rec = e.record(&broken).await;
    assert_eq!((rec["status"].as_str(), rec["rolled_back_to"].as_str()), (Some("rolled_back"), Some(now.as_str())));
    let rollback = e.record(&e.primary().await).await;
    assert_eq!(rollback["trigger"]["kind"], "auto_rollback");
    assert_eq!(rollback["restores"], good.replace('/', "-").as_str(), "{rollback}");
    assert!(rollback["reason"].as_str().unwrap().contains(&broken.replace('/', "-")), "{rollback}");
    assert!(e.subjects().iter().any(|s| s.contains("ROLLED BACK")), "{:?}", e.subjects());
    assert_ne!(now, broken_td);
    e.stop().await;
}

#[tokio::test]
async fn with_no_healthy_revision_to_return_to_the_broken_one_is_left_and_everyone_is_told() {
    let e = Estate::new().await;
    // The revision Terraform deployed never reached steady state either (ECS's history says so).
    let (terraform_sd, _) = e.aws().newest_service_deployment(CLUSTER, BACKEND).await;
    e.emu.guard.ecs.set_service_deployment(&terraform_sd, "STOPPED", None);
    let (broken, broken_td) = e.push("backend-rb-none", Behaviour::Broken).await;

    let first = e.completed(&broken).await.unwrap_err();
    let second = e.completed(&broken).await.unwrap_err();

    assert!(first.to_string().contains("no verified deployment before"), "{first}");
    assert!(second.to_string().contains("no verified deployment before"), "{second}");
    assert_eq!(e.running().await, broken_td, "nothing else to run: the service was left as it was");
    let rec = e.record(&broken).await;
    assert_eq!(rec["status"], "rollback_failed");
    let reason = rec["reason"].as_str().unwrap();
    assert!(
        reason.contains("no verified deployment before")
            && reason.contains(&format!("the broken revision {} is still serving", short(&broken_td))),
        "{reason}"
    );
    let told: Vec<String> = e.subjects().into_iter().filter(|s| s.contains("ROLLBACK FAILED")).collect();
    assert_eq!(told.len(), 1, "told once, however often the event is retried: {:?}", e.subjects());
    assert_eq!(emf_count(&e.verify.logs(), "RollbackFailed"), 1.0, "the alarm's metric counts it once");
    e.stop().await;
}

#[tokio::test]
async fn rollback_twice_goes_further_back_and_never_forward() {
    let e = Estate::new().await;
    let terraform = e.running().await;
    let (_, v1) = e.verified("backend-twice-1").await;
    let (v2_dep, v2) = e.verified("backend-twice-2").await;
    let (_, v3) = e.verified("backend-twice-3").await;

    // A dry run says which target and why (the verified deployment and its record id), and moves nothing.
    let plan = e.deploy.invoke(&json!({"action": "rollback", "service": "backend", "dry_run": true})).await.unwrap();
    let reason = plan["deployments"][0]["reason"].as_str().unwrap();
    assert_eq!(plan["outcome"], "planned", "{plan}");
    assert!(reason.starts_with(&format!("would roll back to {}", short(&v2))), "{reason}");
    assert!(reason.contains(&format!("({})", v2_dep.replacen('/', "-", 1))), "{reason}");
    assert!(reason.contains("the last verified deployment before"), "{reason}");
    assert_eq!(e.running().await, v3);

    let first = e.rollback(&e.deploy).await.unwrap();
    assert_eq!(first["outcome"], "rolled_back", "{first}");
    let after_first = e.running().await;
    assert!(runs(e.aws(), &after_first, &v2).await, "{after_first}");
    assert_eq!(e.completed(&e.primary().await).await.unwrap()["outcome"], "rolled_back");

    // A colleague (or a re-run) rolls back again: further back, never to v3.
    let second = e.rollback(&e.deploy).await.unwrap();
    assert_eq!(second["outcome"], "rolled_back", "{second}");
    let after_second = e.running().await;
    assert!(runs(e.aws(), &after_second, &v1).await, "{after_second}: {second}");
    assert_eq!(e.completed(&e.primary().await).await.unwrap()["outcome"], "rolled_back");

    // A third: nothing older pushdeploy verified; Terraform's revision, which ECS ran to
    // completion and pushdeploy never judged, is said to be exactly that.
    let third = e.rollback(&e.deploy).await.unwrap();
    assert_eq!(third["outcome"], "rolled_back", "{third}");
    let after_third = e.running().await;
    assert!(runs(e.aws(), &after_third, &terraform).await, "{after_third}: {third}");
    assert!(third["deployments"][0]["reason"].as_str().unwrap().contains("pushdeploy never tested it"), "{third}");
    assert_eq!(e.completed(&e.primary().await).await.unwrap()["outcome"], "rolled_back");

    // A fourth is already there: nothing changes, and it says so.
    let fourth = e.rollback(&e.deploy).await.unwrap();
    assert_eq!(fourth["outcome"], "rejected", "{fourth}");
    assert!(fourth["reason"].as_str().unwrap().contains("no verified deployment before"), "{fourth}");
    assert_eq!(e.running().await, after_third);
    for now in [&after_first, &after_second, &after_third] {
        assert!(!runs(e.aws(), now, &v3).await, "never forward to v3");
    }
    e.stop().await;
}

#[tokio::test]
async fn a_manual_rollback_whose_record_write_failed_is_finished_by_its_rerun_on_the_same_target() {
    let e = Estate::new().await;
    let (v1_dep, v1) = e.verified("backend-crash-1").await;
    let (_, v2) = e.verified("backend-crash-2").await;
    // The operator's call reaches a deploy function whose record writes fail after UpdateService.
    let proxy = FaultProxy::start(&e.emu.endpoint, Duration::from_secs(1)).await;
    let via = Aws::new(&proxy.endpoint).await;
    let flaky = start_function("deploy", &via, &e.config, &[]).await;
    proxy.inject("s3:PUT deployments", Fault::Status500, u32::MAX);

    let failed = e.rollback(&flaky).await.unwrap_err();

    assert!(failed.to_string().contains("S3"), "{failed}");
    let moved_to = e.running().await;
    assert!(runs(e.aws(), &moved_to, &v1).await, "ECS took the rollback: {moved_to}");
    let rollout = e.primary().await;
    let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, &rollout).unwrap();
    assert!(!e.aws().keys(BUCKET).await.contains(&key), "the record write failed");
    proxy.clear();
    flaky.stop().await;

    // The re-run converges: the same target, recorded, no further step back nor forward to v2.
    let rerun = e.rollback(&e.deploy).await.unwrap();

    assert_eq!(rerun["outcome"], "rolled_back", "{rerun}");
    assert_eq!(rerun["deployments"][0]["task_definition"], moved_to.as_str(), "{rerun}");
    assert_eq!((e.running().await, e.primary().await), (moved_to.clone(), rollout.clone()), "ECS was not called again");
    let rec = e.record(&rollout).await;
    assert_eq!(
        (rec["trigger"]["kind"].as_str(), rec["trigger"]["action"].as_str()),
        (Some("manual"), Some("rollback"))
    );
    assert_eq!(rec["task_definition"], moved_to.as_str());
    assert_eq!(rec["previous_task_definition"], v2.as_str());
    assert_eq!(rec["restores"], v1_dep.replace('/', "-").as_str());
    // Its completion is recognised as the rollback's (never smoke-tested), so verify does not ignore it.
    assert_eq!(e.completed(&rollout).await.unwrap()["outcome"], "rolled_back");
    e.stop().await;
}

#[tokio::test]
async fn a_record_write_that_fails_while_another_push_waits_is_never_lost() {
    let e = Estate::new().await;
    // One deploy invocation's record write hangs and then fails; a second push for the same
    // service arrives meanwhile, on another instance.
    let proxy = FaultProxy::start(&e.emu.endpoint, Duration::from_secs(15)).await;
    let via = Aws::new(&proxy.endpoint).await;
    let slow = start_function("deploy", &via, &e.config, &[]).await;
    proxy.inject("s3:PUT deployments", Fault::Stall, u32::MAX);
    let before = e.running().await;
    let first_digest = e.aws().push_image(BACKEND, "latest", "backend-lost-1").await;
    let first_event = ecr_push_event("evt-lost-1", BACKEND, "latest", &first_digest);
    let first = slow.invoke(&first_event);
    let second = async {
        // Once the first rollout is in ECS, its record write is what is left.
        while e.running().await == before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let first_dep = e.primary().await;
        let digest = e.aws().push_image(BACKEND, "latest", "backend-lost-2").await;
        (first_dep, e.deploy.invoke(&ecr_push_event("evt-lost-2", BACKEND, "latest", &digest)).await)
    };
    let (first, (first_dep, second)) = tokio::join!(first, second);

    assert!(first.is_err(), "the first invocation failed: {first:?}");
    let second = second.unwrap();
    assert_eq!(second["outcome"], "started", "{second}");
    let rec = e.record(&first_dep).await;
    assert_eq!(rec["trigger"]["event_id"], "evt-lost-1", "the first rollout is recorded: {rec}");
    assert!(rec["image_uri"].as_str().unwrap().ends_with(first_digest.as_str()), "{rec}");
    let records = e.records().await;
    assert_eq!(records.len(), 2, "{records:?}");
    slow.stop().await;
    e.stop().await;
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The template's roles with UpdateService denied to both functions.
fn update_service_denied() -> testkit::iam::Policies {
    let template = testkit::iam::Policies::template();
    let mut roles = serde_json::Map::new();
    for role in testkit::iam::Role::ALL {
        let mut doc = template.documents[&role].clone();
        let deny = json!({"Sid": "NoUpdateService", "Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*"});
        doc["Statement"].as_array_mut().unwrap().push(deny);
        roles.insert(role.logical_id().to_string(), doc);
    }
    testkit::iam::Policies::from_roles("template.yaml (UpdateService denied)", &Value::Object(roles))
}

/// The operator's rollback and verify's automatic one are one rollback: another rollout's live
/// lease is waited for to the bound and fails both alike (`Transient.LeaseBusy`, the lease left as
/// it was), and a rollback ECS refuses fails both with the same class, that of its cause.
#[tokio::test]
async fn manual_and_automatic_rollbacks_take_the_lease_alike_and_fail_alike() {
    use pushdeploy::domain::lease::{lease_key, Lease};
    use std::time::Instant;
    let mut l = crate::verify::Loop::new().await;
    let good = l.push(BACKEND, "backend-good", Behaviour::Good).await;
    assert_eq!(l.completed(BACKEND, &good).await["outcome"], "verified");
    let broken = l.push(BACKEND, "backend-broken", Behaviour::Broken).await;
    let broken_td = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    let manual = || json!({"action": "rollback", "service": "backend"});
    let event = ecs_deployment_event("ecs-alike", BACKEND, &broken, "SERVICE_DEPLOYMENT_COMPLETED", "");

    let key = lease_key(CLUSTER, BACKEND);
    let (held, _) = crate::support::lease_held_by("evt-other");
    l.aws().put_json(BUCKET, &key, &held).await;
    let deadline = pushdeploy::domain::timing::Deadline::after(Duration::from_secs(4));
    let by_hand = l.deployer.handle_before(manual(), "req-alike", deadline).await.unwrap_err();
    let by_verify = l.verifier.handle(event.clone(), Instant::now() + Duration::from_millis(1500)).await.unwrap_err();
    for err in [&by_hand, &by_verify] {
        assert_eq!(err.error_type(), "Transient.LeaseBusy", "{err}");
        assert!(err.is_transient() && err.to_string().contains("evt-other"), "{err}");
    }
    let left: Lease = serde_json::from_slice(&l.aws().object(BUCKET, &key).await).unwrap();
    assert_eq!(left, held, "neither took the lease it waited for");
    assert_eq!(l.aws().service_task_definition(CLUSTER, BACKEND).await, broken_td);

    l.aws().put_json(BUCKET, &key, &held.released(None)).await;
    l.emu.guard.set_policies(update_service_denied());
    let by_hand = l.deployer.handle(manual(), "req-alike-2").await.unwrap_err();
    let by_verify = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap_err();
    for err in [&by_hand, &by_verify] {
        assert!(matches!(err, pushdeploy::Error::RollbackFailed(_)), "{err:?}");
        assert!(err.to_string().contains("UpdateService"), "{err}");
    }
    let class = |e: &pushdeploy::Error| (e.error_type(), e.is_transient(), e.disposition());
    assert_eq!(class(&by_hand), class(&by_verify), "one failure class: {by_hand} / {by_verify}");
    assert_eq!(by_hand.error_type(), "Permanent.AccessDenied", "no retry grants a permission");
    assert_eq!(l.record(BACKEND, &broken).await["status"], "rollback_failed");
    let left: Lease = serde_json::from_slice(&l.aws().object(BUCKET, &key).await).unwrap();
    assert!(left.released || left.expires_at_ms <= pushdeploy::domain::lease::now_ms(), "both let go: {left:?}");
    assert_eq!(l.aws().service_task_definition(CLUSTER, BACKEND).await, broken_td);
}
