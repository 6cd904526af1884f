//! Inbound JSON → one typed trigger: an ECR push, an ECS deployment change, or a manual action.
//!
//! `aws_lambda_events` has no typed detail for either EventBridge event, and its `eventbridge`
//! feature costs a second proc-macro stack, so the envelope here is our own and small.
//!
//! One file per payload family: `ecr` (a push), `ecs` (a deployment state change), `manual`
//! (an operator's action), `hook` (an ECS lifecycle hook invocation), `probe` (`validate --live`'s
//! request to verify); `envelope` is what every EventBridge event comes in. The ECS ARNs they name are read by `domain::arn`.

mod ecr;
mod ecs;
mod envelope;
pub mod hook;
mod manual;
pub mod probe;

pub use crate::domain::arn::{parse_cluster_arn, parse_service_arn, parse_service_deployment_arn, ServiceArn};
pub use ecr::PushEvent;
pub use ecs::{DeploymentState, EcsDeploymentEvent};
pub use manual::{ManualAction, RollbackTo};

use envelope::Envelope;

use serde_json::Value;

use crate::domain::error::InputError;
use crate::domain::image::truncate;

/// Largest payload accepted; EventBridge events are at most 256 KiB.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A successful, tagged image push.
    Push(PushEvent),
    /// An ECR event that never deploys (delete, failed push, untagged push), with the reason.
    IgnoredEcr { event_id: String, reason: String },
    /// An ECS deployment state change.
    EcsDeployment(EcsDeploymentEvent),
    /// An operator's direct invocation.
    Manual(ManualAction),
}

/// Parses raw invocation bytes into a trigger.
pub fn parse_bytes(bytes: &[u8]) -> Result<Trigger, InputError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(InputError::new(format!("event is {} bytes; at most {MAX_EVENT_BYTES} are accepted", bytes.len())));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| InputError::new(format!("event is not valid JSON: {e}")))?;
    parse(value)
}

/// Parses an invocation payload into a trigger.
pub fn parse(value: Value) -> Result<Trigger, InputError> {
    let Value::Object(obj) = &value else {
        return Err(InputError::new("event must be a JSON object"));
    };
    if obj.contains_key("action") {
        return manual::parse_manual(value).map(Trigger::Manual);
    }
    if !obj.contains_key("detail-type") {
        return Err(InputError::new(
            "event is neither an EventBridge event (no \"detail-type\") nor a manual action (no \"action\")",
        ));
    }
    let env: Envelope =
        serde_json::from_value(value).map_err(|e| InputError::new(format!("malformed EventBridge envelope: {e}")))?;
    if env.id.is_empty()
        || env.id.len() > 128
        || !env.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(InputError::new(format!("event id {:?} is not an EventBridge event id", truncate(&env.id))));
    }
    if env.account.len() != 12 || !env.account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InputError::new(format!("account {:?} is not a 12-digit AWS account id", truncate(&env.account))));
    }
    if !is_region(&env.region) {
        return Err(InputError::new(format!("region {:?} is not an AWS region", truncate(&env.region))));
    }
    let detail =
        env.detail.clone().ok_or_else(|| InputError::new(format!("{} event has no detail", env.detail_type)))?;
    match (env.source.as_str(), env.detail_type.as_str()) {
        ("aws.ecr", "ECR Image Action") => {
            let event_id = env.id.clone();
            ecr::parse_ecr(env, detail).map(|a| match a {
                ecr::EcrAction::Push(p) => Trigger::Push(*p),
                ecr::EcrAction::Ignored(reason) => Trigger::IgnoredEcr { event_id, reason },
            })
        }
        ("aws.ecs", "ECS Deployment State Change") => ecs::parse_ecs(env, detail).map(Trigger::EcsDeployment),
        (source, dt) => Err(InputError::new(format!(
            "unsupported event {:?} from {:?}: pushdeploy takes ECR Image Action and ECS Deployment State Change",
            truncate(dt),
            truncate(source)
        ))),
    }
}

fn is_region(s: &str) -> bool {
    (4..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().last().is_some_and(|b| b.is_ascii_digit())
}

/// What the tests of every payload family share: the sample push.
#[cfg(test)]
mod test_support {
    use serde_json::Value;

    pub fn push() -> Value {
        serde_json::from_str(include_str!("../../events/ecr-push-frontend.json")).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::test_support::push;
    use serde_json::json;

    #[test]
    fn bad_input_is_rejected_with_reason() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "JSON object"),
            (json!({"hello": 1}), "neither"),
            (json!({"action": "destroy", "service": "x"}), "unknown action"),
            (json!({"action": "deploy", "service": "x"}), "tag"),
            (json!({"action": "deploy", "service": 7, "tag": "v1"}), "malformed"),
            (json!({"action": "redeploy", "service": "x", "extra": 1}), "extra"),
            (json!({"action": "deploy", "service": "x", "tag": "a".repeat(300)}), "tag"),
        ];
        for (v, want) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.0.contains(want), "{v}: {e}");
        }
        let mut e = push();
        e.as_object_mut().unwrap().remove("detail");
        assert!(parse(e).unwrap_err().0.contains("no detail"));
        let mut e = push();
        e["detail"]["image-digest"] = json!("md5:abc");
        assert!(parse(e).unwrap_err().0.contains("sha256"));
        let mut e = push();
        e["detail"]["repository-name"] = json!("../../etc");
        assert!(parse(e).is_err());
        let mut e = push();
        e["account"] = json!(123);
        assert!(parse(e).unwrap_err().0.contains("malformed"));
        assert!(parse_bytes(b"{not json").unwrap_err().0.contains("not valid JSON"));
        // JSON bombs: nesting beyond serde_json's recursion limit, and sheer size.
        let deep = format!("{}{}", "[".repeat(150_000), "]".repeat(150_000));
        assert!(parse_bytes(deep.as_bytes()).unwrap_err().0.contains("at most"), "size is checked first");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_bytes(deep.as_bytes()).unwrap_err().0.contains("recursion limit"));
        let wide = format!("{{\"action\":\"plan\",\"service\":\"{}\"}}", "é".repeat(100_000));
        assert!(parse_bytes(wide.as_bytes()).is_err());
        assert!(parse_bytes(&vec![b' '; MAX_EVENT_BYTES + 1]).is_err());
    }

    #[test]
    fn every_sample_event_is_accepted_by_the_function_it_targets() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let bytes = std::fs::read(&path).unwrap();
            if name.starts_with("ecs-hook-") {
                // Lifecycle hook invocations are verify's too, and not events (see hook.rs's tests).
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                assert!(crate::inbound::hook::is_hook_payload(&v) && crate::inbound::hook::parse(&v).is_ok(), "{name}");
                seen += 1;
                continue;
            }
            let trigger = parse_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            match trigger {
                Trigger::EcsDeployment(_) => assert!(name.starts_with("ecs-"), "{name} goes to verify"),
                Trigger::Push(_) => assert!(name.starts_with("ecr-push"), "{name} goes to deploy"),
                Trigger::Manual(m) => {
                    assert_eq!(name, format!("{}.json", if m.verb() == "deploy" { "deploy-tag" } else { m.verb() }))
                }
                // The sample of what must never deploy: a cosign signature pushed next to the image.
                Trigger::IgnoredEcr { reason, .. } if name == "ecr-push-signature.json" => {
                    assert!(reason.contains("cosign signature"), "{reason}")
                }
                Trigger::IgnoredEcr { reason, .. } => panic!("{name} would be ignored: {reason}"),
            }
            seen += 1;
        }
        assert_eq!(seen, 14);
    }
}
