//! ECR: what a tag points at now.

use aws_sdk_ecr::types::ImageIdentifier;

use crate::aws::aws_error;
use crate::domain::error::AwsError;
use crate::domain::image::Digest;

/// The image a tag points at in ECR now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedImage {
    /// Registry (account) id that owns the repository.
    pub registry_id: String,
    /// The tag's current digest.
    pub digest: Digest,
    /// When the image was pushed (RFC 3339), if ECR says.
    pub pushed_at: Option<String>,
    /// ECR's `artifactMediaType` (the config's media type), if it says.
    pub artifact_media_type: Option<String>,
    /// ECR's `imageManifestMediaType`, if it says.
    pub manifest_media_type: Option<String>,
}

/// Reads image metadata from ECR.
#[derive(Clone, Debug)]
pub struct EcrClient {
    client: aws_sdk_ecr::Client,
}

impl EcrClient {
    /// Wraps an SDK client.
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self { client }
    }

    /// Reads one image of `repository` and discards it: opens (and pools) the connection to ECR
    /// during Lambda's init, so that a push's first ECR call does not pay the TLS handshake.
    pub async fn open_connection(&self, repository: &str) -> Result<(), AwsError> {
        self.client.describe_images().repository_name(repository).max_results(1).send().await.map(|_| ()).map_err(|e| {
            aws_error("ECR DescribeImages", repository.to_string(), "ecr:DescribeImages on the repository", e)
        })
    }

    /// The image `repository:tag` points at now; `None` when the tag does not exist.
    pub async fn resolve_tag(&self, repository: &str, tag: &str) -> Result<Option<TaggedImage>, AwsError> {
        let target = format!("{repository}:{tag}");
        let out = self
            .client
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_image_not_found_exception()) => return Ok(None),
            Err(e) => {
                return Err(aws_error(
                    "ECR DescribeImages",
                    target,
                    "the repository name in pushdeploy.toml and ecr:DescribeImages on it",
                    e,
                ))
            }
        };
        let Some(detail) = out.image_details().first() else {
            return Ok(None);
        };
        let digest_str = detail.image_digest().unwrap_or_default();
        let digest = Digest::parse(digest_str).map_err(|e| AwsError {
            action: "ECR DescribeImages",
            target: target.clone(),
            detail: e.0,
            hint: "the repository's image manifest",
            transient: false,
        })?;
        let pushed_at =
            detail.image_pushed_at().and_then(|t| t.fmt(aws_sdk_ecr::primitives::DateTimeFormat::DateTime).ok());
        Ok(Some(TaggedImage {
            registry_id: detail.registry_id().unwrap_or_default().to_string(),
            digest,
            pushed_at,
            artifact_media_type: detail.artifact_media_type().map(str::to_string),
            manifest_media_type: detail.image_manifest_media_type().map(str::to_string),
        }))
    }
}
