//! The release binary under a Lambda runtime-API host: cold start, warm invocations, footprint,
//! the moto floor; the peer side by side; and the cost model from what was measured.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use testkit::estate::{ecs_deployment_event, local_config, registry, TodoApp, CLUSTER, REGION};
use testkit::moto::workspace_root;
use testkit::runtime::FunctionProcess;
use testkit::standin::TodoStandIn;

use crate::measure::{median, ms, p99, PRICE_GB_S};
use crate::setup::{moto_floor, new_single_app, peak_rss_kb, Pusher};

const COLD_STARTS: usize = 20;
const WARM_RUNS: usize = 30;
const PEER_RUNS: usize = 10;

/// A function's environment.
type Env = Vec<(String, String)>;

/// What the runs measured, for the peer's comparison and the cost model.
pub struct Measured {
    /// Warm deploy invocation, median ms.
    pub warm: f64,
    /// moto's own time for the 4 critical calls, median ms.
    pub floor: f64,
    /// Warm verify invocation, median ms.
    pub verify: f64,
    /// The verify config the runs wrote (removed at the end).
    pub verify_config: PathBuf,
}

/// 3–6. The release binaries under a runtime-API host: prints the table.
pub async fn release_binary_runs(
    deploy_bin: &Path,
    verify_bin: &Path,
    env: &Env,
    app: &TodoApp,
    pusher: &Pusher,
) -> Measured {
    let mut cold = Vec::new();
    for _ in 0..COLD_STARTS {
        let f = FunctionProcess::start(deploy_bin, env).await;
        cold.push(ms(f.host.polls()[0] - f.spawned));
        f.stop().await;
    }
    let cold_median = median(&mut cold);

    let f = FunctionProcess::start(deploy_bin, env).await;
    let (mut warm, mut floor) = warm_deploys(&f, app, pusher).await;
    let rss_kb = peak_rss_kb(f.pid());
    f.stop().await;
    let (warm_median, warm_p99, floor_median) = (median(&mut warm.clone()), p99(&mut warm), median(&mut floor));

    // The same on a single moto serving every service, for comparison.
    let (single_moto, single) = new_single_app().await;
    let mut single_env = single.aws.function_env(testkit::iam::Role::Deploy);
    single_env.extend(env.iter().filter(|(k, _)| k.starts_with("PUSHDEPLOY_") || k == "RUST_LOG").cloned());
    let f = FunctionProcess::start(deploy_bin, &single_env).await;
    let (mut single_warm, mut single_floor) = warm_deploys(&f, &single, pusher).await;
    f.stop().await;
    drop(single_moto);
    let (single_median, single_floor_median) = (median(&mut single_warm), median(&mut single_floor));

    let (verify_config, mut verify_times, verify_rss_kb) =
        warm_verifies(deploy_bin, verify_bin, env, app, pusher).await;
    let (verify_median, verify_p99) = (median(&mut verify_times.clone()), p99(&mut verify_times));

    println!("\n## The release binary under a Lambda runtime-API host\n");
    println!("| measure | value | goal |");
    println!("| --- | --- | --- |");
    println!("| cold start: exec → first `GET /runtime/invocation/next` (median of {COLD_STARTS}) | {cold_median:.1} ms | < 20 ms |");
    println!("| warm deploy invocation, end to end against moto (median / p99 of {WARM_RUNS}) | {warm_median:.1} ms / {warm_p99:.1} ms | |");
    println!("| warm verify invocation, one-round smoke test + read-after-write (median / p99 of {WARM_RUNS}) | {verify_median:.1} ms / {verify_p99:.1} ms | |");
    println!(
        "| moto's own time for the 4 critical calls (Describe×2, Register, Update; median) | {floor_median:.1} ms | |"
    );
    println!("| deploy wall ÷ moto floor | {:.2} | ≤ 1.2 |", warm_median / floor_median);
    println!("| the same with every service on one moto: wall / floor (median of {WARM_RUNS}) | {single_median:.1} ms / {single_floor_median:.1} ms = {:.2} | |", single_median / single_floor_median);
    println!("| peak RSS, deploy process after {WARM_RUNS} invocations | {:.1} MB | < 40 MB |", rss_kb as f64 / 1024.0);
    println!("| peak RSS, verify process after {WARM_RUNS} invocations | {:.1} MB | |", verify_rss_kb as f64 / 1024.0);
    print_bootstrap_sizes();
    Measured { warm: warm_median, floor: floor_median, verify: verify_median, verify_config }
}

/// Warm deploy invocations through `f`, each followed by a floor measurement: (walls, floors) in ms.
async fn warm_deploys(f: &FunctionProcess, app: &TodoApp, pusher: &Pusher) -> (Vec<f64>, Vec<f64>) {
    let (mut warm, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..WARM_RUNS {
        let event = pusher.push(app, "todo-frontend").await;
        let start = Instant::now();
        let answer = f.invoke(&event).await.expect("answer");
        warm.push(ms(start.elapsed()));
        assert_eq!(answer["outcome"], "started", "{answer}");
        floor.push(ms(moto_floor(&app.aws).await));
    }
    (warm, floor)
}

/// Verify, warm, with a passing one-round smoke test against a local server: the config it
/// read, the times in ms, and its peak RSS in KB.
async fn warm_verifies(
    deploy_bin: &Path,
    verify_bin: &Path,
    env: &Env,
    app: &TodoApp,
    pusher: &Pusher,
) -> (PathBuf, Vec<f64>, u64) {
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let verify_config = workspace_root().join("target/bench-verify.toml");
    let one_round = local_config(&standin.url())
        .replace("attempts = 5\ninterval_ms = 100", "attempts = 1\ninterval_ms = 0")
        .replace("consecutive = 2", "consecutive = 1");
    std::fs::write(&verify_config, one_round).expect("verify config");
    let mut venv = env.clone();
    venv.retain(|(k, _)| k != "PUSHDEPLOY_CONFIG");
    venv.push(("PUSHDEPLOY_CONFIG".into(), verify_config.display().to_string()));
    let dv = FunctionProcess::start(deploy_bin, &venv).await;
    let vf = FunctionProcess::start(verify_bin, &venv).await;
    let mut verify_times = Vec::new();
    for _ in 0..WARM_RUNS {
        let answer = dv.invoke(&pusher.push(app, "todo-frontend").await).await.expect("deploy");
        let dep = answer["deployments"][0]["ecs_deployment_id"].as_str().expect("deployment").to_string();
        let start = Instant::now();
        let verdict = vf
            .invoke(&ecs_deployment_event("bench", "todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", ""))
            .await
            .expect("verify");
        verify_times.push(ms(start.elapsed()));
        assert_eq!(verdict["outcome"], "verified", "{verdict}");
    }
    let verify_rss_kb = peak_rss_kb(vf.pid());
    dv.stop().await;
    vf.stop().await;
    drop(standin);
    (verify_config, verify_times, verify_rss_kb)
}

/// The bootstraps scripts/build-lambdas built, if any.
fn print_bootstrap_sizes() {
    for arch in ["arm64", "x86_64"] {
        for f in ["deploy", "verify"] {
            let p = workspace_root().join(format!("target/lambda-{arch}/{f}/bootstrap"));
            if let Ok(m) = std::fs::metadata(&p) {
                println!(
                    "| {arch} `{f}` bootstrap (scripts/build-lambdas) | {:.2} MB | < 8 MB |",
                    m.len() as f64 / 1e6
                );
            }
        }
    }
}

/// 7. The peer, side by side on the same moto and service: whole processes, alternating.
pub async fn peer_side_by_side(deploy_bin: &Path, env: &Env, app: &TodoApp, pusher: &Pusher, floor_median: f64) {
    let peer = workspace_root().join(".venv-bench/bin/ecs");
    if !peer.exists() {
        println!("\n(peer not installed: run scripts/bench, which installs ecs-deploy into .venv-bench)");
        return;
    }
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for i in 0..PEER_RUNS {
        let event = pusher.push(app, "todo-frontend").await;
        let digest = event["detail"]["image-digest"].as_str().unwrap().to_string();
        let start = Instant::now();
        let f = FunctionProcess::start(deploy_bin, env).await;
        let answer = f.invoke(&event).await.expect("answer");
        ours.push(ms(start.elapsed()));
        f.stop().await;
        assert_eq!(answer["outcome"], "started", "run {i}: {answer}");
        let event = pusher.push(app, "todo-frontend").await;
        let digest2 = event["detail"]["image-digest"].as_str().unwrap().to_string();
        let uri = format!("{}/todo-frontend@{}", registry(), if i % 2 == 0 { &digest2 } else { &digest });
        let start = Instant::now();
        let out = Command::new(&peer)
            .args(["deploy", CLUSTER, "todo-frontend", "--image", "frontend", &uri, "--timeout", "-1"])
            .envs(app.aws.function_env(testkit::iam::Role::Deploy))
            .env("AWS_DEFAULT_REGION", REGION)
            .output()
            .expect("run ecs-deploy");
        theirs.push(ms(start.elapsed()));
        assert!(out.status.success(), "ecs-deploy failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!("\n## Side by side with fabfuel ecs-deploy 1.17 (same moto, same service, digest deploy; whole process; median of {PEER_RUNS}, alternating)\n");
    println!("| tool | what one run does | median |");
    println!("| --- | --- | --- |");
    println!("| pushdeploy `deploy` (cold: exec, config load, clients, one invocation) | ECR tag check, lease read and take, DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition, UpdateService, 3 S3 writes with the lease release | {o:.1} ms |");
    println!("| `ecs deploy … --timeout -1` | DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition, UpdateService, DescribeServices, DeregisterTaskDefinition | {t:.1} ms |");
    println!("\nratio {:.1}× (goal ≥ 4×); moto's floor for the 4 shared ECS calls is {floor_median:.1} ms of each side's time", t / o);
}

/// 8. Cost, from the measured durations on arm64: deploy at template.yaml's 512 MB, verify at 128 MB.
pub fn cost_model(warm_median: f64, verify_median: f64) {
    let gb_s = |ms_: f64| ms_ / 1000.0 * 0.125;
    let price = PRICE_GB_S;
    let per_deploy = warm_median.max(1.0) / 1000.0 * 0.5 * price + 0.2e-6;
    let per_verify = gb_s(verify_median.max(1.0)) * price + 0.2e-6;
    println!(
        "\n## Cost model (arm64; deploy 512 MB, verify 128 MB; $0.0000133334 per GB-s, $0.20 per million requests)\n"
    );
    println!("| item | per deployment | 100 deployments/day, 30 days |");
    println!("| --- | --- | --- |");
    println!("| deploy invocation ({warm_median:.0} ms) | ${per_deploy:.9} | ${:.6} |", per_deploy * 3000.0);
    println!("| verify: 3 invocations (in progress, completed with smoke, rollback-free) ({verify_median:.0} ms for the smoke one) | ${:.9} | ${:.6} |", per_verify + 2.0 * (gb_s(5.0) * price + 0.2e-6), (per_verify + 2.0 * (gb_s(5.0) * price + 0.2e-6)) * 3000.0);
    println!("| CodePipeline V1, per pipeline (one per service) | | $1.00 per active pipeline-month |");
    println!("| CodePipeline V2, per action execution minute | $0.002 per minute (≥ 1 minute) | ≥ $6.00 |");
}
