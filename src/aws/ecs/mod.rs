//! ECS: read a service's task definition, register a faithful copy, update the service.

mod history;
mod services;
mod task_definitions;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    DesiredStatus, ServiceDeploymentStatus, SortOrder, Tag, TaskDefinition, TaskDefinitionField, TaskDefinitionStatus,
};

use crate::aws::aws_error;
use crate::error::AwsError;
use crate::task_digests::{self, TaskSeen};

/// A task definition as DescribeTaskDefinition returns it, with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedTaskDefinition {
    /// The definition.
    pub task_definition: TaskDefinition,
    /// Its resource tags (kept on the copy).
    pub tags: Vec<Tag>,
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

/// How ECS rolls a service out: `deploymentConfiguration.strategy` and its lifecycle hooks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollout {
    /// `ROLLING` (ECS's default when unset), `BLUE_GREEN`, `LINEAR`, `CANARY`.
    pub strategy: String,
    /// Every stage a lifecycle hook is configured at.
    pub hook_stages: Vec<String>,
}

/// How many of a family's newest revisions `base = "family"` looks at for a trusted one.
pub const BASE_LOOKED_AT: usize = 10;

/// How many DescribeTaskDefinition calls pruning has in flight at once.
pub const DESCRIBED_IN_FLIGHT: usize = 5;

/// How many pages of successful service deployments a rollback reads, and how large each is
/// (ECS's default page is 20, its largest 100). Bounded: a rollback returns to the newest verified
/// deployment, a few back at most, and sits in verify's path while the broken build serves; 200
/// successful deployments (ECS keeps 90 days of them) cost at most 4 listings and 10
/// DescribeServiceRevisions calls. Older revisions fall back to the tasks ([`EcsClient::with_tasks_of`]).
const RAN_PAGES: usize = 4;
const RAN_PAGE_SIZE: i32 = 50;

/// How many tasks of each status (running, stopped) the fallback to the tasks lists: one page,
/// the most ListTasks returns and DescribeTasks takes at once. One task of the revision is enough,
/// and a service replacing its tasks runs at most twice its desired count.
const TASKS_LISTED: i32 = 100;

/// Talks to ECS for one deploy or verify.
#[derive(Clone, Debug)]
pub struct EcsClient {
    client: aws_sdk_ecs::Client,
}

/// True for a revision pushdeploy registered: it carries one of pushdeploy's tags.
pub fn is_own(td: &DescribedTaskDefinition) -> bool {
    td.tags.iter().any(|t| t.key().is_some_and(|k| k.starts_with(crate::plan::OWN_TAG_PREFIX)))
}

/// A service DescribeServices did not answer as ACTIVE; `reason` is ECS's failure reason, if any.
fn not_active(target: String, reason: Option<&str>) -> AwsError {
    AwsError {
        action: "ECS DescribeServices",
        target,
        detail: reason.unwrap_or("no ACTIVE service with a task definition").to_string(),
        hint: "that the service and cluster in pushdeploy.toml exist and are ACTIVE",
        transient: false,
    }
}

impl EcsClient {
    /// Wraps an SDK client.
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self { client }
    }
}
