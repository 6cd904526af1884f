//! The SDK clients, built once per cold start with one retry and timeout policy, each wrapped
//! once in pushdeploy's client for its service; the artifact store knows its bucket from the start.

use crate::aws::cloudwatch::MetricsReader;
use crate::aws::ecr::EcrClient;
use crate::aws::ecs::EcsClient;
use crate::aws::elbv2::Elbv2Client;
use crate::aws::leases::LeaseStore;
use crate::aws::records::RecordStore;
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::aws::AwsPolicy;
use crate::domain::error::{ConfigError, Error};

/// The SDK's own clients, before pushdeploy wraps them: from the environment ([`SdkClients::load`]),
/// or built by a test against an emulator (S3 path-style, ECR on an endpoint of its own).
#[derive(Clone, Debug)]
pub struct SdkClients {
    /// The SDK config the clients were built from: verify's SSM calls sign with its credentials.
    pub config: aws_config::SdkConfig,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// ELBv2 (target health).
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// SNS (notifications).
    pub sns: aws_sdk_sns::Client,
}

impl SdkClients {
    /// Loads the SDK config from the environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials)
    /// with [`AwsPolicy::default`]; a missing region is refused.
    pub async fn load() -> Result<Self, Error> {
        let config = AwsPolicy::default().loader().load().await;
        if config.region().is_none() {
            return Err(ConfigError {
                file: "environment".into(),
                key: "AWS_REGION".into(),
                message: "no region is set".into(),
            }
            .into());
        }
        // Emulators such as moto serve S3 on one host, so buckets go in the path there.
        let path_style =
            std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_conf = aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style).build();
        Ok(Self {
            ecs: aws_sdk_ecs::Client::new(&config),
            ecr: aws_sdk_ecr::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            config,
        })
    }
}

/// Every client a function uses, each wrapped once: what `Deployer::new` and `Verifier::new` take.
#[derive(Clone, Debug)]
pub struct Clients {
    /// ECS.
    pub ecs: EcsClient,
    /// ECR.
    pub ecr: EcrClient,
    /// The artifact bucket: records, artifacts, service leases (and, with its client, the config object).
    pub store: Store,
    /// The deployment records, artifacts and hook index in the bucket.
    pub records: RecordStore,
    /// The service leases in the bucket.
    pub leases: LeaseStore,
    /// ELBv2 (target health).
    pub elbv2: Elbv2Client,
    /// The load balancer's CloudWatch metrics (verify's canary analysis).
    pub metrics: MetricsReader,
    /// Where refusals and verdicts are published, when a topic is configured.
    pub notifier: Option<Notifier>,
    /// The region the clients talk to.
    pub region: String,
    /// The SDK config the clients were built from: verify's SSM calls sign with its credentials.
    pub sdk: aws_config::SdkConfig,
}

impl Clients {
    /// Wraps `sdk`'s clients: the artifact store on `bucket`, notifications to `topic` when given.
    pub fn new(sdk: SdkClients, bucket: impl Into<String>, topic: Option<String>) -> Self {
        let store = Store::new(sdk.s3, bucket);
        Self {
            ecs: EcsClient::new(sdk.ecs),
            ecr: EcrClient::new(sdk.ecr),
            records: RecordStore::new(store.clone()),
            leases: LeaseStore::new(store.clone()),
            store,
            elbv2: Elbv2Client::new(sdk.elbv2),
            metrics: MetricsReader::new(&sdk.config),
            notifier: topic.map(|t| Notifier::new(sdk.sns, t)),
            region: sdk.config.region().map(|r| r.to_string()).unwrap_or_default(),
            sdk: sdk.config,
        }
    }

    /// [`SdkClients::load`], wrapped ([`Clients::new`]).
    pub async fn load(bucket: impl Into<String>, topic: Option<String>) -> Result<Self, Error> {
        Ok(Self::new(SdkClients::load().await?, bucket, topic))
    }
}
