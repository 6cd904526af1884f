//! What an automatic rollback came to, on the record: the one rollback ([`crate::flows::rollback`])
//! does the work; verify records, tells and answers its outcome.

use std::time::Instant;

use tracing::error;

use super::Verifier;
use crate::domain::error::Error;
use crate::domain::names::short_name;
use crate::domain::record::{self, DeploymentRecord, Status};
use crate::flows::rollback::{self, Rollback, Rolled};
use crate::inbound::EcsDeploymentEvent;
use crate::rules::outcome::{Outcome, Summary};

impl Verifier {
    /// Records a rollback that ECS already runs (its invocation died before recording it).
    pub(super) async fn finish_rollback(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        primary: Option<String>,
    ) -> Result<Summary, Error> {
        let to = self.rollback().finish_automatic(&mut rec, primary).await?;
        self.settle(&rec, e).await?;
        let reason = format!("rolled back to {}: {}", short_name(&to), rec.reason.as_deref().unwrap_or_default());
        Ok(self.answer(&rec, Outcome::RolledBack, reason, true))
    }

    /// The one rollback ([`crate::flows::rollback`]), and what it came to on the record.
    fn rollback(&self) -> Rollback<'_> {
        Rollback { ecs: &self.ecs, store: &self.store }
    }

    /// Returns the service to its last verified deployment ([`Rollback::automatic`]) and puts
    /// what that came to on the record.
    pub(super) async fn roll_back(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        why: String,
        deadline: Instant,
    ) -> Result<Summary, Error> {
        let (status, reason) = match self.rollback().automatic(&mut rec, deadline).await? {
            Rolled::Failed(cause) => return self.rollback_failed(rec, e, why, cause).await,
            Rolled::Done { to, rollback } => {
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
                return Ok(self.answer(&rec, Outcome::RolledBack, reason, true));
            }
            Rolled::NothingEarlier => (Status::Failed, format!(
                "{why}; no automatic rollback: strategy {} kept task definition {}, so there is no earlier revision to return to (push the previous image to the tag again)",
                rec.strategy,
                short_name(&rec.task_definition)
            )),
            Rolled::Replaced(running) => (Status::Failed, format!(
                "{why}; not rolled back: {} replaced {} before the rollback could start",
                short_name(&running),
                short_name(&rec.task_definition)
            )),
        };
        rec.status = status;
        rec.reason = Some(reason);
        rec.stamp("failed", record::now());
        self.settle(&rec, e).await?;
        Ok(self.answer(&rec, Outcome::Failed, rec.reason.clone().unwrap_or_default(), true))
    }

    /// Records, logs and notifies a rollback that could not be carried out, and fails the invocation.
    async fn rollback_failed(
        &self,
        mut rec: DeploymentRecord,
        e: &EcsDeploymentEvent,
        why: String,
        err: Error,
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
        // Classified by its cause, as a manual rollback's failure is: the invocation fails either way.
        Err(rollback::failed(err))
    }
}
