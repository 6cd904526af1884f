//! Canary analysis: whether green's real traffic, as the load balancer measured it, is worse than
//! blue's (or, for a rolling bake, than the window before the deployment). Pure: the figures come
//! from CloudWatch ([`crate::rules::alb_metrics`] reads its answer), the call goes back to the hook.

use serde::{Deserialize, Serialize};

use crate::config::{AnalysisConfig, TooLittleTraffic};

pub use super::normal::phi;
use super::normal::{binomial_upper_tail, upper_tail};

/// One target group's figures over a window, as CloudWatch answered them (`None`: no datapoint).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupFigures {
    /// The group's CloudWatch dimension, `targetgroup/<name>/<id>`.
    pub target_group: String,
    /// Sum of `RequestCount`.
    pub requests: f64,
    /// Sum of `HTTPCode_Target_5XX_Count`.
    pub errors_5xx: f64,
    /// `TargetResponseTime` p95, in ms.
    pub p95_ms: Option<f64>,
    /// `TargetResponseTime` p99, in ms.
    pub p99_ms: Option<f64>,
    /// Maximum of `UnHealthyHostCount`.
    pub max_unhealthy: Option<f64>,
}

impl GroupFigures {
    /// The 5XX share of requests; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| (self.errors_5xx / self.requests).clamp(0.0, 1.0))
    }
}

/// What a step is judged on.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The new revision's group.
    pub green: GroupFigures,
    /// Blue over the same window, or the window before a rolling deployment.
    pub baseline: GroupFigures,
    /// Since the step (or the bake) began.
    pub elapsed_ms: u64,
    /// What is left of the hook's budget, when a hook asks: `Some(0)` ends the step now.
    pub budget_left_ms: Option<u64>,
}

/// What the analysis comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// The evidence says green is no worse.
    Pass,
    /// A regression, or too little traffic under the `fail` policy: why.
    Fail(String),
    /// Undecided while the window fills: why.
    Wait(String),
}

/// One group's figures as the record carries them, with its error rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFindings {
    /// `targetgroup/<name>/<id>`.
    pub target_group: String,
    /// Requests in the window.
    pub requests: f64,
    /// 5XX answers from the targets in the window.
    pub errors_5xx: f64,
    /// `errors_5xx / requests`; `None` without requests.
    pub error_rate: Option<f64>,
    /// p95 latency, ms.
    pub p95_ms: Option<f64>,
    /// p99 latency, ms.
    pub p99_ms: Option<f64>,
    /// Most unhealthy hosts seen.
    pub max_unhealthy: Option<f64>,
}

impl From<&GroupFigures> for GroupFindings {
    fn from(g: &GroupFigures) -> Self {
        Self {
            target_group: g.target_group.clone(),
            requests: g.requests,
            errors_5xx: g.errors_5xx,
            error_rate: g.error_rate(),
            p95_ms: g.p95_ms,
            p99_ms: g.p99_ms,
            max_unhealthy: g.max_unhealthy,
        }
    }
}

/// The two-proportion test as it was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFindings {
    /// How much worse green may be (`max_error_increase`): the null hypothesis' bound.
    pub margin: f64,
    /// The test statistic.
    pub z: f64,
    /// One-sided p-value: the chance of a gap this large if green were within the margin.
    pub p_value: f64,
    /// `1 - confidence`: a p-value below it fails green.
    pub alpha: f64,
}

/// The thresholds the step was judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// `min_requests`.
    pub min_requests: u64,
    /// `max_error_rate`.
    pub max_error_rate: f64,
    /// `max_error_increase`.
    pub max_error_increase: f64,
    /// `confidence`.
    pub confidence: f64,
    /// `max_p95_ms`.
    pub max_p95_ms: Option<u64>,
    /// `max_p99_ms`.
    pub max_p99_ms: Option<u64>,
    /// `max_latency_ratio`.
    pub max_latency_ratio: f64,
    /// `latency_slack_ms`.
    pub latency_slack_ms: u64,
    /// `max_unhealthy`.
    pub max_unhealthy: u32,
    /// `too_little_traffic`.
    pub too_little_traffic: TooLittleTraffic,
}

/// Every figure read, the test and the thresholds: what the record's hook check carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// The configured window, s.
    pub window_s: u64,
    /// Time since the step (or bake) began, s.
    pub elapsed_s: u64,
    /// Green's figures.
    pub green: GroupFindings,
    /// Blue's figures (or the window before a rolling deployment).
    pub baseline: GroupFindings,
    /// The two-proportion test, when both sides had requests enough to run it.
    pub test: Option<TestFindings>,
    /// The thresholds.
    pub thresholds: Thresholds,
    /// `pass`, `fail` or `wait`.
    pub call: String,
    /// Why, for `fail` and `wait` (and a `pass` on too little traffic).
    pub reason: Option<String>,
}

/// The call, its findings, and one line for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Pass, fail or wait.
    pub call: Call,
    /// Every figure, for the record.
    pub findings: Findings,
    /// `green 2.1% 5XX of 1,204 vs blue 0.1% of 22,870 (p = 0.0003); p95 41 vs 39 ms`.
    pub summary: String,
}

/// Pure: the call on `ev` under `cfg`. A regression already evident fails at once; otherwise the
/// step waits until its window ends (or the hook's budget is spent), then passes, unless green
/// saw fewer than `min_requests`, when `too_little_traffic` decides.
pub fn judge(cfg: &AnalysisConfig, ev: &Evidence) -> Analysis {
    let test = proportion_test(cfg, &ev.green, &ev.baseline);
    let (call, note) = match regression(cfg, ev, test.as_ref()) {
        Some(why) => (Call::Fail(why), None),
        None => undecided_or_pass(cfg, ev),
    };
    let summary = summary(ev, test.as_ref(), &call, note.as_deref());
    let (word, reason) = match &call {
        Call::Pass => ("pass", note),
        Call::Fail(why) => ("fail", Some(why.clone())),
        Call::Wait(why) => ("wait", Some(why.clone())),
    };
    let findings = Findings {
        window_s: cfg.window_ms / 1000,
        elapsed_s: ev.elapsed_ms / 1000,
        green: (&ev.green).into(),
        baseline: (&ev.baseline).into(),
        test,
        thresholds: thresholds(cfg),
        call: word.into(),
        reason,
    };
    Analysis { call, findings, summary }
}

fn thresholds(cfg: &AnalysisConfig) -> Thresholds {
    Thresholds {
        min_requests: cfg.min_requests,
        max_error_rate: cfg.max_error_rate,
        max_error_increase: cfg.max_error_increase,
        confidence: cfg.confidence,
        max_p95_ms: cfg.max_p95_ms,
        max_p99_ms: cfg.max_p99_ms,
        max_latency_ratio: cfg.max_latency_ratio,
        latency_slack_ms: cfg.latency_slack_ms,
        max_unhealthy: cfg.max_unhealthy,
        too_little_traffic: cfg.too_little_traffic,
    }
}

/// True when green has seen requests enough for its rates (and its latency against blue's) to
/// mean something: below it one unlucky 500 would be a 5 % error rate.
fn enough(cfg: &AnalysisConfig, g: &GroupFigures) -> bool {
    g.requests > 0.0 && g.requests >= cfg.min_requests as f64
}

/// The first regression the figures already show, if any.
fn regression(cfg: &AnalysisConfig, ev: &Evidence, test: Option<&TestFindings>) -> Option<String> {
    let (g, b) = (&ev.green, &ev.baseline);
    if let Some(u) = g.max_unhealthy.filter(|&u| u > f64::from(cfg.max_unhealthy)) {
        return Some(format!("{u} unhealthy host(s) in green's group (at most {} allowed)", cfg.max_unhealthy));
    }
    let ceilings = [("p95", g.p95_ms, cfg.max_p95_ms), ("p99", g.p99_ms, cfg.max_p99_ms)];
    for (name, ms, ceiling) in ceilings {
        if let (Some(ms), Some(max)) = (ms, ceiling) {
            if ms > max as f64 {
                return Some(format!("green's {name} latency {ms:.0} ms is above max_{name}_ms {max}"));
            }
        }
    }
    if !enough(cfg, g) {
        return few_but_failing(cfg, g);
    }
    let rate = g.error_rate().unwrap_or(0.0);
    if rate > cfg.max_error_rate {
        return Some(format!("green's 5XX rate {} is above max_error_rate {}", pct(rate), pct(cfg.max_error_rate)));
    }
    if let Some(t) = test.filter(|t| t.p_value < t.alpha) {
        return Some(format!(
            "green's 5XX rate {} is worse than {} {} by more than {} (p = {} < {})",
            pct(rate),
            baseline_name(g, b),
            pct(b.error_rate().unwrap_or(0.0)),
            pct(t.margin),
            p_text(t.p_value),
            p_text(t.alpha)
        ));
    }
    latency_regression(cfg, g, b)
}

/// Below `min_requests`, green fails only on overwhelming evidence: its errors are unlikely
/// (p < 1 − confidence, exactly by the binomial) from a green at `max_error_rate`. A green that
/// fails every one of its few requests is not waited out, nor passed on too little traffic.
fn few_but_failing(cfg: &AnalysisConfig, g: &GroupFigures) -> Option<String> {
    let (n, k) = (g.requests.round() as u64, g.errors_5xx.round() as u64);
    let p = binomial_upper_tail(n, k, cfg.max_error_rate);
    (k > 0 && p < 1.0 - cfg.confidence).then(|| {
        let rate = pct(g.errors_5xx / g.requests);
        format!("green failed {k} of only {n} requests ({rate}): above max_error_rate at p = {}", p_text(p))
    })
}

/// What the baseline is, in a reason: blue's group, or (a bake) the same group before the deployment.
fn baseline_name(g: &GroupFigures, b: &GroupFigures) -> &'static str {
    if b.target_group == g.target_group {
        "before the deployment's"
    } else {
        "blue's"
    }
}

/// Green's p95 or p99 above the baseline's × `max_latency_ratio` and above it by the slack.
fn latency_regression(cfg: &AnalysisConfig, g: &GroupFigures, b: &GroupFigures) -> Option<String> {
    // A baseline of a few requests (blue near 0 % late in a shift) says nothing of blue's latency.
    if !enough(cfg, b) {
        return None;
    }
    for (name, ours, theirs) in [("p95", g.p95_ms, b.p95_ms), ("p99", g.p99_ms, b.p99_ms)] {
        let (Some(ours), Some(theirs)) = (ours, theirs) else { continue };
        if ours > theirs * cfg.max_latency_ratio && ours > theirs + cfg.latency_slack_ms as f64 {
            return Some(format!(
                "green's {name} latency {ours:.0} ms is above {} {theirs:.0} ms × {} (+{} ms slack)",
                baseline_name(g, b),
                cfg.max_latency_ratio,
                cfg.latency_slack_ms
            ));
        }
    }
    None
}

/// No regression: wait while the window fills, then pass, or follow the policy on too little
/// traffic. The second value is a note a pass carries.
fn undecided_or_pass(cfg: &AnalysisConfig, ev: &Evidence) -> (Call, Option<String>) {
    let over = ev.elapsed_ms >= cfg.window_ms || ev.budget_left_ms == Some(0);
    let short = !enough(cfg, &ev.green);
    if !over {
        let why = if short {
            format!("{} of min {} requests reached green so far", count(ev.green.requests), cfg.min_requests)
        } else {
            "no regression so far".to_string()
        };
        return (
            Call::Wait(format!("watching {} s of the {} s window: {why}", ev.elapsed_ms / 1000, cfg.window_ms / 1000)),
            None,
        );
    }
    if !short {
        return (Call::Pass, None);
    }
    let why = format!(
        "too little traffic: {} of min {} requests reached green in {} s",
        count(ev.green.requests),
        cfg.min_requests,
        ev.elapsed_ms / 1000
    );
    match cfg.too_little_traffic {
        TooLittleTraffic::Fail => (Call::Fail(why), None),
        TooLittleTraffic::Pass => (Call::Pass, Some(why)),
    }
}

/// The one-sided two-proportion test of H0: p_green − p_base ≤ margin, when both sides have
/// `min_requests` each: blue near 0 % late in a shift is no baseline (the ceilings still apply).
fn proportion_test(cfg: &AnalysisConfig, g: &GroupFigures, b: &GroupFigures) -> Option<TestFindings> {
    if !enough(cfg, g) || !enough(cfg, b) {
        return None;
    }
    let (pg, pb) = (g.error_rate()?, b.error_rate()?);
    // A rate of 0 (or 1) has no variance: floored at half an error so the standard error is
    // never 0 and a clean side is no infinitely sure evidence.
    let var = |p: f64, n: f64| {
        let floor = 0.5 / n;
        let p = p.clamp(floor, 1.0 - floor);
        p * (1.0 - p) / n
    };
    let se = (var(pg, g.requests) + var(pb, b.requests)).sqrt();
    let margin = cfg.max_error_increase;
    let z = (pg - pb - margin) / se;
    Some(TestFindings { margin, z, p_value: upper_tail(z), alpha: 1.0 - cfg.confidence })
}

/// One line for messages: green vs blue (or the group before a bake), the test, the latencies, and what remains.
fn summary(ev: &Evidence, test: Option<&TestFindings>, call: &Call, note: Option<&str>) -> String {
    let (g, b) = (&ev.green, &ev.baseline);
    let rate = |f: &GroupFigures| f.error_rate().map_or_else(|| "-".to_string(), pct);
    // A bake compares the service's one group with itself before the deployment.
    let other = if b.target_group == g.target_group { "before" } else { "blue" };
    let mut line =
        format!("green {} 5XX of {} vs {other} {} of {}", rate(g), count(g.requests), rate(b), count(b.requests));
    if let Some(t) = test {
        line += &format!(" (p = {})", p_text(t.p_value));
    }
    if let (Some(x), Some(y)) = (g.p95_ms, b.p95_ms) {
        line += &format!("; p95 {x:.0} vs {y:.0} ms");
    } else if let Some(x) = g.p95_ms {
        line += &format!("; p95 {x:.0} ms");
    }
    match (call, note) {
        (Call::Wait(why), _) => line += &format!("; {why}"),
        (Call::Pass, Some(n)) => line += &format!("; {n}"),
        _ => {}
    }
    line
}

/// A proportion as a percentage: `2.1%`, `0.05%`.
fn pct(p: f64) -> String {
    let v = p * 100.0;
    if v != 0.0 && v.abs() < 0.1 {
        format!("{v:.2}%")
    } else {
        format!("{v:.1}%")
    }
}

/// A p-value with its significant figures: `0.0003`, `0.42`, `<0.0001`.
fn p_text(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".into()
    } else if p < 0.01 {
        format!("{p:.4}")
    } else {
        format!("{p:.2}")
    }
}

/// A request count with thousands separators: `22,870`.
fn count(n: f64) -> String {
    // Never "-0": a negative or negative-zero count reads as none.
    let digits = format!("{:.0}", if n > 0.0 { n } else { 0.0 });
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AnalysisConfig {
        AnalysisConfig::default()
    }

    fn group(name: &str, requests: f64, errors: f64) -> GroupFigures {
        GroupFigures {
            target_group: format!("targetgroup/{name}/1"),
            requests,
            errors_5xx: errors,
            p95_ms: Some(40.0),
            p99_ms: Some(80.0),
            max_unhealthy: Some(0.0),
        }
    }

    fn ev(green: GroupFigures, blue: GroupFigures, elapsed_ms: u64) -> Evidence {
        Evidence { green, baseline: blue, elapsed_ms, budget_left_ms: None }
    }

    fn is_fail(c: &Call) -> bool {
        matches!(c, Call::Fail(_))
    }

    #[test]
    fn two_percent_against_a_tenth_of_a_percent_fails_at_once() {
        // 24 of 1,200 against 23 of 22,800, a minute into a five-minute window.
        let a = judge(&cfg(), &ev(group("green", 1200.0, 24.0), group("blue", 22_800.0, 23.0), 60_000));
        let Call::Fail(why) = &a.call else { panic!("{:?}", a.call) };
        assert!(why.contains("worse than blue's"), "{why}");
        let t = a.findings.test.clone().unwrap();
        assert!(t.p_value < 0.001 && t.z > 3.0, "{t:?}");
        assert!((t.alpha - 0.01).abs() < 1e-12);
        assert!(a.summary.starts_with("green 2.0% 5XX of 1,200 vs blue 0.1% of 22,800 (p = 0.000"), "{}", a.summary);
        assert_eq!(a.findings.call, "fail");
    }

    #[test]
    fn equal_error_rates_pass_at_every_size() {
        for n in [200.0, 500.0, 1000.0, 2000.0, 5000.0] {
            let a =
                judge(&cfg(), &ev(group("green", n, n * 0.005), group("blue", 19.0 * n, 19.0 * n * 0.005), 300_000));
            assert_eq!(a.call, Call::Pass, "{n}: {}", a.summary);
            assert!(a.findings.test.unwrap().p_value > 0.5);
        }
        // Chance's few extra errors on a small green are within the margin: 3 of 200 (1.5 %).
        let a = judge(&cfg(), &ev(group("green", 200.0, 3.0), group("blue", 3800.0, 19.0), 300_000));
        assert_eq!(a.call, Call::Pass, "{}", a.summary);
    }

    #[test]
    fn too_little_traffic_waits_then_follows_the_policy() {
        let e = |elapsed| ev(group("green", 150.0, 0.0), group("blue", 3000.0, 3.0), elapsed);
        let Call::Wait(why) = judge(&cfg(), &e(120_000)).call else { panic!() };
        assert!(why.contains("150 of min 200 requests"), "{why}");
        let Call::Fail(why) = judge(&cfg(), &e(300_000)).call else { panic!() };
        assert_eq!(why, "too little traffic: 150 of min 200 requests reached green in 300 s");
        let pass = AnalysisConfig { too_little_traffic: TooLittleTraffic::Pass, ..cfg() };
        let a = judge(&pass, &e(300_000));
        assert_eq!(a.call, Call::Pass);
        assert!(
            a.summary.ends_with("too little traffic: 150 of min 200 requests reached green in 300 s"),
            "{}",
            a.summary
        );
        assert_eq!(a.findings.reason.as_deref().map(|r| r.starts_with("too little")), Some(true));
        // The hook's budget spent ends the window early.
        let mut early = e(60_000);
        early.budget_left_ms = Some(0);
        assert!(is_fail(&judge(&cfg(), &early).call));
        // Few requests fail no rate test, however bad: 2 of 10 is not evidence.
        let a = judge(&cfg(), &ev(group("green", 10.0, 2.0), group("blue", 3000.0, 3.0), 60_000));
        assert!(matches!(a.call, Call::Wait(_)), "{:?}", a.call);
        assert!(a.findings.test.is_none());
    }

    #[test]
    fn clean_traffic_waits_for_the_window_then_passes() {
        let e = |elapsed| ev(group("green", 500.0, 1.0), group("blue", 9500.0, 20.0), elapsed);
        let Call::Wait(why) = judge(&cfg(), &e(299_999)).call else { panic!() };
        assert_eq!(why, "watching 299 s of the 300 s window: no regression so far");
        assert_eq!(judge(&cfg(), &e(300_000)).call, Call::Pass);
    }

    #[test]
    fn the_error_rate_ceiling_applies_without_a_baseline() {
        let none = GroupFigures { target_group: "targetgroup/blue/1".into(), ..Default::default() };
        let a = judge(&cfg(), &ev(group("green", 400.0, 24.0), none.clone(), 60_000));
        let Call::Fail(why) = &a.call else { panic!("{:?}", a.call) };
        assert_eq!(why, "green's 5XX rate 6.0% is above max_error_rate 5.0%");
        assert!(a.findings.test.is_none(), "no baseline, no test");
        assert_eq!(a.findings.baseline.error_rate, None);
        let a = judge(&cfg(), &ev(group("green", 400.0, 4.0), none, 300_000));
        assert_eq!(a.call, Call::Pass, "1 % is within the ceiling; nothing to compare with");
        assert!(a.summary.starts_with("green 1.0% 5XX of 400 vs blue - of 0;"), "{}", a.summary);
    }

    #[test]
    fn a_clean_baseline_does_not_make_every_green_error_significant() {
        // 0 of 20,000 on blue, 2 of 400 on green (0.5 %): within the 0.5 % margin.
        let a = judge(&cfg(), &ev(group("green", 400.0, 2.0), group("blue", 20_000.0, 0.0), 300_000));
        assert_eq!(a.call, Call::Pass, "{}", a.summary);
        let t = a.findings.test.unwrap();
        assert!(t.z.is_finite() && t.p_value > 0.01, "{t:?}");
    }

    #[test]
    fn latency_fails_against_a_ceiling_and_against_blue_with_slack() {
        let slow =
            |p95: f64, p99: f64| GroupFigures { p95_ms: Some(p95), p99_ms: Some(p99), ..group("green", 500.0, 0.0) };
        // Blue's p95 is 40 ms, its p99 80 ms; 66 ms > 40 × 1.5 = 60 and > 40 + 25: fails.
        let blue = group("blue", 9500.0, 0.0);
        let Call::Fail(why) = judge(&cfg(), &ev(slow(66.0, 80.0), blue.clone(), 60_000)).call else { panic!() };
        assert_eq!(why, "green's p95 latency 66 ms is above blue's 40 ms × 1.5 (+25 ms slack)");
        // 64 ms is above 60 but within 40 + 25 of slack: no regression.
        assert!(matches!(judge(&cfg(), &ev(slow(64.0, 80.0), blue.clone(), 60_000)).call, Call::Wait(_)));
        let Call::Fail(why) = judge(&cfg(), &ev(slow(40.0, 200.0), blue.clone(), 60_000)).call else { panic!() };
        assert!(why.starts_with("green's p99 latency 200 ms"), "{why}");
        // A ceiling applies at once, even before green has min_requests.
        let ceiling = AnalysisConfig { max_p95_ms: Some(50), ..cfg() };
        let few = GroupFigures { requests: 5.0, ..slow(51.0, 80.0) };
        let Call::Fail(why) = judge(&ceiling, &ev(few.clone(), blue.clone(), 1_000)).call else { panic!() };
        assert_eq!(why, "green's p95 latency 51 ms is above max_p95_ms 50");
        // Relative to blue, only with green's min_requests: a p95 of 5 requests is noise.
        assert!(matches!(judge(&cfg(), &ev(few, blue, 1_000)).call, Call::Wait(_)));
    }

    #[test]
    fn unhealthy_hosts_fail_at_once() {
        let sick = GroupFigures { max_unhealthy: Some(1.0), requests: 0.0, ..group("green", 0.0, 0.0) };
        let Call::Fail(why) = judge(&cfg(), &ev(sick.clone(), group("blue", 100.0, 0.0), 0)).call else { panic!() };
        assert_eq!(why, "1 unhealthy host(s) in green's group (at most 0 allowed)");
        let tolerant = AnalysisConfig { max_unhealthy: 1, ..cfg() };
        assert!(matches!(judge(&tolerant, &ev(sick, group("blue", 100.0, 0.0), 0)).call, Call::Wait(_)));
    }

    #[test]
    fn findings_serialize_as_the_record_carries_them() {
        let mut bake = ev(group("svc", 1200.0, 24.0), group("svc", 22_800.0, 23.0), 61_500);
        bake.green.p99_ms = None;
        let a = judge(&cfg(), &bake);
        assert!(a.summary.contains(" vs before 0.1% of 22,800"), "a bake compares with before: {}", a.summary);
        let v = serde_json::to_value(&a.findings).unwrap();
        assert_eq!(v["window_s"], 300);
        assert_eq!(v["elapsed_s"], 61);
        assert_eq!(v["call"], "fail");
        assert_eq!(v["green"]["target_group"], "targetgroup/svc/1");
        assert_eq!(v["green"]["requests"], 1200.0);
        assert_eq!(v["green"]["errors_5xx"], 24.0);
        assert_eq!(v["green"]["error_rate"], 0.02);
        assert_eq!(v["green"]["p95_ms"], 40.0);
        assert!(v["green"]["p99_ms"].is_null());
        assert_eq!(v["green"]["max_unhealthy"], 0.0);
        assert_eq!(v["baseline"]["requests"], 22_800.0);
        assert_eq!(v["test"]["margin"], 0.005);
        assert!(v["test"]["p_value"].as_f64().unwrap() < 0.001);
        assert!(v["test"]["z"].as_f64().is_some() && v["test"]["alpha"].as_f64().is_some());
        assert_eq!(v["thresholds"]["min_requests"], 200);
        assert_eq!(v["thresholds"]["too_little_traffic"], "fail");
        assert!(v["thresholds"]["max_p95_ms"].is_null());
        let back: Findings = serde_json::from_value(v).unwrap();
        assert_eq!(back, a.findings);
    }

    #[test]
    fn figures_read_in_a_message() {
        assert_eq!(count(22_870.0), "22,870");
        assert_eq!(count(1_204.0), "1,204");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1_000_000.0), "1,000,000");
        assert_eq!(pct(0.021), "2.1%");
        assert_eq!(pct(0.0005), "0.05%");
        assert_eq!(pct(0.0), "0.0%");
        assert_eq!(p_text(0.000_3), "0.0003");
        assert_eq!(p_text(0.000_01), "<0.0001");
        assert_eq!(p_text(0.42), "0.42");
    }

    #[test]
    fn a_green_failing_all_of_its_few_requests_fails_without_waiting_for_the_minimum() {
        let broken = judge(&cfg(), &ev(group("green", 150.0, 150.0), group("blue", 3000.0, 3.0), 10_000));
        assert!(matches!(&broken.call, Call::Fail(w) if w.contains("150 of only 150")), "{:?}", broken.call);
        let pass_policy = AnalysisConfig { too_little_traffic: TooLittleTraffic::Pass, ..cfg() };
        let broken = judge(&pass_policy, &ev(group("green", 150.0, 150.0), group("blue", 3000.0, 3.0), 300_000));
        assert!(matches!(broken.call, Call::Fail(_)), "never passed on too little traffic: {:?}", broken.call);
        // Two errors in ten is no such evidence against a 5 % ceiling (p = 0.086): it waits.
        let unlucky = judge(&cfg(), &ev(group("green", 10.0, 2.0), group("blue", 3000.0, 3.0), 10_000));
        assert!(matches!(unlucky.call, Call::Wait(_)), "{:?}", unlucky.call);
    }

    #[test]
    fn a_blue_of_a_few_requests_is_no_baseline() {
        // Late in a shift blue serves almost nothing: no test, no latency ratio; the ceilings hold.
        let mut green = group("green", 5000.0, 50.0);
        green.p95_ms = Some(300.0);
        let mut blue = group("blue", 20.0, 0.0);
        blue.p95_ms = Some(40.0);
        let a = judge(&cfg(), &ev(green, blue, 300_000));
        assert!(matches!(a.call, Call::Pass), "{:?}", a.call);
        assert!(a.findings.test.is_none());
    }
}
