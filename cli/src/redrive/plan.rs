//! Planning: the decision for one message (replay it to one of the stack's functions, or skip it
//! and why) and the order replays go in.

use pushdeploy::inbound::Trigger;
use serde_json::Value;

use super::clip;
use super::parked::{read, Parked};
use super::stack::{Stack, Target};
use crate::queue::Message;

/// What redrive does with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Invoke `function` asynchronously with `payload`, then delete the message.
    Replay { function: Target, payload: Value },
    /// Leave it (or with `--delete-skipped`, delete it), for this reason.
    Skip(String),
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
    match (target, pushdeploy::inbound::parse(payload.clone())) {
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

/// The order replays go in: by the event's own time, oldest first (a later push then lands
/// last, as it would have; an ECS deployment's IN_PROGRESS before its COMPLETED), then as SQS
/// handed them over. Indexes into `plans`.
pub fn replay_order(messages: &[Message], plans: &[Plan]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len()).filter(|i| matches!(plans[*i], Plan::Replay { .. })).collect();
    let time = |i: usize| match &plans[i] {
        Plan::Replay { payload, .. } => {
            payload["time"].as_str().and_then(pushdeploy::domain::record::epoch_seconds).or(messages[i].sent_at)
        }
        Plan::Skip(_) => None,
    };
    order.sort_by(|a, b| time(*a).unwrap_or(f64::MAX).total_cmp(&time(*b).unwrap_or(f64::MAX)));
    order
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use serde_json::json;

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
}
