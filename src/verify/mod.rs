//! Orchestration of a verify: an ECS deployment event (or a lifecycle hook invocation) in, a
//! verdict recorded, notified and acted on.

mod hook;

pub use hook::stuck;

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
use crate::domain::names::short_name;
use crate::error::AwsError;
use crate::error::Error;
use crate::event::{self, DeploymentState, EcsDeploymentEvent, Trigger};
use crate::hook::HookAnswer;
use crate::image::ImageRef;
use crate::lease::{self, Claim, Lease};
use crate::notify::{problem_message, verdict_message, Problem};
use crate::outcome::{DeploymentSummary, Outcome, Summary};
use crate::record::{self, DeploymentRecord, RollbackOf, Status, TriggerRef};
use crate::recovery::{self, Adopted};
use crate::retention;
use crate::rollback;
use crate::rollback_revision::{self, NotPrepared};
use crate::secrets::SecretSource;
use crate::smoke::client::HttpClient;
use crate::smoke::engine;
use crate::target_group::{self, Gate};
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
        if crate::hook::is_hook_payload(&payload) {
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

    async fn on_deployment(&self, e: &EcsDeploymentEvent, deadline: Instant) -> Result<Summary, Error> {
        let target = format!("{}/{}", e.cluster(), e.service);
        // A record for a service the config does not name is not pushdeploy's to act on, whoever
        // wrote it.
        if self.config.by_ecs_service(e.cluster(), &e.service).is_none() {
            let reason = format!("{target} is not a service in pushdeploy's config");
            info!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "ignored", reason = %reason, "decision");
            return Ok(Summary::only(Outcome::Ignored, reason));
        }
        let mut rec = match self.records().get(e.cluster(), &e.service, &e.deployment_id).await? {
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
        if rec.is_settled() {
            let reason = format!(
                "already {} ({}): nothing to do",
                rec.status.as_str(),
                rec.reason.as_deref().unwrap_or("no reason recorded")
            );
            return Ok(self.answer(&rec, settled_outcome(&rec), reason, false));
        }
        match e.state {
            DeploymentState::InProgress => {
                if !rec.has("ecs_in_progress") {
                    rec.stamp("ecs_in_progress", e.time.clone().unwrap_or_else(record::now));
                    self.save(&rec).await?;
                }
                self.log(&rec, e, "started");
                Ok(self.answer(&rec, Outcome::Started, "ECS reports the rollout in progress; recorded".into(), true))
            }
            DeploymentState::Failed => {
                let now = self.ecs.service_now(&rec.cluster, &rec.service).await?;
                let tied = self.tied_deployment(&rec).await?;
                if let Err(why) = confirm::failed(&now, &rec.ecs_deployment_id, &rec.task_definition, tied.as_ref()) {
                    return Err(unconfirmed(&rec, "SERVICE_DEPLOYMENT_FAILED", why));
                }
                rec.status = Status::Failed;
                rec.reason =
                    Some(format!("ECS deployment failed: {}", e.reason.as_deref().unwrap_or("no reason given")));
                rec.stamp("ecs_failed", record::now());
                self.settle(&rec, e).await?;
                Ok(self.answer(&rec, Outcome::Failed, rec.reason.clone().unwrap_or_default(), true))
            }
            DeploymentState::Completed => self.boxed(self.on_completed(rec, e, deadline)).await,
        }
    }

    async fn on_completed(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        deadline: Instant,
    ) -> Result<Summary, Error> {
        if rec.status == Status::RollbackFailed {
            // A retried event after a failed rollback: try the rollback again, do not re-test.
            let reason = rec.reason.clone().unwrap_or_default();
            return self.boxed(self.roll_back(rec, e, reason, deadline)).await;
        }
        if !rec.has("ecs_completed") {
            rec.stamp("ecs_completed", e.time.clone().unwrap_or_else(record::now));
        }
        if rec.is_rollback() {
            rec.status = Status::Completed;
            self.settle(&rec, e).await?;
            let reason = format!("rollback to {} completed", short_name(&rec.task_definition));
            return Ok(self.answer(&rec, Outcome::RolledBack, reason, true));
        }
        let now = self.ecs.service_now(&rec.cluster, &rec.service).await?;
        let running = now.task_definition.clone();
        let returned_to = rec.rolled_back_to.as_deref().unwrap_or(&rec.previous_task_definition);
        if running != rec.task_definition && running == returned_to && rec.has("smoke_failed") {
            // Our own rollback went through before the invocation that made it died: finish recording it.
            return self.finish_rollback(rec, e, now.primary_deployment.clone()).await;
        }
        if running != rec.task_definition {
            rec.status = Status::Failed;
            rec.reason = Some(format!(
                "the service runs {}, not {} that this deployment registered: ECS rolled it back (circuit breaker) or another deployment replaced it{}",
                short_name(&running),
                short_name(&rec.task_definition),
                e.reason.as_deref().map(|r| format!("; ECS says: {r}")).unwrap_or_default()
            ));
            rec.stamp("failed", record::now());
            self.settle(&rec, e).await?;
            return Ok(self.answer(&rec, Outcome::Failed, rec.reason.clone().unwrap_or_default(), true));
        }
        // Anyone who may invoke verify can send a COMPLETED event: ECS itself must say so before
        // a deployment is tested, verified or rolled back.
        let tied = self.tied_deployment(&rec).await?;
        if let Err(why) = confirm::completed(&now, &rec.ecs_deployment_id, tied.as_ref()) {
            return Err(unconfirmed(&rec, "SERVICE_DEPLOYMENT_COMPLETED", why));
        }
        if !rec.hook_checks.is_empty() {
            // The lifecycle hook checked before (and while) traffic shifted; a failed check has
            // already settled the record, so every check here passed. Not tested again.
            let checks: Vec<&str> = rec.hook_checks.iter().map(|c| c.check.as_str()).collect();
            let reason =
                format!("checked by the lifecycle hook at {}; ECS completed the deployment", checks.join(", "));
            return self.verified(rec, e, Some(reason.clone()), reason).await;
        }
        let svc = self.config.by_ecs_service(&rec.cluster, &rec.service);
        if svc.is_some_and(|s| s.hook.is_some()) {
            warn!(service = %rec.name, deployment_id = %rec.id, "[service.hook] is configured but ECS never called the hook for this deployment: check the service's deploymentConfiguration.lifecycleHooks; smoke-testing after the rollout instead");
        }
        let smoke = svc.and_then(|s| s.smoke.as_ref());
        let Some(smoke) = smoke else {
            rec.status = Status::Verified;
            rec.reason = Some("no smoke test configured: ECS reports the rollout completed".into());
            rec.stamp("verified", record::now());
            self.settle(&rec, e).await?;
            return Ok(self.answer(&rec, Outcome::Verified, rec.reason.clone().unwrap_or_default(), true));
        };
        // A smoke test that kills verify (out of memory, past its timeout) would otherwise die on
        // every retry and leave the deployment serving untested: after SMOKE_ATTEMPTS_BEFORE_ROLLBACK
        // tests that never reached a verdict, it is rolled back untested.
        if rec.smoke_attempts >= SMOKE_ATTEMPTS_BEFORE_ROLLBACK {
            let why = format!(
                "verify started the smoke test {} times and never reached a verdict (the invocation died: out of memory or past its timeout?); rolled back rather than left serving untested",
                rec.smoke_attempts
            );
            rec.reason = Some(why.clone());
            rec.stamp("smoke_failed", record::now());
            self.save(&rec).await?;
            return self.roll_back(rec, e, why, deadline).await;
        }
        // Read when needed, not at cold start: an SSM failure then holds only this service's
        // verdict (retried, or told), and a rotated token is picked up (see secrets::CACHE_TTL).
        // After the rule above: a rollback decided untested needs no credential.
        let resolved = self.secrets.resolve(smoke).await?;
        rec.smoke_attempts += 1;
        self.save(&rec).await?;
        let gated = self.gate(smoke, &rec, &now).await?;
        let report = engine::run(&gated, &self.http, Some(&self.elbv2), &resolved, &rec.id, deadline).await;
        rec.smoke = Some(serde_json::to_value(&report).expect("reports always serialize"));
        if report.passed {
            let said = format!("smoke test passed: {} round(s) in {} ms", report.rounds_run, report.duration_ms);
            return self.verified(rec, e, None, said).await;
        }
        let reason = report.reason.unwrap_or_else(|| "smoke test failed".into());
        // The verdict is saved before acting on it, so a retry after a crash knows the rollback is ours.
        rec.reason = Some(reason.clone());
        rec.stamp("smoke_failed", record::now());
        self.save(&rec).await?;
        self.boxed(self.roll_back(rec, e, reason, deadline)).await
    }

    /// `smoke` with the target-health gate on the group that serves the revision under test: a
    /// blue/green service alternates its pair of groups between deployments, so the configured
    /// one may be the drained group ([`target_group::gate_for`]). Only such a pair costs a
    /// DescribeServiceRevisions.
    async fn gate(
        &self,
        smoke: &crate::config::SmokeConfig,
        rec: &DeploymentRecord,
        now: &crate::aws::ecs::ServiceNow,
    ) -> Result<crate::config::SmokeConfig, Error> {
        let Some(configured) = &smoke.target_group_arn else { return Ok(smoke.clone()) };
        if !target_group::alternates(configured, &now.load_balancers) {
            return Ok(smoke.clone());
        }
        let serving = self.ecs.serving_target_groups(&now.current_revisions, &rec.task_definition).await?;
        let mut gated = smoke.clone();
        match target_group::gate_for(configured, &now.load_balancers, serving.as_deref()) {
            Gate::Configured => {}
            Gate::Serving(group) => {
                if &group != configured {
                    info!(service = %rec.name, deployment_id = %rec.id, target_group = %group, configured = %configured, "target-health gate on the group ECS resolved for the revision (the pair swapped)");
                }
                gated.target_group_arn = Some(group);
            }
            Gate::Skipped(why) => {
                warn!(service = %rec.name, deployment_id = %rec.id, reason = %why, "target-health gate skipped");
                gated.target_group_arn = None;
            }
        }
        Ok(gated)
    }

    /// Settles a deployment that passed its checks (`reason` on the record, `said` in the answer),
    /// then prunes old revisions.
    async fn verified(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        reason: Option<String>,
        said: String,
    ) -> Result<Summary, Error> {
        rec.status = Status::Verified;
        rec.reason = reason;
        rec.stamp("verified", record::now());
        self.settle(&rec, e).await?;
        self.prune(&rec).await;
        Ok(self.answer(&rec, Outcome::Verified, said, true))
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

    /// With `keep_revisions`, deregisters pushdeploy's own revisions of the service's family beyond
    /// the newest N, never one that any configured service runs or could roll back to
    /// ([`retention::protected`]): a family can be shared (staging and production). Housekeeping
    /// after the verdict: a failure is logged and left to the next verified deployment, and
    /// nothing is pruned unless every configured service could be read.
    async fn prune(&self, rec: &DeploymentRecord) {
        let Some(keep) = self.config.by_ecs_service(&rec.cluster, &rec.service).and_then(|s| s.keep_revisions) else {
            return;
        };
        let keep = keep as usize;
        let family = short_name(&rec.task_definition).rsplit_once(':').map_or("", |(f, _)| f);
        let (uses, own) = tokio::join!(self.service_uses(), async {
            Ok::<_, Error>(self.ecs.own_revisions(family, retention::described_per_run(keep)).await?)
        });
        let (uses, own) = match (uses, own) {
            (Ok(uses), Ok(own)) => (uses, own),
            (Err(err), _) | (_, Err(err)) => {
                warn!(service = %rec.name, error = %err, "could not read what the configured services run and could roll back to; pruned nothing");
                return;
            }
        };
        let protected = retention::protected(&uses, keep);
        for arn in retention::prunable(&own, keep, &protected) {
            match self.ecs.deregister_task_definition(arn).await {
                Ok(()) => {
                    info!(service = %rec.name, task_definition = %short_name(arn), "deregistered an old revision (keep_revisions)")
                }
                Err(err) => {
                    warn!(service = %rec.name, task_definition = %short_name(arn), error = %err, "could not deregister an old revision")
                }
            }
        }
    }

    /// What every configured ECS service has in use (one DescribeServices per cluster and ten
    /// services) and could return to (ECS's history and its recent records), a few services at once.
    async fn service_uses(&self) -> Result<Vec<retention::ServiceUse>, Error> {
        let mut by_cluster: Vec<(&str, Vec<String>)> = Vec::new();
        for s in &self.config.services {
            match by_cluster.iter_mut().find(|(c, _)| *c == s.cluster) {
                Some((_, names)) if names.contains(&s.service) => {}
                Some((_, names)) => names.push(s.service.clone()),
                None => by_cluster.push((s.cluster.as_str(), vec![s.service.clone()])),
            }
        }
        let mut services = Vec::new();
        for (cluster, names) in &by_cluster {
            let in_use = self.ecs.in_use(cluster, names).await?;
            services.extend(names.iter().zip(in_use).map(|(name, running)| (*cluster, name.as_str(), running)));
        }
        let mut uses = Vec::with_capacity(services.len());
        for batch in services.chunks(SERVICES_READ_AT_ONCE) {
            let read = batch.iter().map(|(cluster, service, running)| self.service_use(cluster, service, running));
            for u in futures_util::future::join_all(read).await {
                uses.push(u?);
            }
        }
        Ok(uses)
    }

    /// What one configured service has in use (`running`) and could return to.
    async fn service_use(
        &self,
        cluster: &str,
        service: &str,
        running: &[String],
    ) -> Result<retention::ServiceUse, Error> {
        let name = format!("{cluster}/{service}");
        // A service that is not ACTIVE runs nothing and has nothing to return to.
        if running.is_empty() {
            return Ok(retention::ServiceUse { service: name, ..Default::default() });
        }
        let records = self.records();
        let (ran, records) =
            tokio::join!(self.ecs.ran_revisions(cluster, service), records.recent(cluster, service, RECORDS_PROTECTED));
        Ok(retention::ServiceUse { service: name, running: running.to_vec(), ran: ran?, records: records? })
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

    /// Puts a permanent AWS error on the deployment's record (when it can be read and written) and
    /// publishes it once: a retry that meets the same error does not notify again.
    async fn report_problem(&self, e: &EcsDeploymentEvent, err: &Error) {
        error!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "error", error = %err, "decision");
        let name = self.config.by_ecs_service(e.cluster(), &e.service).map_or(e.service.as_str(), |s| s.name.as_str());
        let reason = format!("pushdeploy could not verify deployment {}: {err}", e.deployment_id);
        let mut already_told = false;
        if let Ok(Found::Record(rec)) = self.records().get(e.cluster(), &e.service, &e.deployment_id).await {
            already_told = already_says(&rec, &reason);
            if let Some(rec) = with_error(&rec, &reason) {
                if let Err(w) = self.save(&rec).await {
                    warn!(deployment_id = %e.deployment_id, error = %w, "could not put the error on the record");
                }
            }
        }
        if already_told {
            return;
        }
        let target = format!("{}/{}", e.cluster(), e.service);
        let message = problem_message(&Problem {
            function: "verify",
            service: name,
            target: Some(&target),
            doing: "verify",
            error: &err.to_string(),
            consequence: &format!(
                "deployment {} is neither verified nor rolled back; Lambda retries the event, then keeps it in the dead-letter queue for a redrive once this is fixed",
                e.deployment_id
            ),
        });
        self.publish(&message).await;
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
    /// execution), logs it, counts it and notifies.
    async fn settle_for(&self, rec: &DeploymentRecord, event_id: &str) -> Result<(), Error> {
        self.save(rec).await?;
        self.log_for(rec, event_id, rec.status.as_str());
        crate::emf::record(&rec.name, &crate::emf::verdict(rec));
        self.publish(&verdict_message(rec)).await;
        Ok(())
    }

    async fn save(&self, rec: &DeploymentRecord) -> Result<(), Error> {
        self.records().put(rec).await?;
        Ok(())
    }

    /// The deployment records in the bucket.
    fn records(&self) -> RecordStore {
        RecordStore::new(self.store.clone())
    }

    fn log(&self, rec: &DeploymentRecord, e: &EcsDeploymentEvent, outcome: &str) {
        self.log_for(rec, &e.event_id, outcome)
    }

    fn log_for(&self, rec: &DeploymentRecord, event_id: &str, outcome: &str) {
        info!(
            service = %rec.name,
            image = %rec.image_uri,
            event_id = %event_id,
            deployment_id = %rec.id,
            outcome,
            reason = rec.reason.as_deref().unwrap_or(""),
            "decision"
        );
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

/// True when `rec` already carries `reason` as its latest error: a retry meeting the same error.
fn already_says(rec: &DeploymentRecord, reason: &str) -> bool {
    rec.reason.as_deref() == Some(reason) && rec.timeline.last().is_some_and(|t| t.event == "error")
}

/// Pure: `rec` with `reason` as its error (`reason`, timeline `error`), or `None` when there is
/// nothing to write: it already says so, or it has its verdict (an error never overwrites one).
pub fn with_error(rec: &DeploymentRecord, reason: &str) -> Option<DeploymentRecord> {
    if rec.is_settled() || already_says(rec, reason) {
        return None;
    }
    let mut rec = rec.clone();
    rec.reason = Some(reason.to_string());
    rec.stamp("error", record::now());
    Some(rec)
}

/// What verify does with an event while its own state keeps it from judging any (an invalid
/// config, a missing setting: `why`). An ECS deployment event is never answered: its record, when
/// there is one, says why (once), and the invocation fails (`Err`, the message for Lambda), so
/// Lambda retries it, the function's Errors metric counts it, and the failed-invocations queue
/// keeps it for a redrive once the config is fixed. The topic heard of the config when it was
/// read. Anything else is answered as [`Verifier::handle`] would: it was never verify's to judge.
pub async fn cannot_judge(records: Option<&RecordStore>, payload: Value, why: &str) -> Result<Summary, String> {
    let e =
        match event::parse(payload) {
            Err(e) => return Ok(Summary::only(Outcome::Rejected, e.0)),
            Ok(Trigger::EcsDeployment(e)) => e,
            Ok(_) => return Ok(Summary::only(
                Outcome::Rejected,
                "verify takes ECS Deployment State Change events; pushes and manual actions go to the deploy function",
            )),
        };
    let reason = format!(
        "pushdeploy cannot judge deployment {} until its config is fixed: {why}; the event is retried, then kept in the failed-invocations queue: redrive it after the fix",
        e.deployment_id
    );
    error!(event_id = %e.event_id, deployment_id = %e.deployment_id, outcome = "error", error = %why, "decision");
    // An event about a short-ARN service may name no cluster; without the config, no record is found.
    if let (Some(records), Some(cluster)) = (records, e.cluster.as_deref()) {
        // Best effort: the error reaches Lambda's metric and queue whether or not the record says it.
        match records.get(cluster, &e.service, &e.deployment_id).await {
            Ok(Found::Record(rec)) => {
                if let Some(rec) = with_error(&rec, &reason) {
                    if let Err(w) = records.put(&rec).await {
                        warn!(deployment_id = %e.deployment_id, error = %w, "could not put the error on the record");
                    }
                }
            }
            Ok(_) => {}
            Err(w) => {
                warn!(deployment_id = %e.deployment_id, error = %w, "could not read the record to put the error on it")
            }
        }
    }
    Err(reason)
}

/// Smoke tests that died before a verdict after which a deployment is rolled back untested:
/// Lambda delivers an event three times (two retries), so the third delivery decides.
const SMOKE_ATTEMPTS_BEFORE_ROLLBACK: u32 = 2;

/// How many of a service's most recently written records an automatic rollback reads (as a
/// manual one does) to find the last verified deployment.
const RECORDS_SCANNED: usize = 50;

/// How many of each configured service's most recently written records pruning reads for its
/// rollback targets: as many as a manual rollback chooses from.
const RECORDS_PROTECTED: usize = 50;

/// How many configured services pruning reads (ECS's history, records) at once.
const SERVICES_READ_AT_ONCE: usize = 3;

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

fn settled_outcome(rec: &DeploymentRecord) -> Outcome {
    match rec.status {
        Status::Verified => Outcome::Verified,
        Status::RolledBack => Outcome::RolledBack,
        Status::Completed => Outcome::RolledBack,
        Status::RollbackFailed => Outcome::RollbackFailed,
        Status::Failed | Status::Started => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: &str) -> DeploymentRecord {
        serde_json::from_value(serde_json::json!({
            "id": "ecs-svc-1", "cluster": "c", "service": "s", "name": "backend", "repository": "r",
            "tag": "latest", "digest": "sha256:aa", "image_uri": "r@sha256:aa", "strategy": "pin-digest",
            "trigger": {"kind": "push", "event_id": "e"}, "pushed_at": "2026-11-27T00:00:00Z",
            "previous_task_definition": "td:1", "task_definition": "td:2", "ecs_deployment_id": "ecs-svc/1",
            "status": status, "containers": ["backend"],
            "timeline": [{"event": "started", "at": "2026-11-27T00:00:05Z"}]
        }))
        .unwrap()
    }

    #[test]
    fn an_error_goes_on_an_open_record_once_and_never_over_a_verdict() {
        let noted = with_error(&rec("started"), "config invalid").expect("an open record takes the error");
        assert_eq!(noted.reason.as_deref(), Some("config invalid"));
        assert_eq!(noted.timeline.last().unwrap().event, "error");
        assert_eq!(noted.status, Status::Started, "the error is no verdict");
        assert!(with_error(&noted, "config invalid").is_none(), "a retry meeting the same error writes nothing");
        assert!(with_error(&noted, "another error").is_some());
        assert!(with_error(&rec("verified"), "config invalid").is_none());
        assert!(with_error(&rec("rolled_back"), "config invalid").is_none());
    }
}
