//! Canary analysis (issue 25): a production step judged on the load balancer's own metrics,
//! against moto's CloudWatch filled by simulated users whose requests an ALB spreads over blue and
//! green at random by weight, as a real ALB does; and a rolling service's bake.

use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::canary::{analysis, CanaryEstate, Pushed, Scenario};
use testkit::estate::{ecs_deployment_event, verifier, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::standin::{Behaviour, TodoStandIn};
use testkit::traffic::{now_s, Profile, Traffic};

use crate::support::deployer;

const STEP: &str = "PRODUCTION_TRAFFIC_SHIFT";

/// Green failing 2 % of requests, blue 0.1 %, at a 5 % canary step, 20,000 requests a second.
fn failing_green(analysis_body: Option<String>) -> Scenario {
    Scenario {
        analysis: analysis_body,
        stages: vec![STEP, "POST_PRODUCTION_TRAFFIC_SHIFT"],
        blue: Profile::new(0.001, 40.0, 90.0),
        green: Profile::new(0.02, 40.0, 90.0),
        seed: 25,
        requests_per_second: 20_000,
        // The test rule still reaches blue at the production steps: no route to green alone, so
        // the active checks are skipped and the analysis decides.
        test_rule_to_green: false,
    }
}

fn hook_check(rec: &Value, check: &str) -> Value {
    rec["hook_checks"].as_array().unwrap().iter().find(|c| c["check"] == check).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_green_failing_2_percent_at_a_5_percent_step_fails_on_the_metrics_where_production_checks_pass_it() {
    // Without analysis the step's checks go through the production listener: one request in
    // twenty reaches green, one of its answers in fifty is a 500, and the step passes.
    let mut without = CanaryEstate::start(failing_green(None)).await;
    let p = without.push("backend-2pct-a", Behaviour::Flaky { errors_per_mille: 20 }).await;
    let run = without.run_stage(&p, STEP, Some(5)).await;
    assert_eq!(run.status(), "SUCCEEDED", "production checks alone miss it: {:?}", run.answers);
    let check = hook_check(&without.record(&p).await, "PRODUCTION_TRAFFIC_SHIFT@5");
    assert_eq!(check["reached"]["listener"], "production");
    assert!(check["reached"]["note"].as_str().unwrap().contains("blue and green by weight"), "{check}");
    drop(without);

    // With analysis the same green fails on its own evidence, within two windows.
    let mut with = CanaryEstate::start(failing_green(Some(analysis("2s", 200, "")))).await;
    let p = with.push("backend-2pct-b", Behaviour::Flaky { errors_per_mille: 20 }).await;
    let run = with.run_stage(&p, STEP, Some(5)).await;
    assert_eq!(run.status(), "FAILED", "{:?}", run.answers);
    let why = run.reason();
    assert!(why.starts_with("PRODUCTION_TRAFFIC_SHIFT@5 check failed: analysis: green's 5XX rate"), "{why}");
    assert!(why.contains("vs blue") && why.contains("p = "), "the figures are in the reason: {why}");
    let rec = with.record(&p).await;
    assert_eq!(rec["status"], "rolled_back");
    let check = hook_check(&rec, "PRODUCTION_TRAFFIC_SHIFT@5");
    let a = &check["analysis"];
    assert_eq!(a["call"], "fail", "{a}");
    assert!(a["elapsed_s"].as_f64().unwrap() <= 2.0 * a["window_s"].as_f64().unwrap(), "within two windows: {a}");
    let (green, blue) = (&a["green"], &a["baseline"]);
    assert_eq!(green["target_group"].as_str().unwrap(), testkit::traffic::dimension_of(&p.green_group));
    assert!(green["requests"].as_f64().unwrap() >= 200.0, "{a}");
    assert!(green["error_rate"].as_f64().unwrap() > 0.01 && blue["error_rate"].as_f64().unwrap() < 0.005, "{a}");
    assert!(a["test"]["p_value"].as_f64().unwrap() < 0.01, "{a}");
    assert_eq!(check["reached"]["listener"], "none", "no proven route to green alone: {check}");
    assert!(check["reached"]["note"].as_str().unwrap().contains("active checks skipped"), "{check}");
    let notes = with.sink.notifications();
    let told = notes.iter().map(|n| n["Message"].as_str().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    assert!(told.contains("vs blue") && told.contains("p = "), "the figures reach the topic: {told}");
    assert!(with.calls().iter().any(|c| c == "cloudwatch:GetMetricData"));
    assert!(with.emu.guard.denied().is_empty(), "{:?}", with.emu.guard.denied());
}

#[tokio::test]
async fn too_little_traffic_is_undecided_until_the_window_ends_then_follows_the_policy() {
    for (policy, want) in [("", "FAILED"), ("too_little_traffic = \"pass\"", "SUCCEEDED")] {
        let mut scenario = failing_green(Some(analysis("2s", 200, policy)));
        // 100 requests a second: five a second reach green at 5 %, far below 200 in the window.
        scenario.requests_per_second = 100;
        scenario.green = scenario.blue;
        let mut estate = CanaryEstate::start(scenario).await;
        let p = estate.push(&format!("backend-quiet-{want}"), Behaviour::Good).await;
        let run = estate.run_stage(&p, STEP, Some(5)).await;
        let statuses: Vec<&str> = run.answers.iter().map(|a| a["hookStatus"].as_str().unwrap()).collect();
        assert_eq!(statuses.last(), Some(&want), "{:?}", run.answers);
        assert!(
            statuses.len() >= 2 && statuses[..statuses.len() - 1].iter().all(|s| *s == "IN_PROGRESS"),
            "{statuses:?}"
        );
        let waiting = run.answers[0]["hookDetails"]["pushdeploy"]["reason"].as_str().unwrap();
        assert!(waiting.contains("analysis"), "{waiting}");
        let a = &hook_check(&estate.record(&p).await, "PRODUCTION_TRAFFIC_SHIFT@5")["analysis"];
        assert!(a["green"]["requests"].as_f64().unwrap() < 200.0, "{a}");
        assert!(a["elapsed_s"].as_f64().unwrap() >= 2.0, "decided only once the window ended: {a}");
        assert!(run.reason().contains("too little traffic"), "{}", run.reason());
    }
}

#[tokio::test]
async fn production_checks_on_request_pass_once_and_the_step_waits_for_the_analysis_alone() {
    let mut scenario = failing_green(Some(analysis("3s", 200, "production_checks = true")));
    scenario.green = scenario.blue;
    let mut estate = CanaryEstate::start(scenario).await;
    let p = estate.push("backend-production-checks", Behaviour::Good).await;
    let run = estate.run_stage(&p, STEP, Some(5)).await;
    assert_eq!(run.status(), "SUCCEEDED", "{:?}", run.answers);
    let check = hook_check(&estate.record(&p).await, "PRODUCTION_TRAFFIC_SHIFT@5");
    assert_eq!(check["reached"]["listener"], "production", "{check}");
    assert!(check["reached"]["note"].as_str().unwrap().contains("blue and green by weight"), "{check}");
    // Two passing rounds, then invocations that only read the metrics until the window ends.
    assert_eq!(check["rounds"], 2, "{check}");
    assert!(run.answers.len() >= 3, "{:?}", run.answers);
}

/// One clean canary deployment: the 5 % step, then ECS's completion. True when it was verified.
async fn clean_deployment(estate: &mut CanaryEstate, seed: u64) -> Result<(), String> {
    estate.traffic.seed(seed);
    estate.standin.seed(seed);
    let p: Pushed = estate.push(&format!("backend-clean-{seed}"), Behaviour::Flaky { errors_per_mille: 5 }).await;
    let run = estate.run_stage(&p, STEP, Some(5)).await;
    if run.status() != "SUCCEEDED" {
        return Err(format!("seed {seed}: {}", run.reason()));
    }
    let done = estate.complete(&p).await;
    let rec = estate.record(&p).await;
    let check = hook_check(&rec, "PRODUCTION_TRAFFIC_SHIFT@5");
    match (rec["status"].as_str(), check["reached"]["listener"].as_str()) {
        (Some("verified"), Some("test")) => Ok(()),
        (status, listener) => Err(format!("seed {seed}: {status:?} via {listener:?}: {done}")),
    }
}

#[tokio::test]
async fn fifty_seeded_clean_canary_deployments_where_green_and_blue_share_half_a_percent_of_errors_all_pass() {
    let scenario = |seed| Scenario {
        analysis: Some(analysis("1s", 200, "")),
        stages: vec![STEP],
        blue: Profile::new(0.005, 40.0, 90.0),
        green: Profile::new(0.005, 40.0, 90.0),
        seed,
        requests_per_second: 10_000,
        test_rule_to_green: true,
    };
    // Two estates side by side, 25 deployments each (the waits are ECS's call-back delays).
    let run = |first: u64| async move {
        let mut estate = CanaryEstate::start(scenario(first)).await;
        let mut failures = Vec::new();
        for seed in first..first + 25 {
            if let Err(why) = clean_deployment(&mut estate, seed).await {
                failures.push(why);
            }
        }
        assert!(estate.emu.guard.denied().is_empty(), "{:?}", estate.emu.guard.denied());
        failures
    };
    let (a, b) = tokio::join!(run(0), run(25));
    let failures: Vec<String> = a.into_iter().chain(b).collect();
    println!("false failures in 50 seeded clean canary deployments: {}", failures.len());
    assert!(failures.is_empty(), "false failures: {failures:#?}");
}

/// The todo backend as a rolling service baked on the primary group of an ALB in moto.
struct Rolling {
    emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
    traffic: Traffic,
    group: String,
    config: String,
}

impl Rolling {
    async fn start() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let alb = app.aws.create_blue_green_alb("todo-rolling").await;
        let traffic = Traffic::new(&app.aws, emu.guard.latencies.clone(), &alb.load_balancer);
        traffic.add_group(&alb.primary, 100, Profile::new(0.001, 40.0, 90.0));
        traffic.resolution(1);
        // No load_balancer: verify finds the one the group is attached to (DescribeTargetGroups).
        let config = format!(
            "{}\n[service.analysis]\nbake = \"4s\"\nmin_requests = 200\ntarget_groups = [\"{}\"]\n",
            testkit::estate::local_config(&standin.url()),
            alb.primary
        );
        Self { emu, app, standin, traffic, group: alb.primary.clone(), config }
    }

    /// Pushes a build of the backend whose users see `after`; ECS completes the rollout while
    /// the users' traffic goes on: verify's verdict and the record.
    async fn release(&self, seed: &str, after: Profile) -> (Value, Value) {
        // The five seconds before the deployment, as the users saw blue.
        self.traffic.run(5, 2_000, now_s()).await;
        let digest = self.app.aws.push_image("todo-backend", "latest", seed).await;
        let event = testkit::estate::ecr_push_event(seed, "todo-backend", "latest", &digest);
        let started =
            serde_json::to_value(deployer(&self.app.aws, &self.config).handle(event, "req").await.unwrap()).unwrap();
        assert_eq!(started["outcome"], "started", "{started}");
        let ecs_id = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
        self.traffic.set_profile(&self.group, after);
        let users = async {
            let mut published = now_s();
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now = now_s();
                if now > published {
                    self.traffic.run(u64::try_from(now - published).unwrap(), 2_000, now).await;
                    published = now;
                }
            }
        };
        let verify = verifier(&self.app.aws, &self.config, None);
        let event =
            ecs_deployment_event(&format!("ecs-{seed}"), "todo-backend", &ecs_id, "SERVICE_DEPLOYMENT_COMPLETED", "");
        let (answer, ()) = tokio::join!(verify.invoke(event, Instant::now() + Duration::from_secs(60)), users);
        let key = pushdeploy::domain::record::record_key(CLUSTER, "todo-backend", &ecs_id).unwrap();
        let rec = serde_json::from_slice(&self.app.aws.object(BUCKET, &key).await).unwrap();
        (serde_json::to_value(answer.unwrap()).unwrap(), rec)
    }
}

#[tokio::test]
async fn a_rolling_service_with_bake_rolls_back_on_a_latency_regression_and_keeps_a_clean_one() {
    let estate = Rolling::start().await;
    let before = estate.app.aws.service_task_definition(CLUSTER, "todo-backend").await;
    let (_, clean) = estate.release("backend-bake-clean", Profile::new(0.001, 40.0, 90.0)).await;
    assert_eq!(clean["status"], "verified", "{clean}");
    assert_eq!(clean["smoke"]["bake"]["call"], "pass", "{}", clean["smoke"]);
    let kept = estate.app.aws.service_task_definition(CLUSTER, "todo-backend").await;
    assert_ne!(kept, before);

    let (answer, slow) = estate.release("backend-bake-slow", Profile::new(0.001, 400.0, 900.0)).await;
    assert_eq!(slow["status"], "rolled_back", "{answer}");
    let why = slow["reason"].as_str().unwrap();
    assert!(why.contains("bake:") && why.contains("p95"), "{why}");
    assert_eq!(slow["smoke"]["bake"]["call"], "fail");
    assert!(slow["smoke"]["bake"]["green"]["p95_ms"].as_f64().unwrap() > 300.0, "{}", slow["smoke"]["bake"]);
    let now = estate.app.aws.service_task_definition(CLUSTER, "todo-backend").await;
    let backend = |images: Vec<(String, String)>| images.into_iter().find(|(c, _)| c == "backend");
    let (now, kept) = (estate.app.aws.images_of(&now).await, estate.app.aws.images_of(&kept).await);
    assert_eq!(backend(now), backend(kept), "back on the clean build");
    assert!(estate.emu.guard.denied().is_empty(), "{:?}", estate.emu.guard.denied());
    drop(estate.standin);
}
