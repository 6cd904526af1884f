//! Apply a change: register the copy (if any), put the rollout in the lease, UpdateService, then
//! write the record, built once from the decision ([`crate::rules::started`]), and the artifacts.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::decision::{source_of, ServiceState};
use super::rollout::{summary_of, with_base_note};
use super::{Deployer, Request};
use crate::config::ServiceConfig;
use crate::domain::error::Error;
use crate::domain::names::short_name;
use crate::domain::record::{self, DeploymentRecord};
use crate::flows::lease::HeldLease;
use crate::rules::outcome::{DeploymentSummary, Outcome};
use crate::rules::plan::{self, Action, ServicePlan};
use crate::rules::rolled_back::{self, RolledBack};
use crate::rules::started::Started;

impl Deployer {
    /// Carries out `plan` (decided against `state`): the update beside the artifacts and the
    /// digests the service runs now; then the record, written before the lease is let go.
    pub(super) async fn change(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        state: ServiceState,
        req: Request<'_>,
        lease: Option<&mut HeldLease>,
    ) -> Result<DeploymentSummary, Error> {
        let summary = summary_of(svc, plan, &state);
        let (updated, artifacts, captured) = tokio::join!(
            self.update(svc, plan, &state, &req, lease),
            // A pinned service plans from its task definition, never from the artifacts, so they
            // are written alongside Register and UpdateService (CodePipeline, too, writes them
            // before it deploys; should the rollout fail, its retry deploys the same digest). A
            // tag-based service plans from them, so they follow the rollout.
            self.artifacts_beside(svc, plan),
            // What the service runs now, digest by digest, for a rollback to pin to: off the
            // critical path, beside the change (ECS keeps it in the revision, so UpdateService
            // cannot race it).
            self.digests_beside(svc, plan, &state)
        );
        let (started, ecs_deployment_id, lease) = updated?;
        let record = started.record(record::record_id(&ecs_deployment_id)?, ecs_deployment_id, captured);
        let written = match lease {
            Some(held) => self.write_and_release(&record, artifacts, held).await,
            None => self.write_remaining(&record, artifacts).await,
        }?;
        Ok(started_answer(summary, svc, plan, &state, &req, record, written))
    }

    /// Registers the copy (if any) and updates the service; returns the rollout as started, the
    /// id of the deployment ECS took and the lease, still held.
    async fn update<'a, 'l>(
        &self,
        svc: &'a ServiceConfig,
        plan: &'a ServicePlan,
        state: &'a ServiceState,
        req: &'a Request<'_>,
        mut lease: Option<&'l mut HeldLease>,
    ) -> Result<(Started<'a>, String, Option<&'l mut HeldLease>), Error> {
        let task_definition = match &plan.action {
            Action::Register(td) => {
                // ECR's push time, for the copy's display tag only: it orders nothing.
                let pushed_at = req.pushed_at.as_deref().and_then(record::epoch_seconds).map(|s| s as i64);
                let (source_arn, source_tags) = source_of(state);
                let tags = plan::tags_for_copy(source_tags, pushed_at, &source_arn);
                self.ecs.register_task_definition(td, &tags).await?
            }
            _ => state.current_arn.clone(),
        };
        let times = (req.pushed_at.as_deref(), req.event_time.as_deref());
        let started =
            Started::of_plan(svc, req.image, &req.trigger, times, plan, state, task_definition.clone(), record::now());
        if let Some(held) = lease.as_deref_mut() {
            // A crash taker tells a rollout happened by the service moving to a new revision with
            // the pending image. Where that cannot tell (no lease pending yet: a manual action;
            // or no new revision: force-new-deployment), it needs the revision first.
            let known = held.lease.pending.as_ref().is_some_and(|p| task_definition != p.previous_task_definition);
            if !known {
                held.lease.pending = Some(started.pending());
                held.etag = self.leases().rewrite(&held.key, &held.lease, &held.etag).await?;
            }
        }
        // Forced only where the revision stays the same; see [`EcsClient::update_service`].
        let force = matches!(plan.action, Action::ForceNewDeployment);
        match self.ecs.update_service(&svc.cluster, &svc.service, &task_definition, force).await {
            Ok(id) => Ok((started, id, lease)),
            // ECS refused it: the copy just registered would stay behind unused, so take it back
            // (the retry registers its own). Where the answer was lost, ECS may have taken it,
            // and the lease's pending rollout tells the retry.
            Err(e) => {
                if matches!(plan.action, Action::Register(_)) && e.was_answered() {
                    if let Err(d) = self.ecs.deregister_task_definition(&task_definition).await {
                        warn!(service = %svc.name, task_definition = %short_name(&task_definition), error = %d, "could not deregister the unused copy");
                    }
                }
                Err(e.into())
            }
        }
    }

    /// The artifacts of a registered copy, written beside the update: the keys written, or
    /// `None` when they follow the record ([`Deployer::write_remaining`]).
    async fn artifacts_beside(&self, svc: &ServiceConfig, plan: &ServicePlan) -> Option<Vec<String>> {
        match &plan.action {
            Action::Register(_) => {
                self.records().put_artifacts(&svc.cluster, &svc.service, &plan.containers, &plan.image_uri).await.ok()
            }
            _ => None,
        }
    }

    /// The digests the service runs now, by container, read beside a copy's update.
    async fn digests_beside(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        state: &ServiceState,
    ) -> Option<BTreeMap<String, String>> {
        match &plan.action {
            Action::Register(_) => self
                .ecs
                .revision_digests(&svc.cluster, &svc.service, &state.current_arn)
                .await
                .unwrap_or_else(|e| {
                    warn!(service = %svc.name, error = %e, "could not read the digests the service runs; a rollback to a tag-based revision will be refused");
                    None
                }),
            _ => None,
        }
    }

    /// Writes the record (and the artifacts, unless `artifacts` says they are written), then
    /// releases the lease. Never both at once: a lease let go before the record is written could
    /// be taken by a concurrent push while the write fails, and the rollout would be lost to the
    /// retry (it finds the service running this image and answers `unchanged`). If the write
    /// fails, the lease is handed over carrying the complete record, so the next taker writes it.
    async fn write_and_release(
        &self,
        record: &DeploymentRecord,
        artifacts: Option<Vec<String>>,
        held: &mut HeldLease,
    ) -> Result<Vec<String>, Error> {
        let leases = self.leases();
        let written = self.write_remaining(record, artifacts).await;
        held.done = true;
        match &written {
            Ok(_) => {
                let released = held.lease.released(Some(record.task_definition.clone()));
                if let Err(e) = leases.rewrite(&held.key, &released, &held.etag).await {
                    // The record is written: a taker after expiry finds it and has nothing to finish.
                    warn!(service = %record.name, error = %e, "could not release the service lease; it expires by itself");
                }
            }
            Err(_) => {
                held.lease.pending = Some(record.clone());
                if let Err(e) = leases.rewrite(&held.key, &held.lease.handed_over(), &held.etag).await {
                    warn!(service = %record.name, error = %e, "could not put the unrecorded rollout back in the lease; it expires by itself, still carrying the rollout as it was taken");
                }
            }
        }
        written
    }

    /// Writes the record, and the artifacts unless `artifacts` holds the keys already written.
    async fn write_remaining(
        &self,
        record: &DeploymentRecord,
        artifacts: Option<Vec<String>>,
    ) -> Result<Vec<String>, Error> {
        Ok(match artifacts {
            Some(mut keys) => {
                keys.push(self.records().put(record).await?);
                keys
            }
            None => self.records().put_rollout(record).await?,
        })
    }

    /// The lease's record of a rollout of `image_uri` from `previous` to `task_definition`, taken
    /// before its revision is known: what a taker after a crash needs to finish it.
    pub(super) fn new_record(
        &self,
        svc: &ServiceConfig,
        req: &Request<'_>,
        image_uri: &str,
        containers: &[String],
        previous: &str,
        task_definition: &str,
    ) -> DeploymentRecord {
        Started {
            svc,
            image: req.image,
            trigger: &req.trigger,
            pushed_at: req.pushed_at.as_deref(),
            event_time: req.event_time.as_deref(),
            image_uri,
            containers,
            previous,
            task_definition: task_definition.to_string(),
            based: None,
            at: record::now(),
        }
        .pending()
    }
}

/// The answer to a started rollout; logs it and counts it.
fn started_answer(
    mut summary: DeploymentSummary,
    svc: &ServiceConfig,
    plan: &ServicePlan,
    state: &ServiceState,
    req: &Request<'_>,
    record: DeploymentRecord,
    written: Vec<String>,
) -> DeploymentSummary {
    info!(
        service = %svc.name,
        image = %plan.image_uri,
        event_id = %req.trigger.id(),
        deployment_id = %record.id,
        ecs_deployment_id = %record.ecs_deployment_id,
        task_definition = %short_name(&record.task_definition),
        outcome = "started",
        "decision"
    );
    crate::flows::metrics::record(&svc.name, &[crate::flows::metrics::Observation::Count("Deployments")]);
    summary.outcome = Outcome::Started;
    let mut reason = format!(
        "{} → {} ({})",
        short_name(&state.current_arn),
        short_name(&record.task_definition),
        plan.action.name()
    );
    if let Some(found) = forced_past(req, state) {
        reason.push_str(&format!("; {}", rolled_back::forced_note(&found)));
        warn!(service = %svc.name, image = %plan.image_uri, event_id = %req.trigger.id(), deployment_id = %record.id, rolled_back = %found.deployment, "force: deploying a digest pushdeploy rolled back");
    }
    summary.reason = with_base_note(reason, state);
    summary.task_definition = Some(record.task_definition);
    summary.ecs_deployment_id = Some(record.ecs_deployment_id);
    summary.written = written;
    summary
}

/// The rollback an operator's `force` went past, if the rolled-out digest had one.
fn forced_past(req: &Request<'_>, state: &ServiceState) -> Option<RolledBack> {
    let digest = req.image.digest.as_ref().filter(|_| req.allow_rolled_back)?;
    rolled_back::find(&state.history, digest.as_str())
}
