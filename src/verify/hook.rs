//! verify as ECS's lifecycle hook (blue/green, linear, canary): one smoke round per invocation
//! through the stage's listener, the tally carried in `hookDetails`, the verdict on the record.
//! ECS rolls back on FAILED while blue still runs; pushdeploy never calls UpdateService here.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::Verifier;
use crate::aws::records::Found;
use crate::error::Error;
use crate::hook::{self, fmt_share, Carried, Decision, HookAnswer, HookInvocation, Listener, Step};
use crate::notify::{problem_message, Problem};
use crate::record::{self, DeploymentRecord, HookCheck, Status};
use crate::secrets;
use crate::smoke::engine;
use crate::taskdef::short_name;
use crate::timing;

/// How many of a service's newest records a hook looks through for the deployment it checks.
const RECORDS_LOOKED_AT: usize = 20;

impl Verifier {
    /// Answers one lifecycle hook invocation. A malformed payload answers FAILED (ECS then rolls
    /// back: the safe side); a transient AWS failure answers IN_PROGRESS (ECS calls again); a
    /// permanent one is recorded, told and returned as `Err` (ECS rolls back, Lambda counts it).
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
        match Box::pin(self.on_hook(&inv, deadline)).await {
            Ok(answer) => Ok(answer),
            Err(err) if err.is_transient() => {
                warn!(execution_id = %inv.execution_id, stage = inv.stage.as_str(), error = %err, outcome = "in_progress", "decision");
                let delay = self
                    .config
                    .by_ecs_service(&inv.cluster, &inv.service)
                    .and_then(|s| s.smoke.as_ref())
                    .map_or(hook::DEFAULT_CALLBACK_MS, |s| s.interval_ms);
                Ok(HookAnswer::call_again(payload, delay, format!("{err}; ECS calls again")))
            }
            Err(err) => {
                self.report_hook_problem(&inv, &err).await;
                Err(err)
            }
        }
    }

    async fn on_hook(&self, inv: &HookInvocation, deadline: Instant) -> Result<HookAnswer, Error> {
        let target = format!("{}/{}", inv.cluster, inv.service);
        let Some(svc) = self.config.by_ecs_service(&inv.cluster, &inv.service) else {
            return Ok(not_ours(inv, format!("{target} is not a service in pushdeploy's config")));
        };
        let mut rec = match self.record_of(inv).await? {
            Ok(rec) => rec,
            Err(why) => return Ok(not_ours(inv, why)),
        };
        // Anyone who may invoke verify can send a payload: ECS itself must be at the stage it
        // names, for this service and revision, before anything is checked or written.
        let ecs = self.ecs.service_deployment(&inv.resource_arn).await?;
        if let Err(why) = crate::confirm::hook_stage(ecs.as_ref(), inv) {
            let why = format!("ECS does not confirm this invocation: {why}; nothing checked or recorded");
            warn!(service = %rec.name, deployment_id = %rec.id, event_id = %inv.execution_id, stage = inv.stage.as_str(), outcome = "unconfirmed", reason = %why, "decision");
            return Ok(HookAnswer::in_progress_untouched(why));
        }
        let (listener, smoke, budget) = match hook::decide(&rec, svc, inv) {
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

    /// The deployment a hook invocation is about, or why it is not pushdeploy's. After the first
    /// invocation, `hookDetails` names the record, which is one GET once it proves tied to this
    /// service deployment (ECS's own ARN, not the hint, decides). Otherwise the green revision's
    /// task definition leads to ECS's deployment of it and so to its record; failing that, the
    /// record tied to this service deployment, else the newest that registered that task definition.
    async fn record_of(&self, inv: &HookInvocation) -> Result<Result<DeploymentRecord, String>, Error> {
        let target = format!("{}/{}", inv.cluster, inv.service);
        let hinted = inv.tally().and_then(|c| record::ecs_deployment_id(&c.deployment));
        if let Some(ecs_id) = hinted {
            if let Ok(Found::Record(rec)) = self.records().get(&inv.cluster, &inv.service, &ecs_id).await {
                if rec.service_deployment_arn.as_deref() == Some(&inv.resource_arn) {
                    return Ok(Ok(*rec));
                }
            }
        }
        let Some(task_definition) = self.ecs.revision_task_definition(&inv.target_revision).await? else {
            return Ok(Err(format!("ECS knows no service revision {}", inv.target_revision)));
        };
        // ECS's deployment of that task definition names the record: one DescribeServices, one GET.
        for ecs_id in self.ecs.deployments_of(&inv.cluster, &inv.service, &task_definition).await? {
            match self.records().get(&inv.cluster, &inv.service, &ecs_id).await? {
                Found::Record(rec) if rec.task_definition == task_definition => return Ok(Ok(*rec)),
                _ => {}
            }
        }
        // Otherwise (ECS no longer lists it) the service's newest records.
        let recent = self.records().recent(&inv.cluster, &inv.service, RECORDS_LOOKED_AT).await?;
        let tied = recent.iter().position(|r| r.service_deployment_arn.as_deref() == Some(&inv.resource_arn));
        let by_revision = || recent.iter().position(|r| r.task_definition == task_definition);
        Ok(tied
            .or_else(by_revision)
            .map(|i| recent[i].clone())
            .ok_or_else(|| format!("no pushdeploy deployment of {target} registered {}", short_name(&task_definition))))
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
