//! The operator's `pushdeploy status`, `history`, `show` and `report`, run as a process against
//! moto after a real deploy → verify → rollback loop.

use std::collections::BTreeSet;

use serde_json::Value;
use testkit::estate::{local_config, BUCKET, CLUSTER};
use testkit::standin::Behaviour;

use crate::verify::Loop;

/// Runs `pushdeploy ARGS` with the operator's environment; (exit code, stdout, stderr). On the
/// blocking pool: moto's guard is served by this test's runtime, which must keep running.
async fn pushdeploy(l: &Loop, config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut env = l.aws().function_env(testkit::iam::Role::Deploy);
    // The operator's own credentials (the guard checks only the functions' roles).
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut command = std::process::Command::new(testkit::runtime::cli_binary());
    command
        .args(args)
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("PUSHDEPLOY_BUCKET", BUCKET)
        .env("PUSHDEPLOY_CONFIG", config);
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test]
async fn status_history_show_and_report_say_what_the_records_say() {
    let mut l = Loop::new().await;
    let good = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &good).await["outcome"], "verified");
    let broken = l.push("todo-backend", "backend-broken", Behaviour::Broken).await;
    let rolled = l.completed("todo-backend", &broken).await;
    assert_eq!(rolled["outcome"], "rolled_back", "{rolled}");
    // ECS finishes the rollback: its record gets `ecs_completed`, which ends the failure's recovery.
    let rollback_dep = l.aws().service_primary_deployment(CLUSTER, "todo-backend").await;
    assert_eq!(l.completed("todo-backend", &rollback_dep).await["outcome"], "rolled_back");
    // An object that is not a record: skipped with a warning naming it, never a crash.
    l.aws()
        .s3
        .put_object()
        .bucket(BUCKET)
        .key("deployments/todo-cluster/todo-backend/garbage.json")
        .body(b"not json".to_vec().into())
        .send()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("pushdeploy-insight-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pushdeploy.toml");
    std::fs::write(&config, local_config(&l.standin.url())).unwrap();

    // status: what ECS runs, the last record, nothing in flight.
    let (code, out, err) = pushdeploy(&l, &config, &["status", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let status = json(&out);
    let backend = status.as_array().unwrap().iter().find(|s| s["name"] == "backend").unwrap();
    let running = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert_eq!(backend["task_definition"], running.as_str());
    assert_eq!(backend["last"]["trigger"], "automatic rollback");
    assert_eq!(backend["last"]["status"], "completed");
    assert_eq!(backend["in_flight"], Value::Null);
    let (code, table, _) = pushdeploy(&l, &config, &["status"]).await;
    assert_eq!(code, 0);
    assert!(table.contains("backend") && table.contains("todo-cluster/todo-backend"), "{table}");
    assert!(!table.contains('\u{1b}'), "no colour when piped: {table}");

    // history: newest first, the rollback, the broken push, the good one.
    let (code, out, err) = pushdeploy(&l, &config, &["history", "backend", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let history = json(&out);
    let statuses: Vec<&str> = history.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["completed", "rolled_back", "verified"]);
    assert!(err.contains("garbage.json"), "the skipped object is named: {err}");
    let (_, table, _) = pushdeploy(&l, &config, &["history", "backend"]).await;
    assert!(table.contains("automatic rollback") && table.contains("push"), "{table}");

    // show: one deployment's timeline and smoke results.
    let broken_id = pushdeploy::record::record_id(&broken).unwrap();
    let (code, out, _) = pushdeploy(&l, &config, &["show", &broken_id]).await;
    assert_eq!(code, 0);
    assert!(out.contains("rolled_back") && out.contains("smoke_failed") && out.contains("FAILED"), "{out}");
    assert_eq!(pushdeploy(&l, &config, &["show", "ecs-svc-404"]).await.0, 1, "an unknown id exits 1");

    // report: exactly the documented shape, with the figures the records give.
    let (code, out, err) = pushdeploy(&l, &config, &["report", "--since", "1d", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    let top: BTreeSet<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, BTreeSet::from(["since", "until", "services", "overall"]));
    let keys: BTreeSet<&str> = report["overall"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "deployments",
            "per_day",
            "lead_time_seconds",
            "change_failure_rate",
            "recovery_seconds",
            "band"
        ])
    );
    let b = &report["services"]["backend"];
    assert_eq!(b["deployments"], 2, "the rollback is not a deployment: {b}");
    assert_eq!(b["change_failure_rate"], 0.5);
    assert_eq!(b["band"], "elite");
    assert!(b["lead_time_seconds"]["median"].as_f64().is_some_and(|s| (0.0..60.0).contains(&s)), "{b}");
    assert!(b["recovery_seconds"]["median"].as_f64().is_some_and(|s| (0.0..60.0).contains(&s)), "{b}");
    assert!(err.contains("1 object(s) were not deployment records"), "{err}");
    let (_, table, _) = pushdeploy(&l, &config, &["report"]).await;
    assert!(table.contains("overall") && table.contains("50%") && table.contains("skipped"), "{table}");
}
