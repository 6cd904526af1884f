//! An HTTP endpoint subscribed to an SNS topic in moto: what the verdict notifications reach.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::clients::Aws;
use crate::http::{serve, Request, Response};

/// An HTTP endpoint subscribed to an SNS topic in moto, keeping every notification.
pub struct SnsSink {
    /// The topic's ARN.
    pub topic_arn: String,
    received: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl SnsSink {
    /// Creates `topic` and subscribes a loopback HTTP endpoint to it.
    pub async fn start(aws: &Aws, topic: &str) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let r = received.clone();
        let (addr, task) = serve(move |req: Request| {
            let r = r.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
                    r.lock().expect("lock").push(v);
                }
                Response::new(200, "")
            }
        })
        .await;
        let topic_arn =
            aws.sns.create_topic().name(topic).send().await.expect("topic").topic_arn().expect("arn").to_string();
        aws.sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("http")
            .endpoint(format!("http://{addr}/"))
            .send()
            .await
            .expect("subscribe");
        Self { topic_arn, received, task }
    }

    /// Notifications received so far (`Subject`, `Message`, `MessageAttributes`, …).
    pub fn notifications(&self) -> Vec<Value> {
        self.received.lock().expect("lock").iter().filter(|v| v["Type"] == "Notification").cloned().collect()
    }
}

impl Drop for SnsSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
