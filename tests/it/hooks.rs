//! verify as the lifecycle hook of a blue/green (linear, canary) backend: ECS's invocations built
//! from the fixtures in `events/`, the stand-in's test and production listeners on 127.0.0.1, and
//! ECS's service deployments and revisions (which moto lacks) answered by the guard's emulation.

use std::time::{Duration, Instant};

use pushdeploy::flows::deploy::Deployer;
use pushdeploy::flows::verify::Verifier;
use serde_json::{json, Map, Value};
use testkit::estate::{
    blue_green_config, ecs_deployment_event, hook_invocation, Aws, HookCall, TodoApp, BUCKET, CLUSTER,
};
use testkit::guard::Emulator;
use testkit::standin::{Behaviour, Listener, SnsSink, TodoStandIn};

use crate::support::{deployer, verifier, Snapshot};

const BACKEND: &str = "todo-backend";

/// One pushed image, as the hook sees its deployment.
#[derive(Clone)]
struct Pushed {
    ecs_deployment_id: String,
    digest: String,
    blue: String,
    green: String,
    deployment_arn: String,
    revision_arn: String,
}

struct BlueGreen {
    app: TodoApp,
    standin: TodoStandIn,
    sink: SnsSink,
    deployer: Deployer,
    verifier: Verifier,
    emu: Emulator,
    seq: u32,
    /// ECS reports the service deployment rolling back (as it does for every invocation then).
    ecs_rolling_back: bool,
}

impl BlueGreen {
    async fn new(attempts: u32, consecutive: u32) -> Self {
        Self::with_config(attempts, consecutive, |c| c).await
    }

    /// The same, with the blue/green config as `edit` makes it.
    async fn with_config(attempts: u32, consecutive: u32, edit: impl FnOnce(String) -> String) -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
        let config = edit(blue_green_config(&standin.url(), &standin.test_url(), attempts, consecutive));
        let deployer = deployer(&app.aws, &config);
        let verifier = verifier(&app.aws, &config, Some(&sink.topic_arn));
        Self { app, standin, sink, deployer, verifier, emu, seq: 0, ecs_rolling_back: false }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }

    /// Pushes an image that behaves as `b`: deploy's UpdateService starts the blue/green
    /// deployment, and production stays on blue until the test shifts it.
    async fn push(&mut self, seed: &str, b: Behaviour) -> Pushed {
        self.seq += 1;
        let blue = self.aws().service_task_definition(CLUSTER, BACKEND).await;
        self.standin.hold_production(BACKEND, &blue);
        let digest = self.aws().push_image(BACKEND, "latest", seed).await;
        self.standin.set(digest.as_str(), b);
        let event = testkit::estate::ecr_push_event(&format!("push-{}", self.seq), BACKEND, "latest", &digest);
        let answer = serde_json::to_value(self.deployer.handle(event, "req").await.unwrap()).unwrap();
        assert_eq!(answer["outcome"], "started", "{answer}");
        let green = self.aws().service_task_definition(CLUSTER, BACKEND).await;
        let (deployment_arn, revision_arn) = self.aws().newest_service_deployment(CLUSTER, BACKEND).await;
        Pushed {
            ecs_deployment_id: answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string(),
            digest: digest.as_str().to_string(),
            blue,
            green,
            deployment_arn,
            revision_arn,
        }
    }

    /// One invocation of the hook at `stage`, as ECS makes it.
    async fn hook(
        &mut self,
        p: &Pushed,
        stage: &str,
        production: Option<(u32, u32)>,
        details: &Map<String, Value>,
    ) -> Value {
        self.seq += 1;
        // ECS is at this stage while it calls the hook (rolling back when green is at 0 %).
        let shift = matches!(stage, "TEST_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT");
        let rolling_back = self.ecs_rolling_back || (shift && production.is_some_and(|(green, _)| green == 0));
        let status = if rolling_back { "ROLLBACK_IN_PROGRESS" } else { "IN_PROGRESS" };
        self.emu.guard.ecs.set_service_deployment(&p.deployment_arn, status, Some(stage));
        let payload = hook_invocation(&HookCall {
            execution_id: &format!("exec-{}", self.seq),
            stage,
            service: BACKEND,
            deployment: &p.deployment_arn,
            revision: &p.revision_arn,
            production,
            hook_details: Some(Value::Object(details.clone())),
        });
        let answer = self.verifier.invoke(payload, Instant::now() + Duration::from_secs(60)).await.expect("an answer");
        serde_json::to_value(answer).unwrap()
    }

    /// Invokes `stage` until it answers SUCCEEDED or FAILED, merging each IN_PROGRESS answer's
    /// `hookDetails` into the next invocation's as ECS does; every answer, in order.
    async fn run_stage(&mut self, p: &Pushed, stage: &str, production: Option<(u32, u32)>) -> Vec<Value> {
        let mut details = Map::new();
        details.insert("team".into(), json!("todo"));
        let mut answers = Vec::new();
        for _ in 0..10 {
            let answer = self.hook(p, stage, production, &details).await;
            answers.push(answer.clone());
            if answer["hookStatus"] != "IN_PROGRESS" {
                return answers;
            }
            assert_eq!(answer["callBackDelay"], 1, "the configured interval, in seconds: {answer}");
            for (k, v) in answer["hookDetails"].as_object().unwrap() {
                details.insert(k.clone(), v.clone());
            }
        }
        panic!("{stage} never settled: {answers:?}")
    }

    /// Puts `tally` on the deployment's record, as earlier invocations would have left it.
    async fn keep_tally(&self, p: &Pushed, tally: Value) {
        let mut rec = self.record(p).await;
        rec["hook_tally"] = tally;
        let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, &p.ecs_deployment_id).unwrap();
        self.aws().put_json(BUCKET, &key, &rec).await;
    }

    /// The hook index object of the pushed image's service deployment, if written.
    async fn index(&self, p: &Pushed) -> Option<Value> {
        let got = self.aws().s3.get_object().bucket(BUCKET).key(index_key(p)).send().await.ok()?;
        Some(serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap())
    }

    async fn record(&self, p: &Pushed) -> Value {
        let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, &p.ecs_deployment_id).unwrap();
        serde_json::from_slice(&self.aws().object(BUCKET, &key).await).unwrap()
    }

    async fn ecs_says(&mut self, p: &Pushed, what: &str) -> Value {
        self.seq += 1;
        // ECS's service deployment ends as the event says.
        let status = if what.ends_with("COMPLETED") { "SUCCESSFUL" } else { "ROLLBACK_SUCCESSFUL" };
        self.emu.guard.ecs.set_service_deployment(&p.deployment_arn, status, None);
        let event = ecs_deployment_event(&format!("ecs-{}", self.seq), BACKEND, &p.ecs_deployment_id, what, "");
        serde_json::to_value(self.verifier.invoke(event, Instant::now() + Duration::from_secs(60)).await.unwrap())
            .unwrap()
    }

    /// Requests the production listener served from `digest`.
    fn production_served(&self, digest: &str) -> usize {
        self.standin.served().iter().filter(|s| s.listener == Listener::Production && s.digest == digest).count()
    }

    fn test_served(&self, digest: &str) -> usize {
        self.standin.served().iter().filter(|s| s.listener == Listener::Test && s.digest == digest).count()
    }
}

/// `hooks/<cluster>/<service>/<service deployment id>.json`.
fn index_key(p: &Pushed) -> String {
    format!("hooks/{CLUSTER}/{BACKEND}/{}.json", p.deployment_arn.rsplit('/').next().unwrap())
}

fn statuses(answers: &[Value]) -> Vec<&str> {
    answers.iter().map(|a| a["hookStatus"].as_str().unwrap()).collect()
}

fn reason(answer: &Value) -> &str {
    answer["hookDetails"]["pushdeploy"]["reason"].as_str().unwrap_or_default()
}

fn timeline(record: &Value) -> Vec<String> {
    record["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_good_image_passes_at_test_traffic_then_at_production_and_is_verified_without_a_second_test() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-good", Behaviour::Good).await;
    assert_ne!(p.blue, p.green);

    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "SUCCEEDED"], "{answers:?}");
    assert_eq!(answers[0]["hookDetails"]["pushdeploy"]["rounds"], 1);
    assert!(reason(&answers[1]).contains("passed through the test listener in 2 round(s)"), "{answers:?}");
    // The test listener answers only with the test header: green was reached through it.
    assert!(bg.test_served(&p.digest) >= 2 + 8, "two rounds and the probe (write, 6 reads, delete)");
    assert_eq!(bg.production_served(&p.digest), 0, "production has not seen green yet");
    assert_eq!(bg.standin.item_count(), 0, "the probe cleaned up");

    // A duplicate (or late) invocation answers the same, and tests nothing again.
    let before = (Snapshot::take(bg.aws()).await, bg.standin.served().len());
    let details = answers[0]["hookDetails"].as_object().unwrap().clone();
    let again = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!(again["hookStatus"], "SUCCEEDED");
    assert!(reason(&again).contains("already passed"), "{again}");
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before);

    // Stages pushdeploy does not check go on at once, and land on the timeline.
    let pre = bg.run_stage(&p, "PRE_PRODUCTION_TRAFFIC_SHIFT", Some((0, 100))).await;
    assert_eq!(statuses(&pre), ["SUCCEEDED"]);

    bg.standin.shift_production(BACKEND, &p.green, 100);
    let answers = bg.run_stage(&p, "POST_PRODUCTION_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "SUCCEEDED"], "{answers:?}");
    assert!(bg.production_served(&p.digest) >= 2);

    let served = bg.standin.served().len();
    let done = bg.ecs_says(&p, "SERVICE_DEPLOYMENT_COMPLETED").await;
    assert_eq!(done["outcome"], "verified", "{done}");
    assert!(done["reason"].as_str().unwrap().contains(
        "checked by the lifecycle hook at POST_TEST_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT; ECS completed the deployment"
    ));
    assert_eq!(bg.standin.served().len(), served, "ECS's completion is not smoke-tested again");

    let rec = bg.record(&p).await;
    assert_eq!(rec["status"], "verified");
    assert_eq!(rec["service_deployment_arn"], p.deployment_arn.as_str());
    let checks = rec["hook_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(
        (checks[0]["check"].as_str(), checks[0]["listener"].as_str()),
        (Some("POST_TEST_TRAFFIC_SHIFT"), Some("test"))
    );
    assert_eq!(checks[0]["passed"], true);
    assert_eq!(checks[0]["smoke"]["read_after_write"]["reads_seen"], 6);
    assert_eq!(checks[1]["listener"], "production");
    assert_eq!(
        timeline(&rec),
        [
            "pushed",
            "started",
            "post_test_traffic_shift",
            "post_test_traffic_shift_passed",
            "pre_production_traffic_shift",
            "post_production_traffic_shift",
            "post_production_traffic_shift_passed",
            "ecs_completed",
            "verified"
        ]
    );
    let notes = bg.sink.notifications();
    assert_eq!(notes.len(), 1, "one verdict, one message: {notes:?}");
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy verified: backend"));
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_broken_image_fails_at_test_traffic_and_production_never_serves_it() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-broken", Behaviour::Broken).await;

    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;
    // Five attempts, two in a row needed: after the fourth failure one round cannot make two.
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "FAILED"], "{answers:?}");
    let why = reason(&answers[3]);
    assert!(
        why.starts_with("POST_TEST_TRAFFIC_SHIFT check failed through the test listener: GET todoItems: status 500"),
        "{why}"
    );
    assert!(why.contains("production never served it"), "{why}");
    assert_eq!(bg.production_served(&p.digest), 0, "production never routed to the broken image");
    assert_eq!(
        bg.aws().service_task_definition(CLUSTER, BACKEND).await,
        p.green,
        "pushdeploy leaves the rollback to ECS: no UpdateService of its own"
    );

    let rec = bg.record(&p).await;
    assert_eq!(rec["status"], "rolled_back");
    assert_eq!(rec["rolled_back_by"], "ecs");
    assert_eq!(rec["rolled_back_to"], p.blue.as_str());
    assert_eq!(rec["hook_checks"][0]["passed"], false);
    assert_eq!(rec["hook_checks"][0]["rounds"], 4);
    assert!(timeline(&rec).ends_with(&["post_test_traffic_shift_failed".to_string(), "rolled_back".to_string()]));
    let notes = bg.sink.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ROLLED BACK: backend"));
    let message = notes[0]["Message"].as_str().unwrap();
    assert!(message.lines().next().unwrap().contains("POST_TEST_TRAFFIC_SHIFT check failed"), "{message}");
    assert!(message.lines().next().unwrap().contains("production never served it"), "{message}");
    assert!(message.contains("rolled back by: ECS"), "{message}");
    assert!(
        message.contains(
            "hook check POST_TEST_TRAFFIC_SHIFT through the test listener (0% of production on the new revision), 4 round(s): FAILED: GET todoItems: status 500"
        ),
        "{message}"
    );

    // ECS rolls back: its traffic-shift hooks come again with green at 0 %; pushdeploy lets it.
    let back = bg.run_stage(&p, "PRODUCTION_TRAFFIC_SHIFT", Some((0, 100))).await;
    assert_eq!(statuses(&back), ["SUCCEEDED"], "{back:?}");
    // A late duplicate of the failed stage answers FAILED again; ECS's events never verify it.
    let before = (Snapshot::take(bg.aws()).await, bg.standin.served().len());
    let late = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(late["hookStatus"], "FAILED");
    assert!(reason(&late).contains("already failed"), "{late}");
    for what in ["SERVICE_DEPLOYMENT_FAILED", "SERVICE_DEPLOYMENT_COMPLETED"] {
        let answer = bg.ecs_says(&p, what).await;
        assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    }
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before);
    assert_eq!(bg.record(&p).await["status"], "rolled_back");
    assert_eq!(bg.sink.notifications().len(), 1);
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_failure_at_a_canary_step_fails_while_blue_still_serves_the_rest() {
    // Every round must pass: one bad answer at a canary step is enough.
    let mut bg = BlueGreen::new(3, 3).await;
    let p = bg.push("backend-bg-canary", Behaviour::Good).await;
    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"]);

    // Under production's data the new image breaks: 10 % of production reaches it. The stand-in
    // sends each request to green at random by weight, as an ALB does, from its fixed seed: this
    // draw reaches green in the first round, which a real ALB need not do (`canary::` shows the
    // analysis that judges such a step on green's own traffic).
    bg.standin.set(&p.digest, Behaviour::Broken);
    bg.standin.shift_production(BACKEND, &p.green, 10);
    let answers = bg.run_stage(&p, "PRODUCTION_TRAFFIC_SHIFT", Some((10, 90))).await;
    assert_eq!(statuses(&answers), ["FAILED"], "{answers:?}");
    let why = reason(&answers[0]);
    assert!(why.starts_with("PRODUCTION_TRAFFIC_SHIFT@10 check failed through the production listener"), "{why}");
    assert!(why.contains("10% of production traffic reached it"), "{why}");

    let rec = bg.record(&p).await;
    assert_eq!(rec["status"], "rolled_back");
    assert_eq!(rec["rolled_back_by"], "ecs");
    let checks: Vec<(&str, bool)> = rec["hook_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(checks, [("POST_TEST_TRAFFIC_SHIFT", true), ("PRODUCTION_TRAFFIC_SHIFT@10", false)]);
    assert!(timeline(&rec).contains(&"production_traffic_shift_10pct_failed".to_string()));
    let notes = bg.sink.notifications();
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["Message"].as_str().unwrap().contains("10% of production traffic reached it"));
}

#[tokio::test]
async fn a_slow_service_passes_on_the_third_round_across_three_invocations() {
    let mut bg = BlueGreen::new(5, 1).await;
    let p = bg.push("backend-bg-slow", Behaviour::Broken).await;
    let mut details = Map::new();
    details.insert("team".into(), json!("todo"));
    let mut answers = Vec::new();
    for invocation in 1..=3 {
        if invocation == 3 {
            bg.standin.set(&p.digest, Behaviour::Good); // warmed up
        }
        let calls_before = bg.emu.guard.calls().len();
        let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
        let mut ops: Vec<String> = bg.emu.guard.calls()[calls_before..].iter().map(|c| c.operation.clone()).collect();
        ops.sort();
        if invocation == 1 {
            // No index yet (one GET); the green revision's task definition → ECS's deployment of
            // it → its record: no listing. ECS confirms the stage; the index is written for later
            // stages; the record keeps the tally (one write per round).
            assert_eq!(
                ops,
                [
                    "ecs:DescribeServiceDeployments",
                    "ecs:DescribeServiceRevisions",
                    "ecs:DescribeServices",
                    "s3:GetObject",
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:PutObject",
                    "s3:PutObject"
                ],
                "invocation {invocation}"
            );
        }
        if invocation == 2 {
            // hookDetails name the record: one GET, no revision lookup, no listing; ECS confirms
            // the stage and the round's tally is written to the record.
            assert_eq!(
                ops,
                ["ecs:DescribeServiceDeployments", "s3:GetObject", "s3:PutObject"],
                "invocation {invocation}"
            );
        }
        if answer["hookStatus"] == "IN_PROGRESS" {
            let carried = &answer["hookDetails"]["pushdeploy"];
            assert_eq!((carried["rounds"].as_u64(), carried["streak"].as_u64()), (Some(invocation), Some(0)));
            for (k, v) in answer["hookDetails"].as_object().unwrap() {
                details.insert(k.clone(), v.clone());
            }
        }
        answers.push(answer);
    }
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"], "{answers:?}");
    assert_eq!(details["team"], "todo", "the user's own hookDetails are left alone");
    let rec = bg.record(&p).await;
    assert_eq!(rec["hook_checks"][0]["rounds"], 3);
    assert_eq!(rec["status"], "started", "ECS has not completed the deployment yet");
}

#[tokio::test]
async fn an_unknown_revision_or_a_garbage_payload_touches_nothing() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-known", Behaviour::Good).await;
    let before = (Snapshot::take(bg.aws()).await, bg.standin.served().len());

    // A revision ECS does not know, and one ECS knows that pushdeploy did not deploy (Terraform's).
    let unknown = Pushed { revision_arn: format!("{}9", p.revision_arn), ..p.clone() };
    let answer = bg.hook(&unknown, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert!(reason(&answer).contains("ECS knows no service revision"), "{answer}");
    assert!(reason(&answer).contains("not pushdeploy's deployment"), "{answer}");
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before);

    let revision = bg.aws().register_changed_revision(&p.green, ("TERRAFORM", "1")).await;
    // As ECS does for a new task definition (moto changes the deployment id only when forced).
    bg.aws()
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service(BACKEND)
        .task_definition(&revision)
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    let (deployment_arn, revision_arn) = bg.aws().newest_service_deployment(CLUSTER, BACKEND).await;
    let theirs = Pushed { deployment_arn, revision_arn, ..p.clone() };
    let before = (Snapshot::take(bg.aws()).await, bg.standin.served().len());
    let answer = bg.hook(&theirs, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert!(reason(&answer).contains("no pushdeploy deployment of todo-cluster/todo-backend registered"), "{answer}");
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before);

    // Garbage shaped like a hook invocation: FAILED with the reason, so ECS keeps blue.
    for garbage in [
        json!({"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT", "executionDetails": "nope"}),
        json!({"executionId": "x", "lifecycleStage": "LAUNCH", "executionDetails": {}}),
        json!({"hookDetails": {"pushdeploy": {"rounds": "many"}}}),
    ] {
        let answer = serde_json::to_value(
            bg.verifier.invoke(garbage.clone(), Instant::now() + Duration::from_secs(60)).await.unwrap(),
        )
        .unwrap();
        assert_eq!(answer["hookStatus"], "FAILED", "{garbage} → {answer}");
        assert!(reason(&answer).starts_with("malformed lifecycle hook payload: "), "{answer}");
        assert!(reason(&answer).contains("ECS rolls the deployment back (the safe side)"), "{answer}");
    }
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before);
    assert!(bg.sink.notifications().is_empty());
}

#[tokio::test]
async fn a_budget_that_can_no_longer_pass_fails_at_once_without_a_round() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-budget", Behaviour::Good).await;
    let rec_id = bg.record(&p).await["id"].as_str().unwrap().to_string();
    // Four rounds used, none passing (the record keeps the tally): one left cannot make two in a row.
    bg.keep_tally(&p, json!({"check": "POST_TEST_TRAFFIC_SHIFT", "deployment": rec_id, "rounds": 4, "streak": 0, "started_ms": pushdeploy::domain::timing::now_ms()})).await;
    let served = bg.standin.served().len();
    let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer}");
    assert!(reason(&answer).contains("4 of 5 rounds used with 0 passing in a row"), "{answer}");
    assert_eq!(bg.standin.served().len(), served, "no round was run");
    assert_eq!(bg.record(&p).await["status"], "rolled_back");

    // The hook's own timeout (10 min) as good as gone: the next push fails at once too.
    let p = bg.push("backend-bg-late", Behaviour::Good).await;
    let rec_id = bg.record(&p).await["id"].as_str().unwrap().to_string();
    bg.keep_tally(&p, json!({"check": "POST_TEST_TRAFFIC_SHIFT", "deployment": rec_id, "rounds": 1, "streak": 0, "started_ms": pushdeploy::domain::timing::now_ms() - 599_500})).await;
    let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer}");
    assert!(reason(&answer).contains("the hook's timeout (10 min) would pass"), "{answer}");
}

#[tokio::test]
async fn a_forged_tally_in_hook_details_counts_for_nothing() {
    // Three passing rounds in a row required. An invoker forges hookDetails claiming two already
    // passed: one good round would then pass the whole stage.
    let mut bg = BlueGreen::new(5, 3).await;
    let p = bg.push("backend-bg-forged-tally", Behaviour::Good).await;
    let rec_id = bg.record(&p).await["id"].as_str().unwrap().to_string();
    let mut forged = Map::new();
    forged.insert(
        "pushdeploy".into(),
        json!({"check": "POST_TEST_TRAFFIC_SHIFT", "deployment": rec_id, "rounds": 2, "streak": 2, "started_ms": pushdeploy::domain::timing::now_ms()}),
    );
    let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &forged).await;
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "one round is one round: {answer}");
    assert_eq!(answer["hookDetails"]["pushdeploy"]["rounds"], 1, "{answer}");
    let rec = bg.record(&p).await;
    assert_eq!(rec["hook_tally"]["rounds"], 1, "the record keeps the count: {rec}");
    assert_eq!(rec["hook_tally"]["streak"], 1);
    assert!(rec["hook_checks"].as_array().is_none_or(|c| c.is_empty()), "no verdict yet: {rec}");
    // The forged count keeps coming back: it still takes three real rounds.
    let again = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &forged).await;
    assert_eq!(again["hookStatus"], "IN_PROGRESS", "{again}");
    let third = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &forged).await;
    assert_eq!(third["hookStatus"], "SUCCEEDED", "{third}");
    assert_eq!(bg.record(&p).await["hook_checks"][0]["rounds"], 3);
}

#[tokio::test]
async fn a_hook_payload_ecs_does_not_bear_out_checks_and_records_nothing() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-forged-stage", Behaviour::Good).await;
    // ECS is at POST_TEST_TRAFFIC_SHIFT; the forger claims POST_PRODUCTION_TRAFFIC_SHIFT, whose
    // check would pass on blue (production) and be answered "already passed" when ECS gets there.
    let before = (Snapshot::take(bg.aws()).await, bg.standin.served().len());
    bg.seq += 1;
    bg.emu.guard.ecs.set_service_deployment(&p.deployment_arn, "IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
    let forged = |stage: &'static str, deployment: &str| {
        hook_invocation(&HookCall {
            execution_id: "exec-forged",
            stage,
            service: BACKEND,
            deployment,
            revision: &p.revision_arn,
            production: None,
            hook_details: None,
        })
    };
    for payload in [
        forged("POST_PRODUCTION_TRAFFIC_SHIFT", &p.deployment_arn),
        // A deployment ARN ECS never made.
        forged("POST_TEST_TRAFFIC_SHIFT", &format!("{}0", p.deployment_arn)),
    ] {
        let answer =
            serde_json::to_value(bg.verifier.invoke(payload, Instant::now() + Duration::from_secs(60)).await.unwrap())
                .unwrap();
        assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer}");
        assert!(reason(&answer).contains("ECS does not confirm this invocation"), "{answer}");
    }
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before, "nothing checked, nothing written");

    // ECS really is at the stage: the same invocation is checked.
    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "SUCCEEDED"]);

    // A forged SERVICE_DEPLOYMENT_COMPLETED while ECS is still at the test stage: not believed,
    // so the production stages are not skipped and nothing is verified.
    bg.emu.guard.ecs.set_rollout_state(&p.ecs_deployment_id, "IN_PROGRESS");
    let before = (Snapshot::take(bg.aws()).await, bg.standin.served().len());
    let err = bg
        .verifier
        .invoke(
            ecs_deployment_event("ecs-forged", BACKEND, &p.ecs_deployment_id, "SERVICE_DEPLOYMENT_COMPLETED", ""),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(err.is_transient() && err.to_string().contains("is not confirmed"), "{err}");
    assert!(err.to_string().contains("IN_PROGRESS, not SUCCESSFUL"), "{err}");
    assert_eq!((Snapshot::take(bg.aws()).await, bg.standin.served().len()), before);
    assert_eq!(bg.record(&p).await["status"], "started");
    assert!(bg.sink.notifications().is_empty());
    // The production stage is still checked when ECS gets there.
    bg.standin.shift_production(BACKEND, &p.green, 100);
    let answers = bg.run_stage(&p, "POST_PRODUCTION_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "SUCCEEDED"]);
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn plan_shows_the_strategy_and_where_ecs_and_the_hook_config_disagree() {
    let mut bg = BlueGreen::new(5, 2).await;
    let digest = bg.aws().push_image(BACKEND, "latest", "backend-plan").await;
    let plan = json!({"action": "plan", "service": "backend"});
    let rollout = |answer: &Value| answer["deployments"][0]["ecs_rollout"].as_str().unwrap_or_default().to_string();

    let rolling = serde_json::to_value(bg.deployer.handle(plan.clone(), "req-1").await.unwrap()).unwrap();
    assert_eq!(rolling["outcome"], "planned", "{rolling}");
    assert!(rollout(&rolling)
        .starts_with("ECS rolls it out ROLLING; pushdeploy.toml has [service.hook] but ECS calls no hook"));

    bg.emu.guard.set_fixture(
        "ecs:DescribeServices",
        testkit::estate::blue_green_service(
            BACKEND,
            &["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"],
        ),
    );
    // The stand-in's test listener has its own port: within verify's reach only in the VPC.
    let outside = serde_json::to_value(bg.deployer.handle(plan.clone(), "req-2").await.unwrap()).unwrap();
    assert!(rollout(&outside).contains("; warning: smoke.test_url is on port"), "{outside}");
    bg.deployer.verify_in_vpc = true;
    let before = Snapshot::take(bg.aws()).await;
    let answer = serde_json::to_value(bg.deployer.handle(plan, "req-2").await.unwrap()).unwrap();
    assert_eq!(
        rollout(&answer),
        "ECS rolls it out BLUE_GREEN, calling lifecycle hooks at POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT"
    );
    assert!(answer["deployments"][0]["image"].as_str().unwrap().ends_with(digest.as_str()));
    assert_eq!(Snapshot::take(bg.aws()).await, before, "a plan changes nothing");

    // deploy works unchanged: UpdateService starts the blue/green deployment.
    bg.seq += 1;
    let event = testkit::estate::ecr_push_event("push-plan", BACKEND, "latest", &digest);
    let started = serde_json::to_value(bg.deployer.handle(event, "req-3").await.unwrap()).unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_hook_denied_by_iam_fails_loudly_on_the_record_the_topic_and_the_error() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-denied", Behaviour::Good).await;
    bg.emu.guard.set_policies(testkit::iam::Policies::template().without(testkit::iam::Role::Verify, |s| {
        // TheClustersServicesWithShortArns (service/* of this cluster) would allow it too.
        matches!(s["Sid"].as_str(), Some("ReadTheRevisionAHookChecks" | "TheClustersServicesWithShortArns"))
    }));
    let payload = hook_invocation(&HookCall {
        execution_id: "exec-denied",
        stage: "POST_TEST_TRAFFIC_SHIFT",
        service: BACKEND,
        deployment: &p.deployment_arn,
        revision: &p.revision_arn,
        production: None,
        hook_details: None,
    });
    let err = bg.verifier.invoke(payload, Instant::now() + Duration::from_secs(60)).await.unwrap_err();
    assert!(err.is_access_denied() && !err.is_transient(), "{err}");
    assert!(err.to_string().contains("ECS DescribeServiceRevisions"), "{err}");

    let rec = bg.record(&p).await;
    assert_eq!(rec["status"], "rolled_back", "ECS rolls back a hook that fails");
    assert_eq!(rec["rolled_back_by"], "ecs");
    assert!(rec["reason"].as_str().unwrap().contains("pushdeploy could not check POST_TEST_TRAFFIC_SHIFT"), "{rec}");
    assert_eq!(rec["timeline"].as_array().unwrap().last().unwrap()["event"], "error");
    let told = bg.sink.notifications();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0]["Subject"]
        .as_str()
        .unwrap()
        .starts_with("pushdeploy ACTION NEEDED: backend cannot check POST_TEST"));
    assert!(told[0]["Message"].as_str().unwrap().contains("AccessDenied"));
    assert_eq!(bg.standin.served().iter().filter(|s| s.digest == p.digest).count(), 0, "no round without the record");
}

#[tokio::test]
async fn a_hook_sends_the_credential_from_ssm_through_the_test_listener_and_reads_it_once_for_its_invocations() {
    const TOKEN: &str = "hook-t0k3n-71c9e0";
    let header = "headers = { Authorization = { ssm = \"/pushdeploy/todo/api-token\" } }\n";
    let mut bg = BlueGreen::with_config(5, 2, |c| {
        c.replacen(
            "[[service.smoke.check]]\npath = \"todoItems\"\n",
            &format!("[[service.smoke.check]]\npath = \"todoItems\"\n{header}"),
            1,
        )
        .replacen("id_pointer = \"/id\"\n", &format!("id_pointer = \"/id\"\n{header}"), 1)
    })
    .await;
    bg.aws().put_secure_string("/pushdeploy/todo/api-token", &format!("Bearer {TOKEN}"), None).await;
    bg.standin.require_api_authorization(&format!("Bearer {TOKEN}"));
    let p = bg.push("backend-bg-signed-in", Behaviour::Good).await;

    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;

    assert_eq!(statuses(&answers), ["IN_PROGRESS", "SUCCEEDED"], "{answers:?}");
    let through_test: Vec<_> = bg.standin.served().into_iter().filter(|s| s.listener == Listener::Test).collect();
    assert!(through_test.len() >= 2 + 8, "two rounds and the probe");
    let bearer = format!("Bearer {TOKEN}");
    assert!(through_test.iter().all(|s| s.authorization.as_deref() == Some(bearer.as_str()) && s.status < 300));
    // Two invocations, one read: the value is kept for a minute between ECS's call-backs.
    let reads = bg.emu.guard.calls().into_iter().filter(|c| c.operation == "ssm:GetParameter").count();
    assert_eq!(reads, 1);
    let rec = bg.record(&p).await;
    assert_eq!(
        rec["hook_checks"][0]["smoke"]["secret_headers"],
        json!(["Authorization (from ssm:/pushdeploy/todo/api-token)"])
    );
    let versions = bg.aws().s3.list_object_versions().bucket(BUCKET).send().await.unwrap();
    for v in versions.versions() {
        let (key, id) = (v.key().unwrap(), v.version_id().unwrap());
        let got = bg.aws().s3.get_object().bucket(BUCKET).key(key).version_id(id).send().await.unwrap();
        let text = got.body.collect().await.unwrap().into_bytes();
        assert!(!String::from_utf8_lossy(&text).contains(TOKEN), "{key}@{id} holds the token");
    }
    assert!(answers.iter().all(|a| !a.to_string().contains(TOKEN)));
    assert!(bg.sink.notifications().iter().all(|n| !n.to_string().contains(TOKEN)));
}

#[tokio::test]
async fn every_stages_first_invocation_finds_the_record_with_one_get_of_the_index() {
    let mut bg = BlueGreen::new(5, 1).await;
    let p = bg.push("backend-bg-indexed", Behaviour::Good).await;
    let rec_id = bg.record(&p).await["id"].as_str().unwrap().to_string();
    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["SUCCEEDED"], "{answers:?}");
    let index = bg.index(&p).await.expect("the first lookup writes the index");
    assert_eq!(
        index,
        json!({"service_deployment_arn": p.deployment_arn, "record": rec_id, "stuck_budget_ms": 300_000})
    );

    // ECS passes no runtime hookDetails from one stage's hook to the next: only the user's own.
    bg.standin.shift_production(BACKEND, &p.green, 100);
    let mut details = Map::new();
    details.insert("team".into(), json!("todo"));
    let before = bg.emu.guard.calls().len();
    let answer = bg.hook(&p, "POST_PRODUCTION_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    let mut ops: Vec<String> = bg.emu.guard.calls()[before..].iter().map(|c| c.operation.clone()).collect();
    ops.sort();
    // The index (one GET) names the record (its GET): no DescribeServiceRevisions, no
    // DescribeServices; ECS confirms the stage; the check's start and verdict are written.
    assert_eq!(ops, ["ecs:DescribeServiceDeployments", "s3:GetObject", "s3:GetObject", "s3:PutObject", "s3:PutObject"]);
    let reads: Vec<String> = bg.emu.guard.calls()[before..]
        .iter()
        .filter(|c| c.operation == "s3:GetObject")
        .map(|c| c.checks[0].0.resource.clone())
        .collect();
    assert!(reads[0].ends_with(&index_key(&p)) && reads[1].ends_with(&format!("{rec_id}.json")), "{reads:?}");
    assert_eq!(bg.record(&p).await["hook_checks"].as_array().unwrap().len(), 2);

    // An index naming a record not tied to this service deployment is not believed: the full
    // lookup finds the right record.
    let other = bg.push("backend-bg-indexed-2", Behaviour::Good).await;
    let forged = json!({"service_deployment_arn": other.deployment_arn, "record": rec_id});
    bg.aws().put_json(BUCKET, &index_key(&other), &forged).await;
    let answers = bg.run_stage(&other, "POST_TEST_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["SUCCEEDED"]);
    assert_eq!(bg.record(&other).await["hook_checks"][0]["passed"], true);
    assert_eq!(bg.record(&p).await["hook_checks"].as_array().unwrap().len(), 2, "the first record is untouched");
    let other_id = bg.record(&other).await["id"].as_str().unwrap().to_string();
    assert_eq!(bg.index(&other).await.unwrap()["record"], other_id.as_str());
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_pushdeploy_revision_whose_record_is_not_written_yet_waits_and_is_counted() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-unrecorded", Behaviour::Good).await;
    // The moment between deploy's UpdateService and its record's write.
    let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, &p.ecs_deployment_id).unwrap();
    let rec = bg.record(&p).await;
    bg.aws().s3.delete_object().bucket(BUCKET).key(&key).send().await.unwrap();
    let served = bg.standin.served().len();
    let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "never let through unchecked: {answer}");
    assert!(
        reason(&answer).contains("the revision carries pushdeploy's tags: its record is not written yet"),
        "{answer}"
    );
    assert_eq!(answer["hookDetails"]["pushdeploy"]["stuck"]["invocations"], 1, "{answer}");
    assert_eq!(bg.standin.served().len(), served, "no round without the record");
    let index = bg.index(&p).await.expect("the count is kept where the hook finds it without the record");
    assert_eq!(index["stuck"]["invocations"], 1);
    assert_eq!(index["stuck"]["check"], "POST_TEST_TRAFFIC_SHIFT");

    // The record lands: the next call-back checks as usual.
    bg.aws().put_json(BUCKET, &key, &rec).await;
    let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer}");
    assert_eq!(answer["hookDetails"]["pushdeploy"]["rounds"], 1, "a round ran: {answer}");
    assert!(bg.standin.served().len() > served);
    assert_eq!(bg.index(&p).await.unwrap()["record"], rec["id"]);
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_hook_stuck_past_its_budget_fails_once_with_the_reason_on_the_record() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-stuck", Behaviour::Good).await;
    let first = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(first["hookStatus"], "IN_PROGRESS");
    let details = first["hookDetails"].as_object().unwrap().clone();

    // ECS's API throttles verify for as long as the test lasts: no invocation can confirm its stage.
    let proxy = testkit::faults::FaultProxy::start(&bg.emu.endpoint, Duration::from_secs(1)).await;
    proxy.inject("ecs:DescribeServiceDeployments", testkit::faults::Fault::Throttle, 1_000);
    let throttled = Aws::new(&proxy.endpoint).await.as_role(testkit::iam::Role::Verify);
    bg.verifier.ecs = pushdeploy::aws::ecs::EcsClient::new(throttled.ecs.clone());
    let stuck = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!(stuck["hookStatus"], "IN_PROGRESS", "{stuck}");
    assert!(reason(&stuck).contains("ECS DescribeServiceDeployments"), "{stuck}");
    assert!(reason(&stuck).contains("1 stuck invocation(s) so far; FAILED once they span 300 s"), "{stuck}");
    assert_eq!(stuck["hookDetails"]["pushdeploy"]["rounds"], 1, "the smoke tally stays as it was");
    let mut index = bg.index(&p).await.unwrap();
    assert_eq!(index["stuck"]["invocations"], 1);

    // Five minutes (timeout_minutes = 10, so stuck_minutes defaults to 5) of such invocations.
    let now = pushdeploy::domain::timing::now_ms();
    index["stuck"]["since_ms"] = json!(now - 300_000);
    index["stuck"]["last_ms"] = json!(now - 30_000);
    index["stuck"]["invocations"] = json!(10);
    bg.aws().put_json(BUCKET, &index_key(&p), &index).await;
    let failed = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!(failed["hookStatus"], "FAILED", "{failed}");
    let why = reason(&failed).to_string();
    assert!(why.starts_with("POST_TEST_TRAFFIC_SHIFT could not be checked for 30"), "{why}");
    assert!(why.contains(" s over 11 invocations (last: ECS DescribeServiceDeployments"), "{why}");
    assert!(why.contains("budget of 300 s for a stuck hook is spent"), "{why}");

    let rec = bg.record(&p).await;
    assert_eq!(rec["status"], "rolled_back");
    assert_eq!(rec["rolled_back_by"], "ecs");
    assert_eq!(rec["rolled_back_to"], p.blue.as_str());
    assert_eq!(rec["reason"], why.as_str());
    assert_eq!(timeline(&rec).last().unwrap(), "hook_stuck");
    let notes = bg.sink.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ROLLED BACK: backend"), "{notes:?}");
    assert!(notes[0]["Message"].as_str().unwrap().contains("budget of 300 s for a stuck hook is spent"));

    // A late invocation of the same check answers the same and tells nobody again.
    let again = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!((again["hookStatus"].as_str(), reason(&again)), (Some("FAILED"), why.as_str()));
    assert_eq!(bg.sink.notifications().len(), 1);
    assert_eq!(bg.record(&p).await, rec);
    // ECS rolls back while its API still throttles: the shifts back to blue pass, never counted.
    let back = bg.hook(&p, "PRODUCTION_TRAFFIC_SHIFT", Some((0, 100)), &Map::new()).await;
    assert_eq!(back["hookStatus"], "SUCCEEDED", "{back}");
    assert!(
        reason(&back).contains("pushdeploy never holds up a rollback (not recorded: ECS DescribeServiceDeployments")
    );
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_rollbacks_traffic_shifts_pass_at_once_and_are_stamped_on_the_record() {
    let mut bg = BlueGreen::new(3, 3).await;
    let p = bg.push("backend-bg-rolling-back", Behaviour::Good).await;
    assert_eq!(
        statuses(&bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await),
        ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"]
    );
    bg.standin.set(&p.digest, Behaviour::Broken);
    bg.standin.shift_production(BACKEND, &p.green, 10);
    assert_eq!(statuses(&bg.run_stage(&p, "PRODUCTION_TRAFFIC_SHIFT", Some((10, 90))).await), ["FAILED"]);
    assert_eq!(bg.record(&p).await["status"], "rolled_back");

    // ECS rolls back: it invokes the traffic-shift hooks again, green still the target, its share
    // moving back to blue (through the very weight whose check failed), then with no weights.
    bg.ecs_rolling_back = true;
    let served = bg.standin.served().len();
    for (stage, production) in [
        ("PRODUCTION_TRAFFIC_SHIFT", Some((10, 90))),
        ("PRODUCTION_TRAFFIC_SHIFT", Some((5, 95))),
        ("TEST_TRAFFIC_SHIFT", None),
    ] {
        let answer = bg.hook(&p, stage, production, &Map::new()).await;
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{stage} {production:?}: {answer}");
        assert!(reason(&answer).contains("pushdeploy never holds up a rollback"), "{answer}");
    }
    assert_eq!(bg.standin.served().len(), served, "a rollback's shifts are not checked");
    let rec = bg.record(&p).await;
    assert_eq!(rec["status"], "rolled_back");
    assert_eq!(timeline(&rec).iter().filter(|e| *e == "ecs_rolling_back").count(), 1, "stamped once: {rec}");
    assert_eq!(bg.sink.notifications().len(), 1, "the verdict's one message");

    // ECS also rolls back a deployment whose checks passed (an alarm): its shifts back pass too.
    bg.ecs_rolling_back = false;
    bg.standin.set(&p.digest, Behaviour::Good); // the next push's blue: production's other half
    let open = bg.push("backend-bg-alarm", Behaviour::Good).await;
    assert_eq!(
        statuses(&bg.run_stage(&open, "POST_TEST_TRAFFIC_SHIFT", None).await),
        ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"]
    );
    bg.standin.shift_production(BACKEND, &open.green, 50);
    assert_eq!(
        statuses(&bg.run_stage(&open, "PRODUCTION_TRAFFIC_SHIFT", Some((50, 50))).await).last(),
        Some(&"SUCCEEDED")
    );
    bg.ecs_rolling_back = true;
    let served = bg.standin.served().len();
    let answer = bg.hook(&open, "PRODUCTION_TRAFFIC_SHIFT", Some((20, 80)), &Map::new()).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert_eq!(bg.standin.served().len(), served);
    assert!(timeline(&bg.record(&open).await).contains(&"ecs_rolling_back".to_string()));
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}

#[tokio::test]
async fn a_hook_for_a_service_this_release_cannot_read_waits_and_checks_nothing() {
    let mut bg = BlueGreen::new(5, 2).await;
    let p = bg.push("backend-bg-newer", Behaviour::Good).await;
    // The config now has a key in the backend's entry that this release does not read.
    let text = blue_green_config(&bg.standin.url(), &bg.standin.test_url(), 5, 2).replacen(
        "repository = \"todo-backend\"\n",
        "repository = \"todo-backend\"\napproval = \"manual\"\n",
        1,
    );
    let config = pushdeploy::config::Config::read(&text, "test.toml").expect("readable but for the backend");
    assert_eq!(config.unreadable().len(), 1);
    let clients = testkit::configs::clients(&bg.aws().as_role(testkit::iam::Role::Verify), Some(&bg.sink.topic_arn));
    bg.verifier = Verifier::new(config, &clients, pushdeploy::smoke::client::HttpClient::new());
    let served = bg.standin.served().len();

    let answer = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "neither passed nor failed: {answer}");
    let why = reason(&answer);
    assert!(
        why.contains("cannot read the config of service backend") && why.contains("service[1].approval: unknown key"),
        "{answer}"
    );
    assert!(why.contains("FAILED once they span 1800 s"), "counted against the stuck budget: {answer}");
    assert_eq!(bg.standin.served().len(), served, "no smoke request with settings it cannot read");
    assert_eq!(bg.aws().service_task_definition(CLUSTER, BACKEND).await, p.green, "ECS left as it was");
}

/// Observe mode: a failing check runs every round as in enforce mode, then answers SUCCEEDED and
/// records the FAILED it would have answered; every later stage goes on without a round, ECS's
/// completion leaves the verdict standing, and nothing is rolled back.
#[tokio::test]
async fn in_observe_mode_a_failing_check_answers_succeeded_and_records_would_answer_failed() {
    let observe = |c: String| c.replacen("[defaults]\n", "[defaults]\nmode = \"observe\"\n", 1);
    let mut bg = BlueGreen::with_config(5, 2, observe).await;
    let p = bg.push("backend-bg-observed", Behaviour::Broken).await;

    let answers = bg.run_stage(&p, "POST_TEST_TRAFFIC_SHIFT", None).await;
    assert_eq!(statuses(&answers), ["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"], "{answers:?}");
    let why = reason(&answers[3]);
    assert!(
        why.starts_with(
            "observe: would answer FAILED: POST_TEST_TRAFFIC_SHIFT check failed through the test listener: GET todoItems: status 500"
        ),
        "{why}"
    );
    assert!(why.contains("ECS would roll back to") && why.ends_with("answered SUCCEEDED, so the deployment went on"));
    let rec = bg.record(&p).await;
    assert_eq!((rec["status"].as_str(), rec["mode"].as_str()), (Some("failed"), Some("observe")), "{rec}");
    assert_eq!(rec["reason"], why);
    assert!(rec["rolled_back_by"].is_null() && rec["rolled_back_to"].is_null(), "{rec}");
    assert_eq!(
        (rec["hook_checks"][0]["passed"].as_bool(), rec["hook_checks"][0]["rounds"].as_u64()),
        (Some(false), Some(4))
    );
    assert!(timeline(&rec).ends_with(&["post_test_traffic_shift_failed".to_string(), "would_roll_back".to_string()]));
    let notes = bg.sink.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy observe, would roll back: backend"));
    let message = notes[0]["Message"].as_str().unwrap();
    assert!(
        message.lines().next().unwrap().contains("observe: would answer FAILED: POST_TEST_TRAFFIC_SHIFT"),
        "{message}"
    );

    // ECS goes on: production shifts to green and the later stages pass without another round.
    let served = bg.standin.served().len();
    let shifted = bg.run_stage(&p, "PRODUCTION_TRAFFIC_SHIFT", Some((100, 0))).await;
    let after = bg.run_stage(&p, "POST_PRODUCTION_TRAFFIC_SHIFT", None).await;
    for answers in [&shifted, &after] {
        assert_eq!(statuses(answers), ["SUCCEEDED"], "{answers:?}");
        assert!(reason(&answers[0]).contains("is already failed, observed only: observe: would answer FAILED"));
    }
    assert_eq!(bg.standin.served().len(), served, "no round after the verdict");
    let done = bg.ecs_says(&p, "SERVICE_DEPLOYMENT_COMPLETED").await;
    assert_eq!(done["outcome"], "failed", "{done}");
    assert_eq!(bg.aws().service_task_definition(CLUSTER, BACKEND).await, p.green, "green runs: nothing rolled back");
    let rec = bg.record(&p).await;
    assert_eq!((rec["status"].as_str(), rec["reason"].as_str()), (Some("failed"), Some(why)));
    assert_eq!(bg.sink.notifications().len(), 1, "told once");
}

/// Observe mode never answers FAILED, not even when the stuck budget is spent: the hook answers
/// SUCCEEDED saying what enforce would have answered, the record is an observed failure (green
/// keeps running, nothing is rolled back by ECS), and a late invocation answers the same.
#[tokio::test]
async fn in_observe_mode_a_hook_stuck_past_its_budget_answers_succeeded_and_records_would_answer_failed() {
    let observe = |c: String| c.replacen("[defaults]\n", "[defaults]\nmode = \"observe\"\n", 1);
    let mut bg = BlueGreen::with_config(5, 2, observe).await;
    let p = bg.push("backend-bg-stuck-observed", Behaviour::Good).await;
    let first = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &Map::new()).await;
    assert_eq!(first["hookStatus"], "IN_PROGRESS");
    let details = first["hookDetails"].as_object().unwrap().clone();

    let proxy = testkit::faults::FaultProxy::start(&bg.emu.endpoint, Duration::from_secs(1)).await;
    proxy.inject("ecs:DescribeServiceDeployments", testkit::faults::Fault::Throttle, 1_000);
    let throttled = Aws::new(&proxy.endpoint).await.as_role(testkit::iam::Role::Verify);
    bg.verifier.ecs = pushdeploy::aws::ecs::EcsClient::new(throttled.ecs.clone());
    let stuck = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!(stuck["hookStatus"], "IN_PROGRESS", "{stuck}");
    let mut index = bg.index(&p).await.unwrap();
    let now = pushdeploy::domain::timing::now_ms();
    index["stuck"]["since_ms"] = json!(now - 300_000);
    index["stuck"]["last_ms"] = json!(now - 30_000);
    index["stuck"]["invocations"] = json!(10);
    bg.aws().put_json(BUCKET, &index_key(&p), &index).await;

    let spent = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!(spent["hookStatus"], "SUCCEEDED", "observe never answers FAILED: {spent}");
    let why = reason(&spent).to_string();
    assert!(why.starts_with("observe: would answer FAILED: POST_TEST_TRAFFIC_SHIFT could not be checked"), "{why}");
    assert!(why.contains("budget of 300 s for a stuck hook is spent"), "{why}");
    assert!(why.ends_with("answered SUCCEEDED, so the deployment went on"), "{why}");
    let rec = bg.record(&p).await;
    assert_eq!((rec["status"].as_str(), rec["mode"].as_str()), (Some("failed"), Some("observe")), "{rec}");
    assert!(rec["rolled_back_by"].is_null() && rec["rolled_back_to"].is_null(), "{rec}");
    assert_eq!(rec["reason"], why.as_str());
    assert!(timeline(&rec).ends_with(&["would_roll_back".to_string(), "hook_stuck".to_string()]), "{rec}");
    let notes = bg.sink.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy observe, would roll back: backend"),
        "{notes:?}"
    );

    let again = bg.hook(&p, "POST_TEST_TRAFFIC_SHIFT", None, &details).await;
    assert_eq!((again["hookStatus"].as_str(), reason(&again)), (Some("SUCCEEDED"), why.as_str()));
    assert_eq!(bg.sink.notifications().len(), 1, "told once");
    assert_eq!(bg.aws().service_task_definition(CLUSTER, BACKEND).await, p.green, "green runs: nothing rolled back");
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
}
