//! A pause that stays paused, played through the operator's `pushdeploy` command and the built
//! `deploy` binary: `pause --all` survives the function's restart (a stack update leaves the
//! template's DeploymentsEnabled and the function's environment as they were), every push and
//! manual action is answered `paused` with who and why and changes nothing in ECS, the topic
//! hears of the skipped push, `status` shows the pause, and after `resume --all` a push deploys.

use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::iam::Role;
use testkit::standin::{SnsSink, TodoStandIn};

use crate::function::start_function;
use crate::support::Snapshot;

const BACKEND: &str = "todo-backend";
/// Who moto's STS says the operator's command runs as.
const OPERATOR: &str = "arn:aws:sts::123456789012:user/moto";

/// Runs `pushdeploy ARGS` as an operator (the harness's own key, which the guard leaves
/// unchecked) on the deployed config; its exit status and everything it printed.
async fn pushdeploy(aws: &Aws, args: &[&str]) -> (i32, String) {
    let mut env = aws.function_env(Role::Deploy);
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut command = std::process::Command::new(testkit::runtime::cli_binary());
    command
        .args(args)
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("PUSHDEPLOY_BUCKET", BUCKET)
        .env("PUSHDEPLOY_CONFIG", format!("s3://{BUCKET}/pushdeploy.toml"))
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn reason(answer: &Value) -> &str {
    answer["deployments"][0]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn pause_all_survives_a_restart_answers_every_push_paused_and_resume_lets_the_next_push_deploy() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let aws = &app.aws;
    let standin = TodoStandIn::start(aws.clone()).await;
    let sink = SnsSink::start(aws, "pushdeploy-verdicts").await;
    let config = local_config(&standin.url());
    let env = [("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str())];
    let deploy = start_function("deploy", aws, &config, &env).await;

    let (code, out) = pushdeploy(aws, &["pause", "--all", "--reason", "incident 42: database failover"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("every service: paused by {OPERATOR} since 20")), "{out}");
    assert!(out.contains(": incident 42: database failover\n"), "{out}");
    assert!(out.contains("pushdeploy.toml.pauses/all.json; `pushdeploy resume --all` ends it"), "{out}");
    // A second pause of every service keeps the first, and says whose it is.
    let (code, out) = pushdeploy(aws, &["pause", "--all", "--reason", "someone else"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already paused by") && out.contains("incident 42"), "{out}");

    // The stack is updated: the function starts again with the same environment (the template's
    // DeploymentsEnabled still "true", its ECR rule enabled) and the config uploaded again.
    deploy.stop().await;
    let deploy = start_function("deploy", aws, &config, &env).await;
    let before = aws.service_task_definition(CLUSTER, BACKEND).await;
    let snapshot = Snapshot::take(aws).await;
    let digest = aws.push_image(BACKEND, "latest", "backend-paused").await;
    let answer = deploy.invoke(&ecr_push_event("evt-paused", BACKEND, "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "paused", "{answer}");
    let why = reason(&answer);
    assert!(why.starts_with(&format!("every service paused by {OPERATOR} since 20")), "{why}");
    assert!(why.contains("incident 42: database failover") && why.contains("not replayed"), "{why}");
    assert!(why.contains("`pushdeploy deploy backend latest`"), "{why}");
    assert_eq!(aws.service_task_definition(CLUSTER, BACKEND).await, before, "ECS runs what it ran");
    assert_eq!(Snapshot::take(aws).await, snapshot, "no revision, deployment or object changed");
    let told = sink.notifications();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["Subject"], "pushdeploy PAUSED: skipped a push to backend");
    assert!(told[0]["Message"].as_str().unwrap().contains("incident 42"), "{:?}", told[0]);

    // Every manual action is paused too; a plan says a deploy would be.
    for (action, outcome) in [("deploy", "paused"), ("redeploy", "paused"), ("rollback", "paused"), ("plan", "planned")]
    {
        let mut event = json!({"action": action, "service": "backend"});
        if matches!(action, "deploy" | "plan") {
            event["tag"] = json!("latest");
        }
        let answer = deploy.invoke(&event).await.unwrap();
        assert_eq!(answer["outcome"], outcome, "{action}: {answer}");
        assert!(reason(&answer).contains("incident 42") && reason(&answer).contains(OPERATOR), "{answer}");
    }
    assert_eq!(aws.service_task_definition(CLUSTER, BACKEND).await, before);

    let (code, out) = pushdeploy(aws, &["status"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("every service: paused by {OPERATOR} since 20")), "{out}");
    assert!(out.contains("incident 42: database failover"), "{out}");

    // Resuming one service leaves it under the pause of every service, and says so.
    let (code, out) = pushdeploy(aws, &["resume", "backend"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("backend: was not paused\nbackend: still paused by the pause of every service: paused by"),
        "{out}"
    );
    let (code, out) = pushdeploy(aws, &["resume", "--all"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("every service: resumed by {OPERATOR} (it was paused by {OPERATOR} since")), "{out}");
    let (_, out) = pushdeploy(aws, &["status"]).await;
    assert!(!out.contains("paused by"), "{out}");

    // Nothing paused touched a service's lease.
    let leases: Vec<_> = emu
        .guard
        .calls()
        .into_iter()
        .filter(|c| c.role == Role::Deploy && c.checks.iter().any(|(k, _)| k.resource.contains("/leases/")))
        .collect();
    assert!(leases.is_empty(), "{leases:#?}");
    // The paused push was not replayed; pushing again deploys.
    assert_eq!(aws.service_task_definition(CLUSTER, BACKEND).await, before);
    let answer = deploy.invoke(&ecr_push_event("evt-resumed", BACKEND, "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let now = aws.service_task_definition(CLUSTER, BACKEND).await;
    assert!(aws.images_of(&now).await.iter().any(|(_, image)| image.ends_with(digest.as_str())), "{now}");
    deploy.stop().await;
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
    // One List of the pauses per event, allowed by the key-scoped statement; no GET of a missing pause.
    let pause_calls: Vec<_> = emu
        .guard
        .calls()
        .into_iter()
        .filter(|c| {
            c.role == Role::Deploy
                && c.checks
                    .iter()
                    .any(|(k, _)| k.resource.contains(".pauses/") || k.context.values().any(|v| v.contains(".pauses/")))
        })
        .collect();
    assert!(pause_calls.iter().all(|c| c.allowed && !c.missing_key_denied), "{pause_calls:#?}");
    let lists = pause_calls.iter().filter(|c| c.operation == "s3:ListObjectsV2").count();
    assert_eq!(lists, 6, "the two pushes and four manual actions: {pause_calls:#?}");
}

#[tokio::test]
async fn a_service_s_own_pause_holds_only_that_service_and_names_who_paused_it() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let aws = &app.aws;
    let standin = TodoStandIn::start(aws.clone()).await;
    let deploy = start_function("deploy", aws, &local_config(&standin.url()), &[]).await;

    let (code, out) = pushdeploy(aws, &["pause", "backnd", "--reason", "typo"]).await;
    assert_eq!(code, 2, "an unknown service is refused: {out}");
    assert!(out.contains("no service \"backnd\""), "{out}");
    let (code, out) = pushdeploy(aws, &["pause", "backend", "--reason", "load test until 16:00"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("backend: paused by {OPERATOR} since 20")), "{out}");

    let before = aws.service_task_definition(CLUSTER, BACKEND).await;
    let digest = aws.push_image(BACKEND, "latest", "backend-own-pause").await;
    let answer = deploy.invoke(&ecr_push_event("evt-own", BACKEND, "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "paused", "{answer}");
    assert!(
        reason(&answer).contains("load test until 16:00") && reason(&answer).contains("`pushdeploy resume backend`")
    );
    assert_eq!(aws.service_task_definition(CLUSTER, BACKEND).await, before);
    // The frontend is not paused.
    let front = aws.push_image("todo-frontend", "latest", "frontend-own-pause").await;
    let answer = deploy.invoke(&ecr_push_event("evt-front", "todo-frontend", "latest", &front)).await.unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");

    let (code, out) = pushdeploy(aws, &["resume", "backend"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(it was paused by") && out.contains("load test until 16:00"), "{out}");
    let answer = deploy.invoke(&ecr_push_event("evt-own-again", BACKEND, "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    deploy.stop().await;
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
}
