//! What the stack's two functions run with, as Lambda reports it (GetFunctionConfiguration):
//! the settings `validate` checks against and the config location `status` reads. The operator
//! needs lambda:GetFunctionConfiguration on both functions.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;

/// One function's deployed settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionSettings {
    /// The name it was asked by (the flag's value).
    pub name: String,
    /// `Timeout`, seconds.
    pub timeout_s: u64,
    /// `MemorySize`, MB.
    pub memory_mb: u64,
    /// `VpcConfig.SubnetIds` is non-empty: the function runs in the VPC.
    pub in_vpc: bool,
    /// `Environment.Variables`.
    pub env: BTreeMap<String, String>,
}

impl FunctionSettings {
    /// A variable of its environment, when set and not empty (as the functions read them).
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// The two functions' settings, or why each could not be read (one line).
pub struct Deployed {
    /// The deploy function's.
    pub deploy: Result<FunctionSettings, String>,
    /// The verify function's.
    pub verify: Result<FunctionSettings, String>,
}

/// How long reading them may take, credentials included: a laptop with no credentials asks the
/// instance metadata service, which answers nobody.
const WITHIN: Duration = Duration::from_secs(8);

/// Reads one function's configuration, or says why it could not.
pub async fn read_one(name: &str) -> Result<FunctionSettings, String> {
    one(&client().await?, name).await
}

/// Reads both functions' configuration; never fails, each side says why it could not.
pub async fn read(deploy: &str, verify: &str) -> Deployed {
    let client = match client().await {
        Ok(c) => c,
        Err(why) => return Deployed { deploy: Err(why.clone()), verify: Err(why) },
    };
    let (deploy, verify) = futures_util::join!(one(&client, deploy), one(&client, verify));
    Deployed { deploy, verify }
}

/// A Lambda client, once credentials resolve.
async fn client() -> Result<aws_sdk_lambda::Client, String> {
    let policy = pushdeploy::aws::AwsPolicy {
        max_attempts: 2,
        attempt_timeout: Duration::from_secs(3),
        operation_timeout: Duration::from_secs(6),
        ..Default::default()
    };
    let sdk = policy.loader().load().await;
    let credentials = match sdk.credentials_provider() {
        None => Err("no AWS credentials are configured".to_string()),
        Some(p) => match tokio::time::timeout(WITHIN, p.provide_credentials()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("no AWS credentials ({})", one_line(&e.to_string()))),
            Err(_) => Err(format!("no AWS credentials within {} s", WITHIN.as_secs())),
        },
    };
    credentials.map(|()| aws_sdk_lambda::Client::new(&sdk))
}

/// GetFunctionConfiguration of `name`, within [`WITHIN`].
async fn one(client: &aws_sdk_lambda::Client, name: &str) -> Result<FunctionSettings, String> {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    let asked = client.get_function_configuration().function_name(name).send();
    let out = match tokio::time::timeout(WITHIN, asked).await {
        Err(_) => return Err(format!("Lambda GetFunctionConfiguration of {name} took over {} s", WITHIN.as_secs())),
        Ok(Err(e)) => {
            let code = e.code().unwrap_or_default().to_string();
            let detail = e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| one_line(&aws_sdk_lambda::error::DisplayErrorContext(&e).to_string()));
            let hint = match code.as_str() {
                "ResourceNotFoundException" => " (no such function: check --function/--verify-function, the stack's DeployFunctionName and VerifyFunctionName outputs)",
                "AccessDeniedException" => " (the operator needs lambda:GetFunctionConfiguration on it)",
                _ => "",
            };
            return Err(format!("Lambda GetFunctionConfiguration of {name} failed: {code} {detail}{hint}"));
        }
        Ok(Ok(out)) => out,
    };
    let env = out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    Ok(FunctionSettings {
        name: name.to_string(),
        timeout_s: out.timeout().unwrap_or(3).max(0) as u64,
        memory_mb: out.memory_size().unwrap_or(128).max(0) as u64,
        in_vpc: out.vpc_config().is_some_and(|v| !v.subnet_ids().is_empty()),
        env: env.into_iter().collect(),
    })
}

/// `text` on one line, shortened: an SDK error's context runs long.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 240 {
        format!("{}…", flat.chars().take(239).collect::<String>())
    } else {
        flat
    }
}
