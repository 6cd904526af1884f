//! Output for a person: tables, coloured in a terminal and plain when piped.
//!
//! Everything shown here was read from S3, ECS or a lease, where an ordinary role in the account
//! (or a build whose answers a smoke test recorded) could have put a terminal escape: each piece
//! of text goes through [`printable`] (or a [`cell`]) on its way in; the colours are our own.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use pushdeploy::config::Mode;
use pushdeploy::domain::image::ImageRef;
use pushdeploy::domain::names::short_name;
use pushdeploy::domain::record::DeploymentRecord;
use pushdeploy::domain::text::printable;
use pushdeploy::rules::report::{Keys, Report};

use crate::insight::{started, trigger_name, ServiceStatus};

/// The width `history` wraps its table to when stdout is no terminal.
const PIPED_WIDTH: u16 = 160;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY);
    if !std::io::stdout().is_terminal() {
        t.force_no_tty();
    }
    t.set_header(header.to_vec());
    t
}

/// A table cell showing `text` from outside, with no control character left in it.
fn cell(text: &str) -> Cell {
    Cell::new(printable(text))
}

/// A status as a cell: green verified, red failures, yellow in flight.
fn status_cell(status: &str) -> Cell {
    let colour = match status.split(' ').next().unwrap_or_default() {
        "verified" | "completed" => Color::Green,
        "failed" | "rolled_back" | "rollback_failed" => Color::Red,
        _ => Color::Yellow,
    };
    cell(status).fg(colour)
}

/// ` (observe)` after a service or a verdict in observe mode; nothing in enforce mode.
fn observed(mode: Mode) -> &'static str {
    match mode {
        Mode::Observe => " (observe)",
        Mode::Enforce => "",
    }
}

/// `3m`, `5h`, `2d` ago.
pub fn ago(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 90.0 {
        format!("{s:.0}s ago")
    } else if s < 90.0 * 60.0 {
        format!("{:.0}m ago", s / 60.0)
    } else if s < 36.0 * 3600.0 {
        format!("{:.0}h ago", s / 3600.0)
    } else {
        format!("{:.0}d ago", s / 86_400.0)
    }
}

/// A duration in seconds for a person: `42s`, `3m 05s`, `2h 10m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `tag@sha256:0123456789ab` from a record.
fn image(r: &DeploymentRecord) -> String {
    let digest = r.short_digest();
    match (r.tag.is_empty(), digest.is_empty()) {
        (false, false) => format!("{}@{digest}", r.tag),
        (false, true) => r.tag.clone(),
        (true, false) => format!("@{digest}"),
        (true, true) => short_name(&r.task_definition).to_string(),
    }
}

/// The `status` table.
pub fn status(services: &[ServiceStatus]) -> String {
    let mut t = table(&["service", "ECS service", "runs", "last deployment", "in flight"]);
    for s in services {
        let digest = match s.images.first().map(|i| ImageRef::parse(i)) {
            Some(Ok(ImageRef { digest: Some(d), .. })) => format!("@{}", d.short()),
            Some(Ok(ImageRef { tag: Some(t), .. })) => format!(":{t}"),
            _ => String::new(),
        };
        let runs = format!("{} {}{digest}", short_name(&s.task_definition), s.tag.as_deref().unwrap_or(""));
        let last = match &s.last {
            Some(l) => status_cell(&format!("{}{} {} ({})", l.status, observed(l.mode), ago(l.age_seconds), l.trigger)),
            None => Cell::new("none recorded"),
        };
        let flight = s.in_flight.as_deref().map_or(Cell::new("—"), |f| cell(f).fg(Color::Yellow));
        let name = format!("{}{}", s.name, observed(s.mode));
        t.add_row(vec![cell(&name), cell(&s.target), cell(&runs), last, flight]);
    }
    t.to_string()
}

/// The `history` table.
pub fn history(records: &[DeploymentRecord], wide: bool) -> String {
    let mut t = table(&["started", "id", "image", "trigger", "outcome", "lead time", "reason"]);
    if wide {
        t.set_content_arrangement(ContentArrangement::Disabled);
    } else {
        // Wrapped to the terminal, or to PIPED_WIDTH when there is none: every word of the reason stays.
        t.set_content_arrangement(ContentArrangement::Dynamic);
        if t.width().is_none() {
            t.set_width(PIPED_WIDTH);
        }
    }
    for r in records {
        let reason = r.reason.as_deref().unwrap_or("");
        t.add_row(vec![
            cell(&started(r)),
            cell(&r.id),
            cell(&image(r)),
            cell(&trigger_name(&r.trigger)),
            status_cell(&format!("{}{}", r.status.as_str(), observed(r.mode))),
            Cell::new(r.lead_time_seconds().map_or("—".into(), duration)),
            cell(reason),
        ]);
    }
    t.to_string()
}

/// One deployment, for `show`. Each line is ours; what a record says goes into it through
/// [`printable`], so a line break in a reason cannot forge a line of its own.
pub fn show(r: &DeploymentRecord) -> String {
    let p = |s: &str| printable(s).into_owned();
    let mut out = format!(
        "{} ({}) {} {}\n  {}/{} ← {}\n  trigger: {}\n  task definition: {} → {}\n",
        p(&r.id),
        p(&r.name),
        r.status.as_str(),
        p(&image(r)),
        p(&r.cluster),
        p(&r.service),
        p(&r.image_uri),
        p(&trigger_name(&r.trigger)),
        p(short_name(&r.previous_task_definition)),
        p(short_name(&r.task_definition)),
    );
    if let Some(to) = &r.rolled_back_to {
        let by = r.rolled_back_by.as_deref().map(|b| format!(" (by {})", p(b))).unwrap_or_default();
        out.push_str(&format!("  rolled back to: {}{by}\n", p(short_name(to))));
    }
    if let Some(reason) = &r.reason {
        out.push_str(&format!("  reason: {}\n", p(reason)));
    }
    if r.mode == Mode::Observe {
        out.push_str("  mode: observe (verify recorded and told its verdict; it rolled nothing back)\n");
    }
    out.push_str("timeline:\n");
    for e in &r.timeline {
        out.push_str(&format!("  {}  {}\n", p(&e.at), p(&e.event)));
    }
    if !r.hook_checks.is_empty() {
        out.push_str("lifecycle hook checks:\n");
        for c in &r.hook_checks {
            out.push_str(&format!("  {}  {}\n", p(&c.at), p(&c.summary())));
        }
    }
    if let Some(smoke) = &r.smoke {
        // Values shown as JSON: a string among them could carry what a bare number cannot.
        let v = |v: &serde_json::Value| p(&v.to_string());
        out.push_str(&format!(
            "smoke: passed={} rounds_run={} duration_ms={}{}\n",
            v(&smoke["passed"]),
            v(&smoke["rounds_run"]),
            v(&smoke["duration_ms"]),
            smoke["reason"].as_str().map(|r| format!(" reason: {}", p(r))).unwrap_or_default()
        ));
        for (i, round) in smoke["rounds"].as_array().into_iter().flatten().enumerate() {
            for check in round["checks"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  round {} {} → {} {}\n",
                    i + 1,
                    p(check["check"].as_str().unwrap_or("?")),
                    v(&check["status"]),
                    if check["passed"] == true { "ok" } else { "FAILED" }
                ));
            }
        }
    }
    out
}

fn keys_row(name: &str, k: &Keys) -> Vec<Cell> {
    let secs = |v: Option<f64>| v.map_or("—".to_string(), duration);
    vec![
        cell(name),
        Cell::new(k.deployments),
        Cell::new(format!("{:.2}", k.per_day)),
        Cell::new(k.band.as_str()),
        Cell::new(format!("{} / {}", secs(k.lead_time_seconds.median), secs(k.lead_time_seconds.p90))),
        Cell::new(failure_rate(k)),
        Cell::new(secs(k.recovery_seconds.median)),
    ]
}

/// The change failure rate, with how many of the failures observe mode only observed.
pub fn failure_rate(k: &Keys) -> String {
    let rate = k.change_failure_rate.map_or("—".into(), |r| format!("{:.0}%", r * 100.0));
    match k.observed_failures {
        0 => rate,
        n => format!("{rate} ({n} observed, not rolled back)"),
    }
}

/// The `report` table.
pub fn report(r: &Report, skipped: usize) -> String {
    let mut t = table(&[
        "service",
        "deployments",
        "per day",
        "band",
        "lead time median / p90",
        "change failure rate",
        "time to recover (median)",
    ]);
    for (name, k) in &r.services {
        t.add_row(keys_row(name, k));
    }
    t.add_row(keys_row("overall", &r.overall));
    let mut out = format!("from {} to {}\n{t}\n", printable(&r.since), printable(&r.until));
    if skipped > 0 {
        out.push_str(&format!(
            "{skipped} object(s) under deployments/ were not records and were skipped (see the warnings)\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_says_which_hook_check_failed_and_that_ecs_rolled_back() {
        let rec: DeploymentRecord = serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "todo-cluster", "service": "todo-backend", "name": "backend",
            "repository": "todo-backend", "tag": "latest", "digest": "sha256:41db0f7a5ea8aa", "image_uri": "r@sha256:41db0f7a5ea8aa",
            "strategy": "pin-digest", "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": null,
            "previous_task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:9",
            "task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:10",
            "ecs_deployment_id": "ecs-svc/1", "status": "rolled_back", "containers": ["backend"],
            "rolled_back_to": "arn:aws:ecs:r:1:task-definition/todo-backend:9", "rolled_back_by": "ecs",
            "hook_checks": [
                {"check": "POST_TEST_TRAFFIC_SHIFT", "listener": "test", "production_share": 0.0, "passed": true,
                 "rounds": 2, "smoke": null, "at": "2026-11-27T08:00:00Z"},
                {"check": "PRODUCTION_TRAFFIC_SHIFT@10", "listener": "production", "production_share": 10.0, "passed": false,
                 "reason": "GET todoItems: status 500", "rounds": 1, "smoke": null, "at": "2026-11-27T08:01:00Z"}
            ],
            "timeline": []
        }))
        .unwrap();
        let out = show(&rec);
        assert!(out.contains("rolled back to: todo-backend:9 (by ecs)"), "{out}");
        assert!(out.contains("POST_TEST_TRAFFIC_SHIFT through the test listener (0% of production on the new revision), 2 round(s): passed"), "{out}");
        assert!(out.contains("PRODUCTION_TRAFFIC_SHIFT@10 through the production listener (10% of production on the new revision), 1 round(s): FAILED: GET todoItems: status 500"), "{out}");
    }

    #[test]
    fn a_record_s_text_reaches_the_terminal_without_a_control_character() {
        let rec: DeploymentRecord = serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "todo-cluster", "service": "todo-backend", "name": "back\u{202E}end",
            "repository": "todo-backend", "tag": "v1\u{1b}]0;pwned\u{7}", "digest": "", "image_uri": "r:v1\u{1b}[2J",
            "strategy": "pin-digest", "trigger": {"kind": "manual", "action": "deploy\r", "request_id": "q"}, "pushed_at": null,
            "previous_task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:9",
            "task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:10",
            "ecs_deployment_id": "ecs-svc/1", "status": "rolled_back", "containers": ["backend"],
            "reason": "\u{1b}[2Jall good\r\n  reason: verified \u{9b}0m",
            "smoke": {"passed": "\u{202E}eurt", "rounds_run": 1, "duration_ms": 5, "reason": "x\u{1b}[31m",
                      "rounds": [{"round": 1, "passed": false, "checks": [{"check": "GET \u{1b}[2J", "passed": false, "status": "\u{85}"}]}]},
            "timeline": [{"event": "started\u{1b}[1A", "at": "2026-11-27T08:00:00Z\r"}]
        }))
        .unwrap();
        let unsafe_in = |s: &str| s.chars().filter(|&c| c != '\n' && pushdeploy::domain::text::is_unsafe(c)).count();
        let shown = show(&rec);
        assert_eq!(unsafe_in(&shown), 0, "{shown:?}");
        assert_eq!(
            shown.lines().filter(|l| l.trim_start().starts_with("reason: verified")).count(),
            0,
            "no forged line: {shown}"
        );
        assert!(
            shown.contains("  reason: \u{FFFD}[2Jall good\u{FFFD}\u{FFFD}  reason: verified \u{FFFD}0m\n"),
            "{shown}"
        );
        // A table may carry our own colours (in a terminal), never the record's escapes.
        for wide in [false, true] {
            let table = history(std::slice::from_ref(&rec), wide);
            for hostile in ["\u{1b}[2J", "\u{1b}]0;", "\u{7}", "\u{202E}", "\r", "\u{9b}"] {
                assert!(!table.contains(hostile), "{hostile:?} in {table:?}");
            }
        }
    }

    /// The last column's text (the reason), its wrapped lines joined with spaces: each line's
    /// characters from where the header's last column starts.
    pub(crate) fn reason_column(table: &str) -> String {
        let lines: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
        let header = lines.iter().position(|l| l.iter().collect::<String>().contains("reason")).unwrap();
        let at = lines[header].iter().collect::<String>().find("reason").unwrap();
        let at = lines[header].iter().collect::<String>()[..at].chars().count();
        let cells: Vec<String> = lines[header + 1..]
            .iter()
            .filter(|l| l.len() > at && l.first() == Some(&'│'))
            .map(|l| l[at..].iter().collect::<String>().trim_end().trim_end_matches('│').trim().to_string())
            .collect();
        cells.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn history_prints_the_record_id_and_the_whole_reason_wrapped_or_wide() {
        let reason = "smoke test failed: GET https://todo.example.com/api/todoItems answered 503 three times in a row \
            (attempt 1 of 5 at 2026-11-27T08:00:01Z, attempt 2 at 08:00:03Z, attempt 3 at 08:00:05Z); rolled back to \
            todo-backend:41 (sha256:4f1c0ffee), the last verified deployment, and the service is stable on it";
        let rec: DeploymentRecord = serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-5180473431224946458", "name": "backend", "cluster": "c", "service": "todo-backend",
            "repository": "todo-backend", "tag": "v1.4.2", "digest": "sha256:ab", "image_uri": "r/todo-backend@sha256:ab",
            "strategy": "pin-digest", "trigger": {"kind": "manual", "action": "deploy", "request_id": "q"}, "pushed_at": null,
            "previous_task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:41",
            "task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:42",
            "ecs_deployment_id": "ecs-svc/5180473431224946458", "status": "rolled_back", "containers": ["backend"],
            "reason": reason, "timeline": []
        }))
        .unwrap();
        let wrapped = history(std::slice::from_ref(&rec), false);
        assert!(wrapped.contains("ecs-svc-5180473431224946458"), "{wrapped}");
        assert!(!wrapped.contains('…'), "never cut: {wrapped}");
        assert!(wrapped.lines().all(|l| l.chars().count() <= usize::from(PIPED_WIDTH)), "{wrapped}");
        assert!(wrapped.lines().count() > 5, "the reason wraps over several lines: {wrapped}");
        assert_eq!(reason_column(&wrapped), reason.split_whitespace().collect::<Vec<_>>().join(" "), "{wrapped}");
        let wide = history(std::slice::from_ref(&rec), true);
        assert_eq!(wide.lines().filter(|l| l.contains(reason)).count(), 1, "one line, unwrapped: {wide}");
    }

    #[test]
    fn durations_and_ages_read_as_a_person_would_say_them() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(7800.0), "2h 10m");
        assert_eq!(ago(30.0), "30s ago");
        assert_eq!(ago(600.0), "10m ago");
        assert_eq!(ago(3.0 * 86_400.0), "3d ago");
    }

    #[test]
    fn observe_mode_shows_on_the_service_its_last_verdict_history_and_show() {
        let mut rec: DeploymentRecord = serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-2", "cluster": "todo-cluster", "service": "todo-backend", "name": "backend",
            "repository": "todo-backend", "tag": "latest", "digest": "sha256:41db0f7a5ea8aa", "image_uri": "r@sha256:41db0f7a5ea8aa",
            "strategy": "pin-digest", "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": null,
            "previous_task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:9",
            "task_definition": "arn:aws:ecs:r:1:task-definition/todo-backend:10",
            "ecs_deployment_id": "ecs-svc/2", "status": "failed", "containers": ["backend"], "mode": "observe",
            "reason": "observe: would roll back: GET todoItems: status 500, expected 200",
            "timeline": [{"event": "started", "at": "2026-11-27T08:00:00Z"}, {"event": "would_roll_back", "at": "2026-11-27T08:01:00Z"}]
        }))
        .unwrap();
        let out = show(&rec);
        assert!(out.starts_with("ecs-svc-2 (backend) failed latest@41db0f7a5ea8"), "{out}");
        assert!(out.contains("  reason: observe: would roll back: GET todoItems: status 500, expected 200\n"), "{out}");
        assert!(
            out.contains("  mode: observe (verify recorded and told its verdict; it rolled nothing back)\n"),
            "{out}"
        );
        let table = history(std::slice::from_ref(&rec), true);
        assert!(
            table.contains("failed (observe)") && table.contains("observe: would roll back: GET todoItems"),
            "{table}"
        );
        let last = crate::insight::LastDeployment {
            id: rec.id.clone(),
            status: "failed".into(),
            trigger: "push".into(),
            started: "2026-11-27T08:00:00Z".into(),
            age_seconds: 120.0,
            reason: rec.reason.clone(),
            mode: Mode::Observe,
        };
        let service = ServiceStatus {
            name: "backend".into(),
            target: "todo-cluster/todo-backend".into(),
            task_definition: rec.task_definition.clone(),
            images: vec![],
            tag: Some("latest".into()),
            last: Some(last),
            in_flight: None,
            mode: Mode::Observe,
        };
        let table = status(std::slice::from_ref(&service));
        assert!(table.contains("backend (observe)") && table.contains("failed (observe) 2m ago (push)"), "{table}");
        let json = serde_json::to_value(&service).unwrap();
        assert_eq!((json["mode"].as_str(), json["last"]["mode"].as_str()), (Some("observe"), Some("observe")));
        // Enforce mode reads as before.
        rec.mode = Mode::Enforce;
        assert!(!history(std::slice::from_ref(&rec), true).contains("observe)") && !show(&rec).contains("mode:"));
    }
}
