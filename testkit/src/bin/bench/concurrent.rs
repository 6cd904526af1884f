//! Two pushes for one service at once, on two deploy instances, against one push alone.

use std::time::{Duration, Instant};

use pushdeploy::flows::deploy::Deployer;
use testkit::estate::{deployer, ecr_push_event, Aws, TodoApp};
use testkit::faults::FaultProxy;

use crate::measure::{median, ms};

const CONCURRENT_RUNS: usize = 7;

#[derive(Clone, Copy)]
enum Case {
    Alone,
    TwoDigests,
    OneDigestTwoTags,
}

/// Two pushes for one service at once, on two deploy instances (in-process), against one push
/// alone: the time until both have answered. Busy services are waited for, so both answer.
pub async fn concurrent_pushes(config_text: &str) {
    println!(
        "\n## Two concurrent pushes for one service (in-process, two deploy instances, median of {CONCURRENT_RUNS})\n"
    );
    println!("moto behind the IAM guard (as in the tests), direct and with 20 ms added to every call. Time until");
    println!("both invocations have answered: the second waits for the first one's lease (polling it from 25 ms,");
    println!("doubling), then reads the service afresh and goes on.\n");
    println!("| case | direct to moto | with 20 ms per call | answers |");
    println!("| --- | --- | --- | --- |");
    // moto behind the guard, which answers the ECS service-deployment calls moto lacks (a
    // rollout reads what the service ran beside UpdateService).
    let emu = testkit::guard::Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let slow = FaultProxy::start(&emu.endpoint, Duration::from_secs(1)).await;
    slow.set_latency(Duration::from_millis(20));
    let slowed = Aws::new(&slow.endpoint).await;
    let mut seq = 0u32;
    for (name, case) in [
        ("one push alone", Case::Alone),
        ("`v1.4.2` and `latest`, different digests, at once", Case::TwoDigests),
        ("`v1.4.2` and `latest` of one digest, at once", Case::OneDigestTwoTags),
    ] {
        let mut cells = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for aws in [&app.aws, &slowed] {
            let pair = (deployer(aws, config_text), deployer(aws, config_text));
            let mut times = Vec::new();
            for _ in 0..CONCURRENT_RUNS {
                seq += 1;
                let (took, joined) = one_run(case, &pair, &app, seq).await;
                times.push(took);
                if !seen.contains(&joined) {
                    seen.push(joined);
                }
            }
            cells.push(format!("{:.1} ms", median(&mut times)));
        }
        println!("| {name} | {} | {} |", cells.join(" | "), seen.join(", "));
    }
    drop(slow);
    drop(emu);
}

/// One run of `case` on the two deployers: the time until every push has answered, and the
/// answers' outcomes joined.
async fn one_run(case: Case, (a, b): &(Deployer, Deployer), app: &TodoApp, seq: u32) -> (f64, String) {
    let event = |tag: &str, digest: &pushdeploy::domain::image::Digest| {
        ecr_push_event(&format!("concurrent-{seq}-{tag}"), "todo-backend", tag, digest)
    };
    let first = app.aws.push_image("todo-backend", "v1.4.2", &format!("backend-concurrent-{seq}")).await;
    let (ra, rb) = (format!("a-{seq}"), format!("b-{seq}"));
    let alone = Instant::now();
    let (took, mut answers) = match case {
        Case::Alone => {
            let answer = outcome_of(a.handle(event("v1.4.2", &first), &ra).await.expect("answers"));
            (ms(alone.elapsed()), vec![answer])
        }
        Case::TwoDigests | Case::OneDigestTwoTags => {
            let seed = match case {
                Case::TwoDigests => format!("backend-concurrent-{seq}-latest"),
                _ => format!("backend-concurrent-{seq}"),
            };
            let second = app.aws.push_image("todo-backend", "latest", &seed).await;
            let start_both = Instant::now();
            let (x, y) = tokio::join!(a.handle(event("v1.4.2", &first), &ra), b.handle(event("latest", &second), &rb));
            let took = ms(start_both.elapsed());
            (took, vec![outcome_of(x.expect("both answer")), outcome_of(y.expect("both answer"))])
        }
    };
    answers.sort();
    (took, answers.join(" + "))
}

fn outcome_of(s: pushdeploy::rules::outcome::Summary) -> String {
    let v = serde_json::to_value(s).expect("summary");
    v["deployments"][0]["outcome"].as_str().unwrap_or("?").to_string()
}
