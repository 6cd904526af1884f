//! A manual `rollback`: return a service to its last verified deployment before the current one.

use tracing::{info, warn};

use super::holding::{still_busy, LeaseTaken};
use super::{Deployer, Invocation};
use crate::config::ServiceConfig;
use crate::error::Error;
use crate::outcome::{DeploymentSummary, Outcome};
use crate::plan;
use crate::record::{DeploymentRecord, RollbackOf, TriggerRef};
use crate::recovery;
use crate::rollback;
use crate::taskdef::{self, short_name};

/// How many of a service's most recently written records a manual rollback reads.
const RECORDS_SCANNED: usize = 50;

impl Deployer {
    /// Takes the service's lease (waiting for a rollout in flight), finishes a dead holder's
    /// rollout, rolls back, and lets go.
    pub(super) async fn on_rollback(
        &self,
        svc: &ServiceConfig,
        invocation: Invocation<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let request_id = invocation.request_id;
        let mut taken = self.take_lease(svc, invocation, request_id, "").await?;
        let result = match &mut taken {
            LeaseTaken::Busy(other) => return Err(still_busy(svc, other)),
            LeaseTaken::Held(_, stale) => match stale.take() {
                // The records it chooses from must include the rollout a dead holder left running.
                Some(stale) => match recovery::adopt(&self.ecs, &self.records(), *stale).await {
                    Ok(_) => self.manual_rollback(svc, request_id).await,
                    Err(e) => Err(e),
                },
                None => self.manual_rollback(svc, request_id).await,
            },
        };
        match &result {
            Ok(d) => self.release(svc, &taken, d.task_definition.clone()).await,
            Err(e) => self.hand_over(svc, &taken, e).await,
        }
        result
    }

    /// Returns the service to the task definition of its last verified deployment before the current one.
    async fn manual_rollback(&self, svc: &ServiceConfig, request_id: &str) -> Result<DeploymentSummary, Error> {
        let records = self.records();
        let (current, recent, ran) = tokio::join!(
            self.ecs.current_task_definition(&svc.cluster, &svc.service),
            records.recent(&svc.cluster, &svc.service, RECORDS_SCANNED),
            self.ecs.ran_revisions(&svc.cluster, &svc.service)
        );
        let (current, recent, ran) = (current?, recent?, ran?);
        let (chosen, why) = match rollback::choose_target(&recent, &current, &ran) {
            Ok(found) => found,
            Err(reason) => return Ok(refused(svc, request_id, format!("{reason}; nothing changed"))),
        };
        // As an automatic rollback: a revision naming an image by tag is pinned to the digests it
        // ran, as ECS resolved them (choose_target only picks revisions ECS's history holds).
        let ran = ran
            .iter()
            .find(|r| r.task_definition == chosen.task_definition)
            .map(|r| r.digests.clone())
            .unwrap_or_default();
        let described = self.ecs.describe_task_definition(&chosen.task_definition).await?;
        let (target, why) = match taskdef::pin_to_digests(&described.task_definition, &ran, &chosen.containers) {
            Ok(None) => (chosen.task_definition.clone(), why),
            Ok(Some((copy, changes))) => {
                let tags = plan::tags_for_pinned_copy(&described.tags, &chosen.task_definition);
                let arn = self.ecs.register_task_definition(&copy, &tags).await?;
                let pinned: Vec<&str> = changes.iter().map(|c| c.to.as_str()).collect();
                (
                    arn.clone(),
                    format!("{why}; registered {} pinned to what it ran: {}", short_name(&arn), pinned.join(", ")),
                )
            }
            Err(unsafe_reason) => {
                let reason = format!("{unsafe_reason}; nothing changed (deploy an older tag instead)");
                return Ok(refused(svc, request_id, reason));
            }
        };
        let ecs_deployment_id = self.ecs.update_service(&svc.cluster, &svc.service, &target).await?;
        let rec = DeploymentRecord::rollback(RollbackOf {
            service_of: chosen,
            trigger: TriggerRef::Manual { action: "rollback".into(), request_id: request_id.to_string() },
            from: &current,
            to: &target,
            image_uri: chosen.image_uri.clone(),
            tag: chosen.tag.clone(),
            digest: chosen.digest.clone(),
            ecs_deployment_id: &ecs_deployment_id,
            reason: why.clone(),
        })?;
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
        d.image = Some(rec.image_uri.clone());
        d.action = Some("rollback");
        d.previous_task_definition = Some(current);
        d.task_definition = Some(rec.task_definition.clone());
        d.ecs_deployment_id = Some(ecs_deployment_id);
        d.written = vec![key];
        Ok(d)
    }
}

/// The answer to a manual rollback that was refused, changing nothing.
fn refused(svc: &ServiceConfig, request_id: &str, why: String) -> DeploymentSummary {
    let reason = format!("rollback of {}: {why}", svc.name);
    warn!(service = %svc.name, request_id, outcome = "rejected", reason = %reason, "decision");
    DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason)
}
