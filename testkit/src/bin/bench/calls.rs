//! The AWS calls of one deploy and its critical path; and one push fanning out to N services.

use std::time::{Duration, Instant};

use testkit::estate::{deployer, registry, TodoApp, CLUSTER};
use testkit::faults::TimedCall;

use crate::measure::{median, ms};
use crate::setup::{new_app, proxied, take_calls, Backends, Pusher};

const FANOUT_RUNS: usize = 5;
/// Latencies added to every AWS call in the fan-out runs: a fast round trip, and a typical
/// control-plane one.
const FANOUT_LATENCIES_MS: [u64; 2] = [20, 50];

/// 1. AWS calls of one deploy, in order, through recording proxies in front of the motos.
pub async fn one_deploy(config_text: &str, pusher: &Pusher) {
    let (motos, app) = new_app().await;
    let (proxies, via) = proxied(&motos, Duration::ZERO).await;
    let d = deployer(&via, config_text);
    // A first rollout leaves a released lease behind, as in steady state.
    let event = pusher.push(&app, "todo-frontend").await;
    assert_eq!(serde_json::to_value(d.handle(event, "bench").await.expect("deploy")).unwrap()["outcome"], "started");
    let event = pusher.push(&app, "todo-frontend").await;
    take_calls(&proxies);
    let start = Instant::now();
    let answer = serde_json::to_value(d.handle(event, "bench").await.expect("deploy")).unwrap();
    let wall = start.elapsed();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let calls = take_calls(&proxies);
    let on_path = critical_path(&calls);
    let depth = on_path.iter().filter(|p| **p).count();
    println!("\n## AWS calls of one deploy (single service)\n");
    println!("| # | call | starts at | takes | on the critical path |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, c) in calls.iter().enumerate() {
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {} |",
            i + 1,
            c.op,
            ms(c.start - start),
            ms(c.end - c.start),
            if on_path[i] { "yes" } else { "overlapped" }
        );
    }
    println!(
        "\n{} calls, critical-path depth {depth} round trips, wall {:.1} ms (in-process, through the proxies)",
        calls.len(),
        ms(wall)
    );
    drop(proxies);
    drop(motos);
}

/// The critical path, walked back from the call that finished last: each step is the call
/// that finished latest before it started, which is what it was waiting for.
fn critical_path(calls: &[TimedCall]) -> Vec<bool> {
    let mut on_path = vec![false; calls.len()];
    let mut at = (0..calls.len()).max_by_key(|&i| calls[i].end);
    while let Some(i) = at {
        on_path[i] = true;
        at = (0..calls.len()).filter(|&j| calls[j].end <= calls[i].start).max_by_key(|&j| calls[j].end);
    }
    on_path
}

/// 2. Fan-out: one push matching 1, 2, 4, 8 services.
pub async fn fan_out(pusher: &Pusher) {
    println!("\n## Fan-out: one push matching N services (in-process, median of {FANOUT_RUNS})\n");
    println!(
        "Direct to the motos, and through proxies adding {} ms and {} ms to every call (AWS round trips): each",
        FANOUT_LATENCIES_MS[0], FANOUT_LATENCIES_MS[1]
    );
    println!(
        "moto is one CPU-bound Python process serving one request at a time, so the direct column shows moto's serial service time.\n"
    );
    println!(
        "| services | direct to moto | vs 1 | with {} ms per call | vs 1 | with {} ms per call | vs 1 |",
        FANOUT_LATENCIES_MS[0], FANOUT_LATENCIES_MS[1]
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut base = Vec::new();
    for n in [1usize, 2, 4, 8] {
        let medians = fan_out_row(n, pusher).await;
        if n == 1 {
            base = medians.clone();
        }
        let cells: Vec<String> = medians.iter().zip(&base).map(|(m, b)| format!("{m:.1} ms | {:.2}×", m / b)).collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
}

/// The median deploy of a push matching `n` services: direct, then with each added latency.
async fn fan_out_row(n: usize, pusher: &Pusher) -> Vec<f64> {
    let (motos, app) = new_app().await;
    let mut slowed = Vec::new();
    for latency in FANOUT_LATENCIES_MS {
        slowed.push(proxied(&motos, Duration::from_millis(latency)).await);
    }
    let text = fan_out_services(n, &app, &motos).await;
    let mut medians = Vec::new();
    for aws in std::iter::once(&app.aws).chain(slowed.iter().map(|(_, aws)| aws)) {
        let d = deployer(aws, &text);
        let mut times = Vec::new();
        for _ in 0..FANOUT_RUNS {
            let event = pusher.push(&app, "todo-frontend").await;
            let start = Instant::now();
            let answer = serde_json::to_value(d.handle(event, "bench").await.expect("deploy")).unwrap();
            times.push(ms(start.elapsed()));
            assert_eq!(answer["outcome"], "started");
        }
        medians.push(median(&mut times));
    }
    drop(slowed);
    drop(motos);
    medians
}

/// Creates `n` services of the frontend's repository: the config that names them.
async fn fan_out_services(n: usize, app: &TodoApp, motos: &Backends) -> String {
    let mut text = format!("[defaults]\ncluster = \"{CLUSTER}\"\n");
    for i in 0..n {
        let name = format!("web-{i}");
        let td = app
            .aws
            .register_rich_task_definition(&name, &[("web", format!("{}/todo-frontend:latest", registry()))])
            .await;
        app.aws.create_service(CLUSTER, &name, &td).await;
        text.push_str(&format!(
            "[[service]]\nname = \"{name}\"\nservice = \"{name}\"\nrepository = \"todo-frontend\"\ntags = [\"latest\"]\n"
        ));
    }
    // The template's roles as a user would fill them in for these services' task roles.
    let families: Vec<String> = (0..n).map(|i| format!("web-{i}")).collect();
    motos.ecs.set_policies(testkit::iam::Policies::template_for_families(
        &families.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    text
}
