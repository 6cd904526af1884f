//! Canary analysis: how soon a green failing 2 % of requests is caught at a 5 % step, how often a
//! clean green is failed by chance, and what one analysis invocation costs in AWS calls and time.
//! In-process verify against moto behind the IAM guard; the users' traffic simulated at random by
//! the production rule's weights and published as the ALB's metrics, by the second.

use testkit::canary::{analysis, CanaryEstate, Scenario};
use testkit::standin::Behaviour;
use testkit::traffic::Profile;

use crate::hook::counted;
use crate::measure::median;

const STEP: &str = "PRODUCTION_TRAFFIC_SHIFT";
const DETECTION_SEEDS: u64 = 10;
const CLEAN_RUNS: u64 = 50;

fn scenario(seed: u64, green_error_rate: f64, blue_error_rate: f64, window: &str) -> Scenario {
    Scenario {
        analysis: Some(analysis(window, 200, "")),
        stages: vec![STEP],
        blue: Profile::new(blue_error_rate, 40.0, 90.0),
        green: Profile::new(green_error_rate, 40.0, 90.0),
        seed,
        requests_per_second: 20_000,
        test_rule_to_green: true,
    }
}

/// Prints the canary tables of BENCHMARKS.md.
pub async fn canary_analysis() {
    println!("\n## Canary analysis (in-process verify, moto behind the IAM guard, simulated users)\n");
    println!("20,000 requests a second through the production rule, each sent to blue or green at random by");
    println!(
        "weight; a 5 % step; window 2 s (seconds here, since the stand-in publishes by the second; minutes on AWS).\n"
    );
    detection().await;
    false_failures().await;
}

/// A green failing 2 % (blue 0.1 %): when the step fails, in seconds and windows.
async fn detection() {
    let mut elapsed = Vec::new();
    let mut invocations = Vec::new();
    let mut missed = 0;
    for seed in 0..DETECTION_SEEDS {
        let mut estate = CanaryEstate::start(scenario(seed, 0.02, 0.001, "2s")).await;
        // Its failures show only under users' requests: the active checks pass.
        let p = estate.push(&format!("backend-detect-{seed}"), Behaviour::Good).await;
        let run = estate.run_stage(&p, STEP, Some(5)).await;
        if run.status() != "FAILED" {
            missed += 1;
            continue;
        }
        let rec = estate.record(&p).await;
        let a = &rec["hook_checks"][0]["analysis"];
        elapsed.push(a["elapsed_s"].as_f64().unwrap_or(f64::NAN));
        invocations.push(run.answers.len() as f64);
    }
    println!("| green 2 % 5XX vs blue 0.1 % at a 5 % step | figure |");
    println!("| --- | --- |");
    println!("| runs (seeds) | {DETECTION_SEEDS} |");
    println!("| caught | {} |", DETECTION_SEEDS - missed);
    if !elapsed.is_empty() {
        let worst = elapsed.iter().copied().fold(0.0, f64::max);
        println!("| time from the step's first invocation to FAILED, median (worst) | {:.1} s ({worst:.1} s) = {:.2} ({:.2}) windows |", median(&mut elapsed.clone()), median(&mut elapsed) / 2.0, worst / 2.0);
        println!("| hook invocations to the verdict, median | {:.0} |", median(&mut invocations));
    }
    println!();
}

/// Clean greens (both at 0.5 %): how many steps fail, and what an analysis invocation costs.
async fn false_failures() {
    let mut estate = CanaryEstate::start(scenario(1_000, 0.005, 0.005, "2s")).await;
    let (mut failed, mut times, mut per_invocation) = (0, Vec::new(), Vec::new());
    let mut calls = String::new();
    for seed in 0..CLEAN_RUNS {
        estate.traffic.seed(seed);
        estate.standin.seed(seed);
        let p = estate.push(&format!("backend-clean-{seed}"), Behaviour::Flaky { errors_per_mille: 5 }).await;
        let run = estate.run_stage(&p, STEP, Some(5)).await;
        if run.status() != "SUCCEEDED" {
            failed += 1;
        }
        estate.complete(&p).await;
        times.extend(run.invocation_ms.iter().copied());
        per_invocation.extend(run.calls.iter().map(|c| c.len() as f64));
        if let Some(last) = run.calls.last() {
            calls = counted(last);
        }
    }
    println!("| clean greens (blue and green 0.5 % 5XX) | figure |");
    println!("| --- | --- |");
    println!("| deployments (seeds) | {CLEAN_RUNS} |");
    println!("| false failures | {failed} |");
    println!("| time per analysis invocation, median | {:.1} ms |", median(&mut times));
    println!("| AWS calls per analysis invocation, median | {:.0} |", median(&mut per_invocation));
    println!("| the deciding invocation's calls | {calls} |");
    println!();
}
