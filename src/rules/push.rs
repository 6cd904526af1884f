//! Whether a deploy acts on a push at all, before any service is looked at: a push for another
//! region or account is refused, and a push whose tag has moved on (or was deleted, or names no
//! image) is answered for every matched service without a rollout. Pure.

use crate::domain::image::Digest;
use crate::domain::media_type;
use crate::inbound::PushEvent;
use crate::rules::outcome::Outcome;
use crate::rules::plan::{self, Freshness};

/// What ECR says the pushed tag names now (read from `DescribeImages`).
#[derive(Debug, Clone, Copy)]
pub struct TagNow<'a> {
    /// The registry (account) holding it.
    pub registry_id: &'a str,
    /// The digest the tag points at.
    pub digest: &'a Digest,
    /// ECR's `artifactMediaType`.
    pub artifact_media_type: Option<&'a str>,
    /// ECR's `imageManifestMediaType`.
    pub manifest_media_type: Option<&'a str>,
}

/// Why a push for another region or account is refused before any lease is taken (a foreign
/// event must not rewrite a lease or wait on one); `None` when it is this function's to deploy.
/// `account` is the function's own, when Lambda said.
pub fn foreign(push: &PushEvent, region: &str, account: Option<&str>) -> Option<String> {
    if push.region != region {
        return Some(format!("push is for region {} but this function deploys in {region}", push.region));
    }
    let own = account.filter(|own| *own != push.account)?;
    Some(format!(
        "push is for account {} but this function runs in account {own}: only pushes to its own registry are deployed",
        push.account
    ))
}

/// Why a push whose tag lives in another account's registry is refused.
pub fn foreign_registry(push: &PushEvent, now: Option<TagNow<'_>>) -> Option<String> {
    let now = now.filter(|t| t.registry_id != push.account)?;
    Some(format!("push is for account {} but this function's registry is {}", push.account, now.registry_id))
}

/// What every matched service answers when the push is not rolled out: its tag moved on to a
/// newer push or is gone, or (when the event did not say) ECR says it names no image. `None`
/// when the push is current and is rolled out.
pub fn not_current(push: &PushEvent, now: Option<TagNow<'_>>) -> Option<(Outcome, String)> {
    let freshness = plan::freshness(push.digest(), now.map(|t| t.digest));
    // The event may not say what was pushed; ECR's own answer then decides.
    let event_media = (push.artifact_media_type.as_deref(), push.manifest_media_type.as_deref());
    let not_image = now
        .filter(|_| media_type::unknown(event_media.0, event_media.1))
        .and_then(|t| media_type::not_an_image(push.tag(), t.artifact_media_type, t.manifest_media_type));
    match freshness {
        Freshness::Current if not_image.is_some() => Some((Outcome::Ignored, not_image.unwrap_or_default())),
        Freshness::Current => None,
        Freshness::Superseded { now } => Some((
            Outcome::Superseded,
            format!("{}:{} now points at {}, a newer push", push.image.repository, push.tag(), now.short()),
        )),
        Freshness::TagGone => {
            Some((Outcome::Ignored, format!("tag {}:{} no longer exists in ECR", push.image.repository, push.tag())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::taskdef::tests::{pushed, DIGEST};

    fn push() -> PushEvent {
        PushEvent {
            event_id: "evt-1".into(),
            time: None,
            account: "123456789012".into(),
            region: "ap-southeast-2".into(),
            image: pushed(),
            artifact_media_type: None,
            manifest_media_type: None,
        }
    }

    fn now<'a>(registry_id: &'a str, digest: &'a Digest, artifact: Option<&'a str>) -> TagNow<'a> {
        TagNow { registry_id, digest, artifact_media_type: artifact, manifest_media_type: None }
    }

    #[test]
    fn a_push_for_another_region_or_account_is_foreign_and_its_own_is_not() {
        let p = push();
        assert_eq!(foreign(&p, "ap-southeast-2", Some("123456789012")), None);
        assert_eq!(foreign(&p, "ap-southeast-2", None), None, "an account Lambda did not name decides nothing");
        assert!(foreign(&p, "us-east-1", None).unwrap().starts_with("push is for region ap-southeast-2"));
        let other = foreign(&p, "ap-southeast-2", Some("210987654321")).unwrap();
        assert!(other.contains("this function runs in account 210987654321"), "{other}");
        let digest = Digest::parse(DIGEST).unwrap();
        assert_eq!(foreign_registry(&p, Some(now("123456789012", &digest, None))), None);
        assert!(foreign_registry(&p, Some(now("210987654321", &digest, None))).is_some());
    }

    #[test]
    fn a_tag_moved_on_or_gone_or_naming_no_image_answers_every_service() {
        let p = push();
        let same = Digest::parse(DIGEST).unwrap();
        assert_eq!(not_current(&p, Some(now("123456789012", &same, None))), None);
        let newer = Digest::parse(&format!("sha256:{}", "2".repeat(64))).unwrap();
        let (outcome, reason) = not_current(&p, Some(now("123456789012", &newer, None))).unwrap();
        assert_eq!(outcome, Outcome::Superseded);
        assert!(reason.ends_with("a newer push"), "{reason}");
        assert_eq!(not_current(&p, None).map(|(o, _)| o), Some(Outcome::Ignored));
        let signature = Some("application/vnd.dev.cosign.artifact.sig.v1+json");
        let not_image = not_current(&p, Some(now("123456789012", &same, signature)));
        assert_eq!(not_image.map(|(o, _)| o), Some(Outcome::Ignored), "ECR says what the event did not");
    }
}
