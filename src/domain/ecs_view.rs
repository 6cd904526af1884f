//! What ECS describes, as plain data the pure rules read: the aws client fills these in.

use std::collections::BTreeMap;

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

/// A service's state as DescribeServices reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNow {
    /// The task definition the service itself runs.
    pub task_definition: String,
    /// The id of its PRIMARY deployment.
    pub primary_deployment: Option<String>,
    /// Every deployment ECS lists: id, `status` (PRIMARY, ACTIVE) and `rolloutState`.
    pub deployments: Vec<DeploymentNow>,
    /// Its load balancers' target groups (with the blue/green alternate).
    pub load_balancers: Vec<LoadBalancerNow>,
    /// The service revisions it runs now (`currentServiceRevisions`).
    pub current_revisions: Vec<String>,
}

/// One of a service's load balancers as DescribeServices lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerNow {
    /// `targetGroupArn`.
    pub target_group: String,
    /// `advancedConfiguration.alternateTargetGroupArn`, for blue/green, linear and canary.
    pub alternate: Option<String>,
    /// `advancedConfiguration.testListenerRule`: the rule ECS points at green for test traffic.
    pub test_listener_rule: Option<String>,
    /// `advancedConfiguration.productionListenerRule`: the rule whose weights ECS shifts.
    pub production_listener_rule: Option<String>,
}

/// One of a service's deployments as DescribeServices lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentNow {
    /// `ecs-svc/…`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE`, `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`, when ECS reports one.
    pub rollout_state: Option<String>,
}

/// A revision the service ran according to ECS's own history (a successful service deployment),
/// with the digest ECS resolved for each container: the only rollback targets pushdeploy accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RanRevision {
    /// The task definition ARN.
    pub task_definition: String,
    /// Container name → digest, as ECS resolved it for that deployment.
    pub digests: BTreeMap<String, String>,
    /// When ECS deployed it (RFC 3339: the service revision's creation), when ECS said.
    pub at: Option<String>,
}

/// A service deployment as DescribeServiceDeployments reports it (blue/green, linear, canary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDeploymentNow {
    /// The service it belongs to.
    pub service_arn: String,
    /// The green service revision.
    pub target_revision: Option<String>,
    /// `IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_IN_PROGRESS`, …
    pub status: String,
    /// `POST_TEST_TRAFFIC_SHIFT`, …, when ECS reports one.
    pub lifecycle_stage: Option<String>,
}
