//! Orchestration of a verify: an ECS deployment event (or a lifecycle hook invocation) in, a
//! verdict recorded, notified and acted on.

mod hook;
mod problem;
mod prune;
mod smoke;
mod stuck;

pub use problem::{cannot_judge, with_error};
pub use stuck::stuck;

use std::time::Instant;

use serde_json::Value;
use tracing::{error, info, warn};

use crate::aws::ecs::EcsClient;
use crate::aws::elbv2::Elbv2Client;
use crate::aws::leases::LeaseStore;
use crate::aws::records::{Found, RecordStore};
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::config::Config;
use crate::confirm;
use crate::domain::lifecycle::HookAnswer;
use crate::error::AwsError;
use crate::error::Error;
use crate::flows::settle;
use crate::image::ImageRef;
use crate::inbound::{self as event, DeploymentState, EcsDeploymentEvent, Trigger};
use crate::lease::{self, Claim, Lease};
use crate::outcome::{DeploymentSummary, Outcome, Summary};
use crate::record::{self, DeploymentRecord, RollbackOf, Status, TriggerRef};
use crate::recovery::{self, Adopted};
use crate::rollback;
use crate::rollback_revision::{self, NotPrepared};
use crate::rules::verdict::{self, Ask, Described, Next, Reply, ServiceSeen, Verdict};
use crate::secrets::SecretSource;
use crate::smoke::client::HttpClient;
use crate::taskdef::short_name;
use crate::timing::{self, Backoff, Deadline};

/// Everything a verify needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Verifier {
    /// The validated config.
    pub config: Config,
    /// ECS client.
    pub ecs: EcsClient,
    /// Artifact bucket (records).
    pub store: Store,
    /// Target health.
    pub elbv2: Elbv2Client,
    /// Verdict notifications, when a topic is configured.
    pub notifier: Option<Notifier>,
    /// Smoke-test HTTP client.
    pub http: HttpClient,
    /// Smoke-test credentials from SSM Parameter Store, read when a smoke test runs.
    pub secrets: SecretSource,
}

impl Verifier {
    /// A verifier acting through `clients` on `config`, smoke-testing with `http`; smoke-test
    /// credentials are read from SSM with the clients' credentials.
    pub fn new(config: Config, clients: &crate::aws::Clients, http: crate::smoke::client::HttpClient) -> Self {
        Self {
            config,
            ecs: clients.ecs.clone(),
            store: clients.store.clone(),
            elbv2: clients.elbv2.clone(),
            notifier: clients.notifier.clone(),
            http,
            secrets: crate::secrets::SecretSource::new(crate::aws::ssm::ParameterStore::new(&clients.sdk)),
        }
    }
}

/// What verify answers: a summary for an event, or what a lifecycle hook answers ECS.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// An ECS deployment event's verdict.
    Event(Summary),
    /// `{"hookStatus", "callBackDelay", "hookDetails"}`.
    Hook(HookAnswer),
}

impl Verifier {
    /// Handles one invocation of the function: a lifecycle hook invocation from ECS, or an event.
    pub async fn invoke(&self, payload: Value, deadline: Instant) -> Result<Answer, Error> {
        if crate::inbound::hook::is_hook_payload(&payload) {
            return Ok(Answer::Hook(Box::pin(self.hook(&payload, deadline)).await?));
        }
        Ok(Answer::Event(Box::pin(self.handle(payload, deadline)).await?))
    }

    /// Handles one event; `deadline` is when the verdict must be in hand.
    /// `Err` for transient AWS failures and for a failed rollback, so Lambda retries.
    pub async fn handle(&self, payload: Value, deadline: Instant) -> Result<Summary, Error> {
        match event::parse(payload) {
            Err(e) => Ok(Summary::only(Outcome::Rejected, e.0)),
            Ok(Trigger::EcsDeployment(mut e)) => match self.with_cluster(&mut e).await {
                Err(err) => Err(err),
                Ok(Some(reason)) => {
                    info!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "ignored", reason = %reason, "decision");
                    Ok(Summary::only(Outcome::Ignored, reason))
                }
                Ok(None) => self.on_resolved(&e, deadline).await,
            },
            Ok(_) => Ok(Summary::only(
                Outcome::Rejected,
                "verify takes ECS Deployment State Change events; pushes and manual actions go to the deploy function",
            )),
        }
    }

    /// Fills in the cluster of an event about a short-ARN service (`…:service/<name>`, no
    /// `detail.clusterArn`): the one configured cluster with that service or, where several have
    /// one of that name, the one whose record names the deployment (ECS deployment ids are
    /// unique). `Some(reason)` when pushdeploy has no such service or deployment.
    async fn with_cluster(&self, e: &mut EcsDeploymentEvent) -> Result<Option<String>, Error> {
        if e.cluster.is_some() {
            return Ok(None);
        }
        let clusters = self.config.clusters_of(&e.service);
        if let [one] = clusters.as_slice() {
            e.cluster = Some(one.to_string());
            return Ok(None);
        }
        for cluster in &clusters {
            if let Found::Record(_) = self.records().get(cluster, &e.service, &e.deployment_id).await? {
                e.cluster = Some(cluster.to_string());
                return Ok(None);
            }
        }
        Ok(Some(if clusters.is_empty() {
            format!("{} (a short service ARN, naming no cluster) is not a service in pushdeploy's config", e.service)
        } else {
            format!(
                "deployment {} of {} (a short service ARN) was not started by pushdeploy in any of {}",
                e.deployment_id,
                e.service,
                clusters.join(", ")
            )
        }))
    }

    /// [`Verifier::handle`] for an event whose cluster is known.
    async fn on_resolved(&self, e: &EcsDeploymentEvent, deadline: Instant) -> Result<Summary, Error> {
        match self.boxed(self.on_deployment(e, deadline)).await {
            // A permanent AWS error (AccessDenied, a vanished service) needs a person: it goes on
            // the record and to the topic, and fails the invocation so it counts in the function's
            // Errors metric and the event reaches the dead-letter queue for a redrive after the fix.
            Err(err) if err.is_permanent_aws() => {
                self.report_problem(e, &err).await;
                Err(err)
            }
            Err(err) if !err.is_transient() => {
                warn!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "rejected", error = %err, "decision");
                Ok(Summary::only(Outcome::Rejected, err.to_string()))
            }
            other => other,
        }
    }

    /// `step` on the heap: awaited inline, a step's whole future took several slots of its
    /// caller's frame in a debug build, and the steps of a verdict nest deep in a test thread's
    /// 2 MiB of stack.
    fn boxed<'a, T>(
        &self,
        step: impl std::future::Future<Output = T> + Send + 'a,
    ) -> futures_util::future::BoxFuture<'a, T> {
        Box::pin(step)
    }

    /// The flow of one ECS deployment event: describe what the verdict needs (the record, then
    /// what ECS runs and confirms, then the smoke test) as [`verdict::decide`] asks, then apply
    /// the verdict.
    async fn on_deployment(&self, e: &EcsDeploymentEvent, deadline: Instant) -> Result<Summary, Error> {
        let target = format!("{}/{}", e.cluster(), e.service);
        // A record for a service the config does not name is not pushdeploy's to act on, whoever
        // wrote it.
        let Some(svc) = self.config.by_ecs_service(e.cluster(), &e.service) else {
            let reason = format!("{target} is not a service in pushdeploy's config");
            info!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "ignored", reason = %reason, "decision");
            return Ok(Summary::only(Outcome::Ignored, reason));
        };
        let rec = match self.records().get(e.cluster(), &e.service, &e.deployment_id).await? {
            Found::Record(r) => *r,
            Found::Absent => {
                let reason = format!("deployment {} of {target} was not started by pushdeploy", e.deployment_id);
                info!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "ignored", reason = %reason, "decision");
                return Ok(Summary::only(Outcome::Ignored, reason));
            }
            Found::Unreadable(key, err) => {
                return Ok(Summary::only(Outcome::Rejected, format!("record {key} is unreadable: {err}")))
            }
        };
        let now = record::now();
        let mut d = Described {
            event: e,
            record: &rec,
            smoke_configured: svc.smoke.is_some(),
            service: None,
            confirmed: None,
            smoke: None,
            event_at: e.time.clone().unwrap_or_else(|| now.clone()),
            now,
        };
        let mut service_now = None;
        loop {
            d.now = record::now();
            let v = verdict::decide(&d);
            match (&v.next, &service_now, &svc.smoke) {
                (Next::Read(Ask::Service), _, _) => {
                    let seen = self.ecs.service_now(&rec.cluster, &rec.service).await?;
                    d.service = Some(ServiceSeen {
                        running: seen.task_definition.clone(),
                        primary: seen.primary_deployment.clone(),
                    });
                    service_now = Some(seen);
                }
                (Next::Read(Ask::Confirmation), Some(seen), _) => {
                    d.confirmed = Some(self.confirmation(&rec, e, seen, svc).await?);
                }
                (Next::RunSmoke, Some(seen), Some(smoke)) => {
                    d.smoke = Some(self.boxed(self.smoke_test(&v.record, smoke, seen, deadline)).await?);
                }
                _ => return self.boxed(self.apply(v, e, deadline)).await,
            }
        }
    }

    /// ECS's own word on the event: anyone who may invoke verify can send one, so ECS itself must
    /// bear out a failure or a completion before the record says so.
    async fn confirmation(
        &self,
        rec: &DeploymentRecord,
        e: &EcsDeploymentEvent,
        now: &crate::aws::ecs::ServiceNow,
        svc: &crate::config::ServiceConfig,
    ) -> Result<Result<(), String>, Error> {
        let tied = self.tied_deployment(rec).await?;
        if e.state == DeploymentState::Failed {
            return Ok(confirm::failed(now, &rec.ecs_deployment_id, &rec.task_definition, tied.as_ref()));
        }
        let confirmed = confirm::completed(now, &rec.ecs_deployment_id, tied.as_ref());
        if confirmed.is_ok() && rec.hook_checks.is_empty() && svc.hook.is_some() {
            warn!(service = %rec.name, deployment_id = %rec.id, "[service.hook] is configured but ECS never called the hook for this deployment: check the service's deploymentConfiguration.lifecycleHooks; smoke-testing after the rollout instead");
        }
        Ok(confirmed)
    }

    /// Applies an event's verdict: writes and tells what it says ([`settle::apply`]), then does
    /// what comes next and answers.
    async fn apply(&self, v: Verdict, e: &EcsDeploymentEvent, deadline: Instant) -> Result<Summary, Error> {
        settle::apply(&self.records(), self.notifier.as_ref(), &v, &e.event_id).await?;
        let said = match &v.answer {
            Some(Reply::Event(said)) => self.answer(&v.record, said.outcome, said.reason.clone(), said.wrote),
            _ => Summary::only(Outcome::Rejected, "verify reached no verdict"),
        };
        match v.next {
            Next::Refuse { event, why } => Err(unconfirmed(&v.record, event, why)),
            Next::RollBack { why } => self.boxed(self.roll_back(v.record, e, why, deadline)).await,
            Next::FinishRollback { primary } => self.finish_rollback(v.record, e, primary).await,
            Next::Prune => {
                self.prune(&v.record).await;
                Ok(said)
            }
            Next::Answer | Next::Read(_) | Next::RunSmoke => Ok(said),
        }
    }

    /// Records a rollback that ECS already runs (its invocation died before recording it).
    async fn finish_rollback(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        primary: Option<String>,
    ) -> Result<Summary, Error> {
        let to = rec.rolled_back_to.clone().unwrap_or_else(|| rec.previous_task_definition.clone());
        if let Some(dep) = primary {
            if !self.records().exists(&rec.cluster, &rec.service, &dep).await? {
                let rollback = self.rollback_record(&rec, &to, None, &dep).await?;
                self.records().put(&rollback).await?;
            }
            rec.rollback_deployment = Some(record::record_id(&dep)?);
        }
        rec.status = Status::RolledBack;
        rec.rolled_back_to = Some(to.clone());
        rec.stamp("rolled_back", record::now());
        self.settle(&rec, e).await?;
        let reason = format!("rolled back to {}: {}", short_name(&to), rec.reason.as_deref().unwrap_or_default());
        Ok(self.answer(&rec, Outcome::RolledBack, reason, true))
    }

    /// Returns the service to the record's previous task definition.
    async fn roll_back(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        why: String,
        deadline: Instant,
    ) -> Result<Summary, Error> {
        let to = rec.previous_task_definition.clone();
        if to == rec.task_definition {
            rec.status = Status::Failed;
            rec.reason = Some(format!(
                "{why}; no automatic rollback: strategy {} kept task definition {}, so there is no earlier revision to return to (push the previous image to the tag again)",
                rec.strategy,
                short_name(&to)
            ));
            rec.stamp("failed", record::now());
            self.settle(&rec, e).await?;
            return Ok(self.answer(&rec, Outcome::Failed, rec.reason.clone().unwrap_or_default(), true));
        }
        // A rollback changes the service as a deploy does, so it holds the service's lease too:
        // it must not interleave with a rollout in flight. It holds it for at most
        // ROLLBACK_HOLD, and the lease lapses just after.
        let key = lease::lease_key(&rec.cluster, &rec.service);
        let hold = Deadline::after(timing::ROLLBACK_HOLD);
        let mine = Lease::new(format!("rollback of {}", rec.id), None, to.clone(), hold.lease_expires_at_ms(), None);
        let leases = LeaseStore::new(self.store.clone());
        // A live lease is waited for: a rollout holds it for tens of milliseconds, and a dead
        // holder's lapses with its deadline. A stale one is taken over, its rollout finished first.
        let mut backoff = Backoff::until(deadline);
        let claimed = loop {
            let claimed = match leases.read(&key).await {
                Ok(found) => leases.claim(&key, found, &mine, true).await,
                Err(err) => Err(err),
            };
            if !matches!(claimed, Ok(Claim::Blocked(_))) || !backoff.wait().await {
                break claimed;
            }
        };
        let (etag, replaced, stale) = match claimed {
            Err(err) if err.transient => return Err(err.into()),
            // Without the lease there is no safe rollback: as loud as a refused UpdateService.
            Err(err) => return self.rollback_failed(rec, e, why, err).await,
            Ok(Claim::Held { etag, replaced, stale }) => (etag, replaced, stale),
            Ok(Claim::Blocked(other)) => {
                warn!(service = %rec.name, deployment_id = %rec.id, holder = %other.holder, "rollback waits for the service lease");
                return Err(AwsError {
                    action: "S3 lease",
                    target: format!("{}/{}", rec.cluster, rec.service),
                    detail: format!(
                        "{} holds the service (rolling out {}); the rollback of {} waits for it",
                        other.holder, other.image_uri, rec.id
                    ),
                    hint: "nothing: this event is retried; if that rollout replaces the failed revision, the retry records this deployment failed",
                    transient: true,
                }
                .into());
            }
        };
        let failed_revision = rec.task_definition.clone();
        let held = async {
            // Another rollout left the service elsewhere (released, or finished here for a dead
            // holder): the failed revision no longer serves, and rolling back would undo that one.
            if let Some(left_on) = replaced.left_on().filter(|td| *td != failed_revision) {
                return Ok(Held::Replaced(left_on.to_string()));
            }
            if let Some(stale) = stale {
                let adopted = recovery::adopt(&self.ecs, &self.records(), *stale).await?;
                if let Adopted::Recorded { task_definition } = adopted {
                    if task_definition != failed_revision {
                        return Ok(Held::Replaced(task_definition));
                    }
                }
            }
            let (to, restores) = match self.rollback_target(&mut rec).await {
                Ok(found) => found,
                Err(err) => return Ok(Held::NoTarget(err)),
            };
            let updated = self.ecs.update_service(&rec.cluster, &rec.service, &to, false).await;
            Ok::<_, Error>(Held::Updated(to, restores, updated))
        };
        let held = tokio::time::timeout_at(hold.at().into(), held).await.unwrap_or_else(|_| {
            Err(AwsError {
                action: "hold the service lease",
                target: format!("{}/{}", rec.cluster, rec.service),
                detail: format!(
                    "the rollback's calls took longer than the {:?} it may hold the service",
                    timing::ROLLBACK_HOLD
                ),
                hint: "AWS latency or throttling; the retry rolls back",
                transient: true,
            }
            .into())
        });
        let left_on = match &held {
            Ok(Held::Replaced(td)) => Some(td.clone()),
            Ok(Held::Updated(to, _, Ok(_))) => Some(to.clone()),
            _ => replaced.left_on().map(str::to_string),
        };
        let next = if held.is_err() { mine.handed_over() } else { mine.released(left_on) };
        if let Err(w) = leases.rewrite(&key, &next, &etag).await {
            warn!(service = %rec.name, error = %w, "could not let go of the service lease; it expires by itself");
        }
        match held {
            Err(err) => match err {
                Error::Aws(err) if !err.transient => self.rollback_failed(rec, e, why, err).await,
                other => Err(other),
            },
            Ok(Held::Replaced(running)) => {
                rec.status = Status::Failed;
                rec.reason = Some(format!(
                    "{why}; not rolled back: {} replaced {} before the rollback could start",
                    short_name(&running),
                    short_name(&rec.task_definition)
                ));
                rec.stamp("failed", record::now());
                self.settle(&rec, e).await?;
                Ok(self.answer(&rec, Outcome::Failed, rec.reason.clone().unwrap_or_default(), true))
            }
            Ok(Held::NoTarget(err)) => match err {
                Error::Aws(err) if !err.transient || err.is_access_denied() => {
                    self.rollback_failed(rec, e, why, err).await
                }
                other => Err(other),
            },
            Ok(Held::Updated(to, restores, Ok(ecs_deployment_id))) => {
                let rollback = self.rollback_record(&rec, &to, restores.as_deref(), &ecs_deployment_id).await?;
                rec.status = Status::RolledBack;
                rec.reason = Some(why);
                rec.rolled_back_to = Some(to.clone());
                rec.rollback_deployment = Some(rollback.id.clone());
                rec.stamp("rolled_back", record::now());
                let records = self.records();
                let (a, b) = tokio::join!(records.put(&rollback), self.settle(&rec, e));
                a?;
                b?;
                let reason =
                    format!("rolled back to {}: {}", short_name(&to), rec.reason.as_deref().unwrap_or_default());
                Ok(self.answer(&rec, Outcome::RolledBack, reason, true))
            }
            Ok(Held::Updated(_, _, Err(err))) => self.rollback_failed(rec, e, why, err).await,
        }
    }

    /// The revision a rollback returns to, and the verified deployment it restores: chosen by
    /// the one rule automatic and manual rollbacks share ([`rollback::choose_target`]) from the
    /// service's records and ECS's own history, never from the record alone. A revision naming
    /// an image by tag runs as a copy pinned to the digests it ran. The choice is noted on the
    /// record (`rolled_back_to`) before the service moves, so a retry after a crash recognises
    /// the rollback as its own; a retry reuses a pinned copy only if it is that very copy.
    async fn rollback_target(&self, rec: &mut DeploymentRecord) -> Result<(String, Option<String>), Error> {
        let target = format!("{}/{}", rec.cluster, rec.service);
        let records = self.records();
        let (recent, ran) = tokio::join!(
            records.recent(&rec.cluster, &rec.service, RECORDS_SCANNED),
            self.ecs.ran_revisions(&rec.cluster, &rec.service)
        );
        let (mut recent, ran) = (recent?, ran?);
        // The revision this deployment replaced, which ECS's history may not hold (deployed before
        // it kept service revisions): its tasks, running or just replaced, show what it ran.
        let ran = self.ecs.with_tasks_of(&rec.cluster, &rec.service, ran, &rec.previous_task_definition).await?;
        // The failed deployment as this invocation knows it, whatever the listing returned.
        recent.retain(|r| r.id != rec.id);
        recent.push(rec.clone());
        let chosen = rollback::choose_target(&recent, &rec.task_definition, &ran).map_err(|why| AwsError {
            action: "roll back",
            target: target.clone(),
            detail: why,
            hint: "the service's deployment history (`pushdeploy history`); deploy a known-good build by hand (`pushdeploy deploy <service> <tag>`)",
            transient: false,
        })?;
        let restores = chosen.restores.map(|r| r.id.clone());
        let prepared = rollback_revision::prepare(&self.ecs, chosen.revision, &rec.containers, rec.rolled_back_to.as_deref())
            .await
            .map_err(|e| match e {
                NotPrepared::Aws(e) => e,
                NotPrepared::Unsafe(why) => AwsError {
                    action: "roll back",
                    target: target.clone(),
                    detail: why,
                    hint: "roll back by hand to a revision pinned to a digest (`deploy` an older tag); ECS's service revision of the target names no digest for it",
                    transient: false,
                },
            })?;
        info!(service = %rec.name, deployment_id = %rec.id, task_definition = %short_name(&prepared.task_definition), reason = %chosen.why, "rollback target");
        if rec.rolled_back_to.as_deref() != Some(prepared.task_definition.as_str()) {
            rec.rolled_back_to = Some(prepared.task_definition.clone());
            self.save(rec).await?;
        }
        Ok((prepared.task_definition, restores))
    }

    /// ECS's service deployment a lifecycle hook tied the record to, if any.
    async fn tied_deployment(
        &self,
        rec: &DeploymentRecord,
    ) -> Result<Option<crate::aws::ecs::ServiceDeploymentNow>, Error> {
        match &rec.service_deployment_arn {
            Some(arn) => Ok(self.ecs.service_deployment(arn).await?),
            None => Ok(None),
        }
    }

    /// Records, logs and notifies a rollback that could not be carried out, and fails the invocation.
    async fn rollback_failed(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        why: String,
        err: crate::error::AwsError,
    ) -> Result<Summary, Error> {
        let to = rec.rolled_back_to.as_deref().map(|to| format!(" to {}", short_name(to))).unwrap_or_default();
        let reason = format!(
            "{}; pushdeploy cannot roll back {}{to}: {err}; the broken revision {} is still serving",
            why.split("; pushdeploy cannot roll back").next().unwrap_or(&why),
            rec.name,
            short_name(&rec.task_definition)
        );
        error!(service = %rec.name, deployment_id = %rec.id, image = %rec.image_uri, outcome = "rollback_failed", error = %err, "decision");
        // A retry that fails the same way has told everyone already: the record and the message stand.
        if rec.status != Status::RollbackFailed || rec.reason.as_deref() != Some(reason.as_str()) {
            rec.status = Status::RollbackFailed;
            rec.reason = Some(reason);
            rec.stamp("rollback_failed", record::now());
            self.settle(&rec, e).await?;
        }
        // Whatever the cause, a failed rollback is retried: the event comes back and we try again.
        Err(crate::error::AwsError { transient: true, ..err }.into())
    }

    async fn publish(&self, m: &crate::notify::Message) {
        if let Some(n) = &self.notifier {
            n.send(m).await;
        }
    }

    /// The record of a rollback's own ECS deployment, so its events are recognised and never smoke-tested.
    async fn rollback_record(
        &self,
        failed: &DeploymentRecord,
        to: &str,
        restores: Option<&str>,
        ecs_deployment_id: &str,
    ) -> Result<DeploymentRecord, Error> {
        // The image the rollback returns to, for the record and the notification.
        let image = match self.ecs.describe_task_definition(to).await {
            Ok(td) => td
                .task_definition
                .container_definitions()
                .iter()
                .find(|c| failed.containers.iter().any(|n| c.name() == Some(n.as_str())))
                .and_then(|c| c.image())
                .map(str::to_string),
            Err(err) => {
                warn!(service = %failed.name, error = %err, "could not read the rollback target's images");
                None
            }
        };
        let parsed = image.as_deref().and_then(|i| ImageRef::parse(i).ok());
        Ok(DeploymentRecord::rollback(RollbackOf {
            service_of: failed,
            trigger: TriggerRef::AutoRollback { of: failed.id.clone() },
            from: &failed.task_definition,
            to,
            tag: parsed.as_ref().and_then(|p| p.tag.clone()).unwrap_or_default(),
            digest: parsed.as_ref().and_then(|p| p.digest.as_ref()).map(|d| d.to_string()).unwrap_or_default(),
            image_uri: image.unwrap_or_default(),
            restores,
            ecs_deployment_id: Some(ecs_deployment_id),
            reason: format!("automatic rollback of {}", failed.id),
        })?)
    }

    /// Writes a record that reached a verdict, logs it and notifies.
    async fn settle(&self, rec: &DeploymentRecord, e: &EcsDeploymentEvent) -> Result<(), Error> {
        self.settle_for(rec, &e.event_id).await
    }

    /// Writes a record that reached a verdict on behalf of `event_id` (an event or a hook
    /// execution), logs it, counts it and notifies ([`settle::settle`]).
    async fn settle_for(&self, rec: &DeploymentRecord, event_id: &str) -> Result<(), Error> {
        settle::settle(&self.records(), self.notifier.as_ref(), rec, event_id).await
    }

    async fn save(&self, rec: &DeploymentRecord) -> Result<(), Error> {
        self.records().put(rec).await?;
        Ok(())
    }

    /// The deployment records in the bucket.
    fn records(&self) -> RecordStore {
        RecordStore::new(self.store.clone())
    }

    fn answer(&self, rec: &DeploymentRecord, outcome: Outcome, reason: String, wrote: bool) -> Summary {
        let mut d = DeploymentSummary::new(&rec.name, format!("{}/{}", rec.cluster, rec.service), outcome, reason);
        d.image = Some(rec.image_uri.clone()).filter(|i| !i.is_empty());
        d.previous_task_definition = Some(rec.previous_task_definition.clone());
        d.task_definition = Some(rec.task_definition.clone());
        d.ecs_deployment_id = Some(rec.ecs_deployment_id.clone());
        if wrote {
            d.written = vec![rec.key()];
        }
        Summary::of(vec![d])
    }
}

/// How many of a service's most recently written records an automatic rollback reads (as a
/// manual one does) to find the last verified deployment.
const RECORDS_SCANNED: usize = 50;

/// What a rollback came to while it held the service's lease.
enum Held {
    /// Another rollout replaced the failed revision first: nothing to roll back.
    Replaced(String),
    /// No safe target (a tag-based revision whose digests are unknown) or it could not be read.
    NoTarget(Error),
    /// UpdateService to this target (restoring this verified deployment, if one), and ECS's answer.
    Updated(String, Option<String>, Result<String, AwsError>),
}

/// An event ECS's own state does not bear out: nothing is changed, and the invocation fails so
/// that Lambda retries it (ECS's state can lag its event by moments) and then parks it.
fn unconfirmed(rec: &DeploymentRecord, event: &str, why: String) -> Error {
    warn!(service = %rec.name, deployment_id = %rec.id, outcome = "unconfirmed", reason = %why, "decision");
    AwsError {
        action: "confirm the event with ECS",
        target: format!("{}/{}", rec.cluster, rec.service),
        detail: format!("{event} for {} is not confirmed: {why}", rec.ecs_deployment_id),
        hint: "nothing if ECS is about to report it (the retry settles it); otherwise someone invoked verify with an event ECS did not send",
        transient: true,
    }
    .into()
}
