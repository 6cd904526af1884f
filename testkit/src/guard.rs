//! A proxy in front of moto that applies IAM as AWS would to the functions' calls.
//!
//! The functions sign with their role's access key ([`Role::access_key`]); the test harness signs
//! with its own and passes unchecked. A call the role's policy does not allow is answered
//! AccessDenied in the service's own error shape, and a GET of a missing key is 403 instead of
//! moto's 404 when the role lacks `s3:ListBucket` on the bucket, as S3 does. Every function call
//! is recorded with what it needed and which statements allowed it; with the template's policies
//! the records also go to `target/iam-calls/` for `scripts/iam-report`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::clients::Aws;
use crate::faults::forward;
use crate::http::{serve, Request, Response};
use crate::iam::{classify, secure_string_key, Call, Check, Policies, Role, Verdict, SSM_DEFAULT_KEY};
use crate::moto::{workspace_root, Moto};
use crate::revisions::Revisions;
use crate::traffic::{percentiles, Latencies};

/// One function call as the guard saw it.
#[derive(Debug, Clone, Serialize)]
pub struct GuardedCall {
    /// Who made it.
    pub role: Role,
    /// The API operation.
    pub operation: String,
    /// What it needed, each with its verdict.
    pub checks: Vec<(Check, Verdict)>,
    /// Allowed as a whole.
    pub allowed: bool,
    /// S3 answered 403 for a missing key because the role may not list the bucket.
    pub missing_key_denied: bool,
}

/// Rewrites moto's JSON answer to an operation (or answers one moto lacks), from the request body.
pub type Fixture = Arc<dyn Fn(&serde_json::Value, serde_json::Value) -> serde_json::Value + Send + Sync>;

struct State {
    policies: Policies,
    calls: Vec<GuardedCall>,
    log: Option<PathBuf>,
    fixtures: std::collections::HashMap<String, Fixture>,
}

/// The guard; stops when dropped.
pub struct Guard {
    /// `http://127.0.0.1:<port>`: point the SDK here.
    pub endpoint: String,
    /// ECS's deployments and revisions as the harness plays them (moto has none).
    pub ecs: Arc<Revisions>,
    /// The simulated users' response times ([`crate::traffic::Traffic`]): CloudWatch's
    /// percentile statistics are answered from them.
    pub latencies: Arc<Latencies>,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

/// Where calls checked against the template's own policies are logged, one JSON line each.
pub fn call_log_dir() -> PathBuf {
    workspace_root().join("target/iam-calls")
}

impl Guard {
    /// A guard applying template.yaml's role policies in front of `upstream`.
    pub async fn start(upstream: &str) -> Self {
        let dir = call_log_dir();
        let _ = std::fs::create_dir_all(&dir);
        let log = dir.join(format!("{}.jsonl", std::process::id()));
        Self::with_policies(upstream, Policies::template().clone(), Some(log)).await
    }

    /// A guard applying `policies`; calls are logged to `log` when given.
    pub async fn with_policies(upstream: &str, policies: Policies, log: Option<PathBuf>) -> Self {
        let state = Arc::new(Mutex::new(State { policies, calls: Vec::new(), log, fixtures: Default::default() }));
        pushdeploy::aws::tls::install_crypto();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let harness = Aws::new(upstream).await;
        let revisions = Arc::new(Revisions::new(harness.clone()));
        let latencies = Arc::new(Latencies::default());
        let upstream = upstream.trim_end_matches('/').to_string();
        let handler = Arc::new(Handler {
            state: state.clone(),
            client,
            upstream,
            revisions: revisions.clone(),
            harness,
            latencies: latencies.clone(),
        });
        let (addr, task) = serve(move |req: Request| {
            let handler = handler.clone();
            async move { handler.handle(req).await }
        })
        .await;
        Self { endpoint: format!("http://{addr}"), ecs: revisions, latencies, state, task }
    }

    /// Function calls seen so far, in order.
    pub fn calls(&self) -> Vec<GuardedCall> {
        self.state.lock().expect("lock").calls.clone()
    }

    /// The calls that were denied (AccessDenied, or 403 for a missing key).
    pub fn denied(&self) -> Vec<GuardedCall> {
        self.calls().into_iter().filter(|c| !c.allowed || c.missing_key_denied).collect()
    }

    /// Answers the functions' calls of a JSON-protocol `operation` (e.g. `ecr:DescribeImages`) with
    /// `fixture(request, moto's answer)`: fields or operations moto lacks, shaped as AWS's API
    /// model defines them. The harness's own calls are never rewritten.
    pub fn set_fixture(&self, operation: &str, fixture: Fixture) {
        self.state.lock().expect("lock").fixtures.insert(operation.to_string(), fixture);
    }

    /// Replaces the policies from now on (e.g. a role with a statement removed).
    pub fn set_policies(&self, policies: Policies) {
        let mut st = self.state.lock().expect("lock");
        st.policies = policies;
        // Calls under edited policies say nothing about the template's own.
        st.log = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A check and the policy's verdict on it.
type Judged = (Check, Verdict);

/// What the guard's server needs to check and answer one request.
struct Handler {
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    upstream: String,
    revisions: Arc<Revisions>,
    harness: Aws,
    latencies: Arc<Latencies>,
}

impl Handler {
    /// Checks `req` against its role's policy (the harness's pass unchecked), answers it, and
    /// records the call.
    async fn handle(&self, req: Request) -> Response {
        let mut call = classify(&req);
        // IAM authorizes a call on a service against the ARN ECS gave it (short, for a
        // service created before the long ARN format), not the one the request implies.
        for check in &mut call.checks {
            if let Some(actual) = self.revisions.as_ecs_names_it(&check.resource) {
                check.resource = actual;
            }
        }
        let Some(role) = Role::of_request(&req) else {
            // The test harness: unchecked, unrecorded, but ECS's revisions still follow it.
            return self.respond(&call.operation, req, None).await;
        };
        // Boxed: the SDK call's future would otherwise sit in every request's future.
        if let Some(key) = Box::pin(secure_string_decryption(&self.harness, &call, &req)).await {
            call.checks.push(key);
        }
        let fixture = self.state.lock().expect("lock").fixtures.get(&call.operation).cloned();
        let (checks, listing) = self.evaluate(role, &call);
        let allowed = !checks.is_empty() && checks.iter().all(|(_, v)| v.allowed);
        let mut record =
            GuardedCall { role, operation: call.operation.clone(), checks, allowed, missing_key_denied: false };
        let resp = if !allowed {
            let denied = record.checks.iter().find(|(_, v)| !v.allowed).map(|(c, _)| c.clone());
            access_denied(role, &call.operation, denied.as_ref())
        } else {
            let resp = self.respond(&call.operation, req, fixture).await;
            match listing {
                Some((check, verdict)) if resp.status == 404 && call.operation == "s3:GetObject" => {
                    let listable = verdict.allowed;
                    record.checks.push((check, verdict));
                    if listable {
                        resp
                    } else {
                        record.missing_key_denied = true;
                        access_denied(role, &call.operation, None)
                    }
                }
                _ => resp,
            }
        };
        let mut st = self.state.lock().expect("lock");
        if let Some(path) = &st.log {
            append_line(path, &serde_json::to_string(&record).expect("serializes"));
        }
        st.calls.push(record);
        resp
    }

    /// Each check of `call` with its verdict for `role`; and for a call on an S3 bucket, what S3
    /// asks before it answers a missing key 404 rather than 403 (ListBucket) with its verdict.
    fn evaluate(&self, role: Role, call: &Call) -> (Vec<Judged>, Option<Judged>) {
        let st = self.state.lock().expect("lock");
        let checks = call.checks.iter().map(|c| (c.clone(), st.policies.evaluate(role, c))).collect();
        let bucket = call.checks[0].resource.strip_prefix("arn:aws:s3:::").and_then(|r| r.split('/').next());
        let listing = bucket.map(|b| {
            let check = Check::list_bucket(b);
            let verdict = st.policies.evaluate(role, &check);
            (check, verdict)
        });
        (checks, listing)
    }
}

impl Handler {
    /// The answer to an allowed call: CloudWatch's GetMetricData with its percentile statistics
    /// answered here (moto has none), anything else as [`answer`] gives it.
    async fn respond(&self, operation: &str, req: Request, fixture: Option<Fixture>) -> Response {
        if operation != "cloudwatch:GetMetricData" {
            return answer(&self.client, &self.upstream, &self.revisions, operation, req, fixture).await;
        }
        let request: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let (forwarded, ours) = percentiles::split(&request);
        if ours.is_empty() {
            return forward(&self.client, &self.upstream, req).await;
        }
        let results = percentiles::answers(&self.latencies, &request, &ours);
        let moto = if forwarded["MetricDataQueries"].as_array().is_some_and(|q| !q.is_empty()) {
            let mut req = req;
            req.body = serde_json::to_vec(&forwarded).expect("JSON");
            let resp = forward(&self.client, &self.upstream, req).await;
            if !(200..300).contains(&resp.status) {
                return resp;
            }
            serde_json::from_slice(&resp.body).unwrap_or_default()
        } else {
            // Nothing left for moto (it rejects an empty query list).
            serde_json::json!({})
        };
        let merged = percentiles::merge(&request, moto, results);
        Response::new(200, serde_json::to_vec(&merged).expect("JSON"))
            .with_header("content-type", "application/x-amz-json-1.0")
    }
}

/// Appends one whole line: the guards of concurrent tests share a file, and a line written in
/// pieces could interleave with another's.
fn append_line(path: &std::path::Path, line: &str) {
    static WRITING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// moto's answer, ECS's revisions where moto has none, or a fixture's rewrite of moto's answer.
async fn answer(
    client: &reqwest::Client,
    upstream: &str,
    revisions: &Revisions,
    operation: &str,
    req: Request,
    fixture: Option<Fixture>,
) -> Response {
    let json = |v: &serde_json::Value| {
        Response::new(200, serde_json::to_vec(v).expect("JSON"))
            .with_header("content-type", "application/x-amz-json-1.1")
    };
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let registrant = crate::iam::registrant_of(&req);
    if Revisions::answers(operation) {
        let answer = revisions.answer(operation, &body);
        return json(&fixture.map_or(answer.clone(), |f| f(&body, answer)));
    }
    let mut req = req;
    // moto starts a deployment (a new id) only when forced; ECS starts one whenever the revision
    // changes, and an unforced call naming the revision the service is on changes nothing.
    let mut starts_deployment = true;
    if operation == "ecs:UpdateService" {
        starts_deployment = revisions.update_starts_deployment(&body).await;
        if starts_deployment && body["forceNewDeployment"] != serde_json::Value::Bool(true) {
            let mut forced = body.clone();
            forced["forceNewDeployment"] = serde_json::Value::Bool(true);
            req.body = serde_json::to_vec(&forced).expect("JSON");
        }
    }
    let mut resp = forward(client, upstream, req).await;
    if (200..300).contains(&resp.status) && starts_deployment {
        revisions.observe(operation, registrant.as_deref(), &resp.body).await;
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
            if revisions.amend(operation, &mut v) {
                resp = json(&v);
            }
        }
    }
    match fixture {
        Some(f) => json(&f(&body, serde_json::from_slice(&resp.body).unwrap_or_default())),
        None => resp,
    }
}

/// A GetParameter WithDecryption of a SecureString under a customer key also needs kms:Decrypt on
/// that key ([`secure_string_key`]): which key is moto's to say (DescribeParameters, as the
/// harness), since the request names only the parameter.
async fn secure_string_decryption(harness: &Aws, call: &Call, req: &Request) -> Option<Check> {
    if call.operation != "ssm:GetParameter" {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&req.body).ok()?;
    if body["WithDecryption"] != true {
        return None;
    }
    let name = body["Name"].as_str()?.split(':').next()?.to_string();
    let filter =
        aws_sdk_ssm::types::ParameterStringFilter::builder().key("Name").option("Equals").values(&name).build().ok()?;
    let found = harness.ssm.describe_parameters().parameter_filters(filter).send().await.ok()?;
    let parameter = found.parameters().iter().find(|p| p.name() == Some(name.as_str()))?;
    if parameter.r#type() != Some(&aws_sdk_ssm::types::ParameterType::SecureString) {
        return None;
    }
    secure_string_key(&call.checks[0].resource, parameter.key_id().unwrap_or(SSM_DEFAULT_KEY))
}

/// AccessDenied as the service itself answers it.
fn access_denied(role: Role, operation: &str, check: Option<&Check>) -> Response {
    let message = match check {
        Some(c) => format!(
            "User: pushdeploy-{} is not authorized to perform: {} on resource: {} because no identity-based policy allows the {} action",
            role.logical_id(),
            c.action,
            c.resource,
            c.action
        ),
        None => "Access Denied".to_string(),
    };
    if operation.starts_with("cloudwatch:") {
        // AWS JSON 1.0 with query compatibility: the query protocol's code rides in a header.
        Response::new(400, format!(r#"{{"__type":"AccessDeniedException","message":"{message}"}}"#))
            .with_header("content-type", "application/x-amz-json-1.0")
            .with_header("x-amzn-query-error", "AccessDenied;Sender")
    } else if operation.starts_with("ecs:") || operation.starts_with("ecr:") || operation.starts_with("ssm:") {
        Response::new(400, format!(r#"{{"__type":"AccessDeniedException","message":"{message}"}}"#))
            .with_header("content-type", "application/x-amz-json-1.1")
            .with_header("x-amzn-errortype", "AccessDeniedException")
    } else if operation.starts_with("s3:") {
        Response::new(403, format!("<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"))
            .with_header("content-type", "application/xml")
    } else {
        let code = if operation.starts_with("sns:") { "AuthorizationError" } else { "AccessDenied" };
        Response::new(
            403,
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>guard</RequestId></ErrorResponse>"),
        )
        .with_header("content-type", "text/xml")
    }
}

/// moto behind the IAM guard: what the tests and the demo run against.
pub struct Emulator {
    /// The guard's endpoint: point every client here.
    pub endpoint: String,
    /// The guard, to read or change what it saw and enforces.
    pub guard: Guard,
    /// moto itself (its endpoint bypasses IAM).
    pub moto: Moto,
}

impl Emulator {
    /// Starts moto and the guard with template.yaml's policies.
    pub async fn start() -> Self {
        let moto = Moto::start();
        let guard = Guard::start(&moto.endpoint).await;
        Self { endpoint: guard.endpoint.clone(), guard, moto }
    }
}
