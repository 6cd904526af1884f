//! Reading a parked message: what it says about itself (the function it was parked for, the
//! event, why it failed), none of it believed yet.

use serde_json::Value;

use crate::queue::Message;

/// What a message says about itself, none of it believed yet.
#[derive(Debug)]
pub(super) enum Parked {
    /// A Lambda OnFailure destination record: the function that failed and the event it had.
    Record { function_arn: String, payload: Value, failure: String, at: Option<String> },
    /// An EventBridge dead letter: the body is the event, the attributes say where it was going.
    DeadLetter { target_arn: Option<String>, rule_arn: Option<String>, payload: Value, failure: String },
}

impl Parked {
    pub(super) fn payload(&self) -> &Value {
        match self {
            Parked::Record { payload, .. } | Parked::DeadLetter { payload, .. } => payload,
        }
    }

    pub(super) fn failure(&self) -> &str {
        match self {
            Parked::Record { failure, .. } | Parked::DeadLetter { failure, .. } => failure,
        }
    }

    pub(super) fn named(&self) -> Option<&str> {
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
pub(super) fn read(message: &Message) -> Result<Parked, String> {
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
