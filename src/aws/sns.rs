//! SNS: one message per verdict.

use aws_sdk_sns::types::MessageAttributeValue;

use crate::aws::aws_error;
use crate::domain::error::AwsError;

/// Publishes verdicts to a topic.
#[derive(Clone, Debug)]
pub struct Notifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Notifier {
    /// Wraps an SDK client bound to one topic.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into() }
    }

    /// Publishes `m`; a failure is logged, never returned: a lost notification must not undo
    /// what was recorded or refused.
    pub async fn send(&self, m: &crate::rules::notify::Message) {
        let attrs: Vec<(&str, &str)> = m.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Err(err) = self.publish(&m.subject, &m.body, &attrs).await {
            tracing::error!(subject = %m.subject, error = %err, "notification failed");
        }
    }

    /// Publishes a message with a subject and string attributes.
    pub async fn publish(&self, subject: &str, body: &str, attributes: &[(&str, &str)]) -> Result<(), AwsError> {
        let mut req = self.client.publish().topic_arn(&self.topic_arn).subject(subject).message(body);
        for (k, v) in attributes {
            let value = MessageAttributeValue::builder().data_type("String").string_value(*v).build().map_err(|e| {
                AwsError {
                    action: "SNS Publish",
                    target: self.topic_arn.clone(),
                    detail: format!("message attribute {k}: {e}"),
                    hint: "the attribute values",
                    transient: false,
                }
            })?;
            req = req.message_attributes(*k, value);
        }
        req.send()
            .await
            .map_err(|e| aws_error("SNS Publish", &self.topic_arn, "the topic ARN and sns:Publish on it", e))?;
        Ok(())
    }
}
