//! S3: artifacts, records and the config object.

use aws_sdk_s3::primitives::ByteStream;

use crate::aws::aws_error;
use crate::domain::error::AwsError;

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

    /// The same client on another bucket.
    pub fn in_bucket(&self, bucket: impl Into<String>) -> Self {
        Self { client: self.client.clone(), bucket: bucket.into() }
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

    /// Deletes an object (S3 answers a missing one as deleted).
    pub async fn delete(&self, key: &str) -> Result<(), AwsError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|e| {
            aws_error("S3 DeleteObject", self.url(key), "the bucket exists and s3:DeleteObject on it", e)
        })?;
        Ok(())
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        Ok(self.get_tagged(key).await?.map(|(bytes, _)| bytes))
    }

    /// Writes `key` only if it does not exist yet; `None` when it does (S3 answered 412).
    pub async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Option<String>, AwsError> {
        self.conditional_put(key, bytes, None).await
    }

    /// Replaces `key` only if its ETag is still `etag`; `None` when someone changed it first.
    pub async fn replace(&self, key: &str, bytes: Vec<u8>, etag: &str) -> Result<Option<String>, AwsError> {
        self.conditional_put(key, bytes, Some(etag)).await
    }

    async fn conditional_put(&self, key: &str, bytes: Vec<u8>, etag: Option<&str>) -> Result<Option<String>, AwsError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        req = match etag {
            Some(etag) => req.if_match(etag),
            None => req.if_none_match("*"),
        };
        match req.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            Err(e) if matches!(e.raw_response().map(|r| r.status().as_u16()), Some(412) | Some(409)) => Ok(None),
            Err(e) => Err(aws_error(
                "S3 PutObject (conditional)",
                self.url(key),
                "the bucket exists and s3:PutObject on it",
                e,
            )),
        }
    }

    /// Reads an object with its ETag; `None` when it does not exist.
    pub async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, AwsError> {
        match get_if_changed(&self.client, &self.bucket, key, None).await? {
            Fetched::Object { bytes, etag } => Ok(Some((bytes, etag))),
            Fetched::Missing | Fetched::NotModified => Ok(None),
        }
    }

    /// Reads `s3://bucket/key`, in any bucket, unless its ETag is still `etag` (the config object).
    pub async fn read_if_changed(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<Fetched, AwsError> {
        get_if_changed(&self.client, bucket, key, etag).await
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

/// What a conditional GET found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag given.
    NotModified,
    /// No such key.
    Missing,
    /// The object, with its ETag.
    Object {
        /// Its bytes.
        bytes: Vec<u8>,
        /// Its ETag.
        etag: String,
    },
}

/// Reads `s3://bucket/key` unless its ETag is still `etag` (`If-None-Match`: S3 answers 304).
pub async fn get_if_changed(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<Fetched, AwsError> {
    let url = format!("s3://{bucket}/{key}");
    let out = match client.get_object().bucket(bucket).key(key).set_if_none_match(etag.map(str::to_string)).send().await
    {
        Ok(out) => out,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => return Ok(Fetched::NotModified),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(Fetched::Missing),
        Err(e) => return Err(aws_error("S3 GetObject", url, "the bucket name and s3:GetObject on it", e)),
    };
    let etag = out.e_tag().unwrap_or_default().to_string();
    let bytes = out.body.collect().await.map_err(|e| AwsError {
        action: "S3 GetObject",
        target: url,
        detail: format!("body could not be read: {e}"),
        hint: "network to S3",
        transient: true,
    })?;
    Ok(Fetched::Object { bytes: bytes.into_bytes().to_vec(), etag })
}
