//! SSM Parameter Store: the SecureString values smoke tests send as credential headers.

use aws_sdk_ssm::types::ParameterType;

use crate::aws::aws_error;
use crate::error::AwsError;
use crate::secrets::Secret;

/// What to check when a parameter cannot be read.
const HINT: &str = "the smoke-test credential header that names it: that the parameter exists in this account and region as a SecureString, that SmokeSecretParameterArns covers it (ssm:GetParameter) and, under a customer KMS key, that SmokeSecretKeyArns names the key (kms:Decrypt through SSM) and the key's policy lets verify's role use it";

/// Reads SecureString parameters, decrypted.
#[derive(Clone, Debug)]
pub struct ParameterStore {
    client: aws_sdk_ssm::Client,
}

impl ParameterStore {
    /// Wraps an SDK client.
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self { client }
    }

    /// The decrypted value of the SecureString parameter `name` (GetParameter WithDecryption).
    pub async fn secure_string(&self, name: &str) -> Result<Secret, AwsError> {
        let target = format!("ssm:{name}");
        let out = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| aws_error("SSM GetParameter", &target, HINT, e))?;
        let parameter = out.parameter();
        secure_value(parameter.and_then(|p| p.r#type()), parameter.and_then(|p| p.value())).map_err(|detail| AwsError {
            action: "SSM GetParameter",
            target,
            detail,
            hint: HINT,
            transient: false,
        })
    }
}

/// The value of a parameter SSM answered, if it is a SecureString with a value. A `String` or
/// `StringList` parameter is refused: its value is stored unencrypted and shown in the console
/// and to anyone with `ssm:GetParameter`, no better than the config it was taken out of.
pub fn secure_value(kind: Option<&ParameterType>, value: Option<&str>) -> Result<Secret, String> {
    match (kind, value) {
        (Some(ParameterType::SecureString), Some(v)) => Ok(Secret::new(v)),
        (Some(ParameterType::SecureString), None) => Err("SSM answered no value".into()),
        (Some(other), _) => Err(format!(
            "the parameter is a {}, not a SecureString: store the credential as a SecureString (aws ssm put-parameter --type SecureString --overwrite)",
            other.as_str()
        )),
        (None, _) => Err("SSM answered no parameter type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_secure_string_is_used_and_an_error_never_shows_the_value() {
        assert_eq!(secure_value(Some(&ParameterType::SecureString), Some("t0k3n")).unwrap().expose(), "t0k3n");
        let e = secure_value(Some(&ParameterType::String), Some("t0k3n")).unwrap_err();
        assert!(e.starts_with("the parameter is a String, not a SecureString"), "{e}");
        assert!(!e.contains("t0k3n"));
        assert!(secure_value(Some(&ParameterType::StringList), Some("a,b")).is_err());
        assert!(secure_value(Some(&ParameterType::SecureString), None).is_err());
        assert!(secure_value(None, Some("t0k3n")).is_err());
    }
}
