//! A manual `redeploy`: new tasks of the digest the service runs now, never of whatever a tag in
//! the config names by then (after a rollback `latest` may still name the broken build).

use tracing::warn;

use super::decision::running_image;
use super::holding::still_busy;
use super::{Deployer, Invocation, Request};
use crate::config::ServiceConfig;
use crate::domain::error::Error;
use crate::domain::image::ImageRef;
use crate::domain::record::TriggerRef;
use crate::flows::lease::{HeldLease, LeaseTaken};
use crate::rules::outcome::{DeploymentSummary, Outcome};

impl Deployer {
    /// Takes the service's lease (waiting for a rollout in flight), finishes a dead holder's
    /// rollout, reads what the service runs under the lease and rolls it out again; `force` goes
    /// past a rollback of that digest.
    pub(super) async fn on_redeploy(
        &self,
        svc: &ServiceConfig,
        force: bool,
        invocation: Invocation<'_>,
    ) -> Result<DeploymentSummary, Error> {
        let request_id = invocation.request_id;
        let trigger = TriggerRef::Manual { action: "redeploy".into(), request_id: request_id.to_string() };
        let mut taken = self.take_lease(svc, invocation, trigger.id(), "").await?;
        let result = match &mut taken {
            LeaseTaken::Busy(other) => return Err(still_busy(svc, other)),
            LeaseTaken::Held(held, stale) => {
                let adopted = match stale.take() {
                    Some(stale) => self.service_leases().adopt(*stale).await.map(|_| ()),
                    None => Ok(()),
                };
                match adopted {
                    Ok(()) => self.redeploy_running(svc, force, invocation, trigger, held).await,
                    Err(e) => Err(e),
                }
            }
        };
        self.let_go(svc, &taken, &result).await;
        result
    }

    /// Under the lease: the image the service runs, then the rollout of it (forcing new tasks).
    async fn redeploy_running(
        &self,
        svc: &ServiceConfig,
        force: bool,
        invocation: Invocation<'_>,
        trigger: TriggerRef,
        held: &mut HeldLease,
    ) -> Result<DeploymentSummary, Error> {
        let state = self.read_state(svc, false).await?;
        let running = match running_image(svc, &state.current.task_definition, &state.history) {
            Ok(image) => image,
            Err(why) => return Ok(refused(svc, format!("{why}; nothing changed"))),
        };
        let image = match &running.digest {
            Some(_) => running,
            // A revision naming its image by tag gets what the tag names when ECS starts the new
            // tasks: that digest is the one rolled out, and judged.
            None => {
                let tag = running.tag.clone().unwrap_or_default();
                match self.ecr.resolve_tag(&running.repository, &tag).await? {
                    Some(t) => ImageRef { digest: Some(t.digest), ..running },
                    None => {
                        let why = format!(
                            "{} runs {running}, and tag {}:{tag} no longer exists in ECR: new tasks could not pull it; nothing changed",
                            crate::domain::names::short_name(&state.current_arn),
                            running.repository
                        );
                        return Ok(refused(svc, why));
                    }
                }
            }
        };
        let req = Request {
            invocation,
            trigger,
            image: &image,
            pushed_at: None,
            event_time: None,
            force: true,
            dry_run: false,
            allow_rolled_back: force,
        };
        self.rollout_boxed(svc, state, req, Some(held)).await
    }
}

/// The answer to a redeploy that was refused before deciding, changing nothing.
fn refused(svc: &ServiceConfig, why: String) -> DeploymentSummary {
    let reason = format!("redeploy of {}: {why}", svc.name);
    warn!(service = %svc.name, outcome = "rejected", reason = %reason, "decision");
    DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, reason)
}
