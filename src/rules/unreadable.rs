//! What the functions do about a service whose config entry this release cannot read
//! ([`crate::config::UnreadableService`]): a push or a manual action is refused
//! (`config_unreadable`), a deployment is not judged (neither verified nor rolled back, with
//! settings it cannot read), and the topic hears of it once per version of the config, when a
//! function reads it. Nothing is guessed: an unknown key never falls back on a default.

use crate::config::{Config, UnreadableService};
use crate::domain::error::ConfigError;
use crate::domain::record::DeploymentRecord;
use crate::rules::notify::{problem_message, Message, Problem};
use crate::rules::outcome::{DeploymentSummary, Outcome};

/// The timeline event of a deployment verify did not judge because it cannot read its service's config.
pub const NOT_JUDGED: &str = "not_judged";

/// Pure: the answer for an unreadable service a push or a manual action concerns: refused,
/// nothing changed, with the whole reason (this release, the file, the key, what is wrong).
pub fn refused(u: &UnreadableService, image: Option<String>) -> DeploymentSummary {
    let mut d = DeploymentSummary::new(
        u.name(),
        u.target(),
        Outcome::ConfigUnreadable,
        format!("{}; nothing was deployed for it", u.problem),
    );
    d.image = image;
    d
}

/// Why verify does not judge deployment `deployment_id` of `u`.
pub fn not_judged_reason(u: &UnreadableService, deployment_id: &str) -> String {
    format!(
        "deployment {deployment_id} was not judged (neither verified nor rolled back): {}; redrive the event from the failed-invocations queue once it can be read",
        u.problem
    )
}

/// Pure: the error a deployment event of `u` fails with (`Permanent.Config`), so Lambda retries
/// it and then keeps it in the failed-invocations queue for a redrive once it can be read.
pub fn not_judged_error(u: &UnreadableService, deployment_id: &str) -> ConfigError {
    let e = &u.problem.error;
    ConfigError {
        file: e.file.clone(),
        key: e.key.clone(),
        message: format!(
            "pushdeploy {} cannot read it ({}), so deployment {deployment_id} of {} was not judged (neither verified nor rolled back); the event is retried, then kept in the failed-invocations queue: redrive it once this release can read the entry",
            u.problem.version,
            e.message,
            u.target()
        ),
    }
}

/// Pure: `rec` saying it was not judged and why (stamped `now`), or `None` when there is nothing
/// to write: it says so already (a retry), or it has its verdict.
pub fn not_judged(rec: &DeploymentRecord, reason: &str, now: String) -> Option<DeploymentRecord> {
    let said = rec.reason.as_deref() == Some(reason) && rec.timeline.last().is_some_and(|t| t.event == NOT_JUDGED);
    if rec.is_settled() || said {
        return None;
    }
    let mut rec = rec.clone();
    rec.reason = Some(reason.to_string());
    rec.stamp(NOT_JUDGED, now);
    Some(rec)
}

/// Pure: what `function` ("deploy" or "verify") tells the topic when it reads a config with
/// unreadable services: one message, each problem in it; `None` when every service is readable.
pub fn load_message(function: &str, config: &Config) -> Option<Message> {
    let unreadable = config.unreadable();
    if unreadable.is_empty() {
        return None;
    }
    let names: Vec<&str> = unreadable.iter().map(|u| u.name()).collect();
    let problems: Vec<String> = unreadable.iter().map(|u| u.problem.to_string()).collect();
    let consequence = if function == "deploy" {
        "their pushes and manual actions are refused (config_unreadable) and nothing is deployed for them; every other service deploys as configured"
    } else {
        "their deployments are not judged (neither verified nor rolled back) and their lifecycle hooks wait (IN_PROGRESS) until the stuck budget fails them; every other service is verified as configured"
    };
    let service = format!("{} of {} service(s)", names.join(", "), names.len() + config.services.len());
    let doing = if function == "deploy" { "deploy" } else { "verify" };
    Some(problem_message(&Problem {
        function,
        service: &service,
        target: None,
        doing,
        error: &problems.join(" | "),
        consequence,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::Status;

    const TWO: &str = "[defaults]\ncluster='c'\n[[service]]\nname='web'\nservice='web'\nrepository='web'\ntags=['latest']\n[[service]]\nname='api'\nservice='api'\nrepository='api'\ntags=['latest']\napproval='manual'\n";

    fn rec(status: &str) -> DeploymentRecord {
        serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "c", "service": "api", "name": "api", "repository": "api",
            "tag": "latest", "digest": "sha256:aa", "image_uri": "api@sha256:aa", "strategy": "pin-digest",
            "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": "2026-11-27T00:00:00Z",
            "previous_task_definition": "td:1", "task_definition": "td:2", "ecs_deployment_id": "ecs-svc/1",
            "status": status, "containers": ["api"],
            "timeline": [{"event": "started", "at": "2026-11-27T00:00:05Z"}]
        }))
        .unwrap()
    }

    #[test]
    fn a_push_for_an_unreadable_service_is_refused_naming_the_release_and_the_key() {
        let c = Config::read_as(TWO, "s3://b/pushdeploy.toml", "0.1.0").unwrap();
        let d = refused(c.unreadable_for_push("api", "latest")[0], Some("api@sha256:aa".into()));
        assert_eq!((d.outcome, d.service.as_str(), d.target.as_str()), (Outcome::ConfigUnreadable, "api", "c/api"));
        assert_eq!(serde_json::to_value(&d).unwrap()["outcome"], "config_unreadable");
        assert!(
            d.reason.starts_with("pushdeploy 0.1.0 cannot read the config of service api (invalid config s3://b/pushdeploy.toml: service[1].approval: unknown key)"),
            "{}",
            d.reason
        );
        assert!(d.reason.ends_with("nothing was deployed for it"), "{}", d.reason);
        let m = load_message("deploy", &c).expect("told");
        assert!(m.subject.starts_with("pushdeploy ACTION NEEDED: api of 2 service(s) cannot deploy"), "{}", m.subject);
        assert!(
            m.body.contains("service[1].approval: unknown key") && m.body.contains("pushdeploy 0.1.0"),
            "{}",
            m.body
        );
        assert!(m.body.contains("every other service deploys as configured"), "{}", m.body);
        let fine = Config::read_as(&TWO.replace("approval='manual'\n", ""), "t", "0.1.0").unwrap();
        assert!(load_message("verify", &fine).is_none());
    }

    #[test]
    fn an_unjudged_deployment_says_so_once_and_never_over_a_verdict() {
        let c = Config::read_as(TWO, "t.toml", "0.1.0").unwrap();
        let u = c.unreadable_ecs_service("c", "api").unwrap();
        let why = not_judged_reason(u, "ecs-svc/1");
        assert!(
            why.starts_with(
                "deployment ecs-svc/1 was not judged (neither verified nor rolled back): pushdeploy 0.1.0 cannot read"
            ),
            "{why}"
        );
        let noted = not_judged(&rec("started"), &why, "2026-11-27T00:01:00Z".into()).expect("an open record says it");
        assert_eq!((noted.status, noted.reason.as_deref()), (Status::Started, Some(why.as_str())));
        assert_eq!(noted.timeline.last().unwrap().event, NOT_JUDGED);
        let e = not_judged_error(u, "ecs-svc/1");
        assert_eq!(e.key, "service[1].approval");
        assert!(e.to_string().starts_with("invalid config t.toml: service[1].approval: pushdeploy 0.1.0 cannot read it (unknown key), so deployment ecs-svc/1 of c/api was not judged"), "{e}");
        assert!(not_judged(&noted, &why, "2026-11-27T00:02:00Z".into()).is_none(), "a retry writes nothing");
        assert!(not_judged(&rec("verified"), &why, "2026-11-27T00:02:00Z".into()).is_none());
    }
}
