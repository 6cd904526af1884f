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
//! its helpers carry them out.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use pushdeploy::event::Trigger;
use pushdeploy::text::printable;
use serde_json::Value;

use crate::insight::Failed;
use crate::queue::{Message, Queue};
use crate::render::ago;

/// How long a message read by `redrive` stays hidden from anyone else reading the queue (another
/// redrive): long enough to read the list and answer the question. Whatever is not replayed is
/// made visible again at the end.
pub const VISIBILITY_SECONDS: i32 = 600;
/// Replays start only while this much of the hidden time is left, so that no message can be read
/// and replayed by a second redrive while this one still replays it.
const MARGIN_SECONDS: f64 = 60.0;

/// One of the stack's two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `deploy`: ECR pushes (the EcrPush rule).
    Deploy,
    /// `verify`: ECS deployment state changes (the EcsDeployment rule).
    Verify,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Target::Deploy => "deploy",
            Target::Verify => "verify",
        }
    }
}

/// A Lambda function as an ARN names it, whatever version or alias the ARN adds: a failure record
/// names `…:function:NAME:$LATEST` (or the version or alias that ran), a dead letter the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionId {
    region: String,
    account: String,
    name: String,
}

impl FunctionId {
    /// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, or `None`.
    pub fn from_arn(arn: &str) -> Option<FunctionId> {
        let parts: Vec<&str> = arn.split(':').collect();
        let (region, account, name) = match parts.as_slice() {
            ["arn", _, "lambda", region, account, "function", name] => (region, account, name),
            ["arn", _, "lambda", region, account, "function", name, qualifier] if !qualifier.is_empty() => {
                (region, account, name)
            }
            _ => return None,
        };
        let named = !region.is_empty() && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        named
            .then(|| FunctionId { region: region.to_string(), account: account.to_string(), name: name.to_string() })
            .filter(|f| !f.name.is_empty())
    }

    /// The function the operator names with a flag: a full ARN, or a plain name, which Lambda
    /// resolves in the region the command talks to and (the stack being one template) in the
    /// queue's account.
    pub fn named(name_or_arn: &str, region: &str, account: &str) -> Result<FunctionId, String> {
        if name_or_arn.starts_with("arn:") {
            return FunctionId::from_arn(name_or_arn).ok_or_else(|| {
                format!("{name_or_arn:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)")
            });
        }
        if name_or_arn.is_empty() || name_or_arn.contains(':') {
            return Err(format!(
                "{name_or_arn:?} is neither a function name nor a function ARN: give the stack's function name or its full ARN"
            ));
        }
        Ok(FunctionId { region: region.to_string(), account: account.to_string(), name: name_or_arn.to_string() })
    }
}

/// The account in a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
pub fn queue_account(url: &str) -> Option<&str> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let (_name, account) = (parts.next()?, parts.next()?);
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// What the stack is: the two functions the queue serves and, when the operator names them, the
/// two rules whose dead letters it takes.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The deploy function.
    pub deploy: FunctionId,
    /// The verify function.
    pub verify: FunctionId,
    /// The rules' ARNs (`--rule-arn`); empty when not given, and then `RULE_ARN` is not checked.
    pub rules: Vec<String>,
}

impl Stack {
    fn target(&self, arn: &str) -> Option<Target> {
        let id = FunctionId::from_arn(arn)?;
        if id == self.deploy {
            Some(Target::Deploy)
        } else if id == self.verify {
            Some(Target::Verify)
        } else {
            None
        }
    }
}

/// What redrive does with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Invoke `function` asynchronously with `payload`, then delete the message.
    Replay { function: Target, payload: Value },
    /// Leave it (or with `--delete-skipped`, delete it), for this reason.
    Skip(String),
}

/// What a message says about itself, none of it believed yet.
#[derive(Debug)]
enum Parked {
    /// A Lambda OnFailure destination record: the function that failed and the event it had.
    Record { function_arn: String, payload: Value, failure: String, at: Option<String> },
    /// An EventBridge dead letter: the body is the event, the attributes say where it was going.
    DeadLetter { target_arn: Option<String>, rule_arn: Option<String>, payload: Value, failure: String },
}

impl Parked {
    fn payload(&self) -> &Value {
        match self {
            Parked::Record { payload, .. } | Parked::DeadLetter { payload, .. } => payload,
        }
    }

    fn failure(&self) -> &str {
        match self {
            Parked::Record { failure, .. } | Parked::DeadLetter { failure, .. } => failure,
        }
    }

    fn named(&self) -> Option<&str> {
        match self {
            Parked::Record { function_arn, .. } => Some(function_arn),
            Parked::DeadLetter { target_arn, .. } => target_arn.as_deref(),
        }
    }
}

/// Reads a message as one of the two kinds the stack parks (Lambda's "Configuring destinations
/// for asynchronous invocation": `requestContext` {`requestId`, `functionArn`, `condition`,
/// `approximateInvokeCount`}, `requestPayload`, `responseContext`, `responsePayload`; EventBridge's
/// "Using dead-letter queues": the event as the body, `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`,
/// `ERROR_MESSAGE` as message attributes).
fn read(message: &Message) -> Result<Parked, String> {
    let body: Value = serde_json::from_str(&message.body).map_err(|_| "the body is not JSON".to_string())?;
    let attr = |k: &str| message.attributes.get(k).cloned();
    if attr("RULE_ARN").is_some() || attr("TARGET_ARN").is_some() {
        let failure = match (attr("ERROR_CODE"), attr("ERROR_MESSAGE")) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => code,
            (None, Some(text)) => text,
            (None, None) => "EventBridge gave no error".into(),
        };
        let failure = match attr("RETRY_ATTEMPTS") {
            Some(n) => format!("{failure} (after {n} retries)"),
            None => failure,
        };
        return Ok(Parked::DeadLetter {
            target_arn: attr("TARGET_ARN"),
            rule_arn: attr("RULE_ARN"),
            payload: body,
            failure,
        });
    }
    let Some(context) = body.get("requestContext").and_then(Value::as_object) else {
        return Err("neither a Lambda failure record (no requestContext) nor an EventBridge dead letter (no RULE_ARN or TARGET_ARN attribute)".into());
    };
    let function_arn = context
        .get("functionArn")
        .and_then(Value::as_str)
        .ok_or("a Lambda failure record without requestContext.functionArn")?
        .to_string();
    let payload = body.get("requestPayload").cloned().ok_or("a Lambda failure record without requestPayload")?;
    let condition = context.get("condition").and_then(Value::as_str).unwrap_or("failed");
    let mut failure = match context.get("approximateInvokeCount").and_then(Value::as_u64) {
        Some(n) => format!("{condition} after {n} attempt{}", if n == 1 { "" } else { "s" }),
        None => condition.to_string(),
    };
    let response = &body["responsePayload"];
    if let Some(kind) = response["errorType"].as_str() {
        failure.push_str(&format!(" ({kind}: {})", response["errorMessage"].as_str().unwrap_or("")));
    }
    Ok(Parked::Record { function_arn, payload, failure, at: body["timestamp"].as_str().map(str::to_string) })
}

/// The decision for one message: replay it to one of the stack's functions, or skip it and why.
pub fn plan(message: &Message, stack: &Stack) -> Plan {
    match read(message) {
        Ok(parked) => plan_parked(&parked, stack),
        Err(why) => Plan::Skip(why),
    }
}

fn plan_parked(parked: &Parked, stack: &Stack) -> Plan {
    let Some(named) = parked.named() else {
        return Plan::Skip("an EventBridge dead letter without TARGET_ARN".into());
    };
    let Some(target) = stack.target(named) else {
        return Plan::Skip(format!(
            "parked for {}, which is not the stack's deploy or verify function",
            clip(named, 120)
        ));
    };
    if let Parked::DeadLetter { rule_arn, .. } = parked {
        match rule_arn {
            None => return Plan::Skip("an EventBridge dead letter without RULE_ARN".into()),
            Some(rule) if !stack.rules.is_empty() && !stack.rules.contains(rule) => {
                return Plan::Skip(format!("sent by the rule {}, not one of the stack's rules", clip(rule, 120)))
            }
            Some(_) => {}
        }
    }
    match deliverable(target, parked.payload()) {
        Ok(()) => Plan::Replay { function: target, payload: parked.payload().clone() },
        Err(why) => Plan::Skip(why),
    }
}

/// Whether `target`'s own rule would deliver `payload`: an `ECR Image Action` push from `aws.ecr`
/// to deploy, an `ECS Deployment State Change` from `aws.ecs` to verify, read by the functions' own
/// event parser.
fn deliverable(target: Target, payload: &Value) -> Result<(), String> {
    if !payload.is_object() {
        return Err("the event is not a JSON object".into());
    }
    if let Some(action) = payload.get("action") {
        let action = action.as_str().map_or_else(|| action.to_string(), str::to_string);
        return Err(format!(
            "a manual action ({}): never replayed from the queue; an operator runs it with `pushdeploy {}`",
            clip(&action, 40),
            if ["deploy", "redeploy", "rollback", "plan"].contains(&action.as_str()) {
                action.as_str()
            } else {
                "ACTION"
            }
        ));
    }
    if pushdeploy::inbound::hook::is_hook_payload(payload) {
        return Err("a lifecycle hook invocation: ECS calls the hook synchronously and has long moved on, so a replay would answer a stage that is over".into());
    }
    match (target, pushdeploy::event::parse(payload.clone())) {
        (Target::Deploy, Ok(Trigger::Push(_))) | (Target::Verify, Ok(Trigger::EcsDeployment(_))) => Ok(()),
        (t, Ok(Trigger::Push(_) | Trigger::EcsDeployment(_))) => Err(format!(
            "an event {}'s rule never delivers (its detail-type belongs to the other function)",
            t.as_str()
        )),
        (_, Ok(Trigger::IgnoredEcr { reason, .. })) => {
            Err(format!("an ECR event deploy's rule never delivers: {reason}"))
        }
        (_, Ok(Trigger::Manual(_))) => Err("a manual action: never replayed from the queue".into()),
        (_, Err(e)) => Err(format!("not an event the stack's rules deliver: {e}")),
    }
}

/// `s` cut to `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// What the message's event is, for a person: `ECR Image Action 5b1e… todo-backend:v1.4.2`,
/// `ECS Deployment State Change ddca… SERVICE_DEPLOYMENT_COMPLETED todo-frontend`, `manual deploy
/// backend evil`, `lifecycle hook POST_TEST_TRAFFIC_SHIFT`, or the start of whatever it is.
fn what(payload: &Value) -> String {
    let s = |v: &Value| v.as_str().map(|s| clip(s, 80)).unwrap_or_default();
    if let Some(action) = payload.get("action") {
        let parts = [s(action), s(&payload["service"]), s(&payload["tag"])];
        return format!("manual {}", parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join(" "));
    }
    if pushdeploy::inbound::hook::is_hook_payload(payload) {
        return format!("lifecycle hook {}", s(&payload["lifecycleStage"]));
    }
    if let Some(kind) = payload.get("detail-type") {
        let d = &payload["detail"];
        let about = match (d["repository-name"].as_str(), d["eventName"].as_str()) {
            (Some(_), _) => format!("{}:{}", s(&d["repository-name"]), s(&d["image-tag"])),
            (None, Some(_)) => {
                let service = payload["resources"][0].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or("");
                format!("{} {}", s(&d["eventName"]), clip(service, 80))
            }
            _ => String::new(),
        };
        return format!("{} {} {about}", s(kind), s(&payload["id"])).trim_end().to_string();
    }
    clip(&payload.to_string(), 60)
}

/// One line for one message, before anything runs: its number, what will happen, the function
/// it goes (or was parked for), the event, its age, why it failed and, when skipped, why. Every
/// piece of it was written by whoever sent the message, so no character in it acts on the terminal.
pub fn line(n: usize, message: &Message, plan: &Plan, stack_names: (&str, &str), now: f64) -> String {
    let parked = read(message);
    let function = match (plan, &parked) {
        (Plan::Replay { function: Target::Deploy, .. }, _) => stack_names.0.to_string(),
        (Plan::Replay { function: Target::Verify, .. }, _) => stack_names.1.to_string(),
        (Plan::Skip(_), Ok(p)) => p
            .named()
            .map(|arn| FunctionId::from_arn(arn).map_or_else(|| clip(arn, 60), |f| f.name))
            .unwrap_or_else(|| "?".into()),
        (Plan::Skip(_), Err(_)) => "?".into(),
    };
    let (event, failure) = match &parked {
        Ok(p) => (what(p.payload()), p.failure().to_string()),
        // Not one of the two kinds, but perhaps JSON (a bare manual action): say what it is.
        Err(_) => match serde_json::from_str::<Value>(&message.body) {
            Ok(body) => (what(&body), "unknown".into()),
            Err(_) => (clip(&message.body, 60), "unknown".into()),
        },
    };
    let age = match &parked {
        Ok(p) => age(p, message, now),
        Err(_) => message.sent_at.map_or_else(|| "age unknown".into(), |t| format!("parked {}", ago(now - t))),
    };
    let failure = clip(&failure, 160);
    let text = match plan {
        Plan::Replay { .. } => format!("{n:>3}. replay  {function}  {event}, {age}; failed: {failure}"),
        Plan::Skip(why) => format!("{n:>3}. skip    {function}  {event}, {age}; failed: {failure} — skipped: {why}"),
    };
    printable(&text).into_owned()
}

/// `event 3m ago` from the event's own time, else when the record was written or SQS took it.
fn age(parked: &Parked, message: &Message, now: f64) -> String {
    let event_time = parked.payload()["time"].as_str().and_then(pushdeploy::record::epoch_seconds);
    if let Some(t) = event_time {
        return format!("event {}", ago(now - t));
    }
    let record_time = match parked {
        Parked::Record { at: Some(at), .. } => pushdeploy::record::epoch_seconds(at),
        _ => None,
    };
    match record_time.or(message.sent_at) {
        Some(t) => format!("parked {}", ago(now - t)),
        None => "age unknown".into(),
    }
}

/// The order replays go in: by the event's own time, oldest first (a later push then lands
/// last, as it would have; an ECS deployment's IN_PROGRESS before its COMPLETED), then as SQS
/// handed them over. Indexes into `plans`.
pub fn replay_order(messages: &[Message], plans: &[Plan]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len()).filter(|i| matches!(plans[*i], Plan::Replay { .. })).collect();
    let time = |i: usize| match &plans[i] {
        Plan::Replay { payload, .. } => {
            payload["time"].as_str().and_then(pushdeploy::record::epoch_seconds).or(messages[i].sent_at)
        }
        Plan::Skip(_) => None,
    };
    order.sort_by(|a, b| time(*a).unwrap_or(f64::MAX).total_cmp(&time(*b).unwrap_or(f64::MAX)));
    order
}

/// The question asked before anything runs (once for the whole list), or `None` when there is
/// nothing to do.
pub fn question(replays: usize, deletes: usize) -> Option<String> {
    match (replays, deletes) {
        (0, 0) => None,
        (r, 0) => Some(format!("Replay the {r} event(s) marked replay? [y/N] ")),
        (0, d) => Some(format!("Delete the {d} skipped message(s) without replaying them? [y/N] ")),
        (r, d) => Some(format!("Replay the {r} event(s) marked replay and delete the {d} skipped message(s)? [y/N] ")),
    }
}

/// `y` or `yes`, in any case; anything else (an empty line too) is no.
pub fn confirmed(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// True while replays may still start: the messages read at `received_at` stay hidden from
/// another redrive for [`VISIBILITY_SECONDS`], less a margin for the replays themselves.
pub fn still_hidden(received_at: f64, now: f64) -> bool {
    now - received_at < f64::from(VISIBILITY_SECONDS) - MARGIN_SECONDS
}

/// What happened, for the summary and the exit status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Accepted by Lambda (202) and deleted.
    pub replayed: usize,
    /// Skipped (left in the queue, or deleted with `--delete-skipped`).
    pub skipped: usize,
    /// Skipped and deleted.
    pub skipped_deleted: usize,
    /// Lambda refused, or the message could not be deleted after Lambda took it.
    pub failed: usize,
    /// Replays the operator declined, or never started (dry run, time out).
    pub not_run: usize,
}

impl Tally {
    /// `replayed 2, skipped 1 (left in the queue), failed 0`.
    pub fn summary(&self) -> String {
        let skipped = match (self.skipped, self.skipped_deleted) {
            (0, _) => "skipped 0".to_string(),
            (s, 0) => format!("skipped {s} (left in the queue)"),
            (s, d) if s == d => format!("skipped {s} (deleted)"),
            (s, d) => format!("skipped {s} ({d} deleted, {} left in the queue)", s - d),
        };
        let not_run = if self.not_run > 0 {
            format!(", not replayed {} (left in the queue)", self.not_run)
        } else {
            String::new()
        };
        format!("replayed {}, {skipped}, failed {}{not_run}", self.replayed, self.failed)
    }

    /// 2 when a replay or a delete failed; 1 when a message is left in the queue that this run
    /// did not replay (skipped, declined, a dry run's); 0 when the queue holds nothing it read.
    pub fn exit_code(&self) -> u8 {
        if self.failed > 0 {
            2
        } else if self.skipped > self.skipped_deleted || self.not_run > 0 {
            1
        } else {
            0
        }
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
    let sdk = pushdeploy::setup::AwsPolicy::default().loader().load().await;
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
    let go = if o.dry_run {
        println!("dry run: nothing replayed, nothing deleted");
        false
    } else {
        match question(order.len(), if o.delete_skipped { skipped.len() } else { 0 }) {
            None => false,
            Some(_) if o.yes => true,
            Some(q) => ask(&q),
        }
    };
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
    // Whatever was read and not deleted goes back to the queue now rather than in 10 minutes.
    let mut unreleased: Vec<String> = Vec::new();
    for (i, r) in received.iter().enumerate() {
        if !run.done.contains(&i) {
            if let Err(Failed(why)) = queue.release(&r.handle).await {
                unreleased.push(why);
            }
        }
    }
    if let Some(why) = unreleased.first() {
        eprintln!(
            "pushdeploy: {} message(s) left in the queue stay hidden from the next redrive for up to {} minutes: {}",
            unreleased.len(),
            VISIBILITY_SECONDS / 60,
            printable(why)
        );
    }
    println!("{}", run.tally.summary());
    Ok(ExitCode::from(run.tally.exit_code()))
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

/// What a run did so far.
#[derive(Default)]
struct Carried {
    tally: Tally,
    /// Replays started.
    attempted: usize,
    /// Messages deleted, or whose event Lambda took: never returned to the queue by this run.
    done: HashSet<usize>,
}

/// What was read and what to do with it: messages are indexes into `received` and `plans`.
struct Work<'a> {
    received: &'a [crate::queue::Received],
    plans: &'a [Plan],
    /// The replays, in order.
    order: &'a [usize],
    /// Skipped messages to delete.
    to_delete: &'a [usize],
}

/// Replays `work.order` (deleting each message once Lambda took its event), then deletes
/// `work.to_delete`.
async fn carry_out(
    queue: &Queue,
    lambda: &crate::invoke::Lambda,
    o: &Options,
    work: Work<'_>,
    mut run: Carried,
) -> Carried {
    let Work { received, plans, order, to_delete } = work;
    for &i in order {
        let Plan::Replay { function, payload } = &plans[i] else { continue };
        let name = if *function == Target::Deploy { &o.deploy } else { &o.verify };
        run.attempted += 1;
        if let Err(Failed(why)) = lambda.send_event(name, payload).await {
            run.tally.failed += 1;
            println!("{:>3}. FAILED: {}; left in the queue", i + 1, printable(&why));
            continue;
        }
        run.done.insert(i);
        match queue.delete(&received[i].handle).await {
            Ok(()) => {
                run.tally.replayed += 1;
                println!("{:>3}. replayed to {} (accepted by Lambda); deleted from the queue", i + 1, printable(name));
            }
            Err(Failed(why)) => {
                // Lambda has it: a second replay of it later changes nothing (the functions
                // answer a duplicate delivery as it stands), but say so.
                run.tally.failed += 1;
                println!(
                    "{:>3}. replayed to {}, but not deleted ({}): the next redrive replays it again",
                    i + 1,
                    printable(name),
                    printable(&why)
                );
            }
        }
    }
    for &i in to_delete {
        match queue.delete(&received[i].handle).await {
            Ok(()) => {
                run.tally.skipped_deleted += 1;
                run.done.insert(i);
                println!("{:>3}. skipped and deleted", i + 1);
            }
            Err(Failed(why)) => {
                run.tally.failed += 1;
                println!("{:>3}. skipped, and not deleted: {}", i + 1, printable(&why));
            }
        }
    }
    run
}

/// Asks `question` on the terminal; no answer (end of input) is no.
fn ask(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && confirmed(&answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCOUNT: &str = "123456789012";
    const REGION: &str = "ap-southeast-2";
    const DEPLOY: &str = "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-deploy";
    const VERIFY: &str = "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-verify";
    const PUSH_RULE: &str = "arn:aws:events:ap-southeast-2:123456789012:rule/pushdeploy-DeployFunctionEcrPush-1A2B3C4D";
    const ECS_RULE: &str =
        "arn:aws:events:ap-southeast-2:123456789012:rule/pushdeploy-VerifyFunctionEcsDeployment-5E6F7A8B";

    /// The functions by name (as the flags default), the rules unknown.
    fn stack() -> Stack {
        Stack {
            deploy: FunctionId::named("pushdeploy-deploy", REGION, ACCOUNT).unwrap(),
            verify: FunctionId::named("pushdeploy-verify", REGION, ACCOUNT).unwrap(),
            rules: vec![],
        }
    }

    fn push() -> Value {
        serde_json::from_str(include_str!("../../events/ecr-push-backend.json")).unwrap()
    }

    fn ecs() -> Value {
        serde_json::from_str(include_str!("../../events/ecs-deployment-completed.json")).unwrap()
    }

    fn hook() -> Value {
        serde_json::from_str(include_str!("../../events/ecs-hook-post-test-traffic-shift.json")).unwrap()
    }

    /// A Lambda OnFailure destination record as Lambda writes it to SQS.
    fn record(function_arn: &str, payload: Value) -> Message {
        let body = json!({
            "version": "1.0",
            "timestamp": "2026-11-24T09:31:02.120Z",
            "requestContext": {
                "requestId": "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
                "functionArn": function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": payload,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Permanent.AccessDenied", "errorMessage": "ecs:UpdateService denied"}
        });
        Message { body: body.to_string(), sent_at: Some(1_795_000_000.0), ..Message::default() }
    }

    /// An EventBridge dead letter: the event as the body, where it was going as attributes.
    fn dead_letter(rule: Option<&str>, target: &str, payload: Value) -> Message {
        let mut attributes: std::collections::BTreeMap<String, String> = [
            ("TARGET_ARN", target),
            ("ERROR_CODE", "SDK_CLIENT_ERROR"),
            ("ERROR_MESSAGE", "Rate exceeded"),
            ("EXHAUSTED_RETRY_CONDITION", "MaximumRetryAttempts"),
            ("RETRY_ATTEMPTS", "10"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(rule) = rule {
            attributes.insert("RULE_ARN".into(), rule.into());
        }
        Message { body: payload.to_string(), attributes, sent_at: Some(1_795_000_000.0) }
    }

    fn skipped(p: &Plan) -> &str {
        match p {
            Plan::Skip(why) => why,
            Plan::Replay { function, .. } => panic!("replayed to {function:?}, expected a skip"),
        }
    }

    #[test]
    fn a_push_parked_by_deploy_is_replayed_to_deploy_whatever_version_or_alias_ran() {
        for arn in [format!("{DEPLOY}:$LATEST"), format!("{DEPLOY}:7"), format!("{DEPLOY}:live"), DEPLOY.to_string()] {
            assert_eq!(
                plan(&record(&arn, push()), &stack()),
                Plan::Replay { function: Target::Deploy, payload: push() },
                "{arn}"
            );
        }
        // An ECS deployment event parked by verify goes to verify.
        let verified = plan(&record(&format!("{VERIFY}:$LATEST"), ecs()), &stack());
        assert_eq!(verified, Plan::Replay { function: Target::Verify, payload: ecs() });
    }

    #[test]
    fn a_record_of_any_other_function_is_skipped() {
        for arn in [
            "arn:aws:lambda:ap-southeast-2:123456789012:function:someone-else:$LATEST",
            "arn:aws:lambda:ap-southeast-2:999999999999:function:pushdeploy-deploy:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:pushdeploy-deploy:$LATEST",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-deploy-evil",
            "pushdeploy-deploy",
            "arn:aws:sqs:ap-southeast-2:123456789012:function:pushdeploy-deploy",
        ] {
            let why = skipped(&plan(&record(arn, push()), &stack())).to_string();
            assert!(why.contains("not the stack's deploy or verify function"), "{arn}: {why}");
        }
    }

    #[test]
    fn a_manual_action_is_never_replayed_even_from_our_own_functions_record() {
        let evil = json!({"action": "deploy", "service": "backend", "tag": "evil"});
        let why = skipped(&plan(&record(&format!("{DEPLOY}:$LATEST"), evil.clone()), &stack())).to_string();
        assert!(why.starts_with("a manual action (deploy)") && why.contains("pushdeploy deploy"), "{why}");
        for action in
            [json!({"action": "rollback", "service": "backend"}), json!({"action": "nuke"}), json!({"action": 5})]
        {
            assert!(
                skipped(&plan(&record(DEPLOY, action.clone()), &stack())).starts_with("a manual action"),
                "{action}"
            );
        }
        // The same through a dead letter that claims our rule and our function.
        let with_rules = Stack { rules: vec![PUSH_RULE.into(), ECS_RULE.into()], ..stack() };
        let why = skipped(&plan(&dead_letter(Some(PUSH_RULE), DEPLOY, evil), &with_rules)).to_string();
        assert!(why.starts_with("a manual action"), "{why}");
        // A push with an "action" key added is still a manual action to the functions' parser.
        let mut dressed = push();
        dressed["action"] = json!("rollback");
        assert!(skipped(&plan(&record(DEPLOY, dressed), &stack())).starts_with("a manual action"));
    }

    #[test]
    fn eventbridge_dead_letters_replay_only_to_our_functions_from_our_rules() {
        let with_rules = Stack { rules: vec![PUSH_RULE.into(), ECS_RULE.into()], ..stack() };
        // Genuine: the push rule's dead letter for deploy, rules known or not.
        for s in [&stack(), &with_rules] {
            assert_eq!(
                plan(&dead_letter(Some(PUSH_RULE), DEPLOY, push()), s),
                Plan::Replay { function: Target::Deploy, payload: push() }
            );
        }
        assert_eq!(
            plan(&dead_letter(Some(ECS_RULE), VERIFY, ecs()), &with_rules),
            Plan::Replay { function: Target::Verify, payload: ecs() }
        );
        // Forged: aimed at another function.
        let other = "arn:aws:lambda:ap-southeast-2:123456789012:function:payments-admin";
        let why = skipped(&plan(&dead_letter(Some(PUSH_RULE), other, push()), &with_rules)).to_string();
        assert!(why.contains("payments-admin") && why.contains("not the stack's"), "{why}");
        // Forged: from a rule that is not the stack's (when the rules are known), or from no rule.
        let rogue = "arn:aws:events:ap-southeast-2:123456789012:rule/anyone";
        let why = skipped(&plan(&dead_letter(Some(rogue), DEPLOY, push()), &with_rules)).to_string();
        assert!(why.contains("rule/anyone") && why.contains("not one of the stack's rules"), "{why}");
        assert!(skipped(&plan(&dead_letter(None, DEPLOY, push()), &stack())).contains("without RULE_ARN"));
    }

    #[test]
    fn a_lifecycle_hook_payload_is_never_replayed() {
        let why = skipped(&plan(&record(&format!("{VERIFY}:$LATEST"), hook()), &stack())).to_string();
        assert!(why.starts_with("a lifecycle hook invocation"), "{why}");
        let why = skipped(&plan(&dead_letter(Some(ECS_RULE), VERIFY, hook()), &stack())).to_string();
        assert!(why.starts_with("a lifecycle hook invocation"), "{why}");
    }

    #[test]
    fn garbage_and_events_the_functions_rule_never_delivers_are_skipped() {
        let s = stack();
        let cases: Vec<(Message, &str)> = vec![
            (Message { body: "not json".into(), ..Message::default() }, "the body is not JSON"),
            (Message { body: "{\"hello\": 1}".into(), ..Message::default() }, "neither a Lambda failure record"),
            (
                Message { body: json!({"requestContext": {"functionArn": DEPLOY}}).to_string(), ..Message::default() },
                "without requestPayload",
            ),
            (
                Message {
                    body: json!({"requestContext": {}, "requestPayload": push()}).to_string(),
                    ..Message::default()
                },
                "without requestContext.functionArn",
            ),
            (record(DEPLOY, json!("a string")), "not a JSON object"),
            (
                record(DEPLOY, json!({"source": "aws.s3", "detail-type": "Object Created"})),
                "not an event the stack's rules deliver",
            ),
            // Each function gets only its own rule's events.
            (record(VERIFY, push()), "verify's rule never delivers"),
            (record(DEPLOY, ecs()), "deploy's rule never delivers"),
            (dead_letter(Some(PUSH_RULE), VERIFY, push()), "verify's rule never delivers"),
        ];
        for (message, expected) in cases {
            let why = skipped(&plan(&message, &s)).to_string();
            assert!(why.contains(expected), "{}: {why}", message.body);
        }
        // An ECR event deploy's rule filters out (a delete, a failed push, an untagged push).
        let mut deleted = push();
        deleted["detail"]["action-type"] = json!("DELETE");
        assert!(
            skipped(&plan(&record(DEPLOY, deleted), &s)).contains("never delivers: ECR action DELETE is not a push")
        );
        let mut untagged = push();
        untagged["detail"].as_object_mut().unwrap().remove("image-tag");
        assert!(skipped(&plan(&record(DEPLOY, untagged), &s)).contains("untagged push"));
    }

    #[test]
    fn function_ids_compare_name_region_and_account_and_flags_take_a_name_or_an_arn() {
        let by_name = FunctionId::named("pushdeploy-deploy", REGION, ACCOUNT).unwrap();
        assert_eq!(FunctionId::named(DEPLOY, "us-east-1", "999999999999").unwrap(), by_name, "an ARN says it all");
        assert_eq!(FunctionId::from_arn(&format!("{DEPLOY}:$LATEST")), Some(by_name.clone()));
        assert_eq!(
            FunctionId::from_arn(&format!("arn:aws-cn:lambda:{REGION}:{ACCOUNT}:function:pushdeploy-deploy")),
            Some(by_name)
        );
        for bad in [
            "",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:",
            "arn:aws:lambda:ap-southeast-2:1234:function:f",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:f:",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:f:1:2",
            "arn:aws:lambda:ap-southeast-2:123456789012:layer:f",
        ] {
            assert_eq!(FunctionId::from_arn(bad), None, "{bad}");
        }
        assert!(FunctionId::named("arn:aws:sqs:x", REGION, ACCOUNT).unwrap_err().contains("not a Lambda function ARN"));
        assert!(FunctionId::named("123456789012:function:f", REGION, ACCOUNT).unwrap_err().contains("neither"));
        assert_eq!(
            queue_account("https://sqs.ap-southeast-2.amazonaws.com/123456789012/pushdeploy-FailedInvocations-AbC"),
            Some(ACCOUNT)
        );
        assert_eq!(queue_account("http://127.0.0.1:5000/123456789012/q/"), Some(ACCOUNT));
        assert_eq!(queue_account("https://sqs.ap-southeast-2.amazonaws.com/q"), None);
        assert_eq!(queue_account("pushdeploy-FailedInvocations"), None);
    }

    #[test]
    fn each_message_shows_as_one_line_with_function_event_age_and_why_it_failed() {
        let now = pushdeploy::record::epoch_seconds("2026-11-24T09:42:00Z").unwrap();
        let names = ("pushdeploy-deploy", "pushdeploy-verify");
        let m = record(&format!("{DEPLOY}:$LATEST"), push());
        let text = line(1, &m, &plan(&m, &stack()), names, now);
        assert_eq!(
            text,
            "  1. replay  pushdeploy-deploy  ECR Image Action 5b1e4a2c-9d0f-4c6e-8a7b-0e5566167483 todo-backend:v1.4.2, event 12m ago; failed: RetriesExhausted after 3 attempts (Permanent.AccessDenied: ecs:UpdateService denied)"
        );
        let m = dead_letter(Some(ECS_RULE), VERIFY, ecs());
        let text = line(2, &m, &plan(&m, &stack()), names, now);
        assert!(text.starts_with("  2. replay  pushdeploy-verify  ECS Deployment State Change ddca6449-b258-46c0-8653-e0e3a0000001 SERVICE_DEPLOYMENT_COMPLETED todo-frontend, event 8m ago; failed: SDK_CLIENT_ERROR: Rate exceeded (after 10 retries)"), "{text}");
        let m = record(DEPLOY, json!({"action": "deploy", "service": "backend", "tag": "evil"}));
        let text = line(3, &m, &plan(&m, &stack()), names, now);
        assert!(
            text.starts_with(
                "  3. skip    pushdeploy-deploy  manual deploy backend evil, parked 11m ago; failed: RetriesExhausted"
            ) && text.contains("— skipped: a manual action (deploy)"),
            "{text}"
        );
        let bare = Message { body: r#"{"action":"rollback","service":"backend"}"#.into(), ..Message::default() };
        let text = line(5, &bare, &plan(&bare, &stack()), names, now);
        assert!(
            text.starts_with(
                "  5. skip    ?  manual rollback backend, age unknown; failed: unknown — skipped: neither"
            ),
            "{text}"
        );
        let m = Message { body: "\u{1b}[2Jgarbage".into(), sent_at: Some(now - 30.0), ..Message::default() };
        let text = line(4, &m, &plan(&m, &stack()), names, now);
        assert!(
            text.starts_with(
                "  4. skip    ?  \u{FFFD}[2Jgarbage, parked 30s ago; failed: unknown — skipped: the body is not JSON"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_hostile_message_prints_one_line_and_no_control_character() {
        let mut event = push();
        event["id"] = json!("e\u{1b}]0;owned\u{7}\r\n  2. replay  pushdeploy-deploy  forged");
        event["detail"]["image-tag"] = json!("v1\u{202E}gpj.exe");
        let mut m = record(&format!("{DEPLOY}:$LATEST"), event);
        let mut body: Value = serde_json::from_str(&m.body).unwrap();
        body["responsePayload"]["errorMessage"] = json!("denied\u{9b}31m\nFAKE LINE");
        m.body = body.to_string();
        let p = plan(&m, &stack());
        assert!(matches!(p, Plan::Skip(_)), "the parser refuses that event id");
        let text = line(1, &m, &p, ("pushdeploy-deploy", "pushdeploy-verify"), 0.0);
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.chars().any(pushdeploy::text::is_unsafe), "{text:?}");
        let rogue = dead_letter(Some("rule/\u{1b}[2J"), "arn:aws:lambda:r:123456789012:function:x\u{85}y", push());
        let text = line(2, &rogue, &plan(&rogue, &stack()), ("d", "v"), 0.0);
        assert!(text.lines().count() == 1 && !text.chars().any(pushdeploy::text::is_unsafe), "{text:?}");
    }

    #[test]
    fn replays_go_oldest_event_first_and_skips_are_not_replayed() {
        let at = |t: &str| {
            let mut e = push();
            e["time"] = json!(t);
            record(DEPLOY, e)
        };
        let messages = vec![
            at("2026-11-24T10:00:00Z"),
            record(DEPLOY, json!({"action": "rollback", "service": "backend"})),
            at("2026-11-24T09:00:00Z"),
            at("2026-11-24T09:30:00Z"),
        ];
        let plans: Vec<Plan> = messages.iter().map(|m| plan(m, &stack())).collect();
        assert_eq!(replay_order(&messages, &plans), vec![2, 3, 0]);
    }

    #[test]
    fn one_question_for_the_list_and_only_yes_means_yes() {
        assert_eq!(question(0, 0), None);
        assert_eq!(question(2, 0).unwrap(), "Replay the 2 event(s) marked replay? [y/N] ");
        assert!(question(0, 3).unwrap().starts_with("Delete the 3 skipped message(s)"));
        assert!(question(1, 1).unwrap().contains("and delete the 1 skipped"));
        for yes in ["y\n", "Y", " yes ", "YES\r\n"] {
            assert!(confirmed(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "y es", "sure"] {
            assert!(!confirmed(no), "{no:?}");
        }
    }

    #[test]
    fn replays_start_only_while_the_messages_are_still_hidden_from_another_redrive() {
        assert!(still_hidden(1000.0, 1000.0));
        assert!(still_hidden(1000.0, 1000.0 + 539.0));
        assert!(!still_hidden(1000.0, 1000.0 + 540.0));
    }

    #[test]
    fn the_summary_and_exit_status_say_what_is_left_in_the_queue() {
        let all = Tally { replayed: 2, ..Tally::default() };
        assert_eq!((all.summary().as_str(), all.exit_code()), ("replayed 2, skipped 0, failed 0", 0));
        let left = Tally { replayed: 1, skipped: 1, ..Tally::default() };
        assert_eq!(
            (left.summary().as_str(), left.exit_code()),
            ("replayed 1, skipped 1 (left in the queue), failed 0", 1)
        );
        let deleted = Tally { replayed: 1, skipped: 2, skipped_deleted: 2, ..Tally::default() };
        assert_eq!((deleted.summary().as_str(), deleted.exit_code()), ("replayed 1, skipped 2 (deleted), failed 0", 0));
        let failed = Tally { replayed: 1, failed: 1, ..Tally::default() };
        assert_eq!(failed.exit_code(), 2);
        let declined = Tally { not_run: 3, ..Tally::default() };
        assert_eq!(
            (declined.summary().as_str(), declined.exit_code()),
            ("replayed 0, skipped 0, failed 0, not replayed 3 (left in the queue)", 1)
        );
    }
}
