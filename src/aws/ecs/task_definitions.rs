//! ECS task definitions: a family's revisions, described, registered as faithful copies, deregistered.

use super::*;

impl EcsClient {
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
}
