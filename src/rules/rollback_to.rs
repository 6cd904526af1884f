//! Pure: the operator's way back when pushdeploy has verified nothing to return to (day one,
//! right after cutover). `rollback --to` names a revision (`family:N` or its ARN) or an image
//! digest; the invocation payload is input anyone allowed to invoke may write, so the target is
//! only ever one ECS's own history says the service ran ([`RanRevision`], newest first), never
//! the revision or digest as named. A digest names the newest revision the service ran with it.
//! A digest pushdeploy rolled back stays refused unless forced, as `deploy` refuses it
//! ([`crate::rules::rolled_back`]). `rollback` with no target says what [`choose_target`] would
//! choose and why; when there is nothing, it lists what ECS's history offers ([`candidates`]).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::TaskDefinition;
use serde::Serialize;

use crate::config::{ServiceConfig, Strategy};
use crate::domain::ecs_view::RanRevision;
use crate::domain::image::ImageRef;
use crate::domain::names::short_name;
use crate::domain::record::DeploymentRecord;
use crate::inbound::RollbackTo;
use crate::rules::rolled_back::{self, RolledBack};

/// How many revisions a refusal lists (ECS's history may hold hundreds).
pub const CANDIDATES_LISTED: usize = 20;

/// What the operator asked of `rollback`.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The configured service name.
    pub name: &'a str,
    /// `--to`, parsed.
    pub to: &'a RollbackTo,
    /// `--force`: past a rollback of the target's digest.
    pub force: bool,
}

/// The revision `--to` names, as ECS's history holds it.
#[derive(Debug)]
pub struct Named<'a> {
    /// The revision (with the digests ECS resolved when the service ran it).
    pub revision: &'a RanRevision,
    /// One line for the record, the answer and the message.
    pub why: String,
    /// The note on a forced return to a digest pushdeploy rolled back.
    pub forced: Option<String>,
}

/// One revision the service ran, for the operator to choose with `--to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The task definition ARN.
    pub task_definition: String,
    /// Container name → the digest ECS resolved when the service ran it.
    pub digests: BTreeMap<String, String>,
    /// When ECS deployed it, when ECS said (a revision read from the tasks has no time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// `runs now`, or the rollback of its digest that `--force` goes past.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The revision the operator named, when ECS's history shows the service ran it; `containers`
/// are the ones pushdeploy deploys (a digest must be one of theirs), `current` what the service
/// runs, `records` the service's recent records (for rollbacks of the digest). `Err` says why not,
/// in a sentence that ends with what to do.
pub fn choose_named<'a>(
    asked: Asked<'_>,
    current: &str,
    ran: &'a [RanRevision],
    containers: &[String],
    records: &[DeploymentRecord],
) -> Result<Named<'a>, String> {
    let ours = |r: &RanRevision| -> Vec<String> {
        r.digests.iter().filter(|(c, _)| containers.contains(c)).map(|(_, d)| d.clone()).collect()
    };
    let found = match asked.to {
        RollbackTo::Revision(named) if named.starts_with("arn:") => ran.iter().find(|r| r.task_definition == *named),
        RollbackTo::Revision(named) => ran.iter().find(|r| short_name(&r.task_definition) == named),
        RollbackTo::Digest(d) => ran.iter().find(|r| ours(r).iter().any(|ran| ran == d.as_str())),
    };
    let Some(revision) = found else { return Err(never_ran(asked, ran)) };
    // A revision named is one the operator means, settings and all; a digest named that the
    // service runs now (a pinned copy of it, say) is where the service already is.
    let running_now = ran.iter().find(|r| r.task_definition == current).map(ours).filter(|d| !d.is_empty());
    let same_images = matches!(asked.to, RollbackTo::Digest(_)) && running_now.is_some_and(|now| now == ours(revision));
    if revision.task_definition == current || same_images {
        return Err(format!(
            "the service already runs {} ({}): nothing to return to, nothing changed",
            short_name(&revision.task_definition),
            images(&revision.digests)
        ));
    }
    let rolled_back = ours(revision).iter().find_map(|d| rolled_back::find(records, d));
    let forced = match rolled_back {
        Some(found) if !asked.force => return Err(rolled_back::refusal(&found, &way_through(asked))),
        Some(found) => Some(rolled_back::forced_note(&found)),
        None => None,
    };
    let by = match asked.to {
        RollbackTo::Digest(d) => format!(", the newest revision it ran with {d}"),
        RollbackTo::Revision(_) => String::new(),
    };
    let why = format!(
        "{} ({}), which ECS's history shows the service ran{}{by}: named by the operator (--to {})",
        short_name(&revision.task_definition),
        images(&revision.digests),
        revision.at.as_deref().map(|at| format!(" (deployed {at})")).unwrap_or_default(),
        asked.to.as_str()
    );
    Ok(Named { revision, why, forced })
}

/// The refusal of a target ECS's history does not show the service ran.
fn never_ran(asked: Asked<'_>, ran: &[RanRevision]) -> String {
    let what = match asked.to {
        RollbackTo::Revision(_) => "no deployment of that revision",
        RollbackTo::Digest(_) => "no revision that ran that digest in a container pushdeploy deploys",
    };
    format!(
        "ECS's history of the service shows {what} ({} revision(s) looked at), so pushdeploy will not run {}: it returns a service only to what ECS says it ran; `pushdeploy rollback {} --dry-run` lists them; nothing changed",
        ran.len(),
        asked.to.as_str(),
        asked.name
    )
}

/// How to go past the refusal of a rolled-back digest.
fn way_through(asked: Asked<'_>) -> String {
    format!(
        "`pushdeploy rollback {0} --to {1} --force` ({{\"action\": \"rollback\", \"service\": \"{0}\", \"to\": \"{1}\", \"force\": true}})",
        asked.name,
        asked.to.as_str()
    )
}

/// `container=sha256:0123456789ab` for each container, as `docker images` shortens a digest.
pub fn images(digests: &BTreeMap<String, String>) -> String {
    if digests.is_empty() {
        return "digests unknown".into();
    }
    let short =
        |d: &str| d.strip_prefix("sha256:").map_or(d.to_string(), |h| format!("sha256:{}", &h[..h.len().min(12)]));
    digests.iter().map(|(c, d)| format!("{c}={}", short(d))).collect::<Vec<_>>().join(", ")
}

/// The revisions ECS's history shows the service ran, newest first, each once (its newest
/// deployment), at most [`CANDIDATES_LISTED`]: the one running now and those whose digest
/// pushdeploy rolled back are noted.
pub fn candidates(
    current: &str,
    ran: &[RanRevision],
    containers: &[String],
    records: &[DeploymentRecord],
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for r in ran {
        if out.len() == CANDIDATES_LISTED || out.iter().any(|c| c.task_definition == r.task_definition) {
            continue;
        }
        let rolled_back: Option<RolledBack> =
            r.digests.iter().filter(|(c, _)| containers.contains(c)).find_map(|(_, d)| rolled_back::find(records, d));
        let note = if r.task_definition == current {
            Some("runs now".to_string())
        } else {
            rolled_back
                .map(|f| format!("pushdeploy rolled back {} at {} ({}): needs --force", f.digest, f.at, f.deployment))
        };
        out.push(Candidate {
            task_definition: r.task_definition.clone(),
            digests: r.digests.clone(),
            at: r.at.clone(),
            note,
        });
    }
    out
}

/// The answer to `rollback` with no target when there is none: why, and what to do.
pub fn none_to_return_to(name: &str, why: &str, listed: usize) -> String {
    if listed == 0 {
        return format!("{why}; ECS's history shows no revision of the service either; nothing changed");
    }
    format!(
        "{why}; ECS's history shows the {listed} revision(s) the service ran (listed, newest first): pick one with `pushdeploy rollback {name} --to REVISION|DIGEST`; nothing changed"
    )
}

/// Why a manual rollback with no target does not act on a service pushdeploy has no record of:
/// it cannot tell which of ECS's revisions was good.
pub fn no_records(current: &str) -> String {
    format!(
        "pushdeploy has no record of this service (it runs {}, and pushdeploy has deployed nothing to it yet), so there is no verified deployment to return to and it cannot tell which earlier revision was good",
        short_name(current)
    )
}

/// The containers pushdeploy deploys in `td` (the running revision): the config's `containers`,
/// or every container whose image is from the service's repository. A digest named by `--to`
/// must be one of theirs, and a rollback pins them.
pub fn deployed_containers(td: &TaskDefinition, svc: &ServiceConfig) -> Vec<String> {
    if let Some(named) = &svc.containers {
        return named.clone();
    }
    td.container_definitions()
        .iter()
        .filter(|c| c.image().and_then(|i| ImageRef::parse(i).ok()).is_some_and(|i| i.repository == svc.repository))
        .filter_map(|c| c.name().map(str::to_string))
        .collect()
}

/// The service's identity (cluster, service, name, repository, strategy, containers) as a record,
/// for the record of a rollback of a service pushdeploy has no record of (day one).
pub fn identity_of(svc: &ServiceConfig, containers: &[String]) -> DeploymentRecord {
    let strategy = match svc.strategy {
        Strategy::PinDigest => "pin-digest",
        Strategy::ForceNewDeployment => "force-new-deployment",
    };
    // Through serde: every optional field of the record takes its default.
    serde_json::from_value(serde_json::json!({
        "id": "", "cluster": svc.cluster, "service": svc.service, "name": svc.name,
        "repository": svc.repository, "tag": "", "digest": "", "image_uri": "", "strategy": strategy,
        "trigger": {"kind": "manual", "action": "rollback", "request_id": ""},
        "previous_task_definition": "", "task_definition": "", "ecs_deployment_id": "",
        "status": "started", "containers": containers, "timeline": []
    }))
    .expect("the identity record has every required field")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::{Status, TimelineEntry};
    use crate::rules::rollback::tests::record;

    const ARN: &str = "arn:aws:ecs:r:1:task-definition/";

    fn dg(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    /// ECS's history, newest first: (revision, the app container's digest, the sidecar's).
    fn history(rows: &[(&str, u8)]) -> Vec<RanRevision> {
        rows.iter()
            .enumerate()
            .map(|(i, (td, d))| RanRevision {
                task_definition: format!("{ARN}{td}"),
                digests: [("app".to_string(), dg(*d)), ("log".to_string(), dg(99))].into_iter().collect(),
                at: Some(format!("2026-12-0{}T10:00:00Z", 7 - i.min(6))),
            })
            .collect()
    }

    fn to(s: &str) -> RollbackTo {
        RollbackTo::parse(s).unwrap()
    }

    /// The revision chosen, or the refusal.
    fn choose(named: &str, force: bool, current: &str, ran: &[RanRevision], records: &[DeploymentRecord]) -> String {
        let to = to(named);
        let asked = Asked { name: "backend", to: &to, force };
        let containers = ["app".to_string()];
        match choose_named(asked, &format!("{ARN}{current}"), ran, &containers, records) {
            Ok(n) => short_name(&n.revision.task_definition).to_string(),
            Err(why) => format!("refused: {why}"),
        }
    }

    /// The record of a build of digest `d` pushdeploy rolled back.
    fn rolled_back_build(d: u8) -> DeploymentRecord {
        let mut r = record("9", "td:9", Status::RolledBack, "2026-12-06T10:00:00Z");
        r.digest = dg(d);
        r.reason = Some("GET /health: status 500".into());
        r.timeline.push(TimelineEntry { event: "rolled_back".into(), at: "2026-12-06T10:05:00Z".into() });
        r
    }

    #[test]
    fn only_a_revision_or_digest_ecs_ran_is_a_target() {
        // Day one: the pipeline ran app:1, app:2, app:3 (running); pushdeploy has no record.
        let ran = history(&[("app:3", 3), ("app:2", 2), ("app:1", 1), ("app:2", 2)]);
        let digest = |n| dg(n);
        let table: &[(&str, bool, &str, &str)] = &[
            // (named, force, current, chosen or refusal's words)
            ("app:1", false, "app:3", "app:1"),
            (&format!("{ARN}app:2"), false, "app:3", "app:2"),
            (&digest(1), false, "app:3", "app:1"),
            (&digest(2), false, "app:3", "app:2"),
            // Never ran: another family, a revision registered but never deployed, another
            // account's ARN of the same name, a digest ECS never ran, the sidecar's digest.
            (
                "evil:1",
                false,
                "app:3",
                "refused: ECS's history of the service shows no deployment of that revision (4 revision(s)",
            ),
            ("app:7", false, "app:3", "refused: ECS's history of the service shows no deployment"),
            ("arn:aws:ecs:r:2:task-definition/app:1", false, "app:3", "refused: ECS's history"),
            (
                &digest(7),
                false,
                "app:3",
                "refused: ECS's history of the service shows no revision that ran that digest",
            ),
            (
                &digest(99),
                false,
                "app:3",
                "refused: ECS's history of the service shows no revision that ran that digest",
            ),
            // Where it is already.
            ("app:3", false, "app:3", "refused: the service already runs app:3"),
            (&digest(3), false, "app:3", "refused: the service already runs app:3"),
        ];
        for (named, force, current, expected) in table {
            let got = choose(named, *force, current, &ran, &[]);
            assert!(got.starts_with(expected), "{named}: {got}");
        }
        // Every refusal says nothing changed and how to see the candidates.
        let why = choose("evil:1", false, "app:3", &ran, &[]);
        assert!(why.contains("`pushdeploy rollback backend --dry-run` lists them; nothing changed"), "{why}");
    }

    #[test]
    fn a_digest_names_the_newest_revision_that_ran_it() {
        // app:5 re-registered the same build (another setting changed): the newest with it wins.
        let ran = history(&[("app:6", 6), ("app:5", 2), ("app:2", 2), ("app:1", 1)]);
        let to = to(&dg(2));
        let asked = Asked { name: "backend", to: &to, force: false };
        let n = choose_named(asked, &format!("{ARN}app:6"), &ran, &["app".into()], &[]).unwrap();
        assert_eq!(short_name(&n.revision.task_definition), "app:5");
        assert!(n.why.contains("the newest revision it ran with sha256:0202"), "{}", n.why);
        assert!(
            n.why.contains("(deployed 2026-12-06T10:00:00Z)") && n.why.contains("named by the operator"),
            "{}",
            n.why
        );
        // A pinned copy of app:5 running now already runs that digest; app:2 named by revision
        // is another revision (its settings may be what the operator wants back).
        assert!(choose(&dg(2), false, "app:5", &ran, &[]).starts_with("refused: the service already runs"));
        let ran = history(&[("app:7", 2), ("app:5", 2), ("app:1", 1)]);
        assert!(choose(&dg(2), false, "app:7", &ran, &[]).starts_with("refused: the service already runs app:7"));
        assert_eq!(choose("app:5", false, "app:7", &ran, &[]), "app:5");
    }

    #[test]
    fn a_digest_pushdeploy_rolled_back_needs_force() {
        let ran = history(&[("app:3", 3), ("app:2", 2), ("app:1", 1)]);
        let records = [rolled_back_build(2)];
        for named in ["app:2".to_string(), dg(2)] {
            let why = choose(&named, false, "app:3", &ran, &records);
            assert!(why.contains("was rolled back by pushdeploy at 2026-12-06T10:05:00Z"), "{why}");
            assert!(why.contains(&format!("`pushdeploy rollback backend --to {named} --force`")), "{why}");
            assert_eq!(choose(&named, true, "app:3", &ran, &records), "app:2");
        }
        let to = to("app:2");
        let n = choose_named(Asked { name: "b", to: &to, force: true }, "x", &ran, &["app".into()], &records).unwrap();
        assert!(n.forced.unwrap().starts_with("forced past the rollback of sha256:0202"));
        assert_eq!(choose("app:1", false, "app:3", &ran, &records), "app:1", "another digest is not refused");
    }

    #[test]
    fn candidates_are_each_revision_once_newest_first_with_notes() {
        let ran = history(&[("app:3", 3), ("app:2", 2), ("app:1", 1), ("app:2", 2)]);
        let listed = candidates(&format!("{ARN}app:3"), &ran, &["app".into()], &[rolled_back_build(2)]);
        let names: Vec<&str> = listed.iter().map(|c| short_name(&c.task_definition)).collect();
        assert_eq!(names, ["app:3", "app:2", "app:1"]);
        assert_eq!(listed[0].note.as_deref(), Some("runs now"));
        assert!(listed[1].note.as_deref().unwrap().ends_with("needs --force"), "{:?}", listed[1].note);
        assert_eq!(listed[2].note, None);
        assert_eq!(listed[2].at.as_deref(), Some("2026-12-05T10:00:00Z"));
        assert_eq!(images(&listed[2].digests), "app=sha256:010101010101, log=sha256:636363636363");
        let many: Vec<RanRevision> = (1..=40).map(|n| history(&[(&format!("app:{n}"), 1)]).remove(0)).collect();
        assert_eq!(candidates("x", &many, &[], &[]).len(), CANDIDATES_LISTED);
        assert!(none_to_return_to("backend", "why", 3)
            .contains("pick one with `pushdeploy rollback backend --to REVISION|DIGEST`"));
        assert!(none_to_return_to("backend", "why", 0)
            .ends_with("shows no revision of the service either; nothing changed"));
    }

    #[test]
    fn a_service_with_no_record_has_its_identity_from_the_config() {
        use crate::rules::taskdef::tests::{svc, td};
        let service = svc("");
        let running = td(&[("frontend", "1.dkr.ecr.r.amazonaws.com/todo-frontend:latest"), ("envoy", "envoy:1")]);
        let containers = deployed_containers(&running, &service);
        assert_eq!(containers, ["frontend"]);
        let r = identity_of(&service, &containers);
        assert_eq!(
            (r.cluster.as_str(), r.service.as_str(), r.name.as_str()),
            ("todo-cluster", "todo-frontend", "frontend")
        );
        assert_eq!(
            (r.repository.as_str(), r.strategy.as_str(), r.containers.clone()),
            ("todo-frontend", "pin-digest", containers)
        );
        assert_eq!(deployed_containers(&running, &svc("containers = ['envoy']")), ["envoy"]);
    }
}
