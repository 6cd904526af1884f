//! IAM as AWS applies it, for calls that reach moto: which permissions a request needs, and
//! whether a role's policy (from `template.yaml`) grants them.
//!
//! moto enforces no IAM. The guard proxy (see [`crate::guard`]) asks this module, for every call
//! a function makes, what AWS would authorise (the action, the resource ARN — for S3 the object
//! key, and for an object of the artifact bucket also its KMS key — and the request context keys),
//! and evaluates it with `iam-rs`, a maintained IAM policy evaluator (Allow/Deny, wildcards in
//! actions and resources, the condition operators).

mod classify;
mod policies;

use std::collections::BTreeMap;

use serde::Serialize;

pub use classify::classify;
pub use policies::{render_stack, render_template, Policies, Verdict};

use crate::http::Request;
use crate::names::{ACCOUNT, REGION};

/// The identity a function's SDK clients sign with: its access key names the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Role {
    /// The deploy function's role (`DeployRole` in template.yaml).
    Deploy,
    /// The verify function's role (`VerifyRole`).
    Verify,
}

impl Role {
    /// Both roles.
    pub const ALL: [Role; 2] = [Role::Deploy, Role::Verify];

    /// The access key id the role's clients sign with.
    pub fn access_key(self) -> &'static str {
        match self {
            Role::Deploy => "ROLEDEPLOY",
            Role::Verify => "ROLEVERIFY",
        }
    }

    /// The role's logical id in template.yaml.
    pub fn logical_id(self) -> &'static str {
        match self {
            Role::Deploy => "DeployRole",
            Role::Verify => "VerifyRole",
        }
    }

    /// The role a signed request came from, by its access key; `None` for the test harness.
    pub fn of_request(req: &Request) -> Option<Role> {
        let key = access_key_of(req)?;
        Role::ALL.into_iter().find(|r| r.access_key() == key)
    }

    /// The role's ARN as the stack creates it (under its Path), as `scripts/iam_policies.py`
    /// renders `DeployRoleArn` and `VerifyRoleArn`: what `PUSHDEPLOY_ROLE_ARNS` lists.
    pub fn role_arn(self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/pushdeploy/pushdeploy/pushdeploy-{}", self.logical_id())
    }

    /// The ARN of the function's session of the role, as ECS names it in `registeredBy` (the role
    /// without its path; Lambda names the session after the function).
    pub fn session_arn(self) -> String {
        let function = match self {
            Role::Deploy => "pushdeploy-deploy",
            Role::Verify => "pushdeploy-verify",
        };
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/pushdeploy-{}/{function}", self.logical_id())
    }

    fn arn(self) -> String {
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/pushdeploy-{}/pushdeploy", self.logical_id())
    }
}

/// The access key id a request is signed with.
fn access_key_of(req: &Request) -> Option<&str> {
    req.header("authorization")?.split("Credential=").nth(1)?.split('/').next()
}

/// The role the estate's Terraform runs as: the harness's own clients (access key `testing`)
/// register revisions as a session of it.
pub const TERRAFORM_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/terraform";

/// The access key the harness's own clients sign with ([`crate::clients::Aws::new`]).
pub const HARNESS_ACCESS_KEY: &str = "testing";

/// The principal ECS would name as the registrant (`registeredBy`) of a revision `req`
/// registers, by the access key it is signed with: a function's session of its role, the
/// harness's key as a session of Terraform's role, any other key `K` as a session of a role
/// named `K` ([`crate::clients::Aws::signing_as`]): a principal the config does not trust.
pub fn registrant_of(req: &Request) -> Option<String> {
    let key = access_key_of(req)?;
    if let Some(role) = Role::ALL.into_iter().find(|r| r.access_key() == key) {
        return Some(role.session_arn());
    }
    let role = if key == HARNESS_ACCESS_KEY { "terraform" } else { key };
    Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/testkit"))
}

/// The stand-in id of the stack's KMS key (`ArtifactKey`), as `scripts/iam_policies.py` renders it.
pub const ARTIFACT_KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

/// The ARN of the artifact bucket's default encryption key: what S3 asks KMS to use, as the caller,
/// for every object of the bucket.
pub fn artifact_key_arn() -> String {
    arn("kms", &format!("key/{ARTIFACT_KEY_ID}"))
}

/// The stand-in id of a customer KMS key smoke-test SecureStrings may be encrypted under, as
/// `scripts/iam_policies.py` renders `SmokeSecretKeyArns` for the local estate.
pub const SMOKE_SECRET_KEY_ID: &str = "0987dcba-09fe-87dc-65ba-ab0987654321";

/// The ARN of that key.
pub fn smoke_secret_key_arn() -> String {
    arn("kms", &format!("key/{SMOKE_SECRET_KEY_ID}"))
}

/// One authorisation AWS makes for a request: an action on a resource with context keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// e.g. `s3:GetObject`.
    pub action: String,
    /// The resource ARN, or `*` for actions that support no resource-level permissions.
    pub resource: String,
    /// Condition keys the request carries, e.g. `iam:PassedToService`.
    pub context: BTreeMap<String, String>,
}

impl Check {
    fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self { action: action.into(), resource: resource.into(), context: BTreeMap::new() }
    }

    /// `s3:ListBucket` on `bucket` with no prefix: what S3 asks before it answers 404 for a missing key.
    pub fn list_bucket(bucket: &str) -> Self {
        Self::new("s3:ListBucket", format!("arn:aws:s3:::{bucket}"))
    }

    fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key.to_string(), value.into());
        self
    }
}

/// A request as IAM sees it: the operation's name and what it must be allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The API operation, e.g. `ecs:UpdateService`, `s3:GetObject`.
    pub operation: String,
    /// Every authorisation the operation needs (RegisterTaskDefinition also needs iam:PassRole, …).
    pub checks: Vec<Check>,
}

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
}

/// A parameter's ARN as the Service Authorization Reference defines the resource type
/// `parameter`: `arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`. A
/// request may name the parameter by ARN, and may add a version or label selector (`name:3`),
/// which is not part of the resource.
pub fn ssm_parameter_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_string();
    }
    let name = name.split(':').next().unwrap_or(name);
    arn("ssm", &format!("parameter/{}", name.trim_start_matches('/')))
}

/// The name of SSM's own key for SecureStrings, whose key policy lets every principal of the
/// account use it through SSM: no IAM statement is needed for it.
pub const SSM_DEFAULT_KEY: &str = "alias/aws/ssm";

/// What KMS authorises when SSM decrypts the SecureString `parameter_arn` for the caller
/// (GetParameter WithDecryption) under `key_id`: kms:Decrypt on the key, as the caller, through
/// SSM, with the parameter's ARN as encryption context. `None` for SSM's own key, which its key
/// policy grants the whole account; a key named by alias is checked as that alias's ARN, which a
/// statement naming the key's ARN does not match (stricter than AWS, never laxer).
pub fn secure_string_key(parameter_arn: &str, key_id: &str) -> Option<Check> {
    if key_id.is_empty() || key_id == SSM_DEFAULT_KEY || key_id.ends_with(&format!(":{SSM_DEFAULT_KEY}")) {
        return None;
    }
    let key = if key_id.starts_with("arn:") {
        key_id.to_string()
    } else if key_id.starts_with("alias/") {
        arn("kms", key_id)
    } else {
        arn("kms", &format!("key/{key_id}"))
    };
    Some(
        Check::new("kms:Decrypt", key)
            .with("kms:ViaService", format!("ssm.{REGION}.amazonaws.com"))
            .with("kms:CallerAccount", ACCOUNT)
            .with("kms:EncryptionContext:PARAMETER_ARN", parameter_arn),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::BUCKET;

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn auth(service: &str) -> (&'static str, String) {
        ("authorization", format!("AWS4-HMAC-SHA256 Credential=ROLEDEPLOY/20261127/{REGION}/{service}/aws4_request"))
    }

    #[test]
    fn listing_and_describing_tasks_are_authorised_on_the_clusters_resources() {
        let ecs = |op: &str, body: &str| {
            let (k, v) = auth("ecs");
            let target = format!("AmazonEC2ContainerServiceV20141113.{op}");
            classify(&req("POST", "/", &[(k, &v), ("x-amz-target", &target)], body))
        };
        let list = ecs("ListTasks", r#"{"cluster":"todo-cluster","serviceName":"todo-backend"}"#);
        assert_eq!(list.checks.len(), 1);
        assert_eq!(list.checks[0].resource, arn("ecs", "container-instance/todo-cluster/*"));
        assert_eq!(list.checks[0].context["ecs:cluster"], arn("ecs", "cluster/todo-cluster"));
        let task = arn("ecs", "task/todo-cluster/0123");
        let describe = ecs("DescribeTasks", &format!(r#"{{"cluster":"todo-cluster","tasks":["{task}","4567"]}}"#));
        let resources: Vec<&str> = describe.checks.iter().map(|c| c.resource.as_str()).collect();
        assert_eq!(resources, [task.clone(), arn("ecs", "task/todo-cluster/4567")]);
    }

    #[test]
    fn s3_keys_and_list_prefixes_are_the_resources_and_context() {
        let (k, v) = auth("s3");
        let get = classify(&req("GET", "/b/leases/todo-cluster/todo-backend.json?x-id=GetObject", &[(k, &v)], ""));
        assert_eq!(
            get.checks,
            vec![Check::new("s3:GetObject", "arn:aws:s3:::b/leases/todo-cluster/todo-backend.json")]
        );
        let list = classify(&req("GET", "/b?list-type=2&prefix=deployments%2Ftodo-cluster%2F", &[(k, &v)], ""));
        assert_eq!(list.checks[0].resource, "arn:aws:s3:::b");
        assert_eq!(list.checks[0].context["s3:prefix"], "deployments/todo-cluster/");
    }

    #[test]
    fn an_object_of_the_artifact_bucket_also_needs_its_key_through_s3() {
        let (k, v) = auth("s3");
        let object = format!("/{BUCKET}/deployments/todo-cluster/todo-backend/ecs-svc-1.json");
        let kms = |call: &Call| call.checks.iter().skip(1).cloned().collect::<Vec<_>>();
        let get = classify(&req("GET", &object, &[(k, &v)], ""));
        assert_eq!(get.checks[0].action, "s3:GetObject", "the S3 check comes first");
        let decrypt = kms(&get);
        assert_eq!(decrypt.len(), 1);
        assert_eq!((decrypt[0].action.as_str(), decrypt[0].resource.clone()), ("kms:Decrypt", artifact_key_arn()));
        assert_eq!(decrypt[0].context["kms:ViaService"], "s3.ap-southeast-2.amazonaws.com");
        let put = classify(&req("PUT", &object, &[(k, &v)], "{}"));
        assert_eq!(kms(&put).iter().map(|c| c.action.as_str()).collect::<Vec<_>>(), ["kms:GenerateDataKey"]);
        assert!(kms(&classify(&req("HEAD", &object, &[(k, &v)], ""))).is_empty(), "a HEAD decrypts nothing");
        // Another bucket's objects are under that bucket's own encryption, not the stack's key.
        assert!(kms(&classify(&req("GET", "/other-bucket/pushdeploy.toml", &[(k, &v)], ""))).is_empty());
    }

    /// The roles of template.yaml, rendered: each needs its key statement for the bucket's objects,
    /// and the key ARN the renderer gives `!GetAtt ArtifactKey.Arn` is the one the checks name.
    #[test]
    fn the_template_roles_may_use_the_artifact_key_and_only_through_s3() {
        let rendered = render_stack(&[]);
        assert_eq!(rendered["stack"]["ArtifactKeyArn"], artifact_key_arn().as_str());
        let policies = Policies::from_roles("template.yaml", &rendered["roles"]);
        let (k, v) = auth("s3");
        let paths = [
            format!("/{BUCKET}/deployments/todo-cluster/todo-backend/ecs-svc-1.json"),
            format!("/{BUCKET}/leases/todo-cluster/todo-backend.json"),
        ];
        for role in Role::ALL {
            for path in &paths {
                for method in ["GET", "PUT"] {
                    let call = classify(&req(method, path, &[(k, &v)], ""));
                    for check in &call.checks {
                        let verdict = policies.evaluate(role, check);
                        assert!(verdict.allowed, "{role:?} {method} {path}: {check:?}");
                    }
                    let key = call.checks.last().expect("a key check");
                    assert_eq!(policies.evaluate(role, key).allowed_by, ["UseTheArtifactKeyThroughS3"]);
                    // Without that statement S3 would answer AccessDenied; and never outside S3.
                    let bare = policies.without(role, |s| s["Sid"] == "UseTheArtifactKeyThroughS3");
                    assert!(!bare.evaluate(role, key).allowed, "{role:?}: the key statement is what allows it");
                    let mut direct = key.clone();
                    direct.context.insert("kms:ViaService".into(), "lambda.ap-southeast-2.amazonaws.com".into());
                    assert!(!policies.evaluate(role, &direct).allowed, "{role:?}: a direct KMS call");
                }
            }
        }
    }

    #[test]
    fn get_parameter_is_authorised_on_the_parameter_and_its_customer_key_through_ssm() {
        let (k, v) = auth("ssm");
        let get =
            |body: &str| classify(&req("POST", "/", &[("x-amz-target", "AmazonSSM.GetParameter"), (k, &v)], body));
        let call = get(r#"{"Name":"/pushdeploy/todo/api-token","WithDecryption":true}"#);
        assert_eq!(call.operation, "ssm:GetParameter");
        let parameter = "arn:aws:ssm:ap-southeast-2:123456789012:parameter/pushdeploy/todo/api-token";
        assert_eq!(call.checks, vec![Check::new("ssm:GetParameter", parameter)]);
        assert_eq!(get(r#"{"Name":"/pushdeploy/todo/api-token:3"}"#).checks[0].resource, parameter, "a selector");
        assert_eq!(get(r#"{"Name":"plain"}"#).checks[0].resource, arn("ssm", "parameter/plain"));
        assert_eq!(get(&format!(r#"{{"Name":"{parameter}"}}"#)).checks[0].resource, parameter);

        assert_eq!(secure_string_key(parameter, SSM_DEFAULT_KEY), None, "SSM's own key: its key policy");
        let key = arn("kms", "key/0987dcba-09fe-87dc-65ba-ab0987654321");
        let check = secure_string_key(parameter, &key).unwrap();
        assert_eq!((check.action.as_str(), check.resource.as_str()), ("kms:Decrypt", key.as_str()));
        assert_eq!(check.context["kms:ViaService"], "ssm.ap-southeast-2.amazonaws.com");
        assert_eq!(check.context["kms:EncryptionContext:PARAMETER_ARN"], parameter);
        assert_eq!(secure_string_key(parameter, "0987dcba-09fe-87dc-65ba-ab0987654321").unwrap().resource, key);
        assert_eq!(secure_string_key(parameter, "alias/todo").unwrap().resource, arn("kms", "alias/todo"));
    }

    #[test]
    fn register_task_definition_needs_pass_role_and_tag_on_create() {
        let body = r#"{"family":"todo-backend","taskRoleArn":"arn:aws:iam::123456789012:role/t","tags":[{"key":"a","value":"b"}]}"#;
        let call = classify(&req(
            "POST",
            "/",
            &[("x-amz-target", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition")],
            body,
        ));
        let actions: Vec<&str> = call.checks.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"]);
        assert_eq!(call.checks[2].context["iam:PassedToService"], "ecs-tasks.amazonaws.com");
    }

    #[test]
    fn a_condition_on_s3_prefix_does_not_grant_list_bucket_without_the_key() {
        let roles = serde_json::json!({
            "DeployRole": {"Version": "2012-10-17", "Statement": [
                {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                 "Condition": {"StringLike": {"s3:prefix": "deployments/*"}}}]},
            "VerifyRole": {"Version": "2012-10-17", "Statement": [
                {"Sid": "Star", "Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
                {"Sid": "No", "Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*"}]}
        });
        let p = Policies::from_roles("test", &roles);
        let bare = Check::new("s3:ListBucket", "arn:aws:s3:::b");
        assert!(!p.evaluate(Role::Deploy, &bare).allowed, "a GetObject carries no s3:prefix");
        assert!(p.evaluate(Role::Deploy, &bare.clone().with("s3:prefix", "deployments/x/")).allowed);
        assert!(
            p.evaluate(
                Role::Verify,
                &Check::new("ecs:DescribeServices", "arn:aws:ecs:ap-southeast-2:123456789012:service/c/s")
            )
            .allowed
        );
        assert!(!p.evaluate(Role::Verify, &Check::new("ecs:UpdateService", "*")).allowed, "an explicit Deny wins");
    }

    #[test]
    fn an_action_without_resource_level_permissions_is_not_matched_by_a_scoped_statement() {
        let roles = serde_json::json!({
            "DeployRole": {"Version": "2012-10-17", "Statement": [
                {"Sid": "Scoped", "Effect": "Allow", "Action": "ecs:DescribeTaskDefinition",
                 "Resource": "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/*"}]},
            "VerifyRole": {"Version": "2012-10-17", "Statement": []}
        });
        let p = Policies::from_roles("test", &roles);
        assert!(!p.evaluate(Role::Deploy, &Check::new("ecs:DescribeTaskDefinition", "*")).allowed);
    }
}
