//! IAM as AWS applies it, for calls that reach moto: which permissions a request needs, and
//! whether a role's policy (from `template.yaml`) grants them.
//!
//! moto enforces no IAM. The guard proxy (see [`crate::guard`]) asks this module, for every call
//! a function makes, what AWS would authorise (the action, the resource ARN — for S3 the object
//! key, and for an object of the artifact bucket also its KMS key — and the request context keys),
//! and evaluates it with `iam-rs`, a maintained IAM policy evaluator (Allow/Deny, wildcards in
//! actions and resources, the condition operators).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use iam_rs::{
    Arn, Context, ContextValue, Decision, EvaluationOptions, IAMPolicy, IAMRequest, PolicyEvaluator, Principal,
    PrincipalId,
};
use serde::Serialize;
use serde_json::Value;

use crate::http::Request;
use crate::moto::workspace_root;
use crate::names::{ACCOUNT, BUCKET, REGION};

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

/// The `ecs:cluster` condition key of a request naming `cluster` (a name or an ARN): its ARN.
fn ecs_cluster_arn(cluster: &str) -> String {
    if cluster.starts_with("arn:") {
        return cluster.to_string();
    }
    arn("ecs", &format!("cluster/{cluster}"))
}

/// The long-form ARN of a service named in a request. For a service created before ECS's long
/// ARN format the guard swaps in the ARN ECS gave it (`crate::revisions::Revisions::as_ecs_names_it`).
fn ecs_service_arn(cluster: &str, service: &str) -> String {
    if service.starts_with("arn:") {
        return service.to_string();
    }
    let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
    arn("ecs", &format!("service/{cluster}/{service}"))
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

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn form(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// What AWS authorises for `req`, following the Service Authorization Reference for each action.
pub fn classify(req: &Request) -> Call {
    if let Some(target) = req.header("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or(("", target));
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        if prefix.contains("ContainerService") {
            let operation = format!("ecs:{op}");
            let cluster = body["cluster"].as_str().unwrap_or("default").to_string();
            // Every action on a service carries the cluster as `ecs:cluster` (the Service
            // Authorization Reference lists it for each of these).
            let in_cluster = ecs_cluster_arn(&cluster);
            let checks = match op {
                "DescribeServices" => body["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|svc| Check::new(&operation, ecs_service_arn(&cluster, svc)).with("ecs:cluster", &in_cluster))
                    .collect(),
                "UpdateService" => {
                    vec![Check::new(&operation, ecs_service_arn(&cluster, &s("service")))
                        .with("ecs:cluster", &in_cluster)]
                }
                "ListServiceDeployments" => {
                    vec![Check::new(&operation, ecs_service_arn(&cluster, &s("service")))
                        .with("ecs:cluster", &in_cluster)]
                }
                // Resource type container-instance (the cluster's, as the Service Authorization
                // Reference names it), with the condition key ecs:cluster.
                "ListTasks" => {
                    let name = cluster.rsplit('/').next().unwrap_or(&cluster);
                    vec![Check::new(&operation, arn("ecs", &format!("container-instance/{name}/*")))
                        .with("ecs:cluster", ecs_cluster_arn(&cluster))]
                }
                // Authorised on each task (resource type task), with ecs:cluster.
                "DescribeTasks" => body["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|task| {
                        let name = cluster.rsplit('/').next().unwrap_or(&cluster);
                        let resource = if task.starts_with("arn:") {
                            task.to_string()
                        } else {
                            arn("ecs", &format!("task/{name}/{task}"))
                        };
                        Check::new(&operation, resource).with("ecs:cluster", ecs_cluster_arn(&cluster))
                    })
                    .collect(),
                // Authorised on each revision (or service deployment) and on its service (both
                // resource types are required).
                "DescribeServiceRevisions" | "DescribeServiceDeployments" => body
                    [if op == "DescribeServiceRevisions" { "serviceRevisionArns" } else { "serviceDeploymentArns" }]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|rev| {
                    let mut parts = rev.rsplit('/');
                    let (_id, svc, cl) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let in_cluster = ecs_cluster_arn(cl);
                    [
                        Check::new(&operation, rev).with("ecs:cluster", &in_cluster),
                        Check::new(&operation, ecs_service_arn(cl, svc)).with("ecs:cluster", &in_cluster),
                    ]
                })
                .collect(),
                "RegisterTaskDefinition" => {
                    // Authorised on the revision it creates (resource type task-definition).
                    let revision = arn("ecs", &format!("task-definition/{}:*", s("family")));
                    let mut checks = vec![Check::new(&operation, revision)];
                    if body["tags"].as_array().is_some_and(|t| !t.is_empty()) {
                        // Tagging on create is authorised as ecs:TagResource with ecs:CreateAction.
                        checks.push(
                            Check::new("ecs:TagResource", arn("ecs", &format!("task-definition/{}:*", s("family"))))
                                .with("ecs:CreateAction", "RegisterTaskDefinition"),
                        );
                    }
                    for role in ["taskRoleArn", "executionRoleArn"] {
                        if let Some(r) = body[role].as_str() {
                            checks.push(
                                Check::new("iam:PassRole", r).with("iam:PassedToService", "ecs-tasks.amazonaws.com"),
                            );
                        }
                    }
                    checks
                }
                // DescribeTaskDefinition, DeregisterTaskDefinition, List*: no resource-level permissions.
                _ => vec![Check::new(&operation, "*")],
            };
            return Call { operation, checks };
        }
        if prefix.contains("ContainerRegistry") {
            let operation = format!("ecr:{op}");
            let account = body["registryId"].as_str().unwrap_or(ACCOUNT).to_string();
            let repo = s("repositoryName");
            let resource = if repo.is_empty() {
                "*".to_string()
            } else {
                format!("arn:aws:ecr:{REGION}:{account}:repository/{repo}")
            };
            return Call { checks: vec![Check::new(&operation, resource)], operation };
        }
        if prefix == "AmazonSSM" {
            let operation = format!("ssm:{op}");
            let checks = match op {
                // Authorised on the parameter (resource type parameter); the decryption of a
                // SecureString is KMS's to authorise (see `secure_string_key`).
                "GetParameter" => vec![Check::new(&operation, ssm_parameter_arn(&s("Name")))],
                _ => vec![Check::new(&operation, "*")],
            };
            return Call { operation, checks };
        }
        let operation = format!("{prefix}:{op}");
        return Call { checks: vec![Check::new(&operation, "*")], operation };
    }
    let scope = req.header("authorization").and_then(|a| a.split("Credential=").nth(1)).unwrap_or_default();
    let service = scope.split('/').nth(3).unwrap_or("?").to_string();
    if service == "s3" {
        return classify_s3(req);
    }
    let params = form(&req.body);
    let action = params.get("Action").cloned().unwrap_or_default();
    let operation = format!("{service}:{action}");
    let resource = match (service.as_str(), action.as_str()) {
        ("sns", "Publish") => {
            params.get("TopicArn").or_else(|| params.get("TargetArn")).cloned().unwrap_or_else(|| "*".into())
        }
        // elasticloadbalancing:Describe* support no resource-level permissions.
        _ => "*".into(),
    };
    Call { checks: vec![Check::new(&operation, resource)], operation }
}

fn classify_s3(req: &Request) -> Call {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let query = form(query.as_bytes());
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let (bucket, key) = (decode(bucket), decode(key));
    let object = format!("arn:aws:s3:::{bucket}/{key}");
    let check = |action: &str, resource: &str| Call {
        operation: format!("s3:{}", action),
        checks: vec![Check::new(format!("s3:{action}"), resource)],
    };
    // The artifact bucket encrypts with the stack's KMS key (SSE-KMS, bucket key on): S3 uses the key
    // as the caller, so reading an object's content also needs kms:Decrypt and writing one
    // kms:GenerateDataKey, with kms:ViaService naming S3. Asked of every GET whatever S3 then
    // answers (AWS asks only when there is an object to decrypt): stricter, never laxer. A HEAD
    // decrypts nothing and needs no key.
    let with_key = |mut call: Call, action: &str| {
        if bucket == BUCKET {
            call.checks.push(
                Check::new(action, artifact_key_arn())
                    .with("kms:ViaService", format!("s3.{REGION}.amazonaws.com"))
                    .with("kms:CallerAccount", ACCOUNT)
                    .with("kms:EncryptionContext:aws:s3:arn", format!("arn:aws:s3:::{bucket}")),
            );
        }
        call
    };
    match (req.method.as_str(), key.is_empty()) {
        ("GET", false) if query.contains_key("versionId") => {
            with_key(check("GetObjectVersion", &object), "kms:Decrypt")
        }
        ("GET", false) => with_key(check("GetObject", &object), "kms:Decrypt"),
        ("HEAD", false) if query.contains_key("versionId") => check("GetObjectVersion", &object),
        ("HEAD", false) => check("GetObject", &object),
        ("PUT", false) => with_key(check("PutObject", &object), "kms:GenerateDataKey"),
        ("DELETE", false) => check("DeleteObject", &object),
        ("GET", true) if query.contains_key("versions") => {
            check("ListBucketVersions", &format!("arn:aws:s3:::{bucket}"))
        }
        ("GET", true) => {
            let mut c = Check::new("s3:ListBucket", format!("arn:aws:s3:::{bucket}"));
            for (param, key) in [("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")] {
                if let Some(v) = query.get(param) {
                    c = c.with(key, v.clone());
                }
            }
            Call { operation: "s3:ListObjectsV2".into(), checks: vec![c] }
        }
        (m, _) => check(&format!("Unclassified{m}"), &format!("arn:aws:s3:::{bucket}")),
    }
}

/// The verdict on one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Allowed (an Allow matched and no Deny did).
    pub allowed: bool,
    /// The Sids of the statements that allowed it.
    pub allowed_by: Vec<String>,
}

/// Role policies, rendered from template.yaml or given directly.
#[derive(Debug, Clone)]
pub struct Policies {
    /// Where they came from, e.g. `template.yaml`.
    pub source: String,
    /// Each role's policy document as JSON.
    pub documents: HashMap<Role, Value>,
    parsed: HashMap<Role, IAMPolicy>,
}

impl Policies {
    /// The roles of template.yaml for the local estate, rendered once per process by
    /// `scripts/iam_policies.py` (the same rendering the IAM linter reads).
    pub fn template() -> &'static Policies {
        static TEMPLATE: OnceLock<Policies> = OnceLock::new();
        TEMPLATE.get_or_init(|| {
            let rendered = render_template(&[]);
            Policies::from_roles("template.yaml", &rendered)
        })
    }

    /// The roles of template.yaml for an estate whose task definitions are `families` (their task
    /// and execution roles named as the estate names them), as a user would fill in the parameters.
    pub fn template_for_families(families: &[&str]) -> Policies {
        let roles = |suffix: &str| {
            families.iter().map(|f| format!("arn:aws:iam::{ACCOUNT}:role/{f}-{suffix}")).collect::<Vec<_>>().join(",")
        };
        let (task, execution) = (roles("task"), roles("execution"));
        let rendered = render_template(&[("TaskRoleArns", &task), ("ExecutionRoleArns", &execution)]);
        Policies::from_roles("template.yaml (task roles of the test's families)", &rendered)
    }

    /// Policies from `{"DeployRole": <document>, "VerifyRole": <document>}`.
    pub fn from_roles(source: &str, roles: &Value) -> Self {
        let mut documents = HashMap::new();
        let mut parsed = HashMap::new();
        for role in Role::ALL {
            let doc = roles[role.logical_id()].clone();
            let policy = IAMPolicy::from_json(&doc.to_string())
                .unwrap_or_else(|e| panic!("{source}: {} is not a policy iam-rs reads: {e}", role.logical_id()));
            documents.insert(role, doc);
            parsed.insert(role, policy);
        }
        Self { source: source.to_string(), documents, parsed }
    }

    /// These policies with `role`'s statements for which `drop` answers true removed.
    pub fn without(&self, role: Role, drop: impl Fn(&Value) -> bool) -> Self {
        let mut roles = serde_json::Map::new();
        for r in Role::ALL {
            let mut doc = self.documents[&r].clone();
            if r == role {
                if let Some(statements) = doc["Statement"].as_array_mut() {
                    statements.retain(|s| !drop(s));
                }
            }
            roles.insert(r.logical_id().to_string(), doc);
        }
        Self::from_roles(&format!("{} (edited)", self.source), &Value::Object(roles))
    }

    /// Evaluates one check for `role`.
    pub fn evaluate(&self, role: Role, check: &Check) -> Verdict {
        let policy = &self.parsed[&role];
        let resource = if check.resource == "*" {
            // iam-rs needs an ARN; this one matches only a policy resource of "*" (or `...:*`), as
            // AWS evaluates actions that support no resource-level permissions.
            let service = check.action.split(':').next().unwrap_or("?");
            format!("arn:aws:{service}:{REGION}:{ACCOUNT}:*")
        } else {
            check.resource.clone()
        };
        let Ok(resource) = Arn::parse(&resource) else {
            return Verdict { allowed: false, allowed_by: vec![] };
        };
        let mut context = Context::new();
        for (k, v) in &check.context {
            context.insert(k.clone(), ContextValue::String(v.clone()));
        }
        let request = IAMRequest::new_with_context(
            Principal::Aws(PrincipalId::String(role.arn())),
            check.action.clone(),
            resource,
            context,
        );
        let evaluator = PolicyEvaluator::with_policies(vec![policy.clone()]).with_options(EvaluationOptions {
            collect_match_details: true,
            stop_on_explicit_deny: false,
            ..EvaluationOptions::default()
        });
        match evaluator.evaluate(&request) {
            Ok(result) => Verdict {
                allowed: result.decision == Decision::Allow,
                allowed_by: result
                    .statement_details
                    .iter()
                    .filter(|s| s.conditions_satisfied && s.effect == iam_rs::IAMEffect::Allow)
                    .map(|s| s.sid.clone().unwrap_or_else(|| "(no Sid)".into()))
                    .collect(),
            },
            Err(_) => Verdict { allowed: false, allowed_by: vec![] },
        }
    }

    /// The Sids of `role`'s statements.
    pub fn sids(&self, role: Role) -> Vec<String> {
        self.documents[&role]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)").to_string())
            .collect()
    }
}

/// Renders template.yaml's role policies for the local estate, with `--set` overrides.
pub fn render_template(overrides: &[(&str, &str)]) -> Value {
    render_stack(overrides)["roles"].clone()
}

/// Everything `scripts/iam_policies.py` renders: `roles`, `stack` (physical ids and ARNs, e.g.
/// `ArtifactKeyArn`), `resource_policies` and `trust_policies`.
pub fn render_stack(overrides: &[(&str, &str)]) -> Value {
    let root = workspace_root();
    let venv = root.join(".venv/bin/python");
    let python: PathBuf = if venv.exists() { venv } else { PathBuf::from("python3") };
    let mut cmd = Command::new(python);
    cmd.arg(root.join("scripts/iam_policies.py"));
    for (k, v) in overrides {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run scripts/iam_policies.py (scripts/setup installs its PyYAML)");
    assert!(out.status.success(), "scripts/iam_policies.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("iam_policies.py prints JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

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
