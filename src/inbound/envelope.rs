//! The EventBridge envelope every event comes in, read before its detail.

use serde::Deserialize;
use serde_json::Value;

/// The EventBridge envelope every event comes in.
#[derive(Deserialize)]
pub(super) struct Envelope {
    pub(super) id: String,
    pub(super) source: String,
    #[serde(rename = "detail-type")]
    pub(super) detail_type: String,
    pub(super) account: String,
    pub(super) region: String,
    #[serde(default)]
    pub(super) time: Option<String>,
    #[serde(default)]
    pub(super) resources: Vec<String>,
    pub(super) detail: Option<Value>,
}
