//! The `deploy` Lambda: ECR push events and manual actions in, ECS rollouts out.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use pushdeploy::outcome::{Outcome, Summary};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pushdeploy::setup::init_logging();
    // A bad config is answered on every invocation instead of crash-looping the runtime;
    // a transient failure to load it fails the cold start so Lambda tries again.
    let deployer = match pushdeploy::setup::deployer_from_env().await {
        Ok(d) => Ok(d),
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "pushdeploy cannot start: every invocation will be rejected until this is fixed");
            pushdeploy::setup::report_startup_failure("deploy", &e).await;
            Err(e.to_string())
        }
    };
    let deployer = &deployer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match deployer {
            Ok(d) => {
                let deadline = pushdeploy::setup::deploy_deadline(event.context.deadline);
                d.handle_before(event.payload, &event.context.request_id, deadline).await.map_err(Error::from)
            }
            Err(reason) => Ok(Summary::only(Outcome::Rejected, reason.clone())),
        }
    }))
    .await
}
