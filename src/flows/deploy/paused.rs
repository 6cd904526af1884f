//! The operators' pauses (`pushdeploy pause`), part of describing what a push or a manual action
//! meets: read once per event before any lease is taken (one List of the pauses beside the
//! config; a GET only of a pause that holds a service asked about), turned into answers by
//! [`crate::rules::pause`]. A paused service is left exactly as it is: no lease, no ECS call.

use tracing::info;

use super::Deployer;
use crate::config::ServiceConfig;
use crate::domain::error::Error;
use crate::domain::pause::Pause;
use crate::rules::outcome::{DeploymentSummary, Summary};
use crate::rules::pause::{self, Asked};

impl Deployer {
    /// The pauses holding any of `services`; none when the config is no S3 object (a local run).
    pub(super) async fn read_pauses(&self, services: &[&ServiceConfig]) -> Result<Vec<Pause>, Error> {
        let Some(store) = &self.pauses else { return Ok(Vec::new()) };
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        Ok(store.holding(&names).await?)
    }

    /// The answer to `asked` of `svc` when a pause holds it, logged as the decision.
    pub(super) fn paused_answer(
        &self,
        pauses: &[Pause],
        svc: &ServiceConfig,
        asked: Asked<'_>,
    ) -> Option<DeploymentSummary> {
        let (outcome, reason) = pause::decide(pauses, &svc.name, asked)?;
        info!(service = %svc.name, outcome = outcome.as_str(), reason = %reason, "decision");
        Some(DeploymentSummary::new(&svc.name, svc.target(), outcome, reason))
    }

    /// Tells the topic which services skipped a push of `image` (people must know a push did not ship).
    pub(super) async fn tell_skipped(&self, image: &str, answered: &[DeploymentSummary]) {
        let (Some(n), Some(m)) = (&self.notifier, pause::skipped_message(image, answered)) else { return };
        n.send(&m).await;
    }
}

/// The answer to a push: the rolled-out services' answer (or the push's own, when it touched no
/// service) together with the paused services' answers.
pub(super) fn with_paused(rolled: Option<Summary>, paused: Vec<DeploymentSummary>) -> Summary {
    match rolled {
        None => Summary::of(paused),
        Some(s) if paused.is_empty() => s,
        Some(s) if s.deployments.is_empty() => {
            let mut all = Summary::of(paused);
            all.outcome = all.outcome.min(s.outcome);
            all.reason = format!("{}; {}", s.reason, all.reason);
            all
        }
        Some(s) => Summary::of(s.deployments.into_iter().chain(paused).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::outcome::Outcome;

    #[test]
    fn a_push_answers_for_its_paused_and_its_rolled_out_services_together() {
        let paused = || vec![DeploymentSummary::new("a", "c/a".into(), Outcome::Paused, "paused by x")];
        let started = DeploymentSummary::new("b", "c/b".into(), Outcome::Started, "rolling");
        assert_eq!(with_paused(None, paused()).outcome, Outcome::Paused);
        let both = with_paused(Some(Summary::of(vec![started.clone()])), paused());
        assert_eq!((both.outcome, both.deployments.len()), (Outcome::Started, 2));
        assert_eq!(both.reason, "b: rolling; a: paused by x");
        let refused = with_paused(Some(Summary::only(Outcome::Rejected, "foreign registry")), paused());
        // The answers' usual ranking: a paused service outranks the push's own refusal.
        assert_eq!(refused.outcome, Outcome::Paused);
        assert_eq!(refused.reason, "foreign registry; a: paused by x");
        let alone = Summary::of(vec![started]);
        assert_eq!(with_paused(Some(alone.clone()), Vec::new()), alone);
    }
}
