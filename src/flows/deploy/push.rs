//! An ECR push: refuse a foreign one, match it to the services that watch its tag, take each
//! service's lease while ECR says what the tag names now, then roll out each service (or answer
//! for all of them when the tag moved on).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::{join_all, BoxFuture, Shared};
use futures_util::FutureExt;
use tracing::{info, warn};

use super::decision::ServiceState;
use super::paused::with_paused;
use super::{collect, Deployer, Invocation, Request};
use crate::aws::ecr::TaggedImage;
use crate::config::ServiceConfig;
use crate::domain::error::{AwsError, Error};
use crate::domain::record::TriggerRef;
use crate::flows::lease::LeaseTaken;
use crate::inbound::PushEvent;
use crate::rules::outcome::{DeploymentSummary, Outcome, Summary};
use crate::rules::pause;
use crate::rules::plan;
use crate::rules::push::{self as gate, TagNow};
use crate::rules::unreadable;

/// One cluster's DescribeServices, shared by the rollouts of its services.
type RunningRead<'a> = Shared<BoxFuture<'a, Result<Arc<HashMap<String, Result<String, AwsError>>>, AwsError>>>;

/// Each service's lease, and its state when read alongside.
type Prepared = (Result<LeaseTaken, Error>, Option<Result<ServiceState, Error>>);

impl Deployer {
    /// Handles a push: gate, match, prepare (leases and ECR at once), decide whether the push is
    /// current, then one rollout per matched service.
    pub(super) async fn on_push(&self, push: &PushEvent, invocation: Invocation<'_>) -> Result<Summary, Error> {
        // Before any lease is taken: a foreign event must not rewrite a lease or wait on one.
        if let Some(reason) = gate::foreign(push, &self.region, invocation.account) {
            return Ok(Summary::only(Outcome::Rejected, reason));
        }
        let services = plan::match_push(&self.config, &push.image);
        // Services this release cannot read are refused, whatever becomes of the others.
        let refused: Vec<DeploymentSummary> = self
            .config
            .unreadable_for_push(&push.image.repository, push.tag())
            .into_iter()
            .map(|u| unreadable::refused(u, push.image.pinned_uri()))
            .collect();
        for d in &refused {
            warn!(event_id = %push.event_id, service = %d.service, outcome = d.outcome.as_str(), reason = %d.reason, "decision");
        }
        if services.is_empty() {
            if !refused.is_empty() {
                return Ok(Summary::of(refused));
            }
            let reason = format!("no service watches {}:{}", push.image.repository, push.tag());
            info!(event_id = %push.event_id, image = %push.image, outcome = "ignored", reason = %reason, "decision");
            return Ok(Summary::only(Outcome::Ignored, reason));
        }
        Ok(with_refused(Box::pin(self.on_matched(push, &services, invocation)).await?, refused))
    }

    /// [`Deployer::on_push`] for the readable services a push matches: the operators' pauses,
    /// then the rollouts of the services no pause holds.
    async fn on_matched(
        &self,
        push: &PushEvent,
        services: &[&ServiceConfig],
        invocation: Invocation<'_>,
    ) -> Result<Summary, Error> {
        // The operators' pauses, before any lease: a paused service is answered and left as it is.
        let pauses = self.read_pauses(services).await?;
        let asked = pause::Asked::Push { tag: push.tag() };
        let (paused, services): (Vec<_>, Vec<_>) = services
            .iter()
            .copied()
            .map(|s| (s, self.paused_answer(&pauses, s, asked)))
            .partition(|(_, p)| p.is_some());
        let paused: Vec<DeploymentSummary> = paused.into_iter().filter_map(|(_, p)| p).collect();
        let services: Vec<&ServiceConfig> = services.into_iter().map(|(s, _)| s).collect();
        self.tell_skipped(&push.image.pinned_uri().unwrap_or_default(), &paused).await;
        let rolled =
            if services.is_empty() { None } else { Some(Box::pin(self.push_to(push, &services, invocation)).await?) };
        Ok(with_paused(rolled, paused))
    }

    /// Rolls `push` out to `services` (matched, readable and not paused): leases and ECR at once,
    /// then whether the push is current, then one rollout per service.
    async fn push_to(
        &self,
        push: &PushEvent,
        services: &[&ServiceConfig],
        invocation: Invocation<'_>,
    ) -> Result<Summary, Error> {
        let request = Request {
            invocation,
            trigger: TriggerRef::Push { event_id: push.event_id.clone() },
            image: &push.image,
            pushed_at: push.time.clone(),
            event_time: push.time.clone(),
            force: false,
            dry_run: false,
            // A push never goes past a rollback: a person decides (the refusal is published).
            allow_rolled_back: false,
        };
        let (tagged, prepared) = self.prepare(services, &request).await;
        let (leases, states): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();
        let tagged = match tagged {
            Ok(t) => t,
            Err(e) => {
                self.release_all(services, &leases).await;
                return Err(e.into());
            }
        };
        let now = tagged.as_ref().map(tag_now);
        let refused = gate::foreign_registry(push, now).map(|reason| Summary::only(Outcome::Rejected, reason));
        let answered = refused.or_else(|| gate::not_current(push, now).map(|(o, r)| answer_all(push, services, o, r)));
        if let Some(summary) = answered {
            self.release_all(services, &leases).await;
            return Ok(summary);
        }
        let pushed_at = tagged.and_then(|t| t.pushed_at).or_else(|| push.time.clone());
        let rollouts = services.iter().zip(leases).zip(states).map(|((svc, lease), state)| {
            let req = Request { pushed_at: pushed_at.clone(), ..request.clone() };
            async move { (*svc, self.under_lease_boxed(svc, lease, state, req).await) }
        });
        collect(join_all(rollouts).await)
    }

    /// What the pushed tag names in ECR, beside each service's lease and state. The freshness
    /// check and each service's lease and state are independent: overlapped, so only the four ECS
    /// calls of a digest-pinned rollout stay on the critical path.
    async fn prepare(
        &self,
        services: &[&ServiceConfig],
        request: &Request<'_>,
    ) -> (Result<Option<TaggedImage>, AwsError>, Vec<Prepared>) {
        let image = request.image;
        let running = self.running_task_definitions(services);
        tokio::join!(
            self.ecr.resolve_tag(&image.repository, image.tag.as_deref().unwrap_or_default()),
            join_all(services.iter().map(|s| {
                let running = &running;
                let current = async move {
                    let all = running.get(s.cluster.as_str()).expect("every matched service's cluster is read").clone();
                    match all.await {
                        Ok(found) => found.get(&s.service).cloned().expect("every matched service is read"),
                        Err(e) => Err(e),
                    }
                };
                self.lease_and_state(s, request.clone(), current)
            }))
        )
    }

    /// One shared DescribeServices read per cluster of `services`, started by whichever service's
    /// rollout polls it first: the task definition each service runs, by service.
    fn running_task_definitions<'s>(&'s self, services: &[&'s ServiceConfig]) -> HashMap<&'s str, RunningRead<'s>> {
        let mut by_cluster: HashMap<&str, Vec<String>> = HashMap::new();
        for s in services {
            let names = by_cluster.entry(s.cluster.as_str()).or_default();
            if !names.contains(&s.service) {
                names.push(s.service.clone());
            }
        }
        by_cluster
            .into_iter()
            .map(|(cluster, names)| {
                let read = async move {
                    let found = self.ecs.task_definitions(cluster, &names).await?;
                    Ok(Arc::new(names.into_iter().zip(found).collect::<HashMap<_, _>>()))
                };
                (cluster, read.boxed().shared())
            })
            .collect()
    }
}

/// `summary` with the refusals of the unreadable services a push concerns beside its own; an
/// answer about the whole push (a foreign registry) stands as it is.
fn with_refused(summary: Summary, refused: Vec<DeploymentSummary>) -> Summary {
    if refused.is_empty() || summary.deployments.is_empty() {
        return summary;
    }
    Summary::of(summary.deployments.into_iter().chain(refused).collect())
}

/// ECR's answer, as the push rules read it.
fn tag_now(t: &TaggedImage) -> TagNow<'_> {
    TagNow {
        registry_id: &t.registry_id,
        digest: &t.digest,
        artifact_media_type: t.artifact_media_type.as_deref(),
        manifest_media_type: t.manifest_media_type.as_deref(),
    }
}

/// The same answer for every matched service of a push that is not rolled out.
fn answer_all(push: &PushEvent, services: &[&ServiceConfig], outcome: Outcome, reason: String) -> Summary {
    let deployments = services
        .iter()
        .map(|s| {
            info!(event_id = %push.event_id, service = %s.name, image = %push.image, outcome = outcome.as_str(), reason = %reason, "decision");
            let mut d = DeploymentSummary::new(&s.name, s.target(), outcome, reason.clone());
            d.image = push.image.pinned_uri();
            d
        })
        .collect();
    Summary::of(deployments)
}
