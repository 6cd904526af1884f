//! Which permissions a request needs, following the Service Authorization Reference for each action.

use std::collections::HashMap;

use serde_json::Value;

use super::{arn, artifact_key_arn, ssm_parameter_arn, Call, Check};
use crate::http::Request;
use crate::names::{ACCOUNT, BUCKET, REGION};

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

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn form(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// What AWS authorises for `req`, following the Service Authorization Reference for each action.
pub fn classify(req: &Request) -> Call {
    if let Some(target) = req.header("x-amz-target") {
        return classify_target(req, target);
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

/// A JSON-protocol request (ECS, ECR, SSM), named by its `x-amz-target`.
fn classify_target(req: &Request, target: &str) -> Call {
    let (prefix, op) = target.split_once('.').unwrap_or(("", target));
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    if prefix.contains("ContainerService") {
        return classify_ecs(op, &body);
    }
    if prefix.contains("ContainerRegistry") {
        let operation = format!("ecr:{op}");
        let account = body["registryId"].as_str().unwrap_or(ACCOUNT).to_string();
        let repo = s("repositoryName");
        let resource =
            if repo.is_empty() { "*".to_string() } else { format!("arn:aws:ecr:{REGION}:{account}:repository/{repo}") };
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
    // CloudWatch over AWS JSON 1.0: its metric actions support no resource-level permissions.
    let service = if prefix == "GraniteServiceVersion20100801" { "cloudwatch" } else { prefix };
    let operation = format!("{service}:{op}");
    Call { checks: vec![Check::new(&operation, "*")], operation }
}

/// The strings of the array `body[key]`.
fn strings<'a>(body: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    body[key].as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// An ECS request: every action on a service carries the cluster as `ecs:cluster` (the Service
/// Authorization Reference lists it for each of these).
fn classify_ecs(op: &str, body: &Value) -> Call {
    let operation = format!("ecs:{op}");
    let cluster = body["cluster"].as_str().unwrap_or("default").to_string();
    let name = cluster.rsplit('/').next().unwrap_or(&cluster);
    let in_cluster = ecs_cluster_arn(&cluster);
    let on_service =
        |svc: &str| Check::new(&operation, ecs_service_arn(&cluster, svc)).with("ecs:cluster", &in_cluster);
    let checks = match op {
        "DescribeServices" => strings(body, "services").map(on_service).collect(),
        "UpdateService" | "ListServiceDeployments" => vec![on_service(body["service"].as_str().unwrap_or_default())],
        // Resource type container-instance (the cluster's, as the Service Authorization
        // Reference names it), with the condition key ecs:cluster.
        "ListTasks" => vec![Check::new(&operation, arn("ecs", &format!("container-instance/{name}/*")))
            .with("ecs:cluster", &in_cluster)],
        // Authorised on each task (resource type task), with ecs:cluster.
        "DescribeTasks" => strings(body, "tasks")
            .map(|task| {
                let resource = if task.starts_with("arn:") {
                    task.to_string()
                } else {
                    arn("ecs", &format!("task/{name}/{task}"))
                };
                Check::new(&operation, resource).with("ecs:cluster", &in_cluster)
            })
            .collect(),
        "DescribeServiceRevisions" => revision_checks(&operation, strings(body, "serviceRevisionArns")),
        "DescribeServiceDeployments" => revision_checks(&operation, strings(body, "serviceDeploymentArns")),
        "RegisterTaskDefinition" => register_checks(&operation, body),
        // DescribeTaskDefinition, DeregisterTaskDefinition, List*: no resource-level permissions.
        _ => vec![Check::new(&operation, "*")],
    };
    Call { operation, checks }
}

/// Authorised on each revision (or service deployment) and on its service (both resource types
/// are required).
fn revision_checks<'a>(operation: &str, arns: impl Iterator<Item = &'a str>) -> Vec<Check> {
    arns.flat_map(|rev| {
        let mut parts = rev.rsplit('/');
        let (_id, svc, cl) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let in_cluster = ecs_cluster_arn(cl);
        [
            Check::new(operation, rev).with("ecs:cluster", &in_cluster),
            Check::new(operation, ecs_service_arn(cl, svc)).with("ecs:cluster", &in_cluster),
        ]
    })
    .collect()
}

/// Authorised on the revision it creates (resource type task-definition), with tagging on create
/// as ecs:TagResource and each role it names passed to ECS tasks.
fn register_checks(operation: &str, body: &Value) -> Vec<Check> {
    let revision = arn("ecs", &format!("task-definition/{}:*", body["family"].as_str().unwrap_or_default()));
    let mut checks = vec![Check::new(operation, &revision)];
    if body["tags"].as_array().is_some_and(|t| !t.is_empty()) {
        checks.push(Check::new("ecs:TagResource", revision).with("ecs:CreateAction", "RegisterTaskDefinition"));
    }
    for role in ["taskRoleArn", "executionRoleArn"] {
        if let Some(r) = body[role].as_str() {
            checks.push(Check::new("iam:PassRole", r).with("iam:PassedToService", "ecs-tasks.amazonaws.com"));
        }
    }
    checks
}

/// An S3 request (REST: the method, the bucket and key in the path, the query).
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
