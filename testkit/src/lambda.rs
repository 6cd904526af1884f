//! The Lambda service's Invoke API on 127.0.0.1, in front of functions run by the runtime-API
//! host: what `pushdeploy deploy|redeploy|rollback|plan` call. moto's Lambda runs functions in
//! Docker, which this machine lacks, so the test side answers Invoke, shaped as the Lambda API
//! model defines it: `POST /2015-03-31/functions/{FunctionName}/invocations`, the function's
//! result as the body with status 200, and `X-Amz-Function-Error: Unhandled` when it failed; an
//! asynchronous invocation (`X-Amz-Invocation-Type: Event`, what `pushdeploy redrive` sends) is
//! queued and answered 202 with no body, as Lambda does, and the function runs it afterwards.
//! `GET /2015-03-31/functions/{FunctionName}/configuration` (GetFunctionConfiguration, what
//! `pushdeploy validate` and `status` read) answers from the process's own settings: the timeout
//! its runtime host gives each invocation, its memory and the environment it was started with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::http::{serve, Request, Response};
use crate::runtime::FunctionProcess;

/// One invocation the service took.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// The function's name.
    pub function: String,
    /// `RequestResponse` or `Event`.
    pub invocation_type: String,
    /// The payload.
    pub payload: Value,
    /// The function's answer (`Err`: its error document); `None` while an asynchronous one runs.
    pub answer: Option<Result<Value, Value>>,
}

type Log = Arc<Mutex<Vec<Invoked>>>;

/// A Lambda Invoke endpoint serving `functions` by name.
pub struct LambdaService {
    /// Point `AWS_ENDPOINT_URL_LAMBDA` here.
    pub endpoint: String,
    task: JoinHandle<()>,
    log: Log,
}

impl LambdaService {
    /// Serves each function under its name.
    pub async fn start(functions: HashMap<String, Arc<FunctionProcess>>) -> Self {
        let functions = Arc::new(functions);
        let log: Log = Arc::default();
        let kept = log.clone();
        let (addr, task) = serve(move |req: Request| {
            let (functions, log) = (functions.clone(), log.clone());
            async move { invoke(req, &functions, &log).await }
        })
        .await;
        Self { endpoint: format!("http://{addr}"), task, log: kept }
    }

    /// Every invocation taken so far, in order.
    pub fn invoked(&self) -> Vec<Invoked> {
        self.log.lock().expect("lock").clone()
    }

    /// Every invocation taken so far, once each asynchronous one has its answer (or `limit` passed).
    pub async fn settled(&self, limit: Duration) -> Vec<Invoked> {
        let start = Instant::now();
        loop {
            let invoked = self.invoked();
            if invoked.iter().all(|i| i.answer.is_some()) || start.elapsed() > limit {
                return invoked;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LambdaService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The variables Lambda sets itself and never returns as the function's environment.
fn reserved(name: &str) -> bool {
    const RESERVED: [&str; 9] = [
        "PATH",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    ];
    RESERVED.contains(&name) || name.starts_with("AWS_LAMBDA_") || name.starts_with('_')
}

/// GetFunctionConfiguration's answer (the Lambda API model's FunctionConfiguration) for `name`.
fn configuration(name: &str, function: &FunctionProcess) -> Value {
    let var = |k: &str| function.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let region = var("AWS_REGION").unwrap_or_else(|| "ap-southeast-2".into());
    let memory: u64 = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse().ok()).unwrap_or(128);
    let variables: serde_json::Map<String, Value> =
        function.env.iter().filter(|(k, _)| !reserved(k)).map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    serde_json::json!({
        "FunctionName": name,
        "FunctionArn": format!("arn:aws:lambda:{region}:123456789012:function:{name}"),
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Role": format!("arn:aws:iam::123456789012:role/{name}"),
        "Timeout": function.host.timeout().as_secs(),
        "MemorySize": memory,
        "Version": "$LATEST",
        "State": "Active",
        "PackageType": "Zip",
        "Architectures": ["arm64"],
        "Environment": {"Variables": variables},
        // A process outside any VPC, as Lambda describes such a function.
        "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": ""},
    })
}

/// The function a path names (`…/functions/{FunctionName}/{suffix}`): a name or an ARN.
fn function_named(path: &str, suffix: &str) -> Option<String> {
    let raw = path.split('?').next()?.strip_prefix("/2015-03-31/functions/")?.strip_suffix(suffix)?;
    let name = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned();
    Some(match name.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or_default().to_string(),
        None => name,
    })
}

fn error(status: u16, kind: &str, message: String) -> Response {
    Response::new(status, serde_json::json!({"Type": "User", "message": message}).to_string())
        .with_header("x-amzn-errortype", kind)
        .with_header("content-type", "application/json")
}

async fn invoke(req: Request, functions: &HashMap<String, Arc<FunctionProcess>>, log: &Log) -> Response {
    if req.method == "GET" {
        if let Some(name) = function_named(&req.path, "/configuration") {
            return match functions.get(&name) {
                Some(f) => Response::new(200, configuration(&name, f).to_string())
                    .with_header("content-type", "application/json"),
                None => error(404, "ResourceNotFoundException", format!("Function not found: {name}")),
            };
        }
    }
    let name = req
        .path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(|n| percent_encoding::percent_decode_str(n).decode_utf8_lossy().into_owned());
    let Some(name) = name.filter(|_| req.method == "POST") else {
        return error(400, "InvalidRequestContentException", format!("unsupported {} {}", req.method, req.path));
    };
    let Some(function) = functions.get(&name) else {
        return error(404, "ResourceNotFoundException", format!("Function not found: {name}"));
    };
    let Ok(payload) = serde_json::from_slice::<Value>(&req.body) else {
        return error(400, "InvalidRequestContentException", "Could not parse request body into json".into());
    };
    let invocation_type = req.header("x-amz-invocation-type").unwrap_or("RequestResponse").to_string();
    if !matches!(invocation_type.as_str(), "RequestResponse" | "Event") {
        return error(400, "InvalidParameterValueException", format!("unsupported InvocationType {invocation_type}"));
    }
    let entry =
        Invoked { function: name, invocation_type: invocation_type.clone(), payload: payload.clone(), answer: None };
    let index = {
        let mut log = log.lock().expect("lock");
        log.push(entry);
        log.len() - 1
    };
    if invocation_type == "Event" {
        // Queued: Lambda answers 202 at once and runs the function afterwards.
        let (function, log) = (function.clone(), log.clone());
        tokio::spawn(async move {
            let answer = function.invoke(&payload).await;
            log.lock().expect("lock")[index].answer = Some(answer);
        });
        return Response::new(202, Vec::new());
    }
    let answer = function.invoke(&payload).await;
    log.lock().expect("lock")[index].answer = Some(answer.clone());
    let (body, failed) = match answer {
        Ok(v) => (v, false),
        Err(v) => (v, true),
    };
    let response = Response::new(200, body.to_string())
        .with_header("content-type", "application/json")
        .with_header("x-amz-executed-version", "$LATEST");
    if failed {
        response.with_header("x-amz-function-error", "Unhandled")
    } else {
        response
    }
}
