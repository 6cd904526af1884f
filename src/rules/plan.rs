//! Pure decisions: which services a push matches, whether it is still current, and what to change.

use aws_sdk_ecs::types::{Tag, TaskDefinition};

use crate::config::{Config, ServiceConfig, Strategy};
use crate::domain::artifact::image_definitions;
use crate::domain::error::InputError;
use crate::domain::image::{Digest, ImageRef};
use crate::rules::taskdef::{differences, select_containers, with_images, ContainerChange};

/// The services whose repository and tag patterns match a pushed image.
pub fn match_push<'a>(config: &'a Config, image: &ImageRef) -> Vec<&'a ServiceConfig> {
    let tag = image.tag.as_deref().unwrap_or_default();
    config.services.iter().filter(|s| s.watches(&image.repository, tag)).collect()
}

/// Whether an event's digest is still what its tag points at in ECR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// The tag still points at the event's digest.
    Current,
    /// The tag has moved on to another digest since.
    Superseded {
        /// The tag's digest now.
        now: Digest,
    },
    /// The tag no longer exists in ECR.
    TagGone,
}

/// Compares the event's digest with the tag's digest in ECR now; arrival order never decides.
pub fn freshness(event: &Digest, tag_now: Option<&Digest>) -> Freshness {
    match tag_now {
        Some(now) if now == event => Freshness::Current,
        Some(now) => Freshness::Superseded { now: now.clone() },
        None => Freshness::TagGone,
    }
}

/// What a rollout will do to ECS.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The service already runs this image: nothing to do.
    Unchanged,
    /// Register this copy of the task definition and update the service to it.
    Register(Box<TaskDefinition>),
    /// Keep the task definition and force new tasks.
    ForceNewDeployment,
}

impl Action {
    /// A short name for answers and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Unchanged => "unchanged",
            Action::Register(_) => "register-task-definition",
            Action::ForceNewDeployment => "force-new-deployment",
        }
    }
}

/// The plan for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// What to do.
    pub action: Action,
    /// Containers whose image changes (empty for unchanged and force-new).
    pub changes: Vec<ContainerChange>,
    /// Names of the containers the push is for.
    pub containers: Vec<String>,
    /// The digest-pinned image URI.
    pub image_uri: String,
    /// The `imagedefinitions.json` bytes this rollout records.
    pub image_definitions: Vec<u8>,
    /// With a base other than what runs: every field the copy changes besides the pushed image
    /// (`backend.environment.TODO_ENV: "prod" → "staging"`), what the base's registrant decided.
    pub base_changes: Vec<String>,
}

/// Decides what a rollout of `image` does to a service running `current`.
///
/// `previous_definitions` is the service's last `imagedefinitions.json`, which is how a
/// tag-based (`force-new-deployment`) service knows it already runs a digest. `force` is
/// `redeploy`: roll new tasks even when nothing changed.
pub fn plan_service(
    svc: &ServiceConfig,
    image: &ImageRef,
    current: &TaskDefinition,
    base: Option<&TaskDefinition>,
    previous_definitions: Option<&[u8]>,
    force: bool,
) -> Result<ServicePlan, InputError> {
    let image_uri = image.pinned_uri().ok_or_else(|| InputError::new(format!("image {image} has no digest to pin")))?;
    // With a base other than what runs (`base = "family"` and a revision the service does not run
    // yet), the copy is of the base, even when the image is the same: its settings are new.
    if let (Some(base), Strategy::PinDigest) = (base, svc.strategy) {
        let selected = select_containers(base, svc, image)?;
        let containers: Vec<String> = selected.iter().map(|(n, _)| n.clone()).collect();
        let changes: Vec<ContainerChange> = selected
            .into_iter()
            .map(|(container, from)| ContainerChange { container, from, to: image_uri.clone() })
            .collect();
        let defs = image_definitions(&containers, &image_uri);
        let copy = with_images(base, &changes);
        // What runs with the pushed image, against the copy: whatever differs is the base's doing.
        let base_changes = differences(&with_images(current, &changes), &copy);
        let action = Action::Register(Box::new(copy));
        return Ok(ServicePlan { action, changes, containers, image_uri, image_definitions: defs, base_changes });
    }
    let selected = select_containers(current, svc, image)?;
    let containers: Vec<String> = selected.iter().map(|(n, _)| n.clone()).collect();
    let defs = image_definitions(&containers, &image_uri);
    let (action, changes) = match svc.strategy {
        Strategy::PinDigest => {
            let changes: Vec<ContainerChange> = selected
                .into_iter()
                .filter(|(_, from)| *from != image_uri)
                .map(|(container, from)| ContainerChange { container, from, to: image_uri.clone() })
                .collect();
            if !changes.is_empty() {
                (Action::Register(Box::new(with_images(current, &changes))), changes)
            } else if force {
                (Action::ForceNewDeployment, changes)
            } else {
                (Action::Unchanged, changes)
            }
        }
        Strategy::ForceNewDeployment => {
            if previous_definitions == Some(defs.as_slice()) && !force {
                (Action::Unchanged, Vec::new())
            } else {
                (Action::ForceNewDeployment, Vec::new())
            }
        }
    };
    Ok(ServicePlan { action, changes, containers, image_uri, image_definitions: defs, base_changes: Vec::new() })
}

pub use crate::domain::names::OWN_TAG_PREFIX;

/// Task definition tag naming the revision a copy was made from (with `base = "family"`, the
/// Terraform-owned revision whose settings it carries).
pub const BASE_TAG: &str = "pushdeploy:base";

/// The revision `tags` say a copy was made from.
pub fn base_of(tags: &[Tag]) -> Option<&str> {
    tags.iter().find(|t| t.key() == Some(BASE_TAG)).and_then(|t| t.value())
}

/// Task definition tag holding the deployed image's push time (epoch seconds), for people reading
/// the revision. Never read back to decide anything: anyone with `ecs:TagResource` can set it (the
/// order of pushes is kept on the deployment records, [`crate::rules::freshness`]).
pub const PUSHED_AT_TAG: &str = "pushdeploy:image-pushed-at";

/// The tags of a copy: the current ones, with pushdeploy's push-time tag set to `pushed_at`.
pub fn tags_for_copy(current: &[Tag], pushed_at: Option<i64>, source: &str) -> Vec<Tag> {
    let mut tags: Vec<Tag> =
        current.iter().filter(|t| t.key() != Some(PUSHED_AT_TAG) && t.key() != Some(BASE_TAG)).cloned().collect();
    if let Some(at) = pushed_at {
        tags.push(Tag::builder().key(PUSHED_AT_TAG).value(at.to_string()).build());
    }
    // The revision this one derives from: a copy of a copy keeps naming the first one.
    let base = base_of(current).unwrap_or(source).to_string();
    tags.push(Tag::builder().key(BASE_TAG).value(base).build());
    tags
}

/// Tags for a rollback's pinned copy of `source`: its own tags (the image, and so its push time,
/// is the same) and the revision it derives from, which marks it as pushdeploy's.
pub fn tags_for_pinned_copy(current: &[Tag], source: &str) -> Vec<Tag> {
    let mut tags: Vec<Tag> = current.iter().filter(|t| t.key() != Some(BASE_TAG)).cloned().collect();
    tags.push(Tag::builder().key(BASE_TAG).value(base_of(current).unwrap_or(source)).build());
    tags
}

/// What `plan` says about how ECS will roll the service out, and where that disagrees with
/// `[service.hook]`: a blue/green service whose hook pushdeploy does not check, or the reverse;
/// and a test listener verify may not reach (`verify_in_vpc`: the stack's VerifySubnetIds).
pub fn rollout_note(svc: &ServiceConfig, rollout: &crate::domain::ecs_view::Rollout, verify_in_vpc: bool) -> String {
    let hooked = !rollout.hook_stages.is_empty();
    let mut note = format!("ECS rolls it out {}", rollout.strategy);
    if hooked {
        note.push_str(&format!(", calling lifecycle hooks at {}", rollout.hook_stages.join(", ")));
    }
    match (&svc.hook, rollout.strategy.as_str(), hooked) {
        (Some(_), "ROLLING", _) | (Some(_), _, false) => note.push_str(
            "; pushdeploy.toml has [service.hook] but ECS calls no hook: add deploymentConfiguration.lifecycleHooks (the book, Blue/green), or verify smoke-tests only after the rollout",
        ),
        (Some(h), _, true) => {
            let unseen: Vec<&str> = h
                .stages
                .iter()
                .map(|s| s.as_str())
                .filter(|s| !rollout.hook_stages.iter().any(|c| c == s))
                .collect();
            if !unseen.is_empty() {
                note.push_str(&format!(
                    "; [service.hook] checks at {} but ECS calls no hook there",
                    unseen.join(", ")
                ));
            }
        }
        (None, _, true) => note.push_str(
            "; pushdeploy.toml has no [service.hook]: if the hook is pushdeploy's verify, it answers SUCCEEDED without checking",
        ),
        (None, _, false) => {}
    }
    if let Some(why) = svc.test_listener_warning(verify_in_vpc) {
        note.push_str(&format!("; warning: {why}"));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::taskdef::tests::{pushed, svc, td, DIGEST, REG};

    #[test]
    fn push_matches_every_service_of_the_repository_and_tag() {
        let text = "[defaults]\ncluster='c'\n\
            [[service]]\nname='web'\nservice='web'\nrepository='app'\ntags=['latest']\n\
            [[service]]\nname='worker'\nservice='worker'\nrepository='app'\ntags=['*']\n\
            [[service]]\nname='other'\nservice='other'\nrepository='other'\ntags=['latest']\n";
        let c = Config::parse(text, "t").unwrap();
        let img = |t: &str| ImageRef::parse(&format!("{REG}/app:{t}@{DIGEST}")).unwrap();
        let names = |i: &ImageRef| match_push(&c, i).iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&img("latest")), vec!["web", "worker"]);
        assert_eq!(names(&img("v2")), vec!["worker"]);
    }

    #[test]
    fn freshness_compares_digests_not_arrival() {
        let a = Digest::parse(DIGEST).unwrap();
        let b = Digest::parse(&DIGEST.replace('1', "2")).unwrap();
        assert_eq!(freshness(&a, Some(&a)), Freshness::Current);
        assert_eq!(freshness(&a, Some(&b)), Freshness::Superseded { now: b.clone() });
        assert_eq!(freshness(&a, None), Freshness::TagGone);
    }

    #[test]
    fn pin_digest_registers_a_copy_then_is_unchanged() {
        let t = td(&[("web", &format!("{REG}/todo-frontend:latest")), ("sidecar", "envoy")]);
        let p = plan_service(&svc(""), &pushed(), &t, None, None, false).unwrap();
        let pinned = format!("{REG}/todo-frontend@{DIGEST}");
        assert_eq!(p.image_uri, pinned);
        assert_eq!(p.changes.len(), 1);
        let Action::Register(new_td) = &p.action else { panic!("{:?}", p.action) };
        assert_eq!(new_td.container_definitions()[0].image(), Some(pinned.as_str()));
        assert_eq!(new_td.container_definitions()[1].image(), Some("envoy"));
        // the same push again, against the task definition it produced
        let again = plan_service(&svc(""), &pushed(), new_td, None, None, false).unwrap();
        assert_eq!(again.action, Action::Unchanged);
        let forced = plan_service(&svc(""), &pushed(), new_td, None, None, true).unwrap();
        assert_eq!(forced.action, Action::ForceNewDeployment);
    }

    #[test]
    fn a_family_base_is_copied_even_with_the_same_image() {
        let pinned = format!("{REG}/todo-frontend@{DIGEST}");
        let running = td(&[("frontend", &pinned)]);
        let mut base = td(&[("frontend", &format!("{REG}/todo-frontend:latest"))]);
        base.cpu = Some("512".into());
        let p = plan_service(&svc(""), &pushed(), &running, Some(&base), None, false).unwrap();
        let Action::Register(copy) = &p.action else { panic!("{:?}", p.action) };
        assert_eq!(copy.cpu(), Some("512"), "the base's settings, not what runs");
        assert_eq!(copy.container_definitions()[0].image(), Some(pinned.as_str()));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.base_changes, ["cpu: (none) → \"512\""], "what changes besides the image");

        // A new image on a base that changes nothing else: no base changes, only the image.
        let same = td(&[("frontend", &format!("{REG}/todo-frontend:latest"))]);
        let older = td(&[("frontend", &format!("{REG}/todo-frontend@sha256:{}", "2".repeat(64)))]);
        let p = plan_service(&svc(""), &pushed(), &older, Some(&same), None, false).unwrap();
        assert!(p.base_changes.is_empty(), "{:?}", p.base_changes);
        assert!(plan_service(&svc(""), &pushed(), &older, None, None, false).unwrap().base_changes.is_empty());
    }

    #[test]
    fn a_copy_keeps_its_tags_shows_its_push_time_and_names_its_base() {
        let app = Tag::builder().key("app").value("todo").build();
        let pushed_at = |tags: &[Tag]| {
            tags.iter()
                .filter(|t| t.key() == Some(PUSHED_AT_TAG))
                .map(|t| t.value().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let tags = tags_for_copy(std::slice::from_ref(&app), Some(200), "td:1");
        assert_eq!(pushed_at(&tags), ["200"]);
        assert_eq!(tags[0], app, "the task definition's own tags are kept");
        assert_eq!(base_of(&tags), Some("td:1"));
        let again = tags_for_copy(&tags, Some(300), "td:2");
        assert_eq!(again.len(), 3, "the old push time is replaced, not duplicated");
        assert_eq!(pushed_at(&again), ["300"]);
        assert_eq!(base_of(&again), Some("td:1"), "a copy of a copy names the first revision");
    }

    #[test]
    fn force_new_deployment_strategy_uses_the_last_artifact() {
        let s = svc("strategy='force-new-deployment'");
        let t = td(&[("web", &format!("{REG}/todo-frontend:latest"))]);
        let p = plan_service(&s, &pushed(), &t, None, None, false).unwrap();
        assert_eq!(p.action, Action::ForceNewDeployment);
        let again = plan_service(&s, &pushed(), &t, None, Some(&p.image_definitions), false).unwrap();
        assert_eq!(again.action, Action::Unchanged);
    }
}

#[cfg(test)]
mod rollout_note_tests {
    use super::*;
    use crate::domain::ecs_view::Rollout;

    fn svc(hook: &str) -> ServiceConfig {
        let text = format!(
            "[[service]]\nname='b'\nservice='s'\ncluster='c'\nrepository='r'\ntags=['latest']\n[service.smoke]\nurl='http://p/'\ntest_url='http://t/'\n[[service.smoke.check]]\npath='/'\n{hook}"
        );
        let text = if hook.is_empty() { text.replace("test_url='http://t/'\n", "") } else { text };
        Config::parse(&text, "t.toml").unwrap().services.remove(0)
    }

    #[test]
    fn plan_names_the_strategy_and_any_disagreement_with_the_hook_config() {
        let bg = Rollout {
            strategy: "BLUE_GREEN".into(),
            hook_stages: vec!["POST_TEST_TRAFFIC_SHIFT".into(), "POST_PRODUCTION_TRAFFIC_SHIFT".into()],
        };
        let hook = "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT','POST_PRODUCTION_TRAFFIC_SHIFT']\n";
        assert_eq!(
            rollout_note(&svc(hook), &bg, false),
            "ECS rolls it out BLUE_GREEN, calling lifecycle hooks at POST_TEST_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT"
        );
        let rolling = Rollout { strategy: "ROLLING".into(), hook_stages: vec![] };
        assert!(rollout_note(&svc(hook), &rolling, false)
            .contains("but ECS calls no hook: add deploymentConfiguration.lifecycleHooks"));
        let canary = hook.replace("'POST_PRODUCTION", "'PRODUCTION_TRAFFIC_SHIFT','POST_PRODUCTION");
        assert!(rollout_note(&svc(&canary), &bg, false)
            .ends_with("[service.hook] checks at PRODUCTION_TRAFFIC_SHIFT but ECS calls no hook there"));
        assert!(rollout_note(&svc(""), &bg, false).ends_with(
            "has no [service.hook]: if the hook is pushdeploy's verify, it answers SUCCEEDED without checking"
        ));
        assert_eq!(rollout_note(&svc(""), &rolling, false), "ECS rolls it out ROLLING");
        // A test listener on its own port, with verify outside the VPC: said, with the fix.
        let mut own_port = svc(hook);
        if let Some(m) = own_port.smoke.as_mut() {
            m.test_url = Some("http://t:8443/".into());
        }
        let note = rollout_note(&own_port, &bg, false);
        assert!(note.contains("; warning: smoke.test_url is on port 8443 and url on 80"), "{note}");
        assert!(!rollout_note(&own_port, &bg, true).contains("warning"), "verify in the VPC reaches it");
    }
}
