//! ECS's `ECS Deployment State Change` event: which service, which deployment, what happened.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::error::InputError;
use crate::domain::image::truncate;

use super::envelope::Envelope;
use crate::domain::arn::{parse_cluster_arn, parse_service_arn};

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

pub(super) fn parse_ecs(env: Envelope, detail: Value) -> Result<EcsDeploymentEvent, InputError> {
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
    Ok(EcsDeploymentEvent {
        event_id: env.id,
        time: env.time,
        cluster,
        service,
        deployment_id: d.deployment_id,
        state,
        reason: d.reason.map(|r| truncate(&r)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse;
    use crate::inbound::Trigger;
    use serde_json::json;

    #[test]
    fn parses_ecs_deployment_events() {
        let v: Value = serde_json::from_str(include_str!("../../events/ecs-deployment-completed.json")).unwrap();
        let Trigger::EcsDeployment(e) = parse(v).unwrap() else { panic!() };
        assert_eq!((e.cluster(), e.service.as_str()), ("todo-cluster", "todo-frontend"));
        assert_eq!(e.state, DeploymentState::Completed);
        assert_eq!(e.deployment_id, "ecs-svc/1234567890123456789");
    }

    #[test]
    fn an_event_about_a_short_arn_service_takes_its_cluster_from_the_detail_or_leaves_it_to_the_config() {
        let mut v: Value = serde_json::from_str(include_str!("../../events/ecs-deployment-completed.json")).unwrap();
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
}
