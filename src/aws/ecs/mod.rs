//! ECS: read a service's task definition, register a faithful copy, update the service.

mod history;
mod services;
mod task_definitions;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    DesiredStatus, ServiceDeploymentStatus, SortOrder, Tag, TaskDefinition, TaskDefinitionField, TaskDefinitionStatus,
};

use crate::aws::aws_error;
use crate::domain::ecs_view::{
    DeploymentNow, DescribedTaskDefinition, LoadBalancerNow, RanRevision, Rollout, ServiceDeploymentNow, ServiceNow,
};
use crate::domain::error::AwsError;
use crate::rules::task_digests::{self, TaskSeen};

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
    td.tags.iter().any(|t| t.key().is_some_and(|k| k.starts_with(crate::rules::plan::OWN_TAG_PREFIX)))
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
