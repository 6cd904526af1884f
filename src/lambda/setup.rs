//! Cold-start wiring shared by the functions: environment, SDK clients, config.

use std::env;
use std::time::Duration;

use crate::aws::{Clients, SdkClients};
use crate::config::{Limits, PrincipalPattern};
use crate::domain::error::{ConfigError, Error};
use crate::flows::deploy::Deployer;
use crate::flows::verify::Verifier;
use crate::lambda::live_config::{report_refusal, Build, Live, Location};
use crate::smoke::client::HttpClient;

fn required(name: &str) -> Result<String, ConfigError> {
    match env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(ConfigError { file: "environment".into(), key: name.into(), message: "missing (required)".into() }),
    }
}

/// The topic in `PUSHDEPLOY_TOPIC_ARN`, when set.
fn topic_from_env() -> Option<String> {
    env::var("PUSHDEPLOY_TOPIC_ARN").ok().filter(|t| !t.is_empty())
}

/// Publishes why a function refuses every invocation (an invalid config, a missing setting):
/// a person must hear of it, once per cold start or new version of the config.
pub async fn report_startup_failure(function: &str, err: &Error) {
    let bucket = env::var("PUSHDEPLOY_BUCKET").unwrap_or_default();
    let Ok(clients) = Clients::load(bucket, topic_from_env()).await else { return };
    report_refusal(clients.notifier.as_ref(), function, err).await;
}

/// What both functions read at cold start: the SDK clients on the artifact bucket, where the
/// config lives, and how often it is looked at again.
async fn common_from_env() -> Result<(Clients, Location, Duration), Error> {
    let sdk = SdkClients::load().await?;
    let location = Location::parse(&required("PUSHDEPLOY_CONFIG")?)?;
    let bucket = required("PUSHDEPLOY_BUCKET")?;
    Ok((Clients::new(sdk, bucket, topic_from_env()), location, crate::lambda::live_config::recheck_from_env()?))
}

/// The deploy and verify functions' roles (`PUSHDEPLOY_ROLE_ARNS`, set by template.yaml): with
/// `base = "family"`, a revision carrying pushdeploy's tags is its own copy only when one of these
/// registered it (anyone may tag a revision). Unset: none is believed to be its own, so its copies
/// are named among the revisions passed over, which is noisy but never copies the wrong one.
pub fn own_roles_from_env() -> Result<Vec<PrincipalPattern>, ConfigError> {
    let Ok(list) = env::var("PUSHDEPLOY_ROLE_ARNS") else { return Ok(Vec::new()) };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            PrincipalPattern::parse(s).map_err(|m| ConfigError {
                file: "environment".into(),
                key: "PUSHDEPLOY_ROLE_ARNS".into(),
                message: format!("{m}; it lists the deploy and verify roles' ARNs"),
            })
        })
        .collect()
}

/// The deploy function's live state, from `PUSHDEPLOY_CONFIG`, `PUSHDEPLOY_BUCKET` and the SDK environment.
pub async fn deployer_from_env() -> Result<Live<Deployer>, Error> {
    let (clients, location, recheck) = common_from_env().await?;
    let build: Build<Deployer> = |clients, config| {
        config.check_limits(&limits_from_env(Function::Deploy)?)?;
        let own_roles = own_roles_from_env()?;
        if own_roles.is_empty() && config.services.iter().any(|s| s.base == crate::config::Base::Family) {
            tracing::warn!("PUSHDEPLOY_ROLE_ARNS is not set: base = \"family\" will name pushdeploy's own copies among the revisions it passes over");
        }
        let pauses = pauses_from_env(clients)?;
        let passable_roles = passable_roles(|k| env::var(k).ok());
        let verify_in_vpc = verify_in_vpc(|k| env::var(k).ok());
        Ok(Deployer { verify_in_vpc, own_roles, pauses, passable_roles, ..Deployer::new(config, clients) })
    };
    Ok(Live::new("deploy", clients, location, build, recheck))
}

/// The operators' pauses, beside the config (`PUSHDEPLOY_CONFIG`) in its bucket; none for a
/// config read from a file (a local run: nobody can pause it but by editing the file).
pub fn pauses_from_env(clients: &Clients) -> Result<Option<crate::aws::pauses::PauseStore>, ConfigError> {
    Ok(match Location::parse(&required("PUSHDEPLOY_CONFIG")?)? {
        Location::File(_) => None,
        Location::S3 { bucket, key } => Some(crate::aws::pauses::PauseStore::new(clients.store.in_bucket(bucket), key)),
    })
}

/// The most init spends reading the config: Lambda's init phase is limited to 10 s, and an
/// invocation reads it again if init could not.
const INIT_CONFIG_READ_WITHIN: Duration = Duration::from_secs(3);

/// Readies the deploy function during Lambda's init, before the first event: reads the config
/// (opening the S3 connection) and opens the ECS and ECR connections a push's first calls use,
/// so the push's first round of calls waits on no TLS handshake. The handshakes' CPU is spent
/// either way; init is reported (not documented by AWS) to run unthrottled whatever the memory
/// size, and there it costs a fraction of the wall time it costs on the function's CPU share.
/// Nothing here fails init: an unreadable config is read again, and reported, by the first
/// invocation.
pub async fn prepare_deployer(live: &mut Live<Deployer>) {
    match tokio::time::timeout(INIT_CONFIG_READ_WITHIN, live.current()).await {
        Ok(Ok(Ok(deployer))) => deployer.open_connections().await,
        Ok(Ok(Err(_))) => {} // An invalid config: logged and reported by `current`.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not read the config during init; the first invocation reads it again")
        }
        Err(_) => tracing::warn!(
            "the config read during init took over {INIT_CONFIG_READ_WITHIN:?}; the first invocation reads it again"
        ),
    }
}

/// Which function reads the limits: verify knows its own memory and timeout when the template
/// does not say them; deploy then leaves them unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The deploy function.
    Deploy,
    /// The verify function.
    Verify,
}

/// Whether verify runs in the VPC, as template.yaml tells deploy (`PUSHDEPLOY_VERIFY_IN_VPC`,
/// "true" exactly when the stack has VerifySubnetIds); unset reads as outside, Lambda's default.
pub fn verify_in_vpc(var: impl Fn(&str) -> Option<String>) -> bool {
    var("PUSHDEPLOY_VERIFY_IN_VPC").is_some_and(|v| v == "true")
}

/// The roles the stack passes, as template.yaml tells deploy (`PUSHDEPLOY_TASK_ROLE_ARNS`,
/// `PUSHDEPLOY_EXECUTION_ROLE_ARNS`, its TaskRoleArns and ExecutionRoleArns); `None` when unset.
pub fn passable_roles(var: impl Fn(&str) -> Option<String>) -> Option<crate::rules::pass_role::PassableRoles> {
    let (task, execution) = (var("PUSHDEPLOY_TASK_ROLE_ARNS"), var("PUSHDEPLOY_EXECUTION_ROLE_ARNS"));
    crate::rules::pass_role::PassableRoles::from_lists(task.as_deref(), execution.as_deref())
}

/// The verify function's timeout when `PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS` is unset (Lambda's maximum).
pub const DEFAULT_VERIFY_TIMEOUT_SECONDS: u64 = 900;

/// What `function` checks a config against, from the environment (`var` looks a name up).
///
/// Pure, so that both functions provably agree: template.yaml gives both the same
/// `PUSHDEPLOY_CLUSTERS`, `PUSHDEPLOY_VERIFY_MEMORY_MB` and `PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS`
/// (verify's own `MemorySize` and `Timeout`), so a config deploy accepts is one verify can run:
/// deploy never starts a rollout verify would refuse to judge. Without them verify falls back
/// to its own memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`) and Lambda's longest timeout; deploy,
/// which cannot know verify's, leaves them unchecked.
pub fn limits(function: Function, var: impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    let number = |key: &str, unit: &str| -> Result<Option<u64>, ConfigError> {
        let Some(value) = var(key).filter(|v| !v.is_empty()) else { return Ok(None) };
        value.parse::<u64>().map(Some).map_err(|_| ConfigError {
            file: "environment".into(),
            key: key.into(),
            message: format!("{value:?} is not a whole number of {unit}"),
        })
    };
    let clusters = var("PUSHDEPLOY_CLUSTERS")
        .filter(|c| !c.is_empty())
        .map(|c| c.split(',').map(|s| s.trim().to_string()).collect());
    let mut memory = number("PUSHDEPLOY_VERIFY_MEMORY_MB", "MB")?;
    let mut timeout = number("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "seconds")?;
    if function == Function::Verify {
        if memory.is_none() {
            memory = number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "MB")?;
        }
        timeout = timeout.or(Some(DEFAULT_VERIFY_TIMEOUT_SECONDS));
    }
    Ok(Limits {
        clusters,
        smoke_budget_ms: timeout.map(crate::domain::timing::smoke_budget_ms),
        verify_memory_mb: memory,
    })
}

/// [`limits`] from this process's environment.
pub fn limits_from_env(function: Function) -> Result<Limits, ConfigError> {
    limits(function, |k| env::var(k).ok())
}

/// The verify function's live state; a config whose smoke budget cannot fit the function's timeout is refused.
pub async fn verifier_from_env() -> Result<Live<Verifier>, Error> {
    let (clients, location, recheck) = common_from_env().await?;
    let build: Build<Verifier> = |clients, config| {
        config.check_limits(&limits_from_env(Function::Verify)?)?;
        Ok(Verifier::new(config, clients, HttpClient::new()))
    };
    Ok(Live::new("verify", clients, location, build, recheck))
}

/// Installs the EMF metrics recorder ([`crate::flows::metrics`]); `None` if one is installed already.
pub fn install_metrics() -> Option<&'static metrics_cloudwatch_embedded::Collector> {
    metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(crate::flows::metrics::NAMESPACE).init().ok()
}

/// Writes what this invocation recorded as EMF lines on stdout, next to the logs.
pub fn flush_metrics(collector: Option<&'static metrics_cloudwatch_embedded::Collector>) {
    if let Some(c) = collector {
        if let Err(e) = c.flush(std::io::stdout().lock()) {
            tracing::warn!(error = %e, "could not write the invocation's metrics");
        }
    }
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
    use crate::config::Config;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn verify_is_in_the_vpc_only_when_the_template_says_true() {
        assert!(verify_in_vpc(env(&[("PUSHDEPLOY_VERIFY_IN_VPC", "true")])));
        assert!(!verify_in_vpc(env(&[("PUSHDEPLOY_VERIFY_IN_VPC", "false")])));
        assert!(!verify_in_vpc(env(&[])), "unset: Lambda's default, outside the VPC");
    }

    /// A smoke test whose worst case is 5 × (100 ms + 2000 ms) = 10.5 s.
    const TEN_AND_A_HALF: &str = "[[service]]\nname='b'\nservice='b'\ncluster='c'\nrepository='r'\ntags=['latest']\n[service.smoke]\nurl='http://127.0.0.1/'\nattempts=5\ninterval_ms=100\ntimeout_ms=2000\n[[service.smoke.check]]\npath='/'\n";

    #[test]
    fn deploy_and_verify_read_the_same_limits_from_what_the_template_gives_both() {
        let template = [
            ("PUSHDEPLOY_CLUSTERS", "c"),
            ("PUSHDEPLOY_VERIFY_MEMORY_MB", "256"),
            ("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "30"),
        ];
        let deploy = limits(Function::Deploy, env(&template)).unwrap();
        assert_eq!(deploy, limits(Function::Verify, env(&template)).unwrap());
        assert_eq!(deploy.smoke_budget_ms, Some(10_000), "30 s less the 20 s kept for the verdict");
        assert_eq!(deploy.verify_memory_mb, Some(256));
        assert_eq!(deploy.clusters, Some(vec!["c".to_string()]));
        // So a config verify cannot run is refused by deploy, naming the budget.
        let config = Config::parse(TEN_AND_A_HALF, "t.toml").unwrap();
        let e = config.check_limits(&deploy).unwrap_err();
        assert_eq!(e.key, "service[0].smoke");
        assert!(e.message.contains("10500 ms does not fit in the 10000 ms the verify function has"), "{e}");
        assert!(config
            .check_limits(&limits(Function::Deploy, env(&[("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "31")])).unwrap())
            .is_ok());
    }

    #[test]
    fn without_the_template_s_settings_verify_falls_back_to_its_own_and_deploy_checks_nothing() {
        let lambda = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")];
        assert_eq!(limits(Function::Deploy, env(&lambda)).unwrap(), Limits::default());
        let own = limits(Function::Verify, env(&lambda)).unwrap();
        assert_eq!(own.verify_memory_mb, Some(512));
        assert_eq!(own.smoke_budget_ms, Some(crate::domain::timing::smoke_budget_ms(DEFAULT_VERIFY_TIMEOUT_SECONDS)));
        // The template's word wins over the process's own.
        let both = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"), ("PUSHDEPLOY_VERIFY_MEMORY_MB", "128")];
        assert_eq!(limits(Function::Verify, env(&both)).unwrap().verify_memory_mb, Some(128));
        let e = limits(Function::Deploy, env(&[("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "5m")])).unwrap_err();
        assert_eq!(e.key, "PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS");
        assert!(e.message.contains("not a whole number of seconds"), "{e}");
    }
}
