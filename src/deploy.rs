//! Orchestration of a deploy: trigger in, rollouts started, answer out.

use futures_util::future::join_all;
use serde_json::Value;
use tracing::{info, warn};

use crate::artifact::{image_definitions_key, image_detail, image_detail_key};
use crate::aws::ecr::EcrClient;
use crate::aws::ecs::{DescribedTaskDefinition, EcsClient};
use crate::aws::s3::Store;
use crate::config::{Config, ServiceConfig, Strategy};
use crate::error::{Error, InputError};
use crate::event::{self, ManualAction, PushEvent, Trigger};
use crate::image::{truncate, ImageRef};
use crate::outcome::{DeploymentSummary, Outcome, Summary};
use crate::plan::{self, Action, Freshness, ServicePlan};
use crate::record::{self, DeploymentRecord, Status, TriggerRef};
use crate::rollback;
use crate::taskdef::short_name;

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
}

/// A service's state as read before planning.
struct ServiceState {
    current: DescribedTaskDefinition,
    current_arn: String,
    previous_definitions: Option<Vec<u8>>,
}

/// Why and how a rollout was asked for.
struct Request<'a> {
    trigger: TriggerRef,
    image: &'a ImageRef,
    pushed_at: Option<String>,
    force: bool,
    dry_run: bool,
}

impl Deployer {
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
            Ok(Trigger::Push(push)) => self.on_push(&push).await,
            Ok(Trigger::Manual(action)) => self.on_manual(&action, request_id).await,
        }?;
        if summary.outcome == Outcome::Rejected {
            warn!(request_id, outcome = "rejected", reason = %summary.reason, "decision");
        }
        Ok(summary)
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
        // The freshness check and the services' state reads are independent: overlap them.
        let (tagged, states) = tokio::join!(
            self.ecr.resolve_tag(&push.image.repository, push.tag()),
            join_all(services.iter().map(|s| self.read_state(s)))
        );
        let tagged = tagged?;
        let freshness = plan::freshness(push.digest(), tagged.as_ref().map(|t| &t.digest));
        let not_current = match &freshness {
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
        let rollouts = services.iter().zip(states).map(|(svc, state)| {
            let req = Request {
                trigger: TriggerRef::Push { event_id: push.event_id.clone() },
                image: &push.image,
                pushed_at: pushed_at.clone(),
                force: false,
                dry_run: false,
            };
            async move {
                let result = match state {
                    Ok(state) => self.rollout(svc, state, req).await,
                    Err(e) => Err(e),
                };
                (*svc, result)
            }
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
            ManualAction::Rollback { .. } => return self.manual_rollback(svc, request_id).await,
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
        let (tagged, state) = tokio::join!(self.ecr.resolve_tag(&svc.repository, tag), self.read_state(svc));
        let Some(tagged) = tagged? else {
            return Ok(Summary::only(Outcome::Rejected, format!("tag {}:{tag} does not exist in ECR", svc.repository)));
        };
        let image = ImageRef {
            registry: ImageRef::ecr_registry(&tagged.registry_id, &self.region),
            repository: svc.repository.clone(),
            tag: Some(tag.to_string()),
            digest: Some(tagged.digest.clone()),
        };
        let req = Request {
            trigger: TriggerRef::Manual { action: action.verb().to_string(), request_id: request_id.to_string() },
            image: &image,
            pushed_at: tagged.pushed_at.clone(),
            force,
            dry_run,
        };
        let result = match state {
            Ok(state) => self.rollout(svc, state, req).await,
            Err(e) => Err(e),
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
            Err(reason) => {
                let reason = format!("rollback of {}: {reason}; nothing changed", svc.name);
                warn!(service = %svc.name, request_id, outcome = "rejected", reason = %reason, "decision");
                return Ok(Summary::of(vec![DeploymentSummary::new(
                    &svc.name,
                    svc.target(),
                    Outcome::Rejected,
                    reason,
                )]));
            }
        };
        let ecs_deployment_id = self.ecs.update_service(&svc.cluster, &svc.service, &chosen.task_definition).await?;
        let rec = DeploymentRecord {
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

    async fn read_state(&self, svc: &ServiceConfig) -> Result<ServiceState, Error> {
        let previous = async {
            match svc.strategy {
                Strategy::ForceNewDeployment => {
                    self.store.get(&image_definitions_key(&svc.cluster, &svc.service)).await
                }
                Strategy::PinDigest => Ok(None),
            }
        };
        let current = async {
            let arn = self.ecs.current_task_definition(&svc.cluster, &svc.service).await?;
            let td = self.ecs.describe_task_definition(&arn).await?;
            Ok::<_, Error>((arn, td))
        };
        let (previous, current) = tokio::join!(previous, current);
        let (current_arn, current) = current?;
        Ok(ServiceState { current, current_arn, previous_definitions: previous? })
    }

    async fn rollout(
        &self,
        svc: &ServiceConfig,
        state: ServiceState,
        req: Request<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let plan = match plan::plan_service(
            svc,
            req.image,
            &state.current.task_definition,
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

        let task_definition = match &plan.action {
            Action::Unchanged => {
                summary.outcome = Outcome::Unchanged;
                summary.reason = format!("already runs {}", plan.image_uri);
                summary.task_definition = Some(state.current_arn);
                info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "unchanged", "decision");
                return Ok(summary);
            }
            Action::Register(td) => self.ecs.register_task_definition(td, &state.current.tags).await?,
            Action::ForceNewDeployment => state.current_arn.clone(),
        };
        let ecs_deployment_id = self.ecs.update_service(&svc.cluster, &svc.service, &task_definition).await?;
        let record = self.new_record(svc, &req, &plan, &state.current_arn, &task_definition, &ecs_deployment_id)?;
        let written = self.write_rollout(svc, &plan, &record).await?;
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

    fn new_record(
        &self,
        svc: &ServiceConfig,
        req: &Request<'_>,
        plan: &ServicePlan,
        previous: &str,
        task_definition: &str,
        ecs_deployment_id: &str,
    ) -> Result<DeploymentRecord, Error> {
        let started = record::now();
        let mut timeline = Vec::new();
        if let Some(p) = &req.pushed_at {
            timeline.push(record::TimelineEntry { event: "pushed".into(), at: p.clone() });
        }
        timeline.push(record::TimelineEntry { event: "started".into(), at: started });
        Ok(DeploymentRecord {
            id: record::record_id(ecs_deployment_id)?,
            cluster: svc.cluster.clone(),
            service: svc.service.clone(),
            name: svc.name.clone(),
            repository: svc.repository.clone(),
            tag: req.image.tag.clone().unwrap_or_default(),
            digest: req.image.digest.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            image_uri: plan.image_uri.clone(),
            strategy: match svc.strategy {
                Strategy::PinDigest => "pin-digest".into(),
                Strategy::ForceNewDeployment => "force-new-deployment".into(),
            },
            trigger: req.trigger.clone(),
            pushed_at: req.pushed_at.clone(),
            previous_task_definition: previous.to_string(),
            task_definition: task_definition.to_string(),
            ecs_deployment_id: ecs_deployment_id.to_string(),
            status: Status::Started,
            containers: plan.containers.clone(),
            smoke: None,
            reason: None,
            rolled_back_to: None,
            rollback_deployment: None,
            timeline,
        })
    }

    /// Writes the artifacts and the record concurrently; returns the keys written.
    async fn write_rollout(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        record: &DeploymentRecord,
    ) -> Result<Vec<String>, Error> {
        let defs_key = image_definitions_key(&svc.cluster, &svc.service);
        let detail_key = image_detail_key(&svc.cluster, &svc.service);
        let record_key = record.key();
        let record_bytes = serde_json::to_vec_pretty(record).expect("records always serialize");
        let (a, b, c) = tokio::join!(
            self.store.put_json(&defs_key, plan.image_definitions.clone()),
            self.store.put_json(&detail_key, image_detail(&plan.image_uri)),
            self.store.put_json(&record_key, record_bytes),
        );
        a?;
        b?;
        c?;
        Ok(vec![defs_key, detail_key, record_key])
    }
}

/// Turns per-service results into the answer; any transient failure fails the invocation so Lambda retries.
fn collect(results: Vec<(&ServiceConfig, Result<DeploymentSummary, Error>)>) -> Result<Summary, Error> {
    let mut deployments = Vec::with_capacity(results.len());
    for (svc, r) in results {
        match r {
            Ok(d) => deployments.push(d),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                warn!(service = %svc.name, error = %e, outcome = "rejected", "decision");
                deployments.push(DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, e.to_string()));
            }
        }
    }
    Ok(Summary::of(deployments))
}
