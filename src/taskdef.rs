//! Pure task definition work: which containers a push changes, and the copy with new images.

use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};
use serde::Serialize;

use crate::config::ServiceConfig;
use crate::error::InputError;
use crate::image::ImageRef;

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

/// `family:revision` of a task definition, or its ARN's tail.
pub fn short_name(td_arn: &str) -> &str {
    td_arn.rsplit('/').next().unwrap_or(td_arn)
}

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
