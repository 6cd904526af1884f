//! How a failure reaches Lambda: its `errorType` and message.

use lambda_runtime::Diagnostic;

use crate::domain::error::Error;

/// Lambda's `errorType` says what failed (`Transient.LeaseBusy`, `Permanent.AccessDenied`, …),
/// not a Rust type name: the one conversion both functions answer failures with.
impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic { error_type: e.error_type(), error_message: e.to_string() }
    }
}
