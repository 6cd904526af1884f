//! Pure: the notification a person reads in a chat client, with the record below it.
//!
//! Every piece of text from outside (the record's names, tags and reasons, which quote ECS, a
//! smoke test's answers and whatever an ordinary role can put in a tag or an event) passes
//! through [`printable`] on its way in, so no control character, terminal escape or bidi override
//! reaches a reader; the record's JSON is escaped the same way, keeping its value.

use crate::domain::mode::Mode;
use crate::domain::names::short_name;
use crate::domain::record::{epoch_seconds, DeploymentRecord, Status};
use crate::domain::text::{json_printable, printable};

/// An SNS message: subject, body, string attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// ASCII, under 100 characters, no line breaks (SNS's rules for subjects).
    pub subject: String,
    /// The first line says it all; the full record follows as JSON.
    pub body: String,
    /// Filterable attributes: `status`, `service`, `cluster`.
    pub attributes: Vec<(&'static str, String)>,
}

/// The verdict as a person reads it: in observe mode it says so, and a failure says it kept serving.
fn verdict(record: &DeploymentRecord) -> String {
    let word = verdict_word(record);
    match record.mode {
        Mode::Observe if record.observed_failure() => format!("{word} (observe mode: not rolled back, still serving)"),
        Mode::Observe => format!("{word} (observe)"),
        Mode::Enforce => word.to_string(),
    }
}

fn verdict_word(record: &DeploymentRecord) -> &'static str {
    match record.status {
        Status::Verified => "verified",
        Status::RolledBack => "ROLLED BACK",
        Status::RollbackFailed => "ROLLBACK FAILED, act now",
        Status::Failed => "FAILED",
        Status::Completed if record.is_rollback() => "rollback completed",
        Status::Completed => "completed",
        Status::Started => "started",
    }
}

/// Builds the message for a record that just reached a verdict.
pub fn verdict_message(record: &DeploymentRecord) -> Message {
    let short = record.short_digest();
    let image = match (record.tag.is_empty(), short.is_empty()) {
        (false, false) => format!("{}@{short}", record.tag),
        (false, true) => record.tag.clone(),
        (true, _) => short.to_string(),
    };
    let duration = match (record.started_at(), record.timeline.last().and_then(|e| epoch_seconds(&e.at))) {
        (Some(a), Some(b)) if b - a >= 10.0 => format!(" in {:.0}s", b - a),
        (Some(a), Some(b)) if b >= a => format!(" in {:.1}s", b - a),
        _ => String::new(),
    };
    let why = record.reason.as_deref().map(|r| format!(": {}", printable(r))).unwrap_or_default();
    let first = format!(
        "{} ({}/{}) {}: {}{duration}{why}",
        printable(&record.name),
        printable(&record.cluster),
        printable(&record.service),
        printable(&image),
        verdict(record)
    );
    let subject = if record.observed_failure() {
        subject(&format!("pushdeploy observe, would roll back: {} {image}", record.name))
    } else {
        subject(&format!("pushdeploy {}: {} {image}", verdict(record), record.name))
    };
    let mut body = first;
    body.push_str(&details(record));
    body.push_str("\nrecord:\n");
    body.push_str(&json_printable(&serde_json::to_string_pretty(record).expect("records always serialize")));
    Message {
        subject,
        body,
        attributes: [
            ("status", record.status.as_str().to_string()),
            ("service", printable(&record.name).into_owned()),
            ("cluster", printable(&record.cluster).into_owned()),
        ]
        .into_iter()
        .chain(record.mode.is_observe().then(|| ("mode", record.mode.as_str().to_string())))
        .collect(),
    }
}

/// The lines under a verdict's first: the revisions, what a family copy changed, the rollback,
/// the hook's checks.
fn details(record: &DeploymentRecord) -> String {
    let mut body = format!(
        "\n\ntask definition: {} -> {}\ndeployment: {}\n",
        printable(short_name(&record.previous_task_definition)),
        printable(short_name(&record.task_definition)),
        printable(&record.ecs_deployment_id)
    );
    // base = "family": what was copied, what it changed besides the image, and what was not
    // copied: someone registering revisions of a production family outside Terraform shows here.
    if let Some(base) = &record.base {
        body.push_str(&format!("base: {}\n", printable(short_name(base))));
    }
    for change in &record.base_changes {
        body.push_str(&format!("base change: {}\n", printable(change)));
    }
    for p in &record.passed_over {
        body.push_str(&format!("passed over: {}\n", printable(&p.line())));
    }
    if let Some(to) = record.rolled_back_to.as_ref().filter(|_| record.status == Status::RolledBack) {
        body.push_str(&format!("rolled back to: {}\n", printable(short_name(to))));
    }
    if record.rolled_back_by.as_deref() == Some("ecs") {
        body.push_str("rolled back by: ECS, on the lifecycle hook's FAILED (blue kept serving)\n");
    }
    if record.mode == Mode::Observe {
        body.push_str(
            "mode: observe (verify records and tells its verdict; it never rolls back nor answers a hook FAILED)\n",
        );
    }
    for check in &record.hook_checks {
        body.push_str(&format!("hook check {}\n", printable(&check.summary())));
    }
    body
}

/// SNS's rules for a subject: ASCII, no control characters, under 100 characters.
pub(crate) fn subject(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(99).collect()
}

/// What a function could not do, for the person who must act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<'a> {
    /// The function: `deploy` or `verify`.
    pub function: &'a str,
    /// The service's config name, or the ECS target when the config does not name it.
    pub service: &'a str,
    /// `cluster/service`, when known.
    pub target: Option<&'a str>,
    /// What pushdeploy was doing, e.g. `deploy the push of todo-backend:latest`.
    pub doing: &'a str,
    /// The error, as it says what failed and what to check.
    pub error: &'a str,
    /// What this means for production, e.g. `nothing was deployed`.
    pub consequence: &'a str,
}

/// Builds the message for an error a person must act on (AccessDenied, a vanished service, a bad config).
pub fn problem_message(p: &Problem) -> Message {
    let subject = subject(&format!("pushdeploy ACTION NEEDED: {} cannot {}", p.service, p.doing));
    let mut body = format!(
        "pushdeploy cannot {} ({}): {}; {}",
        printable(p.doing),
        printable(p.service),
        printable(p.error),
        printable(p.consequence)
    );
    body.push_str(&format!("\n\nfunction: {}\n", printable(p.function)));
    if let Some(t) = p.target {
        body.push_str(&format!("service: {}\n", printable(t)));
    }
    let mut attributes = vec![("status", "error".to_string()), ("service", printable(p.service).into_owned())];
    if let Some(cluster) = p.target.and_then(|t| t.split_once('/')).map(|(c, _)| printable(c).into_owned()) {
        attributes.push(("cluster", cluster));
    }
    Message { subject, body, attributes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::TimelineEntry;
    use crate::rules::rollback::tests::record;

    #[test]
    fn first_line_and_subject_read_well() {
        let mut r = record(
            "ecs-svc-1",
            "arn:aws:ecs:r:1:task-definition/todo-backend:5",
            Status::RolledBack,
            "2026-11-24T09:30:00Z",
        );
        r.digest = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678".into();
        r.reason = Some("GET todoItems: status 500, expected 200".into());
        r.timeline.push(TimelineEntry { event: "rolled_back".into(), at: "2026-11-24T09:31:05Z".into() });
        let m = verdict_message(&r);
        assert_eq!(m.subject, "pushdeploy ROLLED BACK: backend latest@7f5b2640fe6f");
        let first = m.body.lines().next().unwrap();
        assert_eq!(
            first,
            "backend (c/s) latest@7f5b2640fe6f: ROLLED BACK in 65s: GET todoItems: status 500, expected 200"
        );
        let json_start = m.body.find("record:\n").unwrap() + "record:\n".len();
        let parsed: serde_json::Value = serde_json::from_str(&m.body[json_start..]).unwrap();
        assert_eq!(parsed["status"], "rolled_back");
        assert!(m.attributes.contains(&("status", "rolled_back".into())));
    }

    #[test]
    fn a_family_base_its_changes_and_what_was_passed_over_are_told() {
        let mut r = record(
            "ecs-svc-1",
            "arn:aws:ecs:r:1:task-definition/todo-backend:6",
            Status::Verified,
            "2026-11-24T09:30:00Z",
        );
        r.base = Some("arn:aws:ecs:r:1:task-definition/todo-backend:4".into());
        r.base_changes = vec!["backend.environment.TODO_ENV: \"prod\" → \"staging\"".into()];
        r.passed_over = vec![crate::domain::passed_over::PassedOver {
            task_definition: "arn:aws:ecs:r:1:task-definition/todo-backend:5".into(),
            registered_by: Some("arn:aws:sts::1:assumed-role/developer/mallory\u{1b}[2J".into()),
            reason: "its registrant is not in trusted_registrants".into(),
        }];
        let m = verdict_message(&r);
        let lines: Vec<&str> = m.body.lines().filter(|l| l.starts_with("base") || l.starts_with("passed")).collect();
        assert_eq!(
            lines,
            [
                "base: todo-backend:4",
                "base change: backend.environment.TODO_ENV: \"prod\" → \"staging\"",
                "passed over: todo-backend:5 (registered by arn:aws:sts::1:assumed-role/developer/mallory\u{FFFD}[2J): its registrant is not in trusted_registrants",
            ]
        );
    }

    #[test]
    fn text_from_outside_reaches_no_reader_as_a_control_character() {
        let mut r = record(
            "ecs-svc-1",
            "arn:aws:ecs:r:1:task-definition/todo-backend:5",
            Status::RolledBack,
            "2026-11-24T09:30:00Z",
        );
        // What a hostile build, event or tag could put there: a screen clear, a carriage return
        // that overwrites the line, a forged second line, a right-to-left override, a C1 CSI.
        r.reason = Some("\x1b[2Jall good\rverified\nbackend: verified \u{202E}kcab dellor\u{9b}0m".into());
        r.tag = "v1\x1b]0;pwned\x07".into();
        r.name = "back\u{202E}end".into();
        let m = verdict_message(&r);
        let unsafe_in = |s: &str| s.chars().filter(|&c| c != '\n' && crate::domain::text::is_unsafe(c)).count();
        assert_eq!(unsafe_in(&m.body), 0, "{:?}", m.body);
        assert_eq!(unsafe_in(&m.subject), 0);
        assert!(m.attributes.iter().all(|(_, v)| unsafe_in(v) == 0), "{:?}", m.attributes);
        let first = m.body.lines().next().unwrap();
        assert!(
            first.ends_with("verified\u{FFFD}backend: verified \u{FFFD}kcab dellor\u{FFFD}0m"),
            "one line: {first}"
        );
        let json_start = m.body.find("record:\n").unwrap() + "record:\n".len();
        let parsed: serde_json::Value = serde_json::from_str(&m.body[json_start..]).unwrap();
        assert_eq!(parsed["reason"], r.reason.clone().unwrap().as_str(), "the record's JSON keeps its value");

        let p = problem_message(&Problem {
            function: "verify",
            service: "backend\x1b[2J",
            target: Some("todo-cluster\r/todo-backend"),
            doing: "verify",
            error: "AccessDenied: \u{202E}\n forged",
            consequence: "nothing was deployed",
        });
        assert_eq!(unsafe_in(&p.body), 0, "{:?}", p.body);
        assert!(p.attributes.iter().all(|(_, v)| unsafe_in(v) == 0), "{:?}", p.attributes);
    }

    #[test]
    fn a_problem_says_what_could_not_be_done_and_what_it_means() {
        let m = problem_message(&Problem {
            function: "verify",
            service: "backend",
            target: Some("todo-cluster/todo-backend"),
            doing: "roll back",
            error: "S3 GetObject for s3://b/leases/todo-cluster/todo-backend.json failed: AccessDenied: Access Denied (HTTP 403)",
            consequence: "the broken revision is still serving",
        });
        assert_eq!(m.subject, "pushdeploy ACTION NEEDED: backend cannot roll back");
        assert!(
            m.body.starts_with("pushdeploy cannot roll back (backend): S3 GetObject for s3://b/leases/"),
            "{}",
            m.body
        );
        assert!(m.body.lines().next().unwrap().ends_with("; the broken revision is still serving"));
        assert!(m.attributes.contains(&("cluster", "todo-cluster".into())));
    }

    #[test]
    fn an_observed_failure_says_observe_and_would_roll_back_in_subject_and_body() {
        let mut r = record(
            "ecs-svc-1",
            "arn:aws:ecs:r:1:task-definition/todo-backend:5",
            Status::Failed,
            "2026-11-24T09:30:00Z",
        );
        r.digest = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678".into();
        r.mode = Mode::Observe;
        r.reason = Some("observe: would roll back: GET todoItems: status 500, expected 200".into());
        r.timeline.push(TimelineEntry { event: "would_roll_back".into(), at: "2026-11-24T09:31:05Z".into() });
        let m = verdict_message(&r);
        assert_eq!(m.subject, "pushdeploy observe, would roll back: backend latest@7f5b2640fe6f");
        assert_eq!(
            m.body.lines().next().unwrap(),
            "backend (c/s) latest@7f5b2640fe6f: FAILED (observe mode: not rolled back, still serving) in 65s: observe: would roll back: GET todoItems: status 500, expected 200"
        );
        assert!(m.body.contains("\nmode: observe (verify records and tells its verdict; it never rolls back"));
        assert!(
            m.attributes.contains(&("mode", "observe".into())) && m.attributes.contains(&("status", "failed".into()))
        );
        let json_start = m.body.find("record:\n").unwrap() + "record:\n".len();
        let parsed: serde_json::Value = serde_json::from_str(&m.body[json_start..]).unwrap();
        assert_eq!(parsed["mode"], "observe");
        // A deployment observe mode verified says observe too; enforce's messages are unchanged.
        r.status = Status::Verified;
        r.reason = None;
        r.timeline.pop();
        assert_eq!(verdict_message(&r).subject, "pushdeploy verified (observe): backend latest@7f5b2640fe6f");
        r.mode = Mode::Enforce;
        let m = verdict_message(&r);
        assert_eq!(m.subject, "pushdeploy verified: backend latest@7f5b2640fe6f");
        assert!(!m.body.contains("observe") && m.attributes.len() == 3);
    }
}
