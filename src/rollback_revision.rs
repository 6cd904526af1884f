//! The task definition a rollback runs for its target: the target itself, or a copy pinned to
//! the digests ECS resolved when the service ran it. Shared by verify's automatic rollback and
//! the operator's `rollback`, which choose the target by one rule ([`crate::rollback`]).

use tracing::{info, warn};

use crate::aws::ecs::{EcsClient, RanRevision};
use crate::error::AwsError;
use crate::rules::taskdef::{self, short_name};

/// What a rollback will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The task definition ARN UpdateService is given.
    pub task_definition: String,
    /// The images a pinned copy names by digest (empty when the target itself runs).
    pub pinned: Vec<String>,
}

/// Why a rollback has nothing safe to run.
#[derive(Debug)]
pub enum NotPrepared {
    /// The target names an image by tag and ECS's history holds no digest for it: running it
    /// would pull whatever the tag names now, perhaps the very build rolled back.
    Unsafe(String),
    /// Reading the target or registering its copy failed.
    Aws(AwsError),
}

/// The revision to run for `target`. A target naming images by tag gets a copy pinned to the
/// digests it ran (for the `containers` pushdeploy deploys); `earlier`, a copy a previous attempt
/// registered, is reused only if it is that very copy, so a retry converges on one revision.
pub async fn prepare(
    ecs: &EcsClient,
    target: &RanRevision,
    containers: &[String],
    earlier: Option<&str>,
) -> Result<Prepared, NotPrepared> {
    let described = ecs.describe_task_definition(&target.task_definition).await.map_err(NotPrepared::Aws)?;
    let pinned = taskdef::pin_to_digests(&described.task_definition, &target.digests, containers)
        .map_err(NotPrepared::Unsafe)?;
    let Some((copy, changes)) = pinned else {
        return Ok(Prepared { task_definition: target.task_definition.clone(), pinned: Vec::new() });
    };
    let pinned: Vec<String> = changes.iter().map(|c| c.to.clone()).collect();
    if let Some(earlier) = earlier.filter(|e| *e != target.task_definition) {
        match ecs.describe_task_definition(earlier).await {
            Ok(found) if taskdef::same_definition(&found.task_definition, &copy) => {
                return Ok(Prepared { task_definition: earlier.to_string(), pinned })
            }
            _ => warn!(
                task_definition = %short_name(earlier),
                "an earlier rollback attempt's revision is not the pinned copy of the target: not reused"
            ),
        }
    }
    let tags = crate::rules::plan::tags_for_pinned_copy(&described.tags, &target.task_definition);
    let arn = ecs.register_task_definition(&copy, &tags).await.map_err(NotPrepared::Aws)?;
    info!(
        task_definition = %short_name(&arn),
        source = %short_name(&target.task_definition),
        pinned = ?pinned,
        "rollback target pinned to the digests the service ran"
    );
    Ok(Prepared { task_definition: arn, pinned })
}
