//! Service leases in S3: reads and conditional writes. What a lease means is decided in
//! [`crate::domain::lease`]; this module only moves it.

use crate::aws::s3::Store;
use crate::domain::error::{AwsError, Error, Failure};
use crate::domain::lease::{may_take, now_ms, Claim, Found, Lease};

/// How often to retry a lost race for a lease before giving up (transiently).
const RACE_RETRIES: usize = 3;

/// The leases of the services pushdeploy deploys.
#[derive(Clone, Debug)]
pub struct LeaseStore {
    store: Store,
}

impl LeaseStore {
    /// Leases kept in `store`'s bucket.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Reads the lease at `key`.
    pub async fn read(&self, key: &str) -> Result<Found, AwsError> {
        Ok(match self.store.get_tagged(key).await? {
            None => Found::Absent,
            Some((bytes, etag)) => Found::Present(serde_json::from_slice(&bytes).ok().map(Box::new), etag),
        })
    }

    /// Writes `mine` over exactly what was `found`; `None` when someone changed it first.
    async fn take(&self, key: &str, found: &Found, mine: &Lease) -> Result<Option<String>, AwsError> {
        let bytes = serde_json::to_vec(mine).expect("leases always serialize");
        match found {
            Found::Absent => self.store.create(key, bytes).await,
            Found::Present(_, etag) => self.store.replace(key, bytes, etag).await,
        }
    }

    /// Takes the lease at `key` over exactly what was `found` (re-reading after a lost race), as
    /// [`may_take`] allows.
    pub async fn claim(&self, key: &str, mut found: Found, mine: &Lease, take_stale: bool) -> Result<Claim, Error> {
        for _ in 0..RACE_RETRIES {
            let stale = match may_take(&found, mine, now_ms(), take_stale) {
                Err(other) => return Ok(Claim::Blocked(other)),
                Ok(stale) => stale,
            };
            if let Some(etag) = self.take(key, &found, mine).await? {
                return Ok(Claim::Held { etag, replaced: found, stale });
            }
            found = self.read(key).await?;
        }
        // Another holder won each time: a busy service, not a failed S3 call.
        Err(Error::LeaseBusy(Failure {
            action: "S3 lease",
            target: key.to_string(),
            detail: format!("lost the race for the lease {RACE_RETRIES} times"),
            hint: "heavy concurrent deliveries for one service; the retry will get it",
        }))
    }

    /// Overwrites our lease (ETag `etag`) with `next`; fails if the lease is no longer ours.
    pub async fn rewrite(&self, key: &str, next: &Lease, etag: &str) -> Result<String, Error> {
        let bytes = serde_json::to_vec(next).expect("leases always serialize");
        // Taken over by another holder: the service is busy with that one, not an S3 failure.
        self.store.replace(key, bytes, etag).await?.ok_or_else(|| {
            Error::LeaseBusy(Failure {
                action: "S3 lease",
                target: key.to_string(),
                detail: "the lease was taken over while this rollout ran (it outlived its expiry)".into(),
                hint: "the function's deadline against the lease's expiry (src/timing.rs)",
            })
        })
    }
}
