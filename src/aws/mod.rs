//! Small clients, one per AWS service, each translating SDK errors into [`AwsError`].

mod clients;
pub mod cloudwatch;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod leases;
pub mod pauses;
mod policy;
pub mod records;
pub mod s3;
pub mod signed_json;
pub mod sns;
pub mod ssm;
pub mod tls;

pub use clients::{Clients, SdkClients};
pub use policy::AwsPolicy;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::domain::error::AwsError;

/// Error codes that mean "try again later" across the AWS APIs pushdeploy calls.
pub(crate) const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Converts an SDK error into an [`AwsError`] that says what was done, to what, and what to check.
pub(crate) fn aws_error<E>(
    action: &'static str,
    target: impl Into<String>,
    hint: &'static str,
    err: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (detail, transient) = match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown");
            let transient = TRANSIENT_CODES.contains(&code) || status.is_some_and(|s| s >= 500 || s == 429);
            (format!("{code}: {}", e.message().unwrap_or("no message")), transient)
        }
        SdkError::TimeoutError(_) => ("timed out".to_string(), true),
        SdkError::DispatchFailure(d) => (format!("could not reach the endpoint ({d:?})"), true),
        SdkError::ResponseError(_) => (format!("unreadable response (HTTP {})", status.unwrap_or(0)), true),
        SdkError::ConstructionFailure(_) => ("request could not be built".to_string(), false),
        _ => (format!("{err}"), status.is_some_and(|s| s >= 500)),
    };
    let detail = match status {
        Some(s) if !detail.contains("HTTP") => format!("{detail} (HTTP {s})"),
        _ => detail,
    };
    AwsError { action, target: target.into(), detail, hint, transient }
}
