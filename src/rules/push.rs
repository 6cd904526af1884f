//! Whether a deploy acts on a push at all, before any service is looked at: a push for another
//! region or account is refused, and a push whose tag has moved on (or was deleted, or names no
//! image) is answered for every matched service without a rollout. Pure.

use crate::event::PushEvent;
use crate::image::Digest;
use crate::media_type;
use crate::outcome::Outcome;
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
