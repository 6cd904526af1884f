//! `validate --live`: the deployed verify function sends one GET to each smoke URL of the live
//! config (`{"action": "probe"}`, Lambda Invoke) and says what came back; printed one URL a block.

use std::process::ExitCode;

use pushdeploy::domain::text::printable;
use serde_json::{json, Value};

use crate::insight::Failed;
use crate::invoke::{invoke_payload, Answer};

/// Probes through `function`: 0 every URL answered without an error nor a redirect a smoke test
/// refuses, 1 one did not (or the probe was refused), 2 the function could not be invoked.
pub async fn run(function: &str, service: Option<&str>) -> Result<ExitCode, Failed> {
    let payload = match service {
        Some(s) => json!({"action": "probe", "service": s}),
        None => json!({"action": "probe"}),
    };
    println!("live, through {}:", printable(function));
    let body = match invoke_payload(function, &payload).await? {
        Answer::Summary(body) => body,
        Answer::Failed(kind, message) => {
            return Err(Failed(format!("{function} failed the probe ({kind}): {message}")));
        }
    };
    if body["outcome"] != "probed" {
        let why = body["reason"].as_str().map_or_else(|| body.to_string(), str::to_string);
        println!("  refused: {}", printable(&why));
        if body.get("outcome").is_none() {
            println!("  (the deployed verify function predates validate --live: update the stack)");
        }
        return Ok(ExitCode::from(1));
    }
    let mut healthy = true;
    for url in body["probed"].as_array().map(Vec::as_slice).unwrap_or_default() {
        healthy &= print_url(url);
    }
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One URL's block; false when it failed or stopped at a redirect a smoke test refuses.
fn print_url(url: &Value) -> bool {
    let s = |v: &Value| printable(v.as_str().unwrap_or("")).into_owned();
    println!("  {:<12} {:<8} {}", s(&url["service"]), s(&url["key"]), s(&url["target"]));
    let mut ok = true;
    for hop in url["hops"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let at = match hop["connected"].as_str() {
            Some(addr) => format!(" ({}, {} ms)", printable(addr), hop["ms"]),
            None => format!(" ({} ms)", hop["ms"]),
        };
        let line = match (&hop["status"], hop["error"].as_str()) {
            (_, Some(error)) => {
                ok = false;
                format!("error: {}", printable(error))
            }
            (Value::Number(status), None) => match hop["location"].as_str() {
                Some(to) => format!("{status} → {}", printable(to)),
                None => status.to_string(),
            },
            _ => "no answer".to_string(),
        };
        println!("  {:<21} {line}{at}", "");
        if let Some(why) = hop["not_followed"].as_str() {
            ok = false;
            println!("  {:<21} not followed: {}", "", printable(why));
        }
    }
    ok
}
