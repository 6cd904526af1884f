//! The rollout decision: from a push (or a manual action) and the service as read, what the
//! rollout does. Pure: no AWS, tested below without any server.

use crate::aws::ecs::DescribedTaskDefinition;
use crate::base::PassedOver;
use crate::config::ServiceConfig;
use crate::error::InputError;
use crate::freshness::{self, PushActedOn};
use crate::image::ImageRef;
use crate::plan::{self, Action, ServicePlan};
use crate::taskdef::short_name;

/// A service's state as read before deciding.
#[derive(Debug, Clone)]
pub(super) struct ServiceState {
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
    /// For a push: the pushes of the repository the service's recent records say it acted on.
    pub pushes: Vec<PushActedOn>,
}

/// What is asked of the service.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked<'a> {
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
}

/// What the rollout does.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Decision {
    /// The service already acted on a push whose event came after this one's.
    Superseded(String),
    /// This image cannot be rolled out to this service (no matching container, no digest).
    Rejected(String),
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
pub(super) fn decide(svc: &ServiceConfig, asked: Asked<'_>, state: &ServiceState) -> Decision {
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
            crate::taskdef::changed_fields(&plan.base_changes).join(", ")
        )
    });
    if asked.dry_run {
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
        if held.is_some() {
            reason.push_str("; a push would be held (hold_base_changes): its base changes more than the image");
        }
        return Decision::Planned(plan, reason);
    }
    if let Some(reason) = held.filter(|_| !asked.operator) {
        return Decision::Held(plan, reason);
    }
    match plan.action {
        Action::Unchanged => Decision::Unchanged(plan),
        _ => Decision::Change(plan),
    }
}

/// `family:revision` of the base, for reasons.
fn base_name(state: &ServiceState) -> &str {
    state.base.as_ref().and_then(|b| b.task_definition.task_definition_arn()).map_or("(none)", short_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::tests::{pushed, svc, td, DIGEST, REG};
    use aws_sdk_ecs::types::Tag;

    fn state(image: &str, tags: Vec<Tag>) -> ServiceState {
        ServiceState {
            current: DescribedTaskDefinition { task_definition: td(&[("web", image)]), tags },
            current_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
            previous_definitions: None,
            base: None,
            passed_over: Vec::new(),
            pushes: Vec::new(),
        }
    }

    fn asked(image: &ImageRef, event_time: Option<i64>) -> Asked<'_> {
        Asked { image, event_time, force: false, dry_run: false, operator: false }
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
}
