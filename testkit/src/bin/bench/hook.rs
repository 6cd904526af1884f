//! verify as a blue/green backend's lifecycle hook: what each kind of invocation takes.

use std::time::{Duration, Instant};

use pushdeploy::flows::verify::Verifier;
use testkit::estate::{deployer, ecr_push_event, Aws, TodoApp, CLUSTER};
use testkit::faults::FaultProxy;
use testkit::guard::Emulator;
use testkit::standin::TodoStandIn;

use crate::measure::{median, ms};

const HOOK_RUNS: usize = 9;

/// The kinds of invocation measured, in the order ECS makes them, with the answer each gets.
const KINDS: [(&str, &str); 4] = [
    (
        "first: no index yet, the revision, ECS's deployment of it, its record, the index written, a timeline stamp, one round",
        "IN_PROGRESS",
    ),
    ("second: one GET (named in hookDetails), a round, the probe, the verdict's write", "SUCCEEDED"),
    ("duplicate of the second: one GET", "SUCCEEDED"),
    ("a later stage's first (no hookDetails): the index names the record, one round", "IN_PROGRESS"),
];

/// verify as a blue/green backend's lifecycle hook (in-process): what each kind of invocation
/// takes and which AWS calls it makes, direct to moto and with 20 ms added to every AWS call.
pub async fn hook_invocations() {
    println!("\n## Lifecycle hook invocations (in-process verify, blue/green backend, median of {HOOK_RUNS})\n");
    println!("moto behind the IAM guard; the stand-in app's test listener on 127.0.0.1. A round is one check;");
    println!("after the passing round comes the read-after-write probe (write, 6 reads, delete).\n");
    println!("| invocation | answer | direct to moto | with 20 ms per AWS call | AWS calls |");
    println!("| --- | --- | --- | --- | --- |");
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let config = testkit::estate::blue_green_config(&standin.url(), &standin.test_url(), 5, 2);
    let slow = FaultProxy::start(&emu.endpoint, Duration::from_secs(1)).await;
    slow.set_latency(Duration::from_millis(20));
    let slowed = Aws::new(&slow.endpoint).await;
    let mut times: Vec<[Vec<f64>; 2]> = KINDS.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    let mut calls: Vec<String> = vec![String::new(); KINDS.len()];
    let mut seq = 0u32;
    for (column, aws) in [&app.aws, &slowed].into_iter().enumerate() {
        let d = deployer(aws, &config);
        let v = testkit::estate::verifier(aws, &config, None);
        for _ in 0..HOOK_RUNS {
            seq += 1;
            let digest = app.aws.push_image("todo-backend", "latest", &format!("backend-hook-{seq}")).await;
            let event = ecr_push_event(&format!("hook-{seq}"), "todo-backend", "latest", &digest);
            let started = serde_json::to_value(d.handle(event, &format!("req-{seq}")).await.expect("deploy")).unwrap();
            assert_eq!(started["outcome"], "started", "{started}");
            for (i, (took, ops)) in hook_round(&emu, &app, &v, seq).await.into_iter().enumerate() {
                times[i][column].push(took);
                calls[i] = ops;
            }
        }
    }
    for (i, (name, want)) in KINDS.iter().enumerate() {
        let [direct, slowed] = &mut times[i];
        println!("| {name} | {want} | {:.1} ms | {:.1} ms | {} |", median(direct), median(slowed), calls[i]);
    }
    drop(slow);
    drop(standin);
    drop(emu);
}

/// Each kind of hook invocation once, for the deployment the last push started: its time and
/// the AWS calls it made, counted.
async fn hook_round(emu: &Emulator, app: &TodoApp, v: &Verifier, seq: u32) -> Vec<(f64, String)> {
    let (deployment, revision) = app.aws.newest_service_deployment(CLUSTER, "todo-backend").await;
    // verify checks the stage against ECS's own service deployment before it tests.
    emu.guard.ecs.set_service_deployment(&deployment, "IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
    let mut details: Option<serde_json::Value> = None;
    let mut out = Vec::new();
    for (i, (_, want)) in KINDS.iter().enumerate() {
        // ECS passes no runtime hookDetails from one stage's hook to the next.
        let stage = if i == 3 { "POST_PRODUCTION_TRAFFIC_SHIFT" } else { "POST_TEST_TRAFFIC_SHIFT" };
        if i == 3 {
            emu.guard.ecs.set_service_deployment(&deployment, "IN_PROGRESS", Some(stage));
            details = None;
        }
        let payload = testkit::estate::hook_invocation(&testkit::estate::HookCall {
            execution_id: &format!("exec-{seq}-{i}"),
            stage,
            service: "todo-backend",
            deployment: &deployment,
            revision: &revision,
            production: None,
            hook_details: details.clone(),
        });
        let before = emu.guard.calls().len();
        let start = Instant::now();
        let answer = serde_json::to_value(
            v.invoke(payload, Instant::now() + Duration::from_secs(60)).await.expect("hook answers"),
        )
        .unwrap();
        let took = ms(start.elapsed());
        assert_eq!(answer["hookStatus"], *want, "{answer}");
        let ops: Vec<String> = emu.guard.calls()[before..].iter().map(|c| c.operation.clone()).collect();
        out.push((took, counted(&ops)));
        if i == 0 {
            details = Some(answer["hookDetails"].clone());
        }
    }
    out
}

/// `ops` sorted and counted: `ecs:DescribeServices ×2, s3:GetObject ×1`.
pub fn counted(ops: &[String]) -> String {
    let mut names = ops.to_vec();
    names.sort();
    names.dedup();
    names.iter().map(|op| format!("{op} ×{}", ops.iter().filter(|o| *o == op).count())).collect::<Vec<_>>().join(", ")
}
