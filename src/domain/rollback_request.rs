//! What a manual rollback's record keeps of the operator's request.

use serde::{Deserialize, Serialize};

/// A manual rollback as the operator asked it, on its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The target the operator named (`rollback --to`: `family:N`, its ARN or `sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Where the target came from: `ecs_history` (a revision ECS's own history shows the service
    /// ran, named by the operator or never judged by pushdeploy) or `verified_record` (the last
    /// verified deployment, which ECS's history also shows).
    pub target_from: String,
    /// Who asked, in the invoker's own words (the CLI sends its caller's name); not verified:
    /// CloudTrail's Lambda Invoke event with the trigger's request id names the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Returned past pushdeploy's rollback of its digest (`force`): that rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
}
