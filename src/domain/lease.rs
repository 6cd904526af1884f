//! Per-service leases in S3: one rollout of a service at a time, across Lambda instances.
//!
//! Two Lambda instances share no memory, so the lock is an S3 object taken with a conditional
//! write: `If-None-Match: *` for a service never deployed, `If-Match` on the ETag just read
//! otherwise. The lease is read alongside the service (off the critical path) and taken before
//! anything is registered. This module decides; [`crate::aws::leases`] reads and writes. It carries the rollout in flight, so whoever takes over an expired
//! lease (the crashed invocation's retry, usually) can finish what it left: a service must never
//! run a revision that has no record. Releasing overwrites it with a released lease naming the
//! task definition the service was left on, which tells the next taker whether its concurrent
//! read of the service could predate that rollout.

use serde::{Deserialize, Serialize};

use crate::domain::record::DeploymentRecord;

/// The lease object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The trigger (event id or request id) holding it, or that last held it.
    pub holder: String,
    /// The Lambda invocation (request id) holding it. Lambda retries a failed invocation under
    /// the same request id, so a lease naming the invocation that meets it has a dead holder.
    #[serde(default)]
    pub invocation: Option<String>,
    /// The image being rolled out.
    pub image_uri: String,
    /// When it lapses (epoch milliseconds): after its holder's deadline ([`crate::domain::timing`]).
    pub expires_at_ms: u64,
    /// The rollout in flight: the record without ECS's id (and without the new task definition
    /// until it is registered).
    #[serde(default)]
    pub pending: Option<DeploymentRecord>,
    /// Set when its holder finished and let go.
    #[serde(default)]
    pub released: bool,
    /// For a released lease: the task definition its holder left the service on.
    #[serde(default)]
    pub task_definition: Option<String>,
}

impl Lease {
    /// A held lease for `holder` in invocation `invocation`, lapsing at `expires_at_ms`.
    pub fn new(
        holder: String,
        invocation: Option<String>,
        image_uri: String,
        expires_at_ms: u64,
        pending: Option<DeploymentRecord>,
    ) -> Lease {
        Lease { holder, invocation, image_uri, expires_at_ms, pending, released: false, task_definition: None }
    }

    /// The lease a holder that failed leaves: expired at once, still carrying its rollout in
    /// flight, so the next delivery adopts it now (records the rollout if ECS took it, else starts
    /// its own) instead of waiting out the lease. Only a holder that died leaves a live lease.
    pub fn handed_over(&self) -> Lease {
        Lease { expires_at_ms: 0, released: false, ..self.clone() }
    }

    /// The lease that lets go of `self`, naming what the service was left running.
    pub fn released(&self, task_definition: Option<String>) -> Lease {
        Lease {
            holder: self.holder.clone(),
            invocation: self.invocation.clone(),
            image_uri: self.image_uri.clone(),
            expires_at_ms: 0,
            pending: None,
            released: true,
            task_definition,
        }
    }
}

#[cfg(test)]
mod handover_tests {
    use super::*;

    #[test]
    fn a_handed_over_lease_is_stale_at_once_and_keeps_its_rollout() {
        let mine = Lease::new("evt".into(), Some("req-1".into()), "img".into(), now_ms() + 45_000, None);
        let live = Found::Present(Some(Box::new(mine.clone())), "e1".into());
        assert!(matches!(standing(&live, now_ms(), "req-2"), Standing::Busy(_)));
        let given = Found::Present(Some(Box::new(mine.handed_over())), "e2".into());
        assert_eq!(standing(&given, now_ms(), "req-2"), Standing::Stale);
        assert_eq!(mine.handed_over().holder, "evt");
    }

    #[test]
    fn lambdas_retry_of_the_holding_invocation_finds_its_holder_dead() {
        // Lambda retries a failed invocation under its request id: the first attempt is gone
        // (it timed out or crashed) even though its lease has not lapsed.
        let mine = Lease::new("evt".into(), Some("req-1".into()), "img".into(), now_ms() + 45_000, None);
        let found = Found::Present(Some(Box::new(mine)), "e1".into());
        assert_eq!(standing(&found, now_ms(), "req-1"), Standing::Stale);
        assert!(matches!(standing(&found, now_ms(), "req-9"), Standing::Busy(_)), "another invocation waits");
    }
}

/// `leases/<cluster>/<service>.json`.
pub fn lease_key(cluster: &str, service: &str) -> String {
    format!("leases/{cluster}/{service}.json")
}

/// A lease object as read, with the ETag a conditional take must name.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// No lease object: the service was never deployed by pushdeploy.
    Absent,
    /// The object and its ETag; `None` when it could not be parsed (treated as expired).
    Present(Option<Box<Lease>>, String),
}

impl Found {
    /// The task definition the lease's last holder said it left the service on, if any.
    pub fn left_on(&self) -> Option<&str> {
        match self {
            Found::Present(Some(l), _) => l.task_definition.as_deref(),
            _ => None,
        }
    }
}

/// What a lease found in S3 means to someone who wants it.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Free to take: never held, or released by its last holder.
    Free,
    /// Expired without being released: its holder died, maybe mid-rollout.
    Stale,
    /// Held, and not expired.
    Busy(Box<Lease>),
}

/// Pure: the standing of a found lease at `now_ms`, to invocation `me` (its request id).
pub fn standing(found: &Found, now_ms: u64, me: &str) -> Standing {
    match found {
        Found::Absent => Standing::Free,
        Found::Present(Some(l), _) if l.released => Standing::Free,
        Found::Present(Some(l), _) if !me.is_empty() && l.invocation.as_deref() == Some(me) => Standing::Stale,
        Found::Present(Some(l), _) if l.expires_at_ms > now_ms => Standing::Busy(l.clone()),
        Found::Present(..) => Standing::Stale,
    }
}

/// Pure: may a service read made alongside taking `found` be trusted? Only if the lease's last
/// holder left the service where the read found it; otherwise the read may predate that rollout.
pub fn read_is_current(found: &Found, read_task_definition: &str) -> bool {
    found.left_on().is_none_or(|td| td == read_task_definition)
}

/// What claiming a lease came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours now.
    Held {
        /// ETag of our lease object.
        etag: String,
        /// The lease object ours replaced.
        replaced: Found,
        /// The expired, unreleased lease we took over: its holder died, maybe mid-rollout.
        stale: Option<Box<Lease>>,
    },
    /// Held by someone else; or expired unreleased, when the claimer may not take that over.
    Blocked(Box<Lease>),
}

/// Pure: what a claimer `mine` may do with `found` at `now_ms`: `Err` with the lease that blocks
/// it, or `Ok` with the stale lease (if any) it takes over. Only a claimer that can finish a
/// crashed rollout may take over a stale lease (`take_stale`).
pub fn may_take(found: &Found, mine: &Lease, now_ms: u64, take_stale: bool) -> Result<Option<Box<Lease>>, Box<Lease>> {
    match standing(found, now_ms, mine.invocation.as_deref().unwrap_or_default()) {
        Standing::Busy(other) => Err(other),
        Standing::Stale => match found {
            Found::Present(Some(l), _) if !take_stale => Err(l.clone()),
            Found::Present(l, _) => Ok(l.clone()),
            Found::Absent => Ok(None),
        },
        Standing::Free => Ok(None),
    }
}

pub use crate::domain::timing::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(expires_at_ms: u64) -> Lease {
        Lease {
            holder: "e".into(),
            invocation: None,
            image_uri: "i".into(),
            expires_at_ms,
            pending: None,
            released: false,
            task_definition: None,
        }
    }

    #[test]
    fn standing_follows_release_and_expiry() {
        assert_eq!(lease_key("c", "s"), "leases/c/s.json");
        assert_eq!(standing(&Found::Absent, 5, ""), Standing::Free);
        let live = Found::Present(Some(Box::new(lease(1000))), "t".into());
        assert_eq!(standing(&live, 999, ""), Standing::Busy(Box::new(lease(1000))));
        assert_eq!(standing(&live, 1000, ""), Standing::Stale, "expiry is inclusive");
        let released = Found::Present(Some(Box::new(lease(1000).released(None))), "t".into());
        assert_eq!(standing(&released, 0, ""), Standing::Free, "a released lease is free before its expiry");
        assert_eq!(standing(&Found::Present(None, "t".into()), 0, ""), Standing::Stale, "unreadable counts as expired");
    }

    #[test]
    fn a_read_is_current_unless_the_last_holder_left_the_service_elsewhere() {
        let left_on =
            |td: Option<&str>| Found::Present(Some(Box::new(lease(0).released(td.map(str::to_string)))), "t".into());
        assert!(read_is_current(&Found::Absent, "td:1"));
        assert!(read_is_current(&left_on(Some("td:2")), "td:2"));
        assert!(!read_is_current(&left_on(Some("td:2")), "td:1"), "the read predates the last rollout");
        assert!(read_is_current(&left_on(None), "td:1"));
    }
}
