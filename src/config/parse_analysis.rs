//! `[service.analysis]`: canary analysis from the load balancer's own metrics, its thresholds,
//! and the rules that its windows fit the hook's timeout and verify's time.

use toml::{Table, Value};

use crate::domain::error::ConfigError;

use super::fields::Fields;
use super::{AnalysisConfig, HookConfig, TooLittleTraffic};

/// The longest a bake may ask for: Lambda's 15-minute maximum less the 20 s verify keeps for its
/// verdict. A shorter verify timeout is checked at load ([`super::Limits`]).
pub(super) const MAX_BAKE_MS: u64 = 880_000;

/// The longest window: the longest a lifecycle hook can wait (ECS's 1,440-minute maximum).
const MAX_WINDOW_MS: u64 = 1440 * 60_000;

/// Pure: `"90s"`, `"5m"`, `"1h"` in milliseconds; `Err` says what is wrong.
pub(super) fn duration_ms(text: &str) -> Result<u64, String> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let scale = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "{text:?} is not a duration: write a whole number and s, m or h (\"90s\", \"5m\", \"1h\")"
            ))
        }
    };
    let n: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration: it needs a number before {unit:?}"))?;
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too long"))
}

/// A duration key within `min..=max` ms.
fn opt_duration(f: &mut Fields<'_>, k: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
    let Some(text) = f.opt_str(k)? else { return Ok(None) };
    let ms = duration_ms(&text).map_err(|m| f.err(k, m))?;
    if !(min..=max).contains(&ms) {
        return Err(f.err(k, format!("{text:?} is out of range {} s..={} s", min / 1000, max / 1000)));
    }
    Ok(Some(ms))
}

/// A number key (an integer is taken as one) within `min..=max`.
fn opt_fraction(f: &mut Fields<'_>, k: &str, min: f64, max: f64) -> Result<Option<f64>, ConfigError> {
    let v = match f.take(k) {
        None => return Ok(None),
        Some(Value::Float(x)) => x,
        Some(Value::Integer(i)) => i as f64,
        Some(v) => return Err(f.type_err(k, "a number", &v)),
    };
    if !(min..=max).contains(&v) {
        return Err(f.err(k, format!("{v} is out of range {min}..={max}")));
    }
    Ok(Some(v))
}

/// An ARN key that must name an ELBv2 resource of `kind` (`loadbalancer/app/`, `targetgroup/`,
/// `listener-rule/app/`): a wrong ARN would otherwise surface only as empty metrics.
fn check_elb_arn(f: &Fields<'_>, k: &str, arn: &str, kind: &str) -> Result<(), ConfigError> {
    let resource = arn.strip_prefix("arn:").and_then(|r| r.split(':').nth(4)).unwrap_or_default();
    if arn.split(':').nth(2) != Some("elasticloadbalancing") || !resource.starts_with(kind) {
        return Err(f.err(k, format!("{arn:?} is not an ELBv2 ARN of a {kind}…")));
    }
    Ok(())
}

/// Where the metrics come from: `load_balancer`, `target_groups`, `test_listener_rule`.
type Sources = (Option<String>, Vec<String>, Option<String>);

/// Reads [`Sources`], each ARN checked for its kind.
fn sources(f: &mut Fields<'_>) -> Result<Sources, ConfigError> {
    let load_balancer = f.opt_str("load_balancer")?;
    if let Some(a) = &load_balancer {
        check_elb_arn(f, "load_balancer", a, "loadbalancer/app/")?;
    }
    let target_groups = f.opt_str_array("target_groups")?.unwrap_or_default();
    for (j, a) in target_groups.iter().enumerate() {
        check_elb_arn(f, &format!("target_groups[{j}]"), a, "targetgroup/")?;
    }
    if target_groups.len() > 2 {
        return Err(f.err("target_groups", "at most two: blue's and green's (the service's pair)".into()));
    }
    let rule = f.opt_str("test_listener_rule")?;
    if let Some(a) = &rule {
        check_elb_arn(f, "test_listener_rule", a, "listener-rule/app/")?;
    }
    Ok((load_balancer, target_groups, rule))
}

/// An optional ceiling in ms, where 0 means none.
fn opt_ceiling(f: &mut Fields<'_>, k: &str) -> Result<Option<u64>, ConfigError> {
    Ok(f.opt_int(k, 0, 3_600_000)?.filter(|&n| n > 0).map(|n| n as u64))
}

/// `[service.analysis]` at `path`, every key optional.
pub(super) fn parse_analysis(t: Table, path: &str, source: &str) -> Result<AnalysisConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let (load_balancer, target_groups, test_listener_rule) = sources(&mut f)?;
    let too_little_traffic = match f.opt_str("too_little_traffic")?.as_deref() {
        None | Some("fail") => TooLittleTraffic::Fail,
        Some("pass") => TooLittleTraffic::Pass,
        Some(other) => {
            return Err(f.err(
                "too_little_traffic",
                format!("unknown policy {other:?}: use \"fail\" (default: no evidence is no pass) or \"pass\""),
            ))
        }
    };
    let a = AnalysisConfig {
        load_balancer,
        target_groups,
        test_listener_rule,
        window_ms: opt_duration(&mut f, "window", 1_000, MAX_WINDOW_MS)?.unwrap_or(300_000),
        min_requests: f.opt_int("min_requests", 0, i64::MAX)?.unwrap_or(200) as u64,
        too_little_traffic,
        max_error_rate: opt_fraction(&mut f, "max_error_rate", 0.0, 1.0)?.unwrap_or(0.05),
        max_error_increase: opt_fraction(&mut f, "max_error_increase", 0.0, 1.0)?.unwrap_or(0.005),
        // 0.5 would fail half of all identical canaries; 1 would never fail one.
        confidence: opt_fraction(&mut f, "confidence", 0.5, 0.999_999)?.unwrap_or(0.99),
        max_p95_ms: opt_ceiling(&mut f, "max_p95_ms")?,
        max_p99_ms: opt_ceiling(&mut f, "max_p99_ms")?,
        max_latency_ratio: opt_fraction(&mut f, "max_latency_ratio", 1.0, 1000.0)?.unwrap_or(1.5),
        latency_slack_ms: f.opt_int("latency_slack_ms", 0, 3_600_000)?.unwrap_or(25) as u64,
        max_unhealthy: f.opt_int("max_unhealthy", 0, 10_000)?.unwrap_or(0) as u32,
        bake_ms: opt_duration(&mut f, "bake", 1_000, MAX_BAKE_MS)?,
        production_checks: f.opt_bool("production_checks")?.unwrap_or(false),
    };
    f.finish()?;
    Ok(a)
}

/// Refuses an analysis its service cannot run: a bake with a lifecycle hook (ECS's hook judges
/// the traffic steps; the bake is for rolling services), an analysis that never runs (no hook and
/// no bake), and a window the hook's timeout cannot hold with one call-back after it (ECS would
/// act on its timeout before the analysis decides). `Err((key under analysis, why))`.
/// The longest call-back while a step waits on its window alone (a fifth of the window, at most
/// a minute: `flows::verify::canary`).
const WAITING_CALLBACK_MS: u64 = 60_000;

pub(super) fn analysis_fits(hook: Option<&HookConfig>, a: &AnalysisConfig) -> Result<(), (&'static str, String)> {
    match (hook, a.bake_ms) {
        (Some(_), Some(_)) => Err((
            "bake",
            "a bake watches a rolling deployment after ECS completes it; with [service.hook] the analysis runs at each traffic step instead: remove bake".into(),
        )),
        (None, None) => Err((
            "bake",
            "missing: without [service.hook] the analysis runs only as a bake after a rolling deployment; set bake (e.g. \"10m\") or add [service.hook]".into(),
        )),
        (Some(h), None) if a.window_ms + WAITING_CALLBACK_MS > h.timeout_ms() => Err((
            "window",
            format!(
                "{} s and one call-back ({} s) outlast the hook's {} min timeout: ECS's timeout action would decide before the analysis; shorten window or raise timeout_minutes",
                a.window_ms / 1000,
                WAITING_CALLBACK_MS / 1000,
                h.timeout_minutes
            ),
        )),
        _ => Ok(()),
    }
}

/// The time a rolling service's bake keeps one verify invocation busy at worst: the smoke test
/// that runs first in the same invocation, then the bake (its own window: `window` is a hook's).
pub(super) fn bake_invocation_ms(a: &AnalysisConfig, smoke_ms: u64) -> Option<u64> {
    a.bake_ms.map(|b| b + smoke_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{key_of, parse, MIN, SMOKE};

    const HOOK: &str = "[service.hook]\nstages=['PRODUCTION_TRAFFIC_SHIFT']\ntimeout_minutes=30\n";

    #[test]
    fn durations_are_a_number_and_a_unit() {
        assert_eq!(duration_ms("90s"), Ok(90_000));
        assert_eq!(duration_ms("5m"), Ok(300_000));
        assert_eq!(duration_ms("1h"), Ok(3_600_000));
        for bad in ["", "5", "m", "5 m", "1.5m", "-1s", "5ms", "5d"] {
            assert!(duration_ms(bad).is_err(), "{bad}");
        }
        assert!(duration_ms("99999999999999999999h").is_err());
    }

    #[test]
    fn every_key_has_a_default() {
        let c = parse(&format!("{MIN}{SMOKE}{HOOK}[service.analysis]\n")).unwrap();
        let a = c.services[0].analysis.clone().unwrap();
        assert_eq!(a, AnalysisConfig::default());
        assert!(parse(MIN).unwrap().services[0].analysis.is_none());
        let asked = parse(&format!("{MIN}{SMOKE}{HOOK}[service.analysis]\nproduction_checks = true\n")).unwrap();
        assert!(asked.services[0].analysis.as_ref().unwrap().production_checks);
    }

    #[test]
    fn keys_are_read_and_checked_by_name() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/todo/50dc";
        let tg = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/blue/6d0e";
        let rule = "arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/todo/50dc/f2f7/9683";
        let text = format!("{MIN}{SMOKE}{HOOK}[service.analysis]\nload_balancer='{lb}'\ntarget_groups=['{tg}']\ntest_listener_rule='{rule}'\nwindow='90s'\nmin_requests=50\ntoo_little_traffic='pass'\nmax_error_rate=0.1\nconfidence=0.95\nmax_p95_ms=300\nmax_p99_ms=0\nmax_latency_ratio=2\nmax_unhealthy=1\n");
        let a = parse(&text).unwrap().services[0].analysis.clone().unwrap();
        assert_eq!((a.window_ms, a.min_requests, a.too_little_traffic), (90_000, 50, TooLittleTraffic::Pass));
        assert_eq!((a.max_p95_ms, a.max_p99_ms, a.max_latency_ratio), (Some(300), None, 2.0));
        assert_eq!(a.load_balancer.as_deref(), Some(lb));
        let key = |extra: &str| key_of(&format!("{MIN}{SMOKE}{HOOK}[service.analysis]\n{extra}\n"));
        assert_eq!(key("window='5'"), "service[0].analysis.window");
        assert_eq!(key("window='0s'"), "service[0].analysis.window");
        assert_eq!(key("window=300"), "service[0].analysis.window");
        assert_eq!(key("confidence=1.0"), "service[0].analysis.confidence");
        assert_eq!(key("max_error_rate='5%'"), "service[0].analysis.max_error_rate");
        assert_eq!(key("too_little_traffic='wait'"), "service[0].analysis.too_little_traffic");
        assert_eq!(key(&format!("target_groups=['{lb}']")), "service[0].analysis.target_groups[0]");
        assert_eq!(key(&format!("load_balancer='{tg}'")), "service[0].analysis.load_balancer");
        assert_eq!(key("threshold=1"), "service[0].analysis.threshold");
    }

    #[test]
    fn a_bake_is_for_rolling_services_and_a_window_must_fit_the_hook() {
        let rolling = parse(&format!("{MIN}{SMOKE}[service.analysis]\nbake='10m'\nwindow='2m'\n")).unwrap();
        let a = rolling.services[0].analysis.clone().unwrap();
        assert_eq!(a.bake_ms, Some(600_000));
        assert_eq!(bake_invocation_ms(&a, 80_000), Some(680_000), "the bake is its own window");
        assert_eq!(key_of(&format!("{MIN}{SMOKE}[service.analysis]\n")), "service[0].analysis.bake");
        assert_eq!(key_of(&format!("{MIN}{SMOKE}{HOOK}[service.analysis]\nbake='1m'\n")), "service[0].analysis.bake");
        assert_eq!(key_of(&format!("{MIN}{SMOKE}[service.analysis]\nbake='15m'\n")), "service[0].analysis.bake");
        // 29 min and a call-back of at most a minute fit in 30; 30 min do not.
        assert!(parse(&format!("{MIN}{SMOKE}{HOOK}[service.analysis]\nwindow='29m'\n")).is_ok());
        let e = parse(&format!("{MIN}{SMOKE}{HOOK}[service.analysis]\nwindow='30m'\n")).unwrap_err();
        assert_eq!(e.key, "service[0].analysis.window");
        assert!(e.message.contains("outlast the hook's 30 min timeout"), "{e}");
    }
}
