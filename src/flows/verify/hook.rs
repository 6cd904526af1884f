//! verify as ECS's lifecycle hook (blue/green, linear, canary): one smoke round per invocation
//! through the stage's listener, the tally carried in `hookDetails`, the verdict on the record.
//! ECS rolls back on FAILED while blue still runs; pushdeploy never calls UpdateService here.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::stuck::{stuck, StuckSettings};
use super::Verifier;
use crate::aws::records::Found;
use crate::config::{Mode, ServiceConfig, SmokeConfig};
use crate::domain::error::Error;
use crate::domain::lifecycle::{self, HookAnswer, HookIndex, Listener};
use crate::domain::names::short_name;
use crate::domain::record::{self, DeploymentRecord, Status};
use crate::domain::timing;
use crate::flows::settle;
use crate::inbound::hook::{self as inbound, HookInvocation};
use crate::rules::hook::{self, Budget, Decision, Step};
use crate::rules::hook_verdict::{self as verdict, CheckSeen, HookFailure};
use crate::rules::notify::{problem_message, Problem};
use crate::rules::verdict::{Reply, Verdict};
use crate::smoke::engine;
use crate::smoke::secrets;

/// How many of a service's newest records a hook looks through for the deployment it checks.
const RECORDS_LOOKED_AT: usize = 20;

impl Verifier {
    /// Answers one lifecycle hook invocation. A malformed payload answers FAILED (ECS then rolls
    /// back: the safe side); a transient AWS failure answers IN_PROGRESS (ECS calls again) and is
    /// counted against the stuck budget ([`stuck`]); a permanent one is recorded, told and
    /// returned as `Err` (ECS rolls back, Lambda counts it).
    pub async fn hook(&self, payload: &Value, deadline: Instant) -> Result<HookAnswer, Error> {
        let inv = match inbound::parse(payload) {
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
                let settings = self.stuck_settings(&inv);
                Ok(stuck(self.records(), self.notifier.as_ref(), payload, &inv, settings, &err.to_string()).await)
            }
            Err(err) => {
                let reason = self.report_hook_problem(&inv, &err).await;
                match self.stuck_settings(&inv).mode {
                    // Recorded and told as an observed failure; the hook lets the deployment go on.
                    Mode::Observe => Ok(verdict::hook_failure_answer(&reason, Mode::Observe)),
                    Mode::Enforce => Err(err),
                }
            }
        }
    }

    /// The call-back delay, the stuck budget and the mode the config gives the invocation's service.
    fn stuck_settings(&self, inv: &HookInvocation) -> StuckSettings {
        let Some(svc) = self.config.by_ecs_service(&inv.cluster, &inv.service) else { return StuckSettings::unknown() };
        StuckSettings {
            delay_ms: svc.smoke.as_ref().map_or(lifecycle::DEFAULT_CALLBACK_MS, |s| s.interval_ms),
            budget_ms: svc.hook.as_ref().map(|h| h.stuck_ms),
            mode: svc.mode,
        }
    }

    /// The flow of one hook invocation: describe (the record, ECS's word), decide (the hook
    /// decision, then the check's verdict), apply.
    async fn on_hook(&self, payload: &Value, inv: &HookInvocation, deadline: Instant) -> Result<HookAnswer, Error> {
        let (rec, svc, ecs_rolling_back) = match self.describe_hook(payload, inv).await? {
            Seen::Answered(answer) => return Ok(answer),
            Seen::Record { rec, svc, ecs_rolling_back } => (*rec, svc, ecs_rolling_back),
        };
        let v = match hook::decide(&rec, svc, inv, ecs_rolling_back) {
            Decision::Answer { answer, stamp } => {
                verdict::hook_answered(&rec, inv, answer, stamp.as_deref(), &record::now())
            }
            Decision::Check { listener, smoke, budget } => match svc.analysis.as_ref() {
                // A production step with analysis is judged on the load balancer's metrics.
                Some(cfg) if listener == Listener::Production => {
                    self.check_step(rec, inv, svc, cfg, &budget, deadline).await?
                }
                _ => self.check(rec, inv, listener, &smoke, &budget, deadline).await?,
            },
        };
        self.apply_hook(v, inv).await
    }

    /// What an invocation is about: its record, once ECS confirms the invocation (and the index
    /// names the record), or the answer when there is nothing to check.
    async fn describe_hook<'a>(&'a self, payload: &Value, inv: &HookInvocation) -> Result<Seen<'a>, Error> {
        let target = format!("{}/{}", inv.cluster, inv.service);
        if let Some(u) = self.config.unreadable_ecs_service(&inv.cluster, &inv.service) {
            // Settings it cannot read judge nothing: wait (IN_PROGRESS) for an upgrade or a fixed
            // config, counted against the stuck budget as for a config that cannot be read at all.
            let why = u.problem.to_string();
            let answer =
                stuck(self.records(), self.notifier.as_ref(), payload, inv, StuckSettings::unknown(), &why).await;
            return Ok(Seen::Answered(answer));
        }
        let Some(svc) = self.config.by_ecs_service(&inv.cluster, &inv.service) else {
            return Ok(Seen::Answered(not_ours(inv, format!("{target} is not a service in pushdeploy's config"))));
        };
        let (rec, index, indexed) = match self.record_of(inv).await? {
            Lookup::Record { rec, index, indexed } => (rec, index, indexed),
            Lookup::NotOurs(why) => return Ok(Seen::Answered(not_ours(inv, why))),
            Lookup::Pending(why) => {
                // pushdeploy registered the revision but its record is not there yet (the moment
                // between UpdateService and the record's write): never let it through unchecked.
                // Counted against the stuck budget, once ECS confirms the invocation.
                let ecs = self.ecs.service_deployment(&inv.resource_arn).await?;
                if let Err(why) = crate::rules::confirm::hook_stage(ecs.as_ref(), inv) {
                    return Ok(Seen::Answered(unconfirmed(inv, &target, why)));
                }
                let settings = self.stuck_settings(inv);
                let answer = stuck(self.records(), self.notifier.as_ref(), payload, inv, settings, &why).await;
                return Ok(Seen::Answered(answer));
            }
        };
        // Anyone who may invoke verify can send a payload: ECS itself must be at the stage it
        // names, for this service and revision, before anything is checked or written.
        let ecs = self.ecs.service_deployment(&inv.resource_arn).await?;
        if let Err(why) = crate::rules::confirm::hook_stage(ecs.as_ref(), inv) {
            return Ok(Seen::Answered(unconfirmed(inv, &rec.name, why)));
        }
        if !indexed {
            self.write_index(inv, &rec, index, svc).await;
        }
        let ecs_rolling_back = ecs.as_ref().is_some_and(|sd| sd.status.starts_with("ROLLBACK_"));
        Ok(Seen::Record { rec, svc, ecs_rolling_back })
    }

    /// One smoke round of a check, and the verdict it comes to. The tally lives on the record:
    /// hookDetails come back from whoever invoked, so they only ever point at the record.
    async fn check(
        &self,
        rec: DeploymentRecord,
        inv: &HookInvocation,
        listener: Listener,
        smoke: &SmokeConfig,
        budget: &Budget,
        deadline: Instant,
    ) -> Result<Verdict, Error> {
        let now = timing::now_ms();
        let (carried, rec) = self.tally(rec, inv, now).await?;
        let mode = self.config.by_ecs_service(&inv.cluster, &inv.service).map_or(Mode::Enforce, |s| s.mode);
        // Without analysis a production step's checks reach blue and green by weight: say so.
        let canary = (listener == Listener::Production).then(|| super::canary::production_only(inv));
        let done = |rounds, smoke, verdict| {
            let seen = CheckSeen { listener, rounds, smoke, verdict, canary: canary.clone() };
            verdict::check_done(&rec, inv, seen, mode, &record::now())
        };
        if let Err(why) = hook::before_round(&carried, budget, now) {
            return Ok(done(carried.rounds, Value::Null, Err(why)));
        }
        if Instant::now() + Duration::from_millis(smoke.invocation_ms()) > deadline {
            return Ok(verdict::no_time(&rec, &carried, smoke.interval_ms));
        }
        // A transient SSM failure answers IN_PROGRESS (ECS calls again); a permanent one fails the hook.
        let resolved = self.secrets.resolve(smoke).await?;
        let round = engine::one_round(smoke, &self.http, Some(&self.elbv2), &resolved, carried.rounds + 1).await;
        Ok(match hook::after_round(carried, budget, round.passed) {
            Step::Again(c) => {
                verdict::round_again(&rec, listener, &c, round.passed, budget.consecutive, smoke.interval_ms)
            }
            Step::Failed(c) => {
                let why = engine::failure_reason(smoke, &round, c.rounds);
                done(c.rounds, with_sources(json!({ "last_round": round }), smoke), Err(why))
            }
            Step::Passed(c) => {
                let (probe, verdict) = engine::probe_after_pass(smoke, &self.http, &resolved, &rec.id).await;
                let report = with_sources(json!({ "last_round": round, "read_after_write": probe }), smoke);
                done(c.rounds, report, verdict)
            }
        })
    }

    /// Applies a hook verdict: writes and tells what it says ([`settle::apply`]), then logs the
    /// answer.
    async fn apply_hook(&self, v: Verdict, inv: &HookInvocation) -> Result<HookAnswer, Error> {
        settle::apply(self.records(), self.notifier.as_ref(), &v, &inv.execution_id).await?;
        let answer = match v.answer {
            Some(Reply::Hook(answer)) => answer,
            _ => HookAnswer::failed("verify reached no verdict"),
        };
        Ok(self.answer_hook(&v.record, inv, answer))
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
        let index = match inbound::index_key(inv) {
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
        let Ok(key) = inbound::index_key(inv) else { return };
        let mut index = read.unwrap_or_else(|| HookIndex::of(&inv.resource_arn));
        index.record = Some(rec.id.clone());
        index.stuck_budget_ms = svc.hook.as_ref().map(|h| h.stuck_ms);
        if let Err(e) = self.records().put_hook_index(&key, &index).await {
            warn!(key = %key, error = %e, "could not write the hook index: the next stage looks the record up again");
        }
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
    async fn report_hook_problem(&self, inv: &HookInvocation, err: &Error) -> String {
        error!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "error", error = %err, "decision");
        let svc = self.config.by_ecs_service(&inv.cluster, &inv.service);
        let name = svc.map_or(inv.service.as_str(), |s| s.name.as_str());
        let mode = svc.map_or(Mode::Enforce, |s| s.mode);
        let reason = format!(
            "pushdeploy could not check {} of {}: {err}; {}",
            inv.stage.as_str(),
            inv.resource_arn,
            match mode {
                Mode::Enforce => "the hook failed, so ECS rolls the deployment back",
                Mode::Observe => "the hook failed",
            }
        );
        if let Ok(recent) = self.records().recent(&inv.cluster, &inv.service, RECORDS_LOOKED_AT).await {
            // The record tied to this service deployment; before the hook could tie one (the
            // revision could not be read), the newest push or deploy still in flight.
            let tied = recent.iter().position(|r| r.service_deployment_arn.as_deref() == Some(&inv.resource_arn));
            let in_flight = || recent.iter().position(|r| r.status == Status::Started && !r.is_rollback());
            let found = tied.or_else(in_flight).map(|i| &recent[i]);
            if let Some(rec) =
                found.and_then(|r| verdict::failed_hook(r, HookFailure::Error, &reason, mode, &record::now()))
            {
                match self.save(&rec).await {
                    Ok(()) => crate::flows::metrics::record(&rec.name, &crate::flows::metrics::verdict(&rec)),
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
            consequence: match mode {
                Mode::Enforce => "the lifecycle hook failed, so ECS rolls the deployment back to the revision that served before; fix this, then push again",
                Mode::Observe => "observe mode: the lifecycle hook answered SUCCEEDED, so the deployment went on unchecked; fix this before enforcing",
            },
        });
        self.publish(&message).await;
        reason
    }
}

/// A hook check's smoke report with the headers whose values came from SSM, as an event's
/// report lists them (`secret_headers`, left out when there are none): never a value.
fn with_sources(mut report: Value, smoke: &crate::config::SmokeConfig) -> Value {
    let sources = secrets::sources(smoke);
    if !sources.is_empty() {
        report["secret_headers"] = json!(sources);
    }
    if let Some(target) = crate::smoke::engine::target(smoke) {
        report["target"] = json!(target);
    }
    report
}

/// Not pushdeploy's deployment: go on, touch nothing, say so.
fn not_ours(inv: &HookInvocation, why: String) -> HookAnswer {
    let why = format!("{why}: not pushdeploy's deployment, so it is not checked");
    info!(event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "ignored", reason = %why, "decision");
    HookAnswer::succeeded(why)
}

/// What describing an invocation came to.
enum Seen<'a> {
    /// Nothing to check: the answer.
    Answered(HookAnswer),
    /// The record to decide on, the service's config, and whether ECS reports a rollback.
    Record {
        /// The record.
        rec: Box<DeploymentRecord>,
        /// The service's config.
        svc: &'a ServiceConfig,
        /// True when ECS reports the service deployment rolling back.
        ecs_rolling_back: bool,
    },
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
