//! `deploy`, `redeploy`, `rollback` and `plan`: the manual events, sent to the deploy function
//! with Lambda Invoke, and its answer printed for a person; and `redrive`'s asynchronous replays.

use std::time::Duration;

use pushdeploy::domain::text::printable;
use serde_json::{json, Value};

use crate::insight::Failed;

/// A manual action; `force` (where there is one) goes past a rollback of the digest.
pub enum Action<'a> {
    /// Deploy `tag` of the service's repository.
    Deploy(&'a str, &'a str, Force),
    /// New tasks of the digest the service runs.
    Redeploy(&'a str, Force),
    /// Back to the last verified deployment before the current one, or to what `--to` names.
    Rollback(&'a str, RollbackAsked<'a>),
    /// What deploy would do, changing nothing.
    Plan(&'a str, Option<&'a str>, Force),
}

/// `rollback`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollbackAsked<'a> {
    /// `--to`: a revision or digest ECS's history shows the service ran.
    pub to: Option<&'a str>,
    /// `--force`: past pushdeploy's rollback of the target's digest.
    pub force: Force,
    /// `--dry-run`: the choice, nothing changed.
    pub dry_run: bool,
    /// Who asks (`--requested-by`, else $USER).
    pub by: Option<&'a str>,
}

/// `--force`: deploy a digest pushdeploy rolled back all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Force(pub bool);

impl Action<'_> {
    /// The event the deploy function takes (the book, "Manual actions"); `"force": true` only when
    /// forced, so an ordinary action is the documented event as it always was.
    pub fn event(&self) -> Value {
        let (mut event, force) = match self {
            Action::Deploy(service, tag, force) => {
                (json!({"action": "deploy", "service": service, "tag": tag}), *force)
            }
            Action::Redeploy(service, force) => (json!({"action": "redeploy", "service": service}), *force),
            Action::Rollback(service, asked) => {
                let mut event = json!({"action": "rollback", "service": service});
                if let Some(to) = asked.to {
                    event["to"] = json!(to);
                }
                if asked.dry_run {
                    event["dry_run"] = json!(true);
                }
                if let Some(by) = asked.by {
                    event["requested_by"] = json!(by);
                }
                (event, asked.force)
            }
            Action::Plan(service, Some(tag), force) => {
                (json!({"action": "plan", "service": service, "tag": tag}), *force)
            }
            Action::Plan(service, None, force) => (json!({"action": "plan", "service": service}), *force),
        };
        if force.0 {
            event["force"] = json!(true);
        }
        event
    }
}

/// What the function answered.
pub enum Answer {
    /// Its summary (`{"outcome", "reason", "deployments"}`).
    Summary(Value),
    /// The invocation failed: Lambda's errorType and message.
    Failed(String, String),
}

/// Invokes `function` synchronously with `action`'s event.
pub async fn invoke(function: &str, action: &Action<'_>) -> Result<Answer, Failed> {
    invoke_payload(function, &action.event()).await
}

/// Invokes `function` synchronously with `payload`: its answer, or its error document.
pub async fn invoke_payload(function: &str, payload: &Value) -> Result<Answer, Failed> {
    // One attempt (a retried manual deploy is the operator's call), and as long as the function may run.
    let policy = pushdeploy::aws::AwsPolicy {
        max_attempts: 1,
        attempt_timeout: Duration::from_secs(120),
        operation_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let sdk = policy.loader().load().await;
    let client = aws_sdk_lambda::Client::new(&sdk);
    let payload = serde_json::to_vec(payload).expect("events serialize");
    let out = client
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_lambda::error::ProvideErrorMetadata;
            let detail = e.as_service_error().and_then(|s| s.message().map(str::to_string)).unwrap_or_else(|| e.to_string());
            Failed(format!("Lambda Invoke of {function} failed: {detail}. Check: the function's name (--function, --verify-function: the stack's DeployFunctionName, VerifyFunctionName outputs) and lambda:InvokeFunction on it"))
        })?;
    let body: Value = out
        .payload()
        .map(|p| {
            serde_json::from_slice(p.as_ref())
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(p.as_ref()).into_owned()))
        })
        .unwrap_or(Value::Null);
    if out.function_error().is_some() {
        let kind = body["errorType"].as_str().unwrap_or("Unhandled").to_string();
        let message = body["errorMessage"].as_str().map_or_else(|| body.to_string(), str::to_string);
        return Ok(Answer::Failed(kind, message));
    }
    Ok(Answer::Summary(body))
}

/// Lambda, for `redrive`: parked events sent back to a function.
pub struct Lambda {
    client: aws_sdk_lambda::Client,
}

impl Lambda {
    /// A client with the SDK config's credentials, region and endpoint.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_lambda::Client::new(sdk) }
    }

    /// Invokes `function` asynchronously with `payload`, as EventBridge and Lambda's own retries
    /// did (InvocationType Event: the function's retries and failure destination apply again).
    /// Ok once Lambda has queued it, which it answers with 202.
    pub async fn send_event(&self, function: &str, payload: &Value) -> Result<(), Failed> {
        let body = serde_json::to_vec(payload).expect("events serialize");
        let out = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(body))
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_lambda::error::ProvideErrorMetadata;
                let detail = e
                    .as_service_error()
                    .and_then(|s| s.message().map(str::to_string))
                    .unwrap_or_else(|| aws_sdk_lambda::error::DisplayErrorContext(&e).to_string());
                Failed(format!("Lambda Invoke (Event) of {function} failed: {detail}. Check: the function's name (--function, --verify-function: the stack's DeployFunctionName and VerifyFunctionName outputs) and lambda:InvokeFunction on it"))
            })?;
        match out.status_code() {
            202 => Ok(()),
            other => Err(Failed(format!(
                "Lambda answered {other} instead of 202 (queued) to the asynchronous Invoke of {function}: it did not take the event"
            ))),
        }
    }
}

/// The answer for a person, and whether the action was carried out (or had nothing to do). The
/// answer quotes ECS, tags and task definitions an ordinary role can write: every piece of it
/// goes through [`printable`], so each line printed is one of ours.
pub fn describe(answer: &Answer) -> (String, bool) {
    let p = |v: &Value, default: &str| printable(v.as_str().unwrap_or(default)).into_owned();
    match answer {
        Answer::Failed(kind, message) => (format!("failed ({}): {}\n", printable(kind), printable(message)), false),
        Answer::Summary(s) => {
            let outcome = s["outcome"].as_str().unwrap_or("?");
            let mut out = String::new();
            let deployments = s["deployments"].as_array().cloned().unwrap_or_default();
            if deployments.is_empty() {
                out.push_str(&format!("{}: {}\n", printable(outcome), p(&s["reason"], "")));
            }
            for d in &deployments {
                out.push_str(&describe_deployment(d));
            }
            let done = matches!(outcome, "started" | "rolled_back" | "planned" | "unchanged");
            (out, done)
        }
    }
}

/// The revisions ECS's history shows the service ran, one line each, newest first.
fn candidates(out: &mut String, listed: &Value) {
    let Some(listed) = listed.as_array().filter(|l| !l.is_empty()) else { return };
    out.push_str("  revisions the service ran, newest first (pick one with --to):\n");
    for c in listed {
        let td = c["task_definition"].as_str().unwrap_or("?");
        let short = td.rsplit('/').next().unwrap_or(td);
        let digests: Vec<String> = c["digests"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, d)| format!("{name}={}", d.as_str().unwrap_or("?")))
            .collect();
        let digests = if digests.is_empty() { "digests unknown".to_string() } else { digests.join(" ") };
        let note = c["note"].as_str().map(|n| format!("  [{n}]")).unwrap_or_default();
        let line = format!("    {short}  {}  {digests}{note}", c["at"].as_str().unwrap_or("(time unknown)"));
        out.push_str(&printable(&line));
        out.push('\n');
    }
}

/// One service's lines of an answer.
fn describe_deployment(d: &Value) -> String {
    let p = |v: &Value, default: &str| printable(v.as_str().unwrap_or(default)).into_owned();
    let mut out = String::new();
    out.push_str(&format!(
        "{} ({}): {} — {}\n",
        p(&d["service"], "?"),
        p(&d["target"], "?"),
        p(&d["outcome"], "?"),
        p(&d["reason"], "")
    ));
    if let Some(image) = d["image"].as_str() {
        out.push_str(&format!("  image: {}\n", printable(image)));
    }
    if let Some(rollout) = d["ecs_rollout"].as_str() {
        out.push_str(&format!("  {}\n", printable(rollout)));
    }
    for warning in d["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  warning: {}\n", p(warning, "")));
    }
    // The revision copied, when it is not the one the service runs (base = "family").
    if let Some(base) = d["base"].as_str().filter(|b| d["previous_task_definition"].as_str() != Some(*b)) {
        out.push_str(&format!("  base: {}\n", printable(base)));
    }
    for passed in d["passed_over"].as_array().into_iter().flatten() {
        let by = passed["registered_by"].as_str().map(|b| format!(" (registered by {})", printable(b)));
        out.push_str(&format!(
            "  passed over: {}{}: {}\n",
            p(&passed["task_definition"], "?"),
            by.unwrap_or_default(),
            p(&passed["reason"], "")
        ));
    }
    for line in d["diff"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", p(line, "")));
    }
    candidates(&mut out, &d["candidates"]);
    if let Some(id) = d["ecs_deployment_id"].as_str() {
        let id = printable(id);
        out.push_str(&format!("  ECS deployment: {id} (pushdeploy show {})\n", id.replacen('/', "-", 1)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_is_the_documented_manual_event() {
        let no = Force(false);
        assert_eq!(
            Action::Deploy("backend", "v1.4.2", no).event(),
            json!({"action": "deploy", "service": "backend", "tag": "v1.4.2"})
        );
        assert_eq!(Action::Redeploy("frontend", no).event(), json!({"action": "redeploy", "service": "frontend"}));
        assert_eq!(
            Action::Rollback("backend", RollbackAsked::default()).event(),
            json!({"action": "rollback", "service": "backend"})
        );
        let to = RollbackAsked { to: Some("todo-backend:3"), force: Force(true), dry_run: true, by: Some("alice") };
        assert_eq!(
            Action::Rollback("backend", to).event(),
            json!({"action": "rollback", "service": "backend", "to": "todo-backend:3", "force": true, "dry_run": true, "requested_by": "alice"})
        );
        assert_eq!(Action::Plan("backend", None, no).event(), json!({"action": "plan", "service": "backend"}));
        assert_eq!(
            Action::Deploy("backend", "latest", Force(true)).event(),
            json!({"action": "deploy", "service": "backend", "tag": "latest", "force": true})
        );
        assert_eq!(
            Action::Redeploy("backend", Force(true)).event(),
            json!({"action": "redeploy", "service": "backend", "force": true})
        );
        for event in [
            Action::Deploy("b", "t", no).event(),
            Action::Plan("b", Some("t"), no).event(),
            Action::Rollback("b", RollbackAsked::default()).event(),
            Action::Rollback("b", to).event(),
            Action::Deploy("b", "t", Force(true)).event(),
            Action::Redeploy("b", Force(true)).event(),
            Action::Plan("b", None, Force(true)).event(),
        ] {
            assert!(matches!(pushdeploy::inbound::parse(event), Ok(pushdeploy::inbound::Trigger::Manual(_))));
        }
    }

    #[test]
    fn answers_read_as_sentences_and_say_whether_it_was_done() {
        let started = json!({"outcome": "started", "reason": "", "deployments": [{"service": "backend", "target": "c/s",
            "outcome": "started", "reason": "todo-backend:3 → todo-backend:4 (register-task-definition)", "ecs_deployment_id": "ecs-svc/12"}]});
        let (text, done) = describe(&Answer::Summary(started));
        assert!(
            done && text.contains("backend (c/s): started — todo-backend:3 → todo-backend:4")
                && text.contains("pushdeploy show ecs-svc-12"),
            "{text}"
        );
        let (text, done) =
            describe(&Answer::Summary(json!({"outcome": "rejected", "reason": "unknown service", "deployments": []})));
        assert!(!done && text == "rejected: unknown service\n");
        let (text, done) = describe(&Answer::Failed("Transient.LeaseBusy".into(), "busy".into()));
        assert!(!done && text.contains("Transient.LeaseBusy"));
    }

    #[test]
    fn a_refused_rollback_lists_the_revisions_the_service_ran_one_line_each() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let refused = json!({"outcome": "rejected", "reason": "", "deployments": [{"service": "backend", "target": "c/s",
            "outcome": "rejected", "reason": "rollback of backend: none", "candidates": [
                {"task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:3", "digests": {"backend": d},
                 "at": "2026-12-07T21:02:11Z", "note": "runs now"},
                {"task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:2\u{1b}[2J", "digests": {}}]}]});
        let (text, done) = describe(&Answer::Summary(refused));
        assert!(!done);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  revisions the service ran, newest first (pick one with --to):");
        assert_eq!(lines[2], format!("    todo-backend:3  2026-12-07T21:02:11Z  backend={d}  [runs now]"));
        assert_eq!(lines[3], "    todo-backend:2\u{FFFD}[2J  (time unknown)  digests unknown");
        assert_eq!(lines.len(), 4, "{text}");
    }

    #[test]
    fn an_answer_quoting_hostile_text_prints_no_control_character() {
        let hostile = json!({"outcome": "started", "reason": "", "deployments": [{"service": "backend\u{1b}[2J",
            "target": "c/s", "outcome": "started", "reason": "ok\r\nbackend (c/s): verified — \u{202E}",
            "image": "r:v1\u{9b}0m", "diff": ["backend.environment.X: \"a\" → \"\u{1b}]0;t\u{7}\""],
            "ecs_deployment_id": "ecs-svc/1\u{7f}"}]});
        let (text, _) = describe(&Answer::Summary(hostile.clone()));
        assert!(!text.chars().any(|c| c != '\n' && pushdeploy::domain::text::is_unsafe(c)), "{text:?}");
        assert_eq!(text.lines().count(), 4, "one line per piece, none forged: {text}");
        // A session name is chosen by whoever assumed the role; ECS reports it as registrant.
        let mut passed = hostile;
        passed["deployments"][0]["passed_over"] = json!([{"task_definition": "arn:aws:ecs:r:1:task-definition/b:5",
            "registered_by": "arn:aws:sts::1:assumed-role/dev/x\r\nbackend: verified", "reason": "not trusted"}]);
        let (text, _) = describe(&Answer::Summary(passed));
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("  passed over: arn:aws:ecs:r:1:task-definition/b:5 (registered by arn:aws:sts::1:assumed-role/dev/x\u{FFFD}\u{FFFD}backend: verified): not trusted\n"), "{text}");
        let (text, _) = describe(&Answer::Failed("E\u{1b}[2J".into(), "m\r".into()));
        assert_eq!(text, "failed (E\u{FFFD}[2J): m\u{FFFD}\n");
    }
}
