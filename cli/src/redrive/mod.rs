//! `redrive`: sends what the functions parked in the failed-invocations queue back to them, and
//! nothing else. A message in that queue is an event someone will replay with the operator's
//! credentials, so the command believes no message about where it goes: it replays a payload
//! only to one of the stack's two functions, only when the message was parked for that very
//! function (a Lambda failure record's `functionArn`, an EventBridge dead letter's `TARGET_ARN`
//! and `RULE_ARN`), and only when the payload is an event that function's own rule delivers.
//! A manual action or a lifecycle hook invocation is never replayed, whoever parked it.
//!
//! Every decision here is pure: the plan for one message, the line that shows it, the question
//! asked, the order of replays, whether replays may still start and the exit status. [`run`] and
//! its helpers carry them out. In the order a run goes: `stack` (the two functions and the rules
//! the flags name), `parked` (what a message says about itself), `plan` (replay or skip, and the
//! order), `show` (its line, the question), `carry_out` (replays, deletes, release, the tally).

mod carry_out;
#[cfg(test)]
mod fixtures;
mod parked;
mod plan;
mod show;
mod stack;

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::insight::Failed;
use crate::queue::{Message, Queue};
use carry_out::{carry_out, release_the_rest, still_hidden, Carried, Tally, Work, MARGIN_SECONDS, VISIBILITY_SECONDS};
use plan::{plan, replay_order, Plan};
use show::{ask, line, question};
use stack::{queue_account, FunctionId, Stack};

/// `s` cut to `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// What the operator asked for.
pub struct Options {
    /// The queue's URL.
    pub queue_url: String,
    /// The deploy function's name or ARN, as invoked.
    pub deploy: String,
    /// The verify function's name or ARN, as invoked.
    pub verify: String,
    /// The stack's rules' ARNs, when given.
    pub rules: Vec<String>,
    /// Only list.
    pub dry_run: bool,
    /// Do not ask.
    pub yes: bool,
    /// Delete skipped messages after showing them.
    pub delete_skipped: bool,
    /// Read at most this many messages.
    pub max: usize,
}

/// Reads the queue, shows every message and what will happen to it, asks, replays, deletes what
/// Lambda accepted (and, when asked, what was skipped), and returns the rest to the queue.
pub async fn run(o: Options) -> Result<ExitCode, Failed> {
    if !o.dry_run && !o.yes && !std::io::stdin().is_terminal() {
        return Err(Failed(
            "redrive asks before it replays, and standard input is not a terminal: pass --yes to replay without asking, or --dry-run to only list".into(),
        ));
    }
    let sdk = pushdeploy::aws::AwsPolicy::default().loader().load().await;
    let stack = stack(&o, sdk.region().map(|r| r.to_string()))?;
    let queue = Queue::new(&sdk, &o.queue_url);
    let lambda = crate::invoke::Lambda::new(&sdk);

    let received_at = crate::insight::now();
    let received = queue.receive(o.max, VISIBILITY_SECONDS).await?;
    let messages: Vec<Message> = received.iter().map(|r| r.message.clone()).collect();
    let plans: Vec<Plan> = messages.iter().map(|m| plan(m, &stack)).collect();
    let now = crate::insight::now();
    println!("{} message(s) in the failed-invocations queue", messages.len());
    for (i, (m, p)) in messages.iter().zip(&plans).enumerate() {
        println!("{}", line(i + 1, m, p, (&o.deploy, &o.verify), now));
    }
    let order = replay_order(&messages, &plans);
    let skipped: Vec<usize> = (0..plans.len()).filter(|i| matches!(plans[*i], Plan::Skip(_))).collect();
    let go = agreed(&o, order.len(), skipped.len());
    let mut run = Carried { tally: Tally { skipped: skipped.len(), ..Tally::default() }, ..Carried::default() };
    if go && !still_hidden(received_at, crate::insight::now()) {
        eprintln!(
            "pushdeploy: more than {} s passed since the queue was read, and its messages may be visible to another redrive again: nothing replayed; run redrive again",
            f64::from(VISIBILITY_SECONDS) - MARGIN_SECONDS
        );
    } else if go {
        let to_delete = if o.delete_skipped { skipped.as_slice() } else { &[] };
        let work = Work { received: &received, plans: &plans, order: &order, to_delete };
        run = carry_out(&queue, &lambda, &o, work, run).await;
    }
    run.tally.not_run = order.len() - run.attempted;
    release_the_rest(&queue, &received, &run.done).await;
    println!("{}", run.tally.summary());
    Ok(ExitCode::from(run.tally.exit_code()))
}

/// Whether to go on after the list was shown: never in a dry run, nor with nothing to do; without
/// asking with `--yes`; else the operator's answer to the one question.
fn agreed(o: &Options, replays: usize, skipped: usize) -> bool {
    if o.dry_run {
        println!("dry run: nothing replayed, nothing deleted");
        return false;
    }
    match question(replays, if o.delete_skipped { skipped } else { 0 }) {
        None => false,
        Some(_) if o.yes => true,
        Some(q) => ask(&q),
    }
}

/// The stack the flags describe: the functions by name (in `region`, the queue URL's account) or
/// by ARN, and the rules.
fn stack(o: &Options, region: Option<String>) -> Result<Stack, Failed> {
    let region = region.ok_or_else(|| {
        Failed("no AWS region is set: set AWS_REGION (the stack's region) or a profile's region".into())
    })?;
    let account = queue_account(&o.queue_url).ok_or_else(|| {
        Failed(format!(
            "{} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME): check --queue-url, the stack's FailedInvocationsQueueUrl output",
            o.queue_url
        ))
    })?;
    Ok(Stack {
        deploy: FunctionId::named(&o.deploy, &region, account).map_err(|e| Failed(format!("--function: {e}")))?,
        verify: FunctionId::named(&o.verify, &region, account)
            .map_err(|e| Failed(format!("--verify-function: {e}")))?,
        rules: o.rules.clone(),
    })
}
