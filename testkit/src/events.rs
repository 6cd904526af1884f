//! The events the functions receive, as AWS sends them: an ECR push, an ECS deployment state
//! change, a lifecycle hook invocation.

use serde_json::{json, Value};

use pushdeploy::domain::image::Digest;

use crate::names::{ACCOUNT, CLUSTER, REGION};

/// The EventBridge event ECR sends for a successful push.
pub fn ecr_push_event(id: &str, repository: &str, tag: &str, digest: &Digest) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": pushdeploy::domain::record::now(),
        "region": REGION,
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest.as_str(),
            "action-type": "PUSH",
            "image-tag": tag
        }
    })
}

/// The event ECS sends when a service deployment changes state.
pub fn ecs_deployment_event(id: &str, service: &str, deployment_id: &str, event_name: &str, reason: &str) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": pushdeploy::domain::record::now(),
        "region": REGION,
        "resources": [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{service}")],
        "detail": {
            "eventType": if event_name.ends_with("FAILED") { "ERROR" } else { "INFO" },
            "eventName": event_name,
            "deploymentId": deployment_id,
            "updatedAt": pushdeploy::domain::record::now(),
            "reason": reason
        }
    })
}

/// A lifecycle hook invocation as ECS sends it, built from the fixture in `events/` (AWS's
/// documented payload): `stage` of `deployment` with green `revision`; `production` gives the
/// production weights of green and blue (`blue` names blue's revision).
pub fn hook_invocation(hook: &HookCall<'_>) -> Value {
    let mut v: Value = serde_json::from_str(include_str!("../../events/ecs-hook-post-test-traffic-shift.json"))
        .expect("the fixture is JSON");
    v["executionId"] = json!(hook.execution_id);
    v["lifecycleStage"] = json!(hook.stage);
    v["resourceArn"] = json!(hook.deployment);
    let details = &mut v["executionDetails"];
    details["serviceArn"] = json!(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{}", hook.service));
    details["targetServiceRevisionArn"] = json!(hook.revision);
    if let Some((green, blue)) = hook.production {
        let blue_arn =
            hook.revision.rsplit_once('/').map(|(p, _)| format!("{p}/1920498462936580504")).unwrap_or_default();
        details["productionTrafficWeights"] = json!({ hook.revision: green, blue_arn: blue });
    }
    if let Some(d) = &hook.hook_details {
        v["hookDetails"] = d.clone();
    }
    v
}

/// What a lifecycle hook invocation is about.
#[derive(Debug, Clone)]
pub struct HookCall<'a> {
    /// ECS's id of the hook execution.
    pub execution_id: &'a str,
    /// `POST_TEST_TRAFFIC_SHIFT`, …
    pub stage: &'a str,
    /// The ECS service name.
    pub service: &'a str,
    /// The service deployment ARN.
    pub deployment: &'a str,
    /// The green service revision ARN.
    pub revision: &'a str,
    /// Production weights (green, blue), for a traffic shift.
    pub production: Option<(u32, u32)>,
    /// `hookDetails` (what the last IN_PROGRESS answer returned).
    pub hook_details: Option<Value>,
}
