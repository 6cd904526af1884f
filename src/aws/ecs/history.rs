//! ECS's own history of a service: the revisions it ran and the digests ECS resolved for them,
//! from its successful service deployments or, for older ones, from its tasks.

use super::*;

impl EcsClient {
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
                task_definition = %crate::rules::taskdef::short_name(task_definition),
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
        let arns = self.successful_revision_arns(cluster, service, &target).await?;
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
                    at: r.created_at().map(|t| crate::domain::record::rfc3339(t.as_secs_f64())),
                })
            })
            .collect())
    }

    /// The service revisions of the service's successful deployments, newest first (at most
    /// `RAN_PAGES` pages of them).
    async fn successful_revision_arns(
        &self,
        cluster: &str,
        service: &str,
        target: &str,
    ) -> Result<Vec<String>, AwsError> {
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
                    aws_error("ECS ListServiceDeployments", target, "ecs:ListServiceDeployments on the service", e)
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
        Ok(briefs.iter().filter_map(|b| b.target_service_revision_arn().map(str::to_string)).collect())
    }
}
