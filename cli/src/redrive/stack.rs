//! The stack a message may be replayed to: its two functions, named by ARN or by name, and the
//! rules whose dead letters the queue takes.

/// One of the stack's two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `deploy`: ECR pushes (the EcrPush rule).
    Deploy,
    /// `verify`: ECS deployment state changes (the EcsDeployment rule).
    Verify,
}

impl Target {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Target::Deploy => "deploy",
            Target::Verify => "verify",
        }
    }
}

/// A Lambda function as an ARN names it, whatever version or alias the ARN adds: a failure record
/// names `…:function:NAME:$LATEST` (or the version or alias that ran), a dead letter the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionId {
    region: String,
    account: String,
    pub(super) name: String,
}

impl FunctionId {
    /// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, or `None`.
    pub fn from_arn(arn: &str) -> Option<FunctionId> {
        let parts: Vec<&str> = arn.split(':').collect();
        let (region, account, name) = match parts.as_slice() {
            ["arn", _, "lambda", region, account, "function", name] => (region, account, name),
            ["arn", _, "lambda", region, account, "function", name, qualifier] if !qualifier.is_empty() => {
                (region, account, name)
            }
            _ => return None,
        };
        let named = !region.is_empty() && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        named
            .then(|| FunctionId { region: region.to_string(), account: account.to_string(), name: name.to_string() })
            .filter(|f| !f.name.is_empty())
    }

    /// The function the operator names with a flag: a full ARN, or a plain name, which Lambda
    /// resolves in the region the command talks to and (the stack being one template) in the
    /// queue's account.
    pub fn named(name_or_arn: &str, region: &str, account: &str) -> Result<FunctionId, String> {
        if name_or_arn.starts_with("arn:") {
            return FunctionId::from_arn(name_or_arn).ok_or_else(|| {
                format!("{name_or_arn:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)")
            });
        }
        if name_or_arn.is_empty() || name_or_arn.contains(':') {
            return Err(format!(
                "{name_or_arn:?} is neither a function name nor a function ARN: give the stack's function name or its full ARN"
            ));
        }
        Ok(FunctionId { region: region.to_string(), account: account.to_string(), name: name_or_arn.to_string() })
    }
}

/// The account in a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
pub fn queue_account(url: &str) -> Option<&str> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let (_name, account) = (parts.next()?, parts.next()?);
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// What the stack is: the two functions the queue serves and, when the operator names them, the
/// two rules whose dead letters it takes.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The deploy function.
    pub deploy: FunctionId,
    /// The verify function.
    pub verify: FunctionId,
    /// The rules' ARNs (`--rule-arn`); empty when not given, and then `RULE_ARN` is not checked.
    pub rules: Vec<String>,
}

impl Stack {
    pub(super) fn target(&self, arn: &str) -> Option<Target> {
        let id = FunctionId::from_arn(arn)?;
        if id == self.deploy {
            Some(Target::Deploy)
        } else if id == self.verify {
            Some(Target::Verify)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn function_ids_compare_name_region_and_account_and_flags_take_a_name_or_an_arn() {
        let by_name = FunctionId::named("pushdeploy-deploy", REGION, ACCOUNT).unwrap();
        assert_eq!(FunctionId::named(DEPLOY, "us-east-1", "999999999999").unwrap(), by_name, "an ARN says it all");
        assert_eq!(FunctionId::from_arn(&format!("{DEPLOY}:$LATEST")), Some(by_name.clone()));
        assert_eq!(
            FunctionId::from_arn(&format!("arn:aws-cn:lambda:{REGION}:{ACCOUNT}:function:pushdeploy-deploy")),
            Some(by_name)
        );
        for bad in [
            "",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:",
            "arn:aws:lambda:ap-southeast-2:1234:function:f",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:f:",
            "arn:aws:lambda:ap-southeast-2:123456789012:function:f:1:2",
            "arn:aws:lambda:ap-southeast-2:123456789012:layer:f",
        ] {
            assert_eq!(FunctionId::from_arn(bad), None, "{bad}");
        }
        assert!(FunctionId::named("arn:aws:sqs:x", REGION, ACCOUNT).unwrap_err().contains("not a Lambda function ARN"));
        assert!(FunctionId::named("123456789012:function:f", REGION, ACCOUNT).unwrap_err().contains("neither"));
        assert_eq!(
            queue_account("https://sqs.ap-southeast-2.amazonaws.com/123456789012/pushdeploy-FailedInvocations-AbC"),
            Some(ACCOUNT)
        );
        assert_eq!(queue_account("http://127.0.0.1:5000/123456789012/q/"), Some(ACCOUNT));
        assert_eq!(queue_account("https://sqs.ap-southeast-2.amazonaws.com/q"), None);
        assert_eq!(queue_account("pushdeploy-FailedInvocations"), None);
    }
}
