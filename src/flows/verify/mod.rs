//! A verify: an ECS deployment event (or a lifecycle hook invocation) in, a verdict recorded,
//! told and acted on. Each flow reads like a script: describe what the verdict needs (the record,
//! the service, ECS's confirmation, the smoke test: `smoke`), decide ([`crate::rules::verdict`],
//! [`crate::rules::hook_verdict`], [`crate::rules::rollback_verdict`]), apply the value
//! ([`crate::flows::settle::apply`]). `hook` and `stuck` answer lifecycle hooks; `rollback_outcome`
//! puts the one rollback's outcome on the record; `prune` and `problem` are housekeeping and the
//! errors that keep verify from a verdict; `probe` answers `validate --live`.

mod bake;
mod canary;
mod hook;
mod probe;
mod problem;
mod prune;
mod rollback_outcome;
mod smoke;
mod stuck;

pub use probe::{ProbeAnswer, Probed};
pub use problem::{cannot_judge, with_error};
pub use stuck::{stuck, StuckSettings};

use std::time::Instant;

use serde_json::Value;
use tracing::{info, warn};

use crate::aws::ecs::EcsClient;
use crate::aws::elbv2::Elbv2Client;
use crate::aws::leases::LeaseStore;
use crate::aws::records::{Found, RecordStore};
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::config::Config;
use crate::domain::error::AwsError;
use crate::domain::error::Error;
use crate::domain::lifecycle::HookAnswer;
use crate::domain::record::{self, DeploymentRecord};
use crate::flows::settle;
use crate::inbound::{self as event, DeploymentState, EcsDeploymentEvent, Trigger};
use crate::rules::confirm;
use crate::rules::outcome::{DeploymentSummary, Outcome, Summary};
use crate::rules::verdict::{self, Ask, Described, Next, Reply, ServiceSeen, Verdict};
use crate::smoke::client::HttpClient;
use crate::smoke::secrets::SecretSource;

/// Everything a verify needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Verifier {
    /// The validated config.
    pub config: Config,
    /// ECS client.
    pub ecs: EcsClient,
    /// Artifact bucket.
    pub store: Store,
    /// The deployment records (and the hook index) in the bucket.
    pub records: RecordStore,
    /// The service leases in the bucket (an automatic rollback holds one).
    pub leases: LeaseStore,
    /// Target health.
    pub elbv2: Elbv2Client,
    /// The load balancer's CloudWatch metrics, for `[service.analysis]`.
    pub metrics: crate::aws::cloudwatch::MetricsReader,
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
            records: clients.records.clone(),
            leases: clients.leases.clone(),
            elbv2: clients.elbv2.clone(),
            metrics: clients.metrics.clone(),
            notifier: clients.notifier.clone(),
            http,
            secrets: crate::smoke::secrets::SecretSource::new(crate::aws::ssm::ParameterStore::new(&clients.sdk)),
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
    /// What each smoke URL answered a probe (`validate --live`).
    Probe(ProbeAnswer),
}

impl Verifier {
    /// Handles one invocation of the function: a lifecycle hook invocation from ECS, or an event.
    pub async fn invoke(&self, payload: Value, deadline: Instant) -> Result<Answer, Error> {
        // An operator's probe, told apart by its action: neither an event nor a hook invocation.
        if crate::inbound::probe::is_probe(&payload) {
            return Ok(match self.probe(&payload).await {
                Ok(probed) => Answer::Probe(probed),
                Err(rejected) => Answer::Event(rejected),
            });
        }
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
        if let Some(u) = self.config.unreadable_ecs_service(e.cluster(), &e.service) {
            return self.boxed(self.not_judged(e, u)).await;
        }
        match self.boxed(self.on_deployment(e, deadline)).await {
            // A failed rollback is on the record and told already; it fails the invocation.
            Err(err @ Error::RollbackFailed(_)) => Err(err),
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
            mode: svc.mode,
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
                    d.smoke = Some(self.boxed(self.smoke_and_bake(&v.record, svc, smoke, seen, deadline)).await?);
                }
                _ => return self.boxed(self.apply(v, e, deadline)).await,
            }
        }
    }

    /// The smoke test, then for a rolling service with `bake` the bake once it passed (a hook
    /// judges its own steps instead).
    async fn smoke_and_bake(
        &self,
        rec: &DeploymentRecord,
        svc: &crate::config::ServiceConfig,
        smoke: &crate::config::SmokeConfig,
        seen: &crate::domain::ecs_view::ServiceNow,
        deadline: Instant,
    ) -> Result<verdict::SmokeSeen, Error> {
        let mut ran = self.boxed(self.smoke_test(rec, smoke, seen, deadline)).await?;
        let bake = svc.analysis.as_ref().filter(|a| a.bake_ms.is_some() && svc.hook.is_none());
        if let Some(cfg) = bake.filter(|_| ran.passed) {
            self.boxed(self.bake(rec, cfg, seen, &mut ran, deadline)).await?;
        }
        Ok(ran)
    }

    /// ECS's own word on the event: anyone who may invoke verify can send one, so ECS itself must
    /// bear out a failure or a completion before the record says so.
    async fn confirmation(
        &self,
        rec: &DeploymentRecord,
        e: &EcsDeploymentEvent,
        now: &crate::domain::ecs_view::ServiceNow,
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
        self.write_and_tell(&v, e).await?;
        let said = self.reply(&v);
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

    /// Writes and tells what an event's verdict says ([`settle::apply`]).
    async fn write_and_tell(&self, v: &Verdict, e: &EcsDeploymentEvent) -> Result<(), Error> {
        settle::apply(self.records(), self.notifier.as_ref(), v, &e.event_id).await
    }

    /// The answer an event's verdict carries.
    fn reply(&self, v: &Verdict) -> Summary {
        match &v.answer {
            Some(Reply::Event(said)) => self.answer(&v.record, said.outcome, said.reason.clone(), said.wrote),
            _ => Summary::only(Outcome::Rejected, "verify reached no verdict"),
        }
    }

    /// ECS's service deployment a lifecycle hook tied the record to, if any.
    async fn tied_deployment(
        &self,
        rec: &DeploymentRecord,
    ) -> Result<Option<crate::domain::ecs_view::ServiceDeploymentNow>, Error> {
        match &rec.service_deployment_arn {
            Some(arn) => Ok(self.ecs.service_deployment(arn).await?),
            None => Ok(None),
        }
    }

    async fn publish(&self, m: &crate::rules::notify::Message) {
        if let Some(n) = &self.notifier {
            n.send(m).await;
        }
    }

    async fn save(&self, rec: &DeploymentRecord) -> Result<(), Error> {
        self.records().put(rec).await?;
        Ok(())
    }

    /// The deployment records in the bucket.
    fn records(&self) -> &RecordStore {
        &self.records
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
