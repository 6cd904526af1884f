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
    /// True when AWS refused the call for lack of permission: a person must change IAM.
    ///
    /// `detail` starts with the service's error code (see `aws::aws_error`).
    pub fn is_access_denied(&self) -> bool {
        let code = self.detail.split(':').next().unwrap_or_default();
        DENIED_CODES.contains(&code) || self.detail.ends_with("(HTTP 403)")
    }
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
}

impl Error {
    /// True when the invocation should fail so Lambda retries it.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Aws(e) if e.transient)
    }

    /// True for a permanent AWS error: one a person must act on (IAM, a vanished service).
    pub fn is_permanent_aws(&self) -> bool {
        matches!(self, Error::Aws(e) if !e.transient)
    }

    /// True when AWS refused a permission.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Error::Aws(e) if e.is_access_denied())
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
    fn access_denied_is_recognised_by_code_or_status() {
        assert!(aws("AccessDenied: Access Denied (HTTP 403)").is_access_denied());
        assert!(aws("AccessDeniedException: User: x is not authorized (HTTP 400)").is_access_denied());
        assert!(aws("AuthorizationError: not authorized (HTTP 403)").is_access_denied());
        assert!(!aws("ServiceNotFoundException: gone (HTTP 400)").is_access_denied());
        assert!(!aws("InvalidParameterException: no (HTTP 400)").is_access_denied());
    }
}
