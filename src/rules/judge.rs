//! Pure judgement: a response against a check, rounds against the required streak, reads against a marker.

use serde::Serialize;

use crate::config::CheckConfig;
use crate::domain::text::without_query;

/// What one HTTP request came to, as the client saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fetched {
    /// Status code, when a response arrived.
    pub status: Option<u16>,
    /// Time to the end of the body (or the failure).
    pub latency_ms: u64,
    /// Body bytes, at most the cap.
    pub body: Vec<u8>,
    /// The body was larger than the cap and was not read further.
    pub over_cap: bool,
    /// Transport failure (timeout, refused, TLS), if any.
    pub error: Option<String>,
    /// A redirect to another site that was refused: where it pointed, scheme and host only
    /// (see [`crate::smoke::client::site_of`]).
    pub redirect_refused: Option<String>,
}

/// One check's result in one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// `GET todoItems`: the method and the check's path without its query.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// Status seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Latency seen.
    pub latency_ms: u64,
    /// What failed and why (empty when it passed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// The label of a check in the record: its method and path, without the path's query.
pub fn check_label(check: &CheckConfig) -> String {
    format!("{} {}", check.method, without_query(&check.path))
}

/// Judges one response against one check. The result says what kind of mismatch it was, never
/// any of the response's text: the build under test writes that text, and the result goes into
/// the record, the logs and the notification (where a token it echoes would be readable by all).
pub fn judge_check(check: &CheckConfig, got: &Fetched) -> CheckResult {
    let mut failures = Vec::new();
    if let Some(e) = &got.error {
        failures.push(format!("request failed: {e}"));
    }
    if let Some(site) = &got.redirect_refused {
        failures.push(format!("redirect to another host refused ({site})"));
    }
    if got.over_cap {
        failures.push(format!("response body exceeds the cap ({} bytes read, rest refused)", got.body.len()));
    }
    match got.status {
        Some(s) if s != check.status => failures.push(format!("status {s}, expected {}", check.status)),
        None if got.error.is_none() => failures.push("no response".into()),
        _ => {}
    }
    if got.status.is_some() && !got.over_cap {
        if let Some(needle) = &check.contains {
            if !contains(&got.body, needle.as_bytes()) {
                failures.push(format!("body ({} bytes) does not contain the expected text", got.body.len()));
            }
        }
        // A pointer alone asks for JSON with a value there ("" is the whole document: the answer is
        // JSON, which an HTML fallback page is not); with `equals`, that value too.
        if let Some(pointer) = &check.json_pointer {
            let shown = if pointer.is_empty() { "the document" } else { pointer.as_str() };
            match (serde_json::from_slice::<serde_json::Value>(&got.body), &check.equals) {
                (Err(_), _) => failures.push(format!("body is not JSON, so {shown} cannot be read")),
                (Ok(v), want) => match (v.pointer(pointer), want) {
                    (None, _) => failures.push(format!("{shown} is missing from the body")),
                    (Some(found), Some(want)) if found != want => failures.push(differs(pointer, found, want)),
                    _ => {}
                },
            }
        }
    }
    if let Some(max) = check.max_latency_ms {
        if got.latency_ms > max {
            failures.push(format!("took {} ms, limit {max} ms", got.latency_ms));
        }
    }
    CheckResult {
        check: check_label(check),
        passed: failures.is_empty(),
        status: got.status,
        latency_ms: got.latency_ms,
        failures,
    }
}

/// True when `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// How the value found at `pointer` differs from the expected one, by JSON type only: the value
/// itself is the response's text.
fn differs(pointer: &str, found: &serde_json::Value, want: &serde_json::Value) -> String {
    let place = if pointer.is_empty() { "the document".to_string() } else { format!("value at {pointer}") };
    let (found, want) = (json_type(found), json_type(want));
    if found == want {
        format!("{place} differs from the expected {want}")
    } else {
        format!("{place} is {} {found}, not the expected {want}", article(found))
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'o']) {
        "an"
    } else {
        "a"
    }
}

/// Where a streak of rounds stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep going.
    Continue,
    /// Enough consecutive passing rounds.
    Pass,
    /// Not enough attempts left to reach the streak.
    Fail,
}

/// Counts passing rounds in a row against `consecutive` within `attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    attempts: u32,
    consecutive: u32,
    done: u32,
    streak: u32,
}

impl Tally {
    /// A fresh tally.
    pub fn new(attempts: u32, consecutive: u32) -> Self {
        Self { attempts, consecutive, done: 0, streak: 0 }
    }

    /// A tally that has already counted `done` rounds ending in a streak of `streak` (carried
    /// between hook invocations).
    pub fn resume(attempts: u32, consecutive: u32, done: u32, streak: u32) -> Self {
        Self { attempts, consecutive, done, streak: streak.min(done) }
    }

    /// Passing rounds in a row so far.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Records a round and says whether to go on; fails as soon as the streak is out of reach.
    pub fn record(&mut self, passed: bool) -> Progress {
        self.done = self.done.saturating_add(1);
        self.streak = if passed { self.streak.saturating_add(1) } else { 0 };
        if self.streak >= self.consecutive {
            Progress::Pass
        } else if self.attempts.saturating_sub(self.done) < self.consecutive - self.streak {
            Progress::Fail
        } else {
            Progress::Continue
        }
    }

    /// Rounds run so far.
    pub fn rounds(&self) -> u32 {
        self.done
    }
}

/// Every registered target must be healthy, and there must be at least one.
pub fn judge_targets(targets: &[(String, String)]) -> Result<(), String> {
    if targets.is_empty() {
        return Err("the target group has no registered targets".into());
    }
    let unhealthy: Vec<String> =
        targets.iter().filter(|(_, state)| state != "healthy").map(|(id, state)| format!("{id} is {state}")).collect();
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(format!("targets not healthy: {}", unhealthy.join(", ")))
    }
}

/// Result of the read-after-write probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    /// Whether every read saw the marker.
    pub passed: bool,
    /// The marker written.
    pub marker: String,
    /// How many reads saw it, of how many.
    pub reads_seen: u32,
    /// Reads made.
    pub reads: u32,
    /// What failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Whether the written item was deleted again.
    pub cleaned_up: bool,
    /// Why the id the write answered cannot name the item in the clean-up request (its kind,
    /// never the id): no DELETE was sent, and the probe failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_refused: Option<String>,
}

/// Judges the reads after a write: every one must answer 2xx and contain the marker.
pub fn judge_reads(marker: &str, reads: &[Fetched]) -> (u32, Vec<String>) {
    let mut seen = 0;
    let mut failures = Vec::new();
    for (i, r) in reads.iter().enumerate() {
        let ok_status = r.status.is_some_and(|s| (200..300).contains(&s));
        if ok_status && !r.over_cap && contains(&r.body, marker.as_bytes()) {
            seen += 1;
        } else if let Some(e) = &r.error {
            failures.push(format!("read {} failed: {e}", i + 1));
        } else if !ok_status {
            failures.push(format!("read {} answered status {}", i + 1, r.status.unwrap_or(0)));
        } else {
            failures.push(format!("read {} did not see the marker", i + 1));
        }
    }
    (seen, failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn check() -> CheckConfig {
        CheckConfig {
            path: "/".into(),
            method: "GET".into(),
            headers: BTreeMap::new(),
            body: None,
            status: 200,
            contains: Some("Todo".into()),
            json_pointer: None,
            equals: None,
            max_latency_ms: Some(100),
        }
    }

    fn ok(body: &str) -> Fetched {
        Fetched { status: Some(200), latency_ms: 5, body: body.into(), ..Default::default() }
    }

    #[test]
    fn a_matching_response_passes() {
        let r = judge_check(&check(), &ok("<h1>Todo</h1>"));
        assert!(r.passed, "{r:?}");
        assert_eq!(r.check, "GET /");
    }

    #[test]
    fn each_failure_is_named() {
        let c = check();
        let f = |got: Fetched| judge_check(&c, &got).failures.join("; ");
        assert_eq!(f(Fetched { status: Some(500), ..ok("Todo") }), "status 500, expected 200");
        assert_eq!(f(ok("nothing")), "body (7 bytes) does not contain the expected text");
        assert_eq!(f(Fetched { latency_ms: 150, ..ok("Todo") }), "took 150 ms, limit 100 ms");
        assert!(f(Fetched { error: Some("timed out".into()), ..Default::default() }).contains("timed out"));
        assert!(f(Fetched { over_cap: true, ..ok("Todo") }).contains("exceeds the cap"));
        assert!(f(Fetched { status: Some(302), redirect_refused: Some("http://evil".into()), ..ok("") })
            .contains("redirect to another host refused (http://evil)"));
    }

    #[test]
    fn no_text_of_the_response_and_no_query_of_the_path_reaches_the_result() {
        let mut c = check();
        c.path = "todoItems?token=SECRET#frag=SECRET".into();
        c.contains = Some("healthy".into());
        c.json_pointer = Some("/status".into());
        c.equals = Some(serde_json::json!("ok"));
        let leaky = ok(r#"{"status":"SECRET-eyJhbGciOi","token":"SECRET"}"#);
        let r = judge_check(&c, &leaky);
        assert_eq!(r.check, "GET todoItems");
        assert_eq!(
            r.failures,
            ["body (47 bytes) does not contain the expected text", "value at /status differs from the expected string"]
        );
        let shown = serde_json::to_string(&r).unwrap();
        assert!(!shown.contains("SECRET") && !shown.contains("eyJ"), "{shown}");
        // The whole document, when it is the pointer's target, is not quoted either.
        c.contains = None;
        c.json_pointer = Some(String::new());
        c.equals = Some(serde_json::json!({"status": "ok"}));
        assert_eq!(judge_check(&c, &leaky).failures, ["the document differs from the expected object"]);
    }

    #[test]
    fn a_json_pointer_alone_asks_for_json_with_a_value_there() {
        let mut c = check();
        c.contains = None;
        c.json_pointer = Some(String::new());
        assert!(judge_check(&c, &ok("[]")).passed);
        let html = judge_check(&c, &ok("<!doctype html><div id=\"root\"></div>"));
        assert_eq!(html.failures, ["body is not JSON, so the document cannot be read"]);
        c.json_pointer = Some("/0/id".into());
        assert_eq!(judge_check(&c, &ok("[]")).failures, ["/0/id is missing from the body"]);
    }

    #[test]
    fn json_pointer_must_equal() {
        let mut c = check();
        c.contains = None;
        c.json_pointer = Some("/status".into());
        c.equals = Some(serde_json::json!("ok"));
        assert!(judge_check(&c, &ok(r#"{"status":"ok"}"#)).passed);
        assert_eq!(
            judge_check(&c, &ok(r#"{"status":"down"}"#)).failures,
            vec!["value at /status differs from the expected string"]
        );
        assert_eq!(
            judge_check(&c, &ok(r#"{"status":["SECRET"]}"#)).failures,
            vec!["value at /status is an array, not the expected string"]
        );
        assert_eq!(
            judge_check(&c, &ok(r#"{"status":7}"#)).failures,
            vec!["value at /status is a number, not the expected string"]
        );
        assert_eq!(judge_check(&c, &ok("{}")).failures, vec!["/status is missing from the body"]);
        assert!(judge_check(&c, &ok("<html>")).failures[0].contains("not JSON"));
    }

    #[test]
    fn tally_needs_consecutive_passes_and_gives_up_early() {
        let mut t = Tally::new(5, 3);
        assert_eq!(t.record(true), Progress::Continue);
        assert_eq!(t.record(false), Progress::Continue);
        assert_eq!(t.record(true), Progress::Continue);
        assert_eq!(t.record(true), Progress::Continue);
        assert_eq!(t.record(true), Progress::Pass);
        let mut t = Tally::new(5, 3);
        t.record(false);
        t.record(false);
        assert_eq!(t.record(false), Progress::Fail, "two rounds left cannot make three in a row");
        let mut t = Tally::new(1, 1);
        assert_eq!(t.record(false), Progress::Fail);
    }

    #[test]
    fn every_target_must_be_healthy() {
        assert!(judge_targets(&[]).is_err());
        assert!(judge_targets(&[("10.0.0.1".into(), "healthy".into())]).is_ok());
        let e = judge_targets(&[("a".into(), "healthy".into()), ("b".into(), "draining".into())]).unwrap_err();
        assert_eq!(e, "targets not healthy: b is draining");
    }

    #[test]
    fn every_read_must_see_the_marker() {
        let reads = vec![ok("[pushdeploy-probe-1]"), ok("[]"), ok("[pushdeploy-probe-1]")];
        let (seen, failures) = judge_reads("pushdeploy-probe-1", &reads);
        assert_eq!(seen, 2);
        assert_eq!(failures, vec!["read 2 did not see the marker"]);
    }
}
