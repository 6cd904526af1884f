//! What ECS describes, as plain data the pure rules read: the aws client fills these in.

use aws_sdk_ecs::types::{Tag, TaskDefinition};

/// A task definition as DescribeTaskDefinition returns it, with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedTaskDefinition {
    /// The definition.
    pub task_definition: TaskDefinition,
    /// Its resource tags (kept on the copy).
    pub tags: Vec<Tag>,
}

/// How ECS rolls a service out: `deploymentConfiguration.strategy` and its lifecycle hooks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollout {
    /// `ROLLING` (ECS's default when unset), `BLUE_GREEN`, `LINEAR`, `CANARY`.
    pub strategy: String,
    /// Every stage a lifecycle hook is configured at.
    pub hook_stages: Vec<String>,
}
