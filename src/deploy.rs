//! Orchestration of a deploy: trigger in, rollouts started, answer out.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::{join_all, BoxFuture, Shared};
use futures_util::FutureExt;
use serde_json::Value;
use tracing::{info, warn};

use crate::artifact::{image_definitions, image_definitions_key, image_detail, image_detail_key};
use crate::aws::ecr::EcrClient;
use crate::aws::ecs::{DescribedTaskDefinition, EcsClient};
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::config::{Base, Config, ServiceConfig, Strategy};
use crate::error::{AwsError, Error, InputError};
use crate::event::{self, ManualAction, PushEvent, Trigger};
use crate::image::{truncate, ImageRef};
use crate::lease::{self, Claim, Found, Lease, Standing};
use crate::media_type;
use crate::notify::{problem_message, Problem};
use crate::outcome::{DeploymentSummary, Outcome, Summary};
use crate::plan::{self, Action, Freshness, ServicePlan};
use crate::record::{self, DeploymentRecord, Status, TriggerRef};
use crate::rollback;
use crate::taskdef::{self, short_name};

/// How many of a service's most recently written records a manual rollback reads.
const RECORDS_SCANNED: usize = 50;

/// Everything a deploy needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Deployer {
    /// The validated config.
    pub config: Config,
    /// ECS client.
    pub ecs: EcsClient,
    /// ECR client.
    pub ecr: EcrClient,
    /// Artifact bucket.
    pub store: Store,
    /// The region this function deploys in.
    pub region: String,
    /// How long a service lease lasts: longer than the deploy function's timeout, so no live holder loses it.
    pub lease_ttl: std::time::Duration,
    /// Where refusals a person must act on are published, when a topic is configured.
    pub notifier: Option<Notifier>,
}

/// The lease duration for a deploy function with a 30 s timeout.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(45);

/// A lease we hold on a service.
#[derive(Debug)]
struct HeldLease {
    key: String,
    etag: String,
    lease: Lease,
    /// The lease object ours replaced (a released one names where its holder left the service).
    replaced: Found,
    /// Already let go of (released with the rollout's writes, or kept for the retry).
    done: bool,
}

/// What trying to take a service's lease came to.
enum LeaseTaken {
    /// Ours; `stale` is an expired lease a crashed holder left behind.
    Held(Box<HeldLease>, Option<Box<Lease>>),
    /// Someone else's, still live.
    Busy(Box<Lease>),
}

/// One cluster's DescribeServices, shared by the rollouts of its services.
type RunningRead<'a> = Shared<BoxFuture<'a, Result<Arc<HashMap<String, Result<String, AwsError>>>, AwsError>>>;

/// A service's state as read before planning.
struct ServiceState {
    current: DescribedTaskDefinition,
    current_arn: String,
    previous_definitions: Option<Vec<u8>>,
    /// With `base = "family"`: the revision to copy, when the service does not run it (or a copy of it) yet.
    base: Option<DescribedTaskDefinition>,
}

tokio::task_local! {
    /// When the invocation must stop (set by [`Deployer::handle_before`]): how long a rollout may
    /// wait for another's lease.
    static DEADLINE: std::time::Instant;
}

/// Time a rollout keeps back from the deadline to run after waiting for a busy service.
const ROLLOUT_RESERVE: std::time::Duration = std::time::Duration::from_secs(8);
/// How long a rollout waits for a busy service when no deadline is known (direct calls, tests).
const WAIT_WITHOUT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Why and how a rollout was asked for.
#[derive(Clone)]
struct Request<'a> {
    trigger: TriggerRef,
    image: &'a ImageRef,
    pushed_at: Option<String>,
    force: bool,
    dry_run: bool,
}

impl Deployer {
    /// [`Deployer::handle`], stopped at `deadline`: running out of time is a transient failure, so
    /// Lambda retries, and the retry finishes what the service lease says was in flight.
    pub async fn handle_before(
        &self,
        payload: Value,
        request_id: &str,
        deadline: std::time::Instant,
    ) -> Result<Summary, Error> {
        let handled = DEADLINE.scope(deadline, self.handle(payload, request_id));
        match tokio::time::timeout_at(deadline.into(), handled).await {
            Ok(result) => result,
            Err(_) => Err(crate::error::AwsError {
                action: "deploy",
                target: request_id.to_string(),
                detail: "ran out of time before the Lambda deadline".into(),
                hint: "AWS latency or throttling; the retry completes the rollout",
                transient: true,
            }
            .into()),
        }
    }

    /// Handles one invocation. `Err` only for transient AWS failures, so Lambda retries those alone.
    pub async fn handle(&self, payload: Value, request_id: &str) -> Result<Summary, Error> {
        let summary = match event::parse(payload) {
            Err(e) => Ok(Summary::only(Outcome::Rejected, e.0)),
            Ok(Trigger::IgnoredEcr { event_id, reason }) => {
                info!(event_id = %event_id, outcome = "ignored", reason = %reason, "decision");
                Ok(Summary::only(Outcome::Ignored, reason))
            }
            Ok(Trigger::EcsDeployment(e)) => Ok(Summary::only(
                Outcome::Rejected,
                format!("ECS deployment event {} belongs to the verify function, not deploy", e.deployment_id),
            )),
            // Boxed: a rollout's future holds many SDK futures, too large for a small thread stack.
            Ok(Trigger::Push(push)) => Box::pin(self.on_push(&push)).await,
            Ok(Trigger::Manual(action)) => Box::pin(self.on_manual(&action, request_id)).await,
        };
        let summary = match summary {
            Err(err) if err.is_permanent_aws() => {
                self.report_problem(None, &err.to_string()).await;
                return Err(err);
            }
            other => other?,
        };
        if summary.outcome == Outcome::Rejected {
            warn!(request_id, outcome = "rejected", reason = %summary.reason, "decision");
        }
        for d in summary.deployments.iter().filter(|d| d.needs_attention) {
            self.report_problem(Some(d), &d.reason).await;
        }
        Ok(summary)
    }

    /// Publishes a refusal a person must act on (AccessDenied, a vanished service).
    async fn report_problem(&self, d: Option<&DeploymentSummary>, error: &str) {
        tracing::error!(service = d.map_or("", |d| d.service.as_str()), outcome = "error", error, "decision");
        let Some(n) = &self.notifier else { return };
        let m = problem_message(&Problem {
            function: "deploy",
            service: d.map_or("pushdeploy", |d| d.service.as_str()),
            target: d.map(|d| d.target.as_str()),
            doing: "deploy",
            error,
            consequence: "nothing was deployed for it; the service runs what it ran before",
        });
        n.send(&m).await;
    }

    async fn on_push(&self, push: &PushEvent) -> Result<Summary, Error> {
        if push.region != self.region {
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("push is for region {} but this function deploys in {}", push.region, self.region),
            ));
        }
        let services = plan::match_push(&self.config, &push.image);
        if services.is_empty() {
            let reason = format!("no service watches {}:{}", push.image.repository, push.tag());
            info!(event_id = %push.event_id, image = %push.image, outcome = "ignored", reason = %reason, "decision");
            return Ok(Summary::only(Outcome::Ignored, reason));
        }
        // The freshness check and each service's lease and state are independent: overlap them,
        // so only the four ECS calls of a digest-pinned rollout stay on the critical path.
        let trigger = TriggerRef::Push { event_id: push.event_id.clone() };
        let request = |pushed_at: Option<String>| Request {
            trigger: trigger.clone(),
            image: &push.image,
            pushed_at,
            force: false,
            dry_run: false,
        };
        let running = self.running_task_definitions(&services);
        let (tagged, prepared) = tokio::join!(
            self.ecr.resolve_tag(&push.image.repository, push.tag()),
            join_all(services.iter().map(|s| {
                let running = &running;
                let current = async move {
                    let all = running.get(s.cluster.as_str()).expect("every matched service's cluster is read").clone();
                    match all.await {
                        Ok(found) => found.get(&s.service).cloned().expect("every matched service is read"),
                        Err(e) => Err(e),
                    }
                };
                self.lease_and_state(s, request(push.time.clone()), current)
            }))
        );
        let (leases, states): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();
        let tagged = match tagged {
            Ok(t) => t,
            Err(e) => {
                self.release_all(&services, &leases).await;
                return Err(e.into());
            }
        };
        if let Some(t) = tagged.as_ref().filter(|t| t.registry_id != push.account) {
            self.release_all(&services, &leases).await;
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("push is for account {} but this function's registry is {}", push.account, t.registry_id),
            ));
        }
        let freshness = plan::freshness(push.digest(), tagged.as_ref().map(|t| &t.digest));
        // The event may not say what was pushed; ECR's own answer then decides.
        let event_media = (push.artifact_media_type.as_deref(), push.manifest_media_type.as_deref());
        let not_image = tagged.as_ref().filter(|_| media_type::unknown(event_media.0, event_media.1)).and_then(|t| {
            media_type::not_an_image(push.tag(), t.artifact_media_type.as_deref(), t.manifest_media_type.as_deref())
        });
        let not_current = match &freshness {
            Freshness::Current if not_image.is_some() => Some((Outcome::Ignored, not_image.unwrap_or_default())),
            Freshness::Current => None,
            Freshness::Superseded { now } => Some((
                Outcome::Superseded,
                format!("{}:{} now points at {}, a newer push", push.image.repository, push.tag(), now.short()),
            )),
            Freshness::TagGone => Some((
                Outcome::Ignored,
                format!("tag {}:{} no longer exists in ECR", push.image.repository, push.tag()),
            )),
        };
        if let Some((outcome, reason)) = not_current {
            self.release_all(&services, &leases).await;
            let deployments = services
                .iter()
                .map(|s| {
                    info!(event_id = %push.event_id, service = %s.name, image = %push.image, outcome = outcome.as_str(), reason = %reason, "decision");
                    let mut d = DeploymentSummary::new(&s.name, s.target(), outcome, reason.clone());
                    d.image = push.image.pinned_uri();
                    d
                })
                .collect();
            return Ok(Summary::of(deployments));
        }
        let pushed_at = tagged.and_then(|t| t.pushed_at).or_else(|| push.time.clone());
        let rollouts = services.iter().zip(leases).zip(states).map(|((svc, lease), state)| {
            let req = request(pushed_at.clone());
            async move { (*svc, self.under_lease(svc, lease, state, req).await) }
        });
        collect(join_all(rollouts).await)
    }

    async fn on_manual(&self, action: &ManualAction, request_id: &str) -> Result<Summary, Error> {
        let Some(svc) = self.config.service(action.service()) else {
            let known: Vec<&str> = self.config.services.iter().map(|s| s.name.as_str()).collect();
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("unknown service {:?}: configured services are {known:?}", truncate(action.service())),
            ));
        };
        let (tag, force, dry_run) = match action {
            ManualAction::Redeploy { .. } => (None, true, false),
            ManualAction::Deploy { tag, .. } => (Some(tag.as_str()), false, false),
            ManualAction::Plan { tag, .. } => (tag.as_deref(), false, true),
            ManualAction::Rollback { .. } => {
                let taken = self.take_lease(svc, request_id, "").await?;
                if let LeaseTaken::Busy(other) = &taken {
                    return Ok(Summary::of(vec![DeploymentSummary::new(
                        &svc.name,
                        svc.target(),
                        Outcome::Rejected,
                        format!(
                            "{} is rolling out {} right now; roll back once it is done",
                            other.holder, other.image_uri
                        ),
                    )]));
                }
                let result = self.manual_rollback(svc, request_id).await;
                let left_on =
                    result.as_ref().ok().and_then(|s| s.deployments.first()).and_then(|d| d.task_definition.clone());
                self.release(svc, &taken, left_on).await;
                return result;
            }
        };
        let tag = match tag.or_else(|| svc.redeploy_tag()) {
            Some(t) => t,
            None => {
                return Ok(Summary::only(
                    Outcome::Rejected,
                    format!("service {}: every pattern in `tags` has a wildcard; name the tag with {{\"action\": \"deploy\", \"tag\": …}}", svc.name),
                ))
            }
        };
        let trigger = TriggerRef::Manual { action: action.verb().to_string(), request_id: request_id.to_string() };
        let lease = async {
            if dry_run {
                Ok(None)
            } else {
                self.take_lease(svc, trigger.id(), "").await.map(Some)
            }
        };
        let (tagged, lease) = tokio::join!(self.ecr.resolve_tag(&svc.repository, tag), lease);
        let lease = lease?;
        let tagged = match tagged {
            Ok(Some(t)) => t,
            other => {
                if let Some(l) = &lease {
                    self.release(svc, l, None).await;
                }
                if let Err(e) = other {
                    return Err(e.into());
                }
                return Ok(Summary::only(
                    Outcome::Rejected,
                    format!("tag {}:{tag} does not exist in ECR", svc.repository),
                ));
            }
        };
        let image = ImageRef {
            registry: ImageRef::ecr_registry(&tagged.registry_id, &self.region),
            repository: svc.repository.clone(),
            tag: Some(tag.to_string()),
            digest: Some(tagged.digest.clone()),
        };
        let req = Request { trigger, image: &image, pushed_at: tagged.pushed_at.clone(), force, dry_run };
        let result = match lease {
            Some(lease) => self.under_lease(svc, Ok(lease), None, req).await,
            None => match self.read_state(svc).await {
                Ok(state) => self.rollout(svc, state, req, None).await,
                Err(e) => Err(e),
            },
        };
        collect(vec![(svc, result)])
    }

    /// Returns the service to the task definition of its last verified deployment before the current one.
    async fn manual_rollback(&self, svc: &ServiceConfig, request_id: &str) -> Result<Summary, Error> {
        let prefix = record::records_prefix(&svc.cluster, &svc.service);
        let (current, keys) =
            tokio::join!(self.ecs.current_task_definition(&svc.cluster, &svc.service), self.store.list(&prefix));
        let (current, keys) = (current?, keys?);
        let records = self.read_records(keys).await?;
        let (chosen, why) = match rollback::choose_target(&records, &current) {
            Ok(found) => found,
            Err(reason) => return Ok(refused_rollback(svc, request_id, format!("{reason}; nothing changed"))),
        };
        // As an automatic rollback: a revision naming an image by tag is pinned to the digests it
        // ran, which the deployment that replaced it captured.
        let ran = records
            .iter()
            .filter(|r| r.previous_task_definition == chosen.task_definition)
            .filter_map(|r| Some((r.started_at().unwrap_or(0.0), r.previous_digests.as_ref()?)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let described = self.ecs.describe_task_definition(&chosen.task_definition).await?;
        let (target, why) = match taskdef::pin_to_digests(&described.task_definition, &ran, &chosen.containers) {
            Ok(None) => (chosen.task_definition.clone(), why),
            Ok(Some((copy, changes))) => {
                let tags = plan::tags_for_pinned_copy(&described.tags, &chosen.task_definition);
                let arn = self.ecs.register_task_definition(&copy, &tags).await?;
                let pinned: Vec<&str> = changes.iter().map(|c| c.to.as_str()).collect();
                (
                    arn.clone(),
                    format!("{why}; registered {} pinned to what it ran: {}", short_name(&arn), pinned.join(", ")),
                )
            }
            Err(unsafe_reason) => {
                let reason = format!("{unsafe_reason}; nothing changed (deploy an older tag instead)");
                return Ok(refused_rollback(svc, request_id, reason));
            }
        };
        let ecs_deployment_id = self.ecs.update_service(&svc.cluster, &svc.service, &target).await?;
        let rec = DeploymentRecord {
            task_definition: target,
            id: record::record_id(&ecs_deployment_id)?,
            trigger: TriggerRef::Manual { action: "rollback".into(), request_id: request_id.to_string() },
            pushed_at: None,
            previous_task_definition: current.clone(),
            ecs_deployment_id: ecs_deployment_id.clone(),
            status: Status::Started,
            smoke: None,
            reason: Some(why.clone()),
            rolled_back_to: None,
            rollback_deployment: None,
            previous_digests: None,
            timeline: vec![record::TimelineEntry { event: "started".into(), at: record::now() }],
            ..chosen.clone()
        };
        self.store.put_json(&rec.key(), serde_json::to_vec_pretty(&rec).expect("records always serialize")).await?;
        info!(
            service = %svc.name,
            image = %rec.image_uri,
            event_id = %request_id,
            deployment_id = %rec.id,
            task_definition = %short_name(&rec.task_definition),
            outcome = "rolled_back",
            "decision"
        );
        let mut d =
            DeploymentSummary::new(&svc.name, svc.target(), Outcome::RolledBack, format!("rolling back to {why}"));
        d.image = Some(rec.image_uri.clone());
        d.action = Some("rollback");
        d.previous_task_definition = Some(current);
        d.task_definition = Some(rec.task_definition.clone());
        d.ecs_deployment_id = Some(ecs_deployment_id);
        d.written = vec![rec.key()];
        Ok(Summary::of(vec![d]))
    }

    /// Reads the most recently written records (at most [`RECORDS_SCANNED`]); unreadable ones are skipped.
    async fn read_records(&self, keys: Vec<(String, i64)>) -> Result<Vec<DeploymentRecord>, Error> {
        let gets = keys.iter().take(RECORDS_SCANNED).map(|(k, _)| self.store.get(k));
        let mut records = Vec::new();
        for (bytes, (key, _)) in join_all(gets).await.into_iter().zip(&keys) {
            match bytes?.map(|b| serde_json::from_slice::<DeploymentRecord>(&b)) {
                Some(Ok(r)) => records.push(r),
                Some(Err(e)) => warn!(key = %key, error = %e, "skipping an unreadable deployment record"),
                None => {}
            }
        }
        Ok(records)
    }

    /// Reads and takes a service's lease (manual actions, which take it before anything else).
    async fn take_lease(&self, svc: &ServiceConfig, holder: &str, image_uri: &str) -> Result<LeaseTaken, Error> {
        let key = lease::lease_key(&svc.cluster, &svc.service);
        let found = lease::read(&self.store, &key).await?;
        self.claim(key, found, Lease::new(holder.to_string(), image_uri.to_string(), self.lease_ttl, None)).await
    }

    /// Takes the lease over exactly what was `found`, re-reading it after a lost race.
    async fn claim(&self, key: String, found: Found, mine: Lease) -> Result<LeaseTaken, Error> {
        Ok(match lease::claim(&self.store, &key, found, &mine, true).await? {
            Claim::Held { etag, replaced, stale } => {
                LeaseTaken::Held(Box::new(HeldLease { key, etag, lease: mine, replaced, done: false }), stale)
            }
            Claim::Blocked(other) => LeaseTaken::Busy(other),
        })
    }

    /// Reads a service's lease alongside DescribeServices, then takes the lease alongside
    /// DescribeTaskDefinition: neither lease call adds a round trip to the rollout.
    async fn lease_and_state(
        &self,
        svc: &ServiceConfig,
        req: Request<'_>,
        current: impl std::future::Future<Output = Result<String, AwsError>>,
    ) -> (Result<LeaseTaken, Error>, Option<Result<ServiceState, Error>>) {
        let key = lease::lease_key(&svc.cluster, &svc.service);
        let (found, current, previous) =
            tokio::join!(lease::read(&self.store, &key), current, self.previous_definitions(svc));
        let (found, current_arn) = match (found, current) {
            (Ok(f), Ok(c)) => (f, c),
            (Err(e), _) => return (Err(e.into()), None),
            (_, Err(e)) => return (Err(e.into()), None),
        };
        if let Standing::Busy(other) = lease::standing(&found, lease::now_ms()) {
            return (Ok(LeaseTaken::Busy(other)), None);
        }
        let image_uri = req.image.pinned_uri().unwrap_or_default();
        // What a taker of this lease after a crash needs to finish the rollout; the task definition
        // is not known until registered, and the service running this image tells it.
        let pending = self.new_record(svc, &req, &image_uri, &[], &current_arn, "");
        let mine = Lease::new(req.trigger.id().to_string(), image_uri, self.lease_ttl, Some(pending));
        let (taken, described) = tokio::join!(self.claim(key, found, mine), self.describe_state(svc, &current_arn));
        let state = match (described, previous) {
            (Ok((current, base)), Ok(previous_definitions)) => {
                Ok(ServiceState { current, current_arn, previous_definitions, base })
            }
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(e),
        };
        (taken, Some(state))
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

    /// Lets go of a lease, first finishing any crashed rollout the expired lease it replaced
    /// carried (its taker is the only one who can, whatever its own event came to). `left_on` is
    /// the task definition the service runs now, for the next taker's check of its own read.
    async fn release(&self, svc: &ServiceConfig, taken: &LeaseTaken, left_on: Option<String>) {
        if let LeaseTaken::Held(_, Some(stale)) = taken {
            if let Err(e) = self.adopt(svc, (**stale).clone()).await {
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
            if let Err(e) = lease::rewrite(&self.store, &held.key, &released, &held.etag).await {
                warn!(service = %svc.name, error = %e, "could not release the service lease; it expires by itself");
            }
        }
    }

    async fn release_all(&self, services: &[&ServiceConfig], leases: &[Result<LeaseTaken, Error>]) {
        join_all(services.iter().zip(leases).filter_map(|(s, l)| l.as_ref().ok().map(|l| self.release(s, l, None))))
            .await;
    }

    /// Runs a rollout while holding the service's lease, finishing a crashed predecessor's first.
    /// `state` is the service as read alongside taking the lease, if it was.
    async fn under_lease(
        &self,
        svc: &ServiceConfig,
        taken: Result<LeaseTaken, Error>,
        state: Option<Result<ServiceState, Error>>,
        req: Request<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let (mut taken, mut state) = (taken?, state);
        // Another rollout holds the service: wait for it (it holds the lease for tens of
        // milliseconds on AWS), then read the service afresh and go on. A failed holder has
        // handed its lease over, so only a live one is waited for.
        let bound = DEADLINE
            .try_with(|d| d.checked_sub(ROLLOUT_RESERVE).unwrap_or(*d))
            .unwrap_or_else(|_| std::time::Instant::now() + WAIT_WITHOUT_DEADLINE);
        let mut pause = std::time::Duration::from_millis(25);
        while matches!(&taken, LeaseTaken::Busy(other) if other.holder != req.trigger.id())
            && std::time::Instant::now() + pause < bound
        {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
            let key = lease::lease_key(&svc.cluster, &svc.service);
            if matches!(lease::standing(&lease::read(&self.store, &key).await?, lease::now_ms()), Standing::Busy(_)) {
                continue;
            }
            let current = self.ecs.current_task_definition(&svc.cluster, &svc.service);
            let (t, s) = self.lease_and_state(svc, req.clone(), current).await;
            (taken, state) = (t?, s);
        }
        let result = match &mut taken {
            LeaseTaken::Busy(other) if other.holder == req.trigger.id() => {
                let reason = format!("another delivery of {} is rolling this out now", req.trigger.id());
                info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "unchanged", reason = %reason, "decision");
                return Ok(DeploymentSummary::new(&svc.name, svc.target(), Outcome::Unchanged, reason));
            }
            LeaseTaken::Busy(other) => {
                // Still held at the bound: transient, Lambda retries once that rollout is done.
                return Err(crate::error::AwsError {
                    action: "S3 lease",
                    target: svc.target(),
                    detail: format!(
                        "{} is still rolling out {} after this invocation waited for it (lease until {} ms)",
                        other.holder, other.image_uri, other.expires_at_ms
                    ),
                    hint: "nothing: one rollout per service at a time, this event is retried",
                    transient: true,
                }
                .into());
            }
            LeaseTaken::Held(held, stale) => {
                let adopted = match stale.take() {
                    Some(stale) => self.adopt(svc, *stale).await.map(|()| true),
                    None => Ok(false),
                };
                match adopted {
                    Ok(adopted) => {
                        // The read made alongside taking the lease stands unless a crashed rollout was
                        // just finished or the last holder left the service elsewhere.
                        let state = match state {
                            Some(Err(e)) => Err(e),
                            Some(Ok(s)) if !adopted && lease::read_is_current(&held.replaced, &s.current_arn) => Ok(s),
                            _ => self.read_state(svc).await,
                        };
                        match state {
                            Ok(state) => self.rollout(svc, state, req, Some(held)).await,
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match &result {
            Ok(d) => {
                let left_on = d.task_definition.clone().or_else(|| d.previous_task_definition.clone());
                self.release(svc, &taken, left_on).await
            }
            // Handed over on failure: it may carry a rollout ECS already runs, which the next
            // delivery (a retry, a duplicate, an operator) adopts at once instead of waiting it out.
            Err(e) => {
                warn!(service = %svc.name, error = %e, "handing the service lease over to the next delivery");
                if let LeaseTaken::Held(held, _) = &taken {
                    if !held.done {
                        if let Err(w) =
                            lease::rewrite(&self.store, &held.key, &held.lease.handed_over(), &held.etag).await
                        {
                            warn!(service = %svc.name, error = %w, "could not hand the lease over; it expires by itself");
                        }
                    }
                }
            }
        }
        result
    }

    /// Finishes the rollout an expired lease was carrying: if its revision runs without a record
    /// (the holder died between UpdateService and the record), write the record and artifacts.
    async fn adopt(&self, svc: &ServiceConfig, stale: Lease) -> Result<(), Error> {
        let Some(mut pending) = stale.pending else { return Ok(()) };
        let now = self.ecs.service_now(&svc.cluster, &svc.service).await?;
        let Some(deployment) = now.primary_deployment else { return Ok(()) };
        if pending.task_definition.is_empty() {
            // Taken before its revision was registered: the rollout happened if the service left
            // the revision it ran for one running the pending image.
            if now.task_definition == pending.previous_task_definition {
                return Ok(());
            }
            let running = self.ecs.describe_task_definition(&now.task_definition).await?;
            let containers: Vec<String> = running
                .task_definition
                .container_definitions()
                .iter()
                .filter(|c| c.image() == Some(pending.image_uri.as_str()))
                .filter_map(|c| c.name().map(str::to_string))
                .collect();
            if containers.is_empty() {
                return Ok(());
            }
            pending.task_definition = now.task_definition;
            pending.containers = containers;
        } else if now.task_definition != pending.task_definition {
            // It died before UpdateService: at most an unused revision is left, nothing runs unrecorded.
            return Ok(());
        }
        let key = record::record_key(&svc.cluster, &svc.service, &deployment)?;
        if self.store.get(&key).await?.is_some() {
            return Ok(());
        }
        pending.id = record::record_id(&deployment)?;
        pending.ecs_deployment_id = deployment;
        pending.stamp("recovered", record::now());
        self.write_rollout(svc, &pending.containers, &pending.image_uri, &pending).await?;
        warn!(service = %svc.name, image = %pending.image_uri, event_id = %pending.trigger.id(), deployment_id = %pending.id, outcome = "started", "recovered the record of a rollout whose deploy invocation died");
        Ok(())
    }

    /// The service's last `imagedefinitions.json`, which a tag-based service plans from.
    async fn previous_definitions(&self, svc: &ServiceConfig) -> Result<Option<Vec<u8>>, Error> {
        match svc.strategy {
            Strategy::ForceNewDeployment => {
                Ok(self.store.get(&image_definitions_key(&svc.cluster, &svc.service)).await?)
            }
            Strategy::PinDigest => Ok(None),
        }
    }

    async fn read_state(&self, svc: &ServiceConfig) -> Result<ServiceState, Error> {
        let previous = self.previous_definitions(svc);
        let current = async {
            let arn = self.ecs.current_task_definition(&svc.cluster, &svc.service).await?;
            let (td, base) = self.describe_state(svc, &arn).await?;
            Ok::<_, Error>((arn, td, base))
        };
        let (previous, current) = tokio::join!(previous, current);
        let (current_arn, current, base) = current?;
        Ok(ServiceState { current, current_arn, previous_definitions: previous?, base })
    }

    /// The revision the service runs and, with `base = "family"`, the revision to copy when the
    /// service does not run it (or a copy of it) yet; both read at once.
    async fn describe_state(
        &self,
        svc: &ServiceConfig,
        current_arn: &str,
    ) -> Result<(DescribedTaskDefinition, Option<DescribedTaskDefinition>), Error> {
        let family = short_name(current_arn).rsplit_once(':').map_or(short_name(current_arn), |(f, _)| f);
        let base = async {
            match svc.base {
                Base::Family => self.ecs.newest_base(family).await,
                Base::Service => Ok(None),
            }
        };
        let (current, base) = tokio::join!(self.ecs.describe_task_definition(current_arn), base);
        let current = current?;
        let base = base?.filter(|b| {
            let arn = b.task_definition.task_definition_arn();
            arn != Some(current_arn) && plan::base_of(&current.tags) != arn
        });
        Ok((current, base))
    }

    async fn rollout(
        &self,
        svc: &ServiceConfig,
        state: ServiceState,
        req: Request<'_>,
        lease: Option<&mut HeldLease>,
    ) -> Result<DeploymentSummary, Error> {
        let event_pushed_at = req.pushed_at.as_deref().and_then(record::epoch_seconds).map(|s| s as i64);
        if let (TriggerRef::Push { .. }, Some(at)) = (&req.trigger, event_pushed_at) {
            if let Some(running) = plan::newer_running(&state.current.tags, at) {
                let reason = format!(
                    "{} runs an image pushed {} s after this one: a newer push already deployed",
                    short_name(&state.current_arn),
                    running - at
                );
                info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "superseded", reason = %reason, "decision");
                let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Superseded, reason);
                d.image = req.image.pinned_uri();
                return Ok(d);
            }
        }
        let plan = match plan::plan_service(
            svc,
            req.image,
            &state.current.task_definition,
            state.base.as_ref().map(|b| &b.task_definition),
            state.previous_definitions.as_deref(),
            req.force,
        ) {
            Ok(p) => p,
            Err(InputError(reason)) => {
                warn!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "rejected", reason = %reason, "decision");
                return Ok(DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason));
            }
        };
        let mut summary = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Planned, "");
        summary.image = Some(plan.image_uri.clone());
        summary.action = Some(plan.action.name());
        summary.changes = plan.changes.clone();
        summary.previous_task_definition = Some(state.current_arn.clone());
        // What the copy is made from, and everything it changes against what runs.
        let (source_arn, source_tags) = match &state.base {
            Some(b) => (b.task_definition.task_definition_arn().unwrap_or_default().to_string(), &b.tags),
            None => (state.current_arn.clone(), &state.current.tags),
        };
        if let Action::Register(copy) = &plan.action {
            summary.base = Some(source_arn.clone());
            summary.diff = taskdef::differences(&state.current.task_definition, copy);
        }

        if req.dry_run {
            summary.reason = match &plan.action {
                Action::Unchanged => format!("already runs {}: deploy would change nothing", plan.image_uri),
                Action::Register(_) => format!(
                    "deploy would register a new revision of {} with {} container(s) on {} and update the service",
                    short_name(&state.current_arn),
                    plan.changes.len(),
                    plan.image_uri
                ),
                Action::ForceNewDeployment => {
                    format!("deploy would force new tasks of {}", short_name(&state.current_arn))
                }
            };
            info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "planned", action = plan.action.name(), "decision");
            return Ok(summary);
        }

        if let Action::Unchanged = &plan.action {
            summary.outcome = Outcome::Unchanged;
            summary.reason = format!("already runs {}", plan.image_uri);
            summary.task_definition = Some(state.current_arn);
            info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "unchanged", "decision");
            return Ok(summary);
        }
        let mut lease = lease;
        let change = async {
            let task_definition = match &plan.action {
                Action::Register(td) => {
                    let tags = plan::tags_for_copy(source_tags, event_pushed_at, &source_arn);
                    self.ecs.register_task_definition(td, &tags).await?
                }
                _ => state.current_arn.clone(),
            };
            let record =
                self.new_record(svc, &req, &plan.image_uri, &plan.containers, &state.current_arn, &task_definition);
            if let Some(held) = lease.as_deref_mut() {
                // A crash taker tells a rollout happened by the service moving to a new revision
                // with the pending image. Where that cannot tell (no lease pending yet: a manual
                // action; or no new revision: force-new-deployment), it needs the revision first.
                let known = held.lease.pending.as_ref().is_some_and(|p| task_definition != p.previous_task_definition);
                if !known {
                    held.lease.pending = Some(record.clone());
                    held.etag = lease::rewrite(&self.store, &held.key, &held.lease, &held.etag).await?;
                }
            }
            let ecs_deployment_id = match self.ecs.update_service(&svc.cluster, &svc.service, &task_definition).await {
                Ok(id) => id,
                // ECS refused it: the copy just registered would stay behind unused, so take it
                // back (the retry registers its own). Where the answer was lost, ECS may have
                // taken it, and the lease's pending rollout tells the retry.
                Err(e) => {
                    if matches!(plan.action, Action::Register(_)) && e.was_answered() {
                        if let Err(d) = self.ecs.deregister_task_definition(&task_definition).await {
                            warn!(service = %svc.name, task_definition = %short_name(&task_definition), error = %d, "could not deregister the unused copy");
                        }
                    }
                    return Err(e.into());
                }
            };
            Ok::<_, Error>((task_definition, record, ecs_deployment_id))
        };
        // A pinned service plans from its task definition, never from the artifacts, so they are
        // written alongside Register and UpdateService (CodePipeline, too, writes them before it
        // deploys; should the rollout fail, its retry deploys the same digest). A tag-based service
        // plans from them, so they follow the rollout.
        let artifacts = async {
            match &plan.action {
                Action::Register(_) => self.write_artifacts(svc, &plan.containers, &plan.image_uri).await.ok(),
                _ => None,
            }
        };
        // What the service runs now, digest by digest, for a rollback to pin to: off the critical
        // path, beside the change (ECS keeps it in the revision, so UpdateService cannot race it).
        let captured = async {
            match &plan.action {
                Action::Register(_) => {
                    match self.ecs.revision_digests(&svc.cluster, &svc.service, &state.current_arn).await {
                        Ok(found) => found,
                        Err(e) => {
                            warn!(service = %svc.name, error = %e, "could not read the digests the service runs; a rollback to a tag-based revision will be refused");
                            None
                        }
                    }
                }
                _ => None,
            }
        };
        let (changed, artifacts, captured) = tokio::join!(change, artifacts, captured);
        let (task_definition, mut record, ecs_deployment_id) = changed?;
        record.id = record::record_id(&ecs_deployment_id)?;
        record.ecs_deployment_id = ecs_deployment_id.clone();
        record.previous_digests = captured;
        let written = match lease {
            Some(held) => self.write_and_release(svc, &plan, &record, artifacts, held).await,
            None => self.write_remaining(svc, &plan, &record, artifacts).await,
        }?;
        info!(
            service = %svc.name,
            image = %plan.image_uri,
            event_id = %req.trigger.id(),
            deployment_id = %record.id,
            ecs_deployment_id = %ecs_deployment_id,
            task_definition = %short_name(&task_definition),
            outcome = "started",
            "decision"
        );
        summary.outcome = Outcome::Started;
        summary.reason =
            format!("{} → {} ({})", short_name(&state.current_arn), short_name(&task_definition), plan.action.name());
        summary.task_definition = Some(task_definition);
        summary.ecs_deployment_id = Some(ecs_deployment_id);
        summary.written = written;
        Ok(summary)
    }

    /// Writes the record (and the artifacts, unless `artifacts` says they are written) and
    /// releases the lease, all at once. If a write fails, the lease goes back to carrying the
    /// rollout, so whoever takes it next records it.
    async fn write_and_release(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        record: &DeploymentRecord,
        artifacts: Option<Vec<String>>,
        held: &mut HeldLease,
    ) -> Result<Vec<String>, Error> {
        let released = held.lease.released(Some(record.task_definition.clone()));
        let (written, release) = tokio::join!(
            self.write_remaining(svc, plan, record, artifacts),
            lease::rewrite(&self.store, &held.key, &released, &held.etag)
        );
        held.done = true;
        match (&written, release) {
            (Ok(_), Ok(_)) => {}
            (Ok(_), Err(e)) => {
                // The record is written: a taker after expiry finds it and has nothing to finish.
                warn!(service = %svc.name, error = %e, "could not release the service lease; it expires by itself");
            }
            (Err(_), release) => {
                if let Ok(etag) = release {
                    held.etag = etag;
                }
                held.lease.pending = Some(record.clone());
                // Handed over with the complete record: the next delivery writes it at once.
                if let Err(e) = lease::rewrite(&self.store, &held.key, &held.lease.handed_over(), &held.etag).await {
                    warn!(service = %svc.name, error = %e, "could not put the unrecorded rollout back in the lease");
                }
            }
        }
        written
    }

    fn new_record(
        &self,
        svc: &ServiceConfig,
        req: &Request<'_>,
        image_uri: &str,
        containers: &[String],
        previous: &str,
        task_definition: &str,
    ) -> DeploymentRecord {
        let started = record::now();
        let mut timeline = Vec::new();
        if let Some(p) = &req.pushed_at {
            timeline.push(record::TimelineEntry { event: "pushed".into(), at: p.clone() });
        }
        timeline.push(record::TimelineEntry { event: "started".into(), at: started });
        DeploymentRecord {
            id: String::new(),
            cluster: svc.cluster.clone(),
            service: svc.service.clone(),
            name: svc.name.clone(),
            repository: svc.repository.clone(),
            tag: req.image.tag.clone().unwrap_or_default(),
            digest: req.image.digest.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            image_uri: image_uri.to_string(),
            strategy: match svc.strategy {
                Strategy::PinDigest => "pin-digest".into(),
                Strategy::ForceNewDeployment => "force-new-deployment".into(),
            },
            trigger: req.trigger.clone(),
            pushed_at: req.pushed_at.clone(),
            previous_task_definition: previous.to_string(),
            task_definition: task_definition.to_string(),
            ecs_deployment_id: String::new(),
            status: Status::Started,
            containers: containers.to_vec(),
            smoke: None,
            reason: None,
            rolled_back_to: None,
            rollback_deployment: None,
            previous_digests: None,
            timeline,
        }
    }

    /// Writes the artifacts and the record concurrently; returns the keys written.
    async fn write_rollout(
        &self,
        svc: &ServiceConfig,
        containers: &[String],
        image_uri: &str,
        record: &DeploymentRecord,
    ) -> Result<Vec<String>, Error> {
        let (artifacts, record) =
            tokio::join!(self.write_artifacts(svc, containers, image_uri), self.write_record(record));
        let mut written = artifacts?;
        written.push(record?);
        Ok(written)
    }

    /// Writes the record, and the artifacts unless `artifacts` holds the keys already written.
    async fn write_remaining(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        record: &DeploymentRecord,
        artifacts: Option<Vec<String>>,
    ) -> Result<Vec<String>, Error> {
        match artifacts {
            Some(mut keys) => {
                keys.push(self.write_record(record).await?);
                Ok(keys)
            }
            None => self.write_rollout(svc, &plan.containers, &plan.image_uri, record).await,
        }
    }

    /// Writes `imagedefinitions.json` and `imageDetail.json` concurrently; returns their keys.
    async fn write_artifacts(
        &self,
        svc: &ServiceConfig,
        containers: &[String],
        image_uri: &str,
    ) -> Result<Vec<String>, Error> {
        let defs_key = image_definitions_key(&svc.cluster, &svc.service);
        let detail_key = image_detail_key(&svc.cluster, &svc.service);
        let (a, b) = tokio::join!(
            self.store.put_json(&defs_key, image_definitions(containers, image_uri)),
            self.store.put_json(&detail_key, image_detail(image_uri)),
        );
        a?;
        b?;
        Ok(vec![defs_key, detail_key])
    }

    /// Writes a record; returns its key.
    async fn write_record(&self, record: &DeploymentRecord) -> Result<String, Error> {
        let key = record.key();
        self.store.put_json(&key, serde_json::to_vec_pretty(record).expect("records always serialize")).await?;
        Ok(key)
    }
}

/// The answer to a manual rollback that was refused, changing nothing.
fn refused_rollback(svc: &ServiceConfig, request_id: &str, why: String) -> Summary {
    let reason = format!("rollback of {}: {why}", svc.name);
    warn!(service = %svc.name, request_id, outcome = "rejected", reason = %reason, "decision");
    Summary::of(vec![DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason)])
}

/// Turns per-service results into the answer. A transient failure fails the invocation so Lambda
/// retries it; so does AccessDenied, so it counts in the function's Errors metric and the event
/// waits in the dead-letter queue for a redrive after the IAM fix. Other permanent errors are
/// answered `rejected`, flagged for the topic when AWS refused them.
fn collect(results: Vec<(&ServiceConfig, Result<DeploymentSummary, Error>)>) -> Result<Summary, Error> {
    let mut deployments = Vec::with_capacity(results.len());
    for (svc, r) in results {
        match r {
            Ok(d) => deployments.push(d),
            Err(e) if e.is_transient() || e.is_access_denied() => return Err(e),
            Err(e) => {
                warn!(service = %svc.name, error = %e, outcome = "rejected", "decision");
                let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, e.to_string());
                d.needs_attention = e.is_permanent_aws();
                deployments.push(d);
            }
        }
    }
    Ok(Summary::of(deployments))
}
