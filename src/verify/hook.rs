//! verify as ECS's lifecycle hook (blue/green, linear, canary): one smoke round per invocation
//! through the stage's listener, the tally carried in `hookDetails`, the verdict on the record.
//! ECS rolls back on FAILED while blue still runs; pushdeploy never calls UpdateService here.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::Verifier;
use crate::aws::records::Found;
use crate::aws::records::RecordStore;
use crate::aws::sns::Notifier;
use crate::domain::names::short_name;
use crate::error::Error;
use crate::hook::{
    self, fmt_share, Carried, Decision, HookAnswer, HookIndex, HookInvocation, Listener, Step, StuckStep,
};
use crate::notify::{problem_message, Problem};
use crate::record::{self, DeploymentRecord, HookCheck, Status};
use crate::secrets;
use crate::smoke::engine;
use crate::timing;

/// How many of a service's newest records a hook looks through for the deployment it checks.
const RECORDS_LOOKED_AT: usize = 20;

impl Verifier {
    /// Answers one lifecycle hook invocation. A malformed payload answers FAILED (ECS then rolls
    /// back: the safe side); a transient AWS failure answers IN_PROGRESS (ECS calls again) and is
    /// counted against the stuck budget ([`stuck`]); a permanent one is recorded, told and
    /// returned as `Err` (ECS rolls back, Lambda counts it).
    pub async fn hook(&self, payload: &Value, deadline: Instant) -> Result<HookAnswer, Error> {
        let inv = match hook::parse(payload) {
            Ok(inv) => inv,
            Err(e) => {
                let reason = format!(
                    "malformed lifecycle hook payload: {}; answering FAILED, so ECS rolls the deployment back (the safe side)",
                    e.0
                );
                warn!(outcome = "rejected", reason = %reason, "decision");
                return Ok(HookAnswer::failed(reason));
            }
        };
        // Boxed: the smoke round, the probe and the record writes make a large future.
        match Box::pin(self.on_hook(payload, &inv, deadline)).await {
            Ok(answer) => Ok(answer),
            Err(err) if err.is_transient() => {
                warn!(execution_id = %inv.execution_id, stage = inv.stage.as_str(), error = %err, outcome = "in_progress", "decision");
                let (delay, budget) = self.stuck_settings(&inv);
                Ok(stuck(&self.records(), self.notifier.as_ref(), payload, &inv, delay, budget, &err.to_string()).await)
            }
            Err(err) => {
                self.report_hook_problem(&inv, &err).await;
                Err(err)
            }
        }
    }

    /// The call-back delay and the stuck budget the config gives the invocation's service.
    fn stuck_settings(&self, inv: &HookInvocation) -> (u64, Option<u64>) {
        let svc = self.config.by_ecs_service(&inv.cluster, &inv.service);
        let delay = svc.and_then(|s| s.smoke.as_ref()).map_or(hook::DEFAULT_CALLBACK_MS, |s| s.interval_ms);
        (delay, svc.and_then(|s| s.hook.as_ref()).map(|h| h.stuck_ms))
    }

    async fn on_hook(&self, payload: &Value, inv: &HookInvocation, deadline: Instant) -> Result<HookAnswer, Error> {
        let target = format!("{}/{}", inv.cluster, inv.service);
        let Some(svc) = self.config.by_ecs_service(&inv.cluster, &inv.service) else {
            return Ok(not_ours(inv, format!("{target} is not a service in pushdeploy's config")));
        };
        let (mut rec, index, indexed) = match self.record_of(inv).await? {
            Lookup::Record { rec, index, indexed } => (*rec, index, indexed),
            Lookup::NotOurs(why) => return Ok(not_ours(inv, why)),
            Lookup::Pending(why) => {
                // pushdeploy registered the revision but its record is not there yet (the moment
                // between UpdateService and the record's write): never let it through unchecked.
                // Counted against the stuck budget, once ECS confirms the invocation.
                let ecs = self.ecs.service_deployment(&inv.resource_arn).await?;
                if let Err(why) = crate::confirm::hook_stage(ecs.as_ref(), inv) {
                    return Ok(unconfirmed(inv, &target, why));
                }
                let (delay, budget) = self.stuck_settings(inv);
                return Ok(stuck(&self.records(), self.notifier.as_ref(), payload, inv, delay, budget, &why).await);
            }
        };
        // Anyone who may invoke verify can send a payload: ECS itself must be at the stage it
        // names, for this service and revision, before anything is checked or written.
        let ecs = self.ecs.service_deployment(&inv.resource_arn).await?;
        if let Err(why) = crate::confirm::hook_stage(ecs.as_ref(), inv) {
            return Ok(unconfirmed(inv, &rec.name, why));
        }
        if !indexed {
            self.write_index(inv, &rec, index, svc).await;
        }
        let ecs_rolling_back = ecs.as_ref().is_some_and(|sd| sd.status.starts_with("ROLLBACK_"));
        let (listener, smoke, budget) = match hook::decide(&rec, svc, inv, ecs_rolling_back) {
            Decision::Answer { answer, stamp } => {
                if let Some(event) = stamp {
                    self.mark(&mut rec, inv, &event).await?;
                }
                return Ok(self.answer_hook(&rec, inv, answer));
            }
            Decision::Check { listener, smoke, budget } => (listener, smoke, budget),
        };
        let now = timing::now_ms();
        // The tally lives on the record: hookDetails come back from whoever invoked, so they
        // only ever point at the record.
        let carried = match hook::tally_of(&rec, inv) {
            Some(c) => c,
            None => {
                let fresh = Carried {
                    check: inv.check_key(),
                    deployment: rec.id.clone(),
                    rounds: 0,
                    streak: 0,
                    started_ms: now,
                };
                rec.hook_tally = Some(fresh.clone());
                if !rec.has(&inv.timeline_event()) {
                    rec.stamp(&inv.timeline_event(), record::now());
                }
                rec.service_deployment_arn = Some(inv.resource_arn.clone());
                self.save(&rec).await?;
                fresh
            }
        };
        if let Err(why) = hook::before_round(&carried, &budget, now) {
            return self.check_done(rec, inv, listener, carried.rounds, Value::Null, Err(why)).await;
        }
        if Instant::now() + Duration::from_millis(smoke.invocation_ms()) > deadline {
            let why = "too little of this invocation left for a round; ECS calls again";
            return Ok(self.answer_hook(&rec, inv, HookAnswer::again(smoke.interval_ms, &carried, why)));
        }
        // A transient SSM failure answers IN_PROGRESS (ECS calls again); a permanent one fails the hook.
        let resolved = self.secrets.resolve(&smoke).await?;
        let round = engine::one_round(&smoke, &self.http, Some(&self.elbv2), &resolved, carried.rounds + 1).await;
        match hook::after_round(carried, &budget, round.passed) {
            Step::Again(c) => {
                rec.hook_tally = Some(c.clone());
                self.save(&rec).await?;
                let why = format!(
                    "round {} {} through the {} listener; {} of {} passing in a row so far",
                    c.rounds,
                    if round.passed { "passed" } else { "failed" },
                    listener.as_str(),
                    c.streak,
                    budget.consecutive
                );
                Ok(self.answer_hook(&rec, inv, HookAnswer::again(smoke.interval_ms, &c, why)))
            }
            Step::Failed(c) => {
                let why = engine::failure_reason(&smoke, &round, c.rounds);
                let report = with_sources(json!({ "last_round": round }), &smoke);
                self.check_done(rec, inv, listener, c.rounds, report, Err(why)).await
            }
            Step::Passed(c) => {
                let (probe, verdict) = engine::probe_after_pass(&smoke, &self.http, &resolved, &rec.id).await;
                let report = with_sources(json!({ "last_round": round, "read_after_write": probe }), &smoke);
                self.check_done(rec, inv, listener, c.rounds, report, verdict).await
            }
        }
    }

    /// The deployment a hook invocation is about, or why it is not (yet) pushdeploy's. Within a
    /// stage, `hookDetails` name the record: one GET. At a stage's first invocation (ECS passes no
    /// runtime `hookDetails` from one stage's hook to another's) the index object keyed by ECS's
    /// `resourceArn` names it: one GET, then the record's. Either is taken only when the record is
    /// tied to this very service deployment (ECS's own ARN decides, not the hint). Otherwise, the
    /// first time, the green revision's task definition leads to ECS's deployment of it and so to
    /// its record; failing that, the record tied to this service deployment, else the newest that
    /// registered that task definition; failing all, a revision carrying pushdeploy's own tags is
    /// one whose record is not written yet.
    async fn record_of(&self, inv: &HookInvocation) -> Result<Lookup, Error> {
        let target = format!("{}/{}", inv.cluster, inv.service);
        let tied = |rec: &DeploymentRecord| rec.service_deployment_arn.as_deref() == Some(inv.resource_arn.as_str());
        let found = |rec: DeploymentRecord, index: Option<HookIndex>, indexed: bool| {
            Ok(Lookup::Record { rec: Box::new(rec), index, indexed })
        };
        if let Some(ecs_id) = inv.tally().and_then(|c| record::ecs_deployment_id(&c.deployment)) {
            if let Ok(Found::Record(rec)) = self.records().get(&inv.cluster, &inv.service, &ecs_id).await {
                if tied(&rec) {
                    return found(*rec, None, true);
                }
            }
        }
        let index = match hook::index_key(inv) {
            Ok(key) => self.records().hook_index(&key).await?.filter(|i| i.service_deployment_arn == inv.resource_arn),
            Err(_) => None,
        };
        if let Some(ecs_id) = index.as_ref().and_then(|i| i.record.as_deref()).and_then(record::ecs_deployment_id) {
            if let Found::Record(rec) = self.records().get(&inv.cluster, &inv.service, &ecs_id).await? {
                if tied(&rec) {
                    return found(*rec, index, true);
                }
            }
        }
        let Some(task_definition) = self.ecs.revision_task_definition(&inv.target_revision).await? else {
            return Ok(Lookup::NotOurs(format!("ECS knows no service revision {}", inv.target_revision)));
        };
        // ECS's deployment of that task definition names the record: one DescribeServices, one GET.
        for ecs_id in self.ecs.deployments_of(&inv.cluster, &inv.service, &task_definition).await? {
            match self.records().get(&inv.cluster, &inv.service, &ecs_id).await? {
                Found::Record(rec) if rec.task_definition == task_definition => return found(*rec, index, false),
                _ => {}
            }
        }
        // Otherwise (ECS no longer lists it) the service's newest records.
        let recent = self.records().recent(&inv.cluster, &inv.service, RECORDS_LOOKED_AT).await?;
        let tied_at = recent.iter().position(tied);
        let by_revision = || recent.iter().position(|r| r.task_definition == task_definition);
        if let Some(i) = tied_at.or_else(by_revision) {
            return found(recent[i].clone(), index, false);
        }
        let why = format!("no pushdeploy deployment of {target} registered {}", short_name(&task_definition));
        // Anyone with ecs:TagResource can add the tag: a Terraform revision tagged so is held, not
        // let through, which is the safe side.
        if crate::aws::ecs::is_own(&self.ecs.describe_task_definition(&task_definition).await?) {
            return Ok(Lookup::Pending(format!(
                "{why} yet, but the revision carries pushdeploy's tags: its record is not written yet"
            )));
        }
        Ok(Lookup::NotOurs(why))
    }

    /// Writes the index object of this service deployment, naming `rec`, so that the first
    /// invocation of every later stage finds the record with one GET. Best effort: without it the
    /// next stage looks the record up as the first did.
    async fn write_index(
        &self,
        inv: &HookInvocation,
        rec: &DeploymentRecord,
        read: Option<HookIndex>,
        svc: &crate::config::ServiceConfig,
    ) {
        let Ok(key) = hook::index_key(inv) else { return };
        let mut index = read.unwrap_or_else(|| HookIndex::of(&inv.resource_arn));
        index.record = Some(rec.id.clone());
        index.stuck_budget_ms = svc.hook.as_ref().map(|h| h.stuck_ms);
        if let Err(e) = self.records().put_hook_index(&key, &index).await {
            warn!(key = %key, error = %e, "could not write the hook index: the next stage looks the record up again");
        }
    }

    /// Puts `event` on the timeline (once) and ties the record to ECS's service deployment.
    async fn mark(&self, rec: &mut DeploymentRecord, inv: &HookInvocation, event: &str) -> Result<(), Error> {
        let tied = rec.service_deployment_arn.as_deref() == Some(&inv.resource_arn);
        if rec.has(event) && tied {
            return Ok(());
        }
        if !rec.has(event) {
            rec.stamp(event, record::now());
        }
        rec.service_deployment_arn = Some(inv.resource_arn.clone());
        self.save(rec).await
    }

    /// Records a check's verdict: a pass goes on the record (the deployment's verdict waits for
    /// ECS); a failure also records the rollback ECS makes on FAILED, and tells.
    async fn check_done(
        &self,
        mut rec: DeploymentRecord,
        inv: &HookInvocation,
        listener: Listener,
        rounds: u32,
        smoke: Value,
        verdict: Result<(), String>,
    ) -> Result<HookAnswer, Error> {
        rec.hook_tally = None;
        let why = match verdict {
            Ok(()) => {
                rec.hook_checks.push(hook_check(inv, listener, rounds, smoke, None));
                rec.stamp(&format!("{}_passed", inv.timeline_event()), record::now());
                self.save(&rec).await?;
                let why = format!(
                    "{}: smoke test passed through the {} listener in {rounds} round(s)",
                    inv.check_key(),
                    listener.as_str()
                );
                return Ok(self.answer_hook(&rec, inv, HookAnswer::succeeded(why)));
            }
            Err(why) => why,
        };
        let share = inv.production_share();
        let touched = if share == 0.0 {
            "production never served it".to_string()
        } else {
            format!("{}% of production traffic reached it", fmt_share(share))
        };
        let reason = format!(
            "{} check failed through the {} listener: {why}; ECS rolls back to {}: {touched}",
            inv.check_key(),
            listener.as_str(),
            short_name(&rec.previous_task_definition)
        );
        rec.hook_checks.push(hook_check(inv, listener, rounds, smoke, Some(why)));
        rec.status = Status::RolledBack;
        rec.rolled_back_by = Some("ecs".into());
        rec.rolled_back_to = Some(rec.previous_task_definition.clone());
        rec.reason = Some(reason.clone());
        rec.service_deployment_arn = Some(inv.resource_arn.clone());
        rec.stamp(&format!("{}_failed", inv.timeline_event()), record::now());
        rec.stamp("rolled_back", record::now());
        self.settle_for(&rec, &inv.execution_id).await?;
        Ok(self.answer_hook(&rec, inv, HookAnswer::failed(reason)))
    }

    /// Logs the answer, one line per decision.
    fn answer_hook(&self, rec: &DeploymentRecord, inv: &HookInvocation, answer: HookAnswer) -> HookAnswer {
        info!(
            service = %rec.name,
            image = %rec.image_uri,
            event_id = %inv.execution_id,
            deployment_id = %rec.id,
            stage = inv.stage.as_str(),
            outcome = ?answer.hook_status,
            reason = answer.reason(),
            "decision"
        );
        answer
    }

    /// A permanent failure (AccessDenied, a vanished service) fails the invocation, so ECS rolls
    /// back; the record says why and the topic tells a person, once.
    async fn report_hook_problem(&self, inv: &HookInvocation, err: &Error) {
        error!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "error", error = %err, "decision");
        let name =
            self.config.by_ecs_service(&inv.cluster, &inv.service).map_or(inv.service.as_str(), |s| s.name.as_str());
        let reason = format!(
            "pushdeploy could not check {} of {}: {err}; the hook failed, so ECS rolls the deployment back",
            inv.stage.as_str(),
            inv.resource_arn
        );
        if let Ok(recent) = self.records().recent(&inv.cluster, &inv.service, RECORDS_LOOKED_AT).await {
            // The record tied to this service deployment; before the hook could tie one (the
            // revision could not be read), the newest push or deploy still in flight.
            let tied = recent.iter().position(|r| r.service_deployment_arn.as_deref() == Some(&inv.resource_arn));
            let in_flight = || recent.iter().position(|r| r.status == Status::Started && !r.is_rollback());
            if let Some(mut rec) = tied.or_else(in_flight).map(|i| recent[i].clone()).filter(|r| !r.is_settled()) {
                rec.status = Status::RolledBack;
                rec.rolled_back_by = Some("ecs".into());
                rec.rolled_back_to = Some(rec.previous_task_definition.clone());
                rec.reason = Some(reason.clone());
                rec.stamp("error", record::now());
                match self.save(&rec).await {
                    Ok(()) => crate::emf::record(&rec.name, &crate::emf::verdict(&rec)),
                    Err(w) => warn!(deployment_id = %rec.id, error = %w, "could not put the error on the record"),
                }
            }
        }
        let target = format!("{}/{}", inv.cluster, inv.service);
        let message = problem_message(&Problem {
            function: "verify",
            service: name,
            target: Some(&target),
            doing: &format!("check {}", inv.stage.as_str()),
            error: &err.to_string(),
            consequence: "the lifecycle hook failed, so ECS rolls the deployment back to the revision that served before; fix this, then push again",
        });
        self.publish(&message).await;
    }
}

/// A hook check's smoke report with the headers whose values came from SSM, as an event's
/// report lists them (`secret_headers`, left out when there are none): never a value.
fn with_sources(mut report: Value, smoke: &crate::config::SmokeConfig) -> Value {
    let sources = secrets::sources(smoke);
    if !sources.is_empty() {
        report["secret_headers"] = json!(sources);
    }
    report
}

/// The record of one check's verdict: passed unless it says why it failed.
fn hook_check(
    inv: &HookInvocation,
    listener: Listener,
    rounds: u32,
    smoke: Value,
    failed: Option<String>,
) -> HookCheck {
    HookCheck {
        check: inv.check_key(),
        listener: listener.as_str().into(),
        production_share: inv.production_share(),
        passed: failed.is_none(),
        reason: failed,
        rounds,
        smoke,
        at: record::now(),
    }
}

/// Not pushdeploy's deployment: go on, touch nothing, say so.
fn not_ours(inv: &HookInvocation, why: String) -> HookAnswer {
    let why = format!("{why}: not pushdeploy's deployment, so it is not checked");
    info!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "ignored", reason = %why, "decision");
    HookAnswer::succeeded(why)
}

/// How a hook invocation's deployment record was found.
enum Lookup {
    /// The record; the index object as read (if it was); whether the index already names it.
    Record {
        /// The record.
        rec: Box<DeploymentRecord>,
        /// The index object of the service deployment, when it was read.
        index: Option<HookIndex>,
        /// True when nothing needs writing to the index.
        indexed: bool,
    },
    /// Not pushdeploy's deployment: why.
    NotOurs(String),
    /// A revision pushdeploy registered whose record is not found yet: why.
    Pending(String),
}

/// An invocation ECS's state does not bear out: no round, no count, no write.
fn unconfirmed(inv: &HookInvocation, service: &str, why: String) -> HookAnswer {
    let why = format!("ECS does not confirm this invocation: {why}; nothing checked or recorded");
    warn!(service = %service, event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "unconfirmed", reason = %why, "decision");
    HookAnswer::in_progress_untouched(why)
}

/// Answers an invocation that cannot advance its check (`why`: a transient failure, an unreadable
/// config, a record not written yet): IN_PROGRESS, counted in the service deployment's index
/// object, until the stuck invocations span `budget_ms` (the config's `stuck_minutes`; the index's
/// copy, or [`hook::DEFAULT_STUCK_MS`], when the config cannot be read). Then FAILED, with the
/// reason on the record tied to this service deployment and one message; a later invocation of
/// the same check answers the same FAILED and tells nobody again.
///
/// The count lives in the index object, not in `hookDetails`: whoever invokes verify chooses
/// `hookDetails`, and the index is found from `resourceArn` whether or not the record or the config
/// can be read. When the index itself cannot be read (S3 failing), the count `hookDetails` carry
/// back is used, since it can only bring the FAILED sooner.
pub async fn stuck(
    records: &RecordStore,
    notifier: Option<&Notifier>,
    payload: &Value,
    inv: &HookInvocation,
    delay_ms: u64,
    budget_ms: Option<u64>,
    why: &str,
) -> HookAnswer {
    // A rollback's traffic shift is never refused, not even when nothing could be read: the
    // payload itself shows green at 0 %. Nothing is written for it.
    if inv.rolling_back() {
        let why = format!(
            "ECS is shifting traffic back to the previous revision (green is at 0 %); pushdeploy never holds up a rollback (not recorded: {why})"
        );
        info!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "succeeded", reason = %why, "decision");
        return HookAnswer::succeeded(why);
    }
    let key = hook::index_key(inv).ok();
    let read = match &key {
        Some(key) => {
            records.hook_index(key).await.map_err(|e| warn!(key = %key, error = %e, "could not read the hook index"))
        }
        None => Err(()),
    };
    let readable = read.is_ok();
    let mut index = read
        .ok()
        .flatten()
        .filter(|i| i.service_deployment_arn == inv.resource_arn)
        .unwrap_or_else(|| HookIndex::of(&inv.resource_arn));
    let check = inv.check_key();
    if let Some(spent) = index.spent.as_ref().filter(|s| s.check == check) {
        info!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "failed", reason = %spent.reason, "decision");
        return HookAnswer::failed(spent.reason.clone());
    }
    let prior = if readable { index.stuck.clone() } else { hook::carried_stuck(payload) };
    let budget = budget_ms.or(index.stuck_budget_ms).unwrap_or(hook::DEFAULT_STUCK_MS);
    if budget_ms.is_some() {
        index.stuck_budget_ms = budget_ms;
    }
    // Stuck invocations come a call-back apart; a longer gap means one in between moved the check on.
    let gap = delay_ms.div_ceil(1000) * 1000 * 2 + 60_000;
    match hook::count_stuck(prior.as_ref(), &check, why, timing::now_ms(), budget, gap) {
        StuckStep::Again(s) => {
            index.stuck = Some(s.clone());
            if let (Some(key), true) = (&key, readable) {
                if let Err(e) = records.put_hook_index(key, &index).await {
                    warn!(key = %key, error = %e, "could not count the stuck invocation in the hook index; hookDetails carry it");
                }
            }
            let said = format!(
                "{why}; ECS calls again ({} stuck invocation(s) so far; FAILED once they span {} s)",
                s.invocations,
                budget / 1000
            );
            warn!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "in_progress", reason = %said, "decision");
            HookAnswer::call_again(payload, delay_ms, &s, said)
        }
        StuckStep::Spent(s, reason) => {
            error!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "failed", reason = %reason, "decision");
            index.stuck = Some(s);
            index.spent = Some(hook::SpentBudget { check: check.clone(), reason: reason.clone() });
            // Not over an index that could not be read: it may name the record.
            if let (Some(key), true) = (&key, readable) {
                if let Err(e) = records.put_hook_index(key, &index).await {
                    warn!(key = %key, error = %e, "could not note the spent budget in the hook index");
                }
            }
            tell_stuck(records, notifier, inv, index.record.as_deref(), &reason).await;
            HookAnswer::failed(reason)
        }
    }
}

/// Puts a spent stuck budget on the record tied to this service deployment (ECS rolls it back on
/// the FAILED) and tells once: the verdict's message, or, with no record to put it on, a problem
/// message. Best effort: the FAILED answer stands either way.
async fn tell_stuck(
    records: &RecordStore,
    notifier: Option<&Notifier>,
    inv: &HookInvocation,
    record_id: Option<&str>,
    reason: &str,
) {
    let read = match record_id.and_then(record::ecs_deployment_id) {
        Some(ecs_id) => records.get(&inv.cluster, &inv.service, &ecs_id).await.ok(),
        None => None,
    };
    let tied = match read {
        Some(Found::Record(rec)) if rec.service_deployment_arn.as_deref() == Some(inv.resource_arn.as_str()) => {
            Some(*rec)
        }
        _ => None,
    };
    let message = match tied {
        Some(rec) if rec.is_settled() => return,
        Some(mut rec) => {
            rec.status = Status::RolledBack;
            rec.rolled_back_by = Some("ecs".into());
            rec.rolled_back_to = Some(rec.previous_task_definition.clone());
            rec.reason = Some(reason.to_string());
            rec.hook_tally = None;
            rec.stamp("hook_stuck", record::now());
            if let Err(e) = records.put(&rec).await {
                warn!(deployment_id = %rec.id, error = %e, "could not put the spent stuck budget on the record");
            }
            crate::emf::record(&rec.name, &crate::emf::verdict(&rec));
            crate::notify::verdict_message(&rec)
        }
        None => {
            let target = format!("{}/{}", inv.cluster, inv.service);
            problem_message(&Problem {
                function: "verify",
                service: &inv.service,
                target: Some(&target),
                doing: &format!("check {}", inv.stage.as_str()),
                error: reason,
                consequence: "the lifecycle hook answered FAILED, so ECS rolls the deployment back to the revision that served before; fix the cause, then push again",
            })
        }
    };
    if let Some(n) = notifier {
        n.send(&message).await;
    }
}
