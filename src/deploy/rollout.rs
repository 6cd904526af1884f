//! A rollout's effects: read the service, apply the [decision](super::decision), write the record
//! and the artifacts. Runs under the service's lease ([`super::holding`]).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tracing::{info, warn};

use super::decision::{decide, needs_person, Asked, Decision, ServiceState};
use super::{Deployer, Request, RunningRead};
use crate::aws::ecs::DescribedTaskDefinition;
use crate::base::{self, BaseChoice, Standing, Trust};
use crate::config::{Base, ServiceConfig, Strategy};
use crate::error::Error;
use crate::flows::lease::HeldLease;
use crate::freshness::{self, PushActedOn};
use crate::outcome::{DeploymentSummary, Outcome};
use crate::plan::{self, Action, ServicePlan};
use crate::record::{self, DeploymentRecord, Status, TriggerRef};
use crate::taskdef::{self, short_name};

impl Deployer {
    /// One shared DescribeServices read per cluster of `services`, started by whichever service's
    /// rollout polls it first: the task definition each service runs, by service.
    pub(super) fn running_task_definitions<'s>(
        &'s self,
        services: &[&'s ServiceConfig],
    ) -> HashMap<&'s str, RunningRead<'s>> {
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

    /// The service's last `imagedefinitions.json`, which a tag-based service plans from.
    pub(super) async fn previous_definitions(&self, svc: &ServiceConfig) -> Result<Option<Vec<u8>>, Error> {
        match svc.strategy {
            Strategy::ForceNewDeployment => Ok(self.records().image_definitions(&svc.cluster, &svc.service).await?),
            Strategy::PinDigest => Ok(None),
        }
    }

    /// Reads the service afresh: what it runs, its base, its last artifact, and (for a push,
    /// `push`) the pushes its records say it acted on.
    pub(super) async fn read_state(&self, svc: &ServiceConfig, push: bool) -> Result<ServiceState, Error> {
        let previous = self.previous_definitions(svc);
        let current = async {
            let arn = self.ecs.current_task_definition(&svc.cluster, &svc.service).await?;
            let (td, base) = self.describe_state(svc, &arn).await?;
            Ok::<_, Error>((arn, td, base))
        };
        let (previous, current, history) = tokio::join!(previous, current, self.history(svc));
        let history = history?;
        let (current_arn, current, choice) = current?;
        Ok(ServiceState {
            current,
            current_arn,
            previous_definitions: previous?,
            base: choice.base,
            passed_over: choice.passed_over,
            pushes: pushes_of(svc, &history, push),
            history,
        })
    }

    /// The service's most recently written records: which digests pushdeploy rolled back
    /// ([`crate::rolled_back`]) and, for a push, which pushes it acted on ([`crate::freshness`]).
    /// Bounded, read alongside the service.
    pub(super) async fn history(&self, svc: &ServiceConfig) -> Result<Vec<DeploymentRecord>, Error> {
        Ok(self.records().recent(&svc.cluster, &svc.service, crate::rolled_back::HISTORY_SCANNED).await?)
    }
}

/// For a push (`push`): the pushes of the service's repository its records (`history`) say it
/// acted on, which order a late event ([`crate::freshness`]). Nothing otherwise: only a push can
/// be superseded.
pub(super) fn pushes_of(svc: &ServiceConfig, history: &[DeploymentRecord], push: bool) -> Vec<PushActedOn> {
    if push {
        freshness::pushes_acted_on(history, &svc.repository)
    } else {
        Vec::new()
    }
}

impl Deployer {
    /// Whose revisions `svc` may copy, and which are pushdeploy's own.
    pub(super) fn trust<'a>(&'a self, svc: &'a ServiceConfig) -> Trust<'a> {
        Trust { registrants: &svc.trusted_registrants, own_roles: &self.own_roles }
    }

    /// The revision the service runs and, with `base = "family"`, the revision to copy (the
    /// family's newest from a trusted registrant) when the service does not run it (or a copy of
    /// it) yet, with the newer revisions passed over; both read at once.
    pub(super) async fn describe_state(
        &self,
        svc: &ServiceConfig,
        current_arn: &str,
    ) -> Result<(DescribedTaskDefinition, BaseChoice), Error> {
        let family = short_name(current_arn).rsplit_once(':').map_or(short_name(current_arn), |(f, _)| f);
        let trust = self.trust(svc);
        // Boxed: its SDK futures would otherwise widen every future that reads a service's state,
        // and each caller's frame with it (a debug build's test thread has 2 MiB of stack).
        let choice = Box::pin(async {
            match svc.base {
                Base::Family => {
                    let trusted = |d: &DescribedTaskDefinition| base::standing(d, trust) == Standing::Trusted;
                    let newest = self.ecs.newest_revisions(family, trusted).await?;
                    Ok::<_, Error>(base::choose_base(newest, trust))
                }
                Base::Service => Ok(BaseChoice::default()),
            }
        });
        let (current, choice) = tokio::join!(self.ecs.describe_task_definition(current_arn), choice);
        let current = current?;
        let choice = base::against_running(choice?, current_arn, plan::base_of(&current.tags));
        Ok((current, choice))
    }

    /// [`Deployer::rollout`] on the heap, built in a frame that returns at once (see
    /// [`Deployer::under_lease_boxed`]).
    pub(super) fn rollout_boxed<'a>(
        &'a self,
        svc: &'a ServiceConfig,
        state: ServiceState,
        req: Request<'a>,
        lease: Option<&'a mut HeldLease>,
    ) -> BoxFuture<'a, Result<DeploymentSummary, Error>> {
        Box::pin(self.rollout(svc, state, req, lease))
    }

    /// Decides and carries out one service's rollout; `lease` is ours when the action changes things.
    pub(super) async fn rollout(
        &self,
        svc: &ServiceConfig,
        state: ServiceState,
        req: Request<'_>,
        lease: Option<&mut HeldLease>,
    ) -> Result<DeploymentSummary, Error> {
        // ECR's push time, for the copy's display tag only: it orders nothing.
        let event_pushed_at = req.pushed_at.as_deref().and_then(record::epoch_seconds).map(|s| s as i64);
        let asked = Asked {
            image: req.image,
            // Only a push can be superseded: a manual deploy names its tag on purpose.
            event_time: req.event_time.as_deref().and_then(freshness::whole_seconds).filter(|_| req.is_push()),
            force: req.force,
            dry_run: req.dry_run,
            operator: matches!(req.trigger, TriggerRef::Manual { .. }),
            allow_rolled_back: req.allow_rolled_back,
        };
        let log = |outcome: &str, reason: &str| {
            info!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome, reason, "decision");
        };
        log_base_choice(svc, &req, &state);
        let decision = decide(svc, asked, &state);
        let attention = needs_person(&decision, asked);
        let plan = match decision {
            Decision::Superseded(reason) => {
                log("superseded", &reason);
                let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Superseded, reason);
                d.image = req.image.pinned_uri();
                return Ok(d);
            }
            Decision::Rejected(reason) => {
                warn!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "rejected", reason = %reason, "decision");
                let mut summary = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason);
                // No push of this service deploys until a person fixes the config or the task
                // definition: the topic and the ActionNeeded metric say so. A `plan` only asked.
                summary.needs_attention = attention;
                return Ok(summary);
            }
            Decision::Refused(plan, reason) => {
                let mut summary = self.summary_of(svc, &plan, &state);
                summary.outcome = Outcome::Rejected;
                summary.reason = format!("{reason}; nothing was changed");
                warn!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "rejected", reason = %summary.reason, "decision");
                summary.needs_attention = attention;
                return Ok(summary);
            }
            Decision::Held(plan, reason) => {
                let mut summary = self.summary_of(svc, &plan, &state);
                summary.outcome = Outcome::Rejected;
                summary.reason = with_base_note(reason, &state);
                log_held(svc, &req, &summary.reason);
                // An operator must look at the changes and deploy them: the topic says so.
                summary.needs_attention = attention;
                return Ok(summary);
            }
            Decision::Planned(plan, reason) => {
                log("planned", &reason);
                let mut summary = self.summary_of(svc, &plan, &state);
                summary.reason = with_base_note(reason, &state);
                // A plan reads how ECS will roll it out; a failed read only leaves that out.
                match self.ecs.rollout(&svc.cluster, &svc.service).await {
                    Ok(rollout) => summary.ecs_rollout = Some(plan::rollout_note(svc, &rollout, self.verify_in_vpc)),
                    Err(err) => {
                        warn!(service = %svc.name, error = %err, "could not read the service's deployment strategy")
                    }
                }
                return Ok(summary);
            }
            Decision::Unchanged(plan) => {
                log("unchanged", "");
                let mut summary = self.summary_of(svc, &plan, &state);
                summary.outcome = Outcome::Unchanged;
                summary.reason = with_base_note(format!("already runs {}", plan.image_uri), &state);
                summary.task_definition = Some(state.current_arn);
                return Ok(summary);
            }
            Decision::Change(plan) => plan,
        };
        let mut summary = self.summary_of(svc, &plan, &state);
        let (changed, artifacts, captured) = tokio::join!(
            self.change(svc, &plan, &state, &req, event_pushed_at, lease),
            // A pinned service plans from its task definition, never from the artifacts, so they
            // are written alongside Register and UpdateService (CodePipeline, too, writes them
            // before it deploys; should the rollout fail, its retry deploys the same digest). A
            // tag-based service plans from them, so they follow the rollout.
            async {
                match &plan.action {
                    Action::Register(_) => self
                        .records()
                        .put_artifacts(&svc.cluster, &svc.service, &plan.containers, &plan.image_uri)
                        .await
                        .ok(),
                    _ => None,
                }
            },
            // What the service runs now, digest by digest, for a rollback to pin to: off the
            // critical path, beside the change (ECS keeps it in the revision, so UpdateService
            // cannot race it).
            async {
                match &plan.action {
                    Action::Register(_) => self
                        .ecs
                        .revision_digests(&svc.cluster, &svc.service, &state.current_arn)
                        .await
                        .unwrap_or_else(|e| {
                            warn!(service = %svc.name, error = %e, "could not read the digests the service runs; a rollback to a tag-based revision will be refused");
                            None
                        }),
                    _ => None,
                }
            }
        );
        let (mut record, lease) = changed?;
        record.previous_digests = captured;
        let written = match lease {
            Some(held) => self.write_and_release(&record, artifacts, held).await,
            None => self.write_remaining(&record, artifacts).await,
        }?;
        info!(
            service = %svc.name,
            image = %plan.image_uri,
            event_id = %req.trigger.id(),
            deployment_id = %record.id,
            ecs_deployment_id = %record.ecs_deployment_id,
            task_definition = %short_name(&record.task_definition),
            outcome = "started",
            "decision"
        );
        crate::emf::record(&svc.name, &[crate::emf::Observation::Count("Deployments")]);
        summary.outcome = Outcome::Started;
        let mut reason = format!(
            "{} → {} ({})",
            short_name(&state.current_arn),
            short_name(&record.task_definition),
            plan.action.name()
        );
        if let Some(found) = forced_past(&req, &state) {
            reason.push_str(&format!("; {}", crate::rolled_back::forced_note(&found)));
            warn!(service = %svc.name, image = %plan.image_uri, event_id = %req.trigger.id(), deployment_id = %record.id, rolled_back = %found.deployment, "force: deploying a digest pushdeploy rolled back");
        }
        summary.reason = with_base_note(reason, &state);
        summary.task_definition = Some(record.task_definition);
        summary.ecs_deployment_id = Some(record.ecs_deployment_id);
        summary.written = written;
        Ok(summary)
    }

    /// The answer's description of a plan against what runs.
    fn summary_of(&self, svc: &ServiceConfig, plan: &ServicePlan, state: &ServiceState) -> DeploymentSummary {
        let mut summary = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Planned, "");
        summary.image = Some(plan.image_uri.clone());
        summary.action = Some(plan.action.name());
        summary.changes = plan.changes.clone();
        summary.previous_task_definition = Some(state.current_arn.clone());
        if let Action::Register(copy) = &plan.action {
            summary.base = Some(source_of(state).0);
            summary.diff = taskdef::differences(&state.current.task_definition, copy);
        }
        summary.base_changes = plan.base_changes.clone();
        summary.passed_over = state.passed_over.clone();
        summary
    }

    /// Registers the copy (if any) and updates the service; returns the record of the rollout
    /// ECS took (with its id) and the lease, still held.
    async fn change<'l>(
        &self,
        svc: &ServiceConfig,
        plan: &ServicePlan,
        state: &ServiceState,
        req: &Request<'_>,
        event_pushed_at: Option<i64>,
        mut lease: Option<&'l mut HeldLease>,
    ) -> Result<(DeploymentRecord, Option<&'l mut HeldLease>), Error> {
        let task_definition = match &plan.action {
            Action::Register(td) => {
                let (source_arn, source_tags) = source_of(state);
                let tags = plan::tags_for_copy(source_tags, event_pushed_at, &source_arn);
                self.ecs.register_task_definition(td, &tags).await?
            }
            _ => state.current_arn.clone(),
        };
        let mut record =
            self.new_record(svc, req, &plan.image_uri, &plan.containers, &state.current_arn, &task_definition);
        if svc.base == Base::Family {
            record.base = Some(source_of(state).0);
            record.base_changes = plan.base_changes.clone();
            record.passed_over = state.passed_over.clone();
        }
        if let Some(held) = lease.as_deref_mut() {
            // A crash taker tells a rollout happened by the service moving to a new revision with
            // the pending image. Where that cannot tell (no lease pending yet: a manual action;
            // or no new revision: force-new-deployment), it needs the revision first.
            let known = held.lease.pending.as_ref().is_some_and(|p| task_definition != p.previous_task_definition);
            if !known {
                held.lease.pending = Some(record.clone());
                held.etag = self.leases().rewrite(&held.key, &held.lease, &held.etag).await?;
            }
        }
        // Forced only where the revision stays the same; see [`EcsClient::update_service`].
        let force = matches!(plan.action, Action::ForceNewDeployment);
        let ecs_deployment_id = match self.ecs.update_service(&svc.cluster, &svc.service, &task_definition, force).await
        {
            Ok(id) => id,
            // ECS refused it: the copy just registered would stay behind unused, so take it back
            // (the retry registers its own). Where the answer was lost, ECS may have taken it,
            // and the lease's pending rollout tells the retry.
            Err(e) => {
                if matches!(plan.action, Action::Register(_)) && e.was_answered() {
                    if let Err(d) = self.ecs.deregister_task_definition(&task_definition).await {
                        warn!(service = %svc.name, task_definition = %short_name(&task_definition), error = %d, "could not deregister the unused copy");
                    }
                }
                return Err(e.into());
            }
        };
        record.id = record::record_id(&ecs_deployment_id)?;
        record.ecs_deployment_id = ecs_deployment_id;
        Ok((record, lease))
    }

    /// Writes the record (and the artifacts, unless `artifacts` says they are written), then
    /// releases the lease. Never both at once: a lease let go before the record is written could
    /// be taken by a concurrent push while the write fails, and the rollout would be lost to the
    /// retry (it finds the service running this image and answers `unchanged`). If the write
    /// fails, the lease is handed over carrying the complete record, so the next taker writes it.
    async fn write_and_release(
        &self,
        record: &DeploymentRecord,
        artifacts: Option<Vec<String>>,
        held: &mut HeldLease,
    ) -> Result<Vec<String>, Error> {
        let leases = self.leases();
        let written = self.write_remaining(record, artifacts).await;
        held.done = true;
        match &written {
            Ok(_) => {
                let released = held.lease.released(Some(record.task_definition.clone()));
                if let Err(e) = leases.rewrite(&held.key, &released, &held.etag).await {
                    // The record is written: a taker after expiry finds it and has nothing to finish.
                    warn!(service = %record.name, error = %e, "could not release the service lease; it expires by itself");
                }
            }
            Err(_) => {
                held.lease.pending = Some(record.clone());
                if let Err(e) = leases.rewrite(&held.key, &held.lease.handed_over(), &held.etag).await {
                    warn!(service = %record.name, error = %e, "could not put the unrecorded rollout back in the lease; it expires by itself, still carrying the rollout as it was taken");
                }
            }
        }
        written
    }

    /// Writes the record, and the artifacts unless `artifacts` holds the keys already written.
    async fn write_remaining(
        &self,
        record: &DeploymentRecord,
        artifacts: Option<Vec<String>>,
    ) -> Result<Vec<String>, Error> {
        Ok(match artifacts {
            Some(mut keys) => {
                keys.push(self.records().put(record).await?);
                keys
            }
            None => self.records().put_rollout(record).await?,
        })
    }

    /// The record of a rollout of `image_uri` from `previous` to `task_definition` (ECS's id is
    /// filled in once UpdateService answers).
    pub(super) fn new_record(
        &self,
        svc: &ServiceConfig,
        req: &Request<'_>,
        image_uri: &str,
        containers: &[String],
        previous: &str,
        task_definition: &str,
    ) -> DeploymentRecord {
        let mut timeline = Vec::new();
        if let Some(p) = &req.pushed_at {
            timeline.push(record::TimelineEntry { event: "pushed".into(), at: p.clone() });
        }
        timeline.push(record::TimelineEntry { event: "started".into(), at: record::now() });
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
            event_time: req.event_time.clone(),
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
            rolled_back_by: None,
            service_deployment_arn: None,
            hook_checks: Vec::new(),
            hook_tally: None,
            smoke_attempts: 0,
            base: None,
            base_changes: Vec::new(),
            passed_over: Vec::new(),
            restores: None,
            timeline,
        }
    }
}

/// Logs the base a `base = "family"` rollout copies and each newer revision it passes over. Kept
/// out of [`Deployer::rollout`]'s body: in a debug build every tracing call widens the frame of the
/// async function it is in, and a rollout's frames nest deep.
fn log_base_choice(svc: &ServiceConfig, req: &Request<'_>, state: &ServiceState) {
    for p in &state.passed_over {
        warn!(
            service = %svc.name,
            image = %req.image,
            event_id = %req.trigger.id(),
            task_definition = %p.task_definition,
            registered_by = p.registered_by.as_deref().unwrap_or("(none)"),
            reason = %p.reason,
            "passed over a newer revision of the family: not a base"
        );
    }
    if let Some(b) = &state.base {
        info!(
            service = %svc.name,
            image = %req.image,
            event_id = %req.trigger.id(),
            base = b.task_definition.task_definition_arn().unwrap_or_default(),
            registered_by = b.task_definition.registered_by().unwrap_or_default(),
            "base: the family's newest revision from a trusted registrant"
        );
    }
}

/// Logs a push held for an operator (`hold_base_changes`).
fn log_held(svc: &ServiceConfig, req: &Request<'_>, reason: &str) {
    warn!(service = %svc.name, image = %req.image, event_id = %req.trigger.id(), outcome = "rejected", reason, "decision");
}

/// `reason`, with the revisions passed over named ([`base::with_note`]).
fn with_base_note(reason: String, state: &ServiceState) -> String {
    let base = state.base.as_ref().and_then(|b| b.task_definition.task_definition_arn());
    base::with_note(reason, base, &state.current_arn, &state.passed_over)
}

/// The rollback an operator's `force` went past, if the rolled-out digest had one.
fn forced_past(req: &Request<'_>, state: &ServiceState) -> Option<crate::rolled_back::RolledBack> {
    let digest = req.image.digest.as_ref().filter(|_| req.allow_rolled_back)?;
    crate::rolled_back::find(&state.history, digest.as_str())
}

/// What a copy is made from (the base, or what runs) and that revision's tags.
fn source_of(state: &ServiceState) -> (String, &[aws_sdk_ecs::types::Tag]) {
    match &state.base {
        Some(b) => (b.task_definition.task_definition_arn().unwrap_or_default().to_string(), &b.tags),
        None => (state.current_arn.clone(), &state.current.tags),
    }
}
