//! A blue/green service's load balancer as ECS's native blue/green deployments use it: a
//! production listener and a test listener, each with a rule forwarding to the service's target
//! group pair by weight. The harness plays ECS: it registers green's targets, points the test rule
//! at green, and shifts the production rule's weights, moving the stand-in's routing and the
//! simulated users' traffic with them.

use std::sync::Arc;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, HttpHeaderConditionConfig, ProtocolEnum,
    RuleCondition, TargetDescription, TargetGroupTuple,
};

use crate::clients::Aws;
use crate::revisions::Revisions;
use crate::standin::{TodoStandIn, TEST_HEADER};
use crate::traffic::{dimension_of, Latencies, Profile, Traffic};

/// The load balancer of one blue/green service, as ECS's `advancedConfiguration` names it.
#[derive(Debug, Clone)]
pub struct BlueGreenAlb {
    /// The load balancer's ARN.
    pub load_balancer: String,
    /// The production listener (HTTP 80).
    pub production_listener: String,
    /// The test listener (HTTP 8080).
    pub test_listener: String,
    /// The production listener's rule (`productionListenerRule`).
    pub production_rule: String,
    /// The test listener's rule (`testListenerRule`), for requests with the test header.
    pub test_rule: String,
    /// The group the service's first revision is served by (`targetGroupArn`).
    pub primary: String,
    /// The other group (`alternateTargetGroupArn`).
    pub alternate: String,
}

fn forward(weights: &[(&str, u32)]) -> Action {
    let groups =
        weights.iter().map(|(tg, w)| TargetGroupTuple::builder().target_group_arn(*tg).weight(*w as i32).build());
    let config = ForwardActionConfig::builder().set_target_groups(Some(groups.collect())).build();
    Action::builder().r#type(ActionTypeEnum::Forward).forward_config(config).build()
}

impl Aws {
    /// Creates `name`'s load balancer (`name`-alb), its target group pair, both listeners and
    /// their rules, each forwarding everything to the primary group (no deployment under way).
    pub async fn create_blue_green_alb(&self, name: &str) -> BlueGreenAlb {
        let primary = self.create_target_group(&format!("{name}-tg-1"), &[]).await;
        let alternate = self.create_target_group(&format!("{name}-tg-2"), &[]).await;
        let (subnet, sg) = self.network().await;
        let lb = self.elbv2.create_load_balancer().name(format!("{name}-alb")).subnets(subnet).security_groups(sg);
        let lb = lb.send().await.expect("create load balancer");
        let load_balancer = lb.load_balancers()[0].load_balancer_arn().expect("lb arn").to_string();
        let not_found = Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(FixedResponseActionConfig::builder().status_code("404").build())
            .build();
        let mut arns = Vec::new();
        for (port, condition) in [
            (80, RuleCondition::builder().field("path-pattern").values("/*").build()),
            (8080, {
                let header = HttpHeaderConditionConfig::builder().http_header_name(TEST_HEADER.0).values(TEST_HEADER.1);
                RuleCondition::builder().field("http-header").http_header_config(header.build()).build()
            }),
        ] {
            let listener = self.elbv2.create_listener().load_balancer_arn(&load_balancer).protocol(ProtocolEnum::Http);
            let listener = listener.port(port).default_actions(not_found.clone()).send().await.expect("listener");
            let listener = listener.listeners()[0].listener_arn().expect("listener arn").to_string();
            let rule = self.elbv2.create_rule().listener_arn(&listener).priority(10).conditions(condition);
            let rule = rule.actions(forward(&[(&primary, 1)])).send().await.expect("create rule");
            arns.push((listener, rule.rules()[0].rule_arn().expect("rule arn").to_string()));
        }
        let (test_listener, test_rule) = arns.pop().expect("two listeners");
        let (production_listener, production_rule) = arns.pop().expect("two listeners");
        BlueGreenAlb {
            load_balancer,
            production_listener,
            test_listener,
            production_rule,
            test_rule,
            primary,
            alternate,
        }
    }

    /// Makes `rule` forward by `weights` (`(target group ARN, weight)`), as ECS does at each shift.
    pub async fn forward_weights(&self, rule: &str, weights: &[(&str, u32)]) {
        self.elbv2.modify_rule().rule_arn(rule).actions(forward(weights)).send().await.expect("modify rule");
    }

    /// The weights `rule` forwards by now (DescribeRules), as `(target group ARN, weight)`.
    pub async fn rule_weights(&self, rule: &str) -> Vec<(String, u32)> {
        let out = self.elbv2.describe_rules().rule_arns(rule).send().await.expect("describe rules");
        let action = out.rules().first().and_then(|r| r.actions().first()).cloned();
        let groups = action.and_then(|a| a.forward_config().map(|f| f.target_groups().to_vec())).unwrap_or_default();
        groups
            .iter()
            .map(|g| (g.target_group_arn().unwrap_or_default().to_string(), g.weight().unwrap_or(1) as u32))
            .collect()
    }

    /// Registers `ips` (a task's made-up addresses) in `target_group` on port 8080, as ECS
    /// registers a revision's tasks (moto reports them healthy).
    pub async fn register_ips(&self, target_group: &str, ips: &[&str]) {
        let targets = ips.iter().map(|ip| TargetDescription::builder().id(*ip).port(8080).build()).collect();
        let register = self.elbv2.register_targets().target_group_arn(target_group).set_targets(Some(targets));
        register.send().await.expect("register targets");
    }
}

/// Who else follows a production shift, so one call moves the rule, the stand-in and the users.
#[derive(Default, Clone, Copy)]
pub struct Followers<'a> {
    /// The stand-in, with the service's name and green's task definition ARN.
    pub standin: Option<(&'a TodoStandIn, &'a str, &'a str)>,
    /// The simulated users.
    pub traffic: Option<&'a Traffic>,
}

impl BlueGreenAlb {
    /// The load balancer's CloudWatch dimension value (`app/NAME/ID`).
    pub fn dimension(&self) -> String {
        dimension_of(&self.load_balancer)
    }

    /// The group of the pair that is not `target_group`.
    pub fn other(&self, target_group: &str) -> &str {
        if target_group == self.primary {
            &self.alternate
        } else {
            &self.primary
        }
    }

    /// From now on ECS (the guard's emulation) describes `service` as blue/green over this pair,
    /// naming these listener rules in its `advancedConfiguration`.
    pub fn describe_as(&self, revisions: &Revisions, service: &str) {
        revisions.set_target_groups(service, &self.primary, &self.alternate);
        revisions.set_listener_rules(service, &self.production_rule, &self.test_rule);
    }

    /// Users of this load balancer: the primary group (weight 100) serving `blue`, the alternate
    /// (weight 0) `green`; their latencies kept in `latencies` (the guard's).
    pub fn traffic(&self, aws: &Aws, latencies: Arc<Latencies>, blue: Profile, green: Profile) -> Traffic {
        let traffic = Traffic::new(aws, latencies, &self.load_balancer);
        traffic.add_group(&self.primary, 100, blue);
        traffic.add_group(&self.alternate, 0, green);
        traffic
    }

    /// Points the test rule entirely at `target_group`, as ECS does for green before its test stage.
    pub async fn test_to(&self, aws: &Aws, target_group: &str) {
        aws.forward_weights(&self.test_rule, &[(target_group, 100), (self.other(target_group), 0)]).await;
    }

    /// Shifts `green_percent` of production to `green` (a group of the pair) and the rest to the
    /// other group: the production rule's weights, and the followers' routing with them.
    pub async fn shift(&self, aws: &Aws, green: &str, green_percent: u32, followers: Followers<'_>) {
        let blue = self.other(green);
        let weights = [(blue, 100 - green_percent.min(100)), (green, green_percent.min(100))];
        aws.forward_weights(&self.production_rule, &weights).await;
        if let Some(traffic) = followers.traffic {
            traffic.set_weights(&weights);
        }
        if let Some((standin, service, green_td)) = followers.standin {
            standin.shift_production(service, green_td, u64::from(green_percent.min(100)));
        }
    }
}
