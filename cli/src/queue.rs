//! The failed-invocations queue, for `redrive`: read its messages (hidden from other readers
//! meanwhile), delete one, return one. Nothing here decides anything.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::insight::Failed;

/// A message as SQS handed it over.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// The body.
    pub body: String,
    /// The message attributes with a string value (an EventBridge dead letter's `RULE_ARN`, …).
    pub attributes: BTreeMap<String, String>,
    /// When SQS received it, epoch seconds.
    pub sent_at: Option<f64>,
}

/// SQS's largest batch per ReceiveMessage.
const BATCH: usize = 10;

/// A message read from the queue and the receipt handle that deletes or returns it.
pub struct Received {
    /// The message.
    pub message: Message,
    /// This read's receipt handle.
    pub handle: String,
}

/// One queue.
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// The queue at `url`, with the SDK config's credentials and endpoint.
    pub fn new(sdk: &aws_config::SdkConfig, url: &str) -> Self {
        Self { client: aws_sdk_sqs::Client::new(sdk), url: url.to_string() }
    }

    /// Reads up to `max` messages, each hidden from other readers for `visibility` seconds.
    /// Stops at the first read that finds none (a one-second long poll, which asks every SQS
    /// server rather than a sample, so an empty answer means an empty queue).
    pub async fn receive(&self, max: usize, visibility: i32) -> Result<Vec<Received>, Failed> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        while out.len() < max {
            let batch = (max - out.len()).min(BATCH) as i32;
            let answer = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(batch)
                .visibility_timeout(visibility)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(|e| self.failed("ReceiveMessage", "sqs:ReceiveMessage", e))?;
            let messages = answer.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else { continue };
                // A message read twice (its hidden time ran out during a long read) is shown once.
                if !seen.insert(id.to_string()) {
                    continue;
                }
                let attributes: BTreeMap<String, String> = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_string())))
                    .collect();
                let sent_at = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|ms| ms.parse::<f64>().ok())
                    .map(|ms| ms / 1000.0);
                out.push(Received {
                    message: Message { body: m.body().unwrap_or_default().to_string(), attributes, sent_at },
                    handle: handle.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Deletes the message read with `handle`.
    pub async fn delete(&self, handle: &str) -> Result<(), Failed> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("DeleteMessage", "sqs:DeleteMessage", e))
    }

    /// Makes the message read with `handle` visible again now, for the next redrive.
    pub async fn release(&self, handle: &str) -> Result<(), Failed> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("ChangeMessageVisibility", "sqs:ChangeMessageVisibility", e))
    }

    fn failed<E, R>(&self, operation: &str, permission: &str, e: aws_sdk_sqs::error::SdkError<E, R>) -> Failed
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let detail = crate::insight::sdk_error_detail(&e);
        Failed(format!(
            "SQS {operation} on {} failed: {detail}. Check: the queue URL (--queue-url, the stack's FailedInvocationsQueueUrl output) and {permission} on the queue",
            self.url
        ))
    }
}
