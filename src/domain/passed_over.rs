//! A newer revision of a family that a `base = "family"` rollout did not copy: on the record, so
//! someone registering revisions of a production family outside Terraform shows.

use serde::{Deserialize, Serialize};

/// A newer revision of the family that a rollout did not copy, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    /// Its ARN.
    pub task_definition: String,
    /// Who registered it, as ECS says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_by: Option<String>,
    /// Why it is not a base.
    pub reason: String,
}

impl PassedOver {
    /// One line for people: `todo-backend:5 (registered by …): why`.
    pub fn line(&self) -> String {
        let by = self.registered_by.as_deref().map(|b| format!(" (registered by {b})")).unwrap_or_default();
        format!("{}{by}: {}", crate::domain::names::short_name(&self.task_definition), self.reason)
    }
}
