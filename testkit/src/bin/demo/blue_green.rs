//! Step 11: the backend turns blue/green, and the demo plays ECS calling verify as its
//! lifecycle hook at each stage.

use std::path::Path;

use serde_json::Value;
use testkit::estate::{blue_green_config, ecr_push_event, ecs_deployment_event, hook_invocation, HookCall, CLUSTER};
use testkit::guard::Emulator;
use testkit::iam::Role;
use testkit::runtime::{function_binary, FunctionProcess};
use testkit::standin::{Behaviour, Listener};

use crate::release::{Demo, Envs};
use crate::show::{invoke, print_timeline, short, step, text};

/// Step 11: the blue/green backend's config and functions, then a broken and a good push.
pub async fn blue_green(demo: &Demo, emu: &Emulator, envs: &Envs, dir: &Path) {
    step("11. The backend turns blue/green: ECS deploys it with strategy BLUE_GREEN and calls pushdeploy's verify as its lifecycle hook at POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT");
    let bg_config = dir.join("pushdeploy-bluegreen.toml");
    let bg_text =
        blue_green_config(&demo.app.url(), &demo.app.test_url(), 5, 2).replace("\"PRODUCTION_TRAFFIC_SHIFT\", ", "");
    std::fs::write(&bg_config, &bg_text).expect("write config");
    emu.guard.set_fixture(
        "ecs:DescribeServices",
        testkit::estate::blue_green_service(
            "todo-backend",
            &["POST_TEST_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"],
        ),
    );
    let bg_deploy = FunctionProcess::start(&function_binary("deploy"), &envs.of(Role::Deploy, &bg_config)).await;
    let bg_verify = FunctionProcess::start(&function_binary("verify"), &envs.of(Role::Verify, &bg_config)).await;
    println!(
        "  config: {} ([service.hook] on the backend; smoke.test_url {} with header {}: {})",
        bg_config.display(),
        demo.app.test_url(),
        testkit::standin::TEST_HEADER.0,
        testkit::standin::TEST_HEADER.1
    );
    println!(
        "  production listener {} stays on blue until ECS shifts it; the test listener serves green",
        demo.app.url()
    );
    let plan = invoke(&bg_deploy, &serde_json::json!({"action": "plan", "service": "backend"})).await;
    println!("  plan: {}", text(&plan["deployments"][0]["ecs_rollout"]));
    println!(
        "  (the stand-in's test listener has a port of its own: on AWS that needs verify in the VPC, as plan warns)"
    );

    step("11a. docker push todo-backend:latest (broken) to the blue/green backend");
    let broken = blue_green_release(demo, &bg_deploy, &bg_verify, "backend-bg-broken", Behaviour::Broken).await;
    println!(
        "  production listener served the broken image {} times",
        demo.app.served().iter().filter(|s| s.listener == Listener::Production && s.digest == broken).count()
    );

    step("11b. docker push todo-backend:latest (good) to the blue/green backend");
    let good = blue_green_release(demo, &bg_deploy, &bg_verify, "backend-bg-good", Behaviour::Good).await;
    println!(
        "  production listener served the good image {} times",
        demo.app.served().iter().filter(|s| s.listener == Listener::Production && s.digest == good).count()
    );
    bg_deploy.stop().await;
    bg_verify.stop().await;
}

/// A push to the blue/green backend, with the demo playing ECS: UpdateService (deploy) starts
/// the deployment, ECS calls the hook at each stage until it answers, shifts production only
/// after POST_TEST_TRAFFIC_SHIFT passed, and rolls back on FAILED. Answers the pushed digest.
async fn blue_green_release(
    demo: &Demo,
    deploy: &FunctionProcess,
    verify: &FunctionProcess,
    seed: &str,
    behaviour: Behaviour,
) -> String {
    let service = "todo-backend";
    let blue = demo.aws.service_task_definition(CLUSTER, service).await;
    demo.app.hold_production(service, &blue);
    let digest = demo.aws.push_image(service, "latest", seed).await;
    demo.app.set(digest.as_str(), behaviour);
    println!("  pushed {service}:latest @ {}…", &digest.as_str()[..19]);
    let answer = invoke(deploy, &ecr_push_event(&format!("push-{seed}"), service, "latest", &digest)).await;
    let d = &answer["deployments"][0];
    println!("  deploy: {}  {}", answer["outcome"], text(&d["reason"]));
    let dep = text(&d["ecs_deployment_id"]).to_string();
    let green = demo.aws.service_task_definition(CLUSTER, service).await;
    let (deployment, revision) = demo.aws.newest_service_deployment(CLUSTER, service).await;
    println!(
        "  ECS starts service deployment {} (green {}, blue {} keeps production)",
        short(&deployment),
        short(&green),
        short(&blue)
    );
    let ecs = Ecs { demo, verify, service, deployment, revision, dep, seed };
    if ecs.stage("POST_TEST_TRAFFIC_SHIFT", None).await == "SUCCEEDED" {
        ecs.promote(&green).await;
    } else {
        ecs.roll_back(&blue).await;
    }
    println!("  {service} runs {}", short(&demo.aws.service_task_definition(CLUSTER, service).await));
    print_timeline(&demo.record(service, &ecs.dep).await);
    digest.as_str().to_string()
}

/// ECS in the middle of one blue/green service deployment.
struct Ecs<'a> {
    demo: &'a Demo,
    verify: &'a FunctionProcess,
    service: &'static str,
    /// The service deployment ARN.
    deployment: String,
    /// Green's service revision ARN.
    revision: String,
    /// The deployment's id, as deploy answered it.
    dep: String,
    seed: &'a str,
}

impl Ecs<'_> {
    /// ECS at stage `name` calls the hook until it answers (at most 10 times): the last status.
    async fn stage(&self, name: &'static str, production: Option<(u32, u32)>) -> String {
        // ECS is at this stage (rolling back when green is at 0 %) while it calls the hook.
        let rolling_back = production.is_some_and(|(green, _)| green == 0);
        let status = if rolling_back { "ROLLBACK_IN_PROGRESS" } else { "IN_PROGRESS" };
        self.demo.ecs.set_service_deployment(&self.deployment, status, Some(name));
        let mut details = serde_json::Map::new();
        for n in 1..=10 {
            let call = HookCall {
                execution_id: &format!("{name}-{n}"),
                stage: name,
                service: self.service,
                deployment: &self.deployment,
                revision: &self.revision,
                production,
                hook_details: Some(Value::Object(details.clone())),
            };
            let answer = invoke(self.verify, &hook_invocation(&call)).await;
            let status = text(&answer["hookStatus"]).to_string();
            let why = text(&answer["hookDetails"]["pushdeploy"]["reason"]).to_string();
            match answer["callBackDelay"].as_u64() {
                Some(delay) => println!("    hook {name}: {status} (ECS calls again in {delay} s): {why}"),
                None => println!("    hook {name}: {status}: {why}"),
            }
            if status != "IN_PROGRESS" {
                return status;
            }
            for (k, v) in answer["hookDetails"].as_object().into_iter().flatten() {
                details.insert(k.clone(), v.clone());
            }
        }
        "TIMED_OUT".to_string()
    }

    /// Production shifts to `green`; after its hook passes, the deployment completes.
    async fn promote(&self, green: &str) {
        self.demo.app.shift_production(self.service, green, 100);
        println!("  ECS shifts production traffic to green");
        if self.stage("POST_PRODUCTION_TRAFFIC_SHIFT", None).await == "SUCCEEDED" {
            self.demo.ecs.set_service_deployment(&self.deployment, "SUCCESSFUL", None);
            let seq = format!("ecs-{}", self.seed);
            let event = ecs_deployment_event(&seq, self.service, &self.dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
            let done = invoke(self.verify, &event).await;
            println!(
                "  ECS completes the deployment → verify: {}  {}",
                done["outcome"],
                text(&done["deployments"][0]["reason"])
            );
        }
    }

    /// ECS's own rollback to `blue` (moto has no blue/green), and the failed deployment's event.
    async fn roll_back(&self, blue: &str) {
        println!(
            "  ECS rolls back to blue: it has no rollback stage, so it calls the PRODUCTION_TRAFFIC_SHIFT hook again with green at 0 %"
        );
        self.stage("PRODUCTION_TRAFFIC_SHIFT", Some((0, 100))).await;
        self.demo
            .aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(self.service)
            .task_definition(blue)
            .send()
            .await
            .expect("ECS returns to blue");
        self.demo.ecs.set_service_deployment(&self.deployment, "ROLLBACK_SUCCESSFUL", None);
        let seq = format!("ecs-{}", self.seed);
        let failed = invoke(
            self.verify,
            &ecs_deployment_event(
                &seq,
                self.service,
                &self.dep,
                "SERVICE_DEPLOYMENT_FAILED",
                "rolled back by a lifecycle hook",
            ),
        )
        .await;
        println!(
            "  ECS reports the deployment failed → verify: {}  {}",
            failed["outcome"],
            text(&failed["deployments"][0]["reason"])
        );
    }
}
