//! An operator's direct invocation: redeploy, deploy a tag, roll back, or plan.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::error::InputError;
use crate::domain::image::{truncate, validate_tag, Digest};

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
    /// Return to the last verified deployment before the current one, or to the revision `to`
    /// names, which ECS's own history must show the service ran.
    Rollback {
        /// Configured service name.
        service: String,
        /// A revision (`family:N` or its ARN) or an image digest (`sha256:…`) of the service's
        /// repository; checked with [`RollbackTo::parse`].
        #[serde(default)]
        to: Option<String>,
        /// With `to`: return to it even when pushdeploy rolled its digest back.
        #[serde(default)]
        force: bool,
        /// Answer which target it would choose and why, changing nothing.
        #[serde(default)]
        dry_run: bool,
        /// Who asked, in the invoker's own words (the CLI sends its caller's name): recorded, not
        /// verified; CloudTrail's Invoke record with the request id is the proof.
        #[serde(default)]
        requested_by: Option<String>,
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
            | ManualAction::Rollback { service, .. }
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
        ManualAction::Rollback { to, force, requested_by, .. } => {
            if let Some(to) = to {
                RollbackTo::parse(to)?;
            } else if *force {
                return Err(InputError::new("rollback: force goes with to (a revision or digest to return to)"));
            }
            if let Some(by) = requested_by {
                check_short("requested_by", by)?;
            }
        }
        _ => {}
    }
    Ok(manual)
}

/// Where an operator's `rollback --to` returns a service: what they named, checked for shape only
/// (whether the service ran it is ECS's history's to say, [`crate::rules::rollback_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTo {
    /// A task definition revision: `family:N`, or its ARN (then only that very ARN matches).
    Revision(String),
    /// An image digest of the service's repository.
    Digest(Digest),
}

impl RollbackTo {
    /// `sha256:<64 hex>`, `family:N`, or `arn:…:task-definition/family:N`.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        if s.starts_with("sha256:") {
            return Ok(RollbackTo::Digest(Digest::parse(s)?));
        }
        let short = match s.strip_prefix("arn:") {
            Some(rest) => rest.split_once(":task-definition/").map(|(_, td)| td),
            None => Some(s),
        };
        let well_formed = short.and_then(|td| td.rsplit_once(':')).is_some_and(|(family, n)| {
            (1..=255).contains(&family.len())
                && family.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !n.is_empty()
                && n.len() <= 9
                && n.bytes().all(|b| b.is_ascii_digit())
                && !n.starts_with('0')
        });
        if !well_formed || s.len() > 512 || s.chars().any(char::is_control) {
            return Err(InputError::new(format!(
                "rollback to {:?}: name a task definition revision (family:N or its ARN) or an image digest (sha256: and 64 hex characters)",
                truncate(s)
            )));
        }
        Ok(RollbackTo::Revision(s.to_string()))
    }

    /// As the operator named it.
    pub fn as_str(&self) -> &str {
        match self {
            RollbackTo::Revision(r) => r,
            RollbackTo::Digest(d) => d.as_str(),
        }
    }
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
        assert!(why.contains("force goes with to"), "{why}");
    }

    #[test]
    fn a_rollback_target_is_a_revision_or_a_digest_and_nothing_else() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            parse(json!({"action": "rollback", "service": "backend", "to": "todo-backend:3", "force": true})).unwrap(),
            Trigger::Manual(ManualAction::Rollback {
                service: "backend".into(),
                to: Some("todo-backend:3".into()),
                force: true,
                dry_run: false,
                requested_by: None,
            })
        );
        assert_eq!(RollbackTo::parse(&digest).unwrap(), RollbackTo::Digest(Digest::parse(&digest).unwrap()));
        let arn = "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-backend:12";
        assert_eq!(RollbackTo::parse(arn).unwrap(), RollbackTo::Revision(arn.into()));
        for bad in [
            "todo-backend",
            "todo-backend:0",
            "todo-backend:x",
            "a b:1",
            "sha256:abc",
            ":3",
            "arn:aws:ecs:r:1:service/c/s",
        ] {
            let event = json!({"action": "rollback", "service": "backend", "to": bad});
            let why = parse(event).unwrap_err().0;
            assert!(why.contains("rollback to") || why.contains("digest"), "{bad}: {why}");
        }
        let event = json!({"action": "rollback", "service": "b", "dry_run": true, "requested_by": "x\u{1b}[2J"});
        assert!(parse(event).unwrap_err().0.starts_with("requested_by"));
    }
}
