//! Benchmarks: the deploy's AWS calls and critical path, fan-out, cold start, warm invocations,
//! footprint, the moto floor, and the peer (fabfuel `ecs-deploy`) side by side. Prints markdown.
//! Run with `scripts/bench` (it installs ecs-deploy and builds everything in release).

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::estate::{
    deployer, ecr_push_event, ecs_deployment_event, local_config, registry, Aws, TodoApp, BUCKET, CLUSTER, REGION,
};
use testkit::faults::FaultProxy;
use testkit::moto::{workspace_root, Moto};
use testkit::runtime::{release_binary, FunctionProcess};
use testkit::standin::TodoStandIn;

const FANOUT_RUNS: usize = 5;
const COLD_STARTS: usize = 20;
const WARM_RUNS: usize = 30;
const PEER_RUNS: usize = 10;
const CONCURRENT_RUNS: usize = 7;
const HOOK_RUNS: usize = 9;
const TLS_RUNS: usize = 7;
/// Lambda's price per GB-second on arm64, and per request.
const PRICE_GB_S: f64 = 0.0000133334;
const PRICE_REQUEST: f64 = 0.2e-6;
/// Latencies added to every AWS call in the fan-out runs: a fast round trip, and a typical
/// control-plane one.
const FANOUT_LATENCIES_MS: [u64; 2] = [20, 50];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p99(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64) * 0.99).ceil() as usize - 1]
}

/// ECS (and ELBv2, SNS, EC2), ECR and S3 each on a moto of its own: on AWS they are separate
/// services, while one moto process would serve all their calls one at a time. ECS's moto sits
/// behind the IAM guard, which answers the service-deployment calls moto lacks
/// (ListServiceDeployments, DescribeServiceRevisions: a rollout reads what the service ran).
struct Backends {
    motos: Vec<Moto>,
    ecs: testkit::guard::Guard,
}

impl Backends {
    /// The endpoints of ECS, ECR and S3, in that order.
    fn endpoints(&self) -> [&str; 3] {
        [&self.ecs.endpoint, &self.motos[1].endpoint, &self.motos[2].endpoint]
    }
}

/// The todo estate on [`Backends`].
async fn new_app() -> (Backends, TodoApp) {
    let motos = vec![Moto::start(), Moto::start(), Moto::start()];
    let ecs =
        testkit::guard::Guard::with_policies(&motos[0].endpoint, testkit::iam::Policies::template().clone(), None)
            .await;
    let backends = Backends { motos, ecs };
    let [a, b, c] = backends.endpoints();
    let aws = Aws::split(a, b, c).await;
    (backends, TodoApp::create(aws).await)
}

/// The todo estate with every service on one moto (behind the guard, as in the tests).
async fn new_single_app() -> (testkit::guard::Emulator, TodoApp) {
    let emu = testkit::guard::Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    (emu, app)
}

/// A recording proxy in front of each of the estate's backends, and clients that go through them.
async fn proxied(backends: &Backends, latency: Duration) -> (Vec<FaultProxy>, Aws) {
    let mut proxies = Vec::new();
    for endpoint in backends.endpoints() {
        let p = FaultProxy::start(endpoint, Duration::from_secs(1)).await;
        p.set_latency(latency);
        proxies.push(p);
    }
    let via = Aws::split(&proxies[0].endpoint, &proxies[1].endpoint, &proxies[2].endpoint).await;
    (proxies, via)
}

/// The calls every proxy saw, in the order they started.
fn take_calls(proxies: &[FaultProxy]) -> Vec<testkit::faults::TimedCall> {
    let mut calls: Vec<_> = proxies.iter().flat_map(|p| p.take_timed()).collect();
    calls.sort_by_key(|c| c.start);
    calls
}

#[tokio::main]
async fn main() {
    let config_path = workspace_root().join("examples/pushdeploy.toml");
    let config_text = std::fs::read_to_string(&config_path).expect("example config");
    println!("# pushdeploy benchmarks\n");
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), uname());
    // `scripts/bench concurrent` or `scripts/bench report`: only that table.
    match std::env::args().nth(1).as_deref() {
        Some("concurrent") => return concurrent_pushes(&config_text).await,
        Some("report") => return report_scale().await,
        Some("hook") => return hook_invocations().await,
        Some("tls") => return tls_cold_starts(&config_text).await,
        _ => {}
    }
    let deploy_bin = release_binary("deploy");
    let verify_bin = release_binary("verify");

    // 1. AWS calls of one deploy, in order, through recording proxies in front of the motos.
    let (motos, app) = new_app().await;
    let (proxies, via) = proxied(&motos, Duration::ZERO).await;
    let d = deployer(&via, &config_text);
    let pusher = Pusher::default();
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
    // The critical path, walked back from the call that finished last: each step is the call
    // that finished latest before it started, which is what it was waiting for.
    let mut on_path = vec![false; calls.len()];
    let mut at = (0..calls.len()).max_by_key(|&i| calls[i].end);
    while let Some(i) = at {
        on_path[i] = true;
        at = (0..calls.len()).filter(|&j| calls[j].end <= calls[i].start).max_by_key(|&j| calls[j].end);
    }
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

    // 2. Fan-out: one push matching 1, 2, 4, 8 services.
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
        let (motos, app) = new_app().await;
        let mut slowed = Vec::new();
        for latency in FANOUT_LATENCIES_MS {
            slowed.push(proxied(&motos, Duration::from_millis(latency)).await);
        }
        let mut text = format!("[defaults]\ncluster = \"{CLUSTER}\"\n");
        for i in 0..n {
            let name = format!("web-{i}");
            let td = app
                .aws
                .register_rich_task_definition(&name, &[("web", format!("{}/todo-frontend:latest", registry()))])
                .await;
            app.aws.create_service(CLUSTER, &name, &td).await;
            text.push_str(&format!("[[service]]\nname = \"{name}\"\nservice = \"{name}\"\nrepository = \"todo-frontend\"\ntags = [\"latest\"]\n"));
        }
        // The template's roles as a user would fill them in for these services' task roles.
        let families: Vec<String> = (0..n).map(|i| format!("web-{i}")).collect();
        motos.ecs.set_policies(testkit::iam::Policies::template_for_families(
            &families.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
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
        if n == 1 {
            base = medians.clone();
        }
        let cells: Vec<String> = medians.iter().zip(&base).map(|(m, b)| format!("{m:.1} ms | {:.2}×", m / b)).collect();
        println!("| {n} | {} |", cells.join(" | "));
        drop(slowed);
        drop(motos);
    }

    concurrent_pushes(&config_text).await;
    hook_invocations().await;
    tls_cold_starts(&config_text).await;

    // 3–6. The release binary under a runtime-API host.
    let (motos, app) = new_app().await;
    let mut env = app.aws.function_env(testkit::iam::Role::Deploy);
    env.push(("PUSHDEPLOY_CONFIG".into(), config_path.display().to_string()));
    env.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
    env.push(("RUST_LOG".into(), "warn".into()));
    let mut cold = Vec::new();
    for _ in 0..COLD_STARTS {
        let f = FunctionProcess::start(&deploy_bin, &env).await;
        cold.push(ms(f.host.polls()[0] - f.spawned));
        f.stop().await;
    }
    let cold_median = median(&mut cold);

    let f = FunctionProcess::start(&deploy_bin, &env).await;
    let (mut warm, mut floor) = warm_deploys(&f, &app, &pusher).await;
    let rss_kb = peak_rss_kb(f.pid());
    f.stop().await;
    let (warm_median, warm_p99, floor_median) = (median(&mut warm.clone()), p99(&mut warm), median(&mut floor));

    // The same on a single moto serving every service, for comparison.
    let (single_moto, single) = new_single_app().await;
    let mut single_env = single.aws.function_env(testkit::iam::Role::Deploy);
    single_env.extend(env.iter().filter(|(k, _)| k.starts_with("PUSHDEPLOY_") || k == "RUST_LOG").cloned());
    let f = FunctionProcess::start(&deploy_bin, &single_env).await;
    let (mut single_warm, mut single_floor) = warm_deploys(&f, &single, &pusher).await;
    f.stop().await;
    drop(single_moto);
    let (single_median, single_floor_median) = (median(&mut single_warm), median(&mut single_floor));

    // Verify, warm, with a passing one-round smoke test against a local server.
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let verify_config = workspace_root().join("target/bench-verify.toml");
    let one_round = local_config(&standin.url())
        .replace("attempts = 5\ninterval_ms = 100", "attempts = 1\ninterval_ms = 0")
        .replace("consecutive = 2", "consecutive = 1");
    std::fs::write(&verify_config, one_round).expect("verify config");
    let mut venv = env.clone();
    venv.retain(|(k, _)| k != "PUSHDEPLOY_CONFIG");
    venv.push(("PUSHDEPLOY_CONFIG".into(), verify_config.display().to_string()));
    let dv = FunctionProcess::start(&deploy_bin, &venv).await;
    let vf = FunctionProcess::start(&verify_bin, &venv).await;
    let mut verify_times = Vec::new();
    for _ in 0..WARM_RUNS {
        let answer = dv.invoke(&pusher.push(&app, "todo-frontend").await).await.expect("deploy");
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

    // 7. The peer, side by side on the same moto and service: whole processes, alternating.
    let peer = workspace_root().join(".venv-bench/bin/ecs");
    if peer.exists() {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for i in 0..PEER_RUNS {
            let event = pusher.push(&app, "todo-frontend").await;
            let digest = event["detail"]["image-digest"].as_str().unwrap().to_string();
            let start = Instant::now();
            let f = FunctionProcess::start(&deploy_bin, &env).await;
            let answer = f.invoke(&event).await.expect("answer");
            ours.push(ms(start.elapsed()));
            f.stop().await;
            assert_eq!(answer["outcome"], "started", "run {i}: {answer}");
            let event = pusher.push(&app, "todo-frontend").await;
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
    } else {
        println!("\n(peer not installed: run scripts/bench, which installs ecs-deploy into .venv-bench)");
    }

    // 8. Cost, from the measured durations on arm64: deploy at template.yaml's 512 MB, verify at 128 MB.
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
    drop(motos);
    let _ = std::fs::remove_file(&verify_config);
}

/// Two pushes for one service at once, on two deploy instances (in-process), against one push
/// alone: the time until both have answered. Busy services are waited for, so both answer.
async fn concurrent_pushes(config_text: &str) {
    println!(
        "\n## Two concurrent pushes for one service (in-process, two deploy instances, median of {CONCURRENT_RUNS})\n"
    );
    println!("moto behind the IAM guard (as in the tests), direct and with 20 ms added to every call. Time until");
    println!("both invocations have answered: the second waits for the first one's lease (polling it from 25 ms,");
    println!("doubling), then reads the service afresh and goes on.\n");
    println!("| case | direct to moto | with 20 ms per call | answers |");
    println!("| --- | --- | --- | --- |");
    // moto behind the guard, which answers the ECS service-deployment calls moto lacks (a
    // rollout reads what the service ran beside UpdateService).
    let emu = testkit::guard::Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let slow = FaultProxy::start(&emu.endpoint, Duration::from_secs(1)).await;
    slow.set_latency(Duration::from_millis(20));
    let slowed = Aws::new(&slow.endpoint).await;
    let mut seq = 0u32;
    for (name, case) in [
        ("one push alone", Case::Alone),
        ("`v1.4.2` and `latest`, different digests, at once", Case::TwoDigests),
        ("`v1.4.2` and `latest` of one digest, at once", Case::OneDigestTwoTags),
    ] {
        let mut cells = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for aws in [&app.aws, &slowed] {
            let (a, b) = (deployer(aws, config_text), deployer(aws, config_text));
            let mut times = Vec::new();
            for _ in 0..CONCURRENT_RUNS {
                seq += 1;
                let event = |tag: &str, digest: &pushdeploy::domain::image::Digest| {
                    ecr_push_event(&format!("concurrent-{seq}-{tag}"), "todo-backend", tag, digest)
                };
                let first = app.aws.push_image("todo-backend", "v1.4.2", &format!("backend-concurrent-{seq}")).await;
                let (ra, rb) = (format!("a-{seq}"), format!("b-{seq}"));
                let alone = Instant::now();
                let mut answers = match case {
                    Case::Alone => vec![outcome_of(a.handle(event("v1.4.2", &first), &ra).await.expect("answers"))],
                    Case::TwoDigests | Case::OneDigestTwoTags => {
                        let seed = match case {
                            Case::TwoDigests => format!("backend-concurrent-{seq}-latest"),
                            _ => format!("backend-concurrent-{seq}"),
                        };
                        let second = app.aws.push_image("todo-backend", "latest", &seed).await;
                        let start_both = Instant::now();
                        let (x, y) = tokio::join!(
                            a.handle(event("v1.4.2", &first), &ra),
                            b.handle(event("latest", &second), &rb)
                        );
                        times.push(ms(start_both.elapsed()));
                        vec![outcome_of(x.expect("both answer")), outcome_of(y.expect("both answer"))]
                    }
                };
                if matches!(case, Case::Alone) {
                    times.push(ms(alone.elapsed()));
                }
                answers.sort();
                let joined = answers.join(" + ");
                if !seen.contains(&joined) {
                    seen.push(joined);
                }
            }
            cells.push(format!("{:.1} ms", median(&mut times)));
        }
        println!("| {name} | {} | {} |", cells.join(" | "), seen.join(", "));
    }
    drop(slow);
    drop(emu);
}

/// verify as a blue/green backend's lifecycle hook (in-process): what each kind of invocation
/// takes and which AWS calls it makes, direct to moto and with 20 ms added to every AWS call.
async fn hook_invocations() {
    println!("\n## Lifecycle hook invocations (in-process verify, blue/green backend, median of {HOOK_RUNS})\n");
    println!("moto behind the IAM guard; the stand-in app's test listener on 127.0.0.1. A round is one check;");
    println!("after the passing round comes the read-after-write probe (write, 6 reads, delete).\n");
    println!("| invocation | answer | direct to moto | with 20 ms per AWS call | AWS calls |");
    println!("| --- | --- | --- | --- | --- |");
    let emu = testkit::guard::Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let config = testkit::estate::blue_green_config(&standin.url(), &standin.test_url(), 5, 2);
    let slow = FaultProxy::start(&emu.endpoint, Duration::from_secs(1)).await;
    slow.set_latency(Duration::from_millis(20));
    let slowed = Aws::new(&slow.endpoint).await;
    let kinds = [
        (
            "first: no index yet, the revision, ECS's deployment of it, its record, the index written, a timeline stamp, one round",
            "IN_PROGRESS",
        ),
        ("second: one GET (named in hookDetails), a round, the probe, the verdict's write", "SUCCEEDED"),
        ("duplicate of the second: one GET", "SUCCEEDED"),
        ("a later stage's first (no hookDetails): the index names the record, one round", "IN_PROGRESS"),
    ];
    let mut times: Vec<[Vec<f64>; 2]> = kinds.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    let mut calls: Vec<String> = vec![String::new(); kinds.len()];
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
            let (deployment, revision) = app.aws.newest_service_deployment(CLUSTER, "todo-backend").await;
            // verify checks the stage against ECS's own service deployment before it tests.
            emu.guard.ecs.set_service_deployment(&deployment, "IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
            let mut details: Option<serde_json::Value> = None;
            for (i, (_, want)) in kinds.iter().enumerate() {
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
                times[i][column].push(ms(start.elapsed()));
                assert_eq!(answer["hookStatus"], *want, "{answer}");
                let mut ops: Vec<String> = emu.guard.calls()[before..].iter().map(|c| c.operation.clone()).collect();
                ops.sort();
                let mut counted: Vec<String> = Vec::new();
                for op in ops.iter() {
                    if !counted.iter().any(|c| c.starts_with(&format!("{op} "))) {
                        counted.push(format!("{op} ×{}", ops.iter().filter(|o| *o == op).count()));
                    }
                }
                calls[i] = counted.join(", ");
                if i == 0 {
                    details = Some(answer["hookDetails"].clone());
                }
            }
        }
    }
    for (i, (name, want)) in kinds.iter().enumerate() {
        let [direct, slowed] = &mut times[i];
        println!("| {name} | {want} | {:.1} ms | {:.1} ms | {} |", median(direct), median(slowed), calls[i]);
    }
    drop(slow);
    drop(standin);
    drop(emu);
}

/// A function's environment.
type Env = Vec<(String, String)>;

/// Where a cold start's CPU share comes from.
#[derive(Clone, Copy, PartialEq)]
enum Share {
    /// The machine's, unlimited.
    Full,
    /// memory ÷ 1,769 of a CPU from the first instruction.
    Throughout(u32),
    /// A full CPU until the first poll for work, memory ÷ 1,769 of a CPU from then on.
    AfterInit(u32),
}

/// One cold deploy per run (spawn → answer), each on a fresh process: the times, CPU used,
/// and connections each endpoint accepted.
struct ColdRuns {
    times: Vec<f64>,
    cpu: Vec<f64>,
    init_cpu: Vec<f64>,
    connections: Vec<[usize; 3]>,
    init_connections: Vec<[usize; 3]>,
}

/// A cold digest deploy as on Lambda: TLS on every AWS endpoint (a TLS front per moto, signed by
/// a local CA trusted through `SSL_CERT_FILE` beside the system roots), the config in S3, and the
/// bootstrap in a cgroup with Lambda's CPU share for a memory size. Prints the table.
async fn tls_cold_starts(config_text: &str) {
    use testkit::runtime::CpuShare;
    use testkit::tls::{LocalCa, TlsFront};
    let deploy_bin = std::env::var_os("PUSHDEPLOY_BENCH_DEPLOY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| release_binary("deploy"));
    let (backends, app) = new_app().await;
    app.aws
        .s3
        .put_object()
        .bucket(BUCKET)
        .key("pushdeploy.toml")
        .body(config_text.as_bytes().to_vec().into())
        .send()
        .await
        .expect("upload the config");
    // A service in steady state: as many records as a push reads (it reads the newest 30).
    let pusher = Pusher(std::cell::Cell::new(10_000));
    let d = deployer(&app.aws, config_text);
    for i in 0..pushdeploy::rules::rolled_back::HISTORY_SCANNED {
        let answer = serde_json::to_value(
            d.handle(pusher.push(&app, "todo-frontend").await, &format!("history-{i}")).await.expect("deploy"),
        )
        .unwrap();
        assert_eq!(answer["outcome"], "started", "{answer}");
    }
    let ca = LocalCa::generate(&workspace_root().join("target/bench-tls"));
    // moto's server closes every connection after its answer; AWS keeps them open. testkit's
    // proxy keeps the function's connections open and forwards each call, as the guard does.
    let mut keep_alive = Vec::new();
    let mut fronts = Vec::new();
    for endpoint in backends.endpoints() {
        let proxy = FaultProxy::start(endpoint, Duration::from_secs(1)).await;
        fronts.push(TlsFront::start(&proxy.endpoint, &ca).await);
        keep_alive.push(proxy);
    }
    let base: Vec<(String, String)> = app
        .aws
        .function_env(testkit::iam::Role::Deploy)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ENDPOINT_URL"))
        .chain([
            ("PUSHDEPLOY_CONFIG".to_string(), format!("s3://{BUCKET}/pushdeploy.toml")),
            ("PUSHDEPLOY_BUCKET".to_string(), BUCKET.to_string()),
            ("RUST_LOG".to_string(), "warn".to_string()),
        ])
        .collect();
    let with = |endpoints: [&str; 3], extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = base.clone();
        for (var, e) in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_S3"].iter().zip(endpoints) {
            env.push((var.to_string(), e.to_string()));
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let plain_env = with([&keep_alive[0].endpoint, &keep_alive[1].endpoint, &keep_alive[2].endpoint], &[]);
    let bundle = ca.bundle.display().to_string();
    let tls_env = with([&fronts[0].endpoint, &fronts[1].endpoint, &fronts[2].endpoint], &[("SSL_CERT_FILE", &bundle)]);
    let counts = |fronts: &[TlsFront]| -> [usize; 3] {
        // In the order S3, ECS, ECR.
        [fronts[2].connections(), fronts[0].connections(), fronts[1].connections()]
    };
    let diff = |a: [usize; 3], b: [usize; 3]| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let runs = |env: Env, share: Share| {
        let (app, pusher, fronts, deploy_bin) = (&app, &pusher, &fronts, &deploy_bin);
        async move {
            let cpu = match share {
                Share::Full => None,
                Share::Throughout(mb) | Share::AfterInit(mb) => match CpuShare::for_memory(mb) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        println!("(no CPU share: {e}; run as root on cgroup v1)");
                        return None;
                    }
                },
            };
            let mut r = ColdRuns {
                times: Vec::new(),
                cpu: Vec::new(),
                init_cpu: Vec::new(),
                connections: Vec::new(),
                init_connections: Vec::new(),
            };
            for _ in 0..TLS_RUNS {
                let event = pusher.push(app, "todo-frontend").await;
                let before = counts(fronts);
                let (f, answer, took) = match share {
                    Share::Throughout(_) => FunctionProcess::cold_invoke(deploy_bin, &env, cpu.as_ref(), &event).await,
                    Share::Full | Share::AfterInit(_) => {
                        let f = FunctionProcess::start(deploy_bin, &env).await;
                        r.init_cpu.push(ms(f.cpu_time()));
                        r.init_connections.push(diff(counts(fronts), before));
                        if let (Some(c), Some(pid)) = (&cpu, f.pid()) {
                            c.add(pid);
                        }
                        let answer = f.invoke(&event).await;
                        let took = f.spawned.elapsed();
                        (f, answer, took)
                    }
                };
                r.cpu.push(ms(f.cpu_time()));
                r.times.push(ms(took));
                r.connections.push(diff(counts(fronts), before));
                f.stop().await;
                let answer = answer.unwrap_or_else(|e| panic!("cold deploy failed: {e}"));
                assert_eq!(answer["outcome"], "started", "{answer}");
            }
            Some(r)
        }
    };
    println!("\n## A cold deploy with TLS on every endpoint, under Lambda's CPU share (whole process, median of {TLS_RUNS})\n");
    println!("`scripts/bench tls`. Spawn → answer of a cold digest deploy of a service with 30 records (what a");
    println!("push reads; the config read from S3, as template.yaml configures it). TLS: a TLS-terminating proxy on 127.0.0.1 in front of each moto,");
    println!("RSA-2048 server certificate under an RSA-2048 intermediate, HTTP/1.1 as S3 serves it, connections kept");
    println!("open as AWS keeps them (a keep-alive proxy between the front and moto, whose server closes each); the function");
    println!("trusts the system root bundle plus the local root through `SSL_CERT_FILE`. CPU share: a cgroup");
    println!("with a quota of memory ÷ 1,769 of one CPU per 100 ms period. Cost: the whole cold invocation");
    println!("billed (init + invoke, as Lambda bills provided.al2023), arm64, ${PRICE_GB_S} per GB-s, $0.20 per million requests.\n");
    println!("| case | spawn → answer | CPU used (init / whole) | TLS connections: S3, ECS, ECR (init / whole) | cost per cold deploy |");
    println!("| --- | --- | --- | --- | --- |");
    let cases: Vec<(&str, &Env, Share)> = vec![
        ("plain HTTP, full CPU", &plain_env, Share::Full),
        ("TLS, full CPU", &tls_env, Share::Full),
        ("TLS, 128 MB", &tls_env, Share::Throughout(128)),
        ("TLS, 256 MB", &tls_env, Share::Throughout(256)),
        ("TLS, 512 MB", &tls_env, Share::Throughout(512)),
        ("TLS, 1,024 MB", &tls_env, Share::Throughout(1024)),
        ("TLS, 128 MB, init on a full CPU", &tls_env, Share::AfterInit(128)),
        ("TLS, 256 MB, init on a full CPU", &tls_env, Share::AfterInit(256)),
    ];
    for (name, env, share) in cases {
        let env_is_tls = env.iter().any(|(k, _)| k == "SSL_CERT_FILE");
        let Some(mut r) = runs(env.to_vec(), share).await else { continue };
        let t = median(&mut r.times);
        let mem_gb = match share {
            Share::Full => 0.128,
            Share::Throughout(mb) | Share::AfterInit(mb) => f64::from(mb) / 1024.0,
        };
        let cost = t / 1000.0 * mem_gb * PRICE_GB_S + PRICE_REQUEST;
        let whole = |v: &[[usize; 3]]| -> String {
            (0..3)
                .map(|i| {
                    let mut x: Vec<usize> = v.iter().map(|c| c[i]).collect();
                    x.sort();
                    if x.is_empty() {
                        "–".to_string()
                    } else if x[0] == x[x.len() - 1] {
                        x[0].to_string()
                    } else {
                        format!("{}–{}", x[0], x[x.len() - 1])
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let init_cpu =
            if r.init_cpu.is_empty() { "–".to_string() } else { format!("{:.1} ms", median(&mut r.init_cpu)) };
        let tls = env_is_tls;
        let init_conns =
            if !tls || r.init_connections.is_empty() { "–".to_string() } else { whole(&r.init_connections) };
        let all_conns = if tls { whole(&r.connections) } else { "no TLS".to_string() };
        println!(
            "| {name} | {t:.1} ms (min {:.1}, max {:.1}) | {init_cpu} / {:.1} ms | {init_conns} / {} | ${cost:.9} |",
            r.times.iter().cloned().fold(f64::MAX, f64::min),
            r.times.iter().cloned().fold(0.0, f64::max),
            median(&mut r.cpu),
            all_conns,
        );
    }
    drop(fronts);
    drop(keep_alive);
    drop(backends);
}

#[derive(Clone, Copy)]
enum Case {
    Alone,
    TwoDigests,
    OneDigestTwoTags,
}

/// `pushdeploy report` over many records: one listing, then 32 GETs in flight, against the same
/// GETs made one at a time; direct to moto and with 20 ms added to every call.
async fn report_scale() {
    use futures_util::stream::{self, StreamExt};
    use pushdeploy::aws::records::RecordStore;
    use pushdeploy::aws::s3::Store;
    println!("\n## `pushdeploy report` over many records (in-process: listing, GETs, parsing and the four keys)\n");
    println!("S3 on its own moto, direct and through a proxy adding 20 ms to every call. \"32 in flight\" is what");
    println!("`report` does; \"one at a time\" makes the same GETs serially.\n");
    println!("| records | 32 in flight, direct | one at a time, direct | 32 in flight, 20 ms per call | one at a time, 20 ms per call |");
    println!("| --- | --- | --- | --- | --- |");
    let moto = Moto::start();
    let aws = Aws::new(&moto.endpoint).await;
    aws.create_bucket(BUCKET).await;
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    proxy.set_latency(Duration::from_millis(20));
    let slow = Aws::new(&proxy.endpoint).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let mut written = 0usize;
    for n in [1_000usize, 10_000] {
        stream::iter(written..n)
            .for_each_concurrent(32, |i| {
                let aws = &aws;
                async move {
                    let rec = scale_record(i, now - 86_400.0 * 20.0 + i as f64 * 60.0);
                    let key = format!("deployments/{CLUSTER}/svc-{}/{}.json", i % 8, rec["id"].as_str().unwrap());
                    aws.put_json(BUCKET, &key, &rec).await;
                }
            })
            .await;
        written = n;
        let mut cells = Vec::new();
        for client in [&aws, &slow] {
            let records = RecordStore::new(Store::new(client.s3.clone(), BUCKET));
            for in_flight in [32usize, 1] {
                let start = Instant::now();
                let loaded = records.all_since("deployments/", 0, in_flight, &|_, _| {}).await.expect("read records");
                let window = pushdeploy::rules::report::Window { since: now - 30.0 * 86_400.0, until: now };
                let report = pushdeploy::rules::report::report(&loaded.records, window);
                let took = start.elapsed();
                assert_eq!(loaded.records.len(), n);
                assert!(report.overall.deployments > 0);
                cells.push(format!("{:.2} s", took.as_secs_f64()));
            }
        }
        println!("| {n} | {} |", cells.join(" | "));
    }
    drop(proxy);
    drop(moto);
}

/// A realistic deployment record (about 1 KB), the `i`th of a bench history.
fn scale_record(i: usize, started: f64) -> serde_json::Value {
    let at = |s: f64| pushdeploy::domain::record::rfc3339(started + s);
    let status = if i.is_multiple_of(10) { "rolled_back" } else { "verified" };
    serde_json::json!({
        "id": format!("ecs-svc-{i}"), "cluster": CLUSTER, "service": format!("svc-{}", i % 8), "name": format!("svc-{}", i % 8),
        "repository": "todo-backend", "tag": "latest", "digest": format!("sha256:{i:064}"),
        "image_uri": format!("{}/todo-backend@sha256:{i:064}", registry()), "strategy": "pin-digest",
        "trigger": {"kind": "push", "event_id": format!("evt-{i}")}, "pushed_at": at(-5.0),
        "previous_task_definition": "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-backend:1",
        "task_definition": format!("arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-backend:{i}"),
        "ecs_deployment_id": format!("ecs-svc/{i}"), "status": status, "containers": ["backend"],
        "smoke": {"passed": status == "verified", "rounds_run": 2, "duration_ms": 240},
        "timeline": [
            {"event": "pushed", "at": at(-5.0)}, {"event": "started", "at": at(0.0)},
            {"event": "ecs_completed", "at": at(60.0)},
            {"event": if status == "verified" { "verified" } else { "smoke_failed" }, "at": at(65.0)}
        ]
    })
}

fn outcome_of(s: pushdeploy::rules::outcome::Summary) -> String {
    let v = serde_json::to_value(s).expect("summary");
    v["deployments"][0]["outcome"].as_str().unwrap_or("?").to_string()
}

/// Pushes distinct images and answers their ECR push events.
#[derive(Default)]
struct Pusher(std::cell::Cell<u32>);

impl Pusher {
    async fn push(&self, app: &TodoApp, repo: &str) -> serde_json::Value {
        let seq = self.0.get() + 1;
        self.0.set(seq);
        let digest = app.aws.push_image(repo, "latest", &format!("{repo}-bench-{seq}")).await;
        ecr_push_event(&format!("bench-{seq}"), repo, "latest", &digest)
    }
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

/// moto's time for the four critical-path calls of a digest deploy, made directly and in order.
async fn moto_floor(aws: &Aws) -> Duration {
    let start = Instant::now();
    let svc =
        aws.ecs.describe_services().cluster(CLUSTER).services("todo-backend").send().await.expect("describe services");
    let td_arn = svc.services()[0].task_definition().expect("td").to_string();
    let td = aws.ecs.describe_task_definition().task_definition(&td_arn).send().await.expect("describe td");
    let td = td.task_definition().expect("td");
    let reg = aws
        .ecs
        .register_task_definition()
        .family("todo-backend")
        .set_container_definitions(Some(td.container_definitions().to_vec()))
        .set_network_mode(td.network_mode().cloned())
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .send()
        .await
        .expect("register");
    let arn = reg.task_definition().and_then(|t| t.task_definition_arn()).expect("arn").to_string();
    aws.ecs
        .update_service()
        .cluster(CLUSTER)
        .service("todo-backend")
        .task_definition(arn)
        .send()
        .await
        .expect("update");
    start.elapsed()
}

fn peak_rss_kb(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn uname() -> String {
    Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
