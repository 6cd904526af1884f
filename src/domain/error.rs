//! Error types: bad input is answered, AWS trouble is retried.

use thiserror::Error;

/// Input that can never succeed however often it is retried: answered `rejected`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    /// Wraps a human-readable reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// An invalid `pushdeploy.toml`, located by file and key.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid config {file}: {key}: {message}")]
pub struct ConfigError {
    /// Where the config came from (path or `s3://` URL).
    pub file: String,
    /// The offending key, e.g. `service[1].tags`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

/// A `[[service]]` entry the running pushdeploy cannot read (a newer release's key, a bad value,
/// a `requires` above this release): that service alone is neither deployed nor judged, while
/// every other service goes on as configured.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("pushdeploy {version} cannot read the config of service {name} ({error}), so it neither deploys nor judges {target}. Check: a setting of a newer pushdeploy needs the functions upgraded first (or remove it); a bad value needs fixing; then upload the config again")]
pub struct Unreadable {
    /// The entry's `name`.
    pub name: String,
    /// `cluster/service`.
    pub target: String,
    /// The running pushdeploy's version.
    pub version: String,
    /// What it cannot read: file, key, what is wrong.
    pub error: ConfigError,
}

/// A failed AWS call, with what pushdeploy was doing and what to check.
#[derive(Debug, Clone, Error)]
#[error("{action} for {target} failed: {detail}. Check: {hint}")]
pub struct AwsError {
    /// What pushdeploy was doing, e.g. `UpdateService`.
    pub action: &'static str,
    /// Which resource, e.g. `todo-cluster/todo-frontend`.
    pub target: String,
    /// The service's own message (code and text), never a whole response body.
    pub detail: String,
    /// What an operator should look at.
    pub hint: &'static str,
    /// Whether retrying the same call later may succeed (throttling, 5xx, network).
    pub transient: bool,
}

/// Error codes with which AWS refuses a caller its permissions (IAM, a bucket or key policy).
const DENIED_CODES: &[&str] =
    &["AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation", "Forbidden"];

impl AwsError {
    /// True when the service answered (with an error): the call was refused, not lost on the way,
    /// so it changed nothing. A timeout or a broken connection leaves that unknown.
    pub fn was_answered(&self) -> bool {
        !["timed out", "could not reach", "unreadable response"].iter().any(|p| self.detail.starts_with(p))
    }

    /// True when AWS refused the call for lack of permission: a person must change IAM.
    ///
    /// `detail` starts with the service's error code (see `aws::aws_error`).
    pub fn is_access_denied(&self) -> bool {
        let code = self.detail.split(':').next().unwrap_or_default();
        DENIED_CODES.contains(&code) || self.detail.ends_with("(HTTP 403)")
    }
}

/// A failure that is no AWS call's (a busy service, the invocation's time, a rollback with no
/// safe target), worded as [`AwsError`] is, so an operator reads every failure alike.
#[derive(Debug, Clone, Error)]
#[error("{action} for {target} failed: {detail}. Check: {hint}")]
pub struct Failure {
    /// What pushdeploy was doing, e.g. `roll back`.
    pub action: &'static str,
    /// Which resource, e.g. `todo-cluster/todo-frontend`.
    pub target: String,
    /// What happened.
    pub detail: String,
    /// What an operator should look at.
    pub hint: &'static str,
}

/// Everything a deploy or verify can fail with.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad input: answered `rejected`, never retried.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Bad configuration: answered `rejected`, never retried.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Another rollout holds the service's lease past the wait bound: retried (`Transient.LeaseBusy`).
    #[error(transparent)]
    LeaseBusy(Failure),
    /// The work ran out of its time before the Lambda deadline: retried (`Transient.Deadline`).
    #[error(transparent)]
    Deadline(Failure),
    /// No safe revision to roll back to: no retry makes one (`Permanent.RollbackRefused`).
    #[error(transparent)]
    RollbackRefused(Failure),
    /// A rollback that could not be carried out, already on the record and told: classified by
    /// its cause, since only a cause that heals by itself can be helped by a retry.
    #[error(transparent)]
    RollbackFailed(Box<Error>),
}

/// What a failure means for the invocation: the one place failures are classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// May heal by itself (throttling, 5xx, a busy service, the deadline): fail the invocation so
    /// Lambda retries it.
    Retry,
    /// AWS refused a permission: a person must fix IAM. Fail the invocation (counted in the
    /// function's Errors metric, then kept in the failed-invocations queue for a redrive) and publish.
    Escalate,
    /// No retry can help and no permission is missing: answer `rejected`; publish when AWS
    /// refused it (a vanished service, a missing container), which a person should look at.
    Refuse {
        /// Whether the topic hears of it.
        publish: bool,
    },
}

impl Error {
    /// True when the invocation should fail so Lambda retries it.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Aws(e) => e.transient,
            Error::LeaseBusy(_) | Error::Deadline(_) => true,
            Error::RollbackFailed(cause) => cause.is_transient(),
            Error::Input(_) | Error::Config(_) | Error::RollbackRefused(_) => false,
        }
    }

    /// True for a permanent AWS error: one a person must act on (IAM, a vanished service). A
    /// failed rollback is not: it is on the record and told already.
    pub fn is_permanent_aws(&self) -> bool {
        matches!(self, Error::Aws(e) if !e.transient)
    }

    /// True when AWS refused a permission.
    pub fn is_access_denied(&self) -> bool {
        match self {
            Error::Aws(e) => e.is_access_denied(),
            Error::RollbackFailed(cause) => cause.is_access_denied(),
            _ => false,
        }
    }

    /// What this failure does to the invocation ([`Disposition`]).
    pub fn disposition(&self) -> Disposition {
        match self {
            Error::Aws(e) if e.transient => Disposition::Retry,
            Error::Aws(e) if e.is_access_denied() => Disposition::Escalate,
            Error::Aws(_) => Disposition::Refuse { publish: true },
            Error::LeaseBusy(_) | Error::Deadline(_) => Disposition::Retry,
            Error::RollbackRefused(_) => Disposition::Refuse { publish: true },
            Error::RollbackFailed(cause) => cause.disposition(),
            Error::Input(_) | Error::Config(_) => Disposition::Refuse { publish: false },
        }
    }

    /// The `errorType` Lambda reports for this error, for a person to filter on in logs, metrics
    /// and the failed-invocations queue: `Transient.*` is retried and may heal by itself;
    /// `Permanent.*` needs a person.
    pub fn error_type(&self) -> String {
        let e = match self {
            Error::Input(_) => return "Permanent.BadInput".into(),
            Error::Config(_) => return "Permanent.Config".into(),
            Error::LeaseBusy(_) => return "Transient.LeaseBusy".into(),
            Error::Deadline(_) => return "Transient.Deadline".into(),
            Error::RollbackRefused(_) => return "Permanent.RollbackRefused".into(),
            Error::RollbackFailed(cause) => return cause.error_type(),
            Error::Aws(e) => e,
        };
        if e.is_access_denied() {
            return "Permanent.AccessDenied".into();
        }
        let code = e.detail.split(':').next().unwrap_or_default();
        let kind = match (e.action, code) {
            ("read pushdeploy.toml", _) => "ConfigMissing",
            (
                _,
                "ThrottlingException"
                | "Throttling"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "SlowDown"
                | "RequestLimitExceeded",
            ) => "Throttled",
            _ if e.detail.starts_with("timed out") => "Timeout",
            _ if e.detail.starts_with("could not reach") => "Unreachable",
            _ if e.transient => "Aws",
            _ => "AwsRefused",
        };
        format!("{}.{kind}", if e.transient { "Transient" } else { "Permanent" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(detail: &str) -> AwsError {
        AwsError {
            action: "S3 GetObject",
            target: "s3://b/k".into(),
            detail: detail.into(),
            hint: "h",
            transient: false,
        }
    }

    #[test]
    fn every_failure_has_one_disposition() {
        let e = |detail: &str, transient: bool| Error::Aws(AwsError { transient, ..aws(detail) });
        assert_eq!(e("SlowDown: Reduce (HTTP 503)", true).disposition(), Disposition::Retry);
        assert_eq!(e("AccessDeniedException: no (HTTP 400)", false).disposition(), Disposition::Escalate);
        assert_eq!(e("AccessDenied: Access Denied (HTTP 403)", false).disposition(), Disposition::Escalate);
        assert_eq!(
            e("ServiceNotFoundException: gone (HTTP 400)", false).disposition(),
            Disposition::Refuse { publish: true }
        );
        assert_eq!(Error::Input(InputError::new("bad")).disposition(), Disposition::Refuse { publish: false });
    }

    #[test]
    fn error_types_say_transient_or_permanent_and_why() {
        let t = |action: &'static str, detail: &str, transient: bool| {
            Error::Aws(AwsError { action, target: "t".into(), detail: detail.into(), hint: "h", transient })
                .error_type()
        };
        assert_eq!(
            t("ECS UpdateService", "ThrottlingException: Rate exceeded (HTTP 400)", true),
            "Transient.Throttled"
        );
        assert_eq!(t("S3 PutObject", "SlowDown: Reduce (HTTP 503)", true), "Transient.Throttled");
        assert_eq!(t("ECS DescribeServices", "timed out", true), "Transient.Timeout");
        assert_eq!(t("S3 GetObject", "AccessDenied: Access Denied (HTTP 403)", false), "Permanent.AccessDenied");
        // A failed rollback is retried, but AccessDenied still needs a person.
        assert_eq!(t("ECS UpdateService", "AccessDeniedException: no (HTTP 400)", true), "Permanent.AccessDenied");
        assert_eq!(t("ECS DescribeServices", "MISSING", false), "Permanent.AwsRefused");
        assert_eq!(
            t("read pushdeploy.toml", "the config object does not exist (yet)", true),
            "Transient.ConfigMissing"
        );
        assert_eq!(Error::Input(InputError::new("x")).error_type(), "Permanent.BadInput");
        let failure =
            || Failure { action: "roll back", target: "t".into(), detail: "names backend by tag".into(), hint: "h" };
        assert_eq!(Error::RollbackRefused(failure()).error_type(), "Permanent.RollbackRefused");
        assert_eq!(Error::LeaseBusy(failure()).error_type(), "Transient.LeaseBusy");
        assert_eq!(Error::Deadline(failure()).error_type(), "Transient.Deadline");
    }

    #[test]
    fn a_failed_rollback_is_classified_by_its_cause() {
        let aws = |detail: &str, transient: bool| {
            Error::Aws(AwsError {
                action: "ECS UpdateService",
                target: "t".into(),
                detail: detail.into(),
                hint: "h",
                transient,
            })
        };
        let failed = |cause: Error| Error::RollbackFailed(Box::new(cause));
        let throttled = failed(aws("ThrottlingException: Rate exceeded (HTTP 400)", true));
        assert!(throttled.is_transient() && throttled.error_type() == "Transient.Throttled");
        let denied = failed(aws("AccessDeniedException: no (HTTP 400)", false));
        assert!(!denied.is_transient() && denied.is_access_denied() && !denied.is_permanent_aws());
        assert_eq!(denied.disposition(), Disposition::Escalate);
        let diagnostic = lambda_runtime::Diagnostic::from(denied);
        assert_eq!(diagnostic.error_type, "Permanent.AccessDenied");
    }

    #[test]
    fn access_denied_is_recognised_by_code_or_status() {
        assert!(aws("AccessDenied: Access Denied (HTTP 403)").is_access_denied());
        assert!(aws("AccessDeniedException: User: x is not authorized (HTTP 400)").is_access_denied());
        assert!(aws("AuthorizationError: not authorized (HTTP 403)").is_access_denied());
        assert!(!aws("ServiceNotFoundException: gone (HTTP 400)").is_access_denied());
        assert!(!aws("InvalidParameterException: no (HTTP 400)").is_access_denied());
    }
}
