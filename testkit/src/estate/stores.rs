//! The estate's stores: parameters, buckets, repositories and images, queues.

use serde_json::json;

use pushdeploy::domain::image::Digest;

use crate::clients::Aws;
use crate::names::{fake_digest, REGION};

impl Aws {
    /// Stores `value` as the SecureString parameter `name` (under SSM's own key, `alias/aws/ssm`,
    /// or `key_id`), as an operator stores a smoke-test credential.
    pub async fn put_secure_string(&self, name: &str, value: &str, key_id: Option<&str>) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .set_key_id(key_id.map(str::to_string))
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
    }

    /// Stores `value` as a plain `String` parameter (not a SecureString), as a careless operator might.
    pub async fn put_string_parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
    }

    /// Creates a versioned bucket.
    pub async fn create_bucket(&self, name: &str) {
        use aws_sdk_s3::types::{
            BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, VersioningConfiguration,
        };
        self.s3
            .create_bucket()
            .bucket(name)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(REGION))
                    .build(),
            )
            .send()
            .await
            .expect("create bucket");
        self.s3
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .expect("bucket versioning");
    }

    /// Creates an ECR repository.
    pub async fn create_repository(&self, name: &str) {
        self.ecr.create_repository().repository_name(name).send().await.expect("create repository");
    }

    /// "Pushes" an image: a manifest whose layer is derived from `seed`, so each seed has its own digest.
    pub async fn push_image(&self, repository: &str, tag: &str, seed: &str) -> Digest {
        let layer = fake_digest(seed);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": fake_digest(&format!("config-{seed}"))},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": layer}]
        });
        let out = self
            .ecr
            .put_image()
            .repository_name(repository)
            .image_tag(tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .expect("put image");
        let digest = out.image().and_then(|i| i.image_id()).and_then(|i| i.image_digest()).expect("pushed digest");
        Digest::parse(digest).expect("moto answers sha256 digests")
    }

    /// Every key in a bucket.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.s3.list_objects_v2().bucket(bucket).send().await.expect("list objects");
        let mut keys: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
        keys.sort();
        keys
    }

    /// Writes `value` as JSON at `key` (e.g. a lease or a record a test sets up).
    pub async fn put_json(&self, bucket: &str, key: &str, value: &impl serde::Serialize) {
        let body = serde_json::to_vec(value).expect("serializes");
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Sends `body` to the queue at `queue` with string message attributes (an EventBridge dead
    /// letter carries RULE_ARN, TARGET_ARN, ERROR_CODE and ERROR_MESSAGE so).
    pub async fn send_message(&self, queue: &str, body: &str, attributes: &[(&str, &str)]) {
        use aws_sdk_sqs::types::MessageAttributeValue;
        let mut request = self.sqs.send_message().queue_url(queue).message_body(body);
        for (k, v) in attributes {
            let value = MessageAttributeValue::builder().data_type("String").string_value(*v).build().expect("attr");
            request = request.message_attributes(*k, value);
        }
        request.send().await.expect("send a message");
    }

    /// The bodies of the messages visible in the queue now, read without hiding them.
    pub async fn visible_messages(&self, queue: &str) -> Vec<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive messages");
        out.messages().iter().map(|m| m.body().unwrap_or_default().to_string()).collect()
    }

    /// An object's bytes.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out =
            self.s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        out.body.collect().await.expect("body").into_bytes().to_vec()
    }
}
