//! What verify does with its verdict on a service: act on it, or only record and tell it. The
//! config's `mode` key and the deployment record's `mode` field are this one type.

use serde::{Deserialize, Serialize};

/// What verify does with its verdict on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Act on the verdict: roll back a failed deployment, answer a lifecycle hook FAILED (default).
    #[default]
    Enforce,
    /// Run every check and record and tell the verdict it would have given, but never roll back
    /// nor answer a hook FAILED: the first pushes on a real estate are then safe to watch.
    Observe,
}

impl Mode {
    /// The name the config and the record use.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }

    /// True in observe mode.
    pub fn is_observe(&self) -> bool {
        *self == Mode::Observe
    }

    /// True for the default, which a record leaves out.
    pub fn is_enforce(&self) -> bool {
        *self == Mode::Enforce
    }
}

/// The timeline event of a failure verify only observed: enforce mode would have rolled the
/// deployment back (or answered its lifecycle hook FAILED, so ECS would have).
pub const WOULD_ROLL_BACK: &str = "would_roll_back";
