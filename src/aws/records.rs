//! Deployment records and the CodePipeline artifacts in the artifact bucket: the one place they
//! are serialised, written, read and parsed (DESIGN.md's S3 layout).

use tracing::warn;

use crate::aws::s3::Store;
use crate::domain::artifact::{image_definitions, image_definitions_key, image_detail, image_detail_key};
use crate::domain::error::{AwsError, Error};
use crate::domain::lifecycle::HookIndex;
use crate::domain::record::{self, DeploymentRecord};

/// How many of a service's records [`RecordStore::recent`] reads at once: the connections to S3
/// it may hold. Measured with TLS under Lambda's CPU share: 30 at once opened 30 connections on a
/// cold start and cost more CPU in handshakes than the rest of the deploy; 4 keep the read beside
/// the ECS calls it overlaps (about 8 round trips of S3 GETs against 4 of ECS on the critical path).
pub const RECENT_GETS_IN_FLIGHT: usize = 4;

/// A record as found in S3.
#[derive(Debug)]
pub enum Found {
    /// No object at that key.
    Absent,
    /// An object that is not a record (hand-edited, truncated): its key and why.
    Unreadable(String, String),
    /// The record.
    Record(Box<DeploymentRecord>),
}

/// Records read in bulk, with the ones that could not be read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The records read.
    pub records: Vec<DeploymentRecord>,
    /// Objects that are not records (not JSON, an unknown status, a missing field): key and why.
    pub skipped: Vec<(String, String)>,
}

/// Records and artifacts of the services pushdeploy deploys.
#[derive(Clone, Debug)]
pub struct RecordStore {
    store: Store,
}

impl RecordStore {
    /// Records kept in `store`'s bucket.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Writes a record; returns its key.
    pub async fn put(&self, rec: &DeploymentRecord) -> Result<String, AwsError> {
        let key = rec.key();
        self.store.put_json(&key, serde_json::to_vec_pretty(rec).expect("records always serialize")).await?;
        Ok(key)
    }

    /// The record of ECS deployment `ecs_deployment_id` of a service.
    pub async fn get(&self, cluster: &str, service: &str, ecs_deployment_id: &str) -> Result<Found, Error> {
        let key = record::record_key(cluster, service, ecs_deployment_id)?;
        Ok(self.get_key(&key).await?)
    }

    /// True when the record of ECS deployment `ecs_deployment_id` exists.
    pub async fn exists(&self, cluster: &str, service: &str, ecs_deployment_id: &str) -> Result<bool, Error> {
        let key = record::record_key(cluster, service, ecs_deployment_id)?;
        Ok(self.store.get(&key).await?.is_some())
    }

    async fn get_key(&self, key: &str) -> Result<Found, AwsError> {
        Ok(match self.store.get(key).await? {
            None => Found::Absent,
            Some(bytes) => match serde_json::from_slice::<DeploymentRecord>(&bytes) {
                Ok(r) => Found::Record(Box::new(r)),
                Err(e) => Found::Unreadable(format!("s3://{}/{key}", self.store.bucket()), e.to_string()),
            },
        })
    }

    /// A service's `limit` most recently written records (newest first); unreadable ones are skipped with a warning.
    pub async fn recent(&self, cluster: &str, service: &str, limit: usize) -> Result<Vec<DeploymentRecord>, AwsError> {
        use futures_util::stream::{FuturesOrdered, StreamExt};
        let keys = self.store.list(&record::records_prefix(cluster, service)).await?;
        let mut records = Vec::new();
        // A few GETs at once, newest first, not all `limit`: S3 serves HTTP/1.1, so every GET in
        // flight holds a connection of its own, and on a cold start each new one is a TLS
        // handshake on Lambda's CPU share (BENCHMARKS.md, "A cold deploy with TLS").
        let mut waiting = keys.iter().take(limit).map(|(k, _)| k.as_str());
        let mut gets = FuturesOrdered::new();
        for key in waiting.by_ref().take(RECENT_GETS_IN_FLIGHT) {
            gets.push_back(self.get_key(key));
        }
        while let Some(found) = gets.next().await {
            if let Some(key) = waiting.next() {
                gets.push_back(self.get_key(key));
            }
            match found? {
                Found::Record(r) => records.push(*r),
                Found::Unreadable(key, why) => {
                    warn!(key = %key, error = %why, "skipping an unreadable deployment record")
                }
                Found::Absent => {}
            }
        }
        Ok(records)
    }

    /// Every record under `prefix` (`deployments/` for all services) last modified at or after
    /// `since` (epoch seconds; a record is last written after its deployment started, so older
    /// ones cannot fall in a window starting then): one listing, then up to `in_flight` GETs at
    /// once. `progress` hears (read, to read) as they arrive.
    pub async fn all_since(
        &self,
        prefix: &str,
        since: i64,
        in_flight: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Loaded, AwsError> {
        use futures_util::stream::{self, StreamExt};
        let keys: Vec<String> = self
            .store
            .list(prefix)
            .await?
            .into_iter()
            .filter(|(k, modified)| *modified >= since && k.ends_with(".json"))
            .map(|(k, _)| k)
            .collect();
        let total = keys.len();
        let mut gets = stream::iter(keys.iter().map(|k| self.get_key(k))).buffer_unordered(in_flight.max(1));
        let mut loaded = Loaded { records: Vec::with_capacity(total), skipped: Vec::new() };
        let mut done = 0;
        while let Some(found) = gets.next().await {
            done += 1;
            progress(done, total);
            match found? {
                Found::Record(r) => loaded.records.push(*r),
                Found::Unreadable(key, why) => loaded.skipped.push((key, why)),
                Found::Absent => {}
            }
        }
        Ok(loaded)
    }

    /// The hook index object at `key` ([`crate::inbound::hook::index_key`]); `None` when there is none or it
    /// is not an index (logged: it is then rewritten as if absent).
    pub async fn hook_index(&self, key: &str) -> Result<Option<HookIndex>, AwsError> {
        let Some(bytes) = self.store.get(key).await? else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(index) => Ok(Some(index)),
            Err(e) => {
                warn!(key = %key, error = %e, "not a hook index object: taken as absent");
                Ok(None)
            }
        }
    }

    /// Writes the hook index object at `key`.
    pub async fn put_hook_index(&self, key: &str, index: &HookIndex) -> Result<(), AwsError> {
        self.store.put_json(key, serde_json::to_vec(index).expect("an index always serializes")).await
    }

    /// Writes `imagedefinitions.json` and `imageDetail.json` concurrently; returns their keys.
    pub async fn put_artifacts(
        &self,
        cluster: &str,
        service: &str,
        containers: &[String],
        image_uri: &str,
    ) -> Result<Vec<String>, AwsError> {
        let defs_key = image_definitions_key(cluster, service);
        let detail_key = image_detail_key(cluster, service);
        let (a, b) = tokio::join!(
            self.store.put_json(&defs_key, image_definitions(containers, image_uri)),
            self.store.put_json(&detail_key, image_detail(image_uri)),
        );
        a?;
        b?;
        Ok(vec![defs_key, detail_key])
    }

    /// Writes a rollout's artifacts and its record concurrently; returns the keys written.
    pub async fn put_rollout(&self, rec: &DeploymentRecord) -> Result<Vec<String>, AwsError> {
        let (artifacts, record) = tokio::join!(
            self.put_artifacts(&rec.cluster, &rec.service, &rec.containers, &rec.image_uri),
            self.put(rec)
        );
        let mut written = artifacts?;
        written.push(record?);
        Ok(written)
    }

    /// The service's last `imagedefinitions.json`, which a tag-based service plans from.
    pub async fn image_definitions(&self, cluster: &str, service: &str) -> Result<Option<Vec<u8>>, AwsError> {
        self.store.get(&image_definitions_key(cluster, service)).await
    }
}
