//! Pure: which target group the target-health gate judges.
//!
//! With ECS's own blue/green (and linear, canary) deployments a load balancer has two target
//! groups, `targetGroupArn` and `advancedConfiguration.alternateTargetGroupArn`, and ECS
//! alternates them: each deployment's new revision registers in the group the old one did not
//! serve. A `target_group_arn` fixed in the config names one of the two, which after every
//! other deployment is the group the old revision left, drained and empty: gated on it, every
//! other healthy deployment would be rolled back. So for such a pair the gate judges the group
//! that serves the revision under test, as ECS resolved it (the service revision's
//! `resolvedConfiguration.loadBalancers`); when ECS does not say, the gate is skipped, and the
//! smoke checks still decide.

use crate::domain::ecs_view::LoadBalancerNow;

/// The gate's target group for one smoke test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The configured group: the service does not alternate it.
    Configured,
    /// The group of the configured pair that serves the revision (the configured one or its alternate).
    Serving(String),
    /// No gate this time, and why.
    Skipped(String),
}

/// True when `configured` is one of a blue/green pair of the service's `load_balancers`: only
/// then must the serving group be resolved.
pub fn alternates(configured: &str, load_balancers: &[LoadBalancerNow]) -> bool {
    pair_of(configured, load_balancers).is_some()
}

fn pair_of<'a>(configured: &str, load_balancers: &'a [LoadBalancerNow]) -> Option<(&'a str, &'a str)> {
    load_balancers.iter().find_map(|lb| {
        let alternate = lb.alternate.as_deref()?;
        (lb.target_group == configured || alternate == configured).then_some((lb.target_group.as_str(), alternate))
    })
}

/// The gate for `configured`, given the service's `load_balancers` and the target groups ECS
/// resolved for the revision under test (`None` when it could not say).
pub fn gate_for(configured: &str, load_balancers: &[LoadBalancerNow], serving: Option<&[String]>) -> Gate {
    let Some((primary, alternate)) = pair_of(configured, load_balancers) else { return Gate::Configured };
    let why = "the service alternates target groups between deployments (blue/green)";
    match serving {
        Some(groups) => match groups.iter().find(|g| g.as_str() == primary || g.as_str() == alternate) {
            Some(g) => Gate::Serving(g.clone()),
            None => Gate::Skipped(format!(
                "{why}, and ECS resolved neither group of the pair for the revision under test: the target-health gate is skipped; the checks decide"
            )),
        },
        None => Gate::Skipped(format!(
            "{why}, and ECS does not say which one serves the revision under test: the target-health gate is skipped; the checks decide"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(tg: &str, alternate: Option<&str>) -> LoadBalancerNow {
        LoadBalancerNow {
            target_group: tg.into(),
            alternate: alternate.map(str::to_string),
            test_listener_rule: None,
            production_listener_rule: None,
        }
    }

    #[test]
    fn a_rolling_service_is_gated_on_its_configured_group() {
        assert_eq!(gate_for("tg/blue", &[lb("tg/blue", None)], None), Gate::Configured);
        // A group the service does not use at all is the operator's choice: gated as configured.
        assert_eq!(gate_for("tg/other", &[lb("tg/blue", Some("tg/green"))], None), Gate::Configured);
        assert!(!alternates("tg/blue", &[lb("tg/blue", None)]));
    }

    #[test]
    fn a_blue_green_service_is_gated_on_the_group_that_serves_the_revision_whichever_was_configured() {
        let lbs = [lb("tg/blue", Some("tg/green"))];
        assert!(alternates("tg/blue", &lbs) && alternates("tg/green", &lbs));
        let green = vec!["tg/green".to_string()];
        // Swapped: the configured group is the drained one; the gate follows the revision.
        assert_eq!(gate_for("tg/blue", &lbs, Some(&green)), Gate::Serving("tg/green".into()));
        assert_eq!(gate_for("tg/green", &lbs, Some(&green)), Gate::Serving("tg/green".into()));
        let blue = vec!["tg/blue".to_string()];
        assert_eq!(gate_for("tg/green", &lbs, Some(&blue)), Gate::Serving("tg/blue".into()));
    }

    #[test]
    fn a_blue_green_service_whose_serving_group_is_unknown_skips_the_gate_saying_why() {
        let lbs = [lb("tg/blue", Some("tg/green"))];
        let Gate::Skipped(why) = gate_for("tg/blue", &lbs, None) else { panic!("skipped") };
        assert!(why.contains("ECS does not say which one serves"), "{why}");
        let elsewhere = vec!["tg/unrelated".to_string()];
        let Gate::Skipped(why) = gate_for("tg/blue", &lbs, Some(&elsewhere)) else { panic!("skipped") };
        assert!(why.contains("resolved neither group"), "{why}");
    }
}
