//! Pure: what the pauses in force mean for one service and what was asked of it. A paused
//! service takes no new change: a push or a manual action is answered `paused` (a plan says a
//! deploy would be), naming who paused it, why and since when. Rollouts already started are
//! verify's, which reads no pause: a pause stops new changes, never the safety net.

use crate::domain::pause::{Pause, Scope};
use crate::domain::text::printable;
use crate::rules::notify::Message;
use crate::rules::outcome::{DeploymentSummary, Outcome};

/// What was asked of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked<'a> {
    /// An ECR push of this tag.
    Push {
        /// The tag pushed.
        tag: &'a str,
    },
    /// `deploy`, `redeploy` or `rollback`.
    Change,
    /// `plan`: what a deploy would do.
    Plan,
}

/// The pause that holds `service`, if any: the pause of every service first (it is the wider
/// word, and resuming the service alone does not end it), else the service's own.
pub fn holding<'a>(pauses: &'a [Pause], service: &str) -> Option<&'a Pause> {
    pauses
        .iter()
        .find(|p| p.scope() == Scope::All)
        .or_else(|| pauses.iter().find(|p| p.service.as_deref() == Some(service)))
}

/// Who, since when and why, as one clause: `paused by ARN since T: REASON`.
pub fn describe(p: &Pause) -> String {
    format!("paused by {} since {}: {}", printable(&p.by), printable(&p.since), printable(&p.reason))
}

/// The answer for `service` when a pause holds it; `None` when nothing does.
pub fn decide(pauses: &[Pause], service: &str, asked: Asked<'_>) -> Option<(Outcome, String)> {
    let p = holding(pauses, service)?;
    let resume = format!("`pushdeploy resume {}`", p.scope().argument());
    let said = match p.scope() {
        Scope::All => format!("every service {}", describe(p)),
        Scope::Service(_) => describe(p),
    };
    Some(match asked {
        Asked::Push { tag } => (
            Outcome::Paused,
            format!(
                "{said}; this push was skipped and is not replayed: after {resume}, push it again or run `pushdeploy deploy {service} {tag}`; nothing was changed"
            ),
        ),
        Asked::Change => (Outcome::Paused, format!("{said}; nothing was changed; {resume} first")),
        Asked::Plan => (Outcome::Planned, format!("deploy would answer paused: {said}; {resume} ends it")),
    })
}

/// The message telling the topic that a push was skipped for the paused services among `answered`.
pub fn skipped_message(image: &str, answered: &[DeploymentSummary]) -> Option<Message> {
    let paused: Vec<&DeploymentSummary> = answered.iter().filter(|d| d.outcome == Outcome::Paused).collect();
    let first = paused.first()?;
    let names: Vec<&str> = paused.iter().map(|d| d.service.as_str()).collect();
    let mut body = format!("pushdeploy skipped a push of {} to {}: ", printable(image), printable(&names.join(", ")));
    body.push_str(&first.reason);
    for d in &paused[1..] {
        body.push_str(&format!("\n{}: {}", printable(&d.service), d.reason));
    }
    let subject = crate::rules::notify::subject(&format!("pushdeploy PAUSED: skipped a push to {}", names.join(", ")));
    Some(Message {
        subject,
        body,
        attributes: vec![("status", "paused".to_string()), ("service", printable(&first.service).into_owned())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pause(service: Option<&str>, by: &str) -> Pause {
        Pause {
            service: service.map(str::to_string),
            reason: "incident 42".into(),
            by: format!("arn:aws:sts::123456789012:assumed-role/ops/{by}"),
            since: "2026-12-07T22:40:00Z".into(),
        }
    }

    /// The outcome expected and what its reason must say; `None`: not paused.
    type Want = Option<(Outcome, &'static str)>;

    #[test]
    fn the_pauses_in_force_decide_each_request() {
        let all = pause(None, "alice");
        let backend = pause(Some("backend"), "bob");
        let push = Asked::Push { tag: "latest" };
        // (pauses, service, asked) → (outcome, what the reason must say)
        let table: Vec<(Vec<Pause>, &str, Asked, Want)> = vec![
            (vec![], "backend", push, None),
            (vec![backend.clone()], "frontend", push, None),
            (vec![backend.clone()], "frontend", Asked::Change, None),
            (vec![backend.clone()], "backend", push, Some((Outcome::Paused, "paused by arn:aws:sts::123456789012:assumed-role/ops/bob since 2026-12-07T22:40:00Z: incident 42; this push was skipped and is not replayed: after `pushdeploy resume backend`, push it again or run `pushdeploy deploy backend latest`"))),
            (vec![backend.clone()], "backend", Asked::Change, Some((Outcome::Paused, "; nothing was changed; `pushdeploy resume backend` first"))),
            (vec![backend.clone()], "backend", Asked::Plan, Some((Outcome::Planned, "deploy would answer paused: paused by"))),
            (vec![all.clone()], "frontend", push, Some((Outcome::Paused, "every service paused by arn:aws:sts::123456789012:assumed-role/ops/alice"))),
            (vec![all.clone()], "frontend", Asked::Change, Some((Outcome::Paused, "`pushdeploy resume --all` first"))),
            // Both: the all-pause is named, since resuming the service alone would not end it.
            (vec![backend.clone(), all.clone()], "backend", Asked::Change, Some((Outcome::Paused, "ops/alice"))),
        ];
        for (pauses, service, asked, want) in table {
            let got = decide(&pauses, service, asked);
            match (want, &got) {
                (None, None) => {}
                (Some((outcome, says)), Some((o, reason))) => {
                    assert_eq!(*o, outcome, "{service} {asked:?}: {reason}");
                    assert!(reason.contains(says), "{service} {asked:?}: {reason:?} lacks {says:?}");
                    assert!(reason.contains("incident 42"), "{reason}");
                }
                _ => panic!("{service} {asked:?} with {pauses:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn what_a_pause_quotes_cannot_act_on_a_terminal() {
        let mut p = pause(Some("backend"), "eve");
        p.reason = "ok\n\u{1b}[2Jforged line".into();
        let (_, reason) = decide(&[p], "backend", Asked::Change).unwrap();
        assert!(!reason.contains('\n') && !reason.contains('\u{1b}'), "{reason:?}");
    }

    #[test]
    fn a_skipped_push_is_told_once_naming_every_paused_service() {
        let reason = |s: &str| decide(&[pause(None, "alice")], s, Asked::Push { tag: "latest" }).unwrap().1;
        let answered = vec![
            DeploymentSummary::new("backend", "c/b".into(), Outcome::Paused, reason("backend")),
            DeploymentSummary::new("worker", "c/w".into(), Outcome::Paused, reason("worker")),
            DeploymentSummary::new("other", "c/o".into(), Outcome::Started, "rolling"),
        ];
        let m = skipped_message("r/backend@sha256:ab", &answered).unwrap();
        assert_eq!(m.subject, "pushdeploy PAUSED: skipped a push to backend, worker");
        assert!(m.body.starts_with(
            "pushdeploy skipped a push of r/backend@sha256:ab to backend, worker: every service paused by"
        ));
        assert!(m.body.contains("not replayed"), "{}", m.body);
        assert!(skipped_message("i", &answered[2..]).is_none(), "nothing paused, nothing told");
    }
}
