//! Pure: is a pushed artifact a container image that a task can run?
//!
//! Registries hold more than images: cosign signatures, attestations and SBOMs (tags
//! `sha256-<digest>.sig`, `.att`, `.sbom`), Helm charts, OCI artifacts. ECR reports them all as
//! pushes; only images (and multi-platform image indexes) may become a task definition.

/// Config media types of runnable images.
const IMAGE_CONFIGS: &[&str] =
    &["application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"];

/// Manifest media types of multi-platform image indexes: images, deployed by the index digest.
const INDEXES: &[&str] =
    &["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// Why a push is not a deployable image, or `None` when it is one.
///
/// `artifact` is the config media type (the event's `artifact-media-type`, or ECR's
/// `artifactMediaType`), `manifest` the manifest's media type; either may be unknown.
pub fn not_an_image(tag: &str, artifact: Option<&str>, manifest: Option<&str>) -> Option<String> {
    if let Some(kind) = cosign_kind(tag) {
        return Some(format!("{tag} is a cosign {kind} (its tag names the image it belongs to), not an image"));
    }
    if manifest.is_some_and(|m| INDEXES.contains(&m)) {
        return None;
    }
    match artifact.filter(|a| !a.is_empty()) {
        Some(a) if IMAGE_CONFIGS.contains(&a) => None,
        Some(a) => Some(format!("artifact media type {} is not a container image (a signature, attestation, SBOM, chart or other OCI artifact)", crate::domain::image::truncate(a))),
        None => None,
    }
}

/// `signature`, `attestation` or `SBOM` for cosign's tag convention `sha256-<64 hex>.<sig|att|sbom>`.
fn cosign_kind(tag: &str) -> Option<&'static str> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, suffix) = rest.split_once('.')?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match suffix {
        "sig" => Some("signature"),
        "att" => Some("attestation"),
        "sbom" => Some("SBOM"),
        _ => None,
    }
}

/// True when ECR's answer is needed: the event did not say what was pushed.
pub fn unknown(artifact: Option<&str>, manifest: Option<&str>) -> bool {
    artifact.is_none_or(str::is_empty) && manifest.is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

    #[test]
    fn images_and_indexes_deploy() {
        assert_eq!(not_an_image("latest", Some("application/vnd.docker.container.image.v1+json"), None), None);
        assert_eq!(not_an_image("v1", Some("application/vnd.oci.image.config.v1+json"), None), None);
        assert_eq!(not_an_image("latest", None, Some("application/vnd.oci.image.index.v1+json")), None);
        assert_eq!(
            not_an_image("latest", Some(""), Some("application/vnd.docker.distribution.manifest.list.v2+json")),
            None
        );
        assert_eq!(not_an_image("latest", None, None), None, "unknown is decided by ECR's answer");
    }

    #[test]
    fn signatures_attestations_sboms_and_charts_do_not() {
        for (suffix, kind) in [("sig", "signature"), ("att", "attestation"), ("sbom", "SBOM")] {
            let tag = format!("sha256-{HEX}.{suffix}");
            // cosign stores them with an ordinary OCI image config: the tag is the tell.
            let why = not_an_image(&tag, Some("application/vnd.oci.image.config.v1+json"), None).unwrap();
            assert!(why.contains(kind), "{why}");
        }
        let helm = not_an_image("1.2.0", Some("application/vnd.cncf.helm.config.v1+json"), None).unwrap();
        assert!(helm.contains("application/vnd.cncf.helm.config.v1+json"), "{helm}");
        assert!(not_an_image("x", Some("application/vnd.oci.empty.v1+json"), None).is_some());
        assert_eq!(not_an_image("sha256-short.sig", None, None), None, "not cosign's convention");
        assert_eq!(not_an_image(&format!("sha256-{HEX}.tar"), None, None), None);
    }
}
