//! What the demo prints, and how it invokes a function.

use serde_json::Value;
use testkit::estate::Aws;
use testkit::runtime::FunctionProcess;

/// Prints a record's timeline, with each event's offset from `started`, and its smoke test.
pub fn print_timeline(record: &Value) {
    println!(
        "  timeline of {} ({}:{}, status {}):",
        text(&record["id"]),
        text(&record["repository"]),
        text(&record["tag"]),
        record["status"]
    );
    let at = |e: &Value| pushdeploy::domain::record::epoch_seconds(text(&e["at"]));
    let events = record["timeline"].as_array().cloned().unwrap_or_default();
    let start = events.iter().find(|e| e["event"] == "started").and_then(at);
    for e in &events {
        let offset = match (start, at(e)) {
            (Some(s), Some(t)) if e["event"] != "pushed" => format!("+{:>6.0} ms", (t - s) * 1000.0),
            _ => "          ".into(),
        };
        println!("    {offset}  {:<16} {}", text(&e["event"]), text(&e["at"]));
    }
    if let Some(smoke) = record["smoke"].as_object() {
        let probe = smoke
            .get("read_after_write")
            .map(|p| format!(", read-after-write {}/{} reads", p["reads_seen"], p["reads"]))
            .unwrap_or_default();
        println!("    smoke: {} round(s) in {} ms{probe}", smoke["rounds_run"], smoke["duration_ms"]);
    }
}

/// The function's answer to `event`; an error answer ends the demo, with the function's logs.
pub async fn invoke(function: &FunctionProcess, event: &Value) -> Value {
    match function.invoke(event).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("the function answered an error: {e}\n{}", function.logs().join("\n"));
            std::process::exit(1);
        }
    }
}

/// A task definition's short name and its first container's image.
pub async fn images(aws: &Aws, td: &str) -> String {
    let all = aws.images_of(td).await;
    let (name, image) = all.first().cloned().unwrap_or_default();
    format!("{} ({name}={image})", short(td))
}

/// The last part of an ARN.
pub fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A JSON string's text ("" for anything else).
pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Prints a step's title.
pub fn step(title: &str) {
    println!("\n== {title}");
}
