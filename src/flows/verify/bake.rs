//! A rolling deployment's bake: once ECS completed it and the smoke test passed, the service's
//! target group is watched for `bake` on the load balancer's metrics, against the same length of
//! time before the deployment began ([`analysis::judge`]); a regression fails the smoke verdict,
//! so the deployment is rolled back as for a failed smoke test.
//!
//! The bake runs inside the invocation that judged the completion (the config refuses a bake that
//! cannot fit the verify function's timeout): no scheduler, no state between invocations, and a
//! retried invocation starts the bake again rather than trusting anything it left behind.

use std::time::{Duration, Instant};

use serde_json::json;
use tracing::info;

use super::Verifier;
use crate::config::AnalysisConfig;
use crate::domain::ecs_view::ServiceNow;
use crate::domain::error::Error;
use crate::domain::record::{epoch_seconds, DeploymentRecord};
use crate::domain::timing;
use crate::rules::analysis::{self, Call, Evidence};
use crate::rules::canary::load_balancer_dimension;
use crate::rules::verdict::SmokeSeen;

/// Time kept back from the invocation's deadline for the verdict's writes.
const WRITE_MARGIN: Duration = Duration::from_secs(3);

/// The longest wait between two reads of the metrics during a bake.
const MAX_POLL: Duration = Duration::from_secs(60);

impl Verifier {
    /// Bakes `rec` (a rolling deployment whose smoke test passed, as `seen` says): `seen` fails
    /// when the bake finds a regression, and carries the bake's findings either way.
    pub(super) async fn bake(
        &self,
        rec: &DeploymentRecord,
        cfg: &AnalysisConfig,
        now: &ServiceNow,
        seen: &mut SmokeSeen,
        deadline: Instant,
    ) -> Result<(), Error> {
        let bake_ms = cfg.bake_ms.unwrap_or_default();
        let group = cfg.target_groups.first().cloned().or_else(|| now.load_balancers.first().map(|lb| lb.target_group.clone()));
        let Some(group) = group else {
            return Ok(fail(seen, "the service has no target group to bake on (loadBalancers, or [service.analysis] target_groups)".into(), json!(null)));
        };
        let lb = match cfg.load_balancer.as_deref().and_then(load_balancer_dimension) {
            Some(lb) => lb,
            None => match self.elbv2.load_balancer_of(&group).await?.as_deref().and_then(load_balancer_dimension) {
                Some(lb) => lb,
                None => return Ok(fail(seen, format!("target group {group} is attached to no load balancer: no metrics to bake on"), json!(null))),
            },
        };
        let began_s = rec.timeline.first().and_then(|e| epoch_seconds(&e.at)).map_or(0, |s| s as i64);
        let bake_s = i64::try_from(bake_ms / 1000).unwrap_or(i64::MAX);
        let before = self.metrics.window(&lb, std::slice::from_ref(&group), began_s - bake_s, began_s).await?;
        let baseline = before.into_iter().next().unwrap_or_default();
        let watched = AnalysisConfig { window_ms: bake_ms, ..cfg.clone() };
        let start_ms = timing::now_ms();
        let until = (Instant::now() + Duration::from_millis(bake_ms)).min(deadline - WRITE_MARGIN);
        let poll = Duration::from_millis((bake_ms / 4).max(1_000)).min(MAX_POLL);
        info!(service = %rec.name, deployment_id = %rec.id, target_group = %group, bake_ms, "bake started");
        loop {
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(poll.min(left)).await;
            let now_ms = timing::now_ms();
            let read = self.metrics.window(&lb, std::slice::from_ref(&group), secs(start_ms), secs(now_ms)).await?;
            let left_ms = u64::try_from(until.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(0);
            let ev = Evidence {
                green: read.into_iter().next().unwrap_or_default(),
                baseline: baseline.clone(),
                elapsed_ms: now_ms.saturating_sub(start_ms),
                budget_left_ms: Some(left_ms),
            };
            let a = analysis::judge(&watched, &ev);
            let findings = serde_json::to_value(&a.findings).expect("serializes");
            match a.call {
                Call::Fail(why) => return Ok(fail(seen, format!("{why} ({})", a.summary), findings)),
                Call::Pass => {
                    info!(service = %rec.name, deployment_id = %rec.id, summary = %a.summary, "bake passed");
                    seen.report["bake"] = findings;
                    return Ok(());
                }
                Call::Wait(_) if left_ms == 0 => {
                    // The judge applies the too-little-traffic policy once no budget is left; a
                    // wait here means the window could not be watched whole: say so, fail safe.
                    return Ok(fail(seen, format!("the bake could not be watched whole before verify's deadline ({})", a.summary), findings));
                }
                Call::Wait(_) => {}
            }
        }
    }
}

/// Marks the smoke verdict failed by the bake.
fn fail(seen: &mut SmokeSeen, why: String, findings: serde_json::Value) {
    seen.passed = false;
    seen.reason = Some(format!("bake: {why}"));
    seen.report["bake"] = findings;
}

/// Epoch seconds of epoch milliseconds.
fn secs(ms: u64) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}
