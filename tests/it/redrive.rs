//! `pushdeploy redrive` as an operator runs it: the real binary against moto's SQS behind the IAM
//! guard, and a Lambda Invoke stand-in in front of the deploy function's own process. The queue
//! holds what the stack would park (a push from deploy's failure destination, a push from the
//! EcrPush rule's dead letters) and what an attacker with sqs:SendMessage would add.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, Aws, TodoApp, CLUSTER};
use testkit::guard::Emulator;
use testkit::lambda::LambdaService;

use crate::support::TODO_CONFIG;

const DEPLOY_ARN: &str = "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-deploy";
const PUSH_RULE: &str = "arn:aws:events:ap-southeast-2:123456789012:rule/pushdeploy-DeployFunctionEcrPush-1A2B3C4D";
const ECS_RULE: &str =
    "arn:aws:events:ap-southeast-2:123456789012:rule/pushdeploy-VerifyFunctionEcsDeployment-5E6F7A8B";

/// What Lambda's OnFailure destination writes to the queue when every attempt at an asynchronous
/// invocation of `function_arn` failed (Lambda's "Configuring destinations for asynchronous
/// invocation").
fn failure_record(function_arn: &str, payload: &Value, error_type: &str, message: &str) -> String {
    json!({
        "version": "1.0",
        "timestamp": pushdeploy::domain::record::now(),
        "requestContext": {
            "requestId": "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
            "functionArn": function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": message}
    })
    .to_string()
}

/// Runs `pushdeploy ARGS` as the operator, no terminal on stdin; (exit code, stdout, stderr).
async fn pushdeploy(aws: &Aws, lambda: &LambdaService, args: &[&str]) -> (i32, String, String) {
    let mut env = aws.function_env(testkit::iam::Role::Deploy);
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut command = std::process::Command::new(testkit::runtime::cli_binary());
    command
        .args(args)
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint)
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The digest of the app container a service runs.
async fn runs(aws: &Aws, service: &str) -> String {
    let td = aws.service_task_definition(CLUSTER, service).await;
    aws.images_of(&td).await[0].1.clone()
}

#[tokio::test]
async fn redrive_replays_what_deploy_parked_and_never_an_enqueued_manual_action() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let aws = &app.aws;
    let deploy = Arc::new(crate::function::start_function("deploy", aws, TODO_CONFIG, &[]).await);
    let lambda = LambdaService::start([("pushdeploy-deploy".to_string(), deploy)].into_iter().collect()).await;
    let queue = aws.sqs.create_queue().queue_name("pushdeploy-FailedInvocations-AbC").send().await.unwrap();
    let queue = queue.queue_url().unwrap().to_string();

    // Parked by the stack: a backend push whose every attempt failed (deploy's failure
    // destination), and a frontend push EventBridge could not deliver (the rule's dead letter).
    let backend = aws.push_image("todo-backend", "latest", "backend-parked").await;
    let backend_push = ecr_push_event("parked-backend", "todo-backend", "latest", &backend);
    let denied = "User: pushdeploy-DeployRole is not authorized to perform: ecs:UpdateService";
    aws.send_message(
        &queue,
        &failure_record(&format!("{DEPLOY_ARN}:$LATEST"), &backend_push, "Permanent.AccessDenied", denied),
        &[],
    )
    .await;
    let frontend = aws.push_image("todo-frontend", "latest", "frontend-parked").await;
    let frontend_push = ecr_push_event("parked-frontend", "todo-frontend", "latest", &frontend);
    let dead_letter = [
        ("RULE_ARN", PUSH_RULE),
        ("TARGET_ARN", DEPLOY_ARN),
        ("ERROR_CODE", "SDK_CLIENT_ERROR"),
        ("ERROR_MESSAGE", "Rate exceeded"),
    ];
    aws.send_message(&queue, &frontend_push.to_string(), &dead_letter).await;
    // Added by someone who may send to the queue: a manual deploy of a build nobody pushed
    // through the pipeline, dressed as deploy's own failure record.
    let evil = aws.push_image("todo-backend", "evil", "backend-evil").await;
    let forged = json!({"action": "deploy", "service": "backend", "tag": "evil"});
    aws.send_message(&queue, &failure_record(DEPLOY_ARN, &forged, "Transient.Throttled", "Rate exceeded"), &[]).await;
    let (backend_before, frontend_before) = (runs(aws, "todo-backend").await, runs(aws, "todo-frontend").await);

    // A dry run lists all three and touches nothing; the messages stay visible.
    let (code, out, err) = pushdeploy(aws, &lambda, &["redrive", "--queue-url", &queue, "--dry-run"]).await;
    assert_eq!(code, 1, "messages are left in the queue: {out}{err}");
    assert!(out.contains("3 message(s)") && out.contains("dry run: nothing replayed"), "{out}");
    assert!(lambda.invoked().is_empty(), "a dry run invokes nothing");
    assert_eq!(aws.visible_messages(&queue).await.len(), 3, "a dry run hides nothing");
    // Without a terminal to ask on and without --yes, nothing is read or run.
    let (code, out, err) = pushdeploy(aws, &lambda, &["redrive", "--queue-url", &queue]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("pass --yes") && out.is_empty(), "{err}");
    assert!(lambda.invoked().is_empty());

    let (code, out, err) = pushdeploy(
        aws,
        &lambda,
        &["redrive", "--queue-url", &queue, "--yes", "--rule-arn", PUSH_RULE, "--rule-arn", ECS_RULE],
    )
    .await;
    assert_eq!(code, 1, "the skipped message is left in the queue: {out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let at = |needle: &str| {
        lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?}:\n{out}"))
    };
    // Each message on a line of its own, before anything runs.
    let backend_line = at("replay  pushdeploy-deploy  ECR Image Action parked-backend todo-backend:latest");
    let frontend_line = at("replay  pushdeploy-deploy  ECR Image Action parked-frontend todo-frontend:latest");
    let forged_line = at("skip    pushdeploy-deploy  manual deploy backend evil");
    assert!(lines[backend_line].contains("RetriesExhausted after 3 attempts (Permanent.AccessDenied"), "{out}");
    assert!(lines[frontend_line].contains("failed: SDK_CLIENT_ERROR: Rate exceeded"), "{out}");
    assert!(lines[forged_line].contains("skipped: a manual action (deploy): never replayed"), "{out}");
    let first_replay = at("replayed to pushdeploy-deploy");
    assert!([backend_line, frontend_line, forged_line].iter().all(|l| *l < first_replay), "listed first:\n{out}");
    assert_eq!(lines.last().copied(), Some("replayed 2, skipped 1 (left in the queue), failed 0"), "{out}");

    // Lambda took exactly the two parked events, asynchronously, and deploy rolled them out.
    let invoked = lambda.settled(Duration::from_secs(60)).await;
    assert_eq!(invoked.len(), 2, "{invoked:#?}");
    assert!(invoked.iter().all(|i| i.function == "pushdeploy-deploy" && i.invocation_type == "Event"), "{invoked:#?}");
    for event in [&backend_push, &frontend_push] {
        let i = invoked.iter().find(|i| &i.payload == event).unwrap_or_else(|| panic!("{event} was replayed"));
        let answer = i.answer.clone().expect("answered").expect("deploy succeeded");
        assert_eq!(answer["outcome"], "started", "{answer}");
    }
    assert!(runs(aws, "todo-backend").await.ends_with(backend.as_str()), "the parked backend push now runs");
    assert!(runs(aws, "todo-frontend").await.ends_with(frontend.as_str()), "the parked frontend push now runs");
    assert_ne!(runs(aws, "todo-backend").await, backend_before);
    assert_ne!(runs(aws, "todo-frontend").await, frontend_before);
    // The manual action never reached deploy, and is still in the queue for a person to look at.
    assert!(invoked.iter().all(|i| i.payload.get("action").is_none()), "{invoked:#?}");
    assert!(!runs(aws, "todo-backend").await.ends_with(evil.as_str()), "the forged deploy never ran");
    let left = aws.visible_messages(&queue).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains(r#""action":"deploy""#) && left[0].contains(r#""tag":"evil""#), "{left:?}");

    // Asked to, redrive deletes what it skips, after showing it, and still never replays it.
    let (code, out, err) =
        pushdeploy(aws, &lambda, &["redrive", "--queue-url", &queue, "--yes", "--delete-skipped"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.find("skip    pushdeploy-deploy  manual deploy backend evil") < out.find("skipped and deleted"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("replayed 0, skipped 1 (deleted), failed 0"), "{out}");
    assert!(aws.visible_messages(&queue).await.is_empty());
    assert_eq!(lambda.invoked().len(), 2, "nothing more was invoked");
}
