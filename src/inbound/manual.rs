//! An operator's direct invocation: redeploy, deploy a tag, roll back, or plan.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::error::InputError;
use crate::domain::image::{truncate, validate_tag};

/// A direct invocation by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum ManualAction {
    /// New tasks of the digest the service runs now.
    Redeploy {
        /// Configured service name.
        service: String,
        /// Roll it out even when pushdeploy rolled that digest back.
        #[serde(default)]
        force: bool,
    },
    /// Deploy a given tag.
    Deploy {
        /// Configured service name.
        service: String,
        /// Tag to deploy.
        tag: String,
        /// Deploy it even when pushdeploy rolled the tag's digest back.
        #[serde(default)]
        force: bool,
    },
    /// Return to the last verified deployment before the current one.
    Rollback {
        /// Configured service name.
        service: String,
    },
    /// Answer what `deploy` would do, changing nothing.
    Plan {
        /// Configured service name.
        service: String,
        /// Tag to plan for; defaults to the watched tag.
        #[serde(default)]
        tag: Option<String>,
        /// Plan the forced deploy (past a rollback of the tag's digest).
        #[serde(default)]
        force: bool,
    },
}

impl ManualAction {
    /// The configured service name the action targets.
    pub fn service(&self) -> &str {
        match self {
            ManualAction::Redeploy { service, .. }
            | ManualAction::Deploy { service, .. }
            | ManualAction::Rollback { service }
            | ManualAction::Plan { service, .. } => service,
        }
    }

    /// The verb, as logs and answers name it.
    pub fn verb(&self) -> &'static str {
        match self {
            ManualAction::Redeploy { .. } => "redeploy",
            ManualAction::Deploy { .. } => "deploy",
            ManualAction::Rollback { .. } => "rollback",
            ManualAction::Plan { .. } => "plan",
        }
    }
}

pub(super) fn parse_manual(value: Value) -> Result<ManualAction, InputError> {
    let action = value.get("action").cloned();
    let manual: ManualAction = serde_json::from_value(value).map_err(|e| {
        let known = "redeploy, deploy, rollback, plan";
        match action {
            Some(Value::String(a)) if !["redeploy", "deploy", "rollback", "plan"].contains(&a.as_str()) => {
                InputError::new(format!("unknown action {:?}: use one of {known}", truncate(&a)))
            }
            _ => InputError::new(format!("malformed manual action: {e}")),
        }
    })?;
    check_short("service", manual.service())?;
    match &manual {
        ManualAction::Deploy { tag, .. } | ManualAction::Plan { tag: Some(tag), .. } => validate_tag(tag)?,
        _ => {}
    }
    Ok(manual)
}

fn check_short(field: &str, s: &str) -> Result<(), InputError> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(InputError::new(format!("{field} {:?} must be 1 to 256 printable characters", truncate(s))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse;
    use crate::inbound::Trigger;
    use serde_json::json;

    #[test]
    fn parses_manual_actions() {
        assert_eq!(
            parse(json!({"action": "plan", "service": "frontend"})).unwrap(),
            Trigger::Manual(ManualAction::Plan { service: "frontend".into(), tag: None, force: false })
        );
        assert_eq!(
            parse(json!({"action": "deploy", "service": "backend", "tag": "v1.4.2"})).unwrap(),
            Trigger::Manual(ManualAction::Deploy { service: "backend".into(), tag: "v1.4.2".into(), force: false })
        );
        // `force` goes past a rollback of the digest; it is a boolean, and rollback has none.
        assert_eq!(
            parse(json!({"action": "redeploy", "service": "backend", "force": true})).unwrap(),
            Trigger::Manual(ManualAction::Redeploy { service: "backend".into(), force: true })
        );
        assert_eq!(
            parse(json!({"action": "deploy", "service": "backend", "tag": "latest", "force": true})).unwrap(),
            Trigger::Manual(ManualAction::Deploy { service: "backend".into(), tag: "latest".into(), force: true })
        );
        let why = parse(json!({"action": "deploy", "service": "b", "tag": "t", "force": "yes"})).unwrap_err().0;
        assert!(why.starts_with("malformed manual action"), "{why}");
        let why = parse(json!({"action": "rollback", "service": "b", "force": true})).unwrap_err().0;
        assert!(why.contains("force"), "{why}");
    }
}
