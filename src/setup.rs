//! Cold-start wiring shared by the functions: environment, SDK clients, config.

use std::env;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;

use crate::aws::ecr::EcrClient;
use crate::aws::ecs::EcsClient;
use crate::aws::elbv2::Elbv2Client;
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::config::Limits;
use crate::deploy::Deployer;
use crate::error::{ConfigError, Error};
use crate::live_config::{Build, Live, Location};
use crate::smoke::client::HttpClient;
use crate::verify::Verifier;

/// How every AWS call is retried and timed out: set deliberately, not left to SDK defaults.
///
/// Standard retry mode (exponential backoff with jitter, retry quota) retries throttling, 5xx,
/// timeouts and connection errors; 3 attempts fit a 30 s deploy function with room for the
/// invocation-level retries Lambda does on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// One attempt, request to full response.
    pub attempt_timeout: Duration,
    /// One call, every attempt and backoff included.
    pub operation_timeout: Duration,
}

impl Default for AwsPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(4),
            operation_timeout: Duration::from_secs(10),
        }
    }
}

/// Makes rustls on ring the process's TLS crypto; reqwest (smoke tests) uses the process default.
pub fn install_tls_crypto() {
    // Fails only when a provider is already installed, which is the state we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SDK's defaults with its HTTPS client on rustls + ring instead of aws-lc-rs (smaller bootstraps).
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https)
}

impl AwsPolicy {
    /// An SDK config loader with this policy; add endpoint and credentials as needed.
    pub fn loader(&self) -> aws_config::ConfigLoader {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        sdk_defaults()
            .retry_config(
                RetryConfig::standard().with_max_attempts(self.max_attempts).with_initial_backoff(self.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
    }
}

/// SDK clients built from the environment once per cold start.
#[derive(Clone, Debug)]
pub struct Clients {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// S3 (path-style when `AWS_ENDPOINT_URL` points at an emulator).
    pub s3: aws_sdk_s3::Client,
    /// ELBv2 (target health).
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// SNS (notifications).
    pub sns: aws_sdk_sns::Client,
    /// The region the clients talk to.
    pub region: String,
    /// The artifact bucket (`PUSHDEPLOY_BUCKET`; empty until the function's state is built).
    pub bucket: String,
}

impl Clients {
    /// Loads the SDK config from the environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials).
    pub async fn from_env() -> Result<Self, Error> {
        let sdk = AwsPolicy::default().loader().load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| ConfigError {
            file: "environment".into(),
            key: "AWS_REGION".into(),
            message: "no region is set".into(),
        })?;
        // Emulators such as moto serve S3 on one host, so buckets go in the path there.
        let path_style = env::var_os("AWS_ENDPOINT_URL").is_some() || env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style).build();
        Ok(Self {
            ecs: aws_sdk_ecs::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            region,
            bucket: env::var("PUSHDEPLOY_BUCKET").unwrap_or_default(),
        })
    }
}

fn required(name: &str) -> Result<String, ConfigError> {
    match env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(ConfigError { file: "environment".into(), key: name.into(), message: "missing (required)".into() }),
    }
}

/// The topic in `PUSHDEPLOY_TOPIC_ARN`, when set.
fn notifier_from_env(clients: &Clients) -> Option<Notifier> {
    env::var("PUSHDEPLOY_TOPIC_ARN").ok().filter(|t| !t.is_empty()).map(|t| Notifier::new(clients.sns.clone(), t))
}

/// Publishes why a function refuses every invocation (an invalid config, a missing setting):
/// a person must hear of it, once per cold start or new version of the config.
pub async fn report_startup_failure(function: &str, err: &Error) {
    let Ok(clients) = Clients::from_env().await else { return };
    let Some(n) = notifier_from_env(&clients) else { return };
    let m = crate::notify::problem_message(&crate::notify::Problem {
        function,
        service: "pushdeploy",
        target: None,
        doing: if function == "deploy" { "deploy" } else { "verify" },
        error: &err.to_string(),
        consequence: "every invocation is refused until the config is fixed (a new upload is picked up within PUSHDEPLOY_CONFIG_RECHECK_SECONDS)",
    });
    n.send(&m).await;
}

/// What both functions read at cold start: SDK clients, the artifact bucket, where the config lives.
async fn common_from_env() -> Result<(Clients, String, Location, Duration), Error> {
    let clients = Clients::from_env().await?;
    let location = Location::parse(&required("PUSHDEPLOY_CONFIG")?)?;
    let bucket = required("PUSHDEPLOY_BUCKET")?;
    Ok((clients, bucket, location, crate::live_config::recheck_from_env()?))
}

/// The clusters the stack manages (`PUSHDEPLOY_CLUSTERS`, set by template.yaml to the cluster its
/// roles are scoped to), when set.
fn clusters_from_env() -> Option<Vec<String>> {
    env::var("PUSHDEPLOY_CLUSTERS")
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| c.split(',').map(|s| s.trim().to_string()).collect())
}

/// The time verify gives a smoke test: its timeout (`PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS`, default
/// 900) less the margin kept for the verdict, the rollback and the writes.
pub fn smoke_budget_ms(verify_timeout_s: u64) -> u64 {
    Duration::from_secs(verify_timeout_s).saturating_sub(VERDICT_MARGIN).as_millis() as u64
}

/// The deploy function's live state, from `PUSHDEPLOY_CONFIG`, `PUSHDEPLOY_BUCKET` and the SDK environment.
pub async fn deployer_from_env() -> Result<Live<Deployer>, Error> {
    let (clients, bucket, location, recheck) = common_from_env().await?;
    let build: Build<Deployer> = |clients, config| {
        config.check_limits(&Limits { clusters: clusters_from_env(), smoke_budget_ms: None })?;
        Ok(Deployer {
            notifier: notifier_from_env(clients),
            config,
            ecs: EcsClient::new(clients.ecs.clone()),
            ecr: EcrClient::new(clients.ecr.clone()),
            store: Store::new(clients.s3.clone(), clients.bucket.clone()),
            region: clients.region.clone(),
            lease_ttl: crate::deploy::DEFAULT_LEASE_TTL,
        })
    };
    Ok(Live::new("deploy", Clients { bucket, ..clients }, location, build, recheck))
}

/// Time kept back from the invocation's deadline for the verdict, the rollback and the writes.
const VERDICT_MARGIN: Duration = Duration::from_secs(20);
/// The verify function's timeout when `PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS` is unset (Lambda's maximum).
pub const DEFAULT_VERIFY_TIMEOUT_SECONDS: u64 = 900;

/// The verify function's live state; a config whose smoke budget cannot fit the function's timeout is refused.
pub async fn verifier_from_env() -> Result<Live<Verifier>, Error> {
    let (clients, bucket, location, recheck) = common_from_env().await?;
    let build: Build<Verifier> = |clients, config| {
        let timeout_s = match env::var("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS") {
            Ok(v) => v.parse::<u64>().map_err(|_| ConfigError {
                file: "environment".into(),
                key: "PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS".into(),
                message: format!("{v:?} is not a whole number of seconds"),
            })?,
            Err(_) => DEFAULT_VERIFY_TIMEOUT_SECONDS,
        };
        config.check_limits(&Limits {
            clusters: clusters_from_env(),
            smoke_budget_ms: Some(smoke_budget_ms(timeout_s)),
        })?;
        Ok(Verifier {
            config,
            ecs: EcsClient::new(clients.ecs.clone()),
            store: Store::new(clients.s3.clone(), clients.bucket.clone()),
            elbv2: Elbv2Client::new(clients.elbv2.clone()),
            notifier: notifier_from_env(clients),
            http: HttpClient::new(),
        })
    };
    Ok(Live::new("verify", Clients { bucket, ..clients }, location, build, recheck))
}

/// When the verdict must be in hand, from the invocation's deadline (epoch milliseconds).
pub fn verdict_deadline(deadline_epoch_ms: u64) -> Instant {
    deadline_less(deadline_epoch_ms, VERDICT_MARGIN)
}

/// When a deploy must stop, leaving time to answer and log before Lambda ends the invocation.
pub fn deploy_deadline(deadline_epoch_ms: u64) -> Instant {
    deadline_less(deadline_epoch_ms, Duration::from_secs(2))
}

/// Used when the runtime reports no usable deadline (local emulators may send none, or 0).
const FALLBACK_REMAINING: Duration = Duration::from_secs(30);

fn deadline_less(deadline_epoch_ms: u64, margin: Duration) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let remaining =
        if deadline_epoch_ms > now_ms { Duration::from_millis(deadline_epoch_ms - now_ms) } else { FALLBACK_REMAINING };
    // Keep the margin, but never more than half of what is left.
    Instant::now() + remaining.saturating_sub(margin.min(remaining / 2))
}

/// Installs the JSON log subscriber; `RUST_LOG` filters by target and level (default `info`).
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    // `Targets` reads `info,pushdeploy=debug` without the regex engine EnvFilter links in.
    let filter = env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    let fmt = tracing_subscriber::fmt::layer().json().with_current_span(false).with_target(false);
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_keep_a_margin_and_survive_a_missing_one() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let d = deploy_deadline(now_ms + 30_000).duration_since(Instant::now());
        assert!(d > Duration::from_secs(27) && d <= Duration::from_secs(28), "{d:?}");
        let v = verdict_deadline(now_ms + 300_000).duration_since(Instant::now());
        assert!(v > Duration::from_secs(279) && v <= Duration::from_secs(280), "{v:?}");
        // No deadline (0) or one already past: work on with the fallback instead of giving up at once.
        assert!(deploy_deadline(0).duration_since(Instant::now()) > Duration::from_secs(27));
    }
}
