//! SSM Parameter Store: the SecureString values smoke tests send as credential headers.
//!
//! One call, `GetParameter` with decryption, made without the SSM SDK crate (linking
//! `aws-sdk-ssm` for it grew the verify bootstrap by 884 KB): the SDK's own request on the wire
//! (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.GetParameter`), signed and retried by
//! [`super::signed_json`].

use std::time::SystemTime;

use serde::Deserialize;

use super::signed_json::{self, Request, SignedJsonClient, SSM};
use crate::domain::error::AwsError;
use crate::domain::secret::Secret;

const ACTION: &str = "SSM GetParameter";

/// What to check when a parameter cannot be read.
const HINT: &str = "the smoke-test credential header that names it: that the parameter exists in this account and region as a SecureString, that SmokeSecretParameterArns covers it (ssm:GetParameter) and, under a customer KMS key, that SmokeSecretKeyArns names the key (kms:Decrypt through SSM) and the key's policy lets verify's role use it";

/// Reads SecureString parameters, decrypted, as verify's role.
#[derive(Clone, Debug)]
pub struct ParameterStore {
    client: SignedJsonClient,
}

impl ParameterStore {
    /// A store in the SDK config's region, signing with its credentials, at its endpoint
    /// (`AWS_ENDPOINT_URL_SSM`, else the config's `AWS_ENDPOINT_URL`, else SSM's regional one).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: SignedJsonClient::new(sdk, SSM) }
    }

    /// The decrypted value of the SecureString parameter `name` (GetParameter WithDecryption),
    /// with the SDK's retry policy: throttling, 5xx and network failures are tried again, up to
    /// [`crate::aws::AwsPolicy::max_attempts`], each attempt within its timeout.
    pub async fn secure_string(&self, name: &str) -> Result<Secret, AwsError> {
        let failed = |detail: String, transient: bool| AwsError {
            action: ACTION,
            target: format!("ssm:{name}"),
            detail,
            hint: HINT,
            transient,
        };
        let body = serde_json::json!({ "Name": name, "WithDecryption": true }).to_string();
        let Found { kind, value } = self.client.call("GetParameter", &body, read_answer).await.map_err(|(d, t)| {
            tracing::debug!(parameter = %name, detail = %d, "SSM GetParameter failed");
            failed(d, t)
        })?;
        secure_value(kind.as_deref(), value).map_err(|why| failed(why, false))
    }
}

/// Every header of a GetParameter request of `body` to `endpoint`, signed (SigV4, service `ssm`)
/// with `credentials` at `time`: the content type and target, then the signer's date, session
/// token and Authorization.
pub fn signed_headers(
    endpoint: &str,
    region: &str,
    body: &str,
    credentials: aws_credential_types::Credentials,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let request = Request { service: &SSM, operation: "GetParameter", endpoint, region };
    signed_json::signed_headers(&request, body, credentials, time)
}

/// SSM's endpoint: the one configured (an emulator, a VPC endpoint's URL), or the region's own.
pub fn endpoint(region: &str, configured: Option<&str>) -> String {
    signed_json::endpoint(SSM.signing_name, region, configured)
}

/// What GetParameter answered: the parameter's type and value.
#[derive(Debug, PartialEq)]
pub struct Found {
    /// `SecureString`, `String` or `StringList`.
    pub kind: Option<String>,
    /// The value, decrypted.
    pub value: Option<Secret>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Parameter")]
    parameter: Option<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// Reads SSM's answer: the parameter on 200, else the error as `(detail, transient)`, the detail
/// in the shape every AWS error of pushdeploy has (`Code: message (HTTP status)`, see
/// `aws::aws_error`), so AccessDenied is recognised and classified like any other. Only the
/// error's code and message are kept, never the body.
pub fn read_answer(status: u16, body: &[u8]) -> Result<Found, (String, bool)> {
    if status == 200 {
        let answer: Answer =
            serde_json::from_slice(body).map_err(|_| (format!("unreadable response (HTTP {status})"), true))?;
        let p = answer.parameter.ok_or_else(|| ("SSM answered no parameter".to_string(), false))?;
        return Ok(Found { kind: p.kind, value: p.value.map(Secret::new) });
    }
    Err(signed_json::read_failure(status, body))
}

/// The value of a parameter SSM answered, if it is a SecureString with a value. A `String` or
/// `StringList` parameter is refused: its value is stored unencrypted and shown in the console
/// and to anyone with `ssm:GetParameter`, no better than the config it was taken out of.
pub fn secure_value(kind: Option<&str>, value: Option<Secret>) -> Result<Secret, String> {
    match (kind, value) {
        (Some("SecureString"), Some(v)) => Ok(v),
        (Some("SecureString"), None) => Err("SSM answered no value".into()),
        (Some(other), _) => Err(format!(
            "the parameter is a {}, not a SecureString: store the credential as a SecureString (aws ssm put-parameter --type SecureString --overwrite)",
            crate::domain::image::truncate(other)
        )),
        (None, _) => Err("SSM answered no parameter type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_configured_one_or_the_regions() {
        assert_eq!(endpoint("ap-southeast-2", None), "https://ssm.ap-southeast-2.amazonaws.com/");
        assert_eq!(endpoint("cn-north-1", None), "https://ssm.cn-north-1.amazonaws.com.cn/");
        assert_eq!(endpoint("ap-southeast-2", Some("http://127.0.0.1:5000")), "http://127.0.0.1:5000/");
        assert_eq!(endpoint("ap-southeast-2", Some("https://vpce-1.ssm.example/")), "https://vpce-1.ssm.example/");
        assert_eq!(endpoint("eu-west-1", Some("")), "https://ssm.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn the_request_is_signed_for_ssm_with_its_target_and_session_token() {
        let credentials =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "wJalr", Some("TOKEN".into()), None, "t");
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_765_000_000);
        let body = r#"{"Name":"/p","WithDecryption":true}"#;
        let headers = signed_headers(
            "https://ssm.ap-southeast-2.amazonaws.com/",
            "ap-southeast-2",
            body,
            credentials.clone(),
            at,
        )
        .unwrap();
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-target"), Some("AmazonSSM.GetParameter"));
        assert_eq!(get("content-type"), Some("application/x-amz-json-1.1"));
        assert_eq!(get("x-amz-date"), Some("20251206T054640Z"));
        assert_eq!(get("x-amz-security-token"), Some("TOKEN"), "a Lambda role's session token goes along");
        let auth = get("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251206/ap-southeast-2/ssm/aws4_request, "),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"),
            "{auth}"
        );
        // The signature botocore's SigV4Auth computes for the same request, time and credentials
        // (the AWS CLI's signer): what AWS checks.
        assert!(auth.ends_with("Signature=e82a7fbc266ce6bdd84b284623cc19c81f18e5182d048ee00241b2a7d4def3e2"), "{auth}");
        // The signature covers the body: another parameter is another signature.
        let other =
            signed_headers("https://ssm.ap-southeast-2.amazonaws.com/", "ap-southeast-2", "{}", credentials, at)
                .unwrap();
        assert_ne!(other.iter().find(|(k, _)| k == "authorization").unwrap().1, auth);
    }

    #[test]
    fn an_answer_gives_the_parameter_and_an_error_its_code_never_the_body() {
        let ok = br#"{"Parameter":{"Name":"/p","Type":"SecureString","Value":"Bearer t0k3n","Version":1}}"#;
        let found = read_answer(200, ok).unwrap();
        assert_eq!(found.kind.as_deref(), Some("SecureString"));
        assert_eq!(found.value.unwrap().expose(), "Bearer t0k3n");

        let denied =
            br#"{"__type":"AccessDeniedException","message":"User: x is not authorized to perform: ssm:GetParameter"}"#;
        let (detail, transient) = read_answer(400, denied).unwrap_err();
        assert_eq!(detail, "AccessDeniedException: User: x is not authorized to perform: ssm:GetParameter (HTTP 400)");
        assert!(!transient);
        let e = AwsError { action: ACTION, target: "ssm:/p".into(), detail, hint: HINT, transient };
        assert!(e.is_access_denied(), "classified as every AccessDenied is");

        let missing = br#"{"__type":"com.amazonaws.ssm#ParameterNotFound","Message":"Parameter /p not found."}"#;
        assert_eq!(
            read_answer(400, missing).unwrap_err(),
            ("ParameterNotFound: Parameter /p not found. (HTTP 400)".into(), false)
        );
        assert!(read_answer(400, br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#).unwrap_err().1);
        assert!(read_answer(503, b"<html>Service Unavailable</html>").unwrap_err().1, "a 5xx is tried again");
        assert_eq!(read_answer(503, b"<html>SECRET</html>").unwrap_err().0, "Unknown: no message (HTTP 503)");
        assert_eq!(read_answer(200, b"Bearer t0k3n").unwrap_err().0, "unreadable response (HTTP 200)");
    }

    #[test]
    fn only_a_secure_string_is_used_and_an_error_never_shows_the_value() {
        let v = || Some(Secret::new("t0k3n"));
        assert_eq!(secure_value(Some("SecureString"), v()).unwrap().expose(), "t0k3n");
        let e = secure_value(Some("String"), v()).unwrap_err();
        assert!(e.starts_with("the parameter is a String, not a SecureString"), "{e}");
        assert!(!e.contains("t0k3n"));
        assert!(secure_value(Some("StringList"), v()).is_err());
        assert!(secure_value(Some("SecureString"), None).is_err());
        assert!(secure_value(None, v()).is_err());
    }
}
