//! The estate's ECS side: network, target groups, task definitions, services, revisions.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, CpuArchitecture, EphemeralStorage,
    FirelensConfiguration, FirelensConfigurationType, HostVolumeProperties, KeyValuePair, LogConfiguration, LogDriver,
    NetworkConfiguration, NetworkMode, OsFamily, PortMapping, ProxyConfiguration, ProxyConfigurationType,
    RuntimePlatform, Secret, Tag, TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType, Volume,
};

use crate::clients::Aws;
use crate::names::{ACCOUNT, REGION};

impl Aws {
    /// Default subnet and security group ids from moto's EC2 (queried raw: no EC2 SDK needed for two ids).
    pub async fn network(&self) -> (String, String) {
        let subnet = self.ec2_query("DescribeSubnets", "subnetId").await;
        let sg = self.ec2_query("DescribeSecurityGroups", "groupId").await;
        (subnet, sg)
    }

    pub(super) async fn ec2_query(&self, action: &str, tag: &str) -> String {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0"
        );
        pushdeploy::aws::tls::install_crypto();
        let body = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("Authorization", auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("Action={action}&Version=2016-11-15"))
            .send()
            .await
            .expect("EC2 query")
            .text()
            .await
            .expect("EC2 answer");
        let open = format!("<{tag}>");
        let start = body.find(&open).unwrap_or_else(|| panic!("no {tag} in {action}")) + open.len();
        let end = body[start..].find('<').expect("closing tag") + start;
        body[start..end].to_string()
    }

    /// Creates an IP target group in the default VPC with `targets` registered (moto reports them healthy).
    pub async fn create_target_group(&self, name: &str, targets: &[&str]) -> String {
        use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
        let vpc = self.ec2_query("DescribeVpcs", "vpcId").await;
        let out = self
            .elbv2
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .expect("create target group");
        let arn = out.target_groups()[0].target_group_arn().expect("arn").to_string();
        if !targets.is_empty() {
            let descs = targets.iter().map(|t| TargetDescription::builder().id(*t).port(8080).build());
            self.elbv2
                .register_targets()
                .target_group_arn(&arn)
                .set_targets(Some(descs.collect()))
                .send()
                .await
                .expect("register targets");
        }
        arn
    }

    /// Registers a Fargate task definition with every field a faithful copy must keep.
    pub async fn register_rich_task_definition(&self, family: &str, app: &[(&str, String)]) -> String {
        let containers = rich_containers(app);
        let out = self
            .ecs
            .register_task_definition()
            .family(family)
            .task_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{family}-task"))
            .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{family}-execution"))
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::Arm64)
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
            .volumes(Volume::builder().name("scratch").host(HostVolumeProperties::builder().build()).build())
            .placement_constraints(
                TaskDefinitionPlacementConstraint::builder()
                    .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                    .expression("attribute:ecs.availability-zone in [ap-southeast-2a]")
                    .build(),
            )
            .proxy_configuration(appmesh_proxy(app.first().map(|(n, _)| *n).unwrap_or("app")))
            .tags(Tag::builder().key("app").value("todo").build())
            .set_container_definitions(Some(containers))
            .send()
            .await
            .expect("register task definition");
        out.task_definition().and_then(|t| t.task_definition_arn()).expect("arn").to_string()
    }

    /// Creates a Fargate service in `cluster` running `task_definition`.
    pub async fn create_service(&self, cluster: &str, service: &str, task_definition: &str) {
        self.create_service_behind(cluster, service, task_definition, None).await
    }

    /// Creates a Fargate service in `cluster` running `task_definition`, its container
    /// `(target group ARN, container name)` registered with a target group on port 8080 when given.
    pub async fn create_service_behind(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        target_group: Option<(&str, &str)>,
    ) {
        let (subnet, sg) = self.network().await;
        let load_balancers = target_group.map(|(tg, container)| {
            vec![aws_sdk_ecs::types::LoadBalancer::builder()
                .target_group_arn(tg)
                .container_name(container)
                .container_port(8080)
                .build()]
        });
        self.ecs
            .create_service()
            .cluster(cluster)
            .service_name(service)
            .task_definition(task_definition)
            .desired_count(2)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .set_load_balancers(load_balancers)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .subnets(subnet)
                            .security_groups(sg)
                            .assign_public_ip(AssignPublicIp::Disabled)
                            .build()
                            .expect("vpc config"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("create service");
    }

    /// The task definition ARN a service runs now.
    pub async fn service_task_definition(&self, cluster: &str, service: &str) -> String {
        let out =
            self.ecs.describe_services().cluster(cluster).services(service).send().await.expect("describe services");
        out.services()[0].task_definition().expect("task definition").to_string()
    }

    /// The id of a service's PRIMARY deployment (`ecs-svc/…`).
    pub async fn service_primary_deployment(&self, cluster: &str, service: &str) -> String {
        let out =
            self.ecs.describe_services().cluster(cluster).services(service).send().await.expect("describe services");
        let primary = out.services()[0].deployments().iter().find(|d| d.status() == Some("PRIMARY"));
        primary.and_then(|d| d.id()).expect("a primary deployment").to_string()
    }

    /// The newest service deployment of a service and its target revision, as ECS (the guard's
    /// emulation: moto has none) lists them: what a lifecycle hook invocation names.
    pub async fn newest_service_deployment(&self, cluster: &str, service: &str) -> (String, String) {
        let out = self
            .ecs
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .send()
            .await
            .expect("list service deployments");
        let newest = out
            .service_deployments()
            .iter()
            .max_by(|a, b| {
                let t =
                    |d: &aws_sdk_ecs::types::ServiceDeploymentBrief| d.created_at().map_or(0.0, |t| t.as_secs_f64());
                t(a).total_cmp(&t(b))
            })
            .expect("a service deployment");
        (
            newest.service_deployment_arn().expect("deployment arn").to_string(),
            newest.target_service_revision_arn().expect("revision arn").to_string(),
        )
    }

    /// Container name → image of a task definition.
    pub async fn images_of(&self, task_definition: &str) -> Vec<(String, String)> {
        let out =
            self.ecs.describe_task_definition().task_definition(task_definition).send().await.expect("describe td");
        out.task_definition()
            .expect("td")
            .container_definitions()
            .iter()
            .map(|c| (c.name().unwrap_or_default().to_string(), c.image().unwrap_or_default().to_string()))
            .collect()
    }

    /// Registers a new revision of `source`'s family as Terraform would after a change: every
    /// container keeps its image (by tag), and `env` is set on each container that has it.
    pub async fn register_changed_revision(&self, source: &str, env: (&str, &str)) -> String {
        self.register_revision_like(
            source,
            |td| {
                for c in td.container_definitions.iter_mut().flatten() {
                    for kv in c.environment.iter_mut().flatten().filter(|kv| kv.name() == Some(env.0)) {
                        *kv = KeyValuePair::builder().name(env.0).value(env.1).build();
                    }
                }
            },
            Vec::new(),
        )
        .await
    }

    /// Registers a new revision of `source`'s family: `source` as `edit` leaves it, tagged `tags`.
    pub async fn register_revision_like(
        &self,
        source: &str,
        edit: impl FnOnce(&mut aws_sdk_ecs::types::TaskDefinition),
        tags: Vec<Tag>,
    ) -> String {
        let out = self.ecs.describe_task_definition().task_definition(source).send().await.expect("describe");
        let mut td = out.task_definition().expect("td").clone();
        edit(&mut td);
        let registered = self
            .ecs
            .register_task_definition()
            .family(td.family().expect("family"))
            .set_task_role_arn(td.task_role_arn().map(str::to_string))
            .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
            .set_network_mode(td.network_mode().cloned())
            .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
            .set_cpu(td.cpu().map(str::to_string))
            .set_memory(td.memory().map(str::to_string))
            .set_volumes(Some(td.volumes().to_vec()))
            .set_placement_constraints(Some(td.placement_constraints().to_vec()))
            .set_runtime_platform(td.runtime_platform().cloned())
            .set_ephemeral_storage(td.ephemeral_storage().cloned())
            .set_proxy_configuration(td.proxy_configuration().cloned())
            .set_container_definitions(Some(td.container_definitions().to_vec()))
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .expect("register a changed revision");
        registered.task_definition().and_then(|t| t.task_definition_arn()).expect("arn").to_string()
    }

    /// Every task definition ARN of a family.
    pub async fn revisions(&self, family: &str) -> Vec<String> {
        let out = self.ecs.list_task_definitions().family_prefix(family).send().await.expect("list tds");
        out.task_definition_arns().to_vec()
    }
}

fn appmesh_proxy(container: &str) -> ProxyConfiguration {
    ProxyConfiguration::builder()
        .r#type(ProxyConfigurationType::Appmesh)
        .container_name(container)
        .properties(KeyValuePair::builder().name("IgnoredUID").value("1337").build())
        .build()
        .expect("proxy configuration")
}

/// The app's containers (every field a faithful copy must keep) and a FireLens log router.
fn rich_containers(app: &[(&str, String)]) -> Vec<ContainerDefinition> {
    let mut containers: Vec<ContainerDefinition> = app
        .iter()
        .map(|(name, image)| {
            ContainerDefinition::builder()
                .name(*name)
                .image(image)
                .essential(true)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .environment(KeyValuePair::builder().name("TODO_ENV").value("prod").build())
                .secrets(
                    Secret::builder()
                        .name("DB_PASSWORD")
                        .value_from(format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/todo/db"))
                        .build()
                        .expect("secret"),
                )
                .log_configuration(
                    LogConfiguration::builder().log_driver(LogDriver::Awsfirelens).build().expect("log config"),
                )
                .build()
        })
        .collect();
    containers.push(
        ContainerDefinition::builder()
            .name("log_router")
            .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
            .essential(true)
            .firelens_configuration(
                FirelensConfiguration::builder()
                    .r#type(FirelensConfigurationType::Fluentbit)
                    .build()
                    .expect("firelens"),
            )
            .build(),
    );
    containers
}
