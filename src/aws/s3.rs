//! S3: artifacts, records and the config object.

use aws_sdk_s3::primitives::ByteStream;

use crate::aws::aws_error;
use crate::error::AwsError;

/// The artifact bucket.
#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl Store {
    /// Wraps an SDK client bound to one bucket.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes a JSON object.
    pub async fn put_json(&self, key: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| aws_error("S3 PutObject", self.url(key), "the bucket exists and s3:PutObject on it", e))?;
        Ok(())
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        get_object(&self.client, &self.bucket, key).await
    }

    /// Keys under `prefix` with their last-modified time (epoch seconds), newest first.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| aws_error("S3 ListObjectsV2", self.url(prefix), "s3:ListBucket on the bucket", e))?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| Some((o.key()?.to_string(), o.last_modified().map_or(0, |t| t.secs())))),
            );
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        Ok(out)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// Reads `s3://bucket/key`; `None` when the key does not exist.
pub async fn get_object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
    let url = format!("s3://{bucket}/{key}");
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(aws_error("S3 GetObject", url, "the bucket name and s3:GetObject on it", e)),
    };
    let bytes = out.body.collect().await.map_err(|e| AwsError {
        action: "S3 GetObject",
        target: url,
        detail: format!("body could not be read: {e}"),
        hint: "network to S3",
        transient: true,
    })?;
    Ok(Some(bytes.into_bytes().to_vec()))
}
