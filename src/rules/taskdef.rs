//! Pure task definition work: which containers a push changes, and the copy with new images.

use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};
use serde::Serialize;

use crate::config::ServiceConfig;
use crate::domain::error::InputError;
use crate::domain::image::ImageRef;

/// One container's image before and after a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerChange {
    /// Container name.
    pub container: String,
    /// Image it runs now.
    pub from: String,
    /// Image it will run.
    pub to: String,
}

/// Kept here too for the paths of before issue 23 (`taskdef::short_name`).
pub use crate::domain::names::short_name;

/// The containers of `td` that a push of `image` updates for `svc`, with their current images.
pub fn select_containers(
    td: &TaskDefinition,
    svc: &ServiceConfig,
    image: &ImageRef,
) -> Result<Vec<(String, String)>, InputError> {
    let defs = td.container_definitions();
    let name_of = |c: &ContainerDefinition| c.name().unwrap_or_default().to_string();
    let image_of = |c: &ContainerDefinition| c.image().unwrap_or_default().to_string();
    let td_name = td.task_definition_arn().map(short_name).unwrap_or("the current task definition");
    match &svc.containers {
        Some(wanted) => wanted
            .iter()
            .map(|w| {
                defs.iter()
                    .find(|c| c.name() == Some(w.as_str()))
                    .map(|c| (name_of(c), image_of(c)))
                    .ok_or_else(|| {
                        let names: Vec<String> = defs.iter().map(name_of).collect();
                        InputError::new(format!(
                            "service {}: container {w:?} is not in {td_name} (it has {names:?}); fix `containers` in the config",
                            svc.name
                        ))
                    })
            })
            .collect(),
        None => {
            let matched: Vec<(String, String)> = defs
                .iter()
                .filter(|c| c.image().and_then(|i| ImageRef::parse(i).ok()).is_some_and(|i| i.same_repository(image)))
                .map(|c| (name_of(c), image_of(c)))
                .collect();
            if matched.is_empty() {
                return Err(InputError::new(format!(
                    "service {}: no container in {td_name} runs an image from {}; set `containers` in the config",
                    svc.name,
                    image.name()
                )));
            }
            Ok(matched)
        }
    }
}

/// A copy of `td` with only the changed containers' images replaced; every other field is kept.
pub fn with_images(td: &TaskDefinition, changes: &[ContainerChange]) -> TaskDefinition {
    let mut copy = td.clone();
    copy.container_definitions = Some(
        td.container_definitions()
            .iter()
            .map(|c| match changes.iter().find(|ch| c.name() == Some(ch.container.as_str())) {
                Some(ch) => {
                    let mut c = c.clone();
                    c.image = Some(ch.to.clone());
                    c
                }
                None => c.clone(),
            })
            .collect(),
    );
    copy
}

/// The copy of `td` a rollback returns to: every image named only by tag pinned to the digest
/// that container ran (`digests`, as ECS resolved it), since the tag may point at the very build
/// being rolled back by now. `None` when `td` names no image by tag (nothing to pin).
///
/// A container in `required` (the ones pushdeploy deploys) without a known digest refuses the
/// rollback; any other (a sidecar) is left on its tag.
pub fn pin_to_digests(
    td: &TaskDefinition,
    digests: &std::collections::BTreeMap<String, String>,
    required: &[String],
) -> Result<Option<(TaskDefinition, Vec<ContainerChange>)>, String> {
    let mut changes = Vec::new();
    let mut unknown = Vec::new();
    for c in td.container_definitions() {
        let (name, image) = (c.name().unwrap_or_default(), c.image().unwrap_or_default());
        let Ok(mut parsed) = ImageRef::parse(image) else { continue };
        if parsed.digest.is_some() {
            continue;
        }
        match digests.get(name).map(|d| crate::domain::image::Digest::parse(d)) {
            Some(Ok(digest)) => {
                parsed.digest = Some(digest);
                let to = parsed.pinned_uri().expect("a digest was just set");
                changes.push(ContainerChange { container: name.to_string(), from: image.to_string(), to });
            }
            _ if required.iter().any(|r| r == name) => unknown.push(format!("{name} ({image})")),
            _ => {}
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "{} names {} by tag and the digest it ran is unknown (ECS reported no deployment of it), so a rollback would run whatever the tag points at now",
            td.task_definition_arn().map(short_name).unwrap_or("the revision to return to"),
            unknown.join(", ")
        ));
    }
    Ok((!changes.is_empty()).then(|| (with_images(td, &changes), changes)))
}

/// True when `registered` is `wanted` as ECS keeps it: the same family, containers and every
/// task-level setting that decides what runs and as whom (a revision number and status aside).
pub fn same_definition(registered: &TaskDefinition, wanted: &TaskDefinition) -> bool {
    registered.family() == wanted.family()
        && registered.container_definitions() == wanted.container_definitions()
        && registered.task_role_arn() == wanted.task_role_arn()
        && registered.execution_role_arn() == wanted.execution_role_arn()
        && registered.network_mode() == wanted.network_mode()
        && registered.volumes() == wanted.volumes()
        && registered.cpu() == wanted.cpu()
        && registered.memory() == wanted.memory()
        && registered.requires_compatibilities() == wanted.requires_compatibilities()
        && registered.runtime_platform() == wanted.runtime_platform()
        && registered.proxy_configuration() == wanted.proxy_configuration()
        && registered.pid_mode() == wanted.pid_mode()
        && registered.ipc_mode() == wanted.ipc_mode()
        && registered.ephemeral_storage() == wanted.ephemeral_storage()
        && registered.placement_constraints() == wanted.placement_constraints()
}

/// What differs between the revision a service runs and the one a rollout would register, one
/// line per field (`backend.environment.TODO_ENV: "prod" → "staging"`), for `plan`.
pub fn differences(running: &TaskDefinition, proposed: &TaskDefinition) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name}: {a} → {b}"));
        }
    };
    field("cpu", text(running.cpu()), text(proposed.cpu()));
    field("memory", text(running.memory()), text(proposed.memory()));
    field("taskRoleArn", text(running.task_role_arn()), text(proposed.task_role_arn()));
    field("executionRoleArn", text(running.execution_role_arn()), text(proposed.execution_role_arn()));
    field("networkMode", debug(&running.network_mode()), debug(&proposed.network_mode()));
    field("volumes", debug(&running.volumes()), debug(&proposed.volumes()));
    field("placementConstraints", debug(&running.placement_constraints()), debug(&proposed.placement_constraints()));
    field("runtimePlatform", debug(&running.runtime_platform()), debug(&proposed.runtime_platform()));
    field("ephemeralStorage", debug(&running.ephemeral_storage()), debug(&proposed.ephemeral_storage()));
    field("proxyConfiguration", debug(&running.proxy_configuration()), debug(&proposed.proxy_configuration()));
    let (was, will) = (running.container_definitions(), proposed.container_definitions());
    for c in was.iter().filter(|c| !will.iter().any(|p| p.name() == c.name())) {
        out.push(format!("{}: removed", c.name().unwrap_or_default()));
    }
    for p in will {
        match was.iter().find(|c| c.name() == p.name()) {
            Some(c) => container_differences(c, p, &mut out),
            None => out.push(format!("{}: added ({})", p.name().unwrap_or_default(), p.image().unwrap_or_default())),
        }
    }
    out
}

/// A text field as a person reads it: quoted, or `(none)`.
fn text(v: Option<&str>) -> String {
    v.map_or("(none)".to_string(), |v| format!("{v:?}"))
}

/// Any other field, as its Debug form.
fn debug(v: &dyn std::fmt::Debug) -> String {
    format!("{v:?}")
}

/// The lines of [`differences`] for one container that `running` (`c`) and `proposed` (`p`) share.
fn container_differences(c: &ContainerDefinition, p: &ContainerDefinition, out: &mut Vec<String>) {
    let name = p.name().unwrap_or_default();
    let mut field = |f: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name}.{f}: {a} → {b}"));
        }
    };
    field("image", text(c.image()), text(p.image()));
    let env = |c: &ContainerDefinition| -> std::collections::BTreeMap<String, String> {
        c.environment()
            .iter()
            .map(|kv| (kv.name().unwrap_or_default().into(), kv.value().unwrap_or_default().into()))
            .collect()
    };
    let secrets = |c: &ContainerDefinition| -> std::collections::BTreeMap<String, String> {
        c.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect()
    };
    for (kind, a, b) in [("environment", env(c), env(p)), ("secrets", secrets(c), secrets(p))] {
        for key in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
            field(&format!("{kind}.{key}"), text(a.get(key).map(String::as_str)), text(b.get(key).map(String::as_str)));
        }
    }
    field("cpu", debug(&c.cpu()), debug(&p.cpu()));
    field("memory", debug(&c.memory()), debug(&p.memory()));
    field("memoryReservation", debug(&c.memory_reservation()), debug(&p.memory_reservation()));
    field("command", debug(&c.command()), debug(&p.command()));
    field("entryPoint", debug(&c.entry_point()), debug(&p.entry_point()));
    field("portMappings", debug(&c.port_mappings()), debug(&p.port_mappings()));
    field("healthCheck", debug(&c.health_check()), debug(&p.health_check()));
    field("logConfiguration", debug(&c.log_configuration()), debug(&p.log_configuration()));
    field("essential", debug(&c.essential()), debug(&p.essential()));
    field("dependsOn", debug(&c.depends_on()), debug(&p.depends_on()));
    field("mountPoints", debug(&c.mount_points()), debug(&p.mount_points()));
}

/// The fields [`differences`] lines name, without their values (`backend.environment.TODO_ENV`,
/// `backend: removed`): for text that is logged, where an environment's values do not belong.
pub fn changed_fields(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| if l.ends_with(": removed") { l.as_str() } else { l.split_once(": ").map_or(l.as_str(), |(f, _)| f) })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, Secret};

    pub const REG: &str = "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com";
    pub const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    pub fn td(containers: &[(&str, &str)]) -> TaskDefinition {
        TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-frontend:7")
            .family("todo-frontend")
            .set_container_definitions(Some(
                containers
                    .iter()
                    .map(|(n, i)| {
                        ContainerDefinition::builder()
                            .name(*n)
                            .image(*i)
                            .environment(KeyValuePair::builder().name("A").value("1").build())
                            .secrets(Secret::builder().name("S").value_from("arn:aws:ssm:x").build().unwrap())
                            .build()
                    })
                    .collect(),
            ))
            .build()
    }

    pub fn svc(extra: &str) -> ServiceConfig {
        let text = format!(
            "[[service]]\nname='frontend'\nservice='todo-frontend'\ncluster='todo-cluster'\nrepository='todo-frontend'\ntags=['latest']\n{extra}"
        );
        Config::parse(&text, "t.toml").unwrap().services.remove(0)
    }

    pub fn pushed() -> ImageRef {
        ImageRef::parse(&format!("{REG}/todo-frontend:latest@{DIGEST}")).unwrap()
    }

    #[test]
    fn differences_name_each_changed_field() {
        let running = td(&[("frontend", &format!("{REG}/todo-frontend@{DIGEST}"))]);
        let mut proposed = running.clone();
        proposed.cpu = Some("512".into());
        let mut c = proposed.container_definitions()[0].clone();
        c.environment = Some(vec![KeyValuePair::builder().name("A").value("2").build()]);
        proposed.container_definitions = Some(vec![c]);
        assert_eq!(
            differences(&running, &proposed),
            ["cpu: (none) → \"512\"", "frontend.environment.A: \"1\" → \"2\""]
        );
        assert!(differences(&running, &running).is_empty());
        let lines = differences(&running, &proposed);
        assert_eq!(changed_fields(&lines), ["cpu", "frontend.environment.A"], "names without values");
        let gone = vec!["log_router: removed".to_string(), "envoy: added (envoy:1)".to_string()];
        assert_eq!(changed_fields(&gone), ["log_router: removed", "envoy"]);
    }

    #[test]
    fn a_rollback_target_is_pinned_to_the_digests_that_ran() {
        let other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        let target = td(&[
            ("frontend", &format!("{REG}/todo-frontend:latest")),
            ("log_router", "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"),
        ]);
        let ran: std::collections::BTreeMap<String, String> =
            [("frontend".to_string(), DIGEST.to_string()), ("log_router".to_string(), other.to_string())].into();
        let (copy, changes) = pin_to_digests(&target, &ran, &["frontend".into()]).unwrap().unwrap();
        let images: Vec<&str> = copy.container_definitions().iter().map(|c| c.image().unwrap()).collect();
        assert_eq!(
            images,
            [
                format!("{REG}/todo-frontend@{DIGEST}"),
                format!("public.ecr.aws/aws-observability/aws-for-fluent-bit@{other}")
            ]
        );
        assert_eq!(changes.len(), 2);
        assert_eq!(copy.container_definitions()[0].environment(), target.container_definitions()[0].environment());

        // A sidecar without a known digest stays on its tag; the deployed container may not.
        let only_app: std::collections::BTreeMap<String, String> =
            [("frontend".to_string(), DIGEST.to_string())].into();
        let (copy, _) = pin_to_digests(&target, &only_app, &["frontend".into()]).unwrap().unwrap();
        assert!(copy.container_definitions()[1].image().unwrap().ends_with(":stable"));
        let none = std::collections::BTreeMap::new();
        let refused = pin_to_digests(&target, &none, &["frontend".into()]).unwrap_err();
        assert!(refused.contains("todo-frontend:7 names frontend") && refused.contains("by tag"), "{refused}");

        // Already pinned: nothing to do.
        let pinned = td(&[("frontend", &format!("{REG}/todo-frontend@{DIGEST}"))]);
        assert!(pin_to_digests(&pinned, &none, &["frontend".into()]).unwrap().is_none());
    }

    #[test]
    fn default_selection_is_every_container_from_the_repository() {
        let t = td(&[
            ("web", &format!("{REG}/todo-frontend:latest")),
            ("log_router", "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"),
            ("other", &format!("{REG}/todo-backend:latest")),
        ]);
        let sel = select_containers(&t, &svc(""), &pushed()).unwrap();
        assert_eq!(sel, vec![("web".to_string(), format!("{REG}/todo-frontend:latest"))]);
    }

    #[test]
    fn named_containers_must_exist() {
        let t = td(&[("web", "nginx")]);
        assert_eq!(select_containers(&t, &svc("containers=['web']"), &pushed()).unwrap()[0].0, "web");
        let e = select_containers(&t, &svc("containers=['api']"), &pushed()).unwrap_err();
        assert!(e.0.contains("\"api\" is not in todo-frontend:7"), "{e}");
        let e = select_containers(&t, &svc(""), &pushed()).unwrap_err();
        assert!(e.0.contains("no container"), "{e}");
    }

    #[test]
    fn copy_changes_only_the_named_images() {
        let t = td(&[("web", "a"), ("sidecar", "b")]);
        let copy = with_images(&t, &[ContainerChange { container: "web".into(), from: "a".into(), to: "c".into() }]);
        let images: Vec<_> = copy.container_definitions().iter().map(|c| c.image().unwrap()).collect();
        assert_eq!(images, vec!["c", "b"]);
        assert_eq!(copy.container_definitions()[0].secrets(), t.container_definitions()[0].secrets());
        assert_eq!(copy.family(), t.family());
    }
}
