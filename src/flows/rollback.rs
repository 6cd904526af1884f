//! One rollback for the operator's `rollback` ([`crate::flows::deploy`]) and verify's automatic one:
//! the same lease taken the same way ([`crate::flows::lease`]), the same target rule and pinned
//! copy ([`crate::rules::rollback`]), the same UpdateService, and the same failure class
//! ([`failed`]).

use std::time::Instant;

use tracing::{info, warn};

use crate::aws::ecs::EcsClient;

use crate::aws::leases::LeaseStore;
use crate::aws::records::RecordStore;

use crate::domain::ecs_view::RanRevision;
use crate::domain::error::{AwsError, Error, Failure};
use crate::domain::image::ImageRef;
use crate::domain::lease::{self, Found, Lease};
use crate::domain::record::{self, DeploymentRecord, RollbackOf, TriggerRef};
use crate::domain::timing::{self, Deadline};
use crate::flows::lease::{still_busy, LeaseTaken, ServiceLeases};
use crate::flows::recovery::Adopted;
use crate::rules::rollback::{choose_target, NotPrepared, Prepared};
use crate::rules::taskdef::{self, short_name};

/// How many of a service's most recently written records a rollback (either) reads.
pub const RECORDS_SCANNED: usize = 50;

/// The one failure class of a rollback that could not be carried out: that of its cause. A
/// rollback AWS throttled or timed out heals on a retry (`Transient.*`); one refused for lack of
/// permission, for a vanished revision or for no safe target does not, however often it is
/// retried, and needs a person (`Permanent.*`).
pub fn failed(cause: Error) -> Error {
    match cause {
        Error::RollbackFailed(_) => cause,
        cause => Error::RollbackFailed(Box::new(cause)),
    }
}

/// A rollback with no safe target (`Permanent.RollbackRefused`).
fn refused(target: String, detail: String, hint: &'static str) -> Error {
    Error::RollbackRefused(Failure { action: "roll back", target, detail, hint })
}

/// What an automatic rollback came to, for verify to put on the deployment's record.
#[derive(Debug)]
pub enum Rolled {
    /// The strategy kept the failed deployment's task definition: nothing earlier to return to.
    NothingEarlier,
    /// Another rollout replaced the failed revision first (the service runs this one).
    Replaced(String),
    /// ECS rolls back to `to`; `rollback` is the record of its deployment (not yet written).
    Done {
        /// The revision rolled back to.
        to: String,
        /// The record of the rollback's own ECS deployment.
        rollback: Box<DeploymentRecord>,
    },
    /// It could not be carried out: the cause (see [`failed`]).
    Failed(Error),
}

/// What a rollback came to while it held the service's lease.
enum Held {
    /// Another rollout replaced the failed revision first: nothing to roll back.
    Replaced(String),
    /// No safe target (a tag-based revision whose digests are unknown) or it could not be read.
    NoTarget(Error),
    /// UpdateService to this target (restoring this verified deployment, if one), and ECS's answer.
    Updated(String, Option<String>, Result<String, AwsError>),
}

/// The AWS a rollback reads and changes.
#[derive(Clone, Copy)]
pub struct Rollback<'a> {
    /// ECS client.
    pub ecs: &'a EcsClient,
    /// The deployment records.
    pub records: &'a RecordStore,
    /// The service leases.
    pub leases: &'a LeaseStore,
}

impl<'a> Rollback<'a> {
    /// The deployment records in the bucket.
    pub fn records(&self) -> &'a RecordStore {
        self.records
    }

    /// The service's lease, as every flow takes it.
    pub fn leases(&self) -> ServiceLeases<'a> {
        ServiceLeases { leases: self.leases, records: self.records, ecs: self.ecs }
    }

    /// What a rollback chooses from: the service's recent records and ECS's history of what it ran.
    pub async fn history(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<(Vec<DeploymentRecord>, Vec<RanRevision>), Error> {
        let records = self.records();
        let (recent, ran) =
            tokio::join!(records.recent(cluster, service, RECORDS_SCANNED), self.ecs.ran_revisions(cluster, service));
        Ok((recent?, ran?))
    }

    /// `ran` with what `replaced` ran, which ECS's history may not hold (deployed before it kept
    /// service revisions): its tasks, running or just replaced, show it.
    pub async fn with_replaced(
        &self,
        cluster: &str,
        service: &str,
        ran: Vec<RanRevision>,
        replaced: &str,
    ) -> Result<Vec<RanRevision>, Error> {
        Ok(self.ecs.with_tasks_of(cluster, service, ran, replaced).await?)
    }

    /// The revision to run for `target`. A target naming images by tag gets a copy pinned to the
    /// digests it ran (for the `containers` pushdeploy deploys); `earlier`, a copy a previous
    /// attempt registered, is reused only if it is that very copy, so a retry converges on one
    /// revision.
    pub async fn prepare(
        &self,
        target: &RanRevision,
        containers: &[String],
        earlier: Option<&str>,
    ) -> Result<Prepared, NotPrepared> {
        let ecs = self.ecs;
        let described = ecs.describe_task_definition(&target.task_definition).await.map_err(NotPrepared::Aws)?;
        let pinned = taskdef::pin_to_digests(&described.task_definition, &target.digests, containers)
            .map_err(NotPrepared::Unsafe)?;
        let Some((copy, changes)) = pinned else {
            return Ok(Prepared { task_definition: target.task_definition.clone(), pinned: Vec::new() });
        };
        let pinned: Vec<String> = changes.iter().map(|c| c.to.clone()).collect();
        if let Some(earlier) = earlier.filter(|e| *e != target.task_definition) {
            match ecs.describe_task_definition(earlier).await {
                Ok(found) if taskdef::same_definition(&found.task_definition, &copy) => {
                    return Ok(Prepared { task_definition: earlier.to_string(), pinned })
                }
                _ => warn!(
                    task_definition = %short_name(earlier),
                    "an earlier rollback attempt's revision is not the pinned copy of the target: not reused"
                ),
            }
        }
        let tags = crate::rules::plan::tags_for_pinned_copy(&described.tags, &target.task_definition);
        let arn = ecs.register_task_definition(&copy, &tags).await.map_err(NotPrepared::Aws)?;
        info!(
            task_definition = %short_name(&arn),
            source = %short_name(&target.task_definition),
            pinned = ?pinned,
            "rollback target pinned to the digests the service ran"
        );
        Ok(Prepared { task_definition: arn, pinned })
    }

    /// Verify's automatic rollback of `rec`: takes the service's lease (waiting for a live holder
    /// until `until`), finishes a dead holder's rollout, returns the service to the target and
    /// lets go. It holds the lease for at most [`timing::ROLLBACK_HOLD`], which lapses just after.
    pub async fn automatic(&self, rec: &mut DeploymentRecord, until: Instant) -> Result<Rolled, Error> {
        let to = rec.previous_task_definition.clone();
        if to == rec.task_definition {
            return Ok(Rolled::NothingEarlier);
        }
        let key = lease::lease_key(&rec.cluster, &rec.service);
        let hold = Deadline::after(timing::ROLLBACK_HOLD);
        let mine = Lease::new(format!("rollback of {}", rec.id), None, to, hold.lease_expires_at_ms(), None);
        let leases = self.leases();
        let mut taken = match leases.take(&key, &mine, until).await {
            Err(err) if err.is_transient() => return Err(err),
            // Without the lease there is no safe rollback: as loud as a refused UpdateService.
            Err(err) => return Ok(Rolled::Failed(err)),
            Ok(taken) => taken,
        };
        let (replaced, stale) = match &mut taken {
            LeaseTaken::Busy(other) => return Err(waits_for(rec, other)),
            LeaseTaken::Held(held, stale) => (held.replaced.clone(), stale.take()),
        };
        let held = tokio::time::timeout_at(hold.at().into(), self.while_held(rec, &replaced, stale))
            .await
            .unwrap_or_else(|_| Err(held_too_long(rec)));
        let left_on = match &held {
            Ok(Held::Replaced(td)) | Ok(Held::Updated(td, _, Ok(_))) => Some(td.clone()),
            _ => None,
        };
        leases.let_go(&rec.name, &taken, held.as_ref().map(|_| left_on)).await;
        match held {
            Err(err) | Ok(Held::NoTarget(err)) if fails_rollback(&err) => Ok(Rolled::Failed(err)),
            Err(err) | Ok(Held::NoTarget(err)) => Err(err),
            Ok(Held::Replaced(running)) => Ok(Rolled::Replaced(running)),
            Ok(Held::Updated(to, restores, Ok(ecs_deployment_id))) => {
                let rollback = self.automatic_record(rec, &to, restores.as_deref(), &ecs_deployment_id).await?;
                Ok(Rolled::Done { to, rollback: Box::new(rollback) })
            }
            Ok(Held::Updated(_, _, Err(err))) => Ok(Rolled::Failed(err.into())),
        }
    }

    /// Under the lease: nothing to do when another rollout left the service elsewhere (released,
    /// or finished here for a dead holder); otherwise UpdateService to the target.
    async fn while_held(
        &self,
        rec: &mut DeploymentRecord,
        replaced: &Found,
        stale: Option<Box<Lease>>,
    ) -> Result<Held, Error> {
        let failed_revision = rec.task_definition.clone();
        // The failed revision no longer serves, and rolling back would undo that other rollout.
        if let Some(left_on) = replaced.left_on().filter(|td| *td != failed_revision) {
            return Ok(Held::Replaced(left_on.to_string()));
        }
        if let Some(stale) = stale {
            if let Adopted::Recorded { task_definition } = self.leases().adopt(*stale).await? {
                if task_definition != failed_revision {
                    return Ok(Held::Replaced(task_definition));
                }
            }
        }
        let (to, restores) = match self.automatic_target(rec).await {
            Ok(found) => found,
            Err(err) => return Ok(Held::NoTarget(err)),
        };
        let updated = self.ecs.update_service(&rec.cluster, &rec.service, &to, false).await;
        Ok(Held::Updated(to, restores, updated))
    }

    /// The revision an automatic rollback returns to, and the verified deployment it restores:
    /// chosen by the one rule ([`choose_target`]) from the service's records and ECS's own
    /// history, never from the record alone. The choice is noted on the record (`rolled_back_to`)
    /// before the service moves, so a retry after a crash recognises the rollback as its own; a
    /// retry reuses a pinned copy only if it is that very copy.
    async fn automatic_target(&self, rec: &mut DeploymentRecord) -> Result<(String, Option<String>), Error> {
        let target = format!("{}/{}", rec.cluster, rec.service);
        let (mut recent, ran) = self.history(&rec.cluster, &rec.service).await?;
        let ran = self.with_replaced(&rec.cluster, &rec.service, ran, &rec.previous_task_definition).await?;
        // The failed deployment as this invocation knows it, whatever the listing returned.
        recent.retain(|r| r.id != rec.id);
        recent.push(rec.clone());
        let chosen = choose_target(&recent, &rec.task_definition, &ran).map_err(|why| {
            refused(target.clone(), why, "the service's deployment history (`pushdeploy history`); deploy a known-good build by hand (`pushdeploy deploy <service> <tag>`)")
        })?;
        let restores = chosen.restores.map(|r| r.id.clone());
        let prepared = self.prepare(chosen.revision, &rec.containers, rec.rolled_back_to.as_deref()).await.map_err(
            |e| match e {
                NotPrepared::Aws(e) => e.into(),
                NotPrepared::Unsafe(why) => refused(target.clone(), why, "roll back by hand to a revision pinned to a digest (`deploy` an older tag); ECS's service revision of the target names no digest for it"),
            },
        )?;
        info!(service = %rec.name, deployment_id = %rec.id, task_definition = %short_name(&prepared.task_definition), reason = %chosen.why, "rollback target");
        if rec.rolled_back_to.as_deref() != Some(prepared.task_definition.as_str()) {
            rec.rolled_back_to = Some(prepared.task_definition.clone());
            self.records().put(rec).await?;
        }
        Ok((prepared.task_definition, restores))
    }

    /// A rollback ECS already runs, its invocation having died before recording it (its
    /// deployment `primary`): writes the rollback's own record if missing. Returns the revision
    /// rolled back to and the rollback's record id, for the failed deployment's verdict
    /// ([`crate::rules::rollback_verdict`]).
    pub async fn finish_automatic(
        &self,
        rec: &DeploymentRecord,
        primary: Option<String>,
    ) -> Result<(String, Option<String>), Error> {
        let to = rec.rolled_back_to.clone().unwrap_or_else(|| rec.previous_task_definition.clone());
        let Some(dep) = primary else { return Ok((to, None)) };
        if !self.records().exists(&rec.cluster, &rec.service, &dep).await? {
            let rollback = self.automatic_record(rec, &to, None, &dep).await?;
            self.records().put(&rollback).await?;
        }
        Ok((to, Some(record::record_id(&dep)?)))
    }

    /// The record of an automatic rollback's own ECS deployment, so its events are recognised and
    /// never smoke-tested.
    async fn automatic_record(
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
}

/// True when `err` means the rollback cannot be carried out (recorded and told), rather than a
/// hiccup the event's retry gets past before anything is recorded.
fn fails_rollback(err: &Error) -> bool {
    match err {
        Error::RollbackRefused(_) => true,
        Error::Aws(e) => !e.transient || e.is_access_denied(),
        _ => false,
    }
}

/// The live lease an automatic rollback waited for in vain: transient, the event is retried.
fn waits_for(rec: &DeploymentRecord, other: &Lease) -> Error {
    warn!(service = %rec.name, deployment_id = %rec.id, holder = %other.holder, "rollback waits for the service lease");
    let waiting =
        format!("holds the service (rolling out {}); the rollback of {} waits for it", other.image_uri, rec.id);
    let hint = "nothing: this event is retried; if that rollout replaces the failed revision, the retry records this deployment failed";
    still_busy(format!("{}/{}", rec.cluster, rec.service), other, waiting, hint)
}

/// The rollback's calls outlasted the time it may hold the service: transient, retried.
fn held_too_long(rec: &DeploymentRecord) -> Error {
    Error::Deadline(Failure {
        action: "hold the service lease",
        target: format!("{}/{}", rec.cluster, rec.service),
        detail: format!(
            "the rollback's calls took longer than the {:?} it may hold the service",
            timing::ROLLBACK_HOLD
        ),
        hint: "AWS latency or throttling; the retry rolls back",
    })
}
