//! Finishing a rollout whose holder died (or failed and handed its lease over): the only way a
//! service could run a revision with no record. Whoever takes such a lease, deploy or verify,
//! finishes it first.

use tracing::warn;

use crate::aws::ecs::EcsClient;
use crate::aws::records::RecordStore;
use crate::domain::error::Error;
use crate::domain::lease::Lease;
use crate::domain::record;

/// What finishing a stale lease's rollout came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// Nothing was in flight, or ECS never took it: the service runs what it ran.
    Nothing,
    /// ECS runs the rollout; its record is written (now or by its holder).
    Recorded {
        /// The task definition the rollout left the service on.
        task_definition: String,
    },
}

/// Finishes the rollout a stale lease carries: if its revision runs without a record (the holder
/// died between UpdateService and the record), writes the record and the artifacts.
pub async fn adopt(ecs: &EcsClient, records: &RecordStore, stale: Lease) -> Result<Adopted, Error> {
    let Some(mut pending) = stale.pending else { return Ok(Adopted::Nothing) };
    let now = ecs.service_now(&pending.cluster, &pending.service).await?;
    let Some(deployment) = now.primary_deployment else { return Ok(Adopted::Nothing) };
    if pending.task_definition.is_empty() {
        // Taken before its revision was registered: the rollout happened if the service left
        // the revision it ran for one running the pending image.
        if now.task_definition == pending.previous_task_definition {
            return Ok(Adopted::Nothing);
        }
        let running = ecs.describe_task_definition(&now.task_definition).await?;
        let containers: Vec<String> = running
            .task_definition
            .container_definitions()
            .iter()
            .filter(|c| c.image() == Some(pending.image_uri.as_str()))
            .filter_map(|c| c.name().map(str::to_string))
            .collect();
        if containers.is_empty() {
            return Ok(Adopted::Nothing);
        }
        pending.task_definition = now.task_definition;
        pending.containers = containers;
    } else if now.task_definition != pending.task_definition {
        // It died before UpdateService: at most an unused revision is left, nothing runs unrecorded.
        return Ok(Adopted::Nothing);
    }
    let task_definition = pending.task_definition.clone();
    if records.exists(&pending.cluster, &pending.service, &deployment).await? {
        return Ok(Adopted::Recorded { task_definition });
    }
    pending.id = record::record_id(&deployment)?;
    pending.ecs_deployment_id = deployment;
    pending.stamp("recovered", record::now());
    if pending.is_rollback() {
        // A rollback writes no artifacts: they name what was pushed, not what a rollback runs.
        records.put(&pending).await?;
    } else {
        records.put_rollout(&pending).await?;
    }
    warn!(service = %pending.name, image = %pending.image_uri, event_id = %pending.trigger.id(), deployment_id = %pending.id, outcome = "started", "recovered the record of a rollout whose deploy invocation died");
    Ok(Adopted::Recorded { task_definition })
}
