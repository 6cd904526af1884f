//! Smoke-test credentials: a credential header's value lives in SSM Parameter Store (a
//! SecureString), never in pushdeploy.toml; verify reads it when a smoke test runs, sends it, and
//! writes it nowhere. Its role may read exactly the parameters (and customer keys) the template
//! names, and a credential written in the config or bound for http:// is refused with its key.

use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::estate::{ecs_deployment_event, local_config, Aws, BUCKET};
use testkit::guard::GuardedCall;
use testkit::iam::{smoke_secret_key_arn, Policies, Role};
use testkit::standin::{Behaviour, Listener};

use crate::support::TODO_CONFIG;
use crate::verify::Loop;

/// Where the operator stored the API's token.
const PARAMETER: &str = "/pushdeploy/todo/api-token";
/// The token itself: it must reach the app and nothing else.
const TOKEN: &str = "t0k3n-5ecret-8d2e41";

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// The todo app's config with the backend's check and probe sending `Authorization` from SSM.
fn with_credentials(app: &str) -> String {
    let header = format!("headers = {{ Authorization = {{ ssm = \"{PARAMETER}\" }} }}\n");
    local_config(app)
        .replacen(
            "[[service.smoke.check]]\npath = \"todoItems\"\n",
            &format!("[[service.smoke.check]]\npath = \"todoItems\"\n{header}"),
            1,
        )
        .replacen("id_pointer = \"/id\"\n", &format!("id_pointer = \"/id\"\n{header}"), 1)
}

/// The estate with the token stored as an operator would (under the customer key the template's
/// `SmokeSecretKeyArns` names) and an API that answers only requests carrying it.
async fn world() -> Loop {
    let l = Loop::with_config(with_credentials).await;
    l.aws().put_secure_string(PARAMETER, &bearer(), Some(&smoke_secret_key_arn())).await;
    l.standin.require_api_authorization(&bearer());
    l
}

/// The text of every version of every object in the artifact bucket.
async fn everything_in_the_bucket(aws: &Aws) -> Vec<(String, String)> {
    let versions = aws.s3.list_object_versions().bucket(BUCKET).send().await.expect("list versions");
    let mut out = Vec::new();
    for v in versions.versions() {
        let (key, id) = (v.key().unwrap_or_default(), v.version_id().unwrap_or_default());
        let got = aws.s3.get_object().bucket(BUCKET).key(key).version_id(id).send().await.expect("get version");
        let bytes = got.body.collect().await.expect("body").into_bytes();
        out.push((format!("{key}@{id}"), String::from_utf8_lossy(&bytes).into_owned()));
    }
    out
}

fn verify_calls(all: &[GuardedCall], operation: &str) -> Vec<GuardedCall> {
    all.iter().filter(|c| c.role == Role::Verify && c.operation == operation).cloned().collect()
}

fn sid(statement: &Value) -> &str {
    statement["Sid"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_check_sends_the_token_read_from_ssm_and_no_record_answer_notification_or_debug_holds_it() {
    let mut l = world().await;
    let config = with_credentials(&l.standin.url());
    assert!(!config.contains(TOKEN), "the config names the parameter, not the token");

    let dep = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    let answer = l.completed("todo-backend", &dep).await;

    assert_eq!(answer["outcome"], "verified", "{answer}");
    // The API saw the token on every request: the checks' rounds and the probe's write, reads
    // and clean-up.
    let api: Vec<_> = l.standin.served().into_iter().filter(|s| s.path.starts_with("/api/")).collect();
    assert!(api.len() >= 2 + 8, "two rounds and the probe: {api:#?}");
    for s in &api {
        assert_eq!(s.authorization.as_deref(), Some(bearer().as_str()), "{} {}", s.method, s.path);
        assert!((200..300).contains(&s.status), "{s:?}");
        assert_eq!(s.listener, Listener::Production);
    }
    let rec = l.record("todo-backend", &dep).await;
    assert_eq!(rec["status"], "verified");
    assert_eq!(rec["smoke"]["secret_headers"], serde_json::json!([format!("Authorization (from ssm:{PARAMETER})")]));
    assert_eq!(rec["smoke"]["read_after_write"]["cleaned_up"], true);

    // The token is in no object of the bucket (records, leases, artifacts, every version), not
    // in verify's answer, not in a notification, not in the verifier's Debug (its cache holds it).
    for (object, text) in everything_in_the_bucket(l.aws()).await {
        assert!(!text.contains(TOKEN), "{object} holds the token");
    }
    assert!(!answer.to_string().contains(TOKEN));
    let notes = l.sink.notifications();
    assert_eq!(notes.len(), 1);
    assert!(notes.iter().all(|n| !n.to_string().contains(TOKEN)), "{notes:?}");
    assert!(notes[0]["Message"].as_str().unwrap().contains("Authorization (from ssm:/pushdeploy/todo/api-token)"));
    assert!(!format!("{:?}", l.verifier).contains(TOKEN), "the verifier's Debug shows the token");

    // Read once for the whole smoke test, not per request, by verify's role under its statements:
    // ssm:GetParameter on the parameter, and kms:Decrypt on the customer key through SSM.
    let seen = l.emu.guard.calls();
    let reads = verify_calls(&seen, "ssm:GetParameter");
    assert_eq!(reads.len(), 1, "{reads:#?}");
    let checks = &reads[0].checks;
    assert_eq!(checks[0].0.resource, "arn:aws:ssm:ap-southeast-2:123456789012:parameter/pushdeploy/todo/api-token");
    assert_eq!(checks[0].1.allowed_by, ["ReadSmokeTestCredentials"]);
    assert_eq!((checks[1].0.action.as_str(), checks[1].0.resource.clone()), ("kms:Decrypt", smoke_secret_key_arn()));
    assert_eq!(checks[1].0.context["kms:ViaService"], "ssm.ap-southeast-2.amazonaws.com");
    assert_eq!(checks[1].1.allowed_by, ["DecryptSmokeTestCredentialsThroughSsm"]);
    assert!(l.emu.guard.denied().is_empty(), "{:#?}", l.emu.guard.denied());
    assert!(verify_calls(&seen, "ssm:GetParameter").iter().all(|c| c.allowed));
    assert!(seen.iter().all(|c| c.role == Role::Verify || !c.operation.starts_with("ssm:")), "deploy reads no secret");
}

#[tokio::test]
async fn without_its_statements_verify_cannot_read_the_token_checks_nothing_and_a_person_is_told() {
    let mut l = world().await;
    let dep = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    let event = ecs_deployment_event("ecs-denied", "todo-backend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let deadline = || Instant::now() + Duration::from_secs(60);

    l.emu.guard.set_policies(Policies::template().without(Role::Verify, |s| sid(s) == "ReadSmokeTestCredentials"));
    let err = l.verifier.handle(event.clone(), deadline()).await.unwrap_err();

    let said = err.to_string();
    assert!(said.starts_with(&format!("SSM GetParameter for ssm:{PARAMETER} failed: AccessDeniedException")), "{said}");
    assert!(said.contains("SmokeSecretParameterArns"), "what to check: {said}");
    assert_eq!(err.error_type(), "Permanent.AccessDenied");
    let denied = l.emu.guard.denied();
    assert_eq!(denied.iter().map(|c| c.operation.as_str()).collect::<Vec<_>>(), ["ssm:GetParameter"]);
    assert!(l.standin.served().iter().all(|s| !s.path.starts_with("/api/")), "nothing is checked without it");
    let rec = l.record("todo-backend", &dep).await;
    assert_eq!(rec["status"], "started", "neither verified nor rolled back: a person must fix IAM");
    assert!(rec["reason"].as_str().unwrap().contains("AccessDeniedException"), "{rec}");
    let notes = l.sink.notifications();
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["Message"].as_str().unwrap().contains("SSM GetParameter"), "{}", notes[0]);

    // With GetParameter but not the customer key, SSM cannot decrypt the SecureString for verify.
    let no_key = Policies::template().without(Role::Verify, |s| sid(s) == "DecryptSmokeTestCredentialsThroughSsm");
    l.emu.guard.set_policies(no_key);
    let err = l.verifier.handle(event.clone(), deadline()).await.unwrap_err();
    assert!(err.to_string().contains("kms:Decrypt"), "{err}");
    let refused = l.emu.guard.denied().pop().expect("a denied call");
    let key = refused.checks.iter().find(|(c, _)| c.action == "kms:Decrypt").expect("the key was asked");
    assert!(!key.1.allowed && key.0.context["kms:ViaService"] == "ssm.ap-southeast-2.amazonaws.com");

    // Once the statements are back, the event Lambda retries (or the redrive) verifies.
    l.emu.guard.set_policies(Policies::template().clone());
    let answer = serde_json::to_value(l.verifier.handle(event, deadline()).await.unwrap()).unwrap();
    assert_eq!(answer["outcome"], "verified", "{answer}");
    for (object, text) in everything_in_the_bucket(l.aws()).await {
        assert!(!text.contains(TOKEN), "{object} holds the token");
    }
    assert!(l.sink.notifications().iter().all(|n| !n.to_string().contains(TOKEN)));
}

#[tokio::test]
async fn a_string_parameter_is_refused_as_no_better_than_the_config() {
    let mut l = Loop::with_config(with_credentials).await;
    l.aws().put_string_parameter(PARAMETER, &bearer()).await;
    let dep = l.push("todo-backend", "backend-good", Behaviour::Good).await;
    let event = ecs_deployment_event("ecs-string", "todo-backend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");

    let err = l.verifier.handle(event, Instant::now() + Duration::from_secs(60)).await.unwrap_err();

    let said = err.to_string();
    assert!(said.contains("the parameter is a String, not a SecureString"), "{said}");
    assert!(!said.contains(TOKEN));
    assert!(l.sink.notifications().iter().all(|n| !n.to_string().contains(TOKEN)));
}

/// `pushdeploy validate`, as an operator runs it before an upload: exit code and output.
fn validate(config: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("pushdeploy-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pushdeploy.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(testkit::runtime::cli_binary())
        .arg("validate")
        .arg(&path)
        .arg("--offline")
        .output()
        .expect("run pushdeploy validate");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_credential_written_in_the_config_or_bound_for_http_is_refused_with_its_key() {
    let check = "[[service.smoke.check]]\npath = \"todoItems\"\n";
    let with_header = |config: &str, value: &str| {
        config.replacen(check, &format!("{check}headers = {{ Authorization = {value} }}\n"), 1)
    };
    // The example's smoke URLs are https:// (the users' host name, connect_to the ALB); the same
    // config over http:// is what a credential must never be sent through.
    assert!(TODO_CONFIG.contains("url = \"https://") && !TODO_CONFIG.contains("url = \"http://"));
    let https = TODO_CONFIG.to_string();
    let http = TODO_CONFIG.replace("url = \"https://", "url = \"http://");
    let reference = format!("{{ ssm = \"{PARAMETER}\" }}");

    let (code, out) = validate(&with_header(&https, &reference));
    assert_eq!(code, Some(0), "a reference over https://: {out}");

    let (code, out) = validate(&with_header(&https, &format!("\"{}\"", bearer())));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("service[1].smoke.check[0].headers.Authorization"), "{out}");
    assert!(out.contains("Authorization = { ssm = \"/pushdeploy/<service>/<name>\" }"), "the fix: {out}");
    assert!(!out.contains(TOKEN), "the value is not quoted back: {out}");

    // Over http:// a credential would cross the network in clear text.
    let (code, out) = validate(&with_header(&http, &reference));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("service[1].smoke.url") && out.contains("HTTPS listener"), "{out}");

    // A header that carries no credential may be written in the config and sent over http://,
    // as the blue/green test listener's header is.
    let (code, out) = validate(&with_header(&http, "\"x\"").replace("Authorization", "x-pushdeploy-test"));
    assert_eq!(code, Some(0), "{out}");
}
