//! ECS: read a service's task definition, register a faithful copy, update the service.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    DesiredStatus, ServiceDeploymentStatus, SortOrder, Tag, TaskDefinition, TaskDefinitionField, TaskDefinitionStatus,
};

use crate::aws::aws_error;
pub use crate::domain::ecs_view::{DescribedTaskDefinition, Rollout};
use crate::error::AwsError;
use crate::task_digests::{self, TaskSeen};

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
    td.tags.iter().any(|t| t.key().is_some_and(|k| k.starts_with(crate::domain::names::OWN_TAG_PREFIX)))
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

    /// The task definition ARN the service itself runs (not `deployments[]`, which can lag).
    pub async fn current_task_definition(&self, cluster: &str, service: &str) -> Result<String, AwsError> {
        Ok(self.service_now(cluster, service).await?.task_definition)
    }

    /// What the service runs now and its PRIMARY deployment's id.
    pub async fn service_now(&self, cluster: &str, service: &str) -> Result<ServiceNow, AwsError> {
        let target = format!("{cluster}/{service}");
        let out = self.describe_service(cluster, service).await?;
        let svc = out.services().iter().find(|s| s.status() == Some("ACTIVE"));
        match svc.and_then(|s| s.task_definition()) {
            Some(td) => Ok(ServiceNow {
                task_definition: td.to_string(),
                primary_deployment: svc
                    .and_then(|s| s.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
                    .and_then(|d| d.id())
                    .map(str::to_string),
                deployments: svc
                    .map(|s| s.deployments())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|d| {
                        Some(DeploymentNow {
                            id: d.id()?.to_string(),
                            status: d.status().unwrap_or_default().to_string(),
                            rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                        })
                    })
                    .collect(),
                load_balancers: svc
                    .map(|s| s.load_balancers())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|lb| {
                        Some(LoadBalancerNow {
                            target_group: lb.target_group_arn()?.to_string(),
                            alternate: lb
                                .advanced_configuration()
                                .and_then(|a| a.alternate_target_group_arn())
                                .map(str::to_string),
                        })
                    })
                    .collect(),
                current_revisions: svc
                    .map(|s| s.current_service_revisions())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r.arn().map(str::to_string))
                    .collect(),
            }),
            None => Err(not_active(target, out.failures().first().and_then(|f| f.reason()))),
        }
    }

    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<aws_sdk_ecs::operation::describe_services::DescribeServicesOutput, AwsError> {
        self.client.describe_services().cluster(cluster).services(service).send().await.map_err(|e| {
            aws_error(
                "ECS DescribeServices",
                format!("{cluster}/{service}"),
                "the cluster name and ecs:DescribeServices on the service",
                e,
            )
        })
    }

    /// The ids (`ecs-svc/…`) of the service's deployments of `task_definition`, newest first: how
    /// a lifecycle hook finds the deployment record of the green revision with one read.
    pub async fn deployments_of(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<Vec<String>, AwsError> {
        let out = self.describe_service(cluster, service).await?;
        let svc = out.services().iter().find(|s| s.status() == Some("ACTIVE"));
        let mut found: Vec<(f64, String)> = svc
            .map(|s| s.deployments())
            .unwrap_or_default()
            .iter()
            .filter(|d| d.task_definition() == Some(task_definition))
            .filter_map(|d| Some((d.created_at().map_or(0.0, |t| t.as_secs_f64()), d.id()?.to_string())))
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// How ECS rolls the service out (for `plan`).
    pub async fn rollout(&self, cluster: &str, service: &str) -> Result<Rollout, AwsError> {
        let out = self.describe_service(cluster, service).await?;
        let svc = out.services().iter().find(|s| s.status() == Some("ACTIVE"));
        let config = svc.and_then(|s| s.deployment_configuration());
        let mut hook_stages: Vec<String> = config
            .map(|c| c.lifecycle_hooks())
            .unwrap_or_default()
            .iter()
            .flat_map(|h| h.lifecycle_stages().iter().map(|s| s.as_str().to_string()))
            .collect();
        hook_stages.dedup();
        Ok(Rollout {
            strategy: config.and_then(|c| c.strategy()).map_or("ROLLING", |s| s.as_str()).to_string(),
            hook_stages,
        })
    }

    /// The task definition a service revision runs (a lifecycle hook's `targetServiceRevisionArn`),
    /// or `None` when ECS does not know the revision.
    pub async fn revision_task_definition(&self, revision_arn: &str) -> Result<Option<String>, AwsError> {
        let out =
            self.client.describe_service_revisions().service_revision_arns(revision_arn).send().await.map_err(|e| {
                aws_error(
                    "ECS DescribeServiceRevisions",
                    revision_arn,
                    "ecs:DescribeServiceRevisions on the cluster's service revisions (the verify role)",
                    e,
                )
            })?;
        Ok(out
            .service_revisions()
            .iter()
            .find(|r| r.service_revision_arn() == Some(revision_arn))
            .and_then(|r| r.task_definition())
            .map(str::to_string))
    }

    /// The target groups ECS resolved for the one of `revisions` (a service's current revisions)
    /// that runs `task_definition` (`resolvedConfiguration.loadBalancers`): for a blue/green
    /// service, the group that serves it. `None` when no such revision says.
    pub async fn serving_target_groups(
        &self,
        revisions: &[String],
        task_definition: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        if revisions.is_empty() {
            return Ok(None);
        }
        let out = self
            .client
            .describe_service_revisions()
            .set_service_revision_arns(Some(revisions.iter().take(20).cloned().collect()))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "ECS DescribeServiceRevisions",
                    revisions.join(","),
                    "ecs:DescribeServiceRevisions on the cluster's service revisions (the verify role)",
                    e,
                )
            })?;
        Ok(out
            .service_revisions()
            .iter()
            .find(|r| r.task_definition() == Some(task_definition))
            .and_then(|r| r.resolved_configuration())
            .map(|c| c.load_balancers().iter().filter_map(|lb| lb.target_group_arn().map(str::to_string)).collect()))
    }

    /// The task definition each of `services` in `cluster` runs, read with one DescribeServices
    /// per ten services (its limit): a push that matches many services costs one read, not many.
    /// The outer error is the call's; an inner one says that service is missing or not ACTIVE.
    pub async fn task_definitions(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<String, AwsError>>, AwsError> {
        let mut found = Vec::new();
        for (chunk, out) in self.describe_in_chunks(cluster, services).await? {
            found.extend(chunk.iter().map(|name| {
                // Config may name a service by name or by ARN.
                out.services()
                    .iter()
                    .filter(|s| s.service_name() == Some(name.as_str()) || s.service_arn() == Some(name.as_str()))
                    .find(|s| s.status() == Some("ACTIVE"))
                    .and_then(|s| s.task_definition())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        let failure = out
                            .failures()
                            .iter()
                            .find(|f| f.arn().is_some_and(|a| a.ends_with(&format!("/{name}")) || a == name));
                        not_active(format!("{cluster}/{name}"), failure.and_then(|f| f.reason()))
                    })
            }));
        }
        Ok(found)
    }

    /// DescribeServices for `services` in `cluster`, ten at a time (its limit): each chunk with
    /// ECS's answer for it.
    async fn describe_in_chunks<'a>(
        &self,
        cluster: &str,
        services: &'a [String],
    ) -> Result<Vec<(&'a [String], aws_sdk_ecs::operation::describe_services::DescribeServicesOutput)>, AwsError> {
        let mut answers = Vec::new();
        for chunk in services.chunks(10) {
            let out = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        "ECS DescribeServices",
                        format!("{cluster}/{}", chunk.join(",")),
                        "the cluster name and ecs:DescribeServices on the services",
                        e,
                    )
                })?;
            answers.push((chunk, out));
        }
        Ok(answers)
    }

    /// The task definitions each of `services` in `cluster` has in use: the service's own and every
    /// deployment's (PRIMARY, and ACTIVE: the revision a rollout in flight replaces, which ECS's
    /// circuit breaker returns to). Empty for a service that is not ACTIVE (it runs nothing). One
    /// DescribeServices per ten services (its limit).
    pub async fn in_use(&self, cluster: &str, services: &[String]) -> Result<Vec<Vec<String>>, AwsError> {
        let mut found = Vec::new();
        for (chunk, out) in self.describe_in_chunks(cluster, services).await? {
            found.extend(chunk.iter().map(|name| {
                let svc = out
                    .services()
                    .iter()
                    .filter(|s| s.service_name() == Some(name.as_str()) || s.service_arn() == Some(name.as_str()))
                    .find(|s| s.status() == Some("ACTIVE"));
                let mut tds: Vec<String> =
                    svc.and_then(|s| s.task_definition()).map(str::to_string).into_iter().collect();
                for d in svc.map(|s| s.deployments()).unwrap_or_default() {
                    if let Some(td) = d.task_definition().filter(|td| !tds.iter().any(|t| t == td)) {
                        tds.push(td.to_string());
                    }
                }
                tds
            }));
        }
        Ok(found)
    }

    /// The digest of each container of `task_definition` as ECS resolved it when the service last
    /// deployed that revision (ECS keeps it in the service revision), or `None` when no successful
    /// deployment of the service ran it.
    ///
    /// Preferred to DescribeTasks on the running tasks: one revision answers for all its tasks (ECS
    /// resolves a tag once per deployment), it is known with no task running, and IAM scopes both
    /// calls to the cluster's services.
    ///
    /// A revision ECS's history does not hold (created before October 25, 2024, or not deployed for
    /// longer than ECS keeps deployments) is read from the service's tasks ([`Self::with_tasks_of`]).
    pub async fn revision_digests(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let ran = self.ran_revisions(cluster, service).await?;
        let ran = self.with_tasks_of(cluster, service, ran, task_definition).await?;
        Ok(ran.into_iter().find(|r| r.task_definition == task_definition).map(|r| r.digests))
    }

    /// `ran` (ECS's history of the service), and when it does not hold `task_definition`, what the
    /// service's tasks show that revision ran ([`task_digests::ran_by_tasks`]), after the history:
    /// the cutover case, a revision deployed before ECS kept service revisions. Only that one
    /// revision: the caller names the revision it needs (the one a deployment replaced), and the
    /// tasks must show the service ran it.
    pub async fn with_tasks_of(
        &self,
        cluster: &str,
        service: &str,
        mut ran: Vec<RanRevision>,
        task_definition: &str,
    ) -> Result<Vec<RanRevision>, AwsError> {
        if task_definition.is_empty() || ran.iter().any(|r| r.task_definition == task_definition) {
            return Ok(ran);
        }
        let tasks = self.tasks_of(cluster, service).await?;
        if let Some(found) = task_digests::ran_by_tasks(&tasks, task_definition) {
            tracing::info!(
                service = %format!("{cluster}/{service}"),
                task_definition = %crate::domain::names::short_name(task_definition),
                digests = ?found.digests,
                "ECS's history does not hold the revision: its digests read from the service's tasks"
            );
            ran.push(found);
        }
        Ok(ran)
    }

    /// The service's running tasks and those stopped lately (one page of each), described.
    async fn tasks_of(&self, cluster: &str, service: &str) -> Result<Vec<TaskSeen>, AwsError> {
        let target = format!("{cluster}/{service}");
        let mut arns = Vec::new();
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let listed = self
                .client
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status(status)
                .max_results(TASKS_LISTED)
                .send()
                .await
                .map_err(|e| aws_error("ECS ListTasks", &target, "ecs:ListTasks on the cluster (ecs:cluster)", e))?;
            arns.extend(listed.task_arns().iter().cloned());
        }
        let mut seen = Vec::new();
        for chunk in arns.chunks(TASKS_LISTED as usize) {
            let out =
                self.client.describe_tasks().cluster(cluster).set_tasks(Some(chunk.to_vec())).send().await.map_err(
                    |e| aws_error("ECS DescribeTasks", &target, "ecs:DescribeTasks on the cluster's tasks", e),
                )?;
            seen.extend(out.tasks().iter().filter_map(|t| {
                Some(TaskSeen {
                    task_definition: t.task_definition_arn()?.to_string(),
                    last_status: t.last_status().unwrap_or_default().to_string(),
                    stopped_reason: t.stopped_reason().map(str::to_string),
                    containers: t
                        .containers()
                        .iter()
                        .filter_map(|c| Some((c.name()?.to_string(), c.image_digest().map(str::to_string))))
                        .collect(),
                })
            }));
        }
        Ok(seen)
    }

    /// The revisions the service ran, newest first, from ECS's own history: its successful
    /// service deployments (ECS keeps them for 90 days) and the revision each one rolled out.
    /// What a rollback may return to; a task definition ARN read from S3 alone never is.
    pub async fn ran_revisions(&self, cluster: &str, service: &str) -> Result<Vec<RanRevision>, AwsError> {
        let target = format!("{cluster}/{service}");
        let mut briefs = Vec::new();
        let mut token = None;
        for _ in 0..RAN_PAGES {
            let listed = self
                .client
                .list_service_deployments()
                .cluster(cluster)
                .service(service)
                .status(ServiceDeploymentStatus::Successful)
                .max_results(RAN_PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    aws_error("ECS ListServiceDeployments", &target, "ecs:ListServiceDeployments on the service", e)
                })?;
            briefs.extend(listed.service_deployments().iter().cloned());
            token = listed.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        briefs.sort_by(|a, b| {
            b.created_at()
                .map(|t| t.as_secs_f64())
                .unwrap_or(0.0)
                .total_cmp(&a.created_at().map(|t| t.as_secs_f64()).unwrap_or(0.0))
        });
        let arns: Vec<String> =
            briefs.iter().filter_map(|b| b.target_service_revision_arn().map(str::to_string)).collect();
        let mut described = Vec::new();
        // DescribeServiceRevisions takes at most 20 ARNs a call.
        for chunk in arns.chunks(20) {
            let out = self
                .client
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        "ECS DescribeServiceRevisions",
                        &target,
                        "ecs:DescribeServiceRevisions on the service's revisions",
                        e,
                    )
                })?;
            described.extend(out.service_revisions().iter().cloned());
        }
        Ok(arns
            .iter()
            .filter_map(|arn| described.iter().find(|r| r.service_revision_arn() == Some(arn.as_str())))
            .filter_map(|r| {
                Some(RanRevision {
                    task_definition: r.task_definition()?.to_string(),
                    digests: r
                        .container_images()
                        .iter()
                        .filter_map(|c| Some((c.container_name()?.to_string(), c.image_digest()?.to_string())))
                        .collect(),
                })
            })
            .collect())
    }

    /// A service deployment as ECS reports it now, or `None` when ECS does not know it.
    pub async fn service_deployment(&self, arn: &str) -> Result<Option<ServiceDeploymentNow>, AwsError> {
        let out =
            self.client.describe_service_deployments().service_deployment_arns(arn).send().await.map_err(|e| {
                aws_error(
                    "ECS DescribeServiceDeployments",
                    arn,
                    "ecs:DescribeServiceDeployments on the cluster's service deployments (the verify role)",
                    e,
                )
            })?;
        Ok(out.service_deployments().iter().find(|d| d.service_deployment_arn() == Some(arn)).map(|d| {
            ServiceDeploymentNow {
                service_arn: d.service_arn().unwrap_or_default().to_string(),
                target_revision: d.target_service_revision().and_then(|r| r.arn()).map(str::to_string),
                status: d.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                lifecycle_stage: d.lifecycle_stage().map(|s| s.as_str().to_string()),
            }
        }))
    }

    /// ACTIVE revision ARNs of exactly `family` (familyPrefix also matches longer names), newest
    /// first, from at most `pages` pages of 100.
    async fn family_revisions(&self, family: &str, pages: usize) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut token = None;
        for _ in 0..pages {
            let page = self
                .client
                .list_task_definitions()
                .family_prefix(family)
                .status(TaskDefinitionStatus::Active)
                .sort(SortOrder::Desc)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_error("ECS ListTaskDefinitions", family, "ecs:ListTaskDefinitions", e))?;
            arns.extend(page.task_definition_arns().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut revisions: Vec<(i64, String)> = arns
            .into_iter()
            .filter_map(|arn| {
                let (fam, rev) = arn.rsplit('/').next()?.rsplit_once(':')?;
                let rev = rev.parse().ok()?;
                (fam == family).then_some((rev, arn))
            })
            .collect();
        revisions.sort_by_key(|r| std::cmp::Reverse(r.0));
        Ok(revisions.into_iter().map(|(_, arn)| arn).collect())
    }

    /// The newest ACTIVE revisions of `family`, newest first, each described with its tags (and
    /// `registeredBy`), one at a time until `enough` is true of one or [`BASE_LOOKED_AT`] are read:
    /// `base = "family"` usually needs one or two reads, and which revision is the base is decided
    /// elsewhere ([`crate::rules::base::choose_base`]).
    pub async fn newest_revisions(
        &self,
        family: &str,
        enough: impl Fn(&DescribedTaskDefinition) -> bool,
    ) -> Result<Vec<DescribedTaskDefinition>, AwsError> {
        let mut described = Vec::new();
        for arn in self.family_revisions(family, 1).await?.iter().take(BASE_LOOKED_AT) {
            let d = self.describe_task_definition(arn).await?;
            let done = enough(&d);
            described.push(d);
            if done {
                break;
            }
        }
        Ok(described)
    }

    /// Of the newest `limit` ACTIVE revisions of `family`, the ones pushdeploy registered (they carry
    /// its tags), newest first. Each is described with its tags, at most [`DESCRIBED_IN_FLIGHT`] at
    /// once: pruning reads a bounded window per run and never floods the account's ECS calls.
    pub async fn own_revisions(&self, family: &str, limit: usize) -> Result<Vec<String>, AwsError> {
        // A page holds up to 100 ARNs, some of longer families that share the prefix.
        let revisions = self.family_revisions(family, limit / 100 + 2).await?;
        let mut described = Vec::new();
        for batch in revisions[..revisions.len().min(limit)].chunks(DESCRIBED_IN_FLIGHT) {
            let read = futures_util::future::join_all(batch.iter().map(|arn| self.describe_task_definition(arn))).await;
            for (arn, d) in batch.iter().zip(read) {
                described.push((arn.clone(), d?));
            }
        }
        Ok(described
            .into_iter()
            .filter(|(_, d)| d.task_definition.status().is_none_or(|s| s.as_str() == "ACTIVE") && is_own(d))
            .map(|(arn, _)| arn)
            .collect())
    }

    /// Describes a task definition with its tags.
    pub async fn describe_task_definition(&self, arn: &str) -> Result<DescribedTaskDefinition, AwsError> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| aws_error("ECS DescribeTaskDefinition", arn, "ecs:DescribeTaskDefinition", e))?;
        let task_definition = out.task_definition.ok_or_else(|| AwsError {
            action: "ECS DescribeTaskDefinition",
            target: arn.to_string(),
            detail: "the answer has no task definition".into(),
            hint: "the task definition ARN",
            transient: false,
        })?;
        Ok(DescribedTaskDefinition { task_definition, tags: out.tags.unwrap_or_default() })
    }

    /// Registers `td` as a new revision of its family, copying every field RegisterTaskDefinition accepts.
    pub async fn register_task_definition(&self, td: &TaskDefinition, tags: &[Tag]) -> Result<String, AwsError> {
        let family = td.family().unwrap_or_default().to_string();
        let out = self
            .client
            .register_task_definition()
            .family(&family)
            .set_task_role_arn(td.task_role_arn.clone())
            .set_execution_role_arn(td.execution_role_arn.clone())
            .set_network_mode(td.network_mode.clone())
            .set_container_definitions(td.container_definitions.clone())
            .set_volumes(td.volumes.clone())
            .set_placement_constraints(td.placement_constraints.clone())
            .set_requires_compatibilities(td.requires_compatibilities.clone())
            .set_cpu(td.cpu.clone())
            .set_memory(td.memory.clone())
            .set_tags(if tags.is_empty() { None } else { Some(tags.to_vec()) })
            .set_pid_mode(td.pid_mode.clone())
            .set_ipc_mode(td.ipc_mode.clone())
            .set_proxy_configuration(td.proxy_configuration.clone())
            // inferenceAccelerators is omitted: Elastic Inference is retired and ECS refuses it.
            .set_ephemeral_storage(td.ephemeral_storage.clone())
            .set_runtime_platform(td.runtime_platform.clone())
            .set_enable_fault_injection(td.enable_fault_injection)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "ECS RegisterTaskDefinition",
                    &family,
                    "ecs:RegisterTaskDefinition, ecs:TagResource and iam:PassRole for the task and execution roles",
                    e,
                )
            })?;
        out.task_definition().and_then(|t| t.task_definition_arn()).map(str::to_string).ok_or_else(|| AwsError {
            action: "ECS RegisterTaskDefinition",
            target: family,
            detail: "the answer has no task definition ARN".into(),
            hint: "ECS's answer",
            transient: false,
        })
    }

    /// Deregisters a revision (it stays usable by anything already running it, and is listed INACTIVE).
    pub async fn deregister_task_definition(&self, arn: &str) -> Result<(), AwsError> {
        self.client
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| aws_error("ECS DeregisterTaskDefinition", arn, "ecs:DeregisterTaskDefinition", e))?;
        Ok(())
    }

    /// Points the service at `task_definition` as a new ECS deployment; returns ECS's deployment id.
    ///
    /// `force` only to roll new tasks of the revision the service already runs (a redeploy). A new
    /// revision starts a deployment by itself, and unforced the call is idempotent: when its
    /// answer is lost and the SDK sends it again, ECS finds the service already on that revision
    /// and starts nothing, where a forced repeat would start a second deployment of it (a second
    /// set of tasks and a blue/green run no record names).
    pub async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        force: bool,
    ) -> Result<String, AwsError> {
        let target = format!("{cluster}/{service}");
        let out = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .force_new_deployment(force)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "ECS UpdateService",
                    &target,
                    "ecs:UpdateService on the service and that the service is ACTIVE",
                    e,
                )
            })?;
        out.service()
            .and_then(|s| s.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
            .and_then(|d| d.id())
            .map(str::to_string)
            .ok_or_else(|| AwsError {
                action: "ECS UpdateService",
                target,
                detail: "the answer has no PRIMARY deployment".into(),
                hint: "the service's deployment controller (pushdeploy drives the ECS controller)",
                transient: false,
            })
    }
}
