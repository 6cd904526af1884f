//! The one service lease every flow that changes a service holds (a deploy, a manual action,
//! verify's automatic rollback): take it, waiting for a live holder; adopt what a dead holder left
//! in flight; release it naming where the service was left; or hand it over after a failure. What
//! a lease means is decided in [`crate::domain::lease`]; the S3 calls are in [`crate::aws::leases`].

use std::time::Instant;

use futures_util::future::join_all;
use tracing::warn;

use crate::aws::ecs::EcsClient;
use crate::aws::leases::LeaseStore;
use crate::aws::records::RecordStore;
use crate::domain::error::{Error, Failure};
use crate::domain::lease::{Claim, Found, Lease};
use crate::domain::timing::Backoff;
use crate::flows::recovery::{self, Adopted};

/// A lease we hold on a service.
#[derive(Debug)]
pub struct HeldLease {
    /// The lease object's key.
    pub key: String,
    /// The ETag of our lease object, which the next rewrite names.
    pub etag: String,
    /// Our lease as written.
    pub lease: Lease,
    /// The lease object ours replaced (a released one names where its holder left the service).
    pub replaced: Found,
    /// Already let go of (released with the rollout's writes, or handed over).
    pub done: bool,
}

/// What trying to take a service's lease came to.
#[derive(Debug)]
pub enum LeaseTaken {
    /// Ours; the second field is an expired lease a dead or failed holder left behind.
    Held(Box<HeldLease>, Option<Box<Lease>>),
    /// Someone else's, still live.
    Busy(Box<Lease>),
}

/// The service leases in a bucket, with what finishing a dead holder's rollout needs.
#[derive(Clone)]
pub struct ServiceLeases<'a> {
    /// The lease objects.
    pub leases: &'a LeaseStore,
    /// Where a dead holder's rollout is recorded.
    pub records: &'a RecordStore,
    /// What the service runs, for that rollout.
    pub ecs: &'a EcsClient,
}

impl ServiceLeases<'_> {
    /// Takes the lease at `key` as `mine`, re-reading and retrying while another live holder has
    /// it, until `until`: `Busy` at that bound. A stale lease is taken over (and returned).
    pub async fn take(&self, key: &str, mine: &Lease, until: Instant) -> Result<LeaseTaken, Error> {
        let mut backoff = Backoff::until(until);
        loop {
            let found = self.leases.read(key).await?;
            let taken = self.claim(key.to_string(), found, mine.clone()).await?;
            if !matches!(taken, LeaseTaken::Busy(_)) || !pause(&mut backoff).await {
                return Ok(taken);
            }
        }
    }

    /// Takes the lease over exactly what was `found`, re-reading it after a lost race.
    pub async fn claim(&self, key: String, found: Found, mine: Lease) -> Result<LeaseTaken, Error> {
        Ok(match self.leases.claim(&key, found, &mine, true).await? {
            Claim::Held { etag, replaced, stale } => {
                LeaseTaken::Held(Box::new(HeldLease { key, etag, lease: mine, replaced, done: false }), stale)
            }
            Claim::Blocked(other) => LeaseTaken::Busy(other),
        })
    }

    /// Finishes the rollout a dead or failed holder's lease carries ([`recovery::adopt`]).
    pub async fn adopt(&self, stale: Lease) -> Result<Adopted, Error> {
        recovery::adopt(self.ecs, self.records, stale).await
    }

    /// Writes `held`'s lease as it now stands (a rollout in flight noted on it).
    pub async fn note(&self, held: &mut HeldLease) -> Result<(), Error> {
        held.etag = self.leases.rewrite(&held.key, &held.lease, &held.etag).await?;
        Ok(())
    }

    /// Lets go of a lease, first finishing any crashed rollout the expired lease it replaced
    /// carried (its taker is the only one who can, whatever its own event came to). `left_on` is
    /// the task definition the service runs now, for the next taker's check of its own read.
    pub async fn release(&self, name: &str, taken: &LeaseTaken, left_on: Option<String>) {
        if let LeaseTaken::Held(_, Some(stale)) = taken {
            if let Err(e) = self.adopt((**stale).clone()).await {
                // Kept: once it expires again, the next taker finishes the crashed rollout.
                warn!(service = %name, error = %e, "could not finish a crashed rollout; keeping the lease");
                return;
            }
        }
        if let LeaseTaken::Held(held, _) = taken {
            if held.done {
                return;
            }
            let released = held.lease.released(left_on.or_else(|| held.replaced.left_on().map(str::to_string)));
            // An unreleased lease only delays the next rollout until it expires: log, do not fail.
            if let Err(e) = self.leases.rewrite(&held.key, &released, &held.etag).await {
                warn!(service = %name, error = %e, "could not release the service lease; it expires by itself");
            }
        }
    }

    /// Hands a lease over after a failure: expired at once, still carrying its rollout, so the
    /// next delivery (a retry, a duplicate, an operator) adopts it instead of waiting it out.
    pub async fn hand_over(&self, name: &str, taken: &LeaseTaken, error: &Error) {
        let LeaseTaken::Held(held, _) = taken else { return };
        if held.done {
            return;
        }
        warn!(service = %name, error = %error, "handing the service lease over to the next delivery");
        if let Err(w) = self.leases.rewrite(&held.key, &held.lease.handed_over(), &held.etag).await {
            warn!(service = %name, error = %w, "could not hand the lease over; it expires by itself");
        }
    }

    /// Lets go once the work under the lease came to `result`: released, naming where the service
    /// was left (`Ok`), or handed over to the next delivery after a failure.
    pub async fn let_go(&self, name: &str, taken: &LeaseTaken, result: Result<Option<String>, &Error>) {
        match result {
            Ok(left_on) => self.release(name, taken, left_on).await,
            Err(e) => self.hand_over(name, taken, e).await,
        }
    }

    /// Releases every lease taken (`(service name, lease)`), at once.
    pub async fn release_all(&self, taken: impl IntoIterator<Item = (&str, &LeaseTaken)>) {
        join_all(taken.into_iter().map(|(name, l)| self.release(name, l, None))).await;
    }
}

/// The lease still held by `other` at the wait bound: transient, retried once that rollout is
/// done. `waiting` says who waited (a deploy, a rollback), `hint` what the retry will do.
pub fn still_busy(target: String, other: &Lease, waiting: String, hint: &'static str) -> Error {
    Error::LeaseBusy(Failure { action: "S3 lease", target, detail: format!("{} {waiting}", other.holder), hint })
}

/// Sleeps the backoff's next pause and answers true; false, without sleeping, when that pause
/// would pass the backoff's end.
pub async fn pause(backoff: &mut Backoff) -> bool {
    match backoff.next(std::time::Instant::now()) {
        Some(p) => {
            tokio::time::sleep(p).await;
            true
        }
        None => false,
    }
}
