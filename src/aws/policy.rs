//! How every AWS call is retried and timed out, the SDK's and the hand-signed ones alike.

use std::time::Duration;

/// How every AWS call is retried and timed out: set deliberately, not left to SDK defaults.
///
/// Standard retry mode (exponential backoff with jitter, retry quota) retries throttling, 5xx,
/// timeouts and connection errors; 3 attempts fit a 30 s deploy function with room for the
/// invocation-level retries Lambda does on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// One attempt, request to full response.
    pub attempt_timeout: Duration,
    /// One call, every attempt and backoff included.
    pub operation_timeout: Duration,
}

impl Default for AwsPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(4),
            operation_timeout: Duration::from_secs(10),
        }
    }
}

impl AwsPolicy {
    /// An SDK config loader with this policy; add endpoint and credentials as needed.
    pub fn loader(&self) -> aws_config::ConfigLoader {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        crate::aws::tls::sdk_defaults()
            .retry_config(
                RetryConfig::standard().with_max_attempts(self.max_attempts).with_initial_backoff(self.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
    }
}
