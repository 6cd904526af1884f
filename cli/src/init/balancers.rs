//! The load balancers in front of the services, read-only: their target groups
//! (DescribeTargetGroups), the load balancers those belong to (DescribeLoadBalancers), their
//! listeners (DescribeListeners) and every listener's rules (DescribeRules).

use aws_sdk_elasticloadbalancingv2::types::{Action, RuleCondition};
use aws_sdk_elasticloadbalancingv2::Client;

use super::aws_error::failed;
use super::estate::{Condition, Estate, Listener, LoadBalancer, Rule, TargetGroup};
use crate::insight::Failed;

/// The most target groups one DescribeTargetGroups names.
const TARGET_GROUP_BATCH: usize = 20;

/// Fills in the target groups, load balancers and listeners of `estate`'s services.
pub async fn describe_balancers(elbv2: &Client, estate: &mut Estate) -> Result<(), Failed> {
    let mut arns: Vec<String> = Vec::new();
    for tg in estate.services.iter().flat_map(|s| s.target_groups.iter()) {
        if !arns.contains(tg) {
            arns.push(tg.clone());
        }
    }
    let mut lb_arns: Vec<String> = Vec::new();
    for batch in arns.chunks(TARGET_GROUP_BATCH) {
        let out =
            elbv2.describe_target_groups().set_target_group_arns(Some(batch.to_vec())).send().await.map_err(|e| {
                failed("ELBv2 DescribeTargetGroups", &batch.join(", "), "elasticloadbalancing:DescribeTargetGroups", e)
            })?;
        for tg in out.target_groups() {
            estate.target_groups.push(TargetGroup {
                arn: tg.target_group_arn().unwrap_or_default().to_string(),
                health_check_path: tg.health_check_path().map(str::to_string),
            });
            for lb in tg.load_balancer_arns() {
                if !lb_arns.contains(lb) {
                    lb_arns.push(lb.clone());
                }
            }
        }
    }
    if lb_arns.is_empty() {
        return Ok(());
    }
    let out =
        elbv2.describe_load_balancers().set_load_balancer_arns(Some(lb_arns.clone())).send().await.map_err(|e| {
            failed("ELBv2 DescribeLoadBalancers", &lb_arns.join(", "), "elasticloadbalancing:DescribeLoadBalancers", e)
        })?;
    for lb in out.load_balancers() {
        estate.load_balancers.push(LoadBalancer {
            arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
            name: lb.load_balancer_name().unwrap_or_default().to_string(),
            dns_name: lb.dns_name().unwrap_or_default().to_string(),
            internal: lb.scheme().is_some_and(|s| s.as_str() == "internal"),
        });
    }
    for lb in &lb_arns {
        estate.listeners.extend(listeners(elbv2, lb).await?);
    }
    Ok(())
}

/// A load balancer's listeners, each with its rules.
async fn listeners(elbv2: &Client, lb: &str) -> Result<Vec<Listener>, Failed> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = elbv2
            .describe_listeners()
            .load_balancer_arn(lb)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| failed("ELBv2 DescribeListeners", lb, "elasticloadbalancing:DescribeListeners", e))?;
        for l in page.listeners() {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            out.push(Listener {
                rules: rules(elbv2, &arn).await?,
                load_balancer: lb.to_string(),
                protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            });
        }
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            return Ok(out);
        }
    }
}

/// A listener's rules, the default one included.
async fn rules(elbv2: &Client, listener: &str) -> Result<Vec<Rule>, Failed> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = elbv2
            .describe_rules()
            .listener_arn(listener)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| failed("ELBv2 DescribeRules", listener, "elasticloadbalancing:DescribeRules", e))?;
        out.extend(page.rules().iter().map(|r| Rule {
            priority: r.priority().unwrap_or("default").to_string(),
            conditions: r.conditions().iter().map(condition).collect(),
            forwards_to: r.actions().iter().flat_map(forwards_to).collect(),
        }));
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            return Ok(out);
        }
    }
}

/// The target groups a forward action sends to.
fn forwards_to(a: &Action) -> Vec<String> {
    if a.r#type().map(|t| t.as_str()) != Some("forward") {
        return Vec::new();
    }
    let mut arns: Vec<String> = a.target_group_arn().map(str::to_string).into_iter().collect();
    for tg in a.forward_config().map(|f| f.target_groups()).unwrap_or_default() {
        if let Some(arn) = tg.target_group_arn().filter(|arn| !arns.iter().any(|a| a == arn)) {
            arns.push(arn.to_string());
        }
    }
    arns
}

/// A condition's field and values, from `Values` or the field's own config.
fn condition(c: &RuleCondition) -> Condition {
    let field = c.field().unwrap_or_default().to_string();
    let mut values: Vec<String> = c.values().to_vec();
    if values.is_empty() {
        values = match field.as_str() {
            "host-header" => c.host_header_config().map(|h| h.values().to_vec()),
            "path-pattern" => c.path_pattern_config().map(|p| p.values().to_vec()),
            "http-request-method" => c.http_request_method_config().map(|m| m.values().to_vec()),
            "source-ip" => c.source_ip_config().map(|s| s.values().to_vec()),
            "http-header" => c.http_header_config().map(|h| {
                let name = h.http_header_name().unwrap_or_default();
                h.values().iter().map(|v| format!("{name}: {v}")).collect()
            }),
            "query-string" => c.query_string_config().map(|q| {
                q.values()
                    .iter()
                    .map(|kv| format!("{}={}", kv.key().unwrap_or_default(), kv.value().unwrap_or_default()))
                    .collect()
            }),
            _ => None,
        }
        .unwrap_or_default();
    }
    Condition { field, values }
}
