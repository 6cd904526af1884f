//! One hand-signed AWS JSON request, for the calls verify makes without their SDK crate (SSM's
//! GetParameter, CloudWatch's GetMetricData): each SDK crate linked for one call grew the verify
//! bootstrap by most of a megabyte (884 KB for SSM, measured), past the 8 MB the arm64 bootstraps
//! must stay under. The request is the SDK's own on the wire (AWS JSON 1.0 or 1.1 with its
//! `X-Amz-Target`), signed with `aws-sigv4` (the SDK's signer, already in both bootstraps) with
//! the credentials of the SDK config every other client uses, and sent with the smoke tests'
//! `reqwest` (rustls on ring): nothing new is linked.

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde::Deserialize;

use super::policy::AwsPolicy;

/// What tells one AWS JSON service from another on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonService {
    /// `X-Amz-Target`'s prefix: `AmazonSSM`, `GraniteServiceVersion20100801`.
    pub target_prefix: &'static str,
    /// The protocol's content type: `application/x-amz-json-1.1` or `-1.0`.
    pub content_type: &'static str,
    /// SigV4's service name, also the endpoint's first label: `ssm`, `monitoring`.
    pub signing_name: &'static str,
    /// The variable naming a service-specific endpoint (`AWS_ENDPOINT_URL_SSM`), as the SDK reads it.
    pub endpoint_var: &'static str,
}

/// SSM Parameter Store (AWS JSON 1.1).
pub const SSM: JsonService = JsonService {
    target_prefix: "AmazonSSM",
    content_type: "application/x-amz-json-1.1",
    signing_name: "ssm",
    endpoint_var: "AWS_ENDPOINT_URL_SSM",
};

/// CloudWatch (AWS JSON 1.0, which CloudWatch speaks beside its older query protocol).
pub const CLOUDWATCH: JsonService = JsonService {
    target_prefix: "GraniteServiceVersion20100801",
    content_type: "application/x-amz-json-1.0",
    signing_name: "monitoring",
    endpoint_var: "AWS_ENDPOINT_URL_CLOUDWATCH",
};

/// A client of one AWS JSON service, signing as verify's role.
#[derive(Clone, Debug)]
pub struct SignedJsonClient {
    service: JsonService,
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    policy: AwsPolicy,
}

impl SignedJsonClient {
    /// A client in the SDK config's region, signing with its credentials, at its endpoint (the
    /// service's own variable, else the config's `AWS_ENDPOINT_URL`, else the regional one).
    pub fn new(sdk: &aws_config::SdkConfig, service: JsonService) -> Self {
        crate::aws::tls::install_crypto();
        let policy = AwsPolicy::default();
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let configured = std::env::var(service.endpoint_var).ok().or_else(|| sdk.endpoint_url().map(str::to_string));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.connect_timeout)
            .build()
            .expect("a rustls client always builds");
        Self {
            endpoint: endpoint(service.signing_name, &region, configured.as_deref()),
            service,
            http,
            region,
            credentials: sdk.credentials_provider(),
            policy,
        }
    }

    /// Calls `operation` with `body`, reading the answer with `read` (status, body → value or
    /// `(detail, transient)`), with the SDK's retry policy: throttling, 5xx and network failures
    /// are tried again, up to [`AwsPolicy::max_attempts`], each attempt within its timeout.
    /// `Err((detail, transient))` once no attempt is left, or at once when nothing could help.
    pub async fn call<T>(
        &self,
        operation: &str,
        body: &str,
        read: impl Fn(u16, &[u8]) -> Result<T, (String, bool)>,
    ) -> Result<T, (String, bool)> {
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let answer = match tokio::time::timeout(self.policy.attempt_timeout, self.attempt(operation, body)).await {
                Ok(Ok((status, bytes))) => read(status, &bytes),
                Ok(Err(AttemptError::Unsigned(why))) => return Err((why, false)),
                Ok(Err(AttemptError::Network(why))) => Err((why, true)),
                Err(_) => Err(("timed out".to_string(), true)),
            };
            match answer {
                Err((detail, true)) if attempt < self.policy.max_attempts => {
                    let service = self.service.signing_name;
                    tracing::debug!(service, operation, attempt, detail = %detail, "AWS JSON call retried");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One signed request: the status and body the service answered.
    async fn attempt(&self, operation: &str, body: &str) -> Result<(u16, Vec<u8>), AttemptError> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| AttemptError::Unsigned("no AWS credentials are configured".into()))?;
        let credentials =
            provider.provide_credentials().await.map_err(|e| AttemptError::Network(format!("no credentials: {e}")))?;
        let request = Request { service: &self.service, operation, endpoint: &self.endpoint, region: &self.region };
        let headers = signed_headers(&request, body, credentials, SystemTime::now())
            .map_err(|e| AttemptError::Unsigned(format!("request could not be signed: {e}")))?;
        let mut req = self.http.post(&self.endpoint).body(body.to_string());
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| AttemptError::Network(network_detail(&e)))?;
        let status = resp.status().as_u16();
        let bytes =
            resp.bytes().await.map_err(|_| AttemptError::Network(format!("unreadable response (HTTP {status})")))?;
        Ok((status, bytes.to_vec()))
    }
}

/// What one request is: the service, its operation, where it goes and in which region.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The service.
    pub service: &'a JsonService,
    /// `GetParameter`, `GetMetricData`.
    pub operation: &'a str,
    /// The endpoint's URL.
    pub endpoint: &'a str,
    /// The region signed for.
    pub region: &'a str,
}

/// Every header of `request` with `body`, signed (SigV4, the service's signing name) with
/// `credentials` at `time`: the content type and target, then the signer's date, session token
/// and Authorization.
pub fn signed_headers(
    request: &Request<'_>,
    body: &str,
    credentials: aws_credential_types::Credentials,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(request.service.signing_name)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let target = format!("{}.{}", request.service.target_prefix, request.operation);
    let headers = [("content-type", request.service.content_type), ("x-amz-target", target.as_str())];
    let signable =
        SignableRequest::new("POST", request.endpoint, headers.into_iter(), SignableBody::Bytes(body.as_bytes()))
            .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    Ok(headers.into_iter().chain(instructions.headers()).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

enum AttemptError {
    /// The request could not be made at all: no retry helps.
    Unsigned(String),
    /// Lost on the way: tried again.
    Network(String),
}

fn network_detail(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else {
        "could not reach the endpoint".into()
    }
}

/// A service's endpoint: the one configured (an emulator, a VPC endpoint's URL), or the region's
/// own (`https://<name>.<region>.amazonaws.com/`, `.com.cn` in China).
pub fn endpoint(name: &str, region: &str, configured: Option<&str>) -> String {
    match configured {
        Some(url) if !url.is_empty() => format!("{}/", url.trim_end_matches('/')),
        _ if region.starts_with("cn-") => format!("https://{name}.{region}.amazonaws.com.cn/"),
        _ => format!("https://{name}.{region}.amazonaws.com/"),
    }
}

#[derive(Deserialize)]
struct Failure {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

/// An error answer as `(detail, transient)`, the detail in the shape every AWS error of
/// pushdeploy has (`Code: message (HTTP status)`, see `aws::aws_error`), so AccessDenied is
/// recognised and classified like any other. Only the error's code and message are kept, never
/// the body (which may echo what was asked).
pub fn read_failure(status: u16, body: &[u8]) -> (String, bool) {
    let failure: Option<Failure> = serde_json::from_slice(body).ok();
    let code = failure
        .as_ref()
        .and_then(|f| f.kind.as_deref())
        // `ns#Code:http://…` (the AWS JSON convention): the code alone.
        .map(|t| t.rsplit('#').next().unwrap_or(t).split(':').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| "Unknown".into());
    let message = failure.and_then(|f| f.message).unwrap_or_else(|| "no message".into());
    let transient = super::TRANSIENT_CODES.contains(&code.as_str()) || status >= 500 || status == 429;
    (format!("{code}: {message} (HTTP {status})"), transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_is_signed_as_monitoring_with_json_1_0() {
        let credentials = aws_credential_types::Credentials::new("AKIDEXAMPLE", "wJalr", None, None, "t");
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_765_000_000);
        let endpoint = endpoint("monitoring", "eu-west-1", None);
        assert_eq!(endpoint, "https://monitoring.eu-west-1.amazonaws.com/");
        let request =
            Request { service: &CLOUDWATCH, operation: "GetMetricData", endpoint: &endpoint, region: "eu-west-1" };
        let headers = signed_headers(&request, "{}", credentials, at).unwrap();
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-target"), Some("GraniteServiceVersion20100801.GetMetricData"));
        assert_eq!(get("content-type"), Some("application/x-amz-json-1.0"));
        assert_eq!(get("x-amz-security-token"), None);
        let auth = get("authorization").unwrap();
        assert!(auth.contains("Credential=AKIDEXAMPLE/20251206/eu-west-1/monitoring/aws4_request, "), "{auth}");
    }

    #[test]
    fn a_failure_keeps_its_code_and_message_and_says_whether_to_retry() {
        let (d, t) = read_failure(
            400,
            br#"{"__type":"com.amazon.coral.service#InvalidParameterValueException","message":"bad"}"#,
        );
        assert_eq!((d.as_str(), t), ("InvalidParameterValueException: bad (HTTP 400)", false));
        assert!(read_failure(400, br#"{"__type":"Throttling","message":"Rate exceeded"}"#).1);
        assert!(
            read_failure(
                400,
                br#"{"__type":"com.amazon#ThrottlingException:http://internal.amazon.com/","message":"x"}"#
            )
            .1
        );
        assert_eq!(read_failure(500, b"<html/>"), ("Unknown: no message (HTTP 500)".into(), true));
    }
}
