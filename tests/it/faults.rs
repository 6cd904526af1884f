//! Faults at every AWS call of a deploy: throttling, 500, 503, connection resets and timeouts,
//! injected by a proxy in front of moto. After each run nothing runs unrecorded (or unrecoverable),
//! and re-invoking as Lambda would converges on exactly one recorded rollout.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use pushdeploy::aws::AwsPolicy;
use pushdeploy::domain::lease::{lease_key, Lease};
use pushdeploy::domain::timing::Deadline;
use serde_json::Value;
use testkit::estate::{ecr_push_event, registry, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::faults::{Fault, FaultProxy};
use testkit::guard::Emulator;

use crate::support::{deployer, TODO_CONFIG};

/// pushdeploy's policy with test-sized timeouts, so a stalled call costs under a second.
fn fast_policy() -> AwsPolicy {
    AwsPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        connect_timeout: Duration::from_millis(300),
        attempt_timeout: Duration::from_millis(400),
        operation_timeout: Duration::from_secs(3),
    }
}

/// Each invocation's Lambda deadline: long enough for a call that times out on every attempt,
/// short enough that a lease left behind (its release faulted) lapses within seconds.
const DEADLINE: Duration = Duration::from_secs(8);

struct Rig {
    direct: Aws,
    proxy: FaultProxy,
    deployer: pushdeploy::flows::deploy::Deployer,
    original: String,
    _moto: Emulator,
}

impl Rig {
    async fn new() -> Self {
        Self::with(fast_policy(), Duration::from_millis(900)).await
    }

    /// A rig whose deploy calls AWS under `policy`, through a proxy whose stalls last `stall`.
    async fn with(policy: AwsPolicy, stall: Duration) -> Self {
        let moto = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&moto.endpoint).await).await;
        let proxy = FaultProxy::start(&moto.endpoint, stall).await;
        let via = Aws::with_loader(&proxy.endpoint, policy.loader()).await;
        let deployer = deployer(&via, TODO_CONFIG);
        let original = app.aws.service_task_definition(CLUSTER, "todo-frontend").await;
        Self { direct: app.aws, proxy, deployer, original, _moto: moto }
    }

    async fn push(&self, seed: &str) -> (Value, String) {
        let digest = self.direct.push_image("todo-frontend", "latest", seed).await;
        (
            ecr_push_event(&format!("evt-{seed}"), "todo-frontend", "latest", &digest),
            format!("{}/todo-frontend@{digest}", registry()),
        )
    }

    /// Invokes as Lambda would retry the first invocation: under the same request id.
    async fn invoke(&self, event: &Value) -> String {
        self.invoke_as(event, "req").await
    }

    async fn invoke_as(&self, event: &Value, request_id: &str) -> String {
        match self.deployer.handle_before(event.clone(), request_id, Deadline::after(DEADLINE)).await {
            Ok(s) => serde_json::to_value(s).unwrap()["outcome"].as_str().unwrap().to_string(),
            Err(e) if e.is_transient() => "error (retried)".into(),
            Err(e) => format!("permanent error: {e}"),
        }
    }

    async fn records(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for k in self.direct.keys(BUCKET).await.into_iter().filter(|k| k.starts_with("deployments/")) {
            out.push(serde_json::from_slice(&self.direct.object(BUCKET, &k).await).unwrap());
        }
        out
    }

    async fn lease(&self) -> Option<Lease> {
        let key = lease_key(CLUSTER, "todo-frontend");
        let keys = self.direct.keys(BUCKET).await;
        if !keys.contains(&key) {
            return None;
        }
        serde_json::from_slice(&self.direct.object(BUCKET, &key).await).ok()
    }

    async fn primary(&self) -> String {
        let out = self.direct.ecs.describe_services().cluster(CLUSTER).services("todo-frontend").send().await.unwrap();
        let d = out.services()[0].deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap();
        d.id().unwrap().to_string()
    }

    /// After any run: a revision the service runs is recorded, or its rollout is in the lease for the retry.
    async fn nothing_runs_unaccounted(&self) -> Result<(), String> {
        let running = self.direct.service_task_definition(CLUSTER, "todo-frontend").await;
        if running == self.original {
            return Ok(());
        }
        let recorded = self.records().await.iter().any(|r| r["task_definition"] == running.as_str());
        // Carried in the lease: a known revision, or (taken before registering) the pushed image.
        let image = self.direct.images_of(&running).await[0].1.clone();
        let pending =
            self.lease().await.and_then(|l| l.pending).is_some_and(|p| {
                p.task_definition == running || (p.task_definition.is_empty() && p.image_uri == image)
            });
        if recorded || pending {
            Ok(())
        } else {
            Err(format!("{running} runs with no record and no pending lease"))
        }
    }
}

struct Row {
    op: String,
    fault: &'static str,
    injected: u32,
    first: String,
    retries: u32,
    last: String,
    revisions: usize,
    records: usize,
}

async fn persistent_fault(op: String, fault: Fault) -> Result<Row, String> {
    let rig = Rig::new().await;
    let (event, pinned) = rig.push("v1").await;
    rig.proxy.inject(&op, fault, u32::MAX);
    let first = rig.invoke(&event).await;
    let injected = rig.proxy.injected();
    rig.nothing_runs_unaccounted().await.map_err(|e| format!("{op} {}: after the failed run: {e}", fault.name()))?;
    rig.proxy.clear();
    // Re-invoked at once (an operator re-running it, a duplicate delivery): a failed holder has
    // handed its lease over, so nothing waits for it to expire.
    let mut retries = 0;
    let mut last = first.clone();
    while last.starts_with("error") && retries < 5 {
        last = rig.invoke(&event).await;
        retries += 1;
    }
    let ctx = |what: String| format!("{op} {}: {what} (first {first}, last {last})", fault.name());
    if !matches!(last.as_str(), "started" | "unchanged") {
        return Err(ctx("did not converge".into()));
    }
    // A third delivery of the same event: truthfully unchanged.
    let third = rig.invoke(&event).await;
    if third != "unchanged" {
        return Err(ctx(format!("a third delivery answered {third}, not unchanged")));
    }
    let running = rig.direct.service_task_definition(CLUSTER, "todo-frontend").await;
    if rig.direct.images_of(&running).await[0].1 != pinned {
        return Err(ctx(format!("{running} does not run the pushed digest")));
    }
    let records = rig.records().await;
    let primary = rig.primary().await;
    if records.len() != 1
        || records[0]["task_definition"] != running.as_str()
        || records[0]["ecs_deployment_id"] != primary.as_str()
    {
        return Err(ctx(format!("records do not match ECS: {records:?} vs {running} / {primary}")));
    }
    if let Some(left) = rig.lease().await.filter(|l| !l.released) {
        // A lease whose release failed only holds the service until it lapses, just after its
        // holder's deadline: the next push (another invocation) goes through then.
        let lapses_in = left.expires_at_ms.saturating_sub(pushdeploy::domain::lease::now_ms());
        tokio::time::sleep(Duration::from_millis(lapses_in + 50)).await;
        let (next, _) = rig.push("v2").await;
        let outcome = rig.invoke_as(&next, "req-v2").await;
        if outcome != "started" {
            return Err(ctx(format!("a lease left behind blocked the next push: {outcome}")));
        }
    }
    let revisions = rig.direct.revisions("todo-frontend").await.len();
    Ok(Row { op, fault: fault.name(), injected, first, retries, last, revisions, records: records.len() })
}

async fn discover_operations() -> Vec<String> {
    let rig = Rig::new().await;
    let (event, _) = rig.push("discover").await;
    rig.proxy.take_calls();
    assert_eq!(rig.invoke(&event).await, "started");
    let mut ops: Vec<String> = Vec::new();
    for op in rig.proxy.take_calls() {
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    ops
}

#[tokio::test]
async fn every_fault_at_every_deploy_call_converges() {
    let ops = discover_operations().await;
    for expected in [
        "ecr:DescribeImages",
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "ecs:UpdateService",
        "s3:GET leases",
        "s3:PUT leases",
        "s3:PUT deployments",
        "s3:PUT imagedefinitions",
    ] {
        assert!(ops.iter().any(|o| o == expected), "{expected} not among {ops:?}");
    }
    let cases: Vec<(String, Fault)> =
        ops.iter().flat_map(|op| Fault::ALL.iter().map(move |f| (op.clone(), *f))).collect();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for chunk in cases.chunks(6) {
        for r in join_all(chunk.iter().map(|(op, f)| persistent_fault(op.clone(), *f))).await {
            match r {
                Ok(row) => rows.push(row),
                Err(e) => failures.push(e),
            }
        }
    }
    eprintln!("| call | fault | injected | first invocation | retries | last | revisions | records |");
    eprintln!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.op, r.fault, r.injected, r.first, r.retries, r.last, r.revisions, r.records
        );
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(rows.iter().all(|r| r.revisions <= 3), "at most one unused revision per crash");
    // A refused UpdateService takes its copy back; only a lost answer (reset, timeout) may leave one.
    for r in rows.iter().filter(|r| r.op == "ecs:UpdateService" && !matches!(r.fault, "reset" | "timeout")) {
        assert_eq!(r.revisions, 2, "{} {}: the original and the one rolled out", r.op, r.fault);
    }
}

#[tokio::test]
async fn a_single_fault_is_absorbed_by_the_sdk_retry() {
    let ops = [
        "ecs:DescribeServices",
        "ecs:RegisterTaskDefinition",
        "ecs:UpdateService",
        "s3:PUT deployments",
        "ecr:DescribeImages",
    ];
    let cases: Vec<(&str, Fault)> = ops.iter().flat_map(|op| Fault::ALL.iter().map(move |f| (*op, *f))).collect();
    // Attempts long enough that a loaded machine's moto never times one out by itself: the one
    // injected fault must be the only failed attempt (a stall outlasts an attempt, not the call).
    let patient = AwsPolicy {
        attempt_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(7),
        ..fast_policy()
    };
    let mut results = Vec::new();
    for chunk in cases.chunks(3) {
        results.extend(
            join_all(chunk.iter().map(|(op, f)| async move {
                let rig = Rig::with(patient, Duration::from_millis(2500)).await;
                let (event, _) = rig.push("v1").await;
                rig.proxy.inject(op, *f, 1);
                let outcome = rig.invoke(&event).await;
                (*op, *f, rig.proxy.injected(), outcome)
            }))
            .await,
        );
    }
    for (op, f, injected, outcome) in results {
        assert_eq!(injected, 1, "{op} {}", f.name());
        assert_eq!(outcome, "started", "{op} {}: one failed attempt is retried inside the call", f.name());
    }
}

/// A broken rollout, verified through the fault proxy: each fault at each call of a verify that
/// rolls back, then re-delivery of the event, must end rolled back and recorded as such.
async fn verify_fault(op: String, fault: Fault) -> Result<(String, &'static str, String, u32, String), String> {
    use testkit::standin::{Behaviour, SnsSink, TodoStandIn};
    let rig = Rig::new().await;
    let standin = TodoStandIn::start(rig.direct.clone()).await;
    let sink = SnsSink::start(&rig.direct, "pushdeploy-verdicts").await;
    let config = testkit::estate::local_config(&standin.url());
    let via = Aws::with_loader(&rig.proxy.endpoint, fast_policy().loader()).await;
    // The rollout under test starts outside the fault proxy: its short timeouts are for the
    // verify calls faulted below, and a slow moto on a loaded machine must not fail the set-up.
    let deploy = deployer(&rig.direct, &config);
    let verify = crate::support::verifier(&via, &config, Some(&sink.topic_arn));
    let (event, _) = rig.push("broken").await;
    let digest = event["detail"]["image-digest"].as_str().unwrap().to_string();
    standin.set(&digest, Behaviour::Broken);
    let started = serde_json::to_value(deploy.handle(event, "req").await.unwrap()).unwrap();
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let completed =
        testkit::estate::ecs_deployment_event("ecs-f", "todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let run = || async {
        match verify.handle(completed.clone(), Instant::now() + Duration::from_secs(30)).await {
            Ok(s) => serde_json::to_value(s).unwrap()["outcome"].as_str().unwrap().to_string(),
            Err(e) if e.is_transient() => "error (retried)".into(),
            Err(e) => format!("permanent error: {e}"),
        }
    };
    rig.proxy.inject(&op, fault, u32::MAX);
    let first = run().await;
    rig.proxy.clear();
    let mut last = first.clone();
    let mut retries = 0;
    while last.starts_with("error") && retries < 5 {
        last = run().await;
        retries += 1;
    }
    let ctx = |what: String| format!("verify {op} {}: {what} (first {first}, last {last})", fault.name());
    if last != "rolled_back" {
        return Err(ctx("did not end rolled back".into()));
    }
    let running = rig.direct.service_task_definition(CLUSTER, "todo-frontend").await;
    if let Err(e) = crate::support::pinned_copy_of(&rig.direct, &running, &rig.original).await {
        return Err(ctx(format!("service runs {running}, not the original: {e}")));
    }
    let records = rig.records().await;
    let failed =
        records.iter().find(|r| r["ecs_deployment_id"] == dep.as_str()).ok_or_else(|| ctx("no record".into()))?;
    if failed["status"] != "rolled_back" || failed["rolled_back_to"] != running.as_str() {
        return Err(ctx(format!("record says {} / {}", failed["status"], failed["rolled_back_to"])));
    }
    let primary = rig.primary().await;
    if !records.iter().any(|r| r["ecs_deployment_id"] == primary.as_str() && r["trigger"]["kind"] == "auto_rollback") {
        return Err(ctx(format!("the rollback deployment {primary} has no record")));
    }
    // One notification per verdict, however often the event was retried: a rollback that failed
    // and then succeeded tells both, never one of them twice. A faulted Publish may lose it. The
    // one duplicate allowed is the SDK's own retry of a Publish whose earlier attempt moto had
    // answered too late for the SDK (it had published): both attempts carry one
    // `amz-sdk-invocation-id`, which the proxy records. (Timing the answers at the proxy
    // undercounted them under load: the SDK's attempt clock starts before the proxy sees the call.)
    let publishes: Vec<Option<String>> =
        rig.proxy.take_timed().into_iter().filter(|c| c.op == "sns:Publish").map(|c| c.invocation).collect();
    let mut operations = publishes.clone();
    operations.sort();
    operations.dedup();
    let slow_publishes = publishes.len() - operations.len();
    let subjects: Vec<String> =
        sink.notifications().iter().map(|n| n["Subject"].as_str().unwrap_or_default().to_string()).collect();
    let mut distinct = subjects.clone();
    distinct.sort();
    distinct.dedup();
    if subjects.len() - distinct.len() > slow_publishes || (subjects.is_empty() && op != "sns:Publish") {
        return Err(ctx(format!("notifications {subjects:?} ({slow_publishes} Publish retried by the SDK)")));
    }
    let notified = subjects.len();
    Ok((op, fault.name(), first, retries, format!("{last}, {notified} notification(s)")))
}

#[tokio::test]
async fn every_fault_at_every_verify_call_ends_rolled_back_and_recorded() {
    let ops = [
        "s3:GET deployments",
        "ecs:DescribeServices",
        "s3:PUT deployments",
        "ecs:UpdateService",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "sns:Publish",
    ];
    let cases: Vec<(String, Fault)> =
        ops.iter().flat_map(|op| Fault::ALL.iter().map(move |f| (op.to_string(), *f))).collect();
    let mut failures = Vec::new();
    eprintln!("| verify call | fault | first invocation | retries | last |");
    eprintln!("| --- | --- | --- | --- | --- |");
    for chunk in cases.chunks(6) {
        for r in join_all(chunk.iter().map(|(op, f)| verify_fault(op.clone(), *f))).await {
            match r {
                Ok((op, f, first, retries, last)) => eprintln!("| {op} | {f} | {first} | {retries} | {last} |"),
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[tokio::test]
async fn an_operator_re_running_a_failed_event_100_ms_later_deploys_it() {
    let rig = Rig::new().await;
    let (event, pinned) = rig.push("v1").await;
    rig.proxy.inject("ecs:RegisterTaskDefinition", Fault::Status503, u32::MAX);
    assert_eq!(rig.invoke(&event).await, "error (retried)");
    rig.proxy.clear();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A new invocation (not Lambda's retry of the failed one): only the handover lets it in now.
    assert_eq!(rig.invoke_as(&event, "req-operator").await, "started", "the failed holder handed its lease over");

    let running = rig.direct.service_task_definition(CLUSTER, "todo-frontend").await;
    assert_eq!(rig.direct.images_of(&running).await[0].1, pinned);
    assert_eq!(rig.records().await.len(), 1);
}

/// ECS's service deployments of the frontend, as the emulation of ECS lists them.
async fn frontend_service_deployments(rig: &Rig) -> usize {
    let out = rig
        .direct
        .ecs
        .list_service_deployments()
        .cluster(CLUSTER)
        .service("todo-frontend")
        .max_results(100)
        .send()
        .await
        .expect("list service deployments");
    out.service_deployments().len()
}

#[tokio::test]
async fn an_update_service_whose_answer_is_lost_starts_one_deployment() {
    let rig = Rig::with(
        AwsPolicy {
            attempt_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(7),
            ..fast_policy()
        },
        Duration::from_millis(900),
    )
    .await;
    let before = frontend_service_deployments(&rig).await;
    let (event, pinned) = rig.push("lost").await;
    // ECS takes the first UpdateService, its answer is lost, and the SDK sends it again.
    rig.proxy.inject("ecs:UpdateService", Fault::LostAnswer, 1);
    assert_eq!(rig.invoke(&event).await, "started");
    assert_eq!(rig.proxy.injected(), 1, "the answer of the first UpdateService was lost");
    let sent = rig.proxy.take_timed().iter().filter(|c| c.op == "ecs:UpdateService").count();
    assert_eq!(sent, 1, "the retry reached ECS (the lost attempt is not timed)");
    assert_eq!(
        frontend_service_deployments(&rig).await,
        before + 1,
        "the repeated UpdateService started no second deployment of the revision"
    );
    let running = rig.direct.service_task_definition(CLUSTER, "todo-frontend").await;
    assert_eq!(rig.direct.images_of(&running).await[0].1, pinned);
    let records = rig.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["ecs_deployment_id"], rig.primary().await.as_str(), "the record names the one deployment");
}
