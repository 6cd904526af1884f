//! One lifecycle hook check's verdict as the deployment record keeps it.

use serde::{Deserialize, Serialize};

impl HookCheck {
    /// One line for people: the check, the listener, how much of production it touched, the verdict.
    pub fn summary(&self) -> String {
        let verdict = match (&self.reason, self.passed) {
            (_, true) => "passed".to_string(),
            (Some(why), false) => format!("FAILED: {why}"),
            (None, false) => "FAILED".to_string(),
        };
        let share = crate::domain::lifecycle::fmt_share(self.production_share);
        match &self.analysis {
            Some(_) => format!(
                "{} on the load balancer's metrics ({share}% of production on the new revision): {verdict}",
                self.check
            ),
            None => format!(
                "{} through the {} listener ({share}% of production on the new revision), {} round(s): {verdict}",
                self.check, self.listener, self.rounds
            ),
        }
    }
}

/// One lifecycle hook check's verdict: what a duplicate or late invocation answers again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookCheck {
    /// The stage, with the step's weight for a production shift (`PRODUCTION_TRAFFIC_SHIFT@10`).
    pub check: String,
    /// `test` or `production`.
    pub listener: String,
    /// The share of production traffic the new revision had, in percent.
    pub production_share: f64,
    /// The verdict.
    pub passed: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rounds run, across invocations.
    pub rounds: u32,
    /// The last round (and the probe), as the smoke engine reported them.
    pub smoke: serde_json::Value,
    /// Where a production step's active checks went (`rules::canary::Reached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<serde_json::Value>,
    /// The analysis of real traffic the verdict read (`rules::analysis::Findings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<serde_json::Value>,
    /// When the verdict came (RFC 3339).
    pub at: String,
}
