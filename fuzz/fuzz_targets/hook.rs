//! Any bytes as an ECS lifecycle hook invocation, hookDetails included (ECS hands back whatever the
//! last answer returned, so they are untrusted too): parsing answers, the carried tally never
//! panics or overflows, and a tally that can no longer pass is refused before a round.
#![no_main]

use pushdeploy::hook::{after_round, before_round, parse, Budget};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(inv) = parse(&value) else { return };
    assert!(!inv.cluster.is_empty() && !inv.service.is_empty());
    assert!(!inv.check_key().is_empty() && !inv.timeline_event().is_empty());
    let _ = inv.rolling_back();
    assert!((0.0..=100.0).contains(&inv.production_share()));
    let deployment = inv
        .hook_details
        .get("pushdeploy")
        .and_then(|d| d.get("deployment"))
        .and_then(|d| d.as_str())
        .unwrap_or("d")
        .to_string();
    if let Some(carried) = inv.carried(&deployment) {
        let budget = Budget { attempts: 10, consecutive: 3, interval_ms: 600_000, timeout_ms: 1440 * 60_000 };
        for now in [0, u64::MAX / 2, u64::MAX] {
            if before_round(&carried, &budget, now).is_ok() {
                assert!(carried.rounds < budget.attempts);
                let _ = after_round(carried.clone(), &budget, now % 2 == 0);
            }
        }
    }
});
