//! A cold digest deploy as on Lambda: TLS on every AWS endpoint, under Lambda's CPU share.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::estate::{deployer, TodoApp, BUCKET};
use testkit::faults::FaultProxy;
use testkit::moto::workspace_root;
use testkit::runtime::{release_binary, CpuShare, FunctionProcess};
use testkit::tls::{LocalCa, TlsFront};

use crate::measure::{median, ms, PRICE_GB_S, PRICE_REQUEST};
use crate::setup::{new_app, Pusher};

const TLS_RUNS: usize = 7;

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
#[derive(Default)]
struct ColdRuns {
    times: Vec<f64>,
    cpu: Vec<f64>,
    init_cpu: Vec<f64>,
    connections: Vec<[usize; 3]>,
    init_connections: Vec<[usize; 3]>,
}

/// What each cold run needs: the estate and its pushes, the TLS fronts, the bootstrap.
struct Cold<'a> {
    app: &'a TodoApp,
    pusher: &'a Pusher,
    fronts: &'a [TlsFront],
    deploy_bin: &'a Path,
}

/// A cold digest deploy as on Lambda: TLS on every AWS endpoint (a TLS front per moto, signed by
/// a local CA trusted through `SSL_CERT_FILE` beside the system roots), the config in S3, and the
/// bootstrap in a cgroup with Lambda's CPU share for a memory size. Prints the table.
pub async fn tls_cold_starts(config_text: &str) {
    let deploy_bin =
        std::env::var_os("PUSHDEPLOY_BENCH_DEPLOY").map(PathBuf::from).unwrap_or_else(|| release_binary("deploy"));
    let (backends, app) = new_app().await;
    // A service in steady state: as many records as a push reads (it reads the newest 30).
    let pusher = Pusher(std::cell::Cell::new(10_000));
    steady_state(&app, &pusher, config_text).await;
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
    let base = base_env(&app);
    let plain_env =
        with_endpoints(&base, [&keep_alive[0].endpoint, &keep_alive[1].endpoint, &keep_alive[2].endpoint], &[]);
    let bundle = ca.bundle.display().to_string();
    let tls_env = with_endpoints(
        &base,
        [&fronts[0].endpoint, &fronts[1].endpoint, &fronts[2].endpoint],
        &[("SSL_CERT_FILE", &bundle)],
    );
    print_intro();
    let cold = Cold { app: &app, pusher: &pusher, fronts: &fronts, deploy_bin: &deploy_bin };
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
        let Some(r) = cold.runs(env.to_vec(), share).await else { continue };
        print_row(name, env_is_tls, share, r);
    }
    drop(fronts);
    drop(keep_alive);
    drop(backends);
}

/// The config in S3, and as many deployments of the frontend as a push reads.
async fn steady_state(app: &TodoApp, pusher: &Pusher, config_text: &str) {
    app.aws
        .s3
        .put_object()
        .bucket(BUCKET)
        .key("pushdeploy.toml")
        .body(config_text.as_bytes().to_vec().into())
        .send()
        .await
        .expect("upload the config");
    let d = deployer(&app.aws, config_text);
    for i in 0..pushdeploy::rules::rolled_back::HISTORY_SCANNED {
        let answer = serde_json::to_value(
            d.handle(pusher.push(app, "todo-frontend").await, &format!("history-{i}")).await.expect("deploy"),
        )
        .unwrap();
        assert_eq!(answer["outcome"], "started", "{answer}");
    }
}

/// The deploy function's environment without endpoints, its config read from S3.
fn base_env(app: &TodoApp) -> Env {
    app.aws
        .function_env(testkit::iam::Role::Deploy)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ENDPOINT_URL"))
        .chain([
            ("PUSHDEPLOY_CONFIG".to_string(), format!("s3://{BUCKET}/pushdeploy.toml")),
            ("PUSHDEPLOY_BUCKET".to_string(), BUCKET.to_string()),
            ("RUST_LOG".to_string(), "warn".to_string()),
        ])
        .collect()
}

/// `base` with ECS, ECR and S3 at `endpoints`, and `extra`.
fn with_endpoints(base: &Env, endpoints: [&str; 3], extra: &[(&str, &str)]) -> Env {
    let mut env = base.clone();
    for (var, e) in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_S3"].iter().zip(endpoints) {
        env.push((var.to_string(), e.to_string()));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// The connections each front accepted so far, in the order S3, ECS, ECR.
fn counts(fronts: &[TlsFront]) -> [usize; 3] {
    [fronts[2].connections(), fronts[0].connections(), fronts[1].connections()]
}

fn diff(a: [usize; 3], b: [usize; 3]) -> [usize; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

impl Cold<'_> {
    /// TLS_RUNS cold deploys with `env` under `share`; `None` when the CPU share cannot be set.
    async fn runs(&self, env: Env, share: Share) -> Option<ColdRuns> {
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
        let mut r = ColdRuns::default();
        for _ in 0..TLS_RUNS {
            self.run(&env, share, cpu.as_ref(), &mut r).await;
        }
        Some(r)
    }

    /// One cold deploy, measured into `r`.
    async fn run(&self, env: &Env, share: Share, cpu: Option<&CpuShare>, r: &mut ColdRuns) {
        let event = self.pusher.push(self.app, "todo-frontend").await;
        let before = counts(self.fronts);
        let (f, answer, took) = match share {
            Share::Throughout(_) => FunctionProcess::cold_invoke(self.deploy_bin, env, cpu, &event).await,
            Share::Full | Share::AfterInit(_) => {
                let f = FunctionProcess::start(self.deploy_bin, env).await;
                r.init_cpu.push(ms(f.cpu_time()));
                r.init_connections.push(diff(counts(self.fronts), before));
                if let (Some(c), Some(pid)) = (cpu, f.pid()) {
                    c.add(pid);
                }
                let answer = f.invoke(&event).await;
                let took = f.spawned.elapsed();
                (f, answer, took)
            }
        };
        r.cpu.push(ms(f.cpu_time()));
        r.times.push(ms(took));
        r.connections.push(diff(counts(self.fronts), before));
        f.stop().await;
        let answer = answer.unwrap_or_else(|e| panic!("cold deploy failed: {e}"));
        assert_eq!(answer["outcome"], "started", "{answer}");
    }
}

fn print_intro() {
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
}

/// The table's row for case `name`.
fn print_row(name: &str, tls: bool, share: Share, mut r: ColdRuns) {
    let t = median(&mut r.times);
    let mem_gb = match share {
        Share::Full => 0.128,
        Share::Throughout(mb) | Share::AfterInit(mb) => f64::from(mb) / 1024.0,
    };
    let cost = t / 1000.0 * mem_gb * PRICE_GB_S + PRICE_REQUEST;
    let init_cpu = if r.init_cpu.is_empty() { "–".to_string() } else { format!("{:.1} ms", median(&mut r.init_cpu)) };
    let init_conns =
        if !tls || r.init_connections.is_empty() { "–".to_string() } else { spread(&r.init_connections) };
    let all_conns = if tls { spread(&r.connections) } else { "no TLS".to_string() };
    println!(
        "| {name} | {t:.1} ms (min {:.1}, max {:.1}) | {init_cpu} / {:.1} ms | {init_conns} / {} | ${cost:.9} |",
        r.times.iter().cloned().fold(f64::MAX, f64::min),
        r.times.iter().cloned().fold(0.0, f64::max),
        median(&mut r.cpu),
        all_conns,
    );
}

/// Per endpoint, the connection count of every run: one number, or the range.
fn spread(v: &[[usize; 3]]) -> String {
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
}
