//! ELBv2: the health of a target group's targets, where a listener rule forwards, and which load
//! balancer a target group is behind (the canary analysis' sources).

use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;

use crate::aws::aws_error;
use crate::domain::error::AwsError;

/// Reads target health, listener rules and target groups.
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

    /// Where listener rule `rule_arn` forwards: `(target group ARN, weight)` for each group of
    /// its forward action (DescribeRules). A plain forward (`TargetGroupArn`) is weight 1 of 1; a
    /// weighted one lists `ForwardConfig.TargetGroups` (a weight ELBv2 leaves out counts as 1).
    /// Empty when the rule forwards nowhere (a fixed response, a redirect).
    pub async fn rule_forwards(&self, rule_arn: &str) -> Result<Vec<(String, u32)>, AwsError> {
        let out = self.client.describe_rules().rule_arns(rule_arn).send().await.map_err(|e| {
            aws_error(
                "ELBv2 DescribeRules",
                rule_arn,
                "the test listener rule ([service.analysis] test_listener_rule, or the service's advancedConfiguration.testListenerRule) and elasticloadbalancing:DescribeRules",
                e,
            )
        })?;
        let Some(rule) = out.rules().first() else { return Ok(Vec::new()) };
        let forward = rule.actions().iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward));
        let Some(action) = forward else { return Ok(Vec::new()) };
        let weighted: Vec<(String, u32)> = action
            .forward_config()
            .map(|f| f.target_groups())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().map_or(1, |w| w.max(0) as u32))))
            .collect();
        if !weighted.is_empty() {
            return Ok(weighted);
        }
        Ok(action.target_group_arn().map(|tg| vec![(tg.to_string(), 1)]).unwrap_or_default())
    }

    /// The first load balancer target group `tg_arn` is behind (DescribeTargetGroups'
    /// `LoadBalancerArns`), `None` when it is behind none yet.
    pub async fn load_balancer_of(&self, tg_arn: &str) -> Result<Option<String>, AwsError> {
        let out = self.client.describe_target_groups().target_group_arns(tg_arn).send().await.map_err(|e| {
            aws_error(
                "ELBv2 DescribeTargetGroups",
                tg_arn,
                "the service's target groups ([service.analysis] target_groups, or the service's loadBalancers) and elasticloadbalancing:DescribeTargetGroups",
                e,
            )
        })?;
        Ok(out.target_groups().first().and_then(|g| g.load_balancer_arns().first()).cloned())
    }
}
