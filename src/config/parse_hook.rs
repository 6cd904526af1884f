//! `[service.hook]`: the stages pushdeploy checks at, and the rule that its checks fit the hook's timeout.

use toml::Table;

use crate::domain::error::ConfigError;
use crate::domain::lifecycle::Stage;

use super::fields::Fields;
use super::{HookConfig, SmokeConfig};

/// Refuses a hook whose smoke test could outlast the hook's own timeout: ECS would act on its
/// timeout before pushdeploy's verdict.
pub(super) fn hook_fits(h: &HookConfig, s: &SmokeConfig) -> Result<(), String> {
    // ECS calls back `interval_ms` (whole seconds) after each IN_PROGRESS answer.
    let worst = u64::from(s.attempts) * (s.interval_ms.div_ceil(1000) * 1000 + s.round_ms()) + s.probe_ms();
    if h.stuck_ms + s.interval_ms.div_ceil(1000) * 1000 > h.timeout_ms() {
        return Err(format!(
            "stuck_minutes ({} s) and one call-back ({} ms) outlast the hook's {} min timeout: ECS's timeout action would decide instead of pushdeploy; lower stuck_minutes or interval_ms",
            h.stuck_ms / 1000,
            s.interval_ms,
            h.timeout_minutes
        ));
    }
    if worst > h.timeout_ms() {
        return Err(format!(
            "the smoke test may take {worst} ms at worst (attempts × (interval_ms rounded up to seconds + timeout_ms × checks) + probe), longer than the hook's {} min: ECS would act on its timeout before pushdeploy's verdict; raise timeoutConfiguration.timeoutInMinutes (and this) or lower attempts, interval_ms or timeout_ms",
            h.timeout_minutes
        ));
    }
    Ok(())
}

pub(super) fn parse_hook(t: Table, path: &str, source: &str) -> Result<HookConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let names = f.req_str_array("stages")?;
    if names.is_empty() {
        return Err(f.err("stages", format!("empty: list the stages to check at, of {:?}", Stage::checking())));
    }
    let mut stages = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let key = format!("stages[{j}]");
        let stage = Stage::parse(name).ok_or_else(|| f.err(&key, format!("{name:?} is not an ECS lifecycle stage")))?;
        if stage.listener().is_none() {
            return Err(f.err(
                &key,
                format!(
                    "pushdeploy checks nothing at {name}: green serves no traffic yet there; use {:?}",
                    Stage::checking()
                ),
            ));
        }
        if stages.contains(&stage) {
            return Err(f.err(&key, format!("{name} is listed twice")));
        }
        stages.push(stage);
    }
    stages.sort();
    let timeout_minutes = f.opt_int("timeout_minutes", 1, 1440)?.unwrap_or(1440) as u32;
    let timeout_ms = u64::from(timeout_minutes) * 60_000;
    let stuck_ms = match f.opt_int("stuck_minutes", 1, 1439)? {
        Some(m) => m as u64 * 60_000,
        None => (timeout_ms / 2).min(crate::domain::lifecycle::DEFAULT_STUCK_MS),
    };
    // The answer after the budget is spent comes one call-back later (ECS's default delay when
    // the config cannot be read); it must still come before ECS's timeout.
    if stuck_ms + crate::domain::lifecycle::DEFAULT_CALLBACK_MS > timeout_ms {
        return Err(f.err(
            "stuck_minutes",
            format!(
                "{} min leaves no call-back before the hook's {timeout_minutes} min timeout: ECS's timeout action would decide instead of pushdeploy; lower it below timeout_minutes",
                stuck_ms / 60_000
            ),
        ));
    }
    f.finish()?;
    Ok(HookConfig { stages, timeout_minutes, stuck_ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{key_of, parse, MIN};
    use crate::config::HeaderValue;
    use crate::domain::lifecycle::Listener;

    #[test]
    fn hook_stages_need_a_smoke_test_a_test_url_and_a_timeout_that_fits() {
        let smoke = "[service.smoke]\nurl='http://prod/'\ntest_url='http://test:8080/'\ntest_headers={x-pushdeploy-test='1'}\nattempts=5\ninterval_ms=1500\ntimeout_ms=2000\nconsecutive=2\n[[service.smoke.check]]\npath='/'\n";
        let hook =
            "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT','POST_PRODUCTION_TRAFFIC_SHIFT']\ntimeout_minutes=5\n";
        let c = parse(&format!("{MIN}{smoke}{hook}")).unwrap();
        let s = &c.services[0];
        let h = s.hook.as_ref().unwrap();
        assert_eq!(h.stages, vec![Stage::PostTestTrafficShift, Stage::PostProductionTrafficShift]);
        assert_eq!(h.timeout_ms(), 300_000);
        assert_eq!(h.stuck_ms, 150_000, "by default half the timeout");
        let day = parse(&format!("{MIN}{smoke}{}", hook.replace("timeout_minutes=5\n", ""))).unwrap();
        assert_eq!(day.services[0].hook.as_ref().unwrap().stuck_ms, 30 * 60_000, "at most 30 minutes by default");
        let set = parse(&format!("{MIN}{smoke}{hook}stuck_minutes=4\n")).unwrap();
        assert_eq!(set.services[0].hook.as_ref().unwrap().stuck_ms, 240_000);
        // The FAILED after a spent budget comes a call-back later, and must come before ECS's timeout.
        let e = parse(&format!("{MIN}{smoke}{hook}stuck_minutes=5\n")).unwrap_err();
        assert_eq!(e.key, "service[0].hook.stuck_minutes");
        assert!(e.message.contains("ECS's timeout action would decide"), "{e}");
        let test = s.smoke.as_ref().unwrap().through(Listener::Test);
        assert_eq!(test.url, "http://test:8080/");
        assert_eq!(test.checks[0].headers.get("x-pushdeploy-test"), Some(&HeaderValue::Plain("1".into())));
        let prod = s.smoke.as_ref().unwrap().through(Listener::Production);
        assert_eq!(prod.url, "http://prod/");
        assert!(prod.checks[0].headers.is_empty());

        assert_eq!(key_of(&format!("{MIN}{hook}")), "service[0].smoke");
        assert_eq!(
            key_of(&format!("{MIN}{}{hook}", smoke.replace("test_url='http://test:8080/'\n", ""))),
            "service[0].smoke.test_url"
        );
        assert_eq!(key_of(&format!("{MIN}{smoke}")), "service[0].smoke.test_url", "a test URL only a hook uses");
        assert_eq!(
            key_of(&format!("{MIN}{smoke}{}", hook.replace("'POST_TEST_TRAFFIC_SHIFT',", "'PRE_SCALE_UP',"))),
            "service[0].hook.stages[0]"
        );
        assert_eq!(
            key_of(&format!("{MIN}{smoke}{}", hook.replace("'POST_TEST_TRAFFIC_SHIFT'", "'SOON'"))),
            "service[0].hook.stages[0]"
        );
        assert_eq!(key_of(&format!("{MIN}{smoke}[service.hook]\nstages=[]\n")), "service[0].hook.stages");
        // 5 × (2 s + 2000 ms × 1 check) = 20 s: a 1-minute timeout fits, 30 attempts do not.
        assert!(parse(&format!("{MIN}{smoke}{}", hook.replace("=5", "=1"))).is_ok());
        let e = parse(&format!("{MIN}{}{}", smoke.replace("attempts=5", "attempts=30"), hook.replace("=5", "=1")))
            .unwrap_err();
        assert_eq!(e.key, "service[0].hook.timeout_minutes");
        assert!(e.message.contains("120000 ms at worst"), "{e}");
        // Each invocation runs one round: 2000 ms must fit in verify's time, not the 20 s whole.
        assert!(c.check_smoke_budget(2_000).is_ok());
        assert_eq!(c.check_smoke_budget(1_999).unwrap_err().key, "service[0].smoke");
    }
}
