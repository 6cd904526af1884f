//! A manual `rollback`: return a service to its last verified deployment before the current one.
//!
//! Crash-safe as a deploy is: the rollback's record rides in the service's lease before
//! UpdateService and is written before the lease is let go, so an invocation that dies anywhere
//! leaves a lease its re-run (or the next rollout) finishes, and the re-run converges on the same
//! target instead of going a step further back.

use tracing::{info, warn};

use super::holding::{still_busy, HeldLease, LeaseTaken};
use super::{Deployer, Invocation};
use crate::config::ServiceConfig;
use crate::domain::names::short_name;
use crate::error::Error;
use crate::lease::Lease;
use crate::outcome::{DeploymentSummary, Outcome};
use crate::record::{self, DeploymentRecord, RollbackOf, TriggerRef};
use crate::recovery::{self, Adopted};
use crate::rollback;
use crate::rollback_revision::{self, NotPrepared};

/// How many of a service's most recently written records a manual rollback reads.
const RECORDS_SCANNED: usize = 50;

impl Deployer {
    /// Takes the service's lease (waiting for a rollout in flight), finishes a dead holder's
    /// rollout, rolls back, writes the record and only then lets go.
    pub(super) async fn on_rollback(
        &self,
        svc: &ServiceConfig,
        invocation: Invocation<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let request_id = invocation.request_id;
        let mut taken = self.take_lease(svc, invocation, request_id, "").await?;
        let result = match &mut taken {
            LeaseTaken::Busy(other) => return Err(still_busy(svc, other)),
            LeaseTaken::Held(held, stale) => match stale.take() {
                Some(stale) => self.after_stale(svc, request_id, held, *stale).await,
                None => self.manual_rollback(svc, request_id, held, None).await,
            },
        };
        self.let_go(svc, &taken, &result).await;
        result
    }

    /// Finishes what a dead or failed holder left in flight, then rolls back, unless what it left
    /// was a rollback ECS already runs: that one is this rollback, and the re-run converges on it.
    async fn after_stale(
        &self,
        svc: &ServiceConfig,
        request_id: &str,
        held: &mut HeldLease,
        stale: Lease,
    ) -> Result<DeploymentSummary, Error> {
        let rollback_in_flight = stale.pending.clone().filter(DeploymentRecord::is_rollback);
        let adopted = recovery::adopt(&self.ecs, &self.records(), stale).await?;
        match (adopted, rollback_in_flight) {
            (Adopted::Recorded { task_definition }, Some(pending)) if task_definition == pending.task_definition => {
                Ok(converged(svc, request_id, &pending))
            }
            // It died before UpdateService: the same choice is made again, reusing its pinned copy.
            (_, Some(pending)) => self.manual_rollback(svc, request_id, held, Some(pending.task_definition)).await,
            (_, None) => self.manual_rollback(svc, request_id, held, None).await,
        }
    }

    /// Returns the service to the revision [`rollback::choose_target`] names. `earlier` is the
    /// revision a dead attempt prepared (a pinned copy is reused if it is that very copy).
    async fn manual_rollback(
        &self,
        svc: &ServiceConfig,
        request_id: &str,
        held: &mut HeldLease,
        earlier: Option<String>,
    ) -> Result<DeploymentSummary, Error> {
        let records = self.records();
        let (current, recent, ran) = tokio::join!(
            self.ecs.current_task_definition(&svc.cluster, &svc.service),
            records.recent(&svc.cluster, &svc.service, RECORDS_SCANNED),
            self.ecs.ran_revisions(&svc.cluster, &svc.service)
        );
        let (current, recent, ran) = (current?, recent?, ran?);
        // The revision the running one replaced, which ECS's history may not hold (deployed before
        // it kept service revisions): its tasks, running or just replaced, show what it ran.
        let replaced = recent
            .iter()
            .filter(|r| r.task_definition == current && !r.is_rollback())
            .max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)))
            .map(|r| r.previous_task_definition.clone())
            .unwrap_or_default();
        let ran = self.ecs.with_tasks_of(&svc.cluster, &svc.service, ran, &replaced).await?;
        let target = match rollback::choose_target(&recent, &current, &ran) {
            Ok(found) => found,
            Err(reason) => return Ok(refused(svc, request_id, format!("{reason}; nothing changed"))),
        };
        // The record shares the service's identity (name, repository, containers) with the
        // deployment it restores or, returning to a revision pushdeploy never judged, the newest one.
        let Some(identity) = target.restores.or_else(|| newest(&recent)) else {
            let reason = format!(
                "pushdeploy has no record of this service to roll back from ({} runs); nothing changed",
                short_name(&current)
            );
            return Ok(refused(svc, request_id, reason));
        };
        let prepared = match rollback_revision::prepare(
            &self.ecs,
            target.revision,
            &identity.containers,
            earlier.as_deref(),
        )
        .await
        {
            Ok(p) => p,
            Err(NotPrepared::Aws(e)) => return Err(e.into()),
            Err(NotPrepared::Unsafe(why)) => {
                let reason = format!("{why}; nothing changed (deploy an older tag instead)");
                return Ok(refused(svc, request_id, reason));
            }
        };
        let mut why = target.why.clone();
        if !prepared.pinned.is_empty() {
            why.push_str(&format!(
                "; registered {} pinned to what it ran: {}",
                short_name(&prepared.task_definition),
                prepared.pinned.join(", ")
            ));
        }
        let (image_uri, tag, digest) = match target.restores {
            Some(r) => (r.image_uri.clone(), r.tag.clone(), r.digest.clone()),
            None => (prepared.pinned.first().cloned().unwrap_or_default(), String::new(), String::new()),
        };
        let mut rec = DeploymentRecord::rollback(RollbackOf {
            service_of: identity,
            trigger: TriggerRef::Manual { action: "rollback".into(), request_id: request_id.to_string() },
            from: &current,
            to: &prepared.task_definition,
            image_uri,
            tag,
            digest,
            restores: target.restores.map(|r| r.id.as_str()),
            ecs_deployment_id: None,
            reason: why.clone(),
        })?;
        // In the lease before the service moves: whoever takes it after a crash finds the rollback
        // ECS runs and records it.
        held.lease.pending = Some(rec.clone());
        held.etag = self.leases().rewrite(&held.key, &held.lease, &held.etag).await?;
        let ecs_deployment_id =
            self.ecs.update_service(&svc.cluster, &svc.service, &prepared.task_definition, false).await?;
        rec.id = record::record_id(&ecs_deployment_id)?;
        rec.ecs_deployment_id = ecs_deployment_id.clone();
        // Should the write fail, the lease is handed over carrying the complete record.
        held.lease.pending = Some(rec.clone());
        let key = records.put(&rec).await?;
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

/// The service's most recently started record.
fn newest(records: &[DeploymentRecord]) -> Option<&DeploymentRecord> {
    records.iter().max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)))
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

/// The answer to a manual rollback that was refused, changing nothing.
fn refused(svc: &ServiceConfig, request_id: &str, why: String) -> DeploymentSummary {
    let reason = format!("rollback of {}: {why}", svc.name);
    warn!(service = %svc.name, request_id, outcome = "rejected", reason = %reason, "decision");
    DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason)
}
