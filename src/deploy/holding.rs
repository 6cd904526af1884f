//! The lease protocol of a deploy: take a service's lease, wait for another rollout's, adopt a
//! dead holder's rollout, release it when done, hand it over on failure. What a lease means is
//! decided in [`crate::lease`]; the S3 calls are in [`crate::aws::leases`].

use futures_util::future::{join_all, BoxFuture};
use tracing::{info, warn};

use super::decision::ServiceState;
use super::{Deployer, Invocation, Request};
use crate::config::ServiceConfig;
use crate::error::{AwsError, Error};
use crate::lease::{self, Claim, Found, Lease, Standing};
use crate::outcome::DeploymentSummary;
use crate::outcome::Outcome;
use crate::recovery;
use crate::timing::Backoff;

/// A lease we hold on a service.
#[derive(Debug)]
pub(super) struct HeldLease {
    pub key: String,
    pub etag: String,
    pub lease: Lease,
    /// The lease object ours replaced (a released one names where its holder left the service).
    pub replaced: Found,
    /// Already let go of (released with the rollout's writes, or handed over).
    pub done: bool,
}

/// What trying to take a service's lease came to.
pub(super) enum LeaseTaken {
    /// Ours; `stale` is an expired lease a dead or failed holder left behind.
    Held(Box<HeldLease>, Option<Box<Lease>>),
    /// Someone else's, still live.
    Busy(Box<Lease>),
}

impl Deployer {
    /// Reads and takes a service's lease (manual actions, which take it before anything else),
    /// waiting for another rollout's live lease until the invocation's wait bound.
    pub(super) async fn take_lease(
        &self,
        svc: &ServiceConfig,
        invocation: Invocation<'_>,
        holder: &str,
        image_uri: &str,
    ) -> Result<LeaseTaken, Error> {
        let key = lease::lease_key(&svc.cluster, &svc.service);
        let mine = Lease::new(
            holder.to_string(),
            Some(invocation.request_id.to_string()),
            image_uri.to_string(),
            invocation.deadline.lease_expires_at_ms(),
            None,
        );
        let mut backoff = Backoff::until(invocation.deadline.wait_until());
        loop {
            let found = self.leases().read(&key).await?;
            let taken = self.claim(key.clone(), found, mine.clone()).await?;
            if !matches!(taken, LeaseTaken::Busy(_)) || !backoff.wait().await {
                return Ok(taken);
            }
        }
    }

    /// Takes the lease over exactly what was `found`, re-reading it after a lost race.
    async fn claim(&self, key: String, found: Found, mine: Lease) -> Result<LeaseTaken, Error> {
        Ok(match self.leases().claim(&key, found, &mine, true).await? {
            Claim::Held { etag, replaced, stale } => {
                LeaseTaken::Held(Box::new(HeldLease { key, etag, lease: mine, replaced, done: false }), stale)
            }
            Claim::Blocked(other) => LeaseTaken::Busy(other),
        })
    }

    /// Reads a service's lease alongside DescribeServices, then takes the lease alongside
    /// DescribeTaskDefinition; its recent records are read beside both steps, since only the
    /// decision after them needs the records: none of it adds a round trip to the rollout.
    pub(super) async fn lease_and_state(
        &self,
        svc: &ServiceConfig,
        req: Request<'_>,
        current: impl std::future::Future<Output = Result<String, AwsError>>,
    ) -> (Result<LeaseTaken, Error>, Option<Result<ServiceState, Error>>) {
        let push = req.is_push();
        let ((taken, state), history) = tokio::join!(self.lease_and_described(svc, req, current), self.history(svc));
        let state = state.map(|state| match (state, history) {
            (Ok(state), Ok(history)) => {
                Ok(ServiceState { pushes: super::rollout::pushes_of(svc, &history, push), history, ..state })
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        });
        (taken, state)
    }

    /// [`Deployer::lease_and_state`] but the records (left empty).
    async fn lease_and_described(
        &self,
        svc: &ServiceConfig,
        req: Request<'_>,
        current: impl std::future::Future<Output = Result<String, AwsError>>,
    ) -> (Result<LeaseTaken, Error>, Option<Result<ServiceState, Error>>) {
        let key = lease::lease_key(&svc.cluster, &svc.service);
        let leases = self.leases();
        let (found, current, previous) = tokio::join!(leases.read(&key), current, self.previous_definitions(svc));
        let (found, current_arn) = match (found, current) {
            (Ok(f), Ok(c)) => (f, c),
            (Err(e), _) => return (Err(e.into()), None),
            (_, Err(e)) => return (Err(e.into()), None),
        };
        if let Standing::Busy(other) = lease::standing(&found, lease::now_ms(), req.invocation.request_id) {
            return (Ok(LeaseTaken::Busy(other)), None);
        }
        let image_uri = req.image.pinned_uri().unwrap_or_default();
        // What a taker of this lease after a crash needs to finish the rollout; the task definition
        // is not known until registered, and the service running this image tells it.
        let pending = self.new_record(svc, &req, &image_uri, &[], &current_arn, "");
        let mine = Lease::new(
            req.trigger.id().to_string(),
            Some(req.invocation.request_id.to_string()),
            image_uri,
            req.invocation.deadline.lease_expires_at_ms(),
            Some(pending),
        );
        let (taken, described) = tokio::join!(self.claim(key, found, mine), self.describe_state(svc, &current_arn));
        let state = match (described, previous) {
            (Ok((current, choice)), Ok(previous_definitions)) => Ok(ServiceState {
                current,
                current_arn,
                previous_definitions,
                base: choice.base,
                passed_over: choice.passed_over,
                pushes: Vec::new(),
                history: Vec::new(),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        (taken, Some(state))
    }

    /// Lets go of a lease, first finishing any crashed rollout the expired lease it replaced
    /// carried (its taker is the only one who can, whatever its own event came to). `left_on` is
    /// the task definition the service runs now, for the next taker's check of its own read.
    pub(super) async fn release(&self, svc: &ServiceConfig, taken: &LeaseTaken, left_on: Option<String>) {
        if let LeaseTaken::Held(_, Some(stale)) = taken {
            if let Err(e) = recovery::adopt(&self.ecs, &self.records(), (**stale).clone()).await {
                // Kept: once it expires again, the next taker finishes the crashed rollout.
                warn!(service = %svc.name, error = %e, "could not finish a crashed rollout; keeping the lease");
                return;
            }
        }
        if let LeaseTaken::Held(held, _) = taken {
            if held.done {
                return;
            }
            let released = held.lease.released(left_on.or_else(|| held.replaced.left_on().map(str::to_string)));
            // An unreleased lease only delays the next rollout until it expires: log, do not fail.
            if let Err(e) = self.leases().rewrite(&held.key, &released, &held.etag).await {
                warn!(service = %svc.name, error = %e, "could not release the service lease; it expires by itself");
            }
        }
    }

    /// Hands a lease over after a failure: expired at once, still carrying its rollout, so the
    /// next delivery (a retry, a duplicate, an operator) adopts it instead of waiting it out.
    pub(super) async fn hand_over(&self, svc: &ServiceConfig, taken: &LeaseTaken, error: &Error) {
        let LeaseTaken::Held(held, _) = taken else { return };
        if held.done {
            return;
        }
        warn!(service = %svc.name, error = %error, "handing the service lease over to the next delivery");
        if let Err(w) = self.leases().rewrite(&held.key, &held.lease.handed_over(), &held.etag).await {
            warn!(service = %svc.name, error = %w, "could not hand the lease over; it expires by itself");
        }
    }

    pub(super) async fn release_all(&self, services: &[&ServiceConfig], leases: &[Result<LeaseTaken, Error>]) {
        join_all(services.iter().zip(leases).filter_map(|(s, l)| l.as_ref().ok().map(|l| self.release(s, l, None))))
            .await;
    }

    /// [`Deployer::under_lease`] on the heap. Built in this frame, which returns at once, so a
    /// caller's frame holds a pointer instead of the whole rollout's future: a debug build gives
    /// every temporary a slot of its own, and a test thread has 2 MiB of stack.
    pub(super) fn under_lease_boxed<'a>(
        &'a self,
        svc: &'a ServiceConfig,
        taken: Result<LeaseTaken, Error>,
        state: Option<Result<ServiceState, Error>>,
        req: Request<'a>,
    ) -> BoxFuture<'a, Result<DeploymentSummary, Error>> {
        Box::pin(self.under_lease(svc, taken, state, req))
    }

    /// Runs a rollout while holding the service's lease, finishing a dead predecessor's first.
    /// `state` is the service as read alongside taking the lease, if it was.
    pub(super) async fn under_lease(
        &self,
        svc: &ServiceConfig,
        taken: Result<LeaseTaken, Error>,
        state: Option<Result<ServiceState, Error>>,
        req: Request<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let (mut taken, mut state) = (taken?, state);
        // Another rollout holds the service: wait for it (it holds the lease for tens of
        // milliseconds on AWS), then read the service afresh and go on. A failed holder has
        // handed its lease over and a dead one is named by our own retry, so only a live one is
        // waited for.
        let mut backoff = Backoff::until(req.invocation.deadline.wait_until());
        while matches!(&taken, LeaseTaken::Busy(other) if other.holder != req.trigger.id()) && backoff.wait().await {
            let key = lease::lease_key(&svc.cluster, &svc.service);
            let found = self.leases().read(&key).await?;
            if matches!(lease::standing(&found, lease::now_ms(), req.invocation.request_id), Standing::Busy(_)) {
                continue;
            }
            let current = self.ecs.current_task_definition(&svc.cluster, &svc.service);
            let (t, s) = self.lease_and_state(svc, req.clone(), current).await;
            (taken, state) = (t?, s);
        }
        let result = match &mut taken {
            LeaseTaken::Busy(other) if other.holder == req.trigger.id() => {
                // Another delivery of this very event, alive (a dead or failed one is taken over).
                let reason = format!("another delivery of {} is rolling this out now", req.trigger.id());
                info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "unchanged", reason = %reason, "decision");
                return Ok(DeploymentSummary::new(&svc.name, svc.target(), Outcome::Unchanged, reason));
            }
            LeaseTaken::Busy(other) => return Err(still_busy(svc, other)),
            LeaseTaken::Held(held, stale) => {
                let adopted = match stale.take() {
                    Some(stale) => recovery::adopt(&self.ecs, &self.records(), *stale).await.map(Some),
                    None => Ok(None),
                };
                match adopted {
                    Ok(adopted) => {
                        // The read made alongside taking the lease stands unless a dead holder's
                        // rollout was just looked at or the last holder left the service elsewhere.
                        let state = match state {
                            Some(Err(e)) => Err(e),
                            Some(Ok(s))
                                if adopted.is_none() && lease::read_is_current(&held.replaced, &s.current_arn) =>
                            {
                                Ok(s)
                            }
                            _ => self.read_state(svc, req.is_push()).await,
                        };
                        match state {
                            Ok(state) => self.rollout_boxed(svc, state, req, Some(held)).await,
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        self.let_go(svc, &taken, &result).await;
        result
    }

    /// Lets go of a lease once the work under it came to `result`: released, naming where the
    /// service was left, or handed over to the next delivery after a failure.
    pub(super) async fn let_go(
        &self,
        svc: &ServiceConfig,
        taken: &LeaseTaken,
        result: &Result<DeploymentSummary, Error>,
    ) {
        match result {
            Ok(d) => {
                let left_on = d.task_definition.clone().or_else(|| d.previous_task_definition.clone());
                self.release(svc, taken, left_on).await
            }
            Err(e) => self.hand_over(svc, taken, e).await,
        }
    }
}

/// The lease still held by `other` at the wait bound: transient, Lambda retries once that
/// rollout is done (`Transient.LeaseBusy`).
pub(super) fn still_busy(svc: &ServiceConfig, other: &Lease) -> Error {
    AwsError {
        action: "S3 lease",
        target: svc.target(),
        detail: format!(
            "{} is still rolling out {} after this invocation waited for it (lease until {} ms)",
            other.holder, other.image_uri, other.expires_at_ms
        ),
        hint: "nothing: one rollout per service at a time, this event is retried",
        transient: true,
    }
    .into()
}
