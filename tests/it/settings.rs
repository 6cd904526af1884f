//! One truth for settings, through the binaries: `pushdeploy validate` checks a config against
//! the limits the functions are deployed with (read from Lambda, here the test-side stand-in that
//! answers from each function process's own settings) and agrees with the deployed functions;
//! `plan` and `validate` say when a running task definition names a role the stack does not pass.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, ACCOUNT, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::lambda::LambdaService;
use testkit::runtime::FunctionProcess;
use testkit::standin::TodoStandIn;

use crate::function::start_function;

/// Runs `pushdeploy ARGS` as the operator, Lambda answered at `lambda`; (exit code, stdout, stderr).
pub(crate) async fn pushdeploy(
    aws: &Aws,
    lambda: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (i32, String, String) {
    let mut env = aws.function_env(testkit::iam::Role::Deploy);
    // The operator's own credentials (the guard checks only the functions' roles).
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut command = std::process::Command::new(testkit::runtime::cli_binary());
    command
        .args(args)
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_ENDPOINT_URL_LAMBDA", lambda)
        .env("PUSHDEPLOY_BUCKET", BUCKET)
        .envs(extra.iter().copied())
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The frontend alone from the local config, its smoke test's timeout_ms set: 5 attempts ×
/// (100 ms + timeout_ms) at worst.
fn frontend_with(app: &str, timeout_ms: u64) -> String {
    let all = local_config(app);
    let backend = all.find("[[service]]\nname = \"backend\"").expect("the backend entry");
    let frontend = all[..backend].replace("timeout_ms = 2000", &format!("timeout_ms = {timeout_ms}"));
    assert!(frontend.contains(&format!("timeout_ms = {timeout_ms}")));
    frontend
}

/// The config error's own words in `text`: from `service[0].smoke` to the end of its line.
fn smoke_error(text: &str) -> String {
    let at = text.find("service[0].smoke").unwrap_or_else(|| panic!("no smoke error in {text}"));
    text[at..].lines().next().unwrap().to_string()
}

/// A stack whose verify is deployed with a 30 s timeout (10 s for a smoke test), as the template
/// sets both functions' environment; both functions served by name, as the stack names them.
async fn stack(aws: &Aws, config: &str) -> (Arc<FunctionProcess>, Arc<FunctionProcess>, LambdaService) {
    let env = [
        ("PUSHDEPLOY_CLUSTERS", CLUSTER),
        ("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "30"),
        ("PUSHDEPLOY_VERIFY_MEMORY_MB", "128"),
        ("PUSHDEPLOY_VERIFY_IN_VPC", "false"),
        ("PUSHDEPLOY_CONFIG_RECHECK_SECONDS", "0"),
    ];
    let deploy = Arc::new(start_function("deploy", aws, config, &env).await);
    let verify = Arc::new(start_function("verify", aws, config, &env).await);
    deploy.host.set_timeout(Duration::from_secs(30));
    verify.host.set_timeout(Duration::from_secs(30));
    let functions =
        [("pushdeploy-deploy".to_string(), deploy.clone()), ("pushdeploy-verify".to_string(), verify.clone())];
    let lambda = LambdaService::start(functions.into_iter().collect()).await;
    (deploy, verify, lambda)
}

#[tokio::test]
async fn validate_and_the_deployed_functions_agree_on_a_config_near_verify_s_timeout() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    // 5 × (100 + 1880) = 9,900 ms fits in the 10,000 ms verify's 30 s leaves; 5 × 2,100 does not.
    let (under, over) = (frontend_with(&standin.url(), 1880), frontend_with(&standin.url(), 2000));
    let (deploy, verify, lambda) = stack(&app.aws, &under).await;
    let dir = std::env::temp_dir().join(format!("pushdeploy-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (under_file, over_file) = (dir.join("under.toml"), dir.join("over.toml"));
    std::fs::write(&under_file, &under).unwrap();
    std::fs::write(&over_file, &over).unwrap();
    let validate = |file: &std::path::Path, args: &[&str]| {
        let mut all = vec!["validate", file.to_str().unwrap()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.into_iter().map(String::from).collect();
        let (aws, endpoint) = (app.aws.clone(), lambda.endpoint.clone());
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            pushdeploy(&aws, &endpoint, &all, &[]).await
        }
    };

    // Just under: validate accepts it, naming where each limit came from, and so do the functions.
    let (code, out, err) = validate(&under_file, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("checked against: verify timeout 30 s (pushdeploy-verify's Timeout), verify memory 128 MB (pushdeploy-verify's MemorySize), clusters todo-cluster (pushdeploy-deploy's PUSHDEPLOY_CLUSTERS), verify outside the VPC (pushdeploy-verify's VpcConfig)"),
        "{out}"
    );
    assert!(out.contains("valid, 1 service(s)") && out.contains("worst case 10 s"), "{out}");
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-settings-1").await;
    let started = deploy.invoke(&ecr_push_event("evt-under", "todo-frontend", "latest", &digest)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let completed = ecs_deployment_event("ecs-under", "todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    assert_eq!(verify.invoke(&completed).await.unwrap()["outcome"], "verified");

    // Just over: refused by validate and by both functions, in the same words.
    let (code, out, err) = validate(&over_file, &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    let local = smoke_error(&err);
    assert!(local.contains("10500 ms does not fit in the 10000 ms the verify function has"), "{local}");
    // Functions that start with it refuse it (a warm one keeps its last good config and says so
    // once: the book, "Upgrading and downgrading").
    let (deploy, verify, _cold) = stack(&app.aws, &over).await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-settings-2").await;
    let refused = deploy.invoke(&ecr_push_event("evt-over", "todo-frontend", "latest", &digest)).await.unwrap();
    assert_eq!(refused["outcome"], "rejected", "{refused}");
    assert_eq!(smoke_error(refused["reason"].as_str().unwrap()), local, "deploy's reason: {refused}");
    let failed = verify.invoke(&completed).await.expect_err("verify cannot judge it");
    assert_eq!(failed["errorType"], "Permanent.Config", "{failed}");
    assert!(failed["errorMessage"].as_str().unwrap().contains(&local), "verify's reason: {failed}");

    // The old assumption (the template's default 300 s) passed it; the deployed 30 s does not.
    let (code, out, _) = validate(&over_file, &["--offline"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("offline: checked against the flags and the template's defaults"), "{out}");
    assert!(out.contains("verify timeout 300 s (the template's default VerifyTimeoutSeconds)"), "{out}");
    // A flag still overrides, and says so.
    let (code, out, _) = validate(&over_file, &["--verify-timeout", "31"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verify timeout 31 s (--verify-timeout)"), "{out}");

    // verify cannot be read (a wrong name): said on one line; what deploy is told still holds.
    let (aws, endpoint) = (app.aws.clone(), lambda.endpoint.clone());
    let file = over_file.to_str().unwrap();
    let (code, out, err) =
        pushdeploy(&aws, &endpoint, &["validate", file], &[("PUSHDEPLOY_VERIFY_FUNCTION", "no-such-verify")]).await;
    assert_eq!(code, 1, "{out}{err}");
    let warning: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: cannot read")).collect();
    assert_eq!(warning.len(), 1, "{out}");
    assert!(warning[0].contains("no-such-verify") && warning[0].contains("ResourceNotFoundException"), "{out}");
    assert!(out.contains("verify timeout 30 s (pushdeploy-deploy's PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS)"), "{out}");
    // No Lambda at all (nothing listens): said, and the template's defaults stand in.
    let (code, out, _) = pushdeploy(&aws, "http://127.0.0.1:9", &["validate", file], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: cannot read the deployed functions' settings"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn plan_and_validate_name_a_task_role_the_stack_does_not_pass() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let role = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role/{name}");
    // The stack was deployed before Terraform gave the frontend its task role: only the backend's.
    let (task, execution) =
        (role("todo-backend-task"), format!("{},{}", role("todo-frontend-execution"), role("todo-backend-execution")));
    let env = [("PUSHDEPLOY_TASK_ROLE_ARNS", task.as_str()), ("PUSHDEPLOY_EXECUTION_ROLE_ARNS", execution.as_str())];
    let config = local_config("http://127.0.0.1:1/");
    let deploy = Arc::new(start_function("deploy", &app.aws, &config, &env).await);
    let lambda = LambdaService::start([("pushdeploy-deploy".to_string(), deploy.clone())].into_iter().collect()).await;
    app.aws.push_image("todo-frontend", "latest", "frontend-pass-role").await;
    app.aws.push_image("todo-backend", "latest", "backend-pass-role").await;
    let before = crate::support::Snapshot::take(&app.aws).await;
    let warning = format!(
        "warning: task role {} is not in the stack's TaskRoleArns: RegisterTaskDefinition will be refused; update the stack with it",
        role("todo-frontend-task")
    );

    // The deploy function's plan answer carries it; the CLI prints it.
    let answer = deploy.invoke(&serde_json::json!({"action": "plan", "service": "frontend"})).await.unwrap();
    assert_eq!(answer["outcome"], "planned", "{answer}");
    let warnings: Vec<&Value> = answer["deployments"][0]["warnings"].as_array().unwrap().iter().collect();
    assert_eq!(warnings, [&Value::String(warning["warning: ".len()..].to_string())], "{answer}");
    let (code, out, err) = pushdeploy(&app.aws, &lambda.endpoint, &["plan", "frontend"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().any(|l| l.trim() == warning), "{out}");
    let (_, out, _) = pushdeploy(&app.aws, &lambda.endpoint, &["plan", "backend"], &[]).await;
    assert!(out.contains("planned") && !out.contains("warning: task role"), "both backend roles are passed: {out}");
    assert_eq!(crate::support::Snapshot::take(&app.aws).await, before, "a plan changes nothing");

    // validate reads the estate with the stack: the same warning, under the frontend.
    let file = std::env::temp_dir().join(format!("pushdeploy-pass-role-{}.toml", std::process::id()));
    std::fs::write(&file, &config).unwrap();
    let (code, out, err) =
        pushdeploy(&app.aws, &lambda.endpoint, &["validate", file.to_str().unwrap(), "--verify-timeout", "300"], &[])
            .await;
    assert_eq!(code, 0, "valid, with a warning: {out}{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).filter(|l| l.starts_with("warning: task role")).collect();
    assert_eq!(lines, [warning.as_str()], "{out}");
    let _ = std::fs::remove_file(&file);
}

/// The last column's text of a `history` table (the reason), its wrapped lines joined: each row
/// line's characters from where the header's `reason` starts.
fn reason_column(table: &str) -> String {
    let lines: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
    let header = lines.iter().position(|l| l.iter().collect::<String>().contains("reason")).expect("a header");
    let text: String = lines[header].iter().collect();
    let at = text[..text.find("reason").unwrap()].chars().count();
    let cells: Vec<String> = lines[header + 1..]
        .iter()
        .filter(|l| l.len() > at && l.first() == Some(&'│'))
        .map(|l| l[at..].iter().collect::<String>().trim_end().trim_end_matches('│').trim().to_string())
        .collect();
    cells.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn status_reads_the_live_config_where_deploy_reads_it_and_history_prints_each_reason_whole() {
    let mut l = crate::verify::Loop::new().await;
    let good = l.push("todo-backend", "backend-settings-good", testkit::standin::Behaviour::Good).await;
    assert_eq!(l.completed("todo-backend", &good).await["outcome"], "verified");
    let broken = l.push("todo-backend", "backend-settings-broken", testkit::standin::Behaviour::Broken).await;
    assert_eq!(l.completed("todo-backend", &broken).await["outcome"], "rolled_back");
    let aws = l.aws().clone();
    // The live config is where the deploy function's PUSHDEPLOY_CONFIG says; the template's default
    // key holds a stale one (the backend alone) that status must not show.
    let live = local_config(&l.standin.url());
    let stale = &live[live.find("[[service]]\nname = \"backend\"").unwrap()..];
    let stale = format!("[defaults]\ncluster = \"{CLUSTER}\"\n\n{stale}");
    let object = aws.s3.put_object().bucket(BUCKET).key("config/live.toml").body(live.as_bytes().to_vec().into());
    object.send().await.expect("upload the live config");
    let at = format!("s3://{BUCKET}/config/live.toml");
    // The guard renders the roles for the template's default config key; a stack with ConfigS3Uri
    // grants the deploy role that key instead. This deploy process only has to hold the setting
    // status reads, so it signs as the harness (unchecked) rather than as a role of another stack.
    let env = [("PUSHDEPLOY_CONFIG", at.as_str()), ("AWS_ACCESS_KEY_ID", "testing")];
    let deploy = Arc::new(start_function("deploy", &aws, &stale, &env).await);
    let lambda = LambdaService::start([("pushdeploy-deploy".to_string(), deploy.clone())].into_iter().collect()).await;
    let dir = std::env::temp_dir().join(format!("pushdeploy-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pushdeploy.toml");
    let path = file.to_str().unwrap().to_string();
    let status = |args: &'static [&'static str]| {
        let (aws, endpoint, path) = (aws.clone(), lambda.endpoint.clone(), path.clone());
        async move { pushdeploy(&aws, &endpoint, args, &[("PUSHDEPLOY_CONFIG", &path)]).await }
    };

    // The same config, written differently: it matches.
    std::fs::write(&file, format!("# my copy\n{live}")).unwrap();
    let (code, out, err) = status(&["status"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("live config: {at} (pushdeploy-deploy's PUSHDEPLOY_CONFIG); {path} matches it")),
        "{out}"
    );
    assert!(out.contains("todo-cluster/todo-frontend"), "the live config's services, not the stale key's: {out}");
    // A local edit not uploaded: one line names the services and keys.
    let backend = live.find("name = \"backend\"").unwrap();
    let edited = live[..backend].replacen("tags = [\"latest\"]", "tags = [\"latest\", \"stable\"]", 1)
        + &live[backend..].replacen("attempts = 5", "attempts = 3", 1);
    std::fs::write(&file, &edited).unwrap();
    let (code, out, err) = status(&["status"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let line = format!(
        "{path} differs from the live config {at} (pushdeploy-deploy's PUSHDEPLOY_CONFIG): frontend: tags; backend: smoke.attempts"
    );
    assert!(out.lines().any(|l| l == line), "{out}");
    let (_, out, err) = status(&["status", "--json"]).await;
    let rows: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(rows.as_array().unwrap().len(), 2, "{out}");
    assert!(err.lines().any(|l| l == line), "beside the JSON, on stderr: {err}");

    // history: the record id and the rollback's whole reason, wrapped; --wide on one line.
    let reason = l.record("todo-backend", &broken).await["reason"].as_str().unwrap().to_string();
    assert!(reason.chars().count() > 80, "a reason the old table cut: {reason}");
    let (code, table, err) = status(&["history", "backend"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(&pushdeploy::domain::record::record_id(&broken).unwrap()), "{table}");
    let flat = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(reason_column(&table).contains(&flat), "{table}");
    assert!(!table.contains('…'), "{table}");
    let (_, wide, _) = status(&["history", "backend", "--wide"]).await;
    assert_eq!(wide.lines().filter(|l| l.contains(reason.as_str())).count(), 1, "{wide}");
    let (_, json, _) = status(&["history", "backend", "--json"]).await;
    let records: Value = serde_json::from_str(&json).unwrap();
    assert!(records.as_array().unwrap().iter().any(|r| r["reason"] == reason.as_str()), "JSON as before: {json}");
    let _ = std::fs::remove_dir_all(&dir);
}
