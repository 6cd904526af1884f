//! A fault-injecting proxy in front of moto on 127.0.0.1.
//!
//! A proxy rather than an SDK interceptor: it exercises the real client stack end to end (retry
//! classification of the actual status codes and error bodies, connection resets, attempt
//! timeouts), and it needs no hook in the product's code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::http::{serve, Request, Response};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 ThrottlingException (S3: 503 SlowDown).
    Throttle,
    /// 500 InternalFailure.
    Status500,
    /// 503 ServiceUnavailable.
    Status503,
    /// The connection is closed without an answer.
    Reset,
    /// No answer for longer than the client's attempt timeout.
    Stall,
    /// The call reaches the upstream and takes effect, but its answer is lost: 500 instead.
    /// Not in [`Fault::ALL`]: only a call that is safe to repeat survives it unchanged.
    LostAnswer,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 5] = [Fault::Throttle, Fault::Status500, Fault::Status503, Fault::Reset, Fault::Stall];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Reset => "reset",
            Fault::Stall => "timeout",
            Fault::LostAnswer => "lost answer",
        }
    }
}

#[derive(Default)]
struct State {
    target: Option<(String, Fault, u32)>,
    calls: Vec<String>,
    timed: Vec<TimedCall>,
    injected: u32,
    latency: std::time::Duration,
}

/// One forwarded call with when it started and ended at the proxy.
#[derive(Debug, Clone)]
pub struct TimedCall {
    /// The operation.
    pub op: String,
    /// When the proxy received it.
    pub start: std::time::Instant,
    /// When the proxy had the upstream's whole answer.
    pub end: std::time::Instant,
    /// The SDK's id of the operation (`amz-sdk-invocation-id`), the same on each of its retries:
    /// two forwarded calls with one id are an operation that reached the upstream twice.
    pub invocation: Option<String>,
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: point the SDK here.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

/// The AWS operation a request is, e.g. `ecs:UpdateService` or `s3:PUT leases`.
pub fn operation(req: &Request) -> String {
    if let Some(target) = req.header("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or(("", target));
        let service = if prefix.contains("ContainerService") {
            "ecs"
        } else if prefix.contains("ContainerRegistry") {
            "ecr"
        } else {
            prefix
        };
        return format!("{service}:{op}");
    }
    let scope = req.header("authorization").and_then(|a| a.split("Credential=").nth(1)).unwrap_or_default();
    let service = scope.split('/').nth(3).unwrap_or("?");
    if service == "s3" {
        let mut segments = req.path.split('?').next().unwrap_or_default().trim_start_matches('/').split('/');
        let _bucket = segments.next();
        let first = segments.next().unwrap_or("");
        return format!("s3:{} {}", req.method, first);
    }
    let body = String::from_utf8_lossy(&req.body);
    let action = body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("?");
    format!("{service}:{action}")
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (moto).
    pub async fn start(upstream: &str, stall: Duration) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        pushdeploy::aws::tls::install_crypto();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let (s, upstream) = (state.clone(), upstream.trim_end_matches('/').to_string());
        let (addr, task) = serve(move |req: Request| {
            let (s, client, upstream) = (s.clone(), client.clone(), upstream.clone());
            async move {
                let op = operation(&req);
                let invocation = req.header("amz-sdk-invocation-id").map(str::to_string);
                let fault = {
                    let mut st = s.lock().expect("lock");
                    st.calls.push(op.clone());
                    match &mut st.target {
                        Some((target, fault, left)) if *left > 0 && op == *target => {
                            *left -= 1;
                            let f = *fault;
                            st.injected += 1;
                            Some(f)
                        }
                        _ => None,
                    }
                };
                if fault == Some(Fault::LostAnswer) {
                    let _taken = forward(&client, &upstream, req).await;
                    return injected(Fault::Status500, &op, stall).await;
                }
                if let Some(f) = fault {
                    return injected(f, &op, stall).await;
                }
                let start = std::time::Instant::now();
                let latency = s.lock().expect("lock").latency;
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                let resp = forward(&client, &upstream, req).await;
                s.lock().expect("lock").timed.push(TimedCall { op, start, end: std::time::Instant::now(), invocation });
                resp
            }
        })
        .await;
        Self { endpoint: format!("http://{addr}"), state, task }
    }

    /// Injects `fault` into the next `times` calls of `op`.
    pub fn inject(&self, op: &str, fault: Fault, times: u32) {
        let mut st = self.state.lock().expect("lock");
        st.target = Some((op.to_string(), fault, times));
        st.injected = 0;
    }

    /// Adds `latency` before every forwarded call, as a real AWS round trip would.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state.lock().expect("lock").latency = latency;
    }

    /// Stops injecting.
    pub fn clear(&self) {
        self.state.lock().expect("lock").target = None;
    }

    /// Operations seen so far, in order; clears the list.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().expect("lock").calls)
    }

    /// Forwarded calls with their timings, in the order they finished; clears the list.
    pub fn take_timed(&self) -> Vec<TimedCall> {
        std::mem::take(&mut self.state.lock().expect("lock").timed)
    }

    /// Faults injected since the last `inject`.
    pub fn injected(&self) -> u32 {
        self.state.lock().expect("lock").injected
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn injected(f: Fault, op: &str, stall: Duration) -> Response {
    let s3 = op.starts_with("s3:");
    let json = op.starts_with("ecs:") || op.starts_with("ecr:");
    let error = |status: u16, code: &str, message: &str| {
        if json {
            Response::new(status, format!(r#"{{"__type":"{code}","message":"{message}"}}"#))
                .with_header("content-type", "application/x-amz-json-1.1")
                .with_header("x-amzn-errortype", code)
        } else if s3 {
            Response::new(status, format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"))
                .with_header("content-type", "application/xml")
        } else {
            Response::new(
                status,
                format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"),
            )
            .with_header("content-type", "text/xml")
        }
    };
    match f {
        Fault::Throttle if s3 => error(503, "SlowDown", "Reduce your request rate"),
        Fault::Throttle => error(400, "ThrottlingException", "Rate exceeded"),
        Fault::Status500 | Fault::LostAnswer => error(500, "InternalFailure", "injected"),
        Fault::Status503 => error(503, "ServiceUnavailable", "injected"),
        Fault::Reset => Response::new(0, ""),
        Fault::Stall => {
            tokio::time::sleep(stall).await;
            Response::new(0, "")
        }
    }
}

/// Forwards `req` to `upstream` and answers what it answered (502 when it could not be reached).
pub async fn forward(client: &reqwest::Client, upstream: &str, req: Request) -> Response {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client.request(method, format!("{upstream}{}", req.path));
    for (k, v) in &req.headers {
        if !matches!(k.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            builder = builder.header(k, v);
        }
    }
    match builder.body(req.body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "content-length" | "connection" | "transfer-encoding"))
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            let mut r = Response::new(status, body);
            r.headers = headers;
            r
        }
        Err(_) => Response::new(502, "upstream failed"),
    }
}
