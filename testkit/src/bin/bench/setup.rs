//! The estates the benchmarks run on, the proxies in front of them, and the pushes they answer.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::estate::{ecr_push_event, Aws, TodoApp, CLUSTER};
use testkit::faults::FaultProxy;
use testkit::moto::Moto;

/// ECS (and ELBv2, SNS, EC2), ECR and S3 each on a moto of its own: on AWS they are separate
/// services, while one moto process would serve all their calls one at a time. ECS's moto sits
/// behind the IAM guard, which answers the service-deployment calls moto lacks
/// (ListServiceDeployments, DescribeServiceRevisions: a rollout reads what the service ran).
pub struct Backends {
    motos: Vec<Moto>,
    /// The guard in front of ECS's moto.
    pub ecs: testkit::guard::Guard,
}

impl Backends {
    /// The endpoints of ECS, ECR and S3, in that order.
    pub fn endpoints(&self) -> [&str; 3] {
        [&self.ecs.endpoint, &self.motos[1].endpoint, &self.motos[2].endpoint]
    }
}

/// The todo estate on [`Backends`].
pub async fn new_app() -> (Backends, TodoApp) {
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
pub async fn new_single_app() -> (testkit::guard::Emulator, TodoApp) {
    let emu = testkit::guard::Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    (emu, app)
}

/// A recording proxy in front of each of the estate's backends, and clients that go through them.
pub async fn proxied(backends: &Backends, latency: Duration) -> (Vec<FaultProxy>, Aws) {
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
pub fn take_calls(proxies: &[FaultProxy]) -> Vec<testkit::faults::TimedCall> {
    let mut calls: Vec<_> = proxies.iter().flat_map(|p| p.take_timed()).collect();
    calls.sort_by_key(|c| c.start);
    calls
}

/// Pushes distinct images and answers their ECR push events.
#[derive(Default)]
pub struct Pusher(pub std::cell::Cell<u32>);

impl Pusher {
    /// Pushes a new image to `repo` as `latest`: its push event.
    pub async fn push(&self, app: &TodoApp, repo: &str) -> serde_json::Value {
        let seq = self.0.get() + 1;
        self.0.set(seq);
        let digest = app.aws.push_image(repo, "latest", &format!("{repo}-bench-{seq}")).await;
        ecr_push_event(&format!("bench-{seq}"), repo, "latest", &digest)
    }
}

/// moto's time for the four critical-path calls of a digest deploy, made directly and in order.
pub async fn moto_floor(aws: &Aws) -> Duration {
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

/// The peak resident set of process `pid`, in KB (0 when unknown).
pub fn peak_rss_kb(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The kernel and machine, as `uname -srm` names them.
pub fn uname() -> String {
    Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
