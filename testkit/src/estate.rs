//! The todo app's AWS estate on moto: cluster, Fargate services, ECR repositories, artifact bucket.

use aws_config::SdkConfig;
use aws_sdk_ecs::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, CpuArchitecture, EphemeralStorage,
    FirelensConfiguration, FirelensConfigurationType, HostVolumeProperties, KeyValuePair, LogConfiguration, LogDriver,
    NetworkConfiguration, NetworkMode, OsFamily, PortMapping, ProxyConfiguration, ProxyConfigurationType,
    RuntimePlatform, Secret, Tag, TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType, Volume,
};
use serde_json::{json, Value};

use pushdeploy::domain::image::Digest;

use crate::iam::Role;

/// Region the estate lives in.
pub const REGION: &str = "ap-southeast-2";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
/// The todo app's cluster.
pub const CLUSTER: &str = "todo-cluster";
/// The artifact bucket.
pub const BUCKET: &str = "pushdeploy-artifacts";

/// `<account>.dkr.ecr.<region>.amazonaws.com`.
pub fn registry() -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com")
}

/// SDK clients pointed at an emulator: one endpoint, or ECR and S3 on endpoints of their own.
#[derive(Clone, Debug)]
pub struct Aws {
    /// The endpoint, e.g. `http://127.0.0.1:5000` (every service but those split off).
    pub endpoint: String,
    /// ECR's own endpoint, when split off.
    pub ecr_endpoint: Option<String>,
    /// S3's own endpoint, when split off.
    pub s3_endpoint: Option<String>,
    /// The shared SDK config.
    pub sdk: SdkConfig,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// S3, path-style.
    pub s3: aws_sdk_s3::Client,
    /// ELBv2.
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// SQS (the failed-invocations queue `redrive` reads).
    pub sqs: aws_sdk_sqs::Client,
    /// SSM (Parameter Store: smoke-test credentials).
    pub ssm: aws_sdk_ssm::Client,
}

impl Aws {
    /// Clients for `endpoint` with dummy credentials in [`REGION`].
    pub async fn new(endpoint: &str) -> Self {
        Self::with_loader(endpoint, pushdeploy::aws::tls::sdk_defaults()).await
    }

    /// Clients with ECR and S3 on endpoints of their own, as on AWS, where those services do not
    /// share a server with ECS: a single emulator process would serve their calls one at a time.
    pub async fn split(endpoint: &str, ecr: &str, s3: &str) -> Self {
        let mut aws = Self::new(endpoint).await;
        let ecr_conf = aws_sdk_ecr::config::Builder::from(&aws.sdk).endpoint_url(ecr).build();
        let s3_conf = aws_sdk_s3::config::Builder::from(&aws.sdk).endpoint_url(s3).force_path_style(true).build();
        aws.ecr = aws_sdk_ecr::Client::from_conf(ecr_conf);
        aws.s3 = aws_sdk_s3::Client::from_conf(s3_conf);
        aws.ecr_endpoint = Some(ecr.to_string());
        aws.s3_endpoint = Some(s3.to_string());
        aws
    }

    /// Clients for `endpoint` built from `loader` (e.g. pushdeploy's own retry and timeout policy).
    pub async fn with_loader(endpoint: &str, loader: aws_config::ConfigLoader) -> Self {
        let sdk = loader
            .endpoint_url(endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "testkit"))
            .load()
            .await;
        let s3_conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
        Self {
            endpoint: endpoint.to_string(),
            ecr_endpoint: None,
            s3_endpoint: None,
            ecs: aws_sdk_ecs::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            sdk,
        }
    }

    /// These clients signing as `role` (its access key): behind the IAM guard, the role's policy
    /// in template.yaml decides what they may do.
    pub fn as_role(&self, role: Role) -> Self {
        self.signing_as(role.access_key())
    }

    /// These clients signing with `access_key`: a function's role's key, or any other, which the
    /// guard passes unchecked (as the harness) and names as a session of a role of that name
    /// when it registers a revision ([`crate::iam::registrant_of`]), e.g. `developer`: someone
    /// outside the config's trusted registrants.
    pub fn signing_as(&self, access_key: &str) -> Self {
        let creds = Credentials::new(access_key, "testing", None, None, "testkit-role");
        let sdk = self.sdk.to_builder().credentials_provider(SharedCredentialsProvider::new(creds)).build();
        let ecs_conf = aws_sdk_ecs::config::Builder::from(&sdk);
        let mut ecr_conf = aws_sdk_ecr::config::Builder::from(&sdk);
        let mut s3_conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true);
        if let Some(e) = &self.ecr_endpoint {
            ecr_conf = ecr_conf.endpoint_url(e);
        }
        if let Some(e) = &self.s3_endpoint {
            s3_conf = s3_conf.endpoint_url(e);
        }
        Self {
            endpoint: self.endpoint.clone(),
            ecr_endpoint: self.ecr_endpoint.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            ecs: aws_sdk_ecs::Client::from_conf(ecs_conf.build()),
            ecr: aws_sdk_ecr::Client::from_conf(ecr_conf.build()),
            s3: aws_sdk_s3::Client::from_conf(s3_conf.build()),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            sdk,
        }
    }

    /// Stores `value` as the SecureString parameter `name` (under SSM's own key, `alias/aws/ssm`,
    /// or `key_id`), as an operator stores a smoke-test credential.
    pub async fn put_secure_string(&self, name: &str, value: &str, key_id: Option<&str>) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .set_key_id(key_id.map(str::to_string))
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
    }

    /// Stores `value` as a plain `String` parameter (not a SecureString), as a careless operator might.
    pub async fn put_string_parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
    }

    /// Environment variables that point a function process at this endpoint, signing as `role`.
    pub fn function_env(&self, role: Role) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", role.access_key()),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // As template.yaml sets it for both functions: how base = "family" tells its own copies.
        let roles: Vec<String> = Role::ALL.iter().map(|r| r.role_arn()).collect();
        env.push(("PUSHDEPLOY_ROLE_ARNS".to_string(), roles.join(",")));
        // The SDK's service-specific endpoint variables win over AWS_ENDPOINT_URL.
        for (var, endpoint) in
            [("AWS_ENDPOINT_URL_ECR", &self.ecr_endpoint), ("AWS_ENDPOINT_URL_S3", &self.s3_endpoint)]
        {
            if let Some(e) = endpoint {
                env.push((var.to_string(), e.clone()));
            }
        }
        env
    }

    /// Creates a versioned bucket.
    pub async fn create_bucket(&self, name: &str) {
        use aws_sdk_s3::types::{
            BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, VersioningConfiguration,
        };
        self.s3
            .create_bucket()
            .bucket(name)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(REGION))
                    .build(),
            )
            .send()
            .await
            .expect("create bucket");
        self.s3
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .expect("bucket versioning");
    }

    /// Creates an ECR repository.
    pub async fn create_repository(&self, name: &str) {
        self.ecr.create_repository().repository_name(name).send().await.expect("create repository");
    }

    /// "Pushes" an image: a manifest whose layer is derived from `seed`, so each seed has its own digest.
    pub async fn push_image(&self, repository: &str, tag: &str, seed: &str) -> Digest {
        let layer = fake_digest(seed);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": fake_digest(&format!("config-{seed}"))},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": layer}]
        });
        let out = self
            .ecr
            .put_image()
            .repository_name(repository)
            .image_tag(tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .expect("put image");
        let digest = out.image().and_then(|i| i.image_id()).and_then(|i| i.image_digest()).expect("pushed digest");
        Digest::parse(digest).expect("moto answers sha256 digests")
    }

    /// Default subnet and security group ids from moto's EC2 (queried raw: no EC2 SDK needed for two ids).
    pub async fn network(&self) -> (String, String) {
        let subnet = self.ec2_query("DescribeSubnets", "subnetId").await;
        let sg = self.ec2_query("DescribeSecurityGroups", "groupId").await;
        (subnet, sg)
    }

    async fn ec2_query(&self, action: &str, tag: &str) -> String {
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
        let (subnet, sg) = self.network().await;
        self.ecs
            .create_service()
            .cluster(cluster)
            .service_name(service)
            .task_definition(task_definition)
            .desired_count(2)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
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

    /// Every key in a bucket.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.s3.list_objects_v2().bucket(bucket).send().await.expect("list objects");
        let mut keys: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
        keys.sort();
        keys
    }

    /// Writes `value` as JSON at `key` (e.g. a lease or a record a test sets up).
    pub async fn put_json(&self, bucket: &str, key: &str, value: &impl serde::Serialize) {
        let body = serde_json::to_vec(value).expect("serializes");
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Sends `body` to the queue at `queue` with string message attributes (an EventBridge dead
    /// letter carries RULE_ARN, TARGET_ARN, ERROR_CODE and ERROR_MESSAGE so).
    pub async fn send_message(&self, queue: &str, body: &str, attributes: &[(&str, &str)]) {
        use aws_sdk_sqs::types::MessageAttributeValue;
        let mut request = self.sqs.send_message().queue_url(queue).message_body(body);
        for (k, v) in attributes {
            let value = MessageAttributeValue::builder().data_type("String").string_value(*v).build().expect("attr");
            request = request.message_attributes(*k, value);
        }
        request.send().await.expect("send a message");
    }

    /// The bodies of the messages visible in the queue now, read without hiding them.
    pub async fn visible_messages(&self, queue: &str) -> Vec<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive messages");
        out.messages().iter().map(|m| m.body().unwrap_or_default().to_string()).collect()
    }

    /// An object's bytes.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out =
            self.s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        out.body.collect().await.expect("body").into_bytes().to_vec()
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

/// A `sha256:` string unique to `seed` (hex of the seed, padded): distinct layers give distinct images in moto.
pub fn fake_digest(seed: &str) -> String {
    let mut hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    hex.truncate(64);
    format!("sha256:{hex:0>64}")
}

/// The todo app: two Fargate services behind one ALB, each fed by its own repository.
pub struct TodoApp {
    /// Clients.
    pub aws: Aws,
    /// Digest of the frontend's first image.
    pub frontend_v0: Digest,
    /// Digest of the backend's first image.
    pub backend_v0: Digest,
}

impl TodoApp {
    /// Creates cluster, repositories (with a first image each), bucket and both services.
    pub async fn create(aws: Aws) -> Self {
        aws.ecs.create_cluster().cluster_name(CLUSTER).send().await.expect("create cluster");
        aws.create_bucket(BUCKET).await;
        let reg = registry();
        let mut digests = Vec::new();
        for (service, container) in [("todo-frontend", "frontend"), ("todo-backend", "backend")] {
            aws.create_repository(service).await;
            digests.push(aws.push_image(service, "latest", &format!("{service}-v0")).await);
            let td =
                aws.register_rich_task_definition(service, &[(container, format!("{reg}/{service}:latest"))]).await;
            aws.create_service(CLUSTER, service, &td).await;
        }
        let backend_v0 = digests.pop().expect("two digests");
        let frontend_v0 = digests.pop().expect("two digests");
        Self { aws, frontend_v0, backend_v0 }
    }
}

/// The EventBridge event ECR sends for a successful push.
pub fn ecr_push_event(id: &str, repository: &str, tag: &str, digest: &Digest) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": pushdeploy::domain::record::now(),
        "region": REGION,
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest.as_str(),
            "action-type": "PUSH",
            "image-tag": tag
        }
    })
}

/// The event ECS sends when a service deployment changes state.
pub fn ecs_deployment_event(id: &str, service: &str, deployment_id: &str, event_name: &str, reason: &str) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": pushdeploy::domain::record::now(),
        "region": REGION,
        "resources": [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{service}")],
        "detail": {
            "eventType": if event_name.ends_with("FAILED") { "ERROR" } else { "INFO" },
            "eventName": event_name,
            "deploymentId": deployment_id,
            "updatedAt": pushdeploy::domain::record::now(),
            "reason": reason
        }
    })
}

/// A lifecycle hook invocation as ECS sends it, built from the fixture in `events/` (AWS's
/// documented payload): `stage` of `deployment` with green `revision`; `production` gives the
/// production weights of green and blue (`blue` names blue's revision).
pub fn hook_invocation(hook: &HookCall<'_>) -> Value {
    let mut v: Value = serde_json::from_str(include_str!("../../events/ecs-hook-post-test-traffic-shift.json"))
        .expect("the fixture is JSON");
    v["executionId"] = json!(hook.execution_id);
    v["lifecycleStage"] = json!(hook.stage);
    v["resourceArn"] = json!(hook.deployment);
    let details = &mut v["executionDetails"];
    details["serviceArn"] = json!(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{}", hook.service));
    details["targetServiceRevisionArn"] = json!(hook.revision);
    if let Some((green, blue)) = hook.production {
        let blue_arn =
            hook.revision.rsplit_once('/').map(|(p, _)| format!("{p}/1920498462936580504")).unwrap_or_default();
        details["productionTrafficWeights"] = json!({ hook.revision: green, blue_arn: blue });
    }
    if let Some(d) = &hook.hook_details {
        v["hookDetails"] = d.clone();
    }
    v
}

/// A rewrite of ECS's DescribeServices answer for `service` as a blue/green service whose
/// lifecycle hook is pushdeploy's verify at `stages` (moto keeps no deploymentConfiguration),
/// shaped as the ECS API model defines `DeploymentConfiguration`; for `Guard::set_fixture`.
pub fn blue_green_service(service: &str, stages: &[&str]) -> crate::guard::Fixture {
    let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
    let service = service.to_string();
    std::sync::Arc::new(move |_request, mut answer| {
        for svc in answer["services"].as_array_mut().into_iter().flatten() {
            if svc["serviceName"] == service.as_str() {
                svc["deploymentConfiguration"] = json!({
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                    "strategy": "BLUE_GREEN",
                    "bakeTimeInMinutes": 5,
                    "lifecycleHooks": [{
                        "hookTargetArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:pushdeploy-verify"),
                        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/pushdeploy-HookInvokeRole"),
                        "lifecycleStages": stages,
                    }],
                });
            }
        }
        answer
    })
}

/// What a lifecycle hook invocation is about.
#[derive(Debug, Clone)]
pub struct HookCall<'a> {
    /// ECS's id of the hook execution.
    pub execution_id: &'a str,
    /// `POST_TEST_TRAFFIC_SHIFT`, …
    pub stage: &'a str,
    /// The ECS service name.
    pub service: &'a str,
    /// The service deployment ARN.
    pub deployment: &'a str,
    /// The green service revision ARN.
    pub revision: &'a str,
    /// Production weights (green, blue), for a traffic shift.
    pub production: Option<(u32, u32)>,
    /// `hookDetails` (what the last IN_PROGRESS answer returned).
    pub hook_details: Option<Value>,
}

/// The todo app's config with the backend as a blue/green service whose lifecycle hook is
/// pushdeploy: checks through the stand-in's test listener at `test` and production at `app`.
pub fn blue_green_config(app: &str, test: &str, attempts: u32, consecutive: u32) -> String {
    let (header, value) = crate::standin::TEST_HEADER;
    local_config(app)
        .replace(
            &format!("url = \"{app}api/\"\nattempts = 5\ninterval_ms = 100\ntimeout_ms = 2000\nconsecutive = 2\n"),
            &format!(
                "url = \"{app}api/\"\ntest_url = \"{test}api/\"\ntest_headers = {{ {header} = \"{value}\" }}\nattempts = {attempts}\ninterval_ms = 1000\ntimeout_ms = 2000\nconsecutive = {consecutive}\n"
            ),
        )
        + "\n[service.hook]\nstages = [\"POST_TEST_TRAFFIC_SHIFT\", \"PRODUCTION_TRAFFIC_SHIFT\", \"POST_PRODUCTION_TRAFFIC_SHIFT\"]\ntimeout_minutes = 10\n"
}

/// `config` (the todo app's) with the backend copying its family's newest revision that the
/// estate's Terraform registered: `base = "family"`, `trusted_registrants` naming its role.
pub fn family_base_config(config: &str) -> String {
    config.replacen(
        "repository = \"todo-backend\"",
        &format!(
            "repository = \"todo-backend\"\nbase = \"family\"\ntrusted_registrants = [\"{}\"]",
            crate::iam::TERRAFORM_ROLE_ARN
        ),
        1,
    )
}

/// The todo app's config with smoke tests against a local stand-in at `app` (`http://127.0.0.1:<port>/`).
pub fn local_config(app: &str) -> String {
    format!(
        r#"# The todo app on this machine: the "ALB" is a stand-in on 127.0.0.1.
[defaults]
cluster = "{CLUSTER}"
strategy = "pin-digest"

[[service]]
name = "frontend"
service = "todo-frontend"
repository = "todo-frontend"
tags = ["latest"]

[service.smoke]
url = "{app}"
attempts = 5
interval_ms = 100
timeout_ms = 2000
consecutive = 2

[[service.smoke.check]]
path = "/"
status = 200
contains = "<div id=\"root\">"

[[service]]
name = "backend"
service = "todo-backend"
repository = "todo-backend"
tags = ["latest", "v*"]

[service.smoke]
url = "{app}api/"
attempts = 5
interval_ms = 100
timeout_ms = 2000
consecutive = 2

[[service.smoke.check]]
path = "todoItems"
status = 200
json_pointer = ""
max_latency_ms = 1000

[service.smoke.read_after_write]
write_path = "todoItems"
write_body = '{{"name": "{{marker}}", "isComplete": false}}'
read_path = "todoItems"
reads = 6
delete_path = "todoItems/{{id}}"
id_pointer = "/id"
"#
    )
}

/// pushdeploy's clients over `aws` (as one role), on the artifact bucket, notifying `topic` when given.
pub fn clients(aws: &Aws, topic: Option<&str>) -> pushdeploy::aws::Clients {
    let sdk = pushdeploy::aws::SdkClients {
        config: aws.sdk.clone(),
        ecs: aws.ecs.clone(),
        ecr: aws.ecr.clone(),
        s3: aws.s3.clone(),
        elbv2: aws.elbv2.clone(),
        sns: aws.sns.clone(),
    };
    pushdeploy::aws::Clients::new(sdk, BUCKET, topic.map(str::to_string))
}

/// A deployer over `aws` with `config` (what `setup::deployer_from_env` builds in Lambda).
pub fn deployer(aws: &Aws, config: &str) -> pushdeploy::flows::deploy::Deployer {
    let config = pushdeploy::config::Config::parse(config, "test.toml").expect("test config is valid");
    pushdeploy::flows::deploy::Deployer {
        own_roles: Role::ALL
            .iter()
            .map(|r| pushdeploy::config::PrincipalPattern::parse(&r.role_arn()).expect("a role ARN"))
            .collect(),
        ..pushdeploy::flows::deploy::Deployer::new(config, &clients(&aws.as_role(Role::Deploy), None))
    }
}

/// A verifier over `aws` with `config`, notifying `topic` when given.
pub fn verifier(aws: &Aws, config: &str, topic: Option<&str>) -> pushdeploy::flows::verify::Verifier {
    let config = pushdeploy::config::Config::parse(config, "test.toml").expect("test config is valid");
    let clients = clients(&aws.as_role(Role::Verify), topic);
    pushdeploy::flows::verify::Verifier::new(config, &clients, pushdeploy::smoke::client::HttpClient::new())
}
