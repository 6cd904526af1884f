//! The pauses beside the config in S3 (what one means: [`crate::domain::pause`]). The deploy
//! function reads them with one ListObjectsV2 of their prefix per event, and GETs only a pause
//! that holds a service it was asked about; the operator's command writes and deletes them.
//!
//! Listing first is what makes a missing pause read as "not paused" whatever the caller may
//! list: S3 answers a GET of a missing key 403 to a caller without s3:ListBucket, which would
//! be indistinguishable from a refusal. A listed pause deleted before its GET (a resume in
//! between) is looked for again: gone, it holds nothing.

use crate::aws::s3::Store;
use crate::domain::error::AwsError;
use crate::domain::pause::{pause_key, pauses_prefix, scope_of_key, Pause, Scope};

/// The pauses of one config.
#[derive(Clone, Debug)]
pub struct PauseStore {
    /// The config's bucket.
    store: Store,
    /// The config's key: the pauses are under `<key>.pauses/`.
    config_key: String,
}

impl PauseStore {
    /// The pauses of the config at `config_key` in `store`'s bucket.
    pub fn new(store: Store, config_key: impl Into<String>) -> Self {
        Self { store, config_key: config_key.into() }
    }

    /// `s3://bucket/<key>.pauses/`, for messages.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.store.bucket(), pauses_prefix(&self.config_key))
    }

    /// `s3://bucket/key` of the pause of `scope`, for messages.
    pub fn url(&self, scope: &Scope) -> String {
        format!("s3://{}/{}", self.store.bucket(), pause_key(&self.config_key, scope))
    }

    /// The scopes paused now: one ListObjectsV2.
    async fn listed(&self) -> Result<Vec<(Scope, String)>, AwsError> {
        let keys = self.store.list(&pauses_prefix(&self.config_key)).await?;
        Ok(keys.into_iter().filter_map(|(k, _)| Some((scope_of_key(&self.config_key, &k)?, k))).collect())
    }

    /// The pauses that hold any of `services` (the pause of every service included), read in
    /// full; none at all costs the one List.
    pub async fn holding(&self, services: &[&str]) -> Result<Vec<Pause>, AwsError> {
        let wanted = self.listed().await?.into_iter().filter(|(scope, _)| match scope {
            Scope::All => true,
            Scope::Service(name) => services.contains(&name.as_str()),
        });
        let reads = wanted.map(|(scope, key)| async move { self.read(scope, &key).await });
        let found = futures_util::future::try_join_all(reads).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Every pause in force (the operator's `status`).
    pub async fn all(&self) -> Result<Vec<Pause>, AwsError> {
        let reads = self.listed().await?.into_iter().map(|(scope, key)| async move { self.read(scope, &key).await });
        Ok(futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// The pause of `scope` listed at `key`; `None` when it was deleted since it was listed.
    async fn read(&self, scope: Scope, key: &str) -> Result<Option<Pause>, AwsError> {
        match self.store.get(key).await {
            Ok(Some(bytes)) => Ok(Some(Pause::from_stored(key, scope, &bytes))),
            Ok(None) => Ok(None),
            Err(e) if e.is_access_denied() => {
                // A caller that may not list the whole bucket is answered 403 for a missing key.
                let still = self.store.list(key).await?.into_iter().any(|(k, _)| k == key);
                if still {
                    Err(e)
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The pause of `scope`, read directly (the operator's `pause` and `resume`).
    pub async fn get(&self, scope: &Scope) -> Result<Option<Pause>, AwsError> {
        let key = pause_key(&self.config_key, scope);
        Ok(self.store.get(&key).await?.map(|bytes| Pause::from_stored(&key, scope.clone(), &bytes)))
    }

    /// Writes `pause` unless its scope is paused already: `Some` is the pause in force then, left as it was.
    pub async fn create(&self, pause: &Pause) -> Result<Option<Pause>, AwsError> {
        let scope = pause.scope();
        let bytes = serde_json::to_vec_pretty(pause).expect("pauses always serialize");
        for _ in 0..3 {
            if self.store.create(&pause_key(&self.config_key, &scope), bytes.clone()).await?.is_some() {
                return Ok(None);
            }
            // Taken: report the pause in force (unless it was resumed in between: try again).
            if let Some(there) = self.get(&scope).await? {
                return Ok(Some(there));
            }
        }
        Err(AwsError {
            action: "S3 PutObject (conditional)",
            target: self.url(&scope),
            detail: "paused and resumed by others three times while writing this pause".into(),
            hint: "who else is pausing and resuming this service; try again",
            transient: true,
        })
    }

    /// Deletes the pause of `scope`; the pause it was, or `None` when there was none.
    pub async fn remove(&self, scope: &Scope) -> Result<Option<Pause>, AwsError> {
        let was = self.get(scope).await?;
        if was.is_some() {
            self.store.delete(&pause_key(&self.config_key, scope)).await?;
        }
        Ok(was)
    }
}
