//! The rollout decision: from a push (or a manual action) and the service as read, what the
//! rollout does. Pure: no AWS, tested below without any server.

use aws_sdk_ecs::types::{Tag, TaskDefinition};

use crate::config::ServiceConfig;
use crate::domain::ecs_view::DescribedTaskDefinition;
use crate::domain::error::InputError;
use crate::domain::image::ImageRef;
use crate::domain::names::short_name;
use crate::domain::passed_over::PassedOver;
use crate::domain::record::DeploymentRecord;
use crate::rules::freshness::{self, PushActedOn};
use crate::rules::plan::{self, Action, ServicePlan};
use crate::rules::rolled_back;

/// A service's state as read before deciding.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// The revision the service runs.
    pub current: DescribedTaskDefinition,
    /// Its ARN.
    pub current_arn: String,
    /// The service's last `imagedefinitions.json` (tag-based services plan from it).
    pub previous_definitions: Option<Vec<u8>>,
    /// With `base = "family"`: the revision to copy (the newest a trusted principal registered),
    /// when the service does not run it (or a copy of it) yet.
    pub base: Option<DescribedTaskDefinition>,
    /// With `base = "family"`: newer revisions of the family not copied, and why.
    pub passed_over: Vec<PassedOver>,
    /// The service's most recently written records ([`rolled_back::HISTORY_SCANNED`]): which
    /// digests pushdeploy rolled back.
    pub history: Vec<DeploymentRecord>,
    /// For a push: the pushes of the repository the service's recent records say it acted on.
    pub pushes: Vec<PushActedOn>,
}

/// What is asked of the service.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The image to roll out, pinned to its digest.
    pub image: &'a ImageRef,
    /// When a push caused it: the push event's own time (whole epoch seconds).
    pub event_time: Option<i64>,
    /// `redeploy`: new tasks even when nothing changed.
    pub force: bool,
    /// `plan`: say what would happen, change nothing.
    pub dry_run: bool,
    /// An operator asked (`deploy`, `redeploy`), not a push: a held base change goes ahead.
    pub operator: bool,
    /// The operator's `force`: a digest pushdeploy rolled back is deployed all the same.
    pub allow_rolled_back: bool,
}

/// What the rollout does.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The service already acted on a push whose event came after this one's.
    Superseded(String),
    /// This image cannot be rolled out to this service: the config and the task definition
    /// disagree (a container the config names is missing, none runs the repository's image), so
    /// no push of it deploys until a person fixes one of them.
    Rejected(String),
    /// pushdeploy rolled this digest back and no verified deployment of it followed: not rolled
    /// out again unless forced. The reason quotes the rollback.
    Refused(Box<ServicePlan>, String),
    /// `plan`: what deploy would do.
    Planned(Box<ServicePlan>, String),
    /// `hold_base_changes`: a push whose base changes more than the image waits for an operator.
    Held(Box<ServicePlan>, String),
    /// The service already runs it.
    Unchanged(Box<ServicePlan>),
    /// Register a revision (or force new tasks) and update the service.
    Change(Box<ServicePlan>),
}

/// Decides the rollout of `asked` to `svc`, running `state`.
pub fn decide(svc: &ServiceConfig, asked: Asked<'_>, state: &ServiceState) -> Decision {
    // The order of the events decides, never a push time on the task definition (anyone who may
    // tag it can set one) nor ECR's first push of the digest (a retag of an older digest is new).
    if let Some(newer) = asked.event_time.and_then(|at| freshness::newer_push_acted_on(&state.pushes, at)) {
        return Decision::Superseded(format!(
            "{}:{} was deployed for push {}, an event {} s after this one: a newer push already deployed",
            asked.image.repository,
            newer.tag,
            newer.event_id,
            newer.at - asked.event_time.unwrap_or_default()
        ));
    }
    let plan = match plan::plan_service(
        svc,
        asked.image,
        &state.current.task_definition,
        state.base.as_ref().map(|b| &b.task_definition),
        state.previous_definitions.as_deref(),
        asked.force,
    ) {
        Ok(p) => Box::new(p),
        Err(InputError(reason)) => return Decision::Rejected(reason),
    };
    let held = (svc.hold_base_changes && !plan.base_changes.is_empty()).then(|| {
        // The fields only: this reason is logged and published, an environment's values are
        // not; `base_changes` and `plan` have them.
        format!(
            "held (hold_base_changes): its base {} changes more than the image: {} (see base_changes); nothing was changed. Read `plan`, then `redeploy` or `deploy` to roll it out",
            base_name(state),
            crate::rules::taskdef::changed_fields(&plan.base_changes).join(", ")
        )
    });
    // What runs already is never refused: nothing would change.
    let rolled_back = asked
        .image
        .digest
        .as_ref()
        .filter(|_| plan.action != Action::Unchanged)
        .and_then(|d| rolled_back::find(&state.history, d.as_str()));
    let refusal = rolled_back.as_ref().filter(|_| !asked.allow_rolled_back).map(|found| {
        let redeploy = asked.operator && asked.force;
        rolled_back::refusal(found, &rolled_back::way_through(svc, redeploy, asked.image.tag.as_deref()))
    });
    if asked.dry_run {
        return planned(plan, state, refusal, held.is_some(), rolled_back.as_ref());
    }
    if let Some(why) = refusal {
        return Decision::Refused(plan, why);
    }
    if let Some(reason) = held.filter(|_| !asked.operator) {
        return Decision::Held(plan, reason);
    }
    match plan.action {
        Action::Unchanged => Decision::Unchanged(plan),
        _ => Decision::Change(plan),
    }
}

/// `plan`'s answer: what deploy would do (refuse, change nothing, register, force new tasks),
/// noting a push's hold and a rollback `force` goes past.
fn planned(
    plan: Box<ServicePlan>,
    state: &ServiceState,
    refusal: Option<String>,
    held: bool,
    rolled_back: Option<&rolled_back::RolledBack>,
) -> Decision {
    if let Some(why) = refusal {
        return Decision::Planned(plan, format!("deploy would refuse it: {why}"));
    }
    let mut reason = match &plan.action {
        Action::Unchanged => format!("already runs {}: deploy would change nothing", plan.image_uri),
        Action::Register(_) => format!(
            "deploy would register a new revision of {} with {} container(s) on {} and update the service",
            short_name(&state.current_arn),
            plan.changes.len(),
            plan.image_uri
        ),
        Action::ForceNewDeployment => format!("deploy would force new tasks of {}", short_name(&state.current_arn)),
    };
    if held {
        reason.push_str("; a push would be held (hold_base_changes): its base changes more than the image");
    }
    if let Some(found) = rolled_back {
        reason.push_str(&format!("; {}", rolled_back::forced_note(found)));
    }
    Decision::Planned(plan, reason)
}

/// Pure: whether a person must hear of `decision` (the topic, the `ActionNeeded` metric): a
/// rejection no later push can get past (the config and the task definition disagree) or a push
/// held for an operator. Routine answers (superseded, unchanged, started) and anything a `plan`
/// answers, which only asked, need nobody.
pub fn needs_person(decision: &Decision, asked: Asked<'_>) -> bool {
    match decision {
        Decision::Rejected(_) => !asked.dry_run,
        Decision::Held(..) => true,
        // A push of a build pushdeploy rolled back waits for a person (`force`, or a new build);
        // an operator reads the answer.
        Decision::Refused(..) => !asked.operator && !asked.dry_run,
        Decision::Superseded(_) | Decision::Planned(..) | Decision::Unchanged(_) | Decision::Change(_) => false,
    }
}

/// The image `svc`'s containers run in `current`, which `redeploy` rolls again (never what a tag
/// in the config names now: after a rollback `latest` may still name the broken build). Pinned
/// to a digest, its tag is the one the newest of `history` deployed it as; naming a tag (a
/// tag-based revision), it is that tag, which ECS resolves when it starts tasks, so the caller
/// resolves it too. Refused when the containers run different images, or none from the service's
/// repository.
pub fn running_image(
    svc: &ServiceConfig,
    current: &TaskDefinition,
    history: &[DeploymentRecord],
) -> Result<ImageRef, String> {
    let td_name = current.task_definition_arn().map_or("the revision the service runs", short_name);
    let defs = current.container_definitions();
    let images: Vec<(&str, &str)> = match &svc.containers {
        Some(wanted) => wanted
            .iter()
            .map(|w| {
                defs.iter()
                    .find(|c| c.name() == Some(w.as_str()))
                    .map(|c| (w.as_str(), c.image().unwrap_or_default()))
                    .ok_or_else(|| format!("container {w:?} is not in {td_name}; fix `containers` in the config"))
            })
            .collect::<Result<_, _>>()?,
        None => defs
            .iter()
            .filter(|c| c.image().and_then(|i| ImageRef::parse(i).ok()).is_some_and(|i| i.repository == svc.repository))
            .map(|c| (c.name().unwrap_or_default(), c.image().unwrap_or_default()))
            .collect(),
    };
    let mut parsed = images.iter().map(|(name, image)| {
        ImageRef::parse(image).map(|i| (*name, i)).map_err(|e| format!("container {name} of {td_name}: {}", e.0))
    });
    let Some(first) = parsed.next() else {
        return Err(format!("no container in {td_name} runs an image from {}", svc.repository));
    };
    let (name, mut image) = first?;
    for other in parsed {
        let (other_name, other) = other?;
        if other != image {
            return Err(format!(
                "containers {name} and {other_name} of {td_name} run different images ({image} and {other}): redeploy cannot tell which to roll; deploy a tag instead"
            ));
        }
    }
    match &image.digest {
        Some(digest) => {
            image.tag = history
                .iter()
                .filter(|r| !r.is_rollback() && r.digest == digest.as_str() && !r.tag.is_empty())
                .max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)))
                .map(|r| r.tag.clone());
        }
        // An image named without a tag is `latest`, as Docker and ECS read it.
        None => image.tag = Some(image.tag.take().unwrap_or_else(|| "latest".into())),
    }
    Ok(image)
}

/// For a push (`push`): the pushes of the service's repository its records (`history`) say it
/// acted on, which order a late event ([`crate::rules::freshness`]). Nothing otherwise: only a
/// push can be superseded.
pub fn pushes_of(svc: &ServiceConfig, history: &[DeploymentRecord], push: bool) -> Vec<PushActedOn> {
    if push {
        freshness::pushes_acted_on(history, &svc.repository)
    } else {
        Vec::new()
    }
}

/// What a copy is made from (the base, or what runs) and that revision's tags.
pub fn source_of(state: &ServiceState) -> (String, &[Tag]) {
    match &state.base {
        Some(b) => (b.task_definition.task_definition_arn().unwrap_or_default().to_string(), &b.tags),
        None => (state.current_arn.clone(), &state.current.tags),
    }
}

/// `family:revision` of the base, for reasons.
fn base_name(state: &ServiceState) -> &str {
    state.base.as_ref().and_then(|b| b.task_definition.task_definition_arn()).map_or("(none)", short_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::taskdef::tests::{pushed, svc, td, DIGEST, REG};
    use aws_sdk_ecs::types::Tag;

    fn state(image: &str, tags: Vec<Tag>) -> ServiceState {
        ServiceState {
            current: DescribedTaskDefinition { task_definition: td(&[("web", image)]), tags },
            current_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
            previous_definitions: None,
            base: None,
            passed_over: Vec::new(),
            history: Vec::new(),
            pushes: Vec::new(),
        }
    }

    fn asked(image: &ImageRef, event_time: Option<i64>) -> Asked<'_> {
        Asked { image, event_time, force: false, dry_run: false, operator: false, allow_rolled_back: false }
    }

    #[test]
    fn a_new_digest_is_a_change_and_the_same_one_is_unchanged() {
        let image = pushed();
        let tagged = state(&format!("{REG}/todo-frontend:latest"), vec![]);
        let Decision::Change(plan) = decide(&svc(""), asked(&image, Some(100)), &tagged) else { panic!() };
        assert!(matches!(plan.action, Action::Register(_)));
        let pinned = state(&format!("{REG}/todo-frontend@{DIGEST}"), vec![]);
        assert!(matches!(decide(&svc(""), asked(&image, Some(100)), &pinned), Decision::Unchanged(_)));
        let forced = Asked { force: true, ..asked(&image, None) };
        let Decision::Change(plan) = decide(&svc(""), forced, &pinned) else { panic!() };
        assert_eq!(plan.action, Action::ForceNewDeployment, "redeploy rolls new tasks of what runs");
    }

    #[test]
    fn a_push_older_than_one_acted_on_is_superseded_and_a_manual_deploy_is_not() {
        let image = pushed();
        let mut s = state(&format!("{REG}/todo-frontend@sha256:{}", "2".repeat(64)), vec![]);
        let newer = PushActedOn { event_id: "evt-2".into(), tag: "latest".into(), digest: "sha256:2".into(), at: 500 };
        s.pushes = vec![newer];
        let Decision::Superseded(reason) = decide(&svc(""), asked(&image, Some(400)), &s) else { panic!() };
        assert!(
            reason.contains("todo-frontend:latest was deployed for push evt-2, an event 100 s after this one"),
            "{reason}"
        );
        // A later event deploys, whatever digest it names (a retag of an older build is new).
        assert!(matches!(decide(&svc(""), asked(&image, Some(600)), &s), Decision::Change(_)));
        // A manual deploy names its tag on purpose: it rolls out whatever runs.
        assert!(matches!(decide(&svc(""), asked(&image, None), &s), Decision::Change(_)));
    }

    #[test]
    fn a_push_time_on_the_running_task_definition_decides_nothing() {
        // Anyone with ecs:TagResource can set pushdeploy's push-time tag to the far future.
        let image = pushed();
        let future = plan::tags_for_copy(&[], Some(4_102_444_800), "td:1");
        let s = state(&format!("{REG}/todo-frontend@sha256:{}", "2".repeat(64)), future);
        assert!(matches!(decide(&svc(""), asked(&image, Some(400)), &s), Decision::Change(_)));
    }

    #[test]
    fn a_dry_run_says_what_deploy_would_do_and_a_wrong_image_is_rejected() {
        let image = pushed();
        let s = state(&format!("{REG}/todo-frontend:latest"), vec![]);
        let Decision::Planned(_, reason) = decide(&svc(""), Asked { dry_run: true, ..asked(&image, None) }, &s) else {
            panic!()
        };
        assert!(reason.starts_with("deploy would register a new revision of web:7 with 1 container(s)"), "{reason}");
        let other = state("docker.io/library/nginx:1", vec![]);
        let Decision::Rejected(reason) = decide(&svc(""), asked(&image, None), &other) else { panic!() };
        assert!(!reason.is_empty());
    }

    #[test]
    fn a_container_the_config_names_but_the_task_definition_lacks_is_rejected_naming_both() {
        let image = pushed();
        let s = state(&format!("{REG}/todo-frontend:latest"), vec![]);
        let renamed = svc("containers=['frontend']");
        let Decision::Rejected(reason) = decide(&renamed, asked(&image, Some(100)), &s) else { panic!() };
        assert!(reason.contains("container \"frontend\" is not in todo-frontend:7 (it has [\"web\"])"), "{reason}");
        assert!(reason.contains("fix `containers` in the config"), "{reason}");
        assert!(needs_person(&decide(&renamed, asked(&image, Some(100)), &s), asked(&image, Some(100))));
        // A plan of it says the same, to the operator who asked: nobody else needs to hear.
        let dry = Asked { dry_run: true, ..asked(&image, None) };
        assert!(matches!(decide(&renamed, dry, &s), Decision::Rejected(_)));
        assert!(!needs_person(&decide(&renamed, dry, &s), dry));
        // Routine answers need nobody.
        let fine = decide(&svc("containers=['web']"), asked(&image, Some(100)), &s);
        assert!(matches!(fine, Decision::Change(_)));
        assert!(!needs_person(&fine, asked(&image, Some(100))));
        let mut newer = state(&format!("{REG}/todo-frontend@sha256:{}", "2".repeat(64)), vec![]);
        newer.pushes =
            vec![PushActedOn { event_id: "evt-2".into(), tag: "latest".into(), digest: "sha256:2".into(), at: 500 }];
        let superseded = decide(&svc(""), asked(&image, Some(400)), &newer);
        assert!(matches!(superseded, Decision::Superseded(_)));
        assert!(!needs_person(&superseded, asked(&image, Some(400))));
    }

    #[test]
    fn a_base_that_changes_more_than_the_image_is_held_for_an_operator_when_asked_to() {
        let image = pushed();
        let mut s = state(&format!("{REG}/todo-frontend@sha256:{}", "2".repeat(64)), vec![]);
        let mut base = td(&[("web", &format!("{REG}/todo-frontend:latest"))]);
        base.task_definition_arn = Some("arn:aws:ecs:r:1:task-definition/web:9".into());
        base.task_role_arn = Some("arn:aws:iam::1:role/admin".into());
        s.base = Some(DescribedTaskDefinition { task_definition: base, tags: vec![] });
        let family = || svc("base='family'\ntrusted_registrants=['arn:aws:iam::123456789012:role/terraform']");
        let hold = svc(
            "base='family'\ntrusted_registrants=['arn:aws:iam::123456789012:role/terraform']\nhold_base_changes=true",
        );

        // Without the hold, the push deploys the base and says what else changes.
        let Decision::Change(plan) = decide(&family(), asked(&image, Some(100)), &s) else { panic!() };
        assert_eq!(plan.base_changes, ["taskRoleArn: (none) → \"arn:aws:iam::1:role/admin\""]);
        // With it, a push is held, naming every change; an operator's deploy goes ahead.
        let Decision::Held(_, reason) = decide(&hold, asked(&image, Some(100)), &s) else { panic!() };
        assert!(
            reason.starts_with(
                "held (hold_base_changes): its base web:9 changes more than the image: taskRoleArn (see base_changes); nothing was changed"
            ),
            "{reason}"
        );
        let operator = Asked { operator: true, ..asked(&image, None) };
        assert!(matches!(decide(&hold, operator, &s), Decision::Change(_)));
        let Decision::Planned(_, reason) = decide(&hold, Asked { dry_run: true, ..operator }, &s) else { panic!() };
        assert!(
            reason.ends_with("a push would be held (hold_base_changes): its base changes more than the image"),
            "{reason}"
        );
        // A base that changes only the image is never held.
        let mut same = s.clone();
        same.base.as_mut().unwrap().task_definition.task_role_arn = None;
        assert!(matches!(decide(&hold, asked(&image, Some(100)), &same), Decision::Change(_)));
    }

    fn rolled_back_record(digest: &str) -> DeploymentRecord {
        let mut r = crate::rules::rollback::tests::record(
            "ecs-svc-9",
            "td:9",
            crate::domain::record::Status::RolledBack,
            "2026-11-21T10:00:00Z",
        );
        r.digest = digest.into();
        r.reason = Some("GET /: status 500, expected 200".into());
        r
    }

    #[test]
    fn a_digest_pushdeploy_rolled_back_is_refused_unless_forced() {
        let image = pushed();
        let mut s = state(&format!("{REG}/todo-frontend@sha256:{}", "2".repeat(64)), vec![]);
        s.history = vec![rolled_back_record(DIGEST)];
        let Decision::Refused(_, why) = decide(&svc(""), asked(&image, Some(100)), &s) else { panic!() };
        assert!(why.starts_with(&format!("{DIGEST} (deployed as latest) was rolled back by pushdeploy")), "{why}");
        assert!(
            why.contains("(deployment ecs-svc-9): GET /: status 500")
                && why.contains("pushdeploy deploy frontend latest --force"),
            "{why}"
        );
        // An operator's deploy is refused the same way; with force it goes ahead.
        let operator = Asked { operator: true, ..asked(&image, None) };
        assert!(matches!(decide(&svc(""), operator, &s), Decision::Refused(..)));
        assert!(matches!(decide(&svc(""), Asked { allow_rolled_back: true, ..operator }, &s), Decision::Change(_)));
        // redeploy names its own way through.
        let redeploy = Asked { force: true, ..operator };
        let Decision::Refused(_, why) = decide(&svc(""), redeploy, &s) else { panic!() };
        assert!(why.contains("pushdeploy redeploy frontend --force"), "{why}");
        // plan says deploy would refuse it, and with force that it would go past the rollback.
        let Decision::Planned(_, why) = decide(&svc(""), Asked { dry_run: true, ..operator }, &s) else { panic!() };
        assert!(why.starts_with("deploy would refuse it: ") && why.contains("GET /: status 500"), "{why}");
        let forced = Asked { dry_run: true, allow_rolled_back: true, ..operator };
        let Decision::Planned(_, why) = decide(&svc(""), forced, &s) else { panic!() };
        assert!(why.starts_with("deploy would register") && why.contains("forced past the rollback of"), "{why}");
        // Another digest deploys as usual.
        s.history = vec![rolled_back_record(&format!("sha256:{}", "3".repeat(64)))];
        assert!(matches!(decide(&svc(""), asked(&image, Some(100)), &s), Decision::Change(_)));
    }

    #[test]
    fn what_runs_already_is_unchanged_never_refused() {
        let image = pushed();
        let mut s = state(&format!("{REG}/todo-frontend@{DIGEST}"), vec![]);
        s.history = vec![rolled_back_record(DIGEST)];
        assert!(matches!(decide(&svc(""), asked(&image, Some(100)), &s), Decision::Unchanged(_)));
    }

    #[test]
    fn redeploy_rolls_the_digest_that_runs_not_a_tag() {
        let pinned = format!("{REG}/todo-frontend@{DIGEST}");
        let current = td(&[("web", &pinned), ("envoy", "envoyproxy/envoy:v1")]);
        let image = running_image(&svc(""), &current, &[]).unwrap();
        assert_eq!((image.pinned_uri().unwrap(), image.tag.clone()), (pinned.clone(), None));
        // The tag is the one the newest record of that digest deployed it as.
        let mut deployed = crate::rules::rollback::tests::record(
            "ecs-svc-1",
            "td:1",
            crate::domain::record::Status::Verified,
            "2026-11-20T10:00:00Z",
        );
        deployed.digest = DIGEST.into();
        deployed.tag = "v1.4.2".into();
        let image = running_image(&svc(""), &current, &[deployed]).unwrap();
        assert_eq!(image.tag.as_deref(), Some("v1.4.2"));
        assert_eq!(image.digest.as_ref().map(|d| d.as_str()), Some(DIGEST));
        // A revision naming a tag: that tag (ECS resolves it when it starts tasks); none is latest.
        let tagged = td(&[("web", &format!("{REG}/todo-frontend:v2"))]);
        let image = running_image(&svc(""), &tagged, &[]).unwrap();
        assert_eq!((image.tag.as_deref(), image.digest.is_none()), (Some("v2"), true));
        let bare = td(&[("web", &format!("{REG}/todo-frontend"))]);
        assert_eq!(running_image(&svc(""), &bare, &[]).unwrap().tag.as_deref(), Some("latest"));
        // Two containers on different builds, or none from the repository: refused with the reason.
        let split = td(&[("web", &pinned), ("web2", &format!("{REG}/todo-frontend:latest"))]);
        let why = running_image(&svc(""), &split, &[]).unwrap_err();
        assert!(why.contains("containers web and web2 of todo-frontend:7 run different images"), "{why}");
        let other = td(&[("web", "docker.io/library/nginx:1")]);
        assert!(running_image(&svc(""), &other, &[])
            .unwrap_err()
            .contains("no container in todo-frontend:7 runs an image from todo-frontend"));
        let named = svc("containers=['envoy']");
        assert_eq!(running_image(&named, &current, &[]).unwrap().repository, "envoyproxy/envoy");
        assert!(running_image(&svc("containers=['gone']"), &current, &[])
            .unwrap_err()
            .contains("container \"gone\" is not in"));
    }
}
