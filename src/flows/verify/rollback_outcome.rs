//! What an automatic rollback came to, on the record: the one rollback ([`crate::flows::rollback`])
//! does the work, [`crate::rules::rollback_verdict`] decides what the record becomes, and verify
//! applies that verdict as it applies every other.

use std::time::Instant;

use tracing::error;

use super::Verifier;
use crate::domain::error::Error;
use crate::domain::record::{self, DeploymentRecord};
use crate::flows::rollback::{self, Rollback, Rolled};
use crate::inbound::EcsDeploymentEvent;
use crate::rules::outcome::Summary;
use crate::rules::rollback_verdict::{after_rollback, RollbackCame};

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
        self.write_and_tell(&v, e).await?;
        Ok(self.reply(&v))
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
                let (a, b) = tokio::join!(records.put(&rollback), self.write_and_tell(&v, e));
                a?;
                b?;
            }
            Rolled::Failed(cause) => {
                let rec = &v.record;
                error!(service = %rec.name, deployment_id = %rec.id, image = %rec.image_uri, outcome = "rollback_failed", error = %cause, "decision");
                self.write_and_tell(&v, e).await?;
                // Classified by its cause, as a manual rollback's failure is: the invocation fails either way.
                return Err(rollback::failed(cause));
            }
            Rolled::NothingEarlier | Rolled::Replaced(_) => self.write_and_tell(&v, e).await?,
        }
        Ok(self.reply(&v))
    }
}
