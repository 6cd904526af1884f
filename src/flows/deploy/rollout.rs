//! One service's rollout, under its lease ([`super::holding`]): decide
//! ([`crate::rules::decision`]), then apply the decision: a change goes to [`super::change`];
//! every other decision is answered here, changing nothing.

use futures_util::future::BoxFuture;
use tracing::{info, warn};

use super::decision::{decide, needs_person, source_of, Asked, Decision, ServiceState};
use super::{Deployer, Request};
use crate::config::ServiceConfig;
use crate::domain::error::Error;
use crate::domain::record::TriggerRef;
use crate::flows::lease::HeldLease;
use crate::rules::base;
use crate::rules::freshness;
use crate::rules::outcome::{DeploymentSummary, Outcome};
use crate::rules::pass_role;
use crate::rules::plan::{self, Action, ServicePlan};
use crate::rules::taskdef;

// `super::rollout::pushes_of` (the lease step reads it from here).
pub(super) use crate::rules::decision::pushes_of;

impl Deployer {
    /// [`Deployer::rollout`] on the heap, built in a frame that returns at once (see
    /// [`Deployer::under_lease_boxed`]).
    pub(super) fn rollout_boxed<'a>(
        &'a self,
        svc: &'a ServiceConfig,
        state: ServiceState,
        req: Request<'a>,
        lease: Option<&'a mut HeldLease>,
    ) -> BoxFuture<'a, Result<DeploymentSummary, Error>> {
        Box::pin(self.rollout(svc, state, req, lease))
    }

    /// Decides and carries out one service's rollout; `lease` is ours when the action changes things.
    pub(super) async fn rollout(
        &self,
        svc: &ServiceConfig,
        state: ServiceState,
        req: Request<'_>,
        lease: Option<&mut HeldLease>,
    ) -> Result<DeploymentSummary, Error> {
        let asked = asked_of(&req);
        log_base_choice(svc, &req, &state);
        let decision = decide(svc, asked, &state);
        let attention = needs_person(&decision, asked);
        match decision {
            Decision::Change(plan) => self.change(svc, &plan, state, req, lease).await,
            Decision::Planned(plan, reason) => Ok(self.planned(svc, &plan, &state, &req, reason).await),
            other => Ok(unchanging(svc, other, state, &req, attention)),
        }
    }

    /// `plan`'s answer: what deploy would do, and how ECS would roll it out.
    async fn planned(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        state: &ServiceState,
        req: &Request<'_>,
        reason: String,
    ) -> DeploymentSummary {
        log_decision(svc, req, "planned", &reason);
        let mut summary = summary_of(svc, plan, state);
        summary.reason = with_base_note(reason, state);
        if let (Some(roles), Action::Register(copy)) = (&self.passable_roles, &plan.action) {
            summary.warnings = pass_role::unpassable(copy.task_role_arn(), copy.execution_role_arn(), roles);
        }
        // A plan reads how ECS will roll it out; a failed read only leaves that out.
        match self.ecs.rollout(&svc.cluster, &svc.service).await {
            Ok(rollout) => summary.ecs_rollout = Some(plan::rollout_note(svc, &rollout, self.verify_in_vpc)),
            Err(err) => warn!(service = %svc.name, error = %err, "could not read the service's deployment strategy"),
        }
        summary
    }
}

/// What the request asks of the service, as the decision reads it.
fn asked_of<'a>(req: &Request<'a>) -> Asked<'a> {
    Asked {
        image: req.image,
        // Only a push can be superseded: a manual deploy names its tag on purpose.
        event_time: req.event_time.as_deref().and_then(freshness::whole_seconds).filter(|_| req.is_push()),
        force: req.force,
        dry_run: req.dry_run,
        operator: matches!(req.trigger, TriggerRef::Manual { .. }),
        allow_rolled_back: req.allow_rolled_back,
    }
}

/// The answer to a decision that changes nothing (superseded, rejected, refused, held,
/// unchanged); `attention` is whether a person must hear of it.
fn unchanging(
    svc: &ServiceConfig,
    decision: Decision,
    state: ServiceState,
    req: &Request<'_>,
    attention: bool,
) -> DeploymentSummary {
    let rejected = |plan: &ServicePlan, reason: String| {
        let mut summary = summary_of(svc, plan, &state);
        summary.outcome = Outcome::Rejected;
        summary.reason = reason;
        summary.needs_attention = attention;
        summary
    };
    match decision {
        Decision::Superseded(reason) => {
            log_decision(svc, req, "superseded", &reason);
            let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Superseded, reason);
            d.image = req.image.pinned_uri();
            d
        }
        Decision::Rejected(reason) => {
            log_rejected(svc, req, &reason);
            let mut summary = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason);
            // No push of this service deploys until a person fixes the config or the task
            // definition: the topic and the ActionNeeded metric say so. A `plan` only asked.
            summary.needs_attention = attention;
            summary
        }
        Decision::Refused(plan, reason) => {
            let summary = rejected(&plan, format!("{reason}; nothing was changed"));
            log_rejected(svc, req, &summary.reason);
            summary
        }
        // An operator must look at the changes and deploy them: the topic says so.
        Decision::Held(plan, reason) => {
            let summary = rejected(&plan, with_base_note(reason, &state));
            log_held(svc, req, &summary.reason);
            summary
        }
        Decision::Unchanged(plan) => {
            log_decision(svc, req, "unchanged", "");
            let mut summary = summary_of(svc, &plan, &state);
            summary.outcome = Outcome::Unchanged;
            summary.reason = with_base_note(format!("already runs {}", plan.image_uri), &state);
            summary.task_definition = Some(state.current_arn);
            summary
        }
        Decision::Planned(..) | Decision::Change(_) => unreachable!("answered by the rollout itself"),
    }
}

/// The answer's description of a plan against what runs.
pub(super) fn summary_of(svc: &ServiceConfig, plan: &ServicePlan, state: &ServiceState) -> DeploymentSummary {
    let mut summary = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Planned, "");
    summary.image = Some(plan.image_uri.clone());
    summary.action = Some(plan.action.name());
    summary.changes = plan.changes.clone();
    summary.previous_task_definition = Some(state.current_arn.clone());
    if let Action::Register(copy) = &plan.action {
        summary.base = Some(source_of(state).0);
        summary.diff = taskdef::differences(&state.current.task_definition, copy);
    }
    summary.base_changes = plan.base_changes.clone();
    summary.passed_over = state.passed_over.clone();
    summary
}

/// Logs a decision that changes nothing.
fn log_decision(svc: &ServiceConfig, req: &Request<'_>, outcome: &str, reason: &str) {
    info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome, reason, "decision");
}

/// Logs a rejection: a refused push, or one the config and the task definition disagree on.
fn log_rejected(svc: &ServiceConfig, req: &Request<'_>, reason: &str) {
    warn!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "rejected", reason = %reason, "decision");
}

/// Logs a push held for an operator (`hold_base_changes`).
fn log_held(svc: &ServiceConfig, req: &Request<'_>, reason: &str) {
    warn!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "rejected", reason, "decision");
}

/// Logs the base a `base = "family"` rollout copies and each newer revision it passes over. Kept
/// out of [`Deployer::rollout`]'s body: in a debug build every tracing call widens the frame of the
/// async function it is in, and a rollout's frames nest deep.
fn log_base_choice(svc: &ServiceConfig, req: &Request<'_>, state: &ServiceState) {
    for p in &state.passed_over {
        warn!(
            service = %svc.name,
            image = %req.image,
            event_id = %req.trigger.id(),
            task_definition = %p.task_definition,
            registered_by = p.registered_by.as_deref().unwrap_or("(none)"),
            reason = %p.reason,
            "passed over a newer revision of the family: not a base"
        );
    }
    if let Some(b) = &state.base {
        info!(
            service = %svc.name,
            image = %req.image,
            event_id = %req.trigger.id(),
            base = b.task_definition.task_definition_arn().unwrap_or_default(),
            registered_by = b.task_definition.registered_by().unwrap_or_default(),
            "base: the family's newest revision from a trusted registrant"
        );
    }
}

/// `reason`, with the revisions passed over named ([`base::with_note`]).
pub(super) fn with_base_note(reason: String, state: &ServiceState) -> String {
    let base = state.base.as_ref().and_then(|b| b.task_definition.task_definition_arn());
    base::with_note(reason, base, &state.current_arn, &state.passed_over)
}
