//! Inbound JSON → one typed trigger: an ECR push, an ECS deployment change, or a manual action.
//!
//! `aws_lambda_events` has no typed detail for either EventBridge event, and its `eventbridge`
//! feature costs a second proc-macro stack, so the envelope here is our own and small.

use serde::Deserialize;
use serde_json::Value;

use crate::error::InputError;
use crate::image::{truncate, validate_repository, validate_tag, Digest, ImageRef};

/// Largest payload accepted; EventBridge events are at most 256 KiB.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A successful, tagged image push.
    Push(PushEvent),
    /// An ECR event that never deploys (delete, failed push, untagged push), with the reason.
    IgnoredEcr { event_id: String, reason: String },
    /// An ECS deployment state change.
    EcsDeployment(EcsDeploymentEvent),
    /// An operator's direct invocation.
    Manual(ManualAction),
}

/// A successful push of `repository:tag` at `digest`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushEvent {
    /// EventBridge event id: the trigger recorded in deployment records.
    pub event_id: String,
    /// When ECR reported the push (RFC 3339).
    pub time: Option<String>,
    /// Account that owns the registry.
    pub account: String,
    /// Region of the registry.
    pub region: String,
    /// The pushed image: registry, repository, tag and digest.
    pub image: ImageRef,
    /// The event's `artifact-media-type` (the config's media type), when it says.
    pub artifact_media_type: Option<String>,
    /// The event's `manifest-media-type`, when it says.
    pub manifest_media_type: Option<String>,
}

impl PushEvent {
    /// The pushed tag (always present on a push that deploys).
    pub fn tag(&self) -> &str {
        self.image.tag.as_deref().unwrap_or_default()
    }

    /// The pushed digest.
    pub fn digest(&self) -> &Digest {
        self.image.digest.as_ref().expect("a PushEvent is built with a digest")
    }
}

/// ECS's `ECS Deployment State Change` event.
#[derive(Debug, Clone, PartialEq)]
pub struct EcsDeploymentEvent {
    /// EventBridge event id.
    pub event_id: String,
    /// When ECS sent it.
    pub time: Option<String>,
    /// Cluster name: from a long service ARN, or from `detail.clusterArn`. `None` when the event
    /// names a short-ARN service (`…:service/<name>`) and no cluster: verify finds it in the
    /// config ([`crate::config::Config::clusters_of`]) before acting.
    pub cluster: Option<String>,
    /// Service name, from the service ARN.
    pub service: String,
    /// `ecs-svc/…`.
    pub deployment_id: String,
    /// What happened.
    pub state: DeploymentState,
    /// ECS's own explanation.
    pub reason: Option<String>,
}

/// The ECS deployment event names pushdeploy acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    /// `SERVICE_DEPLOYMENT_IN_PROGRESS`.
    InProgress,
    /// `SERVICE_DEPLOYMENT_COMPLETED`.
    Completed,
    /// `SERVICE_DEPLOYMENT_FAILED`.
    Failed,
}

/// A direct invocation by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum ManualAction {
    /// New tasks of the digest the service runs now.
    Redeploy {
        /// Configured service name.
        service: String,
        /// Roll it out even when pushdeploy rolled that digest back.
        #[serde(default)]
        force: bool,
    },
    /// Deploy a given tag.
    Deploy {
        /// Configured service name.
        service: String,
        /// Tag to deploy.
        tag: String,
        /// Deploy it even when pushdeploy rolled the tag's digest back.
        #[serde(default)]
        force: bool,
    },
    /// Return to the last verified deployment before the current one.
    Rollback {
        /// Configured service name.
        service: String,
    },
    /// Answer what `deploy` would do, changing nothing.
    Plan {
        /// Configured service name.
        service: String,
        /// Tag to plan for; defaults to the watched tag.
        #[serde(default)]
        tag: Option<String>,
        /// Plan the forced deploy (past a rollback of the tag's digest).
        #[serde(default)]
        force: bool,
    },
}

impl ManualAction {
    /// The configured service name the action targets.
    pub fn service(&self) -> &str {
        match self {
            ManualAction::Redeploy { service, .. }
            | ManualAction::Deploy { service, .. }
            | ManualAction::Rollback { service }
            | ManualAction::Plan { service, .. } => service,
        }
    }

    /// The verb, as logs and answers name it.
    pub fn verb(&self) -> &'static str {
        match self {
            ManualAction::Redeploy { .. } => "redeploy",
            ManualAction::Deploy { .. } => "deploy",
            ManualAction::Rollback { .. } => "rollback",
            ManualAction::Plan { .. } => "plan",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    account: String,
    region: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    detail: Option<Value>,
}

#[derive(Deserialize)]
struct EcrDetail {
    #[serde(rename = "action-type")]
    action_type: String,
    result: String,
    #[serde(rename = "repository-name")]
    repository_name: String,
    #[serde(rename = "image-digest", default)]
    image_digest: Option<String>,
    #[serde(rename = "image-tag", default)]
    image_tag: Option<String>,
    #[serde(rename = "artifact-media-type", default)]
    artifact_media_type: Option<String>,
    #[serde(rename = "manifest-media-type", default)]
    manifest_media_type: Option<String>,
}

#[derive(Deserialize)]
struct EcsDeploymentDetail {
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "deploymentId")]
    deployment_id: String,
    #[serde(default)]
    reason: Option<String>,
    /// Not in ECS's documented examples; taken when present, since a short service ARN names no cluster.
    #[serde(rename = "clusterArn", default)]
    cluster_arn: Option<String>,
}

impl EcsDeploymentEvent {
    /// The cluster, once known (see [`EcsDeploymentEvent::cluster`]); empty before.
    pub fn cluster(&self) -> &str {
        self.cluster.as_deref().unwrap_or_default()
    }
}

/// Parses raw invocation bytes into a trigger.
pub fn parse_bytes(bytes: &[u8]) -> Result<Trigger, InputError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(InputError::new(format!("event is {} bytes; at most {MAX_EVENT_BYTES} are accepted", bytes.len())));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| InputError::new(format!("event is not valid JSON: {e}")))?;
    parse(value)
}

/// Parses an invocation payload into a trigger.
pub fn parse(value: Value) -> Result<Trigger, InputError> {
    let Value::Object(obj) = &value else {
        return Err(InputError::new("event must be a JSON object"));
    };
    if obj.contains_key("action") {
        return parse_manual(value);
    }
    if !obj.contains_key("detail-type") {
        return Err(InputError::new(
            "event is neither an EventBridge event (no \"detail-type\") nor a manual action (no \"action\")",
        ));
    }
    let env: Envelope =
        serde_json::from_value(value).map_err(|e| InputError::new(format!("malformed EventBridge envelope: {e}")))?;
    if env.id.is_empty()
        || env.id.len() > 128
        || !env.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(InputError::new(format!("event id {:?} is not an EventBridge event id", truncate(&env.id))));
    }
    if env.account.len() != 12 || !env.account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InputError::new(format!("account {:?} is not a 12-digit AWS account id", truncate(&env.account))));
    }
    if !is_region(&env.region) {
        return Err(InputError::new(format!("region {:?} is not an AWS region", truncate(&env.region))));
    }
    let detail =
        env.detail.clone().ok_or_else(|| InputError::new(format!("{} event has no detail", env.detail_type)))?;
    match (env.source.as_str(), env.detail_type.as_str()) {
        ("aws.ecr", "ECR Image Action") => parse_ecr(env, detail),
        ("aws.ecs", "ECS Deployment State Change") => parse_ecs(env, detail),
        (source, dt) => Err(InputError::new(format!(
            "unsupported event {:?} from {:?}: pushdeploy takes ECR Image Action and ECS Deployment State Change",
            truncate(dt),
            truncate(source)
        ))),
    }
}

fn parse_manual(value: Value) -> Result<Trigger, InputError> {
    let action = value.get("action").cloned();
    let manual: ManualAction = serde_json::from_value(value).map_err(|e| {
        let known = "redeploy, deploy, rollback, plan";
        match action {
            Some(Value::String(a)) if !["redeploy", "deploy", "rollback", "plan"].contains(&a.as_str()) => {
                InputError::new(format!("unknown action {:?}: use one of {known}", truncate(&a)))
            }
            _ => InputError::new(format!("malformed manual action: {e}")),
        }
    })?;
    check_short("service", manual.service())?;
    match &manual {
        ManualAction::Deploy { tag, .. } | ManualAction::Plan { tag: Some(tag), .. } => validate_tag(tag)?,
        _ => {}
    }
    Ok(Trigger::Manual(manual))
}

fn parse_ecr(env: Envelope, detail: Value) -> Result<Trigger, InputError> {
    let d: EcrDetail = serde_json::from_value(detail)
        .map_err(|e| InputError::new(format!("malformed ECR Image Action detail: {e}")))?;
    validate_repository(&d.repository_name)?;
    let ignored = |reason: String| Ok(Trigger::IgnoredEcr { event_id: env.id.clone(), reason });
    if d.action_type != "PUSH" {
        return ignored(format!("ECR action {} is not a push", truncate(&d.action_type)));
    }
    if d.result != "SUCCESS" {
        return ignored(format!("push result is {}, not SUCCESS", truncate(&d.result)));
    }
    let Some(tag) = d.image_tag.filter(|t| !t.is_empty()) else {
        return ignored("untagged push: only tagged pushes deploy".into());
    };
    validate_tag(&tag)?;
    if let Some(why) =
        crate::media_type::not_an_image(&tag, d.artifact_media_type.as_deref(), d.manifest_media_type.as_deref())
    {
        return ignored(why);
    }
    let digest_str = d.image_digest.ok_or_else(|| InputError::new("ECR push detail has no image-digest"))?;
    let digest = Digest::parse(&digest_str)?;
    let image = ImageRef {
        registry: ImageRef::ecr_registry(&env.account, &env.region),
        repository: d.repository_name,
        tag: Some(tag),
        digest: Some(digest),
    };
    Ok(Trigger::Push(PushEvent {
        event_id: env.id,
        time: env.time,
        account: env.account,
        region: env.region,
        image,
        artifact_media_type: d.artifact_media_type,
        manifest_media_type: d.manifest_media_type,
    }))
}

fn parse_ecs(env: Envelope, detail: Value) -> Result<Trigger, InputError> {
    let d: EcsDeploymentDetail = serde_json::from_value(detail)
        .map_err(|e| InputError::new(format!("malformed ECS Deployment State Change detail: {e}")))?;
    let state = match d.event_name.as_str() {
        "SERVICE_DEPLOYMENT_IN_PROGRESS" => DeploymentState::InProgress,
        "SERVICE_DEPLOYMENT_COMPLETED" => DeploymentState::Completed,
        "SERVICE_DEPLOYMENT_FAILED" => DeploymentState::Failed,
        other => return Err(InputError::new(format!("unknown ECS deployment event {:?}", truncate(other)))),
    };
    if !d.deployment_id.starts_with("ecs-svc/")
        || d.deployment_id.len() > 64
        || !d.deployment_id[8..].bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(InputError::new(format!(
            "deploymentId {:?} is not an ECS deployment id",
            truncate(&d.deployment_id)
        )));
    }
    let arn =
        env.resources.first().ok_or_else(|| InputError::new("ECS deployment event names no service in resources"))?;
    let named = parse_service_arn(arn)?;
    let from_detail = d.cluster_arn.as_deref().map(parse_cluster_arn).transpose()?;
    let cluster = match (named.cluster, from_detail) {
        (Some(a), Some(b)) if a != b => {
            return Err(InputError::new(format!(
                "the event's service ARN names cluster {:?} but detail.clusterArn names {:?}",
                truncate(&a),
                truncate(&b)
            )))
        }
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let service = named.service;
    Ok(Trigger::EcsDeployment(EcsDeploymentEvent {
        event_id: env.id,
        time: env.time,
        cluster,
        service,
        deployment_id: d.deployment_id,
        state,
        reason: d.reason.map(|r| truncate(&r)),
    }))
}

/// An ECS service named by ARN, in either of ECS's two forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceArn {
    /// The cluster: the long form names it; the short form (`…:service/<name>`, every service
    /// created before ECS's long ARN format and never migrated) does not.
    pub cluster: Option<String>,
    /// The service name.
    pub service: String,
}

/// The resource part of an ECS ARN (`service/…`, `cluster/…`), or `None` when `arn` is no ECS ARN.
fn ecs_resource(arn: &str) -> Option<&str> {
    let mut parts = arn.strip_prefix("arn:")?.splitn(5, ':');
    let (_partition, service, _region, _account) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (service == "ecs").then_some(parts.next()?)
}

/// `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>` (long form) or
/// `arn:aws:ecs:<region>:<account>:service/<service>` (short form) → the cluster, if named, and the service.
pub fn parse_service_arn(arn: &str) -> Result<ServiceArn, InputError> {
    let bad = || InputError::new(format!("{:?} is not an ECS service ARN", truncate(arn)));
    let mut parts = ecs_resource(arn).ok_or_else(bad)?.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(c), Some(s), None) if is_name(c) && is_name(s) => {
            Ok(ServiceArn { cluster: Some(c.to_string()), service: s.to_string() })
        }
        (Some("service"), Some(s), None, None) if is_name(s) => {
            Ok(ServiceArn { cluster: None, service: s.to_string() })
        }
        _ => Err(bad()),
    }
}

/// `arn:aws:ecs:<region>:<account>:cluster/<cluster>` → the cluster name.
pub fn parse_cluster_arn(arn: &str) -> Result<String, InputError> {
    let bad = || InputError::new(format!("{:?} is not an ECS cluster ARN", truncate(arn)));
    match ecs_resource(arn).ok_or_else(bad)?.split_once('/') {
        Some(("cluster", c)) if is_name(c) => Ok(c.to_string()),
        _ => Err(bad()),
    }
}

/// `arn:aws:ecs:<region>:<account>:service-deployment/<cluster>/<service>/<id>` → (cluster,
/// service). ECS names service deployments in this one form, whatever the service's own ARN.
pub fn parse_service_deployment_arn(arn: &str) -> Result<(String, String), InputError> {
    let bad = || InputError::new(format!("{:?} is not a service deployment ARN", truncate(arn)));
    let mut parts = ecs_resource(arn).ok_or_else(bad)?.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service-deployment"), Some(c), Some(s), Some(id), None) if is_name(c) && is_name(s) && is_name(id) => {
            Ok((c.to_string(), s.to_string()))
        }
        _ => Err(bad()),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_region(s: &str) -> bool {
    (4..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().last().is_some_and(|b| b.is_ascii_digit())
}

fn check_short(field: &str, s: &str) -> Result<(), InputError> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(InputError::new(format!("{field} {:?} must be 1 to 256 printable characters", truncate(s))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push() -> Value {
        serde_json::from_str(include_str!("../events/ecr-push-frontend.json")).unwrap()
    }

    #[test]
    fn parses_the_sample_push() {
        let Trigger::Push(p) = parse(push()).unwrap() else { panic!("not a push") };
        assert_eq!(p.image.registry, "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com");
        assert_eq!(p.image.repository, "todo-frontend");
        assert_eq!(p.tag(), "latest");
        assert_eq!(p.event_id, "13cde686-328b-6117-af20-0e5566167482");
    }

    #[test]
    fn non_deploying_ecr_events_are_ignored_with_reason() {
        let mut e = push();
        e["detail"]["action-type"] = json!("DELETE");
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("DELETE")));
        let mut e = push();
        e["detail"]["result"] = json!("FAILURE");
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("FAILURE")));
        let mut e = push();
        e["detail"].as_object_mut().unwrap().remove("image-tag");
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("untagged")));
        let mut e = push();
        e["detail"]["image-tag"] = json!(format!("sha256-{}.sig", "ab".repeat(32)));
        assert!(matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("cosign signature")));
        let mut e = push();
        e["detail"]["artifact-media-type"] = json!("application/vnd.cncf.helm.config.v1+json");
        assert!(
            matches!(parse(e).unwrap(), Trigger::IgnoredEcr { reason, .. } if reason.contains("not a container image"))
        );
        let mut e = push();
        e["detail"]["manifest-media-type"] = json!("application/vnd.oci.image.index.v1+json");
        assert!(matches!(parse(e).unwrap(), Trigger::Push(p) if p.manifest_media_type.is_some()), "an index deploys");
    }

    #[test]
    fn bad_input_is_rejected_with_reason() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "JSON object"),
            (json!({"hello": 1}), "neither"),
            (json!({"action": "destroy", "service": "x"}), "unknown action"),
            (json!({"action": "deploy", "service": "x"}), "tag"),
            (json!({"action": "deploy", "service": 7, "tag": "v1"}), "malformed"),
            (json!({"action": "redeploy", "service": "x", "extra": 1}), "extra"),
            (json!({"action": "deploy", "service": "x", "tag": "a".repeat(300)}), "tag"),
        ];
        for (v, want) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.0.contains(want), "{v}: {e}");
        }
        let mut e = push();
        e.as_object_mut().unwrap().remove("detail");
        assert!(parse(e).unwrap_err().0.contains("no detail"));
        let mut e = push();
        e["detail"]["image-digest"] = json!("md5:abc");
        assert!(parse(e).unwrap_err().0.contains("sha256"));
        let mut e = push();
        e["detail"]["repository-name"] = json!("../../etc");
        assert!(parse(e).is_err());
        let mut e = push();
        e["account"] = json!(123);
        assert!(parse(e).unwrap_err().0.contains("malformed"));
        assert!(parse_bytes(b"{not json").unwrap_err().0.contains("not valid JSON"));
        // JSON bombs: nesting beyond serde_json's recursion limit, and sheer size.
        let deep = format!("{}{}", "[".repeat(150_000), "]".repeat(150_000));
        assert!(parse_bytes(deep.as_bytes()).unwrap_err().0.contains("at most"), "size is checked first");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_bytes(deep.as_bytes()).unwrap_err().0.contains("recursion limit"));
        let wide = format!("{{\"action\":\"plan\",\"service\":\"{}\"}}", "é".repeat(100_000));
        assert!(parse_bytes(wide.as_bytes()).is_err());
        assert!(parse_bytes(&vec![b' '; MAX_EVENT_BYTES + 1]).is_err());
    }

    #[test]
    fn parses_ecs_deployment_events() {
        let v: Value = serde_json::from_str(include_str!("../events/ecs-deployment-completed.json")).unwrap();
        let Trigger::EcsDeployment(e) = parse(v).unwrap() else { panic!() };
        assert_eq!((e.cluster(), e.service.as_str()), ("todo-cluster", "todo-frontend"));
        assert_eq!(e.state, DeploymentState::Completed);
        assert_eq!(e.deployment_id, "ecs-svc/1234567890123456789");
    }

    #[test]
    fn service_arns_parse_in_both_forms() {
        let long =
            parse_service_arn("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-cluster/todo-backend").unwrap();
        assert_eq!(long, ServiceArn { cluster: Some("todo-cluster".into()), service: "todo-backend".into() });
        let short = parse_service_arn("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-backend").unwrap();
        assert_eq!(short, ServiceArn { cluster: None, service: "todo-backend".into() });
        assert_eq!(parse_service_arn("arn:aws-cn:ecs:cn-north-1:1:service/s").unwrap().service, "s");
        for bad in [
            "x",
            "arn:aws:ecs:r:1:service/",
            "arn:aws:ecs:r:1:service/a/b/c",
            "arn:aws:ecs:r:1:service//b",
            "arn:aws:ecs:r:1:cluster/a",
            "arn:aws:ecr:r:1:service/a/b",
            "arn:aws:ecs:r:1:service-deployment/a/b/c",
            "arn:aws:ecs:r:1:service/a b",
        ] {
            assert!(parse_service_arn(bad).unwrap_err().0.contains("not an ECS service ARN"), "{bad}");
        }
        assert_eq!(parse_cluster_arn("arn:aws:ecs:r:1:cluster/todo-cluster").unwrap(), "todo-cluster");
        assert!(parse_cluster_arn("arn:aws:ecs:r:1:service/todo-cluster").is_err());
        let d = parse_service_deployment_arn("arn:aws:ecs:r:1:service-deployment/c/s/AbC123").unwrap();
        assert_eq!(d, ("c".to_string(), "s".to_string()));
        assert!(parse_service_deployment_arn("arn:aws:ecs:r:1:service-deployment/s/AbC123").is_err());
    }

    #[test]
    fn an_event_about_a_short_arn_service_takes_its_cluster_from_the_detail_or_leaves_it_to_the_config() {
        let mut v: Value = serde_json::from_str(include_str!("../events/ecs-deployment-completed.json")).unwrap();
        v["resources"] = json!(["arn:aws:ecs:ap-southeast-2:123456789012:service/todo-frontend"]);
        let Trigger::EcsDeployment(e) = parse(v.clone()).unwrap() else { panic!() };
        assert_eq!((e.cluster.as_deref(), e.service.as_str()), (None, "todo-frontend"));
        v["detail"]["clusterArn"] = json!("arn:aws:ecs:ap-southeast-2:123456789012:cluster/todo-cluster");
        let Trigger::EcsDeployment(e) = parse(v.clone()).unwrap() else { panic!() };
        assert_eq!(e.cluster.as_deref(), Some("todo-cluster"));
        // A long ARN and a clusterArn that disagree are not believed.
        v["resources"] = json!(["arn:aws:ecs:ap-southeast-2:123456789012:service/other/todo-frontend"]);
        assert!(parse(v.clone()).unwrap_err().0.contains("detail.clusterArn"));
        v["detail"]["clusterArn"] = json!("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-cluster");
        assert!(parse(v).unwrap_err().0.contains("not an ECS cluster ARN"));
    }

    #[test]
    fn every_sample_event_is_accepted_by_the_function_it_targets() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let bytes = std::fs::read(&path).unwrap();
            if name.starts_with("ecs-hook-") {
                // Lifecycle hook invocations are verify's too, and not events (see hook.rs's tests).
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                assert!(crate::inbound::hook::is_hook_payload(&v) && crate::inbound::hook::parse(&v).is_ok(), "{name}");
                seen += 1;
                continue;
            }
            let trigger = parse_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            match trigger {
                Trigger::EcsDeployment(_) => assert!(name.starts_with("ecs-"), "{name} goes to verify"),
                Trigger::Push(_) => assert!(name.starts_with("ecr-push"), "{name} goes to deploy"),
                Trigger::Manual(m) => {
                    assert_eq!(name, format!("{}.json", if m.verb() == "deploy" { "deploy-tag" } else { m.verb() }))
                }
                // The sample of what must never deploy: a cosign signature pushed next to the image.
                Trigger::IgnoredEcr { reason, .. } if name == "ecr-push-signature.json" => {
                    assert!(reason.contains("cosign signature"), "{reason}")
                }
                Trigger::IgnoredEcr { reason, .. } => panic!("{name} would be ignored: {reason}"),
            }
            seen += 1;
        }
        assert_eq!(seen, 14);
    }

    #[test]
    fn parses_manual_actions() {
        assert_eq!(
            parse(json!({"action": "plan", "service": "frontend"})).unwrap(),
            Trigger::Manual(ManualAction::Plan { service: "frontend".into(), tag: None, force: false })
        );
        assert_eq!(
            parse(json!({"action": "deploy", "service": "backend", "tag": "v1.4.2"})).unwrap(),
            Trigger::Manual(ManualAction::Deploy { service: "backend".into(), tag: "v1.4.2".into(), force: false })
        );
        // `force` goes past a rollback of the digest; it is a boolean, and rollback has none.
        assert_eq!(
            parse(json!({"action": "redeploy", "service": "backend", "force": true})).unwrap(),
            Trigger::Manual(ManualAction::Redeploy { service: "backend".into(), force: true })
        );
        assert_eq!(
            parse(json!({"action": "deploy", "service": "backend", "tag": "latest", "force": true})).unwrap(),
            Trigger::Manual(ManualAction::Deploy { service: "backend".into(), tag: "latest".into(), force: true })
        );
        let why = parse(json!({"action": "deploy", "service": "b", "tag": "t", "force": "yes"})).unwrap_err().0;
        assert!(why.starts_with("malformed manual action"), "{why}");
        let why = parse(json!({"action": "rollback", "service": "b", "force": true})).unwrap_err().0;
        assert!(why.contains("force"), "{why}");
    }
}
