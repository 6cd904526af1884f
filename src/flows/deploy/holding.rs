//! A deploy under the service's lease: the lease read beside the service, the rollout run while
//! holding it. The lease itself (take, wait, adopt, release, hand over) is the one type of
//! [`crate::flows::lease`].

use futures_util::future::BoxFuture;
use tracing::info;

use super::decision::ServiceState;
use super::{Deployer, Invocation, Request};
use crate::config::ServiceConfig;
use crate::domain::error::{AwsError, Error};
use crate::domain::lease::{self, Lease, Standing};
use crate::domain::timing::Backoff;
use crate::flows::lease::{still_busy as lease_busy, HeldLease, LeaseTaken, ServiceLeases};
use crate::rules::outcome::DeploymentSummary;
use crate::rules::outcome::Outcome;

impl Deployer {
    /// The service leases, through the one lease type every flow holds.
    pub(super) fn service_leases(&self) -> ServiceLeases<'_> {
        ServiceLeases { leases: &self.leases, records: &self.records, ecs: &self.ecs }
    }

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
        self.service_leases().take(&key, &mine, invocation.deadline.wait_until()).await
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
        let service_leases = self.service_leases();
        let (taken, described) =
            tokio::join!(service_leases.claim(key, found, mine), self.describe_state(svc, &current_arn));
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

    /// Lets go of a lease ([`ServiceLeases::release`]).
    pub(super) async fn release(&self, svc: &ServiceConfig, taken: &LeaseTaken, left_on: Option<String>) {
        self.service_leases().release(&svc.name, taken, left_on).await
    }

    pub(super) async fn release_all(&self, services: &[&ServiceConfig], leases: &[Result<LeaseTaken, Error>]) {
        let taken = services.iter().zip(leases).filter_map(|(s, l)| l.as_ref().ok().map(|l| (s.name.as_str(), l)));
        self.service_leases().release_all(taken).await;
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
        while matches!(&taken, LeaseTaken::Busy(other) if other.holder != req.trigger.id())
            && crate::flows::lease::pause(&mut backoff).await
        {
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
            LeaseTaken::Held(held, stale) => self.held_rollout(svc, held, stale.take(), state, req).await,
        };
        self.let_go(svc, &taken, &result).await;
        result
    }

    /// Under the lease: finishes a dead holder's rollout, then rolls out on the service as read.
    async fn held_rollout(
        &self,
        svc: &ServiceConfig,
        held: &mut HeldLease,
        stale: Option<Box<Lease>>,
        state: Option<Result<ServiceState, Error>>,
        req: Request<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let adopted = match stale {
            Some(stale) => Some(self.service_leases().adopt(*stale).await?),
            None => None,
        };
        // The read made alongside taking the lease stands unless a dead holder's rollout was just
        // looked at or the last holder left the service elsewhere.
        let state = match state {
            Some(Err(e)) => return Err(e),
            Some(Ok(s)) if adopted.is_none() && lease::read_is_current(&held.replaced, &s.current_arn) => s,
            _ => self.read_state(svc, req.is_push()).await?,
        };
        self.rollout_boxed(svc, state, req, Some(held)).await
    }

    /// Lets go of a lease once the work under it came to `result`: released, naming where the
    /// service was left, or handed over to the next delivery after a failure.
    pub(super) async fn let_go(
        &self,
        svc: &ServiceConfig,
        taken: &LeaseTaken,
        result: &Result<DeploymentSummary, Error>,
    ) {
        let left_on = result.as_ref().map(|d| d.task_definition.clone().or_else(|| d.previous_task_definition.clone()));
        self.service_leases().let_go(&svc.name, taken, left_on).await
    }
}

/// The lease still held by `other` at the wait bound: transient, Lambda retries once that
/// rollout is done (`Transient.LeaseBusy`).
pub(super) fn still_busy(svc: &ServiceConfig, other: &Lease) -> Error {
    let waiting = format!(
        "is still rolling out {} after this invocation waited for it (lease until {} ms)",
        other.image_uri, other.expires_at_ms
    );
    lease_busy(svc.target(), other, waiting, "nothing: one rollout per service at a time, this event is retried")
}
