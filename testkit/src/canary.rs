//! A canary estate: the todo backend as a blue/green service behind an ALB in moto (a production
//! and a test listener rule over a target group pair), the stand-in app routing production at
//! random by weight, simulated users whose traffic lands in moto's CloudWatch as the ALB's own
//! metrics, and deploy and verify in-process. The harness plays ECS: it starts each stage, moves
//! the rules' weights, and calls verify's hook until it answers, waiting the call-back delay
//! verify asks for, with the users' traffic published in real time in between.

use std::time::{Duration, Instant};

use pushdeploy::flows::deploy::Deployer;
use pushdeploy::flows::verify::Verifier;
use serde_json::{json, Map, Value};

use crate::estate::{
    blue_green_config, deployer, ecr_push_event, ecs_deployment_event, hook_invocation, verifier, Aws, BlueGreenAlb,
    Followers, HookCall, TodoApp, BUCKET, CLUSTER,
};
use crate::guard::Emulator;
use crate::sns_sink::SnsSink;
use crate::standin::{Behaviour, TodoStandIn};
use crate::traffic::{now_s, Profile, Traffic};

/// The blue/green service of the estate.
pub const BACKEND: &str = "todo-backend";

/// What a canary scenario is made of.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The body of the backend's `[service.analysis]` (none: production checks only).
    pub analysis: Option<String>,
    /// The stages verify is the hook at.
    pub stages: Vec<&'static str>,
    /// Blue's users' traffic: error rate and latency.
    pub blue: Profile,
    /// Green's.
    pub green: Profile,
    /// Seeds the stand-in's routing and the users' draws.
    pub seed: u64,
    /// Simulated requests per second to the production listener.
    pub requests_per_second: u32,
    /// Whether the test listener's rule forwards to green alone (as ECS sets it for the test stage).
    pub test_rule_to_green: bool,
}

/// One pushed image, as the harness (ECS) knows its deployment.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The image's digest.
    pub digest: String,
    /// Green's task definition.
    pub green: String,
    /// ECS's deployment id (`ecs-svc/…`): the record's key.
    pub ecs_deployment_id: String,
    /// ECS's service deployment ARN.
    pub deployment_arn: String,
    /// Green's service revision ARN.
    pub revision_arn: String,
    /// Green's target group (ECS alternates the pair).
    pub green_group: String,
}

/// What one stage came to: every answer, in order, and when the last came after the first.
#[derive(Debug, Clone)]
pub struct StageRun {
    /// verify's answers.
    pub answers: Vec<Value>,
    /// From the stage's first invocation to its last answer.
    pub took: Duration,
    /// How long each invocation took verify.
    pub invocation_ms: Vec<f64>,
    /// The AWS calls each invocation made, as the guard saw them (`cloudwatch:GetMetricData`, …).
    pub calls: Vec<Vec<String>>,
}

impl StageRun {
    /// The last answer's `hookStatus`.
    pub fn status(&self) -> &str {
        self.answers.last().and_then(|a| a["hookStatus"].as_str()).unwrap_or("")
    }

    /// The last answer's reason (`hookDetails.pushdeploy.reason`).
    pub fn reason(&self) -> String {
        let last = self.answers.last().cloned().unwrap_or_default();
        last["hookDetails"]["pushdeploy"]["reason"].as_str().map(str::to_string).unwrap_or_else(|| last.to_string())
    }
}

/// The estate, its stand-ins and the functions.
pub struct CanaryEstate {
    /// moto behind the IAM guard.
    pub emu: Emulator,
    /// The todo app in moto.
    pub app: TodoApp,
    /// The app behind its listeners.
    pub standin: TodoStandIn,
    /// The verdicts' topic, subscribed.
    pub sink: SnsSink,
    /// The load balancer in moto.
    pub alb: BlueGreenAlb,
    /// The users.
    pub traffic: Traffic,
    /// deploy, in-process.
    pub deployer: Deployer,
    /// verify, in-process.
    pub verifier: Verifier,
    scenario: Scenario,
    published_to: i64,
    seq: u32,
}

impl CanaryEstate {
    /// Builds the estate for `scenario`: the backend blue/green over the ALB's pair, blue serving.
    pub async fn start(scenario: Scenario) -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        standin.seed(scenario.seed);
        let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
        let alb = app.aws.create_blue_green_alb("todo-bg").await;
        alb.describe_as(&emu.guard.ecs, BACKEND);
        let traffic = alb.traffic(&app.aws, emu.guard.latencies.clone(), scenario.blue, scenario.green);
        traffic.seed(scenario.seed);
        traffic.resolution(1);
        let config = canary_config(&standin, &scenario.stages, scenario.analysis.as_deref());
        let deployer = deployer(&app.aws, &config);
        let verifier = verifier(&app.aws, &config, Some(&sink.topic_arn));
        let published_to = now_s();
        Self { emu, app, standin, sink, alb, traffic, deployer, verifier, scenario, published_to, seq: 0 }
    }

    /// Pushes an image whose active checks behave as `b`: deploy starts the blue/green deployment;
    /// ECS (the harness) registers green's task in green's group and points the test rule at it.
    pub async fn push(&mut self, seed: &str, b: Behaviour) -> Pushed {
        self.seq += 1;
        let aws = self.app.aws.clone();
        let blue = aws.service_task_definition(CLUSTER, BACKEND).await;
        self.standin.hold_production(BACKEND, &blue);
        let digest = aws.push_image(BACKEND, "latest", seed).await;
        self.standin.set(digest.as_str(), b);
        let event = ecr_push_event(&format!("push-{}", self.seq), BACKEND, "latest", &digest);
        let answer = serde_json::to_value(self.deployer.handle(event, "req").await.expect("deploy answers")).unwrap();
        assert_eq!(answer["outcome"], "started", "{answer}");
        let green = aws.service_task_definition(CLUSTER, BACKEND).await;
        let (deployment_arn, revision_arn) = aws.newest_service_deployment(CLUSTER, BACKEND).await;
        let green_group = green_group_of(&aws, &revision_arn).await;
        let blue_group = self.alb.other(&green_group).to_string();
        self.traffic.set_profile(&green_group, self.scenario.green);
        self.traffic.set_profile(&blue_group, self.scenario.blue);
        self.alb.shift(&aws, &green_group, 0, Followers { standin: None, traffic: Some(&self.traffic) }).await;
        aws.register_ips(&green_group, &[&format!("10.0.{}.{}", self.seq / 250, self.seq % 250 + 2)]).await;
        let tested = if self.scenario.test_rule_to_green { green_group.clone() } else { blue_group };
        self.alb.test_to(&aws, &tested).await;
        let ecs_deployment_id = answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
        Pushed {
            digest: digest.as_str().to_string(),
            green,
            ecs_deployment_id,
            deployment_arn,
            revision_arn,
            green_group,
        }
    }

    /// Runs `stage` as ECS does: shifts production to `green_percent` first (a production stage),
    /// then invokes the hook until it answers SUCCEEDED or FAILED, waiting the call-back delay
    /// verify asks for, with the users' traffic of every second published before each invocation.
    pub async fn run_stage(&mut self, p: &Pushed, stage: &str, green_percent: Option<u32>) -> StageRun {
        if let Some(pct) = green_percent {
            let standin = Some((&self.standin, BACKEND, p.green.as_str()));
            let followers = Followers { standin, traffic: Some(&self.traffic) };
            self.alb.shift(&self.app.aws, &p.green_group, pct, followers).await;
        }
        let production = green_percent.map(|g| (g, 100 - g));
        let mut details = Map::new();
        let (mut answers, mut invocation_ms, mut calls) = (Vec::new(), Vec::new(), Vec::new());
        let first = Instant::now();
        for _ in 0..120 {
            self.publish_now().await;
            let (started, before) = (Instant::now(), self.emu.guard.calls().len());
            let answer = self.invoke_hook(p, stage, production, &details).await;
            invocation_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            calls.push(self.emu.guard.calls()[before..].iter().map(|c| c.operation.clone()).collect());
            answers.push(answer.clone());
            if answer["hookStatus"] != "IN_PROGRESS" {
                return StageRun { answers, took: first.elapsed(), invocation_ms, calls };
            }
            for (k, v) in answer["hookDetails"].as_object().into_iter().flatten() {
                details.insert(k.clone(), v.clone());
            }
            tokio::time::sleep(Duration::from_secs(answer["callBackDelay"].as_u64().unwrap_or(1))).await;
        }
        panic!("{stage} never settled: {answers:?}")
    }

    /// One hook invocation at `stage`, with ECS's service deployment at that stage.
    async fn invoke_hook(
        &mut self,
        p: &Pushed,
        stage: &str,
        production: Option<(u32, u32)>,
        details: &Map<String, Value>,
    ) -> Value {
        self.seq += 1;
        self.emu.guard.ecs.set_service_deployment(&p.deployment_arn, "IN_PROGRESS", Some(stage));
        let payload = hook_invocation(&HookCall {
            execution_id: &format!("exec-{}", self.seq),
            stage,
            service: BACKEND,
            deployment: &p.deployment_arn,
            revision: &p.revision_arn,
            production,
            hook_details: Some(Value::Object(details.clone())),
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        serde_json::to_value(self.verifier.invoke(payload, deadline).await.expect("an answer")).unwrap()
    }

    /// The users' traffic since the last publication, published now (whole seconds).
    pub async fn publish_now(&mut self) {
        let now = now_s();
        if now > self.published_to {
            let seconds = u64::try_from(now - self.published_to).unwrap_or(0).min(600);
            self.traffic.run(seconds, self.scenario.requests_per_second, now).await;
            self.published_to = now;
        }
    }

    /// ECS completes the deployment (every stage answered SUCCEEDED): verify's verdict on it.
    pub async fn complete(&mut self, p: &Pushed) -> Value {
        self.seq += 1;
        self.emu.guard.ecs.set_service_deployment(&p.deployment_arn, "SUCCESSFUL", None);
        let event = ecs_deployment_event(
            &format!("ecs-{}", self.seq),
            BACKEND,
            &p.ecs_deployment_id,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "",
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        serde_json::to_value(self.verifier.invoke(event, deadline).await.expect("an answer")).unwrap()
    }

    /// The deployment's record, as S3 holds it.
    pub async fn record(&self, p: &Pushed) -> Value {
        let key = pushdeploy::domain::record::record_key(CLUSTER, BACKEND, &p.ecs_deployment_id).unwrap();
        serde_json::from_slice(&self.app.aws.object(BUCKET, &key).await).unwrap()
    }

    /// Every function call the guard saw so far, by operation (`cloudwatch:GetMetricData`, …).
    pub fn calls(&self) -> Vec<String> {
        self.emu.guard.calls().into_iter().map(|c| c.operation).collect()
    }
}

/// The blue/green config of the todo app against the stand-in, hooked at `stages`, with
/// `analysis` as its backend's `[service.analysis]` when given.
pub fn canary_config(standin: &TodoStandIn, stages: &[&str], analysis: Option<&str>) -> String {
    let stages: Vec<String> = stages.iter().map(|st| format!("\"{st}\"")).collect();
    let base = blue_green_config(&standin.url(), &standin.test_url(), 5, 2).replace(
        "stages = [\"POST_TEST_TRAFFIC_SHIFT\", \"PRODUCTION_TRAFFIC_SHIFT\", \"POST_PRODUCTION_TRAFFIC_SHIFT\"]",
        &format!("stages = [{}]", stages.join(", ")),
    );
    match analysis {
        Some(body) => format!("{base}\n[service.analysis]\n{body}\n"),
        None => base,
    }
}

/// The target group ECS resolved for a service revision (the harness reads it as itself).
pub async fn green_group_of(aws: &Aws, revision_arn: &str) -> String {
    let out = aws.ecs.describe_service_revisions().service_revision_arns(revision_arn).send().await.expect("revision");
    let revision = out.service_revisions().first().expect("the revision");
    let lb = revision.resolved_configuration().and_then(|c| c.load_balancers().first()).expect("a load balancer");
    lb.target_group_arn().expect("its group").to_string()
}

/// A `[service.analysis]` body for tests: windows of seconds (the stand-in publishes by the
/// second), the documented thresholds otherwise, and `extra` lines.
pub fn analysis(window: &str, min_requests: u32, extra: &str) -> String {
    let body = json!({ "window": window, "min_requests": min_requests });
    format!("window = {}\nmin_requests = {}\n{extra}", body["window"], body["min_requests"])
}
