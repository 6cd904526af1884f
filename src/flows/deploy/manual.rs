//! An operator's action (`deploy`, `plan`, `redeploy`, `rollback`): the service it names, then
//! the action's own flow. `deploy` and `plan` of a tag are here: the lease (none for a plan)
//! beside ECR's answer for the tag, then the rollout of the digest it names.

use super::rollback_pick::RollbackAsk;
use super::{collect, Deployer, Invocation, Request};
use crate::config::ServiceConfig;
use crate::domain::error::Error;
use crate::domain::image::{truncate, ImageRef};
use crate::domain::record::TriggerRef;
use crate::inbound::{ManualAction, RollbackTo};
use crate::rules::outcome::{Outcome, Summary};
use crate::rules::pause::Asked;

/// What `deploy` or `plan` asked of a tag.
#[derive(Clone, Copy)]
struct TagAction<'a> {
    tag: &'a str,
    dry_run: bool,
    allow_rolled_back: bool,
}

impl Deployer {
    /// Handles an operator's action on one configured service.
    pub(super) async fn on_manual(&self, action: &ManualAction, invocation: Invocation<'_>) -> Result<Summary, Error> {
        let Some(svc) = self.config.service(action.service()) else {
            if let Some(u) = self.config.unreadable_named(action.service()) {
                tracing::warn!(service = %u.name(), outcome = "config_unreadable", reason = %u.problem, "decision");
                return Ok(Summary::of(vec![crate::rules::unreadable::refused(u, None)]));
            }
            let known: Vec<&str> = self.config.services.iter().map(|s| s.name.as_str()).collect();
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("unknown service {:?}: configured services are {known:?}", truncate(action.service())),
            ));
        };
        // The operators' pauses: a paused service takes no manual change either (a plan says so).
        let asked = if matches!(action, ManualAction::Plan { .. }) { Asked::Plan } else { Asked::Change };
        if let Some(answer) = self.paused_answer(&self.read_pauses(&[svc]).await?, svc, asked) {
            return Ok(Summary::of(vec![answer]));
        }
        let (tag, dry_run, allow_rolled_back) = match action {
            ManualAction::Redeploy { force, .. } => {
                let result = self.on_redeploy(svc, *force, invocation).await;
                return collect(vec![(svc, result)]);
            }
            ManualAction::Deploy { tag, force, .. } => (Some(tag.as_str()), false, *force),
            ManualAction::Plan { tag, force, .. } => (tag.as_deref(), true, *force),
            ManualAction::Rollback { to, force, dry_run, requested_by, .. } => {
                let to = match to.as_deref().map(RollbackTo::parse).transpose() {
                    Ok(to) => to,
                    Err(e) => return Ok(Summary::only(Outcome::Rejected, e.0)),
                };
                let ask = RollbackAsk {
                    to: to.as_ref(),
                    force: *force,
                    dry_run: *dry_run,
                    requested_by: requested_by.as_deref(),
                };
                let result = self.on_rollback(svc, invocation, ask).await;
                return collect(vec![(svc, result)]);
            }
        };
        let Some(tag) = tag.or_else(|| svc.redeploy_tag()) else {
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("service {}: every pattern in `tags` has a wildcard; name the tag with {{\"action\": \"deploy\", \"tag\": …}}", svc.name),
            ));
        };
        let trigger =
            TriggerRef::Manual { action: action.verb().to_string(), request_id: invocation.request_id.to_string() };
        self.on_tag(svc, TagAction { tag, dry_run, allow_rolled_back }, trigger, invocation).await
    }

    /// `deploy` or `plan` of a tag: the lease (a plan takes none) beside ECR's answer for the tag,
    /// then the rollout of the digest it names.
    async fn on_tag(
        &self,
        svc: &ServiceConfig,
        asked: TagAction<'_>,
        trigger: TriggerRef,
        invocation: Invocation<'_>,
    ) -> Result<Summary, Error> {
        let tag = asked.tag;
        let lease = async {
            if asked.dry_run {
                Ok(None)
            } else {
                self.take_lease(svc, invocation, trigger.id(), "").await.map(Some)
            }
        };
        let (tagged, lease) = tokio::join!(self.ecr.resolve_tag(&svc.repository, tag), lease);
        let lease = lease?;
        let tagged = match tagged {
            Ok(Some(t)) => t,
            other => {
                if let Some(l) = &lease {
                    self.release(svc, l, None).await;
                }
                other?;
                return Ok(Summary::only(
                    Outcome::Rejected,
                    format!("tag {}:{tag} does not exist in ECR", svc.repository),
                ));
            }
        };
        let image = ImageRef {
            registry: ImageRef::ecr_registry(&tagged.registry_id, &self.region),
            repository: svc.repository.clone(),
            tag: Some(tag.to_string()),
            digest: Some(tagged.digest.clone()),
        };
        let req = Request {
            invocation,
            trigger,
            image: &image,
            pushed_at: tagged.pushed_at.clone(),
            event_time: None,
            force: false,
            dry_run: asked.dry_run,
            allow_rolled_back: asked.allow_rolled_back,
        };
        let result = match lease {
            Some(lease) => self.under_lease_boxed(svc, Ok(lease), None, req).await,
            None => match self.read_state(svc, false).await {
                Ok(state) => self.rollout_boxed(svc, state, req, None).await,
                Err(e) => Err(e),
            },
        };
        collect(vec![(svc, result)])
    }
}
