//! An event's smoke test: run once ECS confirms the rollout, through the target-health gate on
//! the group that serves the revision under test.

use std::time::Instant;

use tracing::{info, warn};

use super::Verifier;
use crate::config::SmokeConfig;
use crate::domain::ecs_view::ServiceNow;
use crate::domain::error::Error;
use crate::domain::record::DeploymentRecord;
use crate::rules::target_group::{self, Gate};
use crate::rules::verdict::SmokeSeen;
use crate::smoke::engine;

impl Verifier {
    /// Runs the smoke test on `rec` (saved first, counting the attempt) and describes its result.
    pub(super) async fn smoke_test(
        &self,
        rec: &DeploymentRecord,
        smoke: &SmokeConfig,
        now: &ServiceNow,
        deadline: Instant,
    ) -> Result<SmokeSeen, Error> {
        // Read when needed, not at cold start: an SSM failure then holds only this service's
        // verdict (retried, or told), and a rotated token is picked up (see secrets::CACHE_TTL).
        // Before the attempt is counted, and never for a rollback decided untested.
        let resolved = self.secrets.resolve(smoke).await?;
        self.save(rec).await?;
        let gated = self.gate(smoke, rec, now).await?;
        let report = engine::run(&gated, &self.http, Some(&self.elbv2), &resolved, &rec.id, deadline).await;
        Ok(SmokeSeen {
            passed: report.passed,
            reason: report.reason.clone(),
            rounds: report.rounds_run,
            duration_ms: report.duration_ms,
            report: serde_json::to_value(&report).expect("reports always serialize"),
        })
    }

    /// `smoke` with the target-health gate on the group that serves the revision under test: a
    /// blue/green service alternates its pair of groups between deployments, so the configured
    /// one may be the drained group ([`target_group::gate_for`]). Only such a pair costs a
    /// DescribeServiceRevisions.
    async fn gate(&self, smoke: &SmokeConfig, rec: &DeploymentRecord, now: &ServiceNow) -> Result<SmokeConfig, Error> {
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
}
