//! Any bytes as an ECS lifecycle hook invocation, hookDetails included (anyone who may invoke
//! verify can write them): parsing answers, a tally never panics or overflows, and a tally that can
//! no longer pass is refused before a round.
#![no_main]

use pushdeploy::inbound::hook::parse;
use pushdeploy::rules::hook::{after_round, before_round, Budget};

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
    // The tally verify counts from is the record's; the one in hookDetails is only a hint to the
    // record. Both are bytes someone else may have written: the arithmetic must hold for any.
    let carried = inv.tally().filter(|c| c.check == inv.check_key() && c.deployment == deployment);
    if let Some(carried) = carried {
        let budget = Budget { attempts: 10, consecutive: 3, interval_ms: 600_000, timeout_ms: 1440 * 60_000 };
        for now in [0, u64::MAX / 2, u64::MAX] {
            if before_round(&carried, &budget, now).is_ok() {
                assert!(carried.rounds < budget.attempts);
                let _ = after_round(carried.clone(), &budget, now % 2 == 0);
            }
        }
    }
});
