//! The Lambda service's Invoke API on 127.0.0.1, in front of functions run by the runtime-API
//! host: what `pushdeploy deploy|redeploy|rollback|plan` call. moto's Lambda runs functions in
//! Docker, which this machine lacks, so the test side answers Invoke, shaped as the Lambda API
//! model defines it: `POST /2015-03-31/functions/{FunctionName}/invocations`, the function's
//! result as the body with status 200, and `X-Amz-Function-Error: Unhandled` when it failed; an
//! asynchronous invocation (`X-Amz-Invocation-Type: Event`, what `pushdeploy redrive` sends) is
//! queued and answered 202 with no body, as Lambda does, and the function runs it afterwards.

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

async fn invoke(req: Request, functions: &HashMap<String, Arc<FunctionProcess>>, log: &Log) -> Response {
    let name = req
        .path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(|n| percent_encoding::percent_decode_str(n).decode_utf8_lossy().into_owned());
    let error = |status: u16, kind: &str, message: String| {
        Response::new(status, serde_json::json!({"Type": "User", "message": message}).to_string())
            .with_header("x-amzn-errortype", kind)
            .with_header("content-type", "application/json")
    };
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
