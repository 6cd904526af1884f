//! A manual `rollback`: return a service to its last verified deployment before the current one.
//!
//! Crash-safe as a deploy is: the rollback's record rides in the service's lease before
//! UpdateService and is written before the lease is let go, so an invocation that dies anywhere
//! leaves a lease its re-run (or the next rollout) finishes, and the re-run converges on the same
//! target instead of going a step further back.

use tracing::info;

use super::holding::still_busy;
use super::rollback_pick::{refused, Picked, Refusal, RollbackAsk};
use super::{Deployer, Invocation};
use crate::config::ServiceConfig;
use crate::domain::error::Error;
use crate::domain::lease::Lease;
use crate::domain::names::short_name;
use crate::domain::record::{self, DeploymentRecord, RollbackOf, TriggerRef};
use crate::domain::rollback_request::RollbackRequest;
use crate::flows::lease::{HeldLease, LeaseTaken};
use crate::flows::recovery::Adopted;
use crate::flows::rollback::{self, Rollback};
use crate::rules::outcome::{DeploymentSummary, Outcome};
use crate::rules::rollback::{NotPrepared, Prepared};

impl Deployer {
    /// Takes the service's lease (waiting for a rollout in flight), finishes a dead holder's
    /// rollout, rolls back, writes the record and only then lets go.
    pub(super) async fn on_rollback(
        &self,
        svc: &ServiceConfig,
        invocation: Invocation<'_>,
        ask: RollbackAsk<'_>,
    ) -> Result<DeploymentSummary, Error> {
        if ask.dry_run {
            return self.plan_rollback(svc, ask, invocation).await;
        }
        let request_id = invocation.request_id;
        let mut taken = self.take_lease(svc, invocation, request_id, "").await?;
        let result = match &mut taken {
            LeaseTaken::Busy(other) => return Err(still_busy(svc, other)),
            LeaseTaken::Held(held, stale) => match stale.take() {
                Some(stale) => self.after_stale(svc, (request_id, ask), held, *stale).await,
                None => self.manual_rollback(svc, (request_id, ask), held, None).await,
            },
        };
        // The one failure class of a rollback, whichever started it.
        let result = result.map_err(rollback::failed);
        self.let_go(svc, &taken, &result).await;
        result
    }

    /// Finishes what a dead or failed holder left in flight, then rolls back, unless what it left
    /// was a rollback ECS already runs: that one is this rollback, and the re-run converges on it.
    async fn after_stale(
        &self,
        svc: &ServiceConfig,
        asked: (&str, RollbackAsk<'_>),
        held: &mut HeldLease,
        stale: Lease,
    ) -> Result<DeploymentSummary, Error> {
        let request_id = asked.0;
        let rollback_in_flight = stale.pending.clone().filter(DeploymentRecord::is_rollback);
        let adopted = self.service_leases().adopt(stale).await?;
        match (adopted, rollback_in_flight) {
            (Adopted::Recorded { task_definition }, Some(pending)) if task_definition == pending.task_definition => {
                Ok(converged(svc, request_id, &pending))
            }
            // It died before UpdateService: the same choice is made again, reusing its pinned copy.
            (_, Some(pending)) => self.manual_rollback(svc, asked, held, Some(pending.task_definition)).await,
            (_, None) => self.manual_rollback(svc, asked, held, None).await,
        }
    }

    /// The one rollback ([`crate::flows::rollback`]), as the operator's `rollback` runs it.
    pub(super) fn rollback(&self) -> Rollback<'_> {
        Rollback { ecs: &self.ecs, records: &self.records, leases: &self.leases }
    }

    /// Returns the service to the revision [`Deployer::pick`] chooses. `earlier` is the revision a
    /// dead attempt prepared (a pinned copy is reused if it is that very copy).
    async fn manual_rollback(
        &self,
        svc: &ServiceConfig,
        (request_id, ask): (&str, RollbackAsk<'_>),
        held: &mut HeldLease,
        earlier: Option<String>,
    ) -> Result<DeploymentSummary, Error> {
        match self.manual_target(svc, ask, earlier).await? {
            Ok(chosen) => self.return_to(svc, request_id, held, chosen).await,
            Err(refusal) => Ok(refused(svc, request_id, refusal)),
        }
    }

    /// Where the service returns and what it runs there (a tag-based revision pinned to the
    /// digests ECS resolved, as every rollback pins it); `Err` says why it does not move.
    async fn manual_target(
        &self,
        svc: &ServiceConfig,
        ask: RollbackAsk<'_>,
        earlier: Option<String>,
    ) -> Result<Result<Chosen, Refusal>, Error> {
        let picked = match self.pick(svc, ask).await? {
            Ok(picked) => picked,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let prepared =
            match self.rollback().prepare(&picked.revision, &picked.identity.containers, earlier.as_deref()).await {
                Ok(p) => p,
                Err(NotPrepared::Aws(e)) => return Err(e.into()),
                Err(NotPrepared::Unsafe(why)) => {
                    return Ok(Err(Refusal::plain(format!("{why}; nothing changed (deploy an older tag instead)"))));
                }
            };
        let mut why = picked.why;
        if !prepared.pinned.is_empty() {
            why.push_str(&format!(
                "; registered {} pinned to what it ran: {}",
                short_name(&prepared.task_definition),
                prepared.pinned.join(", ")
            ));
        }
        let Picked { current, identity, restores, request, .. } = picked;
        Ok(Ok(Chosen { current, prepared, identity, restores, why, request }))
    }

    /// Moves the service to the chosen revision: the rollback's record in the lease first, then
    /// UpdateService, then the record.
    async fn return_to(
        &self,
        svc: &ServiceConfig,
        request_id: &str,
        held: &mut HeldLease,
        chosen: Chosen,
    ) -> Result<DeploymentSummary, Error> {
        let Chosen { current, prepared, identity, restores, why, request } = chosen;
        let (image_uri, tag, digest) = match &restores {
            Some(r) => (r.image_uri.clone(), r.tag.clone(), r.digest.clone()),
            None => (prepared.pinned.first().cloned().unwrap_or_default(), String::new(), String::new()),
        };
        let mut rec = DeploymentRecord::rollback(RollbackOf {
            service_of: &identity,
            trigger: TriggerRef::Manual { action: "rollback".into(), request_id: request_id.to_string() },
            from: &current,
            to: &prepared.task_definition,
            image_uri,
            tag,
            digest,
            restores: restores.as_ref().map(|r| r.id.as_str()),
            ecs_deployment_id: None,
            reason: why.clone(),
        })?;
        rec.requested = Some(request);
        // In the lease before the service moves: whoever takes it after a crash finds the rollback
        // ECS runs and records it.
        held.lease.pending = Some(rec.clone());
        self.service_leases().note(held).await?;
        let ecs_deployment_id =
            self.ecs.update_service(&svc.cluster, &svc.service, &prepared.task_definition, false).await?;
        rec.id = record::record_id(&ecs_deployment_id)?;
        rec.ecs_deployment_id = ecs_deployment_id.clone();
        // Should the write fail, the lease is handed over carrying the complete record.
        held.lease.pending = Some(rec.clone());
        let key = self.records().put(&rec).await?;
        info!(
            service = %svc.name,
            image = %rec.image_uri,
            event_id = %request_id,
            deployment_id = %rec.id,
            task_definition = %short_name(&rec.task_definition),
            outcome = "rolled_back",
            "decision"
        );
        let mut d =
            DeploymentSummary::new(&svc.name, svc.target(), Outcome::RolledBack, format!("rolling back to {why}"));
        d.image = Some(rec.image_uri.clone()).filter(|i| !i.is_empty());
        d.action = Some("rollback");
        d.previous_task_definition = Some(current);
        d.task_definition = Some(rec.task_definition.clone());
        d.ecs_deployment_id = Some(ecs_deployment_id);
        d.written = vec![key];
        Ok(d)
    }
}

/// A manual rollback's target, prepared.
struct Chosen {
    /// What the service runs now.
    current: String,
    /// The revision it returns to.
    prepared: Prepared,
    /// The record whose service identity the rollback's record shares.
    identity: DeploymentRecord,
    /// The verified deployment it restores, if any.
    restores: Option<DeploymentRecord>,
    /// One line for the record and the answer.
    why: String,
    /// The request, as the record keeps it.
    request: RollbackRequest,
}

/// The answer of a re-run that found its earlier attempt's rollback running and recorded it.
fn converged(svc: &ServiceConfig, request_id: &str, pending: &DeploymentRecord) -> DeploymentSummary {
    let reason = format!(
        "rolled back to {}: an earlier rollback ({}) had moved the service before its invocation ended, and its record is written now; {}",
        short_name(&pending.task_definition),
        pending.trigger.id(),
        pending.reason.as_deref().unwrap_or_default()
    );
    info!(service = %svc.name, event_id = %request_id, task_definition = %short_name(&pending.task_definition), outcome = "rolled_back", reason = %reason, "decision");
    let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::RolledBack, reason);
    d.image = Some(pending.image_uri.clone()).filter(|i| !i.is_empty());
    d.action = Some("rollback");
    d.previous_task_definition = Some(pending.previous_task_definition.clone());
    d.task_definition = Some(pending.task_definition.clone());
    d
}
