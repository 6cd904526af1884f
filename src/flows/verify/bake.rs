//! A rolling deployment's bake: once ECS completed it and the smoke test passed, the service's
//! target group is watched for `bake` on the load balancer's metrics, against the same length of
//! time before the deployment began ([`analysis::judge`]); a regression fails the smoke verdict,
//! so the deployment is rolled back as for a failed smoke test.
//!
//! The bake runs inside the invocation that judged the completion (the config refuses a bake that
//! cannot fit the verify function's timeout): no scheduler, no state between invocations, and a
//! retried invocation starts the bake again rather than trusting anything it left behind.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::info;

use super::Verifier;
use crate::config::AnalysisConfig;
use crate::domain::ecs_view::ServiceNow;
use crate::domain::error::Error;
use crate::domain::record::{epoch_seconds, DeploymentRecord};
use crate::domain::timing;
use crate::rules::alb_metrics::dimension_of;
use crate::rules::analysis::{self, Analysis, Call, Evidence, GroupFigures};
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
        let Target { group, before_group, lb } = match self.bake_target(rec, cfg, now).await? {
            Ok(target) => target,
            Err(why) => return fail(seen, why, Value::Null),
        };
        let bake_ms = cfg.bake_ms.unwrap_or_default();
        let began_s = rec.timeline.first().and_then(|e| epoch_seconds(&e.at)).map_or(0, |s| s as i64);
        let bake_s = i64::try_from(bake_ms / 1000).unwrap_or(i64::MAX);
        let before = self.metrics.window(&lb, std::slice::from_ref(&before_group), began_s - bake_s, began_s).await?;
        let baseline = before.into_iter().next().unwrap_or_default();
        info!(service = %rec.name, deployment_id = %rec.id, target_group = %group, bake_ms, "bake started");
        let watched = AnalysisConfig { window_ms: bake_ms, ..cfg.clone() };
        let planned = Instant::now() + Duration::from_millis(bake_ms);
        let until = planned.min(deadline - WRITE_MARGIN);
        let a = self.watch(&watched, &lb, &group, baseline, until).await?;
        let findings = serde_json::to_value(&a.findings).expect("serializes");
        match a.call {
            Call::Fail(why) => fail(seen, format!("{why} ({})", a.summary), findings),
            // A bake verify's deadline cut short judged less than `bake`: never a pass.
            _ if until < planned => fail(
                seen,
                format!("verify's deadline cut the bake short of {} s ({})", bake_ms / 1000, a.summary),
                findings,
            ),
            Call::Pass => {
                info!(service = %rec.name, deployment_id = %rec.id, summary = %a.summary, "bake passed");
                seen.report["bake"] = findings;
                Ok(())
            }
            Call::Wait(_) => fail(seen, format!("the bake ended undecided ({})", a.summary), findings),
        }
    }

    /// The group to bake on, the group the window before the deployment is read from, and their
    /// load balancer's dimension; or why there is none. A blue/green pair without a hook
    /// alternates: the new revision's group is ECS's word (`resolvedConfiguration`), and the
    /// window before is the other group's, which served the old revision.
    async fn bake_target(
        &self,
        rec: &DeploymentRecord,
        cfg: &AnalysisConfig,
        now: &ServiceNow,
    ) -> Result<Result<Target, String>, Error> {
        let first = now.load_balancers.first();
        let (group, before_group) =
            match (cfg.target_groups.first(), first) {
                (Some(g), _) => (g.clone(), g.clone()),
                (None, Some(lb)) if lb.alternate.is_some() => {
                    let pair = [lb.target_group.clone(), lb.alternate.clone().unwrap_or_default()];
                    let serving = self.ecs.serving_target_groups(&now.current_revisions, &rec.task_definition).await?;
                    match serving.unwrap_or_default().into_iter().find(|g| pair.contains(g)) {
                        Some(g) => {
                            let other = pair.iter().find(|p| **p != g).cloned().unwrap_or_else(|| g.clone());
                            (g, other)
                        }
                        None => {
                            return Ok(Err(
                                "ECS does not say which group of the service's pair serves the new revision".into(),
                            ))
                        }
                    }
                }
                (None, Some(lb)) => (lb.target_group.clone(), lb.target_group.clone()),
                (None, None) => return Ok(Err(
                    "the service has no target group to bake on (loadBalancers, or [service.analysis] target_groups)"
                        .into(),
                )),
            };
        let lb = match cfg.load_balancer.as_deref().and_then(dimension_of) {
            Some(lb) => lb,
            None => match self.elbv2.load_balancer_of(&group).await?.as_deref().and_then(dimension_of) {
                Some(lb) => lb,
                None => {
                    return Ok(Err(format!(
                        "target group {group} is attached to no load balancer: no metrics to bake on"
                    )))
                }
            },
        };
        Ok(Ok(Target { group, before_group, lb }))
    }

    /// Reads the group's metrics since the bake began until a failure shows or `until`, at most
    /// [`MAX_POLL`] apart; the last judgement.
    async fn watch(
        &self,
        cfg: &AnalysisConfig,
        lb: &str,
        group: &str,
        baseline: GroupFigures,
        until: Instant,
    ) -> Result<Analysis, Error> {
        let start_ms = timing::now_ms();
        let poll = Duration::from_millis((cfg.window_ms / 4).max(1_000)).min(MAX_POLL);
        let groups = [group.to_string()];
        loop {
            tokio::time::sleep(poll.min(until.saturating_duration_since(Instant::now()))).await;
            let now_ms = timing::now_ms();
            let read = self.metrics.window(lb, &groups, timing::epoch_s(start_ms), timing::epoch_s(now_ms)).await?;
            let left_ms = u64::try_from(until.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(0);
            let ev = Evidence {
                green: read.into_iter().next().unwrap_or_default(),
                baseline: baseline.clone(),
                elapsed_ms: now_ms.saturating_sub(start_ms),
                budget_left_ms: Some(left_ms),
            };
            let a = analysis::judge(cfg, &ev);
            if !matches!(a.call, Call::Wait(_)) || left_ms == 0 {
                return Ok(a);
            }
        }
    }
}

/// What a bake watches.
struct Target {
    /// The group serving the new revision.
    group: String,
    /// The group that served before the deployment (the same one for a rolling service).
    before_group: String,
    /// The load balancer's dimension (`app/…`).
    lb: String,
}

/// Marks the smoke verdict failed by the bake.
fn fail(seen: &mut SmokeSeen, why: String, findings: Value) -> Result<(), Error> {
    seen.passed = false;
    seen.reason = Some(format!("bake: {why}"));
    seen.report["bake"] = findings;
    Ok(())
}
