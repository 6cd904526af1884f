//! Per-service leases in S3: one rollout of a service at a time, across Lambda instances.
//!
//! Two Lambda instances share no memory, so the lock is an S3 object taken with a conditional
//! write (`If-None-Match: *`) and taken over, once expired, with `If-Match` on its ETag. The lease
//! also carries the rollout in flight, so whoever takes over an expired lease (the crashed
//! invocation's retry, usually) can finish what it left: a service must never run a revision that
//! has no record.

use serde::{Deserialize, Serialize};

use crate::aws::s3::Store;
use crate::error::AwsError;
use crate::record::DeploymentRecord;

/// How often to retry a lost race for the same lease before calling it busy.
const RACE_RETRIES: usize = 3;

/// The lease object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The trigger (event id or request id) holding it.
    pub holder: String,
    /// The image being rolled out.
    pub image_uri: String,
    /// When it lapses (epoch milliseconds): no holder outlives its function's timeout.
    pub expires_at_ms: u64,
    /// The rollout in flight once its task definition is registered: the record minus ECS's id.
    #[serde(default)]
    pub pending: Option<DeploymentRecord>,
}

/// `leases/<cluster>/<service>.json`.
pub fn lease_key(cluster: &str, service: &str) -> String {
    format!("leases/{cluster}/{service}.json")
}

/// What trying to take a lease came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquired {
    /// Ours, with its ETag; `stale` is the expired lease it replaced, if any.
    Held {
        /// ETag of our lease object.
        etag: String,
        /// An expired lease left by a holder that never released it.
        stale: Option<Lease>,
    },
    /// Someone else holds it and it has not expired.
    Busy(Lease),
}

/// Pure: may a lease found in S3 be taken over at `now_ms`?
pub fn is_expired(existing: &Lease, now_ms: u64) -> bool {
    existing.expires_at_ms <= now_ms
}

/// Takes the lease at `key`, or reports who holds it.
pub async fn acquire(store: &Store, key: &str, mine: &Lease, now_ms: u64) -> Result<Acquired, AwsError> {
    let bytes = serde_json::to_vec(mine).expect("leases always serialize");
    for _ in 0..RACE_RETRIES {
        if let Some(etag) = store.create(key, bytes.clone()).await? {
            return Ok(Acquired::Held { etag, stale: None });
        }
        let Some((found, etag)) = store.get_tagged(key).await? else { continue };
        // An unreadable lease cannot be honoured: treat it as expired.
        let existing: Option<Lease> = serde_json::from_slice(&found).ok();
        if let Some(existing) = &existing {
            if !is_expired(existing, now_ms) {
                return Ok(Acquired::Busy(existing.clone()));
            }
        }
        if let Some(new_etag) = store.replace(key, bytes.clone(), &etag).await? {
            return Ok(Acquired::Held { etag: new_etag, stale: existing });
        }
    }
    Err(AwsError {
        action: "S3 lease",
        target: key.to_string(),
        detail: format!("lost the race for the lease {RACE_RETRIES} times"),
        hint: "heavy concurrent deliveries for one service; the retry will get it",
        transient: true,
    })
}

/// Records the rollout in flight in our lease; fails if the lease is no longer ours.
pub async fn record_pending(store: &Store, key: &str, lease: &Lease, etag: &str) -> Result<String, AwsError> {
    let bytes = serde_json::to_vec(lease).expect("leases always serialize");
    store.replace(key, bytes, etag).await?.ok_or_else(|| AwsError {
        action: "S3 lease",
        target: key.to_string(),
        detail: "the lease was taken over while this rollout ran (it outlived its expiry)".into(),
        hint: "the deploy function's timeout against the lease duration",
        transient: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive() {
        let l = Lease { holder: "e".into(), image_uri: "i".into(), expires_at_ms: 1000, pending: None };
        assert!(!is_expired(&l, 999));
        assert!(is_expired(&l, 1000));
        assert_eq!(lease_key("c", "s"), "leases/c/s.json");
    }
}
