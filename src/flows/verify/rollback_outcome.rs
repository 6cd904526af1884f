//! What an automatic rollback came to, on the record: the one rollback ([`crate::flows::rollback`])
//! does the work, [`crate::rules::rollback_verdict`] decides what the record becomes, and verify
//! applies that verdict as it applies every other.

use std::time::Instant;

use tracing::error;

use super::Verifier;
use crate::domain::error::Error;
use crate::domain::record::{self, DeploymentRecord};
use crate::flows::rollback::{self, Rollback, Rolled};
use crate::flows::settle;
use crate::inbound::EcsDeploymentEvent;
use crate::rules::outcome::{Outcome, Summary};
use crate::rules::rollback_verdict::{after_rollback, RollbackCame};
use crate::rules::verdict::{Reply, Verdict};

impl Verifier {
    /// Records a rollback that ECS already runs (its invocation died before recording it).
    pub(super) async fn finish_rollback(
        &self,
        rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        primary: Option<String>,
    ) -> Result<Summary, Error> {
        let (to, rollback_id) = self.rollback().finish_automatic(&rec, primary).await?;
        let v = after_rollback(&rec, None, &RollbackCame::Done { to, rollback_id }, &record::now());
        self.apply_rollback_verdict(&v, e).await?;
        Ok(self.rollback_answer(&v))
    }

    /// The one rollback ([`crate::flows::rollback`]), over verify's clients.
    fn rollback(&self) -> Rollback<'_> {
        Rollback { ecs: &self.ecs, records: &self.records, leases: &self.leases }
    }

    /// Returns the service to its last verified deployment ([`Rollback::automatic`]), then puts
    /// what that came to on the record: describe (the rollback) → decide → apply.
    pub(super) async fn roll_back(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        why: String,
        deadline: Instant,
    ) -> Result<Summary, Error> {
        let rolled = self.rollback().automatic(&mut rec, deadline).await?;
        let came = match &rolled {
            Rolled::Done { to, rollback } => {
                RollbackCame::Done { to: to.clone(), rollback_id: Some(rollback.id.clone()) }
            }
            Rolled::NothingEarlier => RollbackCame::NothingEarlier,
            Rolled::Replaced(running) => RollbackCame::Replaced(running.clone()),
            Rolled::Failed(cause) => RollbackCame::Failed(cause.to_string()),
        };
        let v = after_rollback(&rec, Some(why), &came, &record::now());
        match rolled {
            Rolled::Done { rollback, .. } => {
                let records = self.records();
                let (a, b) = tokio::join!(records.put(&rollback), self.apply_rollback_verdict(&v, e));
                a?;
                b?;
            }
            Rolled::Failed(cause) => {
                let rec = &v.record;
                error!(service = %rec.name, deployment_id = %rec.id, image = %rec.image_uri, outcome = "rollback_failed", error = %cause, "decision");
                self.apply_rollback_verdict(&v, e).await?;
                // Classified by its cause, as a manual rollback's failure is: the invocation fails either way.
                return Err(rollback::failed(cause));
            }
            Rolled::NothingEarlier | Rolled::Replaced(_) => self.apply_rollback_verdict(&v, e).await?,
        }
        Ok(self.rollback_answer(&v))
    }

    async fn apply_rollback_verdict(&self, v: &Verdict, e: &EcsDeploymentEvent) -> Result<(), Error> {
        settle::apply(self.records(), self.notifier.as_ref(), v, &e.event_id).await
    }

    fn rollback_answer(&self, v: &Verdict) -> Summary {
        match &v.answer {
            Some(Reply::Event(said)) => self.answer(&v.record, said.outcome, said.reason.clone(), said.wrote),
            _ => Summary::only(Outcome::Failed, v.record.reason.clone().unwrap_or_default()),
        }
    }
}
