//! Pure: what ECS itself says, held against what an event, a hook payload or a record claims.
//!
//! Anyone who may invoke verify can send it an ECS event or a lifecycle hook payload, and anyone
//! who may write the bucket can write a record. Before a verdict is settled or a service is
//! rolled back, the claim is checked against ECS's own state; a claim ECS does not bear out
//! changes nothing.

use crate::domain::ecs_view::{RanRevision, ServiceDeploymentNow, ServiceNow};
use crate::domain::names::short_name;
use crate::inbound::hook::HookInvocation;

/// Whether ECS confirms that deployment `deployment_id` (`ecs-svc/…`) of a service completed.
/// `tied` is ECS's service deployment when lifecycle hooks tied the record to one (blue/green,
/// linear, canary): its status decides. `Err` says what ECS reports instead.
pub fn completed(now: &ServiceNow, deployment_id: &str, tied: Option<&ServiceDeploymentNow>) -> Result<(), String> {
    if let Some(sd) = tied {
        return match sd.status.as_str() {
            "SUCCESSFUL" => Ok(()),
            other => Err(format!("ECS reports its service deployment {other}, not SUCCESSFUL")),
        };
    }
    let Some(d) = now.deployments.iter().find(|d| d.id == deployment_id) else {
        return Err(format!("ECS lists no deployment {deployment_id} of the service"));
    };
    match d.rollout_state.as_deref() {
        Some("COMPLETED") => Ok(()),
        // ECS reports no rolloutState for some deployment types: the PRIMARY deployment is as far
        // as ECS's own state can confirm.
        None if d.status == "PRIMARY" => Ok(()),
        Some(state) => Err(format!("ECS reports deployment {deployment_id} {state}")),
        None => Err(format!("deployment {deployment_id} is {}, not ECS's PRIMARY deployment", d.status)),
    }
}

/// Whether ECS confirms that deployment `deployment_id`, which rolled out `task_definition`,
/// failed: ECS says so, or it no longer serves (the circuit breaker put another deployment first).
pub fn failed(
    now: &ServiceNow,
    deployment_id: &str,
    task_definition: &str,
    tied: Option<&ServiceDeploymentNow>,
) -> Result<(), String> {
    if let Some(sd) = tied {
        return match sd.status.as_str() {
            "PENDING" | "IN_PROGRESS" | "SUCCESSFUL" => {
                Err(format!("ECS reports its service deployment {}, not failed or rolled back", sd.status))
            }
            _ => Ok(()),
        };
    }
    if now.task_definition != task_definition {
        return Ok(());
    }
    match now.deployments.iter().find(|d| d.id == deployment_id) {
        None => Ok(()),
        Some(d) if d.status != "PRIMARY" => Ok(()),
        Some(d) => match d.rollout_state.as_deref() {
            Some("FAILED") | None => Ok(()),
            Some(state) => Err(format!(
                "ECS reports deployment {deployment_id} {state}, and the service still runs {}",
                short_name(task_definition)
            )),
        },
    }
}

/// Whether ECS is at the stage a hook invocation claims, for that service and green revision.
pub fn hook_stage(ecs: Option<&ServiceDeploymentNow>, inv: &HookInvocation) -> Result<(), String> {
    let Some(sd) = ecs else { return Err(format!("ECS knows no service deployment {}", inv.resource_arn)) };
    let service_ok = sd.service_arn.ends_with(&format!("/{}/{}", inv.cluster, inv.service))
        || sd.service_arn.ends_with(&format!(":service/{}", inv.service));
    if !service_ok {
        return Err(format!(
            "the service deployment belongs to {}, not {}/{}",
            sd.service_arn, inv.cluster, inv.service
        ));
    }
    if sd.target_revision.as_deref() != Some(inv.target_revision.as_str()) {
        return Err(format!(
            "ECS's service deployment rolls out {}, not the revision the payload names",
            sd.target_revision.as_deref().unwrap_or("no revision")
        ));
    }
    // ECS has no rollback stage: it invokes the traffic-shift hooks again while it rolls back, and
    // its own status, not the payload's weights, is what says so.
    let shifting = matches!(
        inv.stage,
        crate::domain::lifecycle::Stage::TestTrafficShift | crate::domain::lifecycle::Stage::ProductionTrafficShift
    );
    if inv.rolling_back() || (shifting && sd.status.starts_with("ROLLBACK_")) {
        return match sd.status.as_str() {
            "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "IN_PROGRESS" => Ok(()),
            other => Err(format!("ECS reports the service deployment {other}, not rolling back")),
        };
    }
    if sd.status != "IN_PROGRESS" {
        return Err(format!("ECS reports the service deployment {}, not IN_PROGRESS", sd.status));
    }
    match sd.lifecycle_stage.as_deref() {
        Some(stage) if stage == inv.stage.as_str() => Ok(()),
        stage => Err(format!("ECS is at {}, not {}", stage.unwrap_or("no lifecycle stage"), inv.stage.as_str())),
    }
}

/// The revision a rollback may return to: `task_definition`, if ECS's history shows the service
/// ran it (with the digests ECS resolved then). A task definition ARN read from a record alone,
/// which anyone who may write the bucket could have put there, is never enough.
pub fn rollback_target<'a>(task_definition: &str, ran: &'a [RanRevision]) -> Result<&'a RanRevision, String> {
    ran.iter().find(|r| r.task_definition == task_definition).ok_or_else(|| {
        format!(
            "ECS's history of the service shows no successful deployment of {} ({} looked at), so pushdeploy will not run it",
            short_name(task_definition),
            ran.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ecs_view::DeploymentNow;
    use serde_json::json;

    fn now(td: &str, deployments: &[(&str, &str, Option<&str>)]) -> ServiceNow {
        ServiceNow {
            task_definition: td.into(),
            primary_deployment: deployments.iter().find(|d| d.1 == "PRIMARY").map(|d| d.0.to_string()),
            deployments: deployments
                .iter()
                .map(|(id, status, state)| DeploymentNow {
                    id: id.to_string(),
                    status: status.to_string(),
                    rollout_state: state.map(str::to_string),
                })
                .collect(),
            load_balancers: Vec::new(),
            current_revisions: Vec::new(),
        }
    }

    fn sd(status: &str, stage: Option<&str>) -> ServiceDeploymentNow {
        ServiceDeploymentNow {
            service_arn: "arn:aws:ecs:ap-southeast-2:123456789012:service/todo-cluster/todo-backend".into(),
            target_revision: Some(
                "arn:aws:ecs:ap-southeast-2:123456789012:service-revision/todo-cluster/todo-backend/2".into(),
            ),
            status: status.into(),
            lifecycle_stage: stage.map(str::to_string),
        }
    }

    fn invocation(stage: &str, production: Option<(u32, u32)>) -> HookInvocation {
        let green = "arn:aws:ecs:ap-southeast-2:123456789012:service-revision/todo-cluster/todo-backend/2";
        let blue = "arn:aws:ecs:ap-southeast-2:123456789012:service-revision/todo-cluster/todo-backend/1";
        let weights = production.map_or(json!({}), |(g, b)| json!({ green: g, blue: b }));
        crate::inbound::hook::parse(&json!({
            "executionId": "x",
            "lifecycleStage": stage,
            "resourceArn": "arn:aws:ecs:ap-southeast-2:123456789012:service-deployment/todo-cluster/todo-backend/d1",
            "executionDetails": {
                "serviceArn": "arn:aws:ecs:ap-southeast-2:123456789012:service/todo-cluster/todo-backend",
                "targetServiceRevisionArn": green,
                "productionTrafficWeights": weights,
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_completed_event_needs_ecs_to_say_completed() {
        let done = now("td:2", &[("ecs-svc/2", "PRIMARY", Some("COMPLETED")), ("ecs-svc/1", "ACTIVE", None)]);
        assert!(completed(&done, "ecs-svc/2", None).is_ok());
        let running = now("td:2", &[("ecs-svc/2", "PRIMARY", Some("IN_PROGRESS"))]);
        assert!(completed(&running, "ecs-svc/2", None).unwrap_err().contains("IN_PROGRESS"));
        assert!(completed(&done, "ecs-svc/9", None).unwrap_err().contains("lists no deployment"));
        assert!(completed(&now("td:2", &[("ecs-svc/2", "PRIMARY", None)]), "ecs-svc/2", None).is_ok());
        assert!(completed(&now("td:2", &[("ecs-svc/2", "ACTIVE", None)]), "ecs-svc/2", None).is_err());
        // A hooked deployment: ECS's service deployment decides.
        assert!(completed(&running, "ecs-svc/2", Some(&sd("SUCCESSFUL", None))).is_ok());
        assert!(completed(&done, "ecs-svc/2", Some(&sd("IN_PROGRESS", Some("BAKE_TIME")))).is_err());
    }

    #[test]
    fn a_failed_event_needs_ecs_to_say_failed_or_to_have_moved_on() {
        let running = now("td:2", &[("ecs-svc/2", "PRIMARY", Some("IN_PROGRESS"))]);
        assert!(failed(&running, "ecs-svc/2", "td:2", None).unwrap_err().contains("IN_PROGRESS"));
        assert!(failed(&now("td:2", &[("ecs-svc/2", "PRIMARY", Some("FAILED"))]), "ecs-svc/2", "td:2", None).is_ok());
        let moved = now("td:1", &[("ecs-svc/3", "PRIMARY", Some("IN_PROGRESS")), ("ecs-svc/2", "ACTIVE", None)]);
        assert!(failed(&moved, "ecs-svc/2", "td:2", None).is_ok());
        assert!(failed(&running, "ecs-svc/2", "td:2", Some(&sd("ROLLBACK_SUCCESSFUL", None))).is_ok());
        assert!(failed(&running, "ecs-svc/2", "td:2", Some(&sd("IN_PROGRESS", None))).is_err());
    }

    #[test]
    fn a_hook_payload_must_name_the_stage_ecs_is_at() {
        let inv = invocation("POST_TEST_TRAFFIC_SHIFT", None);
        assert!(hook_stage(Some(&sd("IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"))), &inv).is_ok());
        let later = invocation("POST_PRODUCTION_TRAFFIC_SHIFT", None);
        let why = hook_stage(Some(&sd("IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"))), &later).unwrap_err();
        assert!(why.contains("ECS is at POST_TEST_TRAFFIC_SHIFT"), "{why}");
        assert!(hook_stage(Some(&sd("SUCCESSFUL", None)), &inv).unwrap_err().contains("SUCCESSFUL"));
        assert!(hook_stage(None, &inv).unwrap_err().contains("knows no service deployment"));
        let mut other = sd("IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
        other.target_revision = Some("arn:…/9".into());
        assert!(hook_stage(Some(&other), &inv).is_err());
        other = sd("IN_PROGRESS", Some("POST_TEST_TRAFFIC_SHIFT"));
        other.service_arn = "arn:aws:ecs:ap-southeast-2:123456789012:service/todo-cluster/todo-frontend".into();
        assert!(hook_stage(Some(&other), &inv).is_err());
        // ECS's own rollback re-invokes the traffic shifts with green at 0 %.
        let back = invocation("PRODUCTION_TRAFFIC_SHIFT", Some((0, 100)));
        assert!(hook_stage(Some(&sd("ROLLBACK_IN_PROGRESS", Some("PRODUCTION_TRAFFIC_SHIFT"))), &back).is_ok());
        assert!(hook_stage(Some(&sd("SUCCESSFUL", None)), &back).is_err());
        // ECS's word is enough at a traffic shift whose weights still show green (shifting back
        // through a canary step), and at one with no weights; not at a stage that checks.
        let step = invocation("PRODUCTION_TRAFFIC_SHIFT", Some((10, 90)));
        assert!(hook_stage(Some(&sd("ROLLBACK_IN_PROGRESS", None)), &step).is_ok());
        assert!(hook_stage(Some(&sd("ROLLBACK_REQUESTED", None)), &invocation("TEST_TRAFFIC_SHIFT", None)).is_ok());
        assert!(hook_stage(Some(&sd("ROLLBACK_IN_PROGRESS", None)), &inv).unwrap_err().contains("not IN_PROGRESS"));
    }

    #[test]
    fn a_rollback_target_must_be_in_ecs_history() {
        let ran = vec![
            RanRevision { task_definition: "arn:td/app:2".into(), digests: Default::default(), at: None },
            RanRevision { task_definition: "arn:td/app:1".into(), digests: Default::default(), at: None },
        ];
        assert_eq!(rollback_target("arn:td/app:1", &ran).unwrap().task_definition, "arn:td/app:1");
        let why = rollback_target("arn:td/evil:1", &ran).unwrap_err();
        assert!(why.contains("no successful deployment of evil:1") && why.contains("2 looked at"), "{why}");
    }
}
