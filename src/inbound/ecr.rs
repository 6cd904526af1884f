//! ECR's `ECR Image Action` event: a push that deploys, or why it never does.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::error::InputError;
use crate::domain::image::{truncate, validate_repository, validate_tag, Digest, ImageRef};

use super::envelope::Envelope;

/// A successful push of `repository:tag` at `digest`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushEvent {
    /// EventBridge event id: the trigger recorded in deployment records.
    pub event_id: String,
    /// When ECR reported the push (RFC 3339).
    pub time: Option<String>,
    /// Account that owns the registry.
    pub account: String,
    /// Region of the registry.
    pub region: String,
    /// The pushed image: registry, repository, tag and digest.
    pub image: ImageRef,
    /// The event's `artifact-media-type` (the config's media type), when it says.
    pub artifact_media_type: Option<String>,
    /// The event's `manifest-media-type`, when it says.
    pub manifest_media_type: Option<String>,
}

impl PushEvent {
    /// The pushed tag (always present on a push that deploys).
    pub fn tag(&self) -> &str {
        self.image.tag.as_deref().unwrap_or_default()
    }

    /// The pushed digest.
    pub fn digest(&self) -> &Digest {
        self.image.digest.as_ref().expect("a PushEvent is built with a digest")
    }
}

#[derive(Deserialize)]
struct EcrDetail {
    #[serde(rename = "action-type")]
    action_type: String,
    result: String,
    #[serde(rename = "repository-name")]
    repository_name: String,
    #[serde(rename = "image-digest", default)]
    image_digest: Option<String>,
    #[serde(rename = "image-tag", default)]
    image_tag: Option<String>,
    #[serde(rename = "artifact-media-type", default)]
    artifact_media_type: Option<String>,
    #[serde(rename = "manifest-media-type", default)]
    manifest_media_type: Option<String>,
}

/// What an ECR Image Action is to pushdeploy: a push that deploys, or an event that never
/// deploys, with the reason.
pub(super) enum EcrAction {
    /// A tagged, successful push of an image (boxed: the push is large, the reason small).
    Push(Box<PushEvent>),
    /// Never deploys, and why.
    Ignored(String),
}

pub(super) fn parse_ecr(env: Envelope, detail: Value) -> Result<EcrAction, InputError> {
    let d: EcrDetail = serde_json::from_value(detail)
        .map_err(|e| InputError::new(format!("malformed ECR Image Action detail: {e}")))?;
    validate_repository(&d.repository_name)?;
    let ignored = |reason: String| Ok(EcrAction::Ignored(reason));
    if d.action_type != "PUSH" {
        return ignored(format!("ECR action {} is not a push", truncate(&d.action_type)));
    }
    if d.result != "SUCCESS" {
        return ignored(format!("push result is {}, not SUCCESS", truncate(&d.result)));
    }
    let Some(tag) = d.image_tag.filter(|t| !t.is_empty()) else {
        return ignored("untagged push: only tagged pushes deploy".into());
    };
    validate_tag(&tag)?;
    if let Some(why) = crate::domain::media_type::not_an_image(
        &tag,
        d.artifact_media_type.as_deref(),
        d.manifest_media_type.as_deref(),
    ) {
        return ignored(why);
    }
    let digest_str = d.image_digest.ok_or_else(|| InputError::new("ECR push detail has no image-digest"))?;
    let digest = Digest::parse(&digest_str)?;
    let image = ImageRef {
        registry: ImageRef::ecr_registry(&env.account, &env.region),
        repository: d.repository_name,
        tag: Some(tag),
        digest: Some(digest),
    };
    Ok(EcrAction::Push(Box::new(PushEvent {
        event_id: env.id,
        time: env.time,
        account: env.account,
        region: env.region,
        image,
        artifact_media_type: d.artifact_media_type,
        manifest_media_type: d.manifest_media_type,
    })))
}

#[cfg(test)]
mod tests {
    use crate::inbound::parse;
    use crate::inbound::test_support::push;
    use crate::inbound::Trigger;
    use serde_json::json;

    #[test]
    fn parses_the_sample_push() {
        let Trigger::Push(p) = parse(push()).unwrap() else { panic!("not a push") };
        assert_eq!(p.image.registry, "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com");
        assert_eq!(p.image.repository, "todo-frontend");
        assert_eq!(p.tag(), "latest");
        assert_eq!(p.event_id, "13cde686-328b-6117-af20-0e5566167482");
    }

    #[test]
    fn non_deploying_ecr_events_are_ignored_with_reason() {
        let mut e = push();
        e["detail"]["action-type"] = json!("DELETE");
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("DELETE")));
        let mut e = push();
        e["detail"]["result"] = json!("FAILURE");
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("FAILURE")));
        let mut e = push();
        e["detail"].as_object_mut().unwrap().remove("image-tag");
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("untagged")));
        let mut e = push();
        e["detail"]["image-tag"] = json!(format!("sha256-{}.sig", "ab".repeat(32)));
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("cosign signature")));
        let mut e = push();
        e["detail"]["artifact-media-type"] = json!("application/vnd.cncf.helm.config.v1+json");
        assert!(
            matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("not a container image"))
        );
        let mut e = push();
        e["detail"]["manifest-media-type"] = json!("application/vnd.oci.image.index.v1+json");
        assert!(matches!(parse(e).unwrap(), Trigger::Push(p) if p.manifest_media_type.is_some()), "an index deploys");
    }
}
