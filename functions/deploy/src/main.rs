//! The `deploy` Lambda: ECR push events and manual actions in, ECS rollouts out.

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use pushdeploy::rules::outcome::{Outcome, Summary};
use serde_json::Value;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pushdeploy::lambda::setup::init_logging();
    let metrics = pushdeploy::lambda::setup::install_metrics();
    // A missing setting is answered on every invocation instead of crash-looping the runtime;
    // a transient failure fails the cold start so Lambda tries again.
    let live = match pushdeploy::lambda::setup::deployer_from_env().await {
        Ok(live) => Ok(Mutex::new(live)),
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "pushdeploy cannot start: every invocation will be rejected until this is fixed");
            pushdeploy::lambda::setup::report_startup_failure("deploy", &e).await;
            Err(e.to_string())
        }
    };
    let mut live = live;
    if let Ok(live) = &mut live {
        pushdeploy::lambda::setup::prepare_deployer(live.get_mut()).await;
    }
    let live = &live;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // The config is re-read when its object changes; an invalid one refuses, a missing one retries.
        let deployer = match live {
            Ok(live) => live.lock().await.current().await.map_err(Diagnostic::from)?,
            Err(reason) => Err(reason.clone()),
        };
        let answer = match deployer {
            Ok(d) => {
                let deadline = pushdeploy::domain::timing::Deadline::from_lambda(event.context.deadline);
                let function = Some(event.context.invoked_function_arn.as_str());
                d.handle_invoked(event.payload, &event.context.request_id, deadline, function)
                    .await
                    .map_err(Diagnostic::from)
            }
            Err(reason) => Ok(Summary::only(Outcome::Rejected, reason)),
        };
        pushdeploy::lambda::setup::flush_metrics(metrics);
        answer
    }))
    .await
}
