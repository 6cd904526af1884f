//! Where the operator's `rollback` goes, before anything moves: read what the service runs, its
//! records and ECS's own history of what it ran (describe), choose with the one rule
//! ([`choose_target`]) or, for `--to`, with [`choose_named`] (decide). `--dry-run` answers the
//! choice here and changes nothing; otherwise [`super::manual_rollback`] carries it out through
//! the one rollback (the same lease, pinning and failure class as every rollback).

use tracing::info;

use super::{Deployer, Invocation};
use crate::config::ServiceConfig;
use crate::domain::ecs_view::RanRevision;
use crate::domain::error::Error;
use crate::domain::names::short_name;
use crate::domain::record::DeploymentRecord;
use crate::domain::rollback_request::RollbackRequest;
use crate::inbound::RollbackTo;
use crate::rules::outcome::{DeploymentSummary, Outcome};
use crate::rules::rollback::{choose_target, newest, replaced_by};
use crate::rules::rollback_to::{
    candidates, choose_named, deployed_containers, identity_of, no_records, none_to_return_to, Asked, Candidate,
};

/// What the operator asked of `rollback`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RollbackAsk<'a> {
    /// `--to`: the revision or digest to return to.
    pub to: Option<&'a RollbackTo>,
    /// `--force`: past pushdeploy's rollback of the target's digest.
    pub force: bool,
    /// `--dry-run`: answer the choice, change nothing.
    pub dry_run: bool,
    /// Who asked, in the invoker's words.
    pub requested_by: Option<&'a str>,
}

/// The target chosen, not yet prepared.
pub(super) struct Picked {
    /// What the service runs now.
    pub current: String,
    /// The revision it returns to, as ECS's history holds it.
    pub revision: RanRevision,
    /// The record whose service identity the rollback's record shares.
    pub identity: DeploymentRecord,
    /// The verified deployment it restores, if any.
    pub restores: Option<DeploymentRecord>,
    /// One line for the record and the answer.
    pub why: String,
    /// The request, as the rollback's record keeps it.
    pub request: RollbackRequest,
}

/// Why the service does not move, and what ECS's history offers instead.
pub(super) struct Refusal {
    /// The reason, ending with what to do.
    pub why: String,
    /// The revisions the service ran, newest first (empty when beside the point).
    pub candidates: Vec<Candidate>,
}

impl Refusal {
    /// A refusal with no candidates to list.
    pub fn plain(why: String) -> Self {
        Self { why, candidates: Vec::new() }
    }
}

/// What the service's history holds for a rollback.
struct Read {
    current: String,
    recent: Vec<DeploymentRecord>,
    ran: Vec<RanRevision>,
    containers: Vec<String>,
}

impl Deployer {
    /// `rollback --dry-run`: the target it would choose and why, or why there is none and the
    /// candidates; no lease, nothing changed.
    pub(super) async fn plan_rollback(
        &self,
        svc: &ServiceConfig,
        ask: RollbackAsk<'_>,
        invocation: Invocation<'_>,
    ) -> Result<DeploymentSummary, Error> {
        match self.pick(svc, ask).await? {
            Ok(p) => {
                let reason = format!("would roll back to {} (dry run: nothing changed)", p.why);
                info!(service = %svc.name, event_id = %invocation.request_id, outcome = "planned", reason = %reason, "decision");
                let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Planned, reason);
                d.action = Some("rollback");
                d.previous_task_definition = Some(p.current);
                d.task_definition = Some(p.revision.task_definition);
                Ok(d)
            }
            Err(refusal) => Ok(refused(svc, invocation.request_id, refusal)),
        }
    }

    /// The target of the operator's rollback: the one `--to` names, when ECS's history shows the
    /// service ran it; otherwise the one rule's choice, when pushdeploy has a record of the service.
    pub(super) async fn pick(
        &self,
        svc: &ServiceConfig,
        ask: RollbackAsk<'_>,
    ) -> Result<Result<Picked, Refusal>, Error> {
        let read = self.read_for_rollback(svc, ask.to).await?;
        let listed = || candidates(&read.current, &read.ran, &read.containers, &read.recent);
        let mut request = RollbackRequest {
            to: ask.to.map(|t| t.as_str().to_string()),
            target_from: "ecs_history".into(),
            requested_by: ask.requested_by.map(str::to_string),
            forced: None,
        };
        if let Some(to) = ask.to {
            let asked = Asked { name: &svc.name, to, force: ask.force };
            let named = match choose_named(asked, &read.current, &read.ran, &read.containers, &read.recent) {
                Ok(named) => named,
                Err(why) => return Ok(Err(Refusal { why, candidates: listed() })),
            };
            request.forced = named.forced.clone();
            let mut why = named.why.clone();
            if let Some(forced) = &named.forced {
                why.push_str(&format!("; {forced}"));
            }
            let (revision, identity) = (named.revision.clone(), identity_of(svc, &read.containers));
            return Ok(Ok(Picked { current: read.current, revision, identity, restores: None, why, request }));
        }
        let found = match newest(&read.recent) {
            None => Err(no_records(&read.current)),
            Some(newest) => choose_target(&read.recent, &read.current, &read.ran).map(|t| (t, newest)),
        };
        let (target, newest) = match found {
            Ok(found) => found,
            Err(why) => {
                let candidates = listed();
                return Ok(Err(Refusal { why: none_to_return_to(&svc.name, &why, candidates.len()), candidates }));
            }
        };
        if target.restores.is_some() {
            request.target_from = "verified_record".into();
        }
        // The record shares the service's identity with the deployment it restores or, returning
        // to a revision pushdeploy never judged, the newest one.
        let identity = target.restores.unwrap_or(newest).clone();
        let (revision, restores, why) = (target.revision.clone(), target.restores.cloned(), target.why);
        Ok(Ok(Picked { current: read.current, revision, identity, restores, why, request }))
    }

    /// What the service runs (and the containers pushdeploy deploys in it), its recent records and
    /// ECS's history, with the tasks' word on the revision the running one replaced and, for a
    /// revision `to` names that the history does not hold, on that one.
    async fn read_for_rollback(&self, svc: &ServiceConfig, to: Option<&RollbackTo>) -> Result<Read, Error> {
        let rollback = self.rollback();
        let (current, read) = tokio::join!(
            self.ecs.current_task_definition(&svc.cluster, &svc.service),
            rollback.history(&svc.cluster, &svc.service)
        );
        let (current, (recent, ran)) = (current?, read?);
        let running = self.ecs.describe_task_definition(&current).await?;
        let containers = deployed_containers(&running.task_definition, svc);
        let replaced = replaced_by(&recent, &current);
        let mut ran = rollback.with_replaced(&svc.cluster, &svc.service, ran, &replaced).await?;
        if let Some(RollbackTo::Revision(named)) = to {
            // `family:N` as an ARN of the running revision's account and region.
            let arn = match named.starts_with("arn:") {
                true => named.clone(),
                false => format!("{}{named}", current.strip_suffix(short_name(&current)).unwrap_or_default()),
            };
            ran = rollback.with_replaced(&svc.cluster, &svc.service, ran, &arn).await?;
        }
        Ok(Read { current, recent, ran, containers })
    }
}

/// The answer to a rollback refused (or a dry run that would be), changing nothing.
pub(super) fn refused(svc: &ServiceConfig, request_id: &str, refusal: Refusal) -> DeploymentSummary {
    let reason = format!("rollback of {}: {}", svc.name, refusal.why);
    tracing::warn!(service = %svc.name, request_id, outcome = "rejected", reason = %reason, "decision");
    let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason);
    d.candidates = refusal.candidates;
    d
}
