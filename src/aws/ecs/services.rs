//! ECS services: what a service runs and how it rolls out, and the UpdateService that starts a rollout.

use super::*;

impl EcsClient {
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
                        let advanced = lb.advanced_configuration();
                        Some(LoadBalancerNow {
                            target_group: lb.target_group_arn()?.to_string(),
                            alternate: advanced.and_then(|a| a.alternate_target_group_arn()).map(str::to_string),
                            test_listener_rule: advanced.and_then(|a| a.test_listener_rule()).map(str::to_string),
                            production_listener_rule: advanced
                                .and_then(|a| a.production_listener_rule())
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
        let revision = self.describe_revision(revision_arn).await?;
        Ok(revision.as_ref().and_then(|r| r.task_definition()).map(str::to_string))
    }

    /// The target groups ECS resolved for a service revision (`resolvedConfiguration.loadBalancers`):
    /// for green's revision at a lifecycle hook, the group of the blue/green pair that serves it.
    pub async fn revision_target_groups(&self, revision_arn: &str) -> Result<Vec<String>, AwsError> {
        let revision = self.describe_revision(revision_arn).await?;
        Ok(revision
            .as_ref()
            .and_then(|r| r.resolved_configuration())
            .map(|c| c.load_balancers().iter().filter_map(|lb| lb.target_group_arn().map(str::to_string)).collect())
            .unwrap_or_default())
    }

    /// One service revision as DescribeServiceRevisions describes it; `None` when ECS does not know it.
    async fn describe_revision(
        &self,
        revision_arn: &str,
    ) -> Result<Option<aws_sdk_ecs::types::ServiceRevision>, AwsError> {
        let out =
            self.client.describe_service_revisions().service_revision_arns(revision_arn).send().await.map_err(|e| {
                aws_error(
                    "ECS DescribeServiceRevisions",
                    revision_arn,
                    "ecs:DescribeServiceRevisions on the cluster's service revisions (the verify role)",
                    e,
                )
            })?;
        Ok(out.service_revisions().iter().find(|r| r.service_revision_arn() == Some(revision_arn)).cloned())
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
}
