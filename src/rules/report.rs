//! The four DORA keys from the deployment records alone: deployment frequency, lead time, change
//! failure rate and time to recover. Pure: records and a window in, figures out. The definitions
//! are the book's (The operator's command, "The report's definitions"), and the tests below
//! compute them on histories with known answers.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::mode::WOULD_ROLL_BACK;
use crate::domain::record::{epoch_seconds, DeploymentRecord, Status, TriggerRef};

/// Seconds in a day.
const DAY: f64 = 86_400.0;

/// The window a report covers, in epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Start (inclusive).
    pub since: f64,
    /// End (inclusive).
    pub until: f64,
}

impl Window {
    /// Its length in days (at least a second's worth, so a rate is always defined).
    pub fn days(&self) -> f64 {
        ((self.until - self.since) / DAY).max(1.0 / DAY)
    }

    fn contains(&self, t: f64) -> bool {
        t >= self.since && t <= self.until
    }
}

/// DORA's band for a deployment frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// One or more a day.
    Elite,
    /// One a week or more.
    High,
    /// One a month or more.
    Medium,
    /// Less.
    Low,
}

impl Band {
    /// The band for `per_day` deployments a day.
    pub fn of(per_day: f64) -> Band {
        if per_day >= 1.0 {
            Band::Elite
        } else if per_day >= 1.0 / 7.0 {
            Band::High
        } else if per_day >= 1.0 / 30.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Its name, as `--json` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }
}

/// Median and 90th percentile of a distribution of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LeadTime {
    /// Median (the mean of the two middle values for an even count).
    pub median: Option<f64>,
    /// 90th percentile, nearest rank.
    pub p90: Option<f64>,
}

/// Median time to recover, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recovery {
    /// Median over the recovered failures.
    pub median: Option<f64>,
}

/// The four keys for one service, or for all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Keys {
    /// Deployments whose `started` falls in the window (rollbacks are not deployments).
    pub deployments: usize,
    /// Deployments ÷ days in the window.
    pub per_day: f64,
    /// `pushed_at` → `verified`, over verified push deployments.
    pub lead_time_seconds: LeadTime,
    /// Failed ÷ (failed + verified); `None` when none reached a verdict. A failure observe mode
    /// only observed counts: the change failed its checks while it served.
    pub change_failure_rate: Option<f64>,
    /// Of the failed, those observe mode only observed (not rolled back); left out when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub observed_failures: usize,
    /// First failure entry → recovered.
    pub recovery_seconds: Recovery,
    /// DORA's band for `per_day`.
    pub band: Band,
}

/// A report: the window, each service's keys (by the record's `name`) and everyone's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Start of the window, RFC 3339.
    pub since: String,
    /// End of the window, RFC 3339.
    pub until: String,
    /// Per service, by name.
    pub services: BTreeMap<String, Keys>,
    /// All services together.
    pub overall: Keys,
}

/// What one deployment contributes, worked out once.
struct Deployment<'a> {
    record: &'a DeploymentRecord,
    lead_time: Option<f64>,
    failed: bool,
    observed: bool,
    verdict: bool,
    recovery: Option<f64>,
}

/// True for a deployment: a push or a manual `deploy`/`redeploy`; a rollback is not one.
pub fn is_deployment(r: &DeploymentRecord) -> bool {
    match &r.trigger {
        TriggerRef::Push { .. } => true,
        TriggerRef::Manual { action, .. } => action == "deploy" || action == "redeploy",
        TriggerRef::AutoRollback { .. } => false,
    }
}

/// When `event` first happened on `r`, in epoch seconds.
fn at(r: &DeploymentRecord, event: &str) -> Option<f64> {
    r.timeline.iter().filter(|e| e.event == event).find_map(|e| epoch_seconds(&e.at))
}

/// Status of a deployment that failed in production.
fn is_failure(s: Status) -> bool {
    matches!(s, Status::Failed | Status::RolledBack | Status::RollbackFailed)
}

/// Computes the report over `records` (every record that could matter: the window's deployments,
/// their rollbacks and the deployments after them) for `window`.
pub fn report(records: &[DeploymentRecord], window: Window) -> Report {
    let by_id: BTreeMap<&str, &DeploymentRecord> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let deployments: Vec<Deployment<'_>> = records
        .iter()
        .filter(|r| is_deployment(r) && at(r, "started").is_some_and(|t| window.contains(t)))
        .map(|r| Deployment {
            record: r,
            lead_time: r.is_push().then(|| r.lead_time_seconds()).flatten(),
            failed: is_failure(r.status),
            observed: r.observed_failure(),
            verdict: is_failure(r.status) || r.status == Status::Verified,
            recovery: if is_failure(r.status) { recovery(r, records, &by_id) } else { None },
        })
        .collect();
    let mut services: BTreeMap<String, Keys> = BTreeMap::new();
    let mut names: Vec<&str> = deployments.iter().map(|d| d.record.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let own: Vec<&Deployment<'_>> = deployments.iter().filter(|d| d.record.name == name).collect();
        services.insert(name.to_string(), keys(&own, window));
    }
    Report {
        since: crate::domain::record::rfc3339(window.since),
        until: crate::domain::record::rfc3339(window.until),
        services,
        overall: keys(&deployments.iter().collect::<Vec<_>>(), window),
    }
}

fn keys(deployments: &[&Deployment<'_>], window: Window) -> Keys {
    let per_day = deployments.len() as f64 / window.days();
    let mut leads: Vec<f64> = deployments.iter().filter_map(|d| d.lead_time).collect();
    let mut recoveries: Vec<f64> = deployments.iter().filter_map(|d| d.recovery).collect();
    let verdicts = deployments.iter().filter(|d| d.verdict).count();
    let failed = deployments.iter().filter(|d| d.failed).count();
    Keys {
        deployments: deployments.len(),
        per_day,
        lead_time_seconds: LeadTime { median: median(&mut leads), p90: p90(&mut leads) },
        change_failure_rate: (verdicts > 0).then(|| failed as f64 / verdicts as f64),
        observed_failures: deployments.iter().filter(|d| d.observed).count(),
        recovery_seconds: Recovery { median: median(&mut recoveries) },
        band: Band::of(per_day),
    }
}

/// From a failed deployment's first failure entry to the earliest later of its rollback's
/// `ecs_completed` and the service's next `verified` deployment; `None` while unrecovered.
fn recovery(
    r: &DeploymentRecord,
    records: &[DeploymentRecord],
    by_id: &BTreeMap<&str, &DeploymentRecord>,
) -> Option<f64> {
    let failed_at = r
        .timeline
        .iter()
        .filter(|e| {
            matches!(e.event.as_str(), "smoke_failed" | "ecs_failed" | "failed" | "rollback_failed" | WOULD_ROLL_BACK)
        })
        .filter_map(|e| epoch_seconds(&e.at))
        .reduce(f64::min)?;
    let rolled_back = r
        .rollback_deployment
        .as_deref()
        .and_then(|id| by_id.get(id))
        .and_then(|rb| at(rb, "ecs_completed"))
        .filter(|t| *t >= failed_at);
    let next_verified = records
        .iter()
        .filter(|o| o.cluster == r.cluster && o.service == r.service && o.id != r.id && o.status == Status::Verified)
        .filter_map(|o| at(o, "verified"))
        .filter(|t| *t >= failed_at)
        .reduce(f64::min);
    let recovered = match (rolled_back, next_verified) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(recovered - failed_at)
}

/// The median, the mean of the two middle values for an even count.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The 90th percentile, nearest rank: the ⌈0.9·n⌉-th smallest.
pub fn p90(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (0.9 * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::TimelineEntry;

    const T0: f64 = 1_790_000_000.0; // 2026-09-21

    fn at_(secs: f64) -> String {
        crate::domain::record::rfc3339(T0 + secs)
    }

    /// A record of `name` deployed by `trigger`, with `status` and `(event, seconds after T0)` entries.
    fn rec(id: u32, name: &str, trigger: TriggerRef, status: Status, events: &[(&str, f64)]) -> DeploymentRecord {
        DeploymentRecord {
            id: format!("ecs-svc-{id}"),
            cluster: "c".into(),
            service: format!("svc-{name}"),
            name: name.into(),
            repository: "r".into(),
            tag: "latest".into(),
            digest: "sha256:aa".into(),
            image_uri: "r@sha256:aa".into(),
            strategy: "pin-digest".into(),
            pushed_at: events.iter().find(|(e, _)| *e == "pushed").map(|(_, t)| at_(*t)),
            event_time: None,
            trigger,
            previous_task_definition: "td:1".into(),
            task_definition: "td:2".into(),
            ecs_deployment_id: format!("ecs-svc/{id}"),
            status,
            containers: vec!["web".into()],
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
            requested: None,
            mode: crate::domain::mode::Mode::Enforce,
            timeline: events.iter().map(|(e, t)| TimelineEntry { event: (*e).into(), at: at_(*t) }).collect(),
        }
    }

    fn push() -> TriggerRef {
        TriggerRef::Push { event_id: "e".into() }
    }

    fn manual(action: &str) -> TriggerRef {
        TriggerRef::Manual { action: action.into(), request_id: "r".into() }
    }

    fn window(days: f64) -> Window {
        Window { since: T0, until: T0 + days * DAY }
    }

    #[test]
    fn no_deployments_gives_zero_and_nulls() {
        let r = report(&[], window(30.0));
        assert_eq!(r.overall.deployments, 0);
        assert_eq!(r.overall.per_day, 0.0);
        assert_eq!(r.overall.lead_time_seconds, LeadTime { median: None, p90: None });
        assert_eq!(r.overall.change_failure_rate, None);
        assert_eq!(r.overall.recovery_seconds.median, None);
        assert_eq!(r.overall.band, Band::Low);
        assert!(r.services.is_empty());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["overall"],
            serde_json::json!({"deployments": 0, "per_day": 0.0, "lead_time_seconds": {"median": null, "p90": null},
                "change_failure_rate": null, "recovery_seconds": {"median": null}, "band": "low"})
        );
        assert_eq!(json["since"], "2026-09-21T14:13:20Z");
    }

    #[test]
    fn only_rollbacks_in_the_window_are_not_deployments() {
        let records = [
            rec(1, "web", TriggerRef::AutoRollback { of: "x".into() }, Status::Completed, &[("started", 10.0)]),
            rec(2, "web", manual("rollback"), Status::Completed, &[("started", 20.0)]),
        ];
        let r = report(&records, window(1.0));
        assert_eq!(r.overall.deployments, 0);
        assert!(r.services.is_empty());
    }

    #[test]
    fn lead_time_median_odd_and_even_and_p90_nearest_rank() {
        // Verified pushes with lead times 100, 300, 200 s: odd count, median 200.
        let mut records: Vec<DeploymentRecord> = [100.0, 300.0, 200.0]
            .iter()
            .enumerate()
            .map(|(i, lead)| {
                let start = i as f64 * 1000.0;
                rec(
                    i as u32,
                    "web",
                    push(),
                    Status::Verified,
                    &[("pushed", start), ("started", start + 5.0), ("verified", start + lead)],
                )
            })
            .collect();
        let r = report(&records, window(7.0));
        assert_eq!(r.overall.lead_time_seconds, LeadTime { median: Some(200.0), p90: Some(300.0) });
        // A fourth, 400 s: even count, median (200 + 300) / 2.
        records.push(rec(
            9,
            "web",
            push(),
            Status::Verified,
            &[("pushed", 5000.0), ("started", 5001.0), ("verified", 5400.0)],
        ));
        let r = report(&records, window(7.0));
        assert_eq!(r.overall.lead_time_seconds.median, Some(250.0));
        assert_eq!(r.overall.lead_time_seconds.p90, Some(400.0), "⌈0.9·4⌉ = 4th");
        assert_eq!(r.overall.deployments, 4);
        assert!((r.overall.per_day - 4.0 / 7.0).abs() < 1e-9);
        assert_eq!(r.overall.band, Band::High);
        assert_eq!(r.overall.change_failure_rate, Some(0.0));
    }

    #[test]
    fn in_flight_deployments_count_as_deployments_but_reach_no_verdict() {
        let records = [
            rec(1, "web", push(), Status::Started, &[("pushed", 0.0), ("started", 1.0)]),
            rec(2, "web", manual("deploy"), Status::Completed, &[("started", 2.0), ("ecs_completed", 60.0)]),
            rec(3, "web", manual("redeploy"), Status::Verified, &[("started", 3.0), ("verified", 90.0)]),
        ];
        let r = report(&records, window(1.0));
        assert_eq!(r.overall.deployments, 3);
        assert_eq!(r.overall.band, Band::Elite);
        assert_eq!(r.overall.change_failure_rate, Some(0.0), "one verdict, verified");
        assert_eq!(r.overall.lead_time_seconds.median, None, "a manual redeploy has no push to measure from");
    }

    #[test]
    fn failures_rate_and_recovery_by_rollback_or_by_the_next_verified_deployment() {
        let mut rolled_back = rec(
            1,
            "api",
            push(),
            Status::RolledBack,
            &[
                ("pushed", 0.0),
                ("started", 10.0),
                ("ecs_completed", 100.0),
                ("smoke_failed", 200.0),
                ("rolled_back", 201.0),
            ],
        );
        rolled_back.rollback_deployment = Some("ecs-svc-2".into());
        let rollback = rec(
            2,
            "api",
            TriggerRef::AutoRollback { of: "ecs-svc-1".into() },
            Status::Completed,
            &[("started", 201.0), ("ecs_completed", 260.0)],
        );
        // A circuit breaker: ECS failed it, no rollback record; the next verified push recovers it.
        let breaker =
            rec(3, "api", push(), Status::Failed, &[("pushed", 1000.0), ("started", 1001.0), ("ecs_failed", 1100.0)]);
        let next =
            rec(4, "api", push(), Status::Verified, &[("pushed", 1200.0), ("started", 1201.0), ("verified", 1500.0)]);
        // Still broken, not recovered: left out of recovery, counted as a failure.
        let open = rec(
            5,
            "web",
            push(),
            Status::RollbackFailed,
            &[("pushed", 2000.0), ("started", 2001.0), ("smoke_failed", 2100.0), ("rollback_failed", 2101.0)],
        );
        let records = [rolled_back, rollback, breaker, next, open];
        let r = report(&records, window(30.0));
        assert_eq!(r.overall.deployments, 4, "the rollback is not a deployment");
        assert_eq!(r.overall.change_failure_rate, Some(3.0 / 4.0));
        // Recoveries: 260 − 200 = 60 (its rollback completed), 1500 − 1100 = 400 (next verified).
        assert_eq!(r.overall.recovery_seconds.median, Some(230.0));
        assert_eq!(r.services["api"].change_failure_rate, Some(2.0 / 3.0));
        assert_eq!(r.services["api"].recovery_seconds.median, Some(230.0));
        assert_eq!(r.services["web"].recovery_seconds.median, None);
        assert_eq!(r.services["web"].change_failure_rate, Some(1.0));
        assert_eq!(r.services["api"].lead_time_seconds.median, Some(300.0), "only the verified push");
    }

    #[test]
    fn a_manual_rollback_is_not_a_deployment_and_the_window_bounds_count() {
        let mut failed =
            rec(1, "web", push(), Status::Failed, &[("pushed", -100.0), ("started", -50.0), ("failed", -10.0)]);
        failed.rollback_deployment = None;
        let manual_rollback =
            rec(2, "web", manual("rollback"), Status::Completed, &[("started", 5.0), ("ecs_completed", 50.0)]);
        let later = rec(3, "web", push(), Status::Verified, &[("pushed", 60.0), ("started", 61.0), ("verified", 90.0)]);
        // Started before the window: not a deployment of this window.
        let r = report(&[failed.clone(), manual_rollback.clone(), later.clone()], window(1.0));
        assert_eq!(r.overall.deployments, 1);
        assert_eq!(r.overall.change_failure_rate, Some(0.0));
        // A window that holds the failure: the next verified deployment recovers it (100 s).
        let wide = Window { since: T0 - DAY, until: T0 + DAY };
        let r = report(&[failed, manual_rollback, later], wide);
        assert_eq!(r.overall.deployments, 2);
        assert_eq!(r.overall.recovery_seconds.median, Some(100.0));
        assert_eq!(Band::of(1.0 / 30.0), Band::Medium);
        assert_eq!(Band::of(0.03), Band::Low);
    }

    /// An observed failure counts in the change failure rate (the change failed its checks while
    /// it served; enforce mode would have counted it too), is shown apart as observed, and
    /// recovers only when a later deployment is verified: nothing rolled it back.
    #[test]
    fn an_observed_failure_counts_as_a_change_failure_recovered_by_the_next_verified_deployment() {
        let ok = rec(1, "api", push(), Status::Verified, &[("pushed", 0.0), ("started", 1.0), ("verified", 60.0)]);
        let mut observed = rec(
            2,
            "api",
            push(),
            Status::Failed,
            &[("pushed", 100.0), ("started", 101.0), ("ecs_completed", 150.0), ("would_roll_back", 200.0)],
        );
        observed.mode = crate::domain::mode::Mode::Observe;
        let fixed =
            rec(3, "api", push(), Status::Verified, &[("pushed", 900.0), ("started", 901.0), ("verified", 1100.0)]);
        let r = report(&[ok.clone(), observed, fixed], window(30.0));
        let api = &r.services["api"];
        assert_eq!((api.deployments, api.change_failure_rate, api.observed_failures), (3, Some(1.0 / 3.0), 1));
        assert_eq!(api.recovery_seconds.median, Some(900.0), "from would_roll_back to the next verified");
        let json = serde_json::to_value(report(&[ok], window(30.0))).unwrap();
        assert!(json["overall"].get("observed_failures").is_none(), "left out when there is none: {json}");
    }
}
