//! What the redrive tests share: the stack's functions and rules, the events, and the two kinds
//! of parked message as Lambda and EventBridge write them.

use serde_json::{json, Value};

use super::plan::Plan;
use super::stack::{FunctionId, Stack};
use crate::queue::Message;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "ap-southeast-2";
pub const DEPLOY: &str = "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-deploy";
pub const VERIFY: &str = "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-verify";
pub const PUSH_RULE: &str = "arn:aws:events:ap-southeast-2:123456789012:rule/pushdeploy-DeployFunctionEcrPush-1A2B3C4D";
pub const ECS_RULE: &str =
    "arn:aws:events:ap-southeast-2:123456789012:rule/pushdeploy-VerifyFunctionEcsDeployment-5E6F7A8B";

/// The functions by name (as the flags default), the rules unknown.
pub fn stack() -> Stack {
    Stack {
        deploy: FunctionId::named("pushdeploy-deploy", REGION, ACCOUNT).unwrap(),
        verify: FunctionId::named("pushdeploy-verify", REGION, ACCOUNT).unwrap(),
        rules: vec![],
    }
}

pub fn push() -> Value {
    serde_json::from_str(include_str!("../../../events/ecr-push-backend.json")).unwrap()
}

pub fn ecs() -> Value {
    serde_json::from_str(include_str!("../../../events/ecs-deployment-completed.json")).unwrap()
}

pub fn hook() -> Value {
    serde_json::from_str(include_str!("../../../events/ecs-hook-post-test-traffic-shift.json")).unwrap()
}

/// A Lambda OnFailure destination record as Lambda writes it to SQS.
pub fn record(function_arn: &str, payload: Value) -> Message {
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
pub fn dead_letter(rule: Option<&str>, target: &str, payload: Value) -> Message {
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

pub fn skipped(p: &Plan) -> &str {
    match p {
        Plan::Skip(why) => why,
        Plan::Replay { function, .. } => panic!("replayed to {function:?}, expected a skip"),
    }
}
