//! ELBv2: the health of a target group's targets.

use crate::aws::aws_error;
use crate::domain::error::AwsError;

/// Reads target health.
#[derive(Clone, Debug)]
pub struct Elbv2Client {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl Elbv2Client {
    /// Wraps an SDK client.
    pub fn new(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self { client }
    }

    /// `(target id:port, state)` for every registered target.
    pub async fn target_states(&self, target_group_arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        let out =
            self.client.describe_target_health().target_group_arn(target_group_arn).send().await.map_err(|e| {
                aws_error(
                    "ELBv2 DescribeTargetHealth",
                    target_group_arn,
                    "the target_group_arn in pushdeploy.toml and elasticloadbalancing:DescribeTargetHealth",
                    e,
                )
            })?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let target = d.target();
                let id = match (target.and_then(|t| t.id()), target.and_then(|t| t.port())) {
                    (Some(id), Some(port)) => format!("{id}:{port}"),
                    (Some(id), _) => id.to_string(),
                    _ => "unknown target".into(),
                };
                let state = d.target_health().and_then(|h| h.state()).map(|s| s.as_str().to_string());
                (id, state.unwrap_or_else(|| "unknown".into()))
            })
            .collect())
    }
}
