//! The `verify` Lambda: ECS deployment state changes and lifecycle hook invocations in; verdicts,
//! rollbacks and notifications out.

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use pushdeploy::domain::lifecycle::HookAnswer;
use pushdeploy::flows::verify::Answer;
use serde_json::Value;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pushdeploy::lambda::setup::init_logging();
    let metrics = pushdeploy::lambda::setup::install_metrics();
    // As in deploy: a missing setting is answered, a transient failure fails the cold start.
    let live = match pushdeploy::lambda::setup::verifier_from_env().await {
        Ok(live) => Ok(Mutex::new(live)),
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "pushdeploy cannot start: every invocation will be rejected until this is fixed");
            pushdeploy::lambda::setup::report_startup_failure("verify", &e).await;
            Err(e.to_string())
        }
    };
    let live = &live;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = pushdeploy::domain::timing::Deadline::from_lambda(event.context.deadline).verdict_by();
        // The config is re-read when its object changes; an invalid one refuses, a missing one retries.
        // Where an event verify cannot judge notes why: the deployment's record, when the bucket is known.
        let mut records = None;
        let verifier = match live {
            Ok(live) => {
                let mut live = live.lock().await;
                records = Some(pushdeploy::aws::records::RecordStore::new(live.clients().store.clone()));
                match live.current().await {
                    Ok(verifier) => verifier,
                    // The config cannot be read just now: a hook answers IN_PROGRESS, an event fails.
                    Err(e) if pushdeploy::inbound::hook::is_hook_payload(&event.payload) => {
                        let records = records.as_ref().expect("set with the clients");
                        let answer = unreadable_config_hook(records, &event.payload, &e).await;
                        pushdeploy::lambda::setup::flush_metrics(metrics);
                        return Ok(Answer::Hook(answer));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(reason) => Err(reason.clone()),
        };
        let answer = match verifier {
            Ok(v) => v.invoke(event.payload, deadline).await.map_err(Diagnostic::from),
            // A hook that cannot start answers FAILED, so ECS keeps blue.
            Err(reason) if pushdeploy::inbound::hook::is_hook_payload(&event.payload) => {
                Ok(Answer::Hook(HookAnswer::failed(format!("pushdeploy cannot start: {reason}"))))
            }
            // A probe (validate --live) sends nothing without a config: it is told why.
            Err(reason) if pushdeploy::inbound::probe::is_probe(&event.payload) => Ok(cannot_probe(&reason)),
            // An event is never answered unjudged: the invocation fails, so Lambda retries it and
            // then parks it in the failed-invocations queue for a redrive once the config is fixed.
            Err(reason) => pushdeploy::flows::verify::cannot_judge(records.as_ref(), event.payload, &reason)
                .await
                .map(Answer::Event)
                .map_err(|message| Diagnostic { error_type: "Permanent.Config".into(), error_message: message }),
        };
        pushdeploy::lambda::setup::flush_metrics(metrics);
        answer
    }))
    .await
}

/// What a probe answers when verify cannot start: refused, and why.
fn cannot_probe(reason: &str) -> Answer {
    use pushdeploy::rules::outcome::{Outcome, Summary};
    Answer::Event(Summary::only(Outcome::Rejected, format!("pushdeploy cannot start, so nothing was probed: {reason}")))
}

/// What a hook answers while the config cannot be read: Lambda retries an event, and ECS calls a
/// hook again, as for any transient failure (an error would roll the deployment back). Counted
/// against the stuck budget (the index object keeps the count and the budget the config last
/// gave), so a config that stays unreadable fails the hook before ECS's own timeout acts. The
/// topic heard of the config already.
async fn unreadable_config_hook(
    records: &pushdeploy::aws::records::RecordStore,
    payload: &Value,
    e: &pushdeploy::Error,
) -> HookAnswer {
    tracing::error!(error = %e, "cannot read the config; the hook answers IN_PROGRESS");
    let why = format!("the config cannot be read: {e}");
    // No config, no mode: enforced (the safe side).
    let settings = pushdeploy::flows::verify::StuckSettings::unknown();
    match pushdeploy::inbound::hook::parse(payload) {
        Ok(inv) => pushdeploy::flows::verify::stuck(records, None, payload, &inv, settings, &why).await,
        Err(bad) => HookAnswer::failed(format!(
            "malformed lifecycle hook payload: {}; answering FAILED, so ECS rolls the deployment back (the safe side)",
            bad.0
        )),
    }
}
