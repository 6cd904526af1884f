//! `init`'s reads, all read-only: the caller's account (STS GetCallerIdentity), the cluster's
//! services (ECS ListServices, DescribeServices), their task definitions (DescribeTaskDefinition),
//! then the load balancers in front of them (`balancers`). Nothing here decides anything.

use super::aws_error::failed;
use super::balancers::describe_balancers;
use super::estate::{Container, Estate, Service};
use crate::insight::Failed;

/// How many services one DescribeServices takes.
const DESCRIBE_BATCH: usize = 10;

/// The estate of `cluster`: every service, or only `only`.
pub async fn describe(sdk: &aws_config::SdkConfig, cluster: &str, only: &[String]) -> Result<Estate, Failed> {
    let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| Failed("no region is set (AWS_REGION)".into()))?;
    let sts = aws_sdk_sts::Client::new(sdk);
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| failed("STS GetCallerIdentity", "your credentials", "sts:GetCallerIdentity", e))?;
    let account = identity.account().unwrap_or_default().to_string();
    let ecs = aws_sdk_ecs::Client::new(sdk);
    // By name: the same estate writes the same file.
    let mut names = if only.is_empty() { list_services(&ecs, cluster).await? } else { only.to_vec() };
    names.sort();
    names.dedup();
    let mut services = Vec::new();
    for batch in names.chunks(DESCRIBE_BATCH) {
        services.extend(describe_services(&ecs, cluster, batch).await?);
    }
    for s in &mut services {
        read_task_definition(&ecs, s).await?;
    }
    let mut estate = Estate { account, region, cluster: cluster.to_string(), services, ..Estate::default() };
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    describe_balancers(&elbv2, &mut estate).await?;
    Ok(estate)
}

/// Every service's name in the cluster, in ECS's order.
async fn list_services(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Vec<String>, Failed> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_services()
            .cluster(cluster)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| failed("ECS ListServices", cluster, "ecs:ListServices", e))?;
        names.extend(page.service_arns().iter().map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(names);
        }
    }
}

/// The ACTIVE services among `names`; a name ECS does not know is refused.
async fn describe_services(ecs: &aws_sdk_ecs::Client, cluster: &str, names: &[String]) -> Result<Vec<Service>, Failed> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| failed("ECS DescribeServices", cluster, "ecs:DescribeServices", e))?;
    if let Some(f) = out.failures().first() {
        return Err(Failed(format!(
            "ECS DescribeServices for {cluster}/{} failed: {}. Check: the service's name (--service) and the cluster (--cluster)",
            f.arn().unwrap_or_default().rsplit('/').next().unwrap_or_default(),
            f.reason().unwrap_or("not found")
        )));
    }
    Ok(out.services().iter().filter(|s| s.status() == Some("ACTIVE")).map(service_of).collect())
}

fn service_of(s: &aws_sdk_ecs::types::Service) -> Service {
    let config = s.deployment_configuration();
    Service {
        name: s.service_name().unwrap_or_default().to_string(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        controller: s.deployment_controller().map_or("ECS", |c| c.r#type().as_str()).to_string(),
        strategy: config.and_then(|c| c.strategy()).map_or("ROLLING", |s| s.as_str()).to_string(),
        hook_stages: config
            .map(|c| c.lifecycle_hooks())
            .unwrap_or_default()
            .iter()
            .flat_map(|h| h.lifecycle_stages().iter().map(|st| st.as_str().to_string()))
            .collect(),
        circuit_breaker: config.and_then(|c| c.deployment_circuit_breaker()).is_some_and(|b| b.enable()),
        target_groups: s.load_balancers().iter().filter_map(|lb| lb.target_group_arn().map(str::to_string)).collect(),
        ..Service::default()
    }
}

/// Fills in the containers and roles of the task definition `s` runs.
async fn read_task_definition(ecs: &aws_sdk_ecs::Client, s: &mut Service) -> Result<(), Failed> {
    let out = ecs
        .describe_task_definition()
        .task_definition(&s.task_definition)
        .send()
        .await
        .map_err(|e| failed("ECS DescribeTaskDefinition", &s.task_definition, "ecs:DescribeTaskDefinition", e))?;
    let Some(td) = out.task_definition() else { return Ok(()) };
    s.containers = td
        .container_definitions()
        .iter()
        .map(|c| Container {
            name: c.name().unwrap_or_default().to_string(),
            image: c.image().unwrap_or_default().to_string(),
        })
        .collect();
    s.task_role = td.task_role_arn().map(str::to_string);
    s.execution_role = td.execution_role_arn().map(str::to_string);
    Ok(())
}
