//! The built `deploy` binary, driven through the Lambda runtime API as Lambda would.

use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::runtime::{function_binary, FunctionProcess};

use crate::support::TODO_CONFIG;

async fn start(aws: &Aws, config: &str) -> FunctionProcess {
    start_function("deploy", aws, config, &[]).await
}

async fn upload_config(aws: &Aws, config: &str) {
    // Where the template puts it: the function reads it with its role (ReadConfig).
    aws.s3
        .put_object()
        .bucket(BUCKET)
        .key("pushdeploy.toml")
        .body(config.as_bytes().to_vec().into())
        .send()
        .await
        .expect("upload the config");
}

pub(crate) async fn start_function(name: &str, aws: &Aws, config: &str, extra: &[(&str, &str)]) -> FunctionProcess {
    upload_config(aws, config).await;
    start_process(name, aws, extra).await
}

async fn start_process(name: &str, aws: &Aws, extra: &[(&str, &str)]) -> FunctionProcess {
    let role = if name == "verify" { testkit::iam::Role::Verify } else { testkit::iam::Role::Deploy };
    let mut env = aws.function_env(role);
    env.push(("PUSHDEPLOY_CONFIG".into(), format!("s3://{BUCKET}/pushdeploy.toml")));
    env.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
    env.push(("RUST_LOG".into(), "info".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    FunctionProcess::start(&function_binary(name), &env).await
}

#[tokio::test]
async fn the_verify_binary_verifies_through_the_runtime_api_and_refuses_a_budget_it_cannot_keep() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = testkit::standin::TodoStandIn::start(app.aws.clone()).await;
    let config = testkit::estate::local_config(&standin.url());
    let deploy = start_function("deploy", &app.aws, &config, &[]).await;
    let verify = start_function("verify", &app.aws, &config, &[("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "300")]).await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-v1").await;
    let started = deploy.invoke(&ecr_push_event("evt-v", "todo-frontend", "latest", &digest)).await.unwrap();
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap();
    let event =
        testkit::estate::ecs_deployment_event("ecs-v", "todo-frontend", dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let answer = verify.invoke(&event).await.expect("answered");
    assert_eq!(answer["outcome"], "verified", "{answer}");
    verify.stop().await;

    // 5 × (100 ms + 2000 ms) does not fit in 30 s less the 20 s kept for the verdict: the event
    // is not answered but fails, so Lambda retries it and then keeps it for a redrive.
    let tight = start_function("verify", &app.aws, &config, &[("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "30")]).await;
    let failed = tight.invoke(&event).await.expect_err("an event verify cannot judge fails the invocation");
    assert_eq!(failed["errorType"], "Permanent.Config", "{failed}");
    assert!(failed["errorMessage"].as_str().unwrap().contains("service[0].smoke: worst case"), "{failed}");
    tight.stop().await;
    deploy.stop().await;
}

#[tokio::test]
async fn the_binary_deploys_a_push_logs_json_decisions_and_survives_bad_input() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let mut f = start(&app.aws, TODO_CONFIG).await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-v1").await;

    let answer = f.invoke(&ecr_push_event("evt-bin", "todo-frontend", "latest", &digest)).await.expect("answered");
    assert_eq!(answer["outcome"], "started", "{answer}");
    let td = app.aws.service_task_definition(CLUSTER, "todo-frontend").await;
    assert!(app.aws.images_of(&td).await[0].1.ends_with(digest.as_str()));

    for bad in [json!(null), json!([1]), json!({"action": "nuke"}), json!({"detail-type": 5})] {
        let answer = f.invoke(&bad).await.expect("bad input is answered, not thrown");
        assert_eq!(answer["outcome"], "rejected", "{bad}: {answer}");
    }
    assert!(f.is_running(), "the process survives every input");

    let decision = f
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["outcome"] == "started")
        .expect("a JSON decision line for the rollout");
    let fields = &decision["fields"];
    assert_eq!(fields["service"], "frontend");
    assert_eq!(fields["event_id"], "evt-bin");
    assert!(fields["image"].as_str().unwrap().ends_with(digest.as_str()));
    assert!(fields["deployment_id"].as_str().unwrap().starts_with("ecs-svc-"));
    f.stop().await;
}

#[tokio::test]
async fn the_deploy_binary_reads_its_config_and_opens_its_connections_during_init() {
    // On Lambda every endpoint is a TLS handshake on the function's CPU share: the config read
    // and one call each to ECS and ECR happen before the first event, so a push's first round
    // of calls finds its connections open (BENCHMARKS.md, "A cold deploy with TLS").
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let before = emu.guard.calls().len();
    let f = start(&app.aws, TODO_CONFIG).await;
    let init: Vec<_> = emu.guard.calls()[before..].to_vec();
    let ops: Vec<&str> = init.iter().map(|c| c.operation.as_str()).collect();
    for op in ["s3:GetObject", "ecs:DescribeServices", "ecr:DescribeImages"] {
        assert!(ops.contains(&op), "{op} during init, before any event: {ops:?}");
    }
    assert!(init.iter().all(|c| c.allowed && c.role == testkit::iam::Role::Deploy), "{init:#?}");
    assert_eq!(ops.len(), 3, "nothing else is called before an event arrives: {ops:?}");
    // Reads only: the push is then deployed as ever.
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-init").await;
    let answer = f.invoke(&ecr_push_event("evt-init", "todo-frontend", "latest", &digest)).await.expect("answered");
    assert_eq!(answer["outcome"], "started", "{answer}");
    let td = app.aws.service_task_definition(CLUSTER, "todo-frontend").await;
    assert!(app.aws.images_of(&td).await[0].1.ends_with(digest.as_str()));
    f.stop().await;
}

#[tokio::test]
async fn an_invalid_config_rejects_every_invocation_and_names_the_key() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    // Invalid as a whole (an entry that does not say which repository feeds it), at a cold start:
    // no good config to go on with. (An entry's own problem leaves the others readable: `compat`.)
    let broken = TODO_CONFIG.replacen("repository = \"todo-backend\"\n", "", 1);
    let sink = testkit::standin::SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    let f = start_function("deploy", &app.aws, &broken, &[("PUSHDEPLOY_TOPIC_ARN", &sink.topic_arn)]).await;
    let before = crate::support::Snapshot::take(&app.aws).await;
    let digest = app.aws.push_image("todo-backend", "latest", "backend-v1").await;
    let after_push = crate::support::Snapshot::take(&app.aws).await;
    assert_eq!(before, after_push, "pushing to ECR changes nothing a deploy owns");
    let answer = f.invoke(&ecr_push_event("evt-cfg", "todo-backend", "latest", &digest)).await.expect("answered");
    assert_eq!(answer["outcome"], "rejected");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains("service[1].repository") && reason.contains("pushdeploy.toml"), "{reason}");
    assert_eq!(crate::support::Snapshot::take(&app.aws).await, before);
    // A second push: still refused, and the person was told once, at the cold start.
    let again = f.invoke(&ecr_push_event("evt-cfg-2", "todo-backend", "latest", &digest)).await.expect("answered");
    assert_eq!(again["outcome"], "rejected");
    let told = sink.notifications();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED"), "{}", told[0]);
    let message = told[0]["Message"].as_str().unwrap();
    assert!(message.contains("service[1].repository") && message.contains("every invocation is refused"), "{message}");
    f.stop().await;
}

#[tokio::test]
async fn the_config_is_picked_up_when_uploaded_missing_is_retried_and_invalid_is_told_once_and_the_last_good_kept() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let sink = testkit::standin::SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    // Live before the config is uploaded, as a fresh stack is; look at the object on every invocation.
    let f = start_process(
        "deploy",
        &app.aws,
        &[("PUSHDEPLOY_TOPIC_ARN", &sink.topic_arn), ("PUSHDEPLOY_CONFIG_RECHECK_SECONDS", "0")],
    )
    .await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-v1").await;
    let push = ecr_push_event("evt-early", "todo-frontend", "latest", &digest);

    let early = f.invoke(&push).await.expect_err("a missing config fails the invocation, so Lambda retries it");
    assert!(early.to_string().contains("config object does not exist"), "{early}");
    assert_eq!(early["errorType"], "Transient.ConfigMissing", "a type a person can filter on: {early}");

    upload_config(&app.aws, TODO_CONFIG).await;
    let retried = f.invoke(&push).await.expect("answered once the config is there");
    assert_eq!(retried["outcome"], "started", "{retried}");

    // A new version invalid as a whole: told once, and the function goes on with the last good one.
    let broken = TODO_CONFIG.replacen("repository = \"todo-backend\"\n", "", 1);
    upload_config(&app.aws, &broken).await;
    let plan = json!({"action": "plan", "service": "frontend"});
    for _ in 0..2 {
        let kept = f.invoke(&plan).await.expect("answered");
        assert_eq!(kept["outcome"], "planned", "on the last good config: {kept}");
    }
    let told = sink.notifications();
    assert_eq!(told.len(), 1, "told once per version of the config");
    let message = told[0]["Message"].as_str().unwrap();
    assert!(message.contains("service[1].repository") && message.contains("last good config"), "{message}");

    upload_config(&app.aws, TODO_CONFIG).await;
    assert_eq!(f.invoke(&plan).await.expect("answered")["outcome"], "planned", "fixed without a restart");
    f.stop().await;
}

#[tokio::test]
async fn no_log_line_or_notification_carries_a_secret_or_a_response_body() {
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    const TOKEN: &str = "s3cr3t-t0ken-4f9c2a";
    const BODY: &str = "stand-in-body-7f3a";
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = testkit::standin::TodoStandIn::start(app.aws.clone()).await;
    let sink = testkit::standin::SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    // The check's credential comes from SSM: the verify binary reads it with its role and sends it.
    app.aws.put_secure_string("/pushdeploy/todo/api-token", &format!("Bearer {TOKEN}"), None).await;
    let config = testkit::estate::local_config(&standin.url()).replacen(
        "[[service.smoke.check]]\npath = \"todoItems\"",
        "[[service.smoke.check]]\npath = \"todoItems\"\nheaders = { Authorization = { ssm = \"/pushdeploy/todo/api-token\" } }",
        1,
    );
    let mut env: Vec<(&str, &str)> = vec![("AWS_SECRET_ACCESS_KEY", SECRET_KEY), ("RUST_LOG", "debug")];
    env.push(("PUSHDEPLOY_TOPIC_ARN", &sink.topic_arn));
    let deploy = start_function("deploy", &app.aws, &config, &env).await;
    let verify = start_function("verify", &app.aws, &config, &env).await;
    good_then_broken_backend(&app.aws, &standin, &deploy, &verify, 1).await;
    let logs = [deploy.logs(), verify.logs()].concat();
    assert!(logs.len() > 20, "debug logging is on: {} lines", logs.len());
    let notes: Vec<String> = sink.notifications().iter().map(|n| n.to_string()).collect();
    assert_eq!(notes.len(), 2);
    let sent = standin.served().into_iter().filter(|s| s.path.starts_with("/api/todoItems") && s.method == "GET");
    let bearer = format!("Bearer {TOKEN}");
    assert!(sent.filter(|s| s.authorization.as_deref() == Some(bearer.as_str())).count() >= 2, "the token was sent");
    for secret in [SECRET_KEY, TOKEN, BODY] {
        assert!(!logs.iter().any(|l| l.contains(secret)), "a log line contains {secret}");
        assert!(!notes.iter().any(|n| n.contains(secret)), "a notification contains {secret}");
    }
    deploy.stop().await;
    verify.stop().await;
}

/// Pushes a good then a broken backend through the binaries, delivering each completed event
/// `deliveries` times: verified, then rolled back.
async fn good_then_broken_backend(
    aws: &Aws,
    standin: &testkit::standin::TodoStandIn,
    deploy: &FunctionProcess,
    verify: &FunctionProcess,
    deliveries: usize,
) {
    for (seed, behaviour, want) in [
        ("backend-good", testkit::standin::Behaviour::Good, "verified"),
        ("backend-broken", testkit::standin::Behaviour::Broken, "rolled_back"),
    ] {
        let digest = aws.push_image("todo-backend", "latest", seed).await;
        standin.set(digest.as_str(), behaviour);
        let started = deploy.invoke(&ecr_push_event(seed, "todo-backend", "latest", &digest)).await.unwrap();
        let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap();
        let event =
            testkit::estate::ecs_deployment_event(seed, "todo-backend", dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
        for _ in 0..deliveries {
            let verdict = verify.invoke(&event).await.unwrap();
            assert_eq!(verdict["outcome"], want, "{verdict}");
        }
    }
}

/// Checks one log line against the CloudWatch Embedded Metric Format specification: the `_aws`
/// metadata (Timestamp in epoch ms, CloudWatchMetrics directives with Namespace, Dimensions and
/// Metrics), every dimension a string member of the root, every metric a number or an array of
/// at most 100 numbers, every unit one CloudWatch knows.
fn check_emf(doc: &Value) -> Result<(), String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = doc.as_object().ok_or("the root is not an object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    let ts = aws.get("Timestamp").and_then(Value::as_u64).ok_or("_aws.Timestamp is not an integer")?;
    if ts < 1_000_000_000_000 {
        return Err(format!("Timestamp {ts} is not in epoch milliseconds"));
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("CloudWatchMetrics is empty".into());
    }
    for d in directives {
        let ns = d["Namespace"].as_str().ok_or("a directive without Namespace")?;
        if ns.is_empty() || ns.len() > 255 || ns.starts_with(':') {
            return Err(format!("bad Namespace {ns:?}"));
        }
        for set in d["Dimensions"].as_array().ok_or("Dimensions is not an array")? {
            let set = set.as_array().ok_or("a DimensionSet is not an array")?;
            if set.len() > 30 {
                return Err("more than 30 dimensions".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                let value =
                    root.get(name).and_then(Value::as_str).ok_or(format!("dimension {name} is not a string member"))?;
                if value.is_empty() || value.len() > 1024 {
                    return Err(format!("dimension {name} = {value:?}"));
                }
            }
        }
        let metrics = d["Metrics"].as_array().ok_or("Metrics is not an array")?;
        if metrics.len() > 100 {
            return Err("more than 100 metrics in a directive".into());
        }
        for m in metrics {
            let name = m["Name"].as_str().ok_or("a metric without Name")?;
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("Unit is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("{name}: unknown unit {unit}"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => return Err(format!("metric {name} has no numeric member: {other:?}")),
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn deployments_and_verdicts_reach_cloudwatch_as_embedded_metric_format_lines() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = testkit::standin::TodoStandIn::start(app.aws.clone()).await;
    let config = testkit::estate::local_config(&standin.url());
    let deploy = start_function("deploy", &app.aws, &config, &[]).await;
    let verify = start_function("verify", &app.aws, &config, &[]).await;
    // Each verdict's event delivered twice: the duplicate counts nothing again.
    good_then_broken_backend(&app.aws, &standin, &deploy, &verify, 2).await;
    let lines = [deploy.logs(), verify.logs()].concat();
    let docs: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert!(!docs.is_empty(), "no EMF line among {} log lines", lines.len());
    let mut totals: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    for doc in &docs {
        check_emf(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let d = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "pushdeploy");
        // Per service, and across services (an empty dimension set) for the template's alarms.
        let per_service = d["Dimensions"] == json!([["Service"]]);
        assert!(per_service || d["Dimensions"] == json!([[]]), "{doc}");
        if !per_service {
            continue;
        }
        assert_eq!(doc["Service"], "backend");
        for m in d["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            let values: Vec<f64> = match &doc[name] {
                Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
                v => vec![v.as_f64().unwrap()],
            };
            let unit = m["Unit"].as_str().unwrap_or("None");
            assert_eq!(unit, if name.ends_with("Seconds") { "Seconds" } else { "Count" }, "{name}");
            let t = totals.entry(name.to_string()).or_default();
            t.0 += values.iter().sum::<f64>();
            t.1 += values.len();
        }
    }
    let count = |name: &str| totals.get(name).map_or(0.0, |t| t.0);
    assert_eq!(count("Deployments"), 2.0, "{totals:?}");
    assert_eq!(count("Verified"), 1.0, "{totals:?}");
    assert_eq!(count("RolledBack"), 1.0, "{totals:?}");
    assert_eq!(count("Failed") + count("RollbackFailed"), 0.0, "{totals:?}");
    assert_eq!(totals.get("LeadTimeSeconds").map(|t| t.1), Some(1), "one verified push: {totals:?}");
    assert_eq!(totals.get("SmokeSeconds").map(|t| t.1), Some(2), "two smoke tests: {totals:?}");
    deploy.stop().await;
    verify.stop().await;
}

#[tokio::test]
async fn the_verify_binary_answers_ecs_lifecycle_hooks_in_the_shape_ecs_reads() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = testkit::standin::TodoStandIn::start(app.aws.clone()).await;
    let config = testkit::estate::blue_green_config(&standin.url(), &standin.test_url(), 5, 2);
    let deploy = start_function("deploy", &app.aws, &config, &[]).await;
    let verify = start_function("verify", &app.aws, &config, &[]).await;
    let digest = app.aws.push_image("todo-backend", "latest", "backend-hook").await;
    let started = deploy.invoke(&ecr_push_event("evt-h", "todo-backend", "latest", &digest)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let (deployment, revision) = app.aws.newest_service_deployment(CLUSTER, "todo-backend").await;
    // ECS is at the stage it calls the hook for.
    emu.guard.ecs.set_service_deployment(&deployment, "IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
    let call = |execution_id, hook_details| testkit::estate::HookCall {
        execution_id,
        stage: "POST_TEST_TRAFFIC_SHIFT",
        service: "todo-backend",
        deployment: &deployment,
        revision: &revision,
        production: None,
        hook_details,
    };

    let first = verify.invoke(&testkit::estate::hook_invocation(&call("exec-1", None))).await.expect("answered");
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["callBackDelay", "hookDetails", "hookStatus"], "only what ECS reads: {first}");
    assert_eq!((first["hookStatus"].as_str(), first["callBackDelay"].as_u64()), (Some("IN_PROGRESS"), Some(1)));
    let second = verify
        .invoke(&testkit::estate::hook_invocation(&call("exec-2", Some(first["hookDetails"].clone()))))
        .await
        .expect("answered");
    assert_eq!(second["hookStatus"], "SUCCEEDED", "{second}");
    assert!(second.get("callBackDelay").is_none());

    let garbage = verify.invoke(&json!({"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT"})).await.expect("answered");
    assert_eq!(garbage["hookStatus"], "FAILED", "{garbage}");
    verify.stop().await;

    // A verify that cannot start (its config is invalid) keeps blue: FAILED, not an event summary.
    let broken = start_function("verify", &app.aws, "[[service]]\nname = 1\n", &[]).await;
    let answer = broken.invoke(&testkit::estate::hook_invocation(&call("exec-3", None))).await.expect("answered");
    assert_eq!(answer["hookStatus"], "FAILED", "{answer}");
    assert!(answer["hookDetails"]["pushdeploy"]["reason"].as_str().unwrap().contains("pushdeploy cannot start"));
    broken.stop().await;

    // A config that cannot be read (not there yet): the hook asks ECS to call again, it does not fail.
    app.aws.s3.delete_object().bucket(BUCKET).key("pushdeploy.toml").send().await.expect("delete the config");
    let unread = start_process("verify", &app.aws, &[]).await;
    let answer = unread.invoke(&testkit::estate::hook_invocation(&call("exec-4", None))).await.expect("answered");
    assert_eq!(
        (answer["hookStatus"].as_str(), answer["callBackDelay"].as_u64()),
        (Some("IN_PROGRESS"), Some(30)),
        "{answer}"
    );
    // ... counted against the stuck budget in the service deployment's index object, with the
    // budget the config gave while it could be read (timeout_minutes = 10: 5 minutes).
    assert_eq!(answer["hookDetails"]["pushdeploy"]["stuck"]["invocations"], 1, "{answer}");
    let index_key = format!("hooks/{CLUSTER}/todo-backend/{}.json", deployment.rsplit('/').next().unwrap());
    let read_index = || async {
        let got = app.aws.s3.get_object().bucket(BUCKET).key(&index_key).send().await.expect("the index");
        serde_json::from_slice::<Value>(&got.body.collect().await.unwrap().into_bytes()).unwrap()
    };
    let mut index = read_index().await;
    assert_eq!((index["stuck"]["invocations"].as_u64(), index["stuck_budget_ms"].as_u64()), (Some(1), Some(300_000)));
    // A config that stays unreadable for the whole budget fails the hook before ECS's timeout acts.
    let now = pushdeploy::domain::timing::now_ms();
    index["stuck"]["since_ms"] = json!(now - 300_000);
    index["stuck"]["last_ms"] = json!(now - 30_000);
    app.aws.put_json(BUCKET, &index_key, &index).await;
    let answer = unread.invoke(&testkit::estate::hook_invocation(&call("exec-5", None))).await.expect("answered");
    assert_eq!(answer["hookStatus"], "FAILED", "{answer}");
    let why = answer["hookDetails"]["pushdeploy"]["reason"].as_str().unwrap();
    assert!(why.contains("(last: the config cannot be read: ") && why.contains("budget of 300 s"), "{why}");
    let ecs_deployment_id = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap();
    let rec = crate::support::record_of(&app.aws, "todo-backend", ecs_deployment_id).await;
    assert_eq!((rec["status"].as_str(), rec["reason"].as_str()), (Some("rolled_back"), Some(why)), "{rec}");
    unread.stop().await;
    deploy.stop().await;
}
