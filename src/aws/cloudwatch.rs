//! CloudWatch: the load balancer's own metrics of real traffic, for the canary analysis.
//!
//! One call, `GetMetricData`, made without the CloudWatch SDK crate (bootstrap size, as for SSM):
//! AWS JSON 1.0, `X-Amz-Target: GraniteServiceVersion20100801.GetMetricData`, signed as
//! `monitoring` and retried by [`super::signed_json`]. The request and its answer are built and
//! read in [`crate::rules::alb_metrics`].

use super::signed_json::{read_failure, SignedJsonClient, CLOUDWATCH};
use crate::domain::error::AwsError;
use crate::rules::alb_metrics::{dimension_of, query, read_figures};
use crate::rules::analysis::GroupFigures;

const ACTION: &str = "CloudWatch GetMetricData";

/// What to check when the metrics cannot be read.
const HINT: &str = "cloudwatch:GetMetricData on verify's role (Resource \"*\": the action has no resource-level permissions), and [service.analysis]'s load_balancer and target_groups (an Application Load Balancer's)";

/// Reads ALB metrics as verify's role.
#[derive(Clone, Debug)]
pub struct MetricsReader {
    client: SignedJsonClient,
}

impl MetricsReader {
    /// A reader in the SDK config's region, signing with its credentials, at its endpoint
    /// (`AWS_ENDPOINT_URL_CLOUDWATCH`, else the config's `AWS_ENDPOINT_URL`, else
    /// `https://monitoring.<region>.amazonaws.com`).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: SignedJsonClient::new(sdk, CLOUDWATCH) }
    }

    /// One GetMetricData for every group: Sum RequestCount, Sum HTTPCode_Target_5XX_Count, p95
    /// and p99 TargetResponseTime (seconds → ms), Maximum UnHealthyHostCount; namespace
    /// AWS/ApplicationELB, dimensions LoadBalancer (`app/…`) and TargetGroup (`targetgroup/…`).
    /// `load_balancer` and `groups` are ARNs or dimensions already. `start_s`/`end_s` are epoch
    /// seconds; start floored and end ceiled to the minute; one datapoint per query. The figures
    /// come in `groups`' order, each named by its dimension.
    pub async fn window(
        &self,
        load_balancer: &str,
        groups: &[String],
        start_s: i64,
        end_s: i64,
    ) -> Result<Vec<GroupFigures>, AwsError> {
        let failed = |detail: String, transient: bool| AwsError {
            action: ACTION,
            target: load_balancer.to_string(),
            detail,
            hint: HINT,
            transient,
        };
        let lb = dimension_of(load_balancer)
            .filter(|d| d.starts_with("app/"))
            .ok_or_else(|| failed("not an Application Load Balancer's ARN".into(), false))?;
        let dimensions = groups
            .iter()
            .map(|g| dimension_of(g).filter(|d| d.starts_with("targetgroup/")))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| failed(format!("not target group ARNs: {groups:?}"), false))?;
        let body = query(&lb, &dimensions, start_s, end_s).to_string();
        let read = |status: u16, bytes: &[u8]| match status {
            // An unreadable 200 may be a proxy's page: tried again like a network failure.
            200 => read_figures(&dimensions, bytes).map_err(|why| (why, true)),
            _ => Err(read_failure(status, bytes)),
        };
        self.client.call("GetMetricData", &body, read).await.map_err(|(d, t)| failed(d, t))
    }
}
