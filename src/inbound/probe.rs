//! `{"action": "probe"}`: an operator's `pushdeploy validate --live`, asking verify to send one
//! GET to each smoke URL of the live config and say what came back. The payload may name one
//! configured service and nothing else: never a URL, a header or a method, so an invocation can
//! only make verify request what the live config already names.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::error::InputError;
use crate::domain::image::truncate;

/// A probe request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    /// `"probe"`.
    action: String,
    /// One configured service (its `name`); `None`: every service with a smoke test.
    #[serde(default)]
    pub service: Option<String>,
}

/// True when `payload` is a probe (`"action": "probe"`), well formed or not: verify answers it as
/// a probe (or says why it cannot), never as an event or a lifecycle hook.
pub fn is_probe(payload: &Value) -> bool {
    payload.get("action").and_then(Value::as_str) == Some("probe")
}

/// The probe `payload` asks for, or why it is refused.
pub fn parse(payload: &Value) -> Result<ProbeRequest, InputError> {
    let req: ProbeRequest = serde_json::from_value(payload.clone()).map_err(|e| {
        InputError::new(format!(
            "malformed probe: {e}; a probe is {{\"action\": \"probe\"}} or {{\"action\": \"probe\", \"service\": NAME}}"
        ))
    })?;
    if req.action != "probe" {
        return Err(InputError::new("a probe's action is \"probe\""));
    }
    if let Some(s) = &req.service {
        if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
            return Err(InputError::new(format!("probe: {:?} is not a service name", truncate(s))));
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_probe_names_at_most_a_service_and_nothing_else() {
        assert_eq!(parse(&json!({"action": "probe"})).unwrap().service, None);
        assert_eq!(
            parse(&json!({"action": "probe", "service": "backend"})).unwrap().service.as_deref(),
            Some("backend")
        );
        for bad in [
            json!({"action": "probe", "url": "http://169.254.169.254/"}),
            json!({"action": "probe", "service": "backend", "headers": {"Authorization": "x"}}),
            json!({"action": "probe", "service": 7}),
            json!({"action": "probe", "service": ""}),
        ] {
            let e = parse(&bad).unwrap_err().0;
            assert!(e.contains("probe"), "{bad}: {e}");
        }
        assert!(parse(&json!({"action": "probe", "url": "x"})).unwrap_err().0.contains("unknown field `url`"));
        assert!(is_probe(&json!({"action": "probe", "junk": 1})));
        assert!(!is_probe(&json!({"action": "deploy"})) && !is_probe(&json!({"detail-type": "x"})));
    }
}
