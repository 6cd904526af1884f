//! The polling engine: rounds of checks (behind the target-health gate) until a streak passes,
//! then the read-after-write probe. Bounded by the config and by the invocation's deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use serde::Serialize;

use crate::aws::elbv2::Elbv2Client;
use crate::config::{ReadAfterWriteConfig, SmokeConfig};
use crate::domain::secret::Secret;
use crate::rules::judge::{
    check_label, judge_check, judge_reads, judge_targets, CheckResult, Fetched, ProbeResult, Progress, Tally,
};
use crate::smoke::client::{join_url, HttpClient, HttpRequest};
use crate::smoke::id::path_segment;
use crate::smoke::secrets::{self, Resolved};

/// Rounds kept in the report (the most recent), so records stay small.
const ROUNDS_KEPT: usize = 10;

/// One round: the gate, then every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundResult {
    /// 1-based round number.
    pub round: u32,
    /// Whether the whole round passed.
    pub passed: bool,
    /// Why the target-health gate held the round, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<String>,
    /// Each check's result.
    pub checks: Vec<CheckResult>,
}

/// The smoke test's outcome, stored in the deployment record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokeReport {
    /// The verdict.
    pub passed: bool,
    /// Why it failed, in a sentence: the failing check and what was wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rounds run.
    pub rounds_run: u32,
    /// Passing rounds in a row that were required.
    pub consecutive_required: u32,
    /// The last rounds.
    pub rounds: Vec<RoundResult>,
    /// The read-after-write probe, when configured and reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_after_write: Option<ProbeResult>,
    /// Wall time of the whole smoke test.
    pub duration_ms: u64,
    /// Where the requests connected when the service sets `connect_to`:
    /// `https://todo.example.com/api/ via internal-alb…:443`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The headers whose values came from SSM, each with its parameter
    /// (`Authorization (from ssm:/pushdeploy/todo/api-token)`): never a value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_headers: Vec<String>,
}

/// Runs the smoke test. `deadline` is when the verdict must be in hand (rollback time left over);
/// `resolved` holds the values of the smoke test's SSM references.
pub async fn run(
    smoke: &SmokeConfig,
    http: &HttpClient,
    elbv2: Option<&Elbv2Client>,
    resolved: &Resolved,
    marker_seed: &str,
    deadline: Instant,
) -> SmokeReport {
    let start = Instant::now();
    let timeout = Duration::from_millis(smoke.timeout_ms);
    let mut tally = Tally::new(smoke.attempts, smoke.consecutive);
    let mut rounds: Vec<RoundResult> = Vec::new();
    let round_worst = Duration::from_millis(smoke.timeout_ms);
    let verdict = loop {
        if Instant::now() + round_worst > deadline {
            break Err(format!("out of time after {} rounds: the invocation's deadline is near", tally.rounds()));
        }
        let round = run_round(smoke, http, elbv2, resolved, tally.rounds() + 1, timeout).await;
        let passed = round.passed;
        rounds.push(round);
        if rounds.len() > ROUNDS_KEPT {
            rounds.remove(0);
        }
        match tally.record(passed) {
            Progress::Pass => break Ok(()),
            Progress::Fail => break Err(failure_reason(smoke, rounds.last().expect("a round ran"), tally.rounds())),
            Progress::Continue => tokio::time::sleep(Duration::from_millis(smoke.interval_ms)).await,
        }
    };
    let mut report = SmokeReport {
        passed: verdict.is_ok(),
        reason: verdict.err(),
        rounds_run: tally.rounds(),
        consecutive_required: smoke.consecutive,
        rounds,
        read_after_write: None,
        duration_ms: 0,
        target: target(smoke),
        secret_headers: secrets::sources(smoke),
    };
    if report.passed {
        if let Some(probe_cfg) = &smoke.read_after_write {
            let probe = probe(smoke, probe_cfg, http, resolved, marker_seed, timeout).await;
            if !probe.passed {
                report.passed = false;
                report.reason = Some(probe_failure(&probe));
            }
            report.read_after_write = Some(probe);
        }
    }
    report.duration_ms = start.elapsed().as_millis() as u64;
    report
}

/// Where the smoke test's requests connect, when the service sets `connect_to`: its URL `via` the
/// target (see [`crate::smoke::connect::target_of`]); `None` without one (they go to the URL).
pub fn target(smoke: &SmokeConfig) -> Option<String> {
    smoke.connect_to.as_ref().map(|c| crate::smoke::connect::target_of(&smoke.url, Some(c)))
}

/// One round for a lifecycle hook invocation, which runs a round and returns (ECS calls again for
/// the next): the gate, when configured, then every check.
pub async fn one_round(
    smoke: &SmokeConfig,
    http: &HttpClient,
    elbv2: Option<&Elbv2Client>,
    resolved: &Resolved,
    round: u32,
) -> RoundResult {
    run_round(smoke, http, elbv2, resolved, round, Duration::from_millis(smoke.timeout_ms)).await
}

/// The read-after-write probe, when configured: `Err` with the reason when it failed.
pub async fn probe_after_pass(
    smoke: &SmokeConfig,
    http: &HttpClient,
    resolved: &Resolved,
    marker_seed: &str,
) -> (Option<ProbeResult>, Result<(), String>) {
    let Some(cfg) = &smoke.read_after_write else { return (None, Ok(())) };
    let p = probe(smoke, cfg, http, resolved, marker_seed, Duration::from_millis(smoke.timeout_ms)).await;
    let verdict = if p.passed { Ok(()) } else { Err(probe_failure(&p)) };
    (Some(p), verdict)
}

fn probe_failure(probe: &ProbeResult) -> String {
    if let Some(why) = &probe.id_refused {
        return format!("read-after-write: {why}; no DELETE was sent, and the build under test is broken or hostile");
    }
    format!(
        "read-after-write: {} of {} reads saw the item just written ({}); state is not shared across tasks",
        probe.reads_seen,
        probe.reads,
        probe.failures.first().map(String::as_str).unwrap_or("no detail")
    )
}

/// The clean-up request's path: `delete_path` with `{id}` replaced by the write's answer at
/// `id_pointer` as one path segment. `Ok(None)` when there is no id to use (nothing to delete
/// by); `Err` with the reason when the id is refused (see [`crate::smoke::id`]).
pub fn delete_path(delete_path: &str, id_pointer: Option<&str>, write_answer: &[u8]) -> Result<Option<String>, String> {
    if !delete_path.contains("{id}") {
        return Ok(Some(delete_path.to_string()));
    }
    let Some(pointer) = id_pointer else { return Ok(None) };
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(write_answer) else { return Ok(None) };
    let Some(id) = answer.pointer(pointer) else { return Ok(None) };
    match path_segment(id) {
        Ok(segment) => Ok(Some(delete_path.replace("{id}", &segment))),
        Err(kind) => Err(format!("the write answered an id at {pointer} that {kind}, so it cannot name the item")),
    }
}

/// Why a run of rounds failed, in a sentence: the failing check of the last round.
pub fn failure_reason(smoke: &SmokeConfig, last: &RoundResult, rounds: u32) -> String {
    let what = if let Some(t) = &last.targets {
        t.clone()
    } else {
        last.checks
            .iter()
            .find(|c| !c.passed)
            .map(|c| format!("{}: {}", c.check, c.failures.join(", ")))
            .unwrap_or_else(|| "a round did not pass".into())
    };
    format!("{what} (after {rounds} rounds; {} passing in a row were required)", smoke.consecutive)
}

async fn run_round(
    smoke: &SmokeConfig,
    http: &HttpClient,
    elbv2: Option<&Elbv2Client>,
    resolved: &Resolved,
    round: u32,
    timeout: Duration,
) -> RoundResult {
    if let (Some(arn), Some(elbv2)) = (&smoke.target_group_arn, elbv2) {
        let gate = match elbv2.target_states(arn).await {
            Ok(states) => judge_targets(&states),
            Err(e) => Err(format!("target health unknown: {e}")),
        };
        if let Err(why) = gate {
            return RoundResult { round, passed: false, targets: Some(why), checks: Vec::new() };
        }
    }
    let checks = join_all(smoke.checks.iter().map(|check| async move {
        let built = join_url(&smoke.url, &check.path).and_then(|url| {
            let headers = secrets::headers_for(&check.headers, resolved)?;
            Ok(HttpRequest {
                method: check.method.clone(),
                url,
                headers,
                body: check.body.clone(),
                connect_to: smoke.connect_to.clone(),
            })
        });
        match built {
            Ok(req) => judge_check(check, &http.fetch(&req, timeout, smoke.max_body_bytes).await),
            Err(why) => CheckResult {
                check: check_label(check),
                passed: false,
                status: None,
                latency_ms: 0,
                failures: vec![why],
            },
        }
    }))
    .await;
    RoundResult { round, passed: checks.iter().all(|c| c.passed), targets: None, checks }
}

/// The probe's requests: the smoke url, the probe's headers (credentials resolved) and, for a
/// request with a body, a JSON content type unless the config names one.
struct ProbeRequests<'a> {
    smoke: &'a SmokeConfig,
    cfg: &'a ReadAfterWriteConfig,
    resolved: &'a Resolved,
}

impl ProbeRequests<'_> {
    fn request(&self, method: &str, path: &str, body: Option<String>) -> Result<HttpRequest, String> {
        let mut headers = secrets::headers_for(&self.cfg.headers, self.resolved)?;
        if body.is_some() && !headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
            headers.insert("content-type".into(), Secret::new("application/json"));
        }
        let url = join_url(&self.smoke.url, path)?;
        Ok(HttpRequest { method: method.into(), url, headers, body, connect_to: self.smoke.connect_to.clone() })
    }
}

async fn probe(
    smoke: &SmokeConfig,
    cfg: &ReadAfterWriteConfig,
    http: &HttpClient,
    resolved: &Resolved,
    seed: &str,
    timeout: Duration,
) -> ProbeResult {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let marker = format!("pushdeploy-probe-{seed}-{nanos}");
    let cap = smoke.max_body_bytes;
    let mut result = ProbeResult {
        passed: false,
        marker: marker.clone(),
        reads_seen: 0,
        reads: cfg.reads,
        failures: Vec::new(),
        cleaned_up: false,
        id_refused: None,
    };
    let requests = ProbeRequests { smoke, cfg, resolved };
    let write =
        match requests.request(&cfg.write_method, &cfg.write_path, Some(cfg.write_body.replace("{marker}", &marker))) {
            Ok(r) => http.fetch(&r, timeout, cap).await,
            Err(why) => {
                result.failures.push(why);
                return result;
            }
        };
    if !write.status.is_some_and(|s| (200..300).contains(&s)) {
        result.failures.push(match &write.error {
            Some(e) => format!("write failed: {e}"),
            None => format!("write answered status {}", write.status.unwrap_or(0)),
        });
        return result;
    }
    let reads = match read_back(&requests, http, &marker, timeout).await {
        Ok(reads) => reads,
        Err(why) => {
            result.failures.push(why);
            return result;
        }
    };
    let (seen, failures) = judge_reads(&marker, &reads);
    result.reads_seen = seen;
    result.failures = failures;
    result.passed = seen == cfg.reads;
    clean_up(&requests, http, &write.body, timeout, &mut result).await;
    result
}

/// The probe's reads of the item just written, each body cut to whether it holds the marker.
async fn read_back(
    requests: &ProbeRequests<'_>,
    http: &HttpClient,
    marker: &str,
    timeout: Duration,
) -> Result<Vec<Fetched>, String> {
    let cfg = requests.cfg;
    let mut reads = Vec::with_capacity(cfg.reads as usize);
    for _ in 0..cfg.reads {
        let mut read =
            http.fetch(&requests.request("GET", &cfg.read_path, None)?, timeout, requests.smoke.max_body_bytes).await;
        // Whether the marker is in it is all a read is judged on: keep no more of its body
        // than that, so the probe holds one read's body at a time, not all of them.
        read.body = if crate::rules::judge::contains(&read.body, marker.as_bytes()) {
            marker.as_bytes().to_vec()
        } else {
            Vec::new()
        };
        reads.push(read)
    }
    Ok(reads)
}

/// The clean-up DELETE, when the config names one, by the id the write answered.
async fn clean_up(
    requests: &ProbeRequests<'_>,
    http: &HttpClient,
    write_answer: &[u8],
    timeout: Duration,
    result: &mut ProbeResult,
) {
    let cfg = requests.cfg;
    let Some(delete) = &cfg.delete_path else { return };
    match delete_path(delete, cfg.id_pointer.as_deref(), write_answer) {
        // The id came from the build under test: a refused one sends nothing anywhere, and
        // fails the probe however the reads went.
        Err(why) => {
            result.passed = false;
            result.id_refused = Some(why);
        }
        // join_url keeps the result under the smoke url, whatever the path resolved to.
        Ok(Some(path)) => match requests.request("DELETE", &path, None) {
            Ok(req) => {
                let del = http.fetch(&req, timeout, requests.smoke.max_body_bytes).await;
                result.cleaned_up = del.status.is_some_and(|s| (200..300).contains(&s));
            }
            Err(why) => {
                result.passed = false;
                result.id_refused = Some(why);
            }
        },
        Ok(None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clean_up_path_takes_a_plain_id_as_one_segment() {
        let path = |answer: &str| delete_path("todoItems/{id}", Some("/id"), answer.as_bytes());
        assert_eq!(path(r#"{"id": 17}"#), Ok(Some("todoItems/17".into())));
        assert_eq!(path(r#"{"id": "a b"}"#).unwrap_err(), "the write answered an id at /id that contains a control character or whitespace, so it cannot name the item");
        assert_eq!(path(r#"{"id": "caf\u00e9"}"#), Ok(Some("todoItems/caf%C3%A9".into())));
        assert_eq!(path(r#"{"name": "no id"}"#), Ok(None), "nothing to delete by");
        assert_eq!(path("not json"), Ok(None));
        assert_eq!(delete_path("probe/latest", None, b""), Ok(Some("probe/latest".into())));
        assert_eq!(delete_path("todoItems/{id}", None, br#"{"id":1}"#), Ok(None));
    }

    #[test]
    fn a_hostile_id_is_refused_by_kind_and_never_quoted() {
        for (answer, kind) in [
            (r#"{"id": "../../admin/users/1"}"#, "contains a path separator"),
            (r#"{"id": "%2e%2e%2fadmin"}"#, "contains % (percent-encoding)"),
            (r#"{"id": ".."}"#, "is a dot segment"),
            (r#"{"id": "1?admin=1"}"#, "contains ? or #"),
            (r#"{"id": {"$ne": null}}"#, "is not a string or a number"),
        ] {
            let why = delete_path("todoItems/{id}", Some("/id"), answer.as_bytes()).unwrap_err();
            assert!(why.contains(kind), "{answer}: {why}");
            assert!(!why.contains("admin") && !why.contains("$ne"), "{why}");
        }
    }

    #[test]
    fn a_refused_id_is_the_probe_s_reason() {
        let probe = ProbeResult {
            passed: false,
            marker: "pushdeploy-probe-x".into(),
            reads_seen: 6,
            reads: 6,
            failures: Vec::new(),
            cleaned_up: false,
            id_refused: Some(
                "the write answered an id at /id that contains a path separator (/ or \\), so it cannot name the item"
                    .into(),
            ),
        };
        assert_eq!(
            probe_failure(&probe),
            "read-after-write: the write answered an id at /id that contains a path separator (/ or \\), so it cannot name the item; no DELETE was sent, and the build under test is broken or hostile"
        );
    }
}
