//! Showing: one line per message before anything runs, the one question for the whole list and
//! the operator's answer.

use std::io::{BufRead, Write};

use pushdeploy::domain::text::printable;
use serde_json::Value;

use super::clip;
use super::parked::{read, Parked};
use super::plan::Plan;
use super::stack::{FunctionId, Target};
use crate::queue::Message;
use crate::render::ago;

/// What the message's event is, for a person: `ECR Image Action 5b1e… todo-backend:v1.4.2`,
/// `ECS Deployment State Change ddca… SERVICE_DEPLOYMENT_COMPLETED todo-frontend`, `manual deploy
/// backend evil`, `lifecycle hook POST_TEST_TRAFFIC_SHIFT`, or the start of whatever it is.
fn what(payload: &Value) -> String {
    let s = |v: &Value| v.as_str().map(|s| clip(s, 80)).unwrap_or_default();
    if let Some(action) = payload.get("action") {
        let parts = [s(action), s(&payload["service"]), s(&payload["tag"])];
        return format!("manual {}", parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join(" "));
    }
    if pushdeploy::inbound::hook::is_hook_payload(payload) {
        return format!("lifecycle hook {}", s(&payload["lifecycleStage"]));
    }
    if let Some(kind) = payload.get("detail-type") {
        let d = &payload["detail"];
        let about = match (d["repository-name"].as_str(), d["eventName"].as_str()) {
            (Some(_), _) => format!("{}:{}", s(&d["repository-name"]), s(&d["image-tag"])),
            (None, Some(_)) => {
                let service = payload["resources"][0].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or("");
                format!("{} {}", s(&d["eventName"]), clip(service, 80))
            }
            _ => String::new(),
        };
        return format!("{} {} {about}", s(kind), s(&payload["id"])).trim_end().to_string();
    }
    clip(&payload.to_string(), 60)
}

/// One line for one message, before anything runs: its number, what will happen, the function
/// it goes (or was parked for), the event, its age, why it failed and, when skipped, why. Every
/// piece of it was written by whoever sent the message, so no character in it acts on the terminal.
pub fn line(n: usize, message: &Message, plan: &Plan, stack_names: (&str, &str), now: f64) -> String {
    let parked = read(message);
    let function = match (plan, &parked) {
        (Plan::Replay { function: Target::Deploy, .. }, _) => stack_names.0.to_string(),
        (Plan::Replay { function: Target::Verify, .. }, _) => stack_names.1.to_string(),
        (Plan::Skip(_), Ok(p)) => p
            .named()
            .map(|arn| FunctionId::from_arn(arn).map_or_else(|| clip(arn, 60), |f| f.name))
            .unwrap_or_else(|| "?".into()),
        (Plan::Skip(_), Err(_)) => "?".into(),
    };
    let (event, failure) = match &parked {
        Ok(p) => (what(p.payload()), p.failure().to_string()),
        // Not one of the two kinds, but perhaps JSON (a bare manual action): say what it is.
        Err(_) => match serde_json::from_str::<Value>(&message.body) {
            Ok(body) => (what(&body), "unknown".into()),
            Err(_) => (clip(&message.body, 60), "unknown".into()),
        },
    };
    let age = match &parked {
        Ok(p) => age(p, message, now),
        Err(_) => message.sent_at.map_or_else(|| "age unknown".into(), |t| format!("parked {}", ago(now - t))),
    };
    let failure = clip(&failure, 160);
    let text = match plan {
        Plan::Replay { .. } => format!("{n:>3}. replay  {function}  {event}, {age}; failed: {failure}"),
        Plan::Skip(why) => format!("{n:>3}. skip    {function}  {event}, {age}; failed: {failure} — skipped: {why}"),
    };
    printable(&text).into_owned()
}

/// `event 3m ago` from the event's own time, else when the record was written or SQS took it.
fn age(parked: &Parked, message: &Message, now: f64) -> String {
    let event_time = parked.payload()["time"].as_str().and_then(pushdeploy::domain::record::epoch_seconds);
    if let Some(t) = event_time {
        return format!("event {}", ago(now - t));
    }
    let record_time = match parked {
        Parked::Record { at: Some(at), .. } => pushdeploy::domain::record::epoch_seconds(at),
        _ => None,
    };
    match record_time.or(message.sent_at) {
        Some(t) => format!("parked {}", ago(now - t)),
        None => "age unknown".into(),
    }
}

/// The question asked before anything runs (once for the whole list), or `None` when there is
/// nothing to do.
pub fn question(replays: usize, deletes: usize) -> Option<String> {
    match (replays, deletes) {
        (0, 0) => None,
        (r, 0) => Some(format!("Replay the {r} event(s) marked replay? [y/N] ")),
        (0, d) => Some(format!("Delete the {d} skipped message(s) without replaying them? [y/N] ")),
        (r, d) => Some(format!("Replay the {r} event(s) marked replay and delete the {d} skipped message(s)? [y/N] ")),
    }
}

/// `y` or `yes`, in any case; anything else (an empty line too) is no.
pub fn confirmed(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Asks `question` on the terminal; no answer (end of input) is no.
pub(super) fn ask(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && confirmed(&answer)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::plan::plan;
    use super::*;
    use serde_json::json;

    #[test]
    fn each_message_shows_as_one_line_with_function_event_age_and_why_it_failed() {
        let now = pushdeploy::domain::record::epoch_seconds("2026-11-24T09:42:00Z").unwrap();
        let names = ("pushdeploy-deploy", "pushdeploy-verify");
        let m = record(&format!("{DEPLOY}:$LATEST"), push());
        let text = line(1, &m, &plan(&m, &stack()), names, now);
        assert_eq!(
            text,
            "  1. replay  pushdeploy-deploy  ECR Image Action 5b1e4a2c-9d0f-4c6e-8a7b-0e5566167483 todo-backend:v1.4.2, event 12m ago; failed: RetriesExhausted after 3 attempts (Permanent.AccessDenied: ecs:UpdateService denied)"
        );
        let m = dead_letter(Some(ECS_RULE), VERIFY, ecs());
        let text = line(2, &m, &plan(&m, &stack()), names, now);
        assert!(text.starts_with("  2. replay  pushdeploy-verify  ECS Deployment State Change ddca6449-b258-46c0-8653-e0e3a0000001 SERVICE_DEPLOYMENT_COMPLETED todo-frontend, event 8m ago; failed: SDK_CLIENT_ERROR: Rate exceeded (after 10 retries)"), "{text}");
        let m = record(DEPLOY, json!({"action": "deploy", "service": "backend", "tag": "evil"}));
        let text = line(3, &m, &plan(&m, &stack()), names, now);
        assert!(
            text.starts_with(
                "  3. skip    pushdeploy-deploy  manual deploy backend evil, parked 11m ago; failed: RetriesExhausted"
            ) && text.contains("— skipped: a manual action (deploy)"),
            "{text}"
        );
        let bare = Message { body: r#"{"action":"rollback","service":"backend"}"#.into(), ..Message::default() };
        let text = line(5, &bare, &plan(&bare, &stack()), names, now);
        assert!(
            text.starts_with(
                "  5. skip    ?  manual rollback backend, age unknown; failed: unknown — skipped: neither"
            ),
            "{text}"
        );
        let m = Message { body: "\u{1b}[2Jgarbage".into(), sent_at: Some(now - 30.0), ..Message::default() };
        let text = line(4, &m, &plan(&m, &stack()), names, now);
        assert!(
            text.starts_with(
                "  4. skip    ?  \u{FFFD}[2Jgarbage, parked 30s ago; failed: unknown — skipped: the body is not JSON"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_hostile_message_prints_one_line_and_no_control_character() {
        let mut event = push();
        event["id"] = json!("e\u{1b}]0;owned\u{7}\r\n  2. replay  pushdeploy-deploy  forged");
        event["detail"]["image-tag"] = json!("v1\u{202E}gpj.exe");
        let mut m = record(&format!("{DEPLOY}:$LATEST"), event);
        let mut body: Value = serde_json::from_str(&m.body).unwrap();
        body["responsePayload"]["errorMessage"] = json!("denied\u{9b}31m\nFAKE LINE");
        m.body = body.to_string();
        let p = plan(&m, &stack());
        assert!(matches!(p, Plan::Skip(_)), "the parser refuses that event id");
        let text = line(1, &m, &p, ("pushdeploy-deploy", "pushdeploy-verify"), 0.0);
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.chars().any(pushdeploy::domain::text::is_unsafe), "{text:?}");
        let rogue = dead_letter(Some("rule/\u{1b}[2J"), "arn:aws:lambda:r:123456789012:function:x\u{85}y", push());
        let text = line(2, &rogue, &plan(&rogue, &stack()), ("d", "v"), 0.0);
        assert!(text.lines().count() == 1 && !text.chars().any(pushdeploy::domain::text::is_unsafe), "{text:?}");
    }

    #[test]
    fn one_question_for_the_list_and_only_yes_means_yes() {
        assert_eq!(question(0, 0), None);
        assert_eq!(question(2, 0).unwrap(), "Replay the 2 event(s) marked replay? [y/N] ");
        assert!(question(0, 3).unwrap().starts_with("Delete the 3 skipped message(s)"));
        assert!(question(1, 1).unwrap().contains("and delete the 1 skipped"));
        for yes in ["y\n", "Y", " yes ", "YES\r\n"] {
            assert!(confirmed(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "y es", "sure"] {
            assert!(!confirmed(no), "{no:?}");
        }
    }
}
