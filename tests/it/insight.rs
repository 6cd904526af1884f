//! The operator's `pushdeploy status`, `history`, `show` and `report`, run as a process against
//! moto after a real deploy → verify → rollback loop.

use std::collections::BTreeSet;

use serde_json::Value;
use testkit::estate::{local_config, BUCKET, CLUSTER};
use testkit::standin::Behaviour;

use crate::verify::Loop;

/// Runs `pushdeploy ARGS` with the operator's environment; (exit code, stdout, stderr). On the
/// blocking pool: moto's guard is served by this test's runtime, which must keep running.
pub(crate) async fn pushdeploy(l: &Loop, config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
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
    // A rollout in flight: the service's live lease.
    let held = pushdeploy::domain::lease::Lease::new(
        "evt-inflight".into(),
        Some("req-inflight".into()),
        "todo-frontend@sha256:abc".into(),
        pushdeploy::domain::lease::now_ms() + 60_000,
        None,
    );
    l.aws().put_json(BUCKET, &pushdeploy::domain::lease::lease_key(CLUSTER, "todo-frontend"), &held).await;
    let (_, out, _) = pushdeploy(&l, &config, &["status", "--json"]).await;
    let frontend = json(&out).as_array().unwrap().iter().find(|s| s["name"] == "frontend").cloned().unwrap();
    assert_eq!(frontend["in_flight"], "evt-inflight rolling out todo-frontend@sha256:abc");
    l.aws()
        .put_json(BUCKET, &pushdeploy::domain::lease::lease_key(CLUSTER, "todo-frontend"), &held.released(None))
        .await;
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
    let broken_id = pushdeploy::domain::record::record_id(&broken).unwrap();
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
    let (_, only, _) = pushdeploy(&l, &config, &["report", "--service", "frontend", "--json"]).await;
    let only = json(&only);
    assert_eq!(only["services"].as_object().unwrap().len(), 0, "frontend had no deployment: {only}");
    assert_eq!(only["overall"]["deployments"], 0);
    let (_, table, _) = pushdeploy(&l, &config, &["report"]).await;
    assert!(table.contains("overall") && table.contains("50%") && table.contains("skipped"), "{table}");
}

/// A history with known answers, relative to now: backend four deployments (one rolled back and
/// recovered by its rollback in 60 s), frontend two (a circuit breaker recovered by the next
/// verified push in 785 s).
async fn write_fixture_history(l: &Loop) {
    let t0 = (insight_now() - 2.0 * 86_400.0).floor();
    let at = |s: f64| pushdeploy::domain::record::rfc3339(t0 + s);
    let rec = |id: u32, service: &str, name: &str, trigger: Value, status: &str, events: &[(&str, f64)]| {
        let pushed = events.iter().find(|(e, _)| *e == "pushed").map(|(_, t)| at(*t));
        serde_json::json!({
            "id": format!("ecs-svc-{id}"), "cluster": CLUSTER, "service": service, "name": name,
            "repository": service, "tag": "latest", "digest": format!("sha256:{:064}", id), "image_uri": format!("{service}@sha256:{:064}", id),
            "strategy": "pin-digest", "trigger": trigger, "pushed_at": pushed,
            "previous_task_definition": format!("{service}:1"), "task_definition": format!("{service}:{id}"),
            "ecs_deployment_id": format!("ecs-svc/{id}"), "status": status, "containers": [name],
            "timeline": events.iter().map(|(e, t)| serde_json::json!({"event": e, "at": at(*t)})).collect::<Vec<_>>()
        })
    };
    let push = serde_json::json!({"kind": "push", "event_id": "e"});
    let mut rolled_back = rec(
        3,
        "todo-backend",
        "backend",
        push.clone(),
        "rolled_back",
        &[
            ("pushed", 7200.0),
            ("started", 7205.0),
            ("ecs_completed", 7300.0),
            ("smoke_failed", 7400.0),
            ("rolled_back", 7401.0),
        ],
    );
    rolled_back["rollback_deployment"] = "ecs-svc-4".into();
    let records = [
        rec(
            1,
            "todo-backend",
            "backend",
            push.clone(),
            "verified",
            &[("pushed", 0.0), ("started", 5.0), ("verified", 125.0)],
        ),
        rec(
            2,
            "todo-backend",
            "backend",
            push.clone(),
            "verified",
            &[("pushed", 3600.0), ("started", 3605.0), ("verified", 3905.0)],
        ),
        rolled_back,
        rec(
            4,
            "todo-backend",
            "backend",
            serde_json::json!({"kind": "auto_rollback", "of": "ecs-svc-3"}),
            "completed",
            &[("started", 7401.0), ("ecs_completed", 7460.0)],
        ),
        rec(
            5,
            "todo-backend",
            "backend",
            serde_json::json!({"kind": "manual", "action": "redeploy", "request_id": "r"}),
            "verified",
            &[("started", 9000.0), ("verified", 9100.0)],
        ),
        rec(
            6,
            "todo-frontend",
            "frontend",
            push.clone(),
            "failed",
            &[("pushed", 100.0), ("started", 105.0), ("ecs_failed", 400.0)],
        ),
        rec(
            7,
            "todo-frontend",
            "frontend",
            push,
            "verified",
            &[("pushed", 1000.0), ("started", 1005.0), ("verified", 1185.0)],
        ),
    ];
    for r in &records {
        let key =
            format!("deployments/{CLUSTER}/{}/{}.json", r["service"].as_str().unwrap(), r["id"].as_str().unwrap());
        l.aws().put_json(BUCKET, &key, r).await;
    }
}

fn insight_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Headless Chromium (Debian's package, installed by scripts/setup).
fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is installed (scripts/setup installs Debian's package)")
}

#[tokio::test]
async fn the_report_page_renders_in_a_real_browser_with_the_fixture_historys_numbers() {
    let l = Loop::new().await;
    write_fixture_history(&l).await;
    let dir = std::env::temp_dir().join(format!("pushdeploy-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pushdeploy.toml");
    std::fs::write(&config, local_config(&l.standin.url())).unwrap();
    let page = dir.join("report.html");

    let (code, out, err) =
        pushdeploy(&l, &config, &["report", "--since", "7d", "--json", "--html", page.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    // The known answers.
    let r = json(&out);
    let (b, f, o) = (&r["services"]["backend"], &r["services"]["frontend"], &r["overall"]);
    assert_eq!(
        (b["deployments"].as_u64(), f["deployments"].as_u64(), o["deployments"].as_u64()),
        (Some(4), Some(2), Some(6))
    );
    assert_eq!(b["change_failure_rate"], 0.25);
    assert_eq!(f["change_failure_rate"], 0.5);
    assert_eq!(b["lead_time_seconds"], serde_json::json!({"median": 215.0, "p90": 305.0}));
    assert_eq!(o["lead_time_seconds"], serde_json::json!({"median": 185.0, "p90": 305.0}));
    assert_eq!(b["recovery_seconds"]["median"], 60.0);
    assert_eq!(f["recovery_seconds"]["median"], 785.0);
    assert_eq!(o["recovery_seconds"]["median"], 422.5);
    assert!((o["per_day"].as_f64().unwrap() - 6.0 / 7.0).abs() < 1e-3, "{o}");
    assert_eq!(o["band"], "high");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to run, nothing to fetch (an SVG's xmlns is a name, not a fetch).
    for fetch in ["<script", "<link", "src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(fetch), "the page would load {fetch}");
    }

    // The page as a browser draws it: its text, and a screenshot that is not blank.
    let browse = |args: Vec<String>| {
        let mut c = std::process::Command::new(chromium());
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
            .args(args);
        c
    };
    let url = format!("file://{}", page.display());
    let mut dom = browse(vec!["--dump-dom".into(), url.clone()]);
    let dom = tokio::task::spawn_blocking(move || dom.output()).await.unwrap().expect("run chromium");
    let text = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(
        dom.status.success() && text.contains("id=\"keys\""),
        "chromium rendered nothing: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for number in ["3m 35s", "5m 05s", "25%", "50%", "33%", "13m 05s", "0.86", "ecs_failed", "smoke_failed"] {
        assert!(text.contains(number), "the page shows {number}");
    }
    assert!(text.contains("<svg"), "the charts are inline SVG");
    let shot = dir.join("report.png");
    let mut screenshot =
        browse(vec![format!("--screenshot={}", shot.display()), "--window-size=1200,1600".into(), url]);
    let done = tokio::task::spawn_blocking(move || screenshot.output()).await.unwrap().expect("run chromium");
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("a screenshot"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let inked = pixels.iter().filter(|p| p[..3].iter().any(|c| *c < 200)).count();
    let green = pixels.iter().filter(|p| p[0] < 60 && p[1] > 100 && p[2] < 90).count();
    assert!(inked * 100 > pixels.len(), "the screenshot is blank: {inked} of {} pixels inked", pixels.len());
    assert!(green > 200, "the verified bars and bands are drawn in green: {green} pixels");
}

#[tokio::test]
async fn deploy_plan_redeploy_and_rollback_invoke_the_deploy_function_and_answer_for_a_person() {
    let l = Loop::new().await;
    let config_text = local_config(&l.standin.url());
    let deploy = crate::function::start_function("deploy", l.aws(), &config_text, &[]).await;
    let deploy = std::sync::Arc::new(deploy);
    let lambda = testkit::lambda::LambdaService::start(
        [("pushdeploy-deploy".to_string(), deploy.clone())].into_iter().collect(),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("pushdeploy-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pushdeploy.toml");
    std::fs::write(&config, &config_text).unwrap();
    let run = |args: Vec<&'static str>| {
        let mut env = l.aws().function_env(testkit::iam::Role::Deploy);
        env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
        let mut c = std::process::Command::new(testkit::runtime::cli_binary());
        c.args(args).envs(env).env("AWS_ACCESS_KEY_ID", "testing").env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint);
        async move {
            let out = tokio::task::spawn_blocking(move || c.output()).await.unwrap().expect("run pushdeploy");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let digest = l.aws().push_image("todo-backend", "v1.4.2", "backend-cli").await;

    let (code, out) = run(vec!["plan", "backend", "v1.4.2"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("backend (todo-cluster/todo-backend): planned — deploy would register a new revision"),
        "{out}"
    );
    let (code, out) = run(vec!["deploy", "backend", "v1.4.2"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": started — ") && out.contains("pushdeploy show ecs-svc-"), "{out}");
    let running = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    assert!(l.aws().images_of(&running).await[0].1.ends_with(digest.as_str()), "the tag's digest runs");
    let (code, out) = run(vec!["deploy", "backend", "v1.4.2"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": unchanged — already runs"), "{out}");
    // No verified deployment to return to: back to Terraform's revision, which ECS ran and
    // pushdeploy never judged, said as such. Then nothing is older: refused, exit 1 with the reason.
    let (code, out) = run(vec!["rollback", "backend"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rolled_back") && out.contains("pushdeploy never tested it"), "{out}");
    let (code, out) = run(vec!["rollback", "backend"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rejected") && out.contains("no verified deployment"), "{out}");
    let (code, out) = run(vec!["deploy", "nosuch", "latest"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown service"), "{out}");
    let (code, out) = run(vec!["redeploy", "frontend", "--function", "not-a-function"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Function not found: not-a-function"), "{out}");
}
