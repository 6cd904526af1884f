//! Pure: the notification a person reads in a chat client, with the record below it.

use crate::record::{epoch_seconds, DeploymentRecord, Status};
use crate::taskdef::short_name;

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

fn verdict(record: &DeploymentRecord) -> &'static str {
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
    let why = record.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let first =
        format!("{} ({}/{}) {image}: {}{duration}{why}", record.name, record.cluster, record.service, verdict(record));
    let subject: String = format!("pushdeploy {}: {} {image}", verdict(record), record.name)
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(99)
        .collect();
    let mut body = first;
    body.push_str(&format!(
        "\n\ntask definition: {} -> {}\ndeployment: {}\n",
        short_name(&record.previous_task_definition),
        short_name(&record.task_definition),
        record.ecs_deployment_id
    ));
    if let Some(to) = record.rolled_back_to.as_ref().filter(|_| record.status == Status::RolledBack) {
        body.push_str(&format!("rolled back to: {}\n", short_name(to)));
    }
    if record.rolled_back_by.as_deref() == Some("ecs") {
        body.push_str("rolled back by: ECS, on the lifecycle hook's FAILED (blue kept serving)\n");
    }
    for check in &record.hook_checks {
        body.push_str(&format!("hook check {}\n", check.summary()));
    }
    body.push_str("\nrecord:\n");
    body.push_str(&serde_json::to_string_pretty(record).expect("records always serialize"));
    Message {
        subject,
        body,
        attributes: vec![
            ("status", record.status.as_str().to_string()),
            ("service", record.name.clone()),
            ("cluster", record.cluster.clone()),
        ],
    }
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
    let subject: String = format!("pushdeploy ACTION NEEDED: {} cannot {}", p.service, p.doing)
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(99)
        .collect();
    let mut body = format!("pushdeploy cannot {} ({}): {}; {}", p.doing, p.service, p.error, p.consequence);
    body.push_str(&format!("\n\nfunction: {}\n", p.function));
    if let Some(t) = p.target {
        body.push_str(&format!("service: {t}\n"));
    }
    let mut attributes = vec![("status", "error".to_string()), ("service", p.service.to_string())];
    if let Some(cluster) = p.target.and_then(|t| t.split_once('/')).map(|(c, _)| c.to_string()) {
        attributes.push(("cluster", cluster));
    }
    Message { subject, body, attributes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TimelineEntry;
    use crate::rollback::tests::record;

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
}
