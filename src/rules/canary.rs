//! Pure: at a production traffic step of a blue/green (linear, canary) deployment, where the
//! active checks can go, and what the step comes to with both the active checks and the analysis
//! of real traffic ([`crate::rules::analysis`]).
//!
//! A real ALB spreads a production listener's requests over blue and green by weight, at random:
//! at a 10 % step nine checks in ten reach blue, so a streak of passing production rounds says
//! little about green. Only a listener rule that forwards every request to green's target group
//! makes an active check green's; AWS documents that for the test listener only after the test
//! traffic shift, and the groups alternate between deployments, so it is proven at each
//! invocation from the rule itself (DescribeRules) and ECS's word on green's group.

use serde::Serialize;

use crate::config::AnalysisConfig;
use crate::domain::ecs_view::LoadBalancerNow;
use crate::domain::lifecycle::fmt_share;
use crate::rules::analysis::Call;

/// A listener rule's forward action as DescribeRules answers it: (target group ARN, weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSeen {
    /// The rule's ARN.
    pub rule: String,
    /// Every target group it forwards to, with its weight (a plain forward: weight 1).
    pub forwards: Vec<(String, u32)>,
}

/// Which listener, rule, target group and revision a step's active checks reached, for the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reached {
    /// `test`, `production`, or `none` (the checks were skipped).
    pub listener: &'static str,
    /// The listener rule that proved the route, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The target group the checks reached (green's), when proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_group: Option<String>,
    /// Green's service revision.
    pub revision: String,
    /// What the route means for the checks, in words.
    pub note: String,
}

/// Where a production step's active checks go.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Through the test listener: its rule forwards everything to green's group.
    Test(Reached),
    /// Through the production listener: they reach blue and green by weight (no analysis, or
    /// the user asked for them with `production_checks`).
    Production(Reached),
    /// No active checks this step: nothing proves a route to green only; the analysis decides.
    Skipped(Reached),
}

impl Route {
    /// What the record says the checks reached.
    pub fn reached(&self) -> &Reached {
        match self {
            Route::Test(r) | Route::Production(r) | Route::Skipped(r) => r,
        }
    }
}

/// What ECS and the load balancer say about green at a production step.
#[derive(Debug, Clone, PartialEq)]
pub struct GreenSeen<'a> {
    /// Green's service revision.
    pub revision: &'a str,
    /// The target group ECS resolved for green's revision (`resolvedConfiguration`).
    pub group: Option<&'a str>,
    /// Targets registered in that group (DescribeTargetHealth), any state.
    pub targets: usize,
    /// Green's share of production traffic, in percent.
    pub production_share: f64,
}

/// Where the active checks of a production step go. Through the test listener (`through_test`,
/// a step with analysis) only when `rule` forwards every request to green's group and green has
/// targets there; otherwise (no analysis, or `production_checks`) on the production listener,
/// labelled for what they are.
pub fn active_route(rule: Option<&RuleSeen>, green: &GreenSeen, through_test: bool) -> Route {
    let reached = |listener, rule: Option<&RuleSeen>, group: Option<&str>, note: String| Reached {
        listener,
        rule: rule.map(|r| r.rule.clone()),
        target_group: group.map(str::to_string),
        revision: green.revision.to_string(),
        note,
    };
    if !through_test {
        let note = format!(
            "production listener: requests reach blue and green by weight, at random (green had {}%), so these checks mostly judge blue",
            fmt_share(green.production_share)
        );
        return Route::Production(reached("production", None, None, note));
    }
    let skipped = |why: String| {
        Route::Skipped(reached(
            "none",
            rule,
            green.group,
            format!("active checks skipped: {why}; the analysis decides"),
        ))
    };
    let Some(rule) = rule else {
        return skipped("no test listener rule is known (the service's advancedConfiguration names none)".into());
    };
    let Some(group) = green.group else {
        return skipped("ECS does not say which target group serves green's revision".into());
    };
    let live: Vec<&(String, u32)> = rule.forwards.iter().filter(|(_, w)| *w > 0).collect();
    if live.len() != 1 || live[0].0 != group {
        return skipped(format!(
            "the test listener rule forwards to {}, not to green's group {group} alone",
            forwards(&live)
        ));
    }
    if green.targets == 0 {
        return skipped(format!("green's group {group} has no registered targets"));
    }
    let note = "test listener: its rule forwards every request to green's target group".to_string();
    Route::Test(reached("test", Some(rule), Some(group), note))
}

/// `tg-a (weight 90), tg-b (weight 10)`, or `nothing`.
fn forwards(live: &[&(String, u32)]) -> String {
    if live.is_empty() {
        return "nothing".into();
    }
    live.iter().map(|(g, w)| format!("{} (weight {w})", short_group(g))).collect::<Vec<_>>().join(", ")
}

/// `targetgroup/name/id` of a target group ARN (the whole text otherwise).
fn short_group(arn: &str) -> &str {
    arn.find("targetgroup/").map_or(arn, |i| &arn[i..])
}

/// A blue/green service's pair of target groups and its listener rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// `targetGroupArn` (or the first of `[service.analysis] target_groups`).
    pub primary: String,
    /// `advancedConfiguration.alternateTargetGroupArn` (or the second).
    pub alternate: String,
    /// The test listener's rule: configured, else `advancedConfiguration.testListenerRule`.
    pub test_rule: Option<String>,
    /// The production listener's rule (`advancedConfiguration.productionListenerRule`).
    pub production_rule: Option<String>,
}

/// The pair the analysis compares: the two groups `[service.analysis] target_groups` names, else
/// the first of the service's load balancers with an alternate group.
pub fn pair_of(cfg: &AnalysisConfig, load_balancers: &[LoadBalancerNow]) -> Option<Pair> {
    let found = load_balancers.iter().find(|lb| lb.alternate.is_some());
    let (a, b) = match cfg.target_groups.as_slice() {
        [a, b] => (a.clone(), b.clone()),
        _ => {
            let lb = found?;
            (lb.target_group.clone(), lb.alternate.clone()?)
        }
    };
    Some(Pair {
        primary: a,
        alternate: b,
        test_rule: cfg.test_listener_rule.clone().or_else(|| found.and_then(|lb| lb.test_listener_rule.clone())),
        production_rule: found.and_then(|lb| lb.production_listener_rule.clone()),
    })
}

impl Pair {
    /// The group of the pair among `resolved` (the groups ECS resolved for green's revision).
    pub fn green_among(&self, resolved: &[String]) -> Option<String> {
        resolved.iter().find(|g| **g == self.primary || **g == self.alternate).cloned()
    }

    /// The other group of the pair: blue's, given green's.
    pub fn blue_of(&self, green: &str) -> Option<String> {
        match () {
            () if self.primary == green => Some(self.alternate.clone()),
            () if self.alternate == green => Some(self.primary.clone()),
            () => None,
        }
    }
}

/// Where the step's active checks stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// They passed (this invocation or an earlier one).
    Passed,
    /// They failed, and why.
    Failed(String),
    /// More rounds are needed; how far they are.
    Running(String),
    /// None run at this step; why.
    Skipped(String),
}

/// What a production step comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepCall {
    /// Both the checks and the analysis are satisfied.
    Pass,
    /// Either failed: why.
    Fail(String),
    /// Not yet: why (ECS calls again).
    Again(String),
}

/// The step's call: a failure of either fails it at once; it passes only when the analysis
/// passes and the active checks passed or had no route to green; otherwise it waits.
pub fn step_call(active: &Active, analysis: &Call) -> StepCall {
    match (active, analysis) {
        (Active::Failed(why), _) => StepCall::Fail(why.clone()),
        (_, Call::Fail(why)) => StepCall::Fail(format!("analysis: {why}")),
        (Active::Passed | Active::Skipped(_), Call::Pass) => StepCall::Pass,
        (Active::Running(how), Call::Pass) => StepCall::Again(format!("analysis passed; active checks: {how}")),
        (Active::Running(how), Call::Wait(why)) => StepCall::Again(format!("analysis: {why}; active checks: {how}")),
        (Active::Passed, Call::Wait(why)) => StepCall::Again(format!("active checks passed; analysis: {why}")),
        (Active::Skipped(_), Call::Wait(why)) => StepCall::Again(format!("analysis: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/green/2";
    const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/blue/1";

    fn green(targets: usize) -> GreenSeen<'static> {
        GreenSeen { revision: "rev-2", group: Some(GREEN), targets, production_share: 5.0 }
    }

    fn rule(forwards: &[(&str, u32)]) -> RuleSeen {
        RuleSeen { rule: "rule/test".into(), forwards: forwards.iter().map(|(g, w)| (g.to_string(), *w)).collect() }
    }

    #[test]
    fn a_rule_forwarding_everything_to_greens_group_routes_checks_through_the_test_listener() {
        let r = rule(&[(GREEN, 1)]);
        let route = active_route(Some(&r), &green(2), true);
        assert!(matches!(route, Route::Test(_)), "{route:?}");
        assert_eq!(route.reached().target_group.as_deref(), Some(GREEN));
        assert_eq!(route.reached().rule.as_deref(), Some("rule/test"));
        // A weight of 0 on blue's group still sends nothing there.
        let r = rule(&[(BLUE, 0), (GREEN, 100)]);
        assert!(matches!(active_route(Some(&r), &green(2), true), Route::Test(_)));
    }

    #[test]
    fn a_rule_that_still_reaches_blue_or_green_without_targets_skips_the_active_checks() {
        let split = rule(&[(BLUE, 90), (GREEN, 10)]);
        let route = active_route(Some(&split), &green(2), true);
        let Route::Skipped(r) = &route else { panic!("{route:?}") };
        assert!(r.note.contains("targetgroup/blue/1 (weight 90)"), "{}", r.note);
        let to_blue = rule(&[(BLUE, 1)]);
        assert!(matches!(active_route(Some(&to_blue), &green(2), true), Route::Skipped(_)));
        assert!(matches!(active_route(Some(&rule(&[(GREEN, 1)])), &green(0), true), Route::Skipped(_)));
        assert!(matches!(active_route(None, &green(2), true), Route::Skipped(_)));
        let unknown = GreenSeen { group: None, ..green(2) };
        assert!(matches!(active_route(Some(&rule(&[(GREEN, 1)])), &unknown, true), Route::Skipped(_)));
    }

    #[test]
    fn without_analysis_checks_stay_on_production_and_say_they_reach_both() {
        let route = active_route(None, &green(2), false);
        let Route::Production(r) = &route else { panic!("{route:?}") };
        assert!(r.note.contains("blue and green by weight"), "{}", r.note);
        assert!(r.note.contains("green had 5%"), "{}", r.note);
    }

    #[test]
    fn the_step_passes_only_on_both_and_fails_on_either() {
        let wait = Call::Wait("window filling".into());
        let fail = Call::Fail("green 2% vs blue 0.1%".into());
        assert_eq!(step_call(&Active::Passed, &Call::Pass), StepCall::Pass);
        assert_eq!(step_call(&Active::Skipped("no route".into()), &Call::Pass), StepCall::Pass);
        assert!(matches!(step_call(&Active::Passed, &wait), StepCall::Again(_)));
        assert!(matches!(step_call(&Active::Running("1 of 2".into()), &Call::Pass), StepCall::Again(_)));
        assert!(matches!(step_call(&Active::Passed, &fail), StepCall::Fail(w) if w.starts_with("analysis: green 2%")));
        assert!(matches!(step_call(&Active::Failed("500".into()), &Call::Pass), StepCall::Fail(w) if w == "500"));
    }

    #[test]
    fn blue_is_the_other_group_of_the_pair() {
        let pair =
            |a: &str, b: &str| Pair { primary: a.into(), alternate: b.into(), test_rule: None, production_rule: None };
        assert_eq!(pair(BLUE, GREEN).blue_of(GREEN).as_deref(), Some(BLUE));
        assert_eq!(pair(GREEN, BLUE).blue_of(GREEN).as_deref(), Some(BLUE));
        assert_eq!(pair(BLUE, BLUE).blue_of(GREEN), None);
        assert_eq!(pair(BLUE, GREEN).green_among(&["x".into(), GREEN.into()]).as_deref(), Some(GREEN));
    }
}
