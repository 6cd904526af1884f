//! `pushdeploy report` over many records: 32 GETs in flight against the same GETs one at a time.

use std::time::{Duration, Instant};

use testkit::estate::{registry, Aws, BUCKET, CLUSTER};
use testkit::faults::FaultProxy;
use testkit::moto::Moto;

/// `pushdeploy report` over many records: one listing, then 32 GETs in flight, against the same
/// GETs made one at a time; direct to moto and with 20 ms added to every call.
pub async fn report_scale() {
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
