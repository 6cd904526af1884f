//! CodePipeline-compatible artifacts: `imagedefinitions.json` and `imageDetail.json`.

use serde::Serialize;

#[derive(Serialize)]
struct ImageDefinition<'a> {
    name: &'a str,
    #[serde(rename = "imageUri")]
    image_uri: &'a str,
}

#[derive(Serialize)]
struct ImageDetail<'a> {
    #[serde(rename = "ImageURI")]
    image_uri: &'a str,
}

/// `[{"name":…,"imageUri":…}]`, exactly the fields CodePipeline's ECS deploy action reads.
pub fn image_definitions(containers: &[String], image_uri: &str) -> Vec<u8> {
    let defs: Vec<ImageDefinition> = containers.iter().map(|name| ImageDefinition { name, image_uri }).collect();
    serde_json::to_vec(&defs).expect("plain strings always serialize")
}

/// `{"ImageURI":…}`, the CodeDeploy blue/green format.
pub fn image_detail(image_uri: &str) -> Vec<u8> {
    serde_json::to_vec(&ImageDetail { image_uri }).expect("plain strings always serialize")
}

/// S3 key of a service's `imagedefinitions.json`.
pub fn image_definitions_key(cluster: &str, service: &str) -> String {
    format!("imagedefinitions/{cluster}/{service}/imagedefinitions.json")
}

/// S3 key of a service's `imageDetail.json`.
pub fn image_detail_key(cluster: &str, service: &str) -> String {
    format!("imagedefinitions/{cluster}/{service}/imageDetail.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_codepipeline_compatible() {
        let b = image_definitions(&["web".into(), "worker".into()], "r/app@sha256:ab");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"[{"name":"web","imageUri":"r/app@sha256:ab"},{"name":"worker","imageUri":"r/app@sha256:ab"}]"#
        );
        assert_eq!(String::from_utf8(image_detail("r/app@sha256:ab")).unwrap(), r#"{"ImageURI":"r/app@sha256:ab"}"#);
        assert_eq!(image_definitions_key("c", "s"), "imagedefinitions/c/s/imagedefinitions.json");
    }
}
