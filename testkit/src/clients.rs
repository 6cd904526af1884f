//! SDK clients pointed at an emulator, as any role the template defines.

use aws_config::SdkConfig;
use aws_sdk_ecs::config::{Credentials, Region, SharedCredentialsProvider};

use crate::iam::Role;
use crate::names::REGION;

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
}
