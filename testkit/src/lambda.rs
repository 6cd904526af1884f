//! The Lambda service's Invoke API on 127.0.0.1, in front of functions run by the runtime-API
//! host: what `pushdeploy deploy|redeploy|rollback|plan` call. moto's Lambda runs functions in
//! Docker, which this machine lacks, so the test side answers Invoke, shaped as the Lambda API
//! model defines it: `POST /2015-03-31/functions/{FunctionName}/invocations`, the function's
//! result as the body with status 200, and `X-Amz-Function-Error: Unhandled` when it failed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::http::{serve, Request, Response};
use crate::runtime::FunctionProcess;

/// A Lambda Invoke endpoint serving `functions` by name.
pub struct LambdaService {
    /// Point `AWS_ENDPOINT_URL_LAMBDA` here.
    pub endpoint: String,
    task: JoinHandle<()>,
}

impl LambdaService {
    /// Serves each function under its name.
    pub async fn start(functions: HashMap<String, Arc<FunctionProcess>>) -> Self {
        let functions = Arc::new(functions);
        let (addr, task) = serve(move |req: Request| {
            let functions = functions.clone();
            async move { invoke(req, &functions).await }
        })
        .await;
        Self { endpoint: format!("http://{addr}"), task }
    }
}

impl Drop for LambdaService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn invoke(req: Request, functions: &HashMap<String, Arc<FunctionProcess>>) -> Response {
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
    let Ok(payload) = serde_json::from_slice(&req.body) else {
        return error(400, "InvalidRequestContentException", "Could not parse request body into json".into());
    };
    let (body, failed) = match function.invoke(&payload).await {
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
