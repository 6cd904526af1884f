//! What pushdeploy did and does, from the records, the leases and ECS: `status`, `history`,
//! `show` and `report`. Each command gathers its data here and hands it to [`crate::render`].

use std::io::IsTerminal;

use pushdeploy::aws::ecs::EcsClient;
use pushdeploy::aws::leases::LeaseStore;
use pushdeploy::aws::records::{Loaded, RecordStore};
use pushdeploy::aws::s3::Store;
use pushdeploy::config::{Config, Mode, ServiceConfig};
use pushdeploy::domain::lease::{self, Standing};
use pushdeploy::domain::record::{epoch_seconds, DeploymentRecord, TriggerRef};
use pushdeploy::lambda::live_config::Location;
use pushdeploy::rules::report::{self, Report, Window};
use serde::Serialize;

/// GETs in flight when reading many records.
pub const IN_FLIGHT: usize = 32;
/// Above this many records, reading them shows a progress bar on stderr.
const PROGRESS_ABOVE: usize = 300;

/// A failure of a command: what it was doing and why; exit status 2.
#[derive(Debug)]
pub struct Failed(pub String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.to_string())
    }
}

/// The AWS side of the commands.
pub struct Aws {
    /// ECS.
    pub ecs: EcsClient,
    /// The artifact bucket.
    pub store: Store,
}

impl Aws {
    /// Clients from the SDK's standard chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env(bucket: &str) -> Result<Aws, Failed> {
        let clients = pushdeploy::aws::Clients::load(bucket, None).await?;
        Ok(Aws { ecs: clients.ecs, store: clients.store })
    }

    fn records(&self) -> RecordStore {
        RecordStore::new(self.store.clone())
    }

    /// Reads every record under `prefix` last modified since `since`, with a progress bar on
    /// stderr when there are many.
    pub async fn load(&self, prefix: &str, since: i64) -> Result<Loaded, Failed> {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("reading records {bar:30} {pos}/{len} ({per_sec}, {eta} left)")
                .expect("a valid template"),
        );
        let progress = |done: usize, total: usize| {
            if done == 1 && total > PROGRESS_ABOVE && std::io::stderr().is_terminal() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
        };
        let loaded = self.records().all_since(prefix, since, IN_FLIGHT, &progress).await?;
        bar.finish_and_clear();
        for (key, why) in &loaded.skipped {
            // The key and the parse error quote what is in the bucket, which may act on a terminal.
            let (key, why) = (pushdeploy::domain::text::printable(key), pushdeploy::domain::text::printable(why));
            eprintln!("warning: skipped {key}: not a deployment record ({why})");
        }
        Ok(loaded)
    }
}

/// One configured service, now.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    /// The config's name.
    pub name: String,
    /// `cluster/service`.
    pub target: String,
    /// The task definition ECS runs.
    pub task_definition: String,
    /// The images of the service's containers in it (`repo@sha256:…` or `repo:tag`).
    pub images: Vec<String>,
    /// The tag it was deployed as, when a record says.
    pub tag: Option<String>,
    /// The newest deployment's record id, status and start (RFC 3339).
    pub last: Option<LastDeployment>,
    /// A rollout holding the service's lease right now.
    pub in_flight: Option<String>,
    /// The config's mode for it: `observe` (verify only records and tells its verdict) or `enforce`.
    pub mode: Mode,
}

/// The newest deployment of a service.
#[derive(Debug, Serialize)]
pub struct LastDeployment {
    /// Record id.
    pub id: String,
    /// Where it stands.
    pub status: String,
    /// What caused it.
    pub trigger: String,
    /// When it started.
    pub started: String,
    /// Seconds since it started.
    pub age_seconds: f64,
    /// Why, when it did not pass.
    pub reason: Option<String>,
    /// `observe` when verify gave its verdict in observe mode; left out for `enforce`.
    #[serde(skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
}

/// `status`: each configured service, all read at once.
pub async fn status(aws: &Aws, config: &Config) -> Result<Vec<ServiceStatus>, Failed> {
    futures_util::future::join_all(config.services.iter().map(|svc| service_status(aws, svc)))
        .await
        .into_iter()
        .collect()
}

async fn service_status(aws: &Aws, svc: &ServiceConfig) -> Result<ServiceStatus, Failed> {
    let leases = LeaseStore::new(aws.store.clone());
    let records = aws.records();
    let key = lease::lease_key(&svc.cluster, &svc.service);
    let (running, recent, found) = tokio::join!(
        aws.ecs.current_task_definition(&svc.cluster, &svc.service),
        records.recent(&svc.cluster, &svc.service, 20),
        leases.read(&key)
    );
    let (running, recent, found) = (running?, recent?, found?);
    let described = aws.ecs.describe_task_definition(&running).await?;
    let images: Vec<String> = described
        .task_definition
        .container_definitions()
        .iter()
        .filter_map(|c| c.image())
        .filter(|i| i.contains(&format!("/{}@", svc.repository)) || i.contains(&format!("/{}:", svc.repository)))
        .map(str::to_string)
        .collect();
    let newest = recent.iter().max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)));
    let tag = recent
        .iter()
        .filter(|r| r.task_definition == running && !r.tag.is_empty())
        .max_by(|a, b| a.started_at().unwrap_or(0.0).total_cmp(&b.started_at().unwrap_or(0.0)))
        .map(|r| r.tag.clone());
    let in_flight = match lease::standing(&found, lease::now_ms(), "") {
        Standing::Busy(l) => Some(format!("{} rolling out {}", l.holder, l.image_uri)),
        _ => None,
    };
    Ok(ServiceStatus {
        name: svc.name.clone(),
        target: svc.target(),
        task_definition: running,
        images,
        tag,
        last: newest.map(|r| LastDeployment {
            id: r.id.clone(),
            status: r.status.as_str().to_string(),
            trigger: trigger_name(&r.trigger),
            started: started(r),
            age_seconds: r.started_at().map_or(0.0, |t| now() - t),
            reason: r.reason.clone(),
            mode: r.mode,
        }),
        in_flight,
        mode: svc.mode,
    })
}

/// True when the newest deployment of any service failed: `status` exits 1 for scripts.
pub fn needs_attention(services: &[ServiceStatus]) -> bool {
    services.iter().any(|s| {
        s.last.as_ref().is_some_and(|l| matches!(l.status.as_str(), "failed" | "rolled_back" | "rollback_failed"))
    })
}

/// `history`: a service's deployments (and rollbacks), newest first.
pub async fn history(aws: &Aws, svc: &ServiceConfig, limit: usize) -> Result<Vec<DeploymentRecord>, Failed> {
    let loaded = aws.load(&pushdeploy::domain::record::records_prefix(&svc.cluster, &svc.service), 0).await?;
    let mut records = loaded.records;
    records.sort_by(|a, b| b.started_at().unwrap_or(0.0).total_cmp(&a.started_at().unwrap_or(0.0)));
    records.truncate(limit);
    Ok(records)
}

/// `show`: the record with id `id`, whichever service it belongs to.
pub async fn show(aws: &Aws, id: &str) -> Result<Option<DeploymentRecord>, Failed> {
    let suffix = format!("/{id}.json");
    let keys = aws.store.list("deployments/").await?;
    let Some((key, _)) = keys.into_iter().find(|(k, _)| k.ends_with(&suffix)) else { return Ok(None) };
    let bytes = aws.store.get(&key).await?.ok_or_else(|| Failed(format!("{key} vanished while reading it")))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| Failed(format!("{key} is not a deployment record: {e}")))
}

/// A report and what it was computed from.
pub struct Reported {
    /// The keys.
    pub report: Report,
    /// The records read (the service's only, with `--service`).
    pub records: Vec<DeploymentRecord>,
    /// Objects skipped as not records.
    pub skipped: usize,
}

/// `report`: the four keys over the window, for one service or all.
pub async fn report(aws: &Aws, window: Window, service: Option<&str>) -> Result<Reported, Failed> {
    let loaded = aws.load("deployments/", window.since.floor() as i64).await?;
    let records: Vec<DeploymentRecord> =
        loaded.records.into_iter().filter(|r| service.is_none_or(|s| r.name == s)).collect();
    Ok(Reported { report: report::report(&records, window), records, skipped: loaded.skipped.len() })
}

/// Parses `--since`: `30d`, `12h`, `2w`, `90m`, or an RFC 3339 time; epoch seconds.
pub fn parse_since(since: &str, now: f64) -> Result<f64, String> {
    if let Some(t) = epoch_seconds(since) {
        return Ok(t);
    }
    let (n, unit) = since.split_at(since.find(|c: char| !c.is_ascii_digit()).unwrap_or(since.len()));
    let n: f64 = n.parse().map_err(|_| format!("--since {since:?}: expected e.g. 30d, 12h, 2w or an RFC 3339 time"))?;
    let seconds = match unit {
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        _ => return Err(format!("--since {since:?}: the unit must be m, h, d or w")),
    };
    Ok(now - n * seconds)
}

/// Now, in epoch seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// `push`, `manual deploy`, `automatic rollback`, …
pub fn trigger_name(t: &TriggerRef) -> String {
    match t {
        TriggerRef::Push { .. } => "push".into(),
        TriggerRef::Manual { action, .. } => format!("manual {action}"),
        TriggerRef::AutoRollback { .. } => "automatic rollback".into(),
    }
}

/// When a record's rollout started (RFC 3339), or `?`.
pub fn started(r: &DeploymentRecord) -> String {
    r.timeline.iter().find(|e| e.event == "started").map_or("?".into(), |e| e.at.clone())
}

/// Reads the config from a file or an s3:// URL.
pub(crate) async fn load_config(aws: &Aws, source: &str) -> Result<Config, Failed> {
    let text = match Location::parse(source)? {
        Location::File(path) => {
            std::fs::read_to_string(&path).map_err(|e| Failed(format!("cannot read the config {path}: {e}")))?
        }
        Location::S3 { bucket, key } => {
            let store = aws.store.in_bucket(bucket);
            let bytes = store.get(&key).await?.ok_or_else(|| Failed(format!("no config at {source}")))?;
            String::from_utf8(bytes).map_err(|_| Failed(format!("{source} is not UTF-8")))?
        }
    };
    Ok(Config::parse(&text, source)?)
}

/// What an AWS SDK call's failure says: the service's code and message, or the SDK's own account
/// of it (a timeout, a connection that failed). One wording for every client the command uses.
pub fn sdk_error_detail<E, R>(e: &aws_sdk_ecs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    e.as_service_error()
        .map(|s| format!("{}: {}", s.code().unwrap_or("error"), s.message().unwrap_or_default()))
        .unwrap_or_else(|| aws_sdk_ecs::error::DisplayErrorContext(e).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(parse_since("30d", 100_000_000.0), Ok(100_000_000.0 - 30.0 * 86_400.0));
        assert_eq!(parse_since("2w", 2_000_000.0), Ok(2_000_000.0 - 14.0 * 86_400.0));
        assert_eq!(parse_since("90m", 10_000.0), Ok(10_000.0 - 5400.0));
        assert_eq!(parse_since("2026-01-01T00:00:00Z", 0.0), Ok(1_767_225_600.0));
        assert!(parse_since("30x", 0.0).unwrap_err().contains("unit"));
        assert!(parse_since("soon", 0.0).is_err());
    }
}
