//! Step 12: the backend as a canary behind an ALB in moto, judged on the load balancer's own
//! metrics: a green that fails 2 % of its users' requests is caught at the 10 % step.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::canary::{canary_config, green_group_of};
use testkit::estate::{
    ecr_push_event, ecs_deployment_event, hook_invocation, BlueGreenAlb, Followers, HookCall, CLUSTER,
};
use testkit::guard::Emulator;
use testkit::iam::Role;
use testkit::runtime::{function_binary, FunctionProcess};
use testkit::sns_sink::SnsSink;
use testkit::standin::Behaviour;
use testkit::traffic::{now_s, Profile, Traffic};

use crate::release::{Demo, Envs};
use crate::show::{invoke, print_timeline, short, step, text};

const SERVICE: &str = "todo-backend";
const STAGES: [&str; 2] = ["PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"];
/// Simulated users' requests a second through the production listener.
const RPS: u32 = 20_000;

/// Step 12: a canary release whose green fails 2 % of requests, caught by the analysis at 10 %.
pub async fn canary(demo: &Demo, emu: &Emulator, envs: &Envs, sink: &SnsSink, dir: &Path) {
    step("12. The backend as a CANARY behind an ALB: each production step judged on the ALB's own metrics ([service.analysis])");
    let alb = demo.aws.create_blue_green_alb("todo-canary").await;
    alb.describe_as(&demo.ecs, SERVICE);
    let (blue, green) = (Profile::new(0.001, 40.0, 90.0), Profile::new(0.02, 45.0, 100.0));
    let traffic = alb.traffic(&demo.aws, emu.guard.latencies.clone(), blue, green);
    traffic.resolution(1);
    let path = dir.join("pushdeploy-canary.toml");
    let config = canary_config(&demo.app, &STAGES, Some("window = \"3s\"\nmin_requests = 200"));
    std::fs::write(&path, config).expect("write config");
    emu.guard.set_fixture("ecs:DescribeServices", testkit::estate::blue_green_service(SERVICE, &STAGES));
    let deploy = FunctionProcess::start(&function_binary("deploy"), &envs.of(Role::Deploy, &path)).await;
    let verify = FunctionProcess::start(&function_binary("verify"), &envs.of(Role::Verify, &path)).await;
    println!(
        "  config: {} ([service.analysis] window = \"3s\" here, minutes on AWS; min_requests = 200)",
        path.display()
    );
    println!(
        "  ALB in moto: {}; its production rule over {} (blue) and {} (green)",
        short(&alb.load_balancer),
        short(&alb.primary),
        short(&alb.alternate)
    );
    println!("  users: {RPS} requests a second, spread by the rule's weights at random; blue fails 0.1 % of them,");
    println!("  this build 2 % (only under users' requests: the smoke checks still pass)");
    let told_before = sink.notifications().len();
    let dep = release(demo, &alb, &traffic, &deploy, &verify).await;
    report(&demo.record(SERVICE, &dep).await, &sink.notifications()[told_before..]);
    deploy.stop().await;
    verify.stop().await;
}

/// The push, ECS's 10 % step, and ECS's rollback when the hook fails: the deployment's id.
async fn release(
    demo: &Demo,
    alb: &BlueGreenAlb,
    traffic: &Traffic,
    deploy: &FunctionProcess,
    verify: &FunctionProcess,
) -> String {
    let blue = demo.aws.service_task_definition(CLUSTER, SERVICE).await;
    demo.app.hold_production(SERVICE, &blue);
    let digest = demo.aws.push_image(SERVICE, "latest", "backend-canary-2pct").await;
    demo.app.set(digest.as_str(), Behaviour::Good);
    let answer = invoke(deploy, &ecr_push_event("push-canary", SERVICE, "latest", &digest)).await;
    println!("  deploy: {}  {}", answer["outcome"], text(&answer["deployments"][0]["reason"]));
    let dep = text(&answer["deployments"][0]["ecs_deployment_id"]).to_string();
    let green = demo.aws.service_task_definition(CLUSTER, SERVICE).await;
    let (deployment, revision) = demo.aws.newest_service_deployment(CLUSTER, SERVICE).await;
    let group = green_group_of(&demo.aws, &revision).await;
    demo.aws.register_ips(&group, &["10.0.3.10"]).await;
    alb.test_to(&demo.aws, &group).await;
    println!("  ECS registers green's task in {} and points the test listener's rule at it", short(&group));
    let follow = || Followers { standin: Some((&demo.app, SERVICE, green.as_str())), traffic: Some(traffic) };
    alb.shift(&demo.aws, &group, 10, follow()).await;
    println!("  ECS shifts 10 % of production to green and calls the hook at PRODUCTION_TRAFFIC_SHIFT");
    if stage(demo, verify, traffic, (&deployment, &revision)).await == "FAILED" {
        println!("  ECS rolls back: production returns to blue ({})", short(&blue));
        alb.shift(&demo.aws, &group, 0, follow()).await;
        let back = demo.aws.ecs.update_service().cluster(CLUSTER).service(SERVICE).task_definition(&blue);
        back.send().await.expect("ECS returns to blue");
        demo.ecs.set_service_deployment(&deployment, "ROLLBACK_SUCCESSFUL", None);
        let why = "rolled back by a lifecycle hook";
        let done =
            invoke(verify, &ecs_deployment_event("ecs-canary", SERVICE, &dep, "SERVICE_DEPLOYMENT_FAILED", why)).await;
        println!("  ECS reports the deployment failed → verify: {}", done["outcome"]);
    }
    dep
}

/// What the record and the topic say.
fn report(record: &Value, told: &[Value]) {
    print_timeline(record);
    if let Some(check) = record["hook_checks"].as_array().and_then(|c| c.last()) {
        let a = &check["analysis"];
        println!("  record: hook_checks[].reached = {}", check["reached"]);
        println!(
            "  record: hook_checks[].analysis: green {} requests, {} 5XX; blue {} requests, {} 5XX; z = {}, p = {}",
            a["green"]["requests"],
            a["green"]["errors_5xx"],
            a["baseline"]["requests"],
            a["baseline"]["errors_5xx"],
            a["test"]["z"],
            a["test"]["p_value"]
        );
    }
    for n in told {
        println!(
            "  notification [{}]\n      {}",
            text(&n["Subject"]),
            text(&n["Message"]).lines().next().unwrap_or_default()
        );
    }
}

/// ECS at a production step: publishes the users' traffic of every second, calls the hook, and
/// waits the call-back delay verify asks for, until it answers.
async fn stage(
    demo: &Demo,
    verify: &FunctionProcess,
    traffic: &Traffic,
    (deployment, revision): (&str, &str),
) -> String {
    let production = Some((10, 90));
    demo.ecs.set_service_deployment(deployment, "IN_PROGRESS", Some(STAGES[0]));
    let mut details = serde_json::Map::new();
    let mut published = now_s();
    for n in 1..=30 {
        let now = now_s();
        if now > published {
            traffic.run(u64::try_from(now - published).unwrap_or(0), RPS, now).await;
            published = now;
        }
        let call = HookCall {
            execution_id: &format!("canary-{n}"),
            stage: STAGES[0],
            service: SERVICE,
            deployment,
            revision,
            production,
            hook_details: Some(Value::Object(details.clone())),
        };
        let answer = invoke(verify, &hook_invocation(&call)).await;
        let status = text(&answer["hookStatus"]).to_string();
        println!("    hook {}@10: {status}: {}", STAGES[0], text(&answer["hookDetails"]["pushdeploy"]["reason"]));
        if status != "IN_PROGRESS" {
            return status;
        }
        for (k, v) in answer["hookDetails"].as_object().into_iter().flatten() {
            details.insert(k.clone(), v.clone());
        }
        tokio::time::sleep(Duration::from_secs(answer["callBackDelay"].as_u64().unwrap_or(1))).await;
    }
    "TIMED_OUT".into()
}
