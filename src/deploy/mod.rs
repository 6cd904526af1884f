//! A deploy: an ECR push or a manual action in, rollouts started, an answer out.
//!
//! Read in the order a push travels: this module routes the trigger and matches it to services;
//! `holding` takes each service's lease (waiting for, or finishing, another rollout);
//! `decision` decides what the rollout does (pure); `rollout` carries it out and writes the
//! record; `manual_rollback` is the operator's rollback; `redeploy` rolls again what runs.

mod connections;
mod decision;
mod holding;
mod manual_rollback;
mod redeploy;
mod rollout;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::{join_all, BoxFuture, Shared};
use serde_json::Value;
use tracing::{info, warn};

use crate::aws::ecr::EcrClient;
use crate::aws::ecs::EcsClient;
use crate::aws::leases::LeaseStore;
use crate::aws::records::RecordStore;
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::config::{Config, ServiceConfig};
use crate::error::{AwsError, Disposition, Error};
use crate::image::{truncate, ImageRef};
use crate::inbound::{self as event, ManualAction, PushEvent, Trigger};
use crate::media_type;
use crate::notify::{problem_message, Problem};
use crate::outcome::{DeploymentSummary, Outcome, Summary};
use crate::plan::{self, Freshness};
use crate::record::TriggerRef;
use crate::timing::{self, Deadline};

/// Everything a deploy needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Deployer {
    /// The validated config.
    pub config: Config,
    /// ECS client.
    pub ecs: EcsClient,
    /// ECR client.
    pub ecr: EcrClient,
    /// The artifact bucket: records, artifacts and service leases.
    pub store: Store,
    /// The region this function deploys in.
    pub region: String,
    /// Where refusals a person must act on are published, when a topic is configured.
    pub notifier: Option<Notifier>,
    /// The deploy and verify functions' roles (`PUSHDEPLOY_ROLE_ARNS`): a revision carrying
    /// pushdeploy's tags is its own copy only when one of them registered it.
    pub own_roles: Vec<crate::config::PrincipalPattern>,
    /// Whether verify runs in the VPC (`PUSHDEPLOY_VERIFY_IN_VPC`, from the stack's
    /// VerifySubnetIds): `plan` says when a test listener on another port may be out of its reach.
    pub verify_in_vpc: bool,
}

impl Deployer {
    /// A deployer acting through `clients` on `config`; it knows none of pushdeploy's own roles
    /// and takes verify to run outside the VPC until told (`own_roles`, `verify_in_vpc`).
    pub fn new(config: Config, clients: &crate::aws::Clients) -> Self {
        Self {
            config,
            ecs: clients.ecs.clone(),
            ecr: clients.ecr.clone(),
            store: clients.store.clone(),
            region: clients.region.clone(),
            notifier: clients.notifier.clone(),
            own_roles: Vec::new(),
            verify_in_vpc: false,
        }
    }
}

/// The Lambda invocation being handled.
#[derive(Clone, Copy, Debug)]
struct Invocation<'a> {
    request_id: &'a str,
    deadline: Deadline,
    /// The account this function runs in (from its ARN), when Lambda said.
    account: Option<&'a str>,
}

/// One cluster's DescribeServices, shared by the rollouts of its services.
type RunningRead<'a> = Shared<BoxFuture<'a, Result<Arc<HashMap<String, Result<String, AwsError>>>, AwsError>>>;

/// Why and how a rollout was asked for.
#[derive(Clone)]
struct Request<'a> {
    invocation: Invocation<'a>,
    trigger: TriggerRef,
    image: &'a ImageRef,
    pushed_at: Option<String>,
    /// A push's own event time (EventBridge's `time`): the order of the pushes a service acts on.
    event_time: Option<String>,
    force: bool,
    dry_run: bool,
    /// The operator's `force`: a digest pushdeploy rolled back is rolled out all the same.
    allow_rolled_back: bool,
}

impl Request<'_> {
    /// True when a push asked for it (only a push can be superseded).
    fn is_push(&self) -> bool {
        matches!(self.trigger, TriggerRef::Push { .. })
    }
}

impl Deployer {
    /// [`Deployer::handle_before`] with the deadline of a direct call ([`timing::FALLBACK_REMAINING`]).
    pub async fn handle(&self, payload: Value, request_id: &str) -> Result<Summary, Error> {
        self.handle_before(payload, request_id, Deadline::after(timing::FALLBACK_REMAINING)).await
    }

    /// Handles one invocation, which Lambda ends at `deadline`. `Err` only for failures Lambda
    /// should retry or a person must see in the Errors metric ([`Disposition`]); running out of
    /// time is transient, and the retry finishes what the service lease says was in flight.
    pub async fn handle_before(&self, payload: Value, request_id: &str, deadline: Deadline) -> Result<Summary, Error> {
        self.handle_invoked(payload, request_id, deadline, None).await
    }

    /// [`Deployer::handle_before`] as the function `function_arn` (Lambda's invocation context): a
    /// push from an account other than the function's own is refused before anything is written.
    pub async fn handle_invoked(
        &self,
        payload: Value,
        request_id: &str,
        deadline: Deadline,
        function_arn: Option<&str>,
    ) -> Result<Summary, Error> {
        let account = function_arn.and_then(account_of_arn);
        let handled = self.route(payload, Invocation { request_id, deadline, account });
        match tokio::time::timeout_at(deadline.work_until().into(), handled).await {
            Ok(result) => result,
            Err(_) => Err(Error::Deadline(crate::error::Failure {
                action: "deploy",
                target: request_id.to_string(),
                detail: "ran out of time before the Lambda deadline".into(),
                hint: "AWS latency or throttling; the retry completes the rollout",
            })),
        }
    }

    async fn route(&self, payload: Value, invocation: Invocation<'_>) -> Result<Summary, Error> {
        let request_id = invocation.request_id;
        let summary = match event::parse(payload) {
            Err(e) => Ok(Summary::only(Outcome::Rejected, e.0)),
            Ok(Trigger::IgnoredEcr { event_id, reason }) => {
                info!(event_id = %event_id, outcome = "ignored", reason = %reason, "decision");
                Ok(Summary::only(Outcome::Ignored, reason))
            }
            Ok(Trigger::EcsDeployment(e)) => Ok(Summary::only(
                Outcome::Rejected,
                format!("ECS deployment event {} belongs to the verify function, not deploy", e.deployment_id),
            )),
            // Boxed: a rollout's future holds many SDK futures, too large for a small thread stack.
            Ok(Trigger::Push(push)) => Box::pin(self.on_push(&push, invocation)).await,
            Ok(Trigger::Manual(action)) => Box::pin(self.on_manual(&action, invocation)).await,
        };
        // A failure of the whole invocation (ECR, a lease read): the same decision as a service's.
        let summary = match summary {
            Ok(s) => s,
            Err(err) => match err.disposition() {
                Disposition::Retry => return Err(err),
                Disposition::Escalate => {
                    self.report_problem(None, &err.to_string()).await;
                    return Err(err);
                }
                Disposition::Refuse { publish } => {
                    if publish {
                        self.report_problem(None, &err.to_string()).await;
                    }
                    Summary::only(Outcome::Rejected, err.to_string())
                }
            },
        };
        if summary.outcome == Outcome::Rejected {
            warn!(request_id, outcome = "rejected", reason = %summary.reason, "decision");
        }
        for d in summary.deployments.iter().filter(|d| d.needs_attention) {
            crate::emf::record(&d.service, &[crate::emf::Observation::Count(crate::emf::ACTION_NEEDED)]);
            self.report_problem(Some(d), &d.reason).await;
        }
        Ok(summary)
    }

    /// Publishes a refusal a person must act on (AccessDenied, a vanished service).
    async fn report_problem(&self, d: Option<&DeploymentSummary>, error: &str) {
        tracing::error!(service = d.map_or("", |d| d.service.as_str()), outcome = "error", error, "decision");
        let Some(n) = &self.notifier else { return };
        let m = problem_message(&Problem {
            function: "deploy",
            service: d.map_or("pushdeploy", |d| d.service.as_str()),
            target: d.map(|d| d.target.as_str()),
            doing: "deploy",
            error,
            consequence: "nothing was deployed for it; the service runs what it ran before",
        });
        n.send(&m).await;
    }

    /// The deployment records and artifacts in the bucket.
    fn records(&self) -> RecordStore {
        RecordStore::new(self.store.clone())
    }

    /// The service leases in the bucket.
    fn leases(&self) -> LeaseStore {
        LeaseStore::new(self.store.clone())
    }

    async fn on_push(&self, push: &PushEvent, invocation: Invocation<'_>) -> Result<Summary, Error> {
        if push.region != self.region {
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("push is for region {} but this function deploys in {}", push.region, self.region),
            ));
        }
        // Before any lease is taken: a foreign event must not rewrite a lease or wait on one.
        if let Some(own) = invocation.account.filter(|own| *own != push.account) {
            return Ok(Summary::only(
                Outcome::Rejected,
                format!(
                    "push is for account {} but this function runs in account {own}: only pushes to its own registry are deployed",
                    push.account
                ),
            ));
        }
        let services = plan::match_push(&self.config, &push.image);
        if services.is_empty() {
            let reason = format!("no service watches {}:{}", push.image.repository, push.tag());
            info!(event_id = %push.event_id, image = %push.image, outcome = "ignored", reason = %reason, "decision");
            return Ok(Summary::only(Outcome::Ignored, reason));
        }
        // The freshness check and each service's lease and state are independent: overlap them,
        // so only the four ECS calls of a digest-pinned rollout stay on the critical path.
        let trigger = TriggerRef::Push { event_id: push.event_id.clone() };
        let request = |pushed_at: Option<String>| Request {
            invocation,
            trigger: trigger.clone(),
            image: &push.image,
            pushed_at,
            event_time: push.time.clone(),
            force: false,
            dry_run: false,
            // A push never goes past a rollback: a person decides (the refusal is published).
            allow_rolled_back: false,
        };
        let running = self.running_task_definitions(&services);
        let (tagged, prepared) = tokio::join!(
            self.ecr.resolve_tag(&push.image.repository, push.tag()),
            join_all(services.iter().map(|s| {
                let running = &running;
                let current = async move {
                    let all = running.get(s.cluster.as_str()).expect("every matched service's cluster is read").clone();
                    match all.await {
                        Ok(found) => found.get(&s.service).cloned().expect("every matched service is read"),
                        Err(e) => Err(e),
                    }
                };
                self.lease_and_state(s, request(push.time.clone()), current)
            }))
        );
        let (leases, states): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();
        let tagged = match tagged {
            Ok(t) => t,
            Err(e) => {
                self.release_all(&services, &leases).await;
                return Err(e.into());
            }
        };
        if let Some(t) = tagged.as_ref().filter(|t| t.registry_id != push.account) {
            self.release_all(&services, &leases).await;
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("push is for account {} but this function's registry is {}", push.account, t.registry_id),
            ));
        }
        let freshness = plan::freshness(push.digest(), tagged.as_ref().map(|t| &t.digest));
        // The event may not say what was pushed; ECR's own answer then decides.
        let event_media = (push.artifact_media_type.as_deref(), push.manifest_media_type.as_deref());
        let not_image = tagged.as_ref().filter(|_| media_type::unknown(event_media.0, event_media.1)).and_then(|t| {
            media_type::not_an_image(push.tag(), t.artifact_media_type.as_deref(), t.manifest_media_type.as_deref())
        });
        let not_current = match &freshness {
            Freshness::Current if not_image.is_some() => Some((Outcome::Ignored, not_image.unwrap_or_default())),
            Freshness::Current => None,
            Freshness::Superseded { now } => Some((
                Outcome::Superseded,
                format!("{}:{} now points at {}, a newer push", push.image.repository, push.tag(), now.short()),
            )),
            Freshness::TagGone => Some((
                Outcome::Ignored,
                format!("tag {}:{} no longer exists in ECR", push.image.repository, push.tag()),
            )),
        };
        if let Some((outcome, reason)) = not_current {
            self.release_all(&services, &leases).await;
            let deployments = services
                .iter()
                .map(|s| {
                    info!(event_id = %push.event_id, service = %s.name, image = %push.image, outcome = outcome.as_str(), reason = %reason, "decision");
                    let mut d = DeploymentSummary::new(&s.name, s.target(), outcome, reason.clone());
                    d.image = push.image.pinned_uri();
                    d
                })
                .collect();
            return Ok(Summary::of(deployments));
        }
        let pushed_at = tagged.and_then(|t| t.pushed_at).or_else(|| push.time.clone());
        let rollouts = services.iter().zip(leases).zip(states).map(|((svc, lease), state)| {
            let req = request(pushed_at.clone());
            async move { (*svc, self.under_lease_boxed(svc, lease, state, req).await) }
        });
        collect(join_all(rollouts).await)
    }

    async fn on_manual(&self, action: &ManualAction, invocation: Invocation<'_>) -> Result<Summary, Error> {
        let request_id = invocation.request_id;
        let Some(svc) = self.config.service(action.service()) else {
            let known: Vec<&str> = self.config.services.iter().map(|s| s.name.as_str()).collect();
            return Ok(Summary::only(
                Outcome::Rejected,
                format!("unknown service {:?}: configured services are {known:?}", truncate(action.service())),
            ));
        };
        let (tag, force, dry_run, allow_rolled_back) = match action {
            ManualAction::Redeploy { force, .. } => {
                let result = self.on_redeploy(svc, *force, invocation).await;
                return collect(vec![(svc, result)]);
            }
            ManualAction::Deploy { tag, force, .. } => (Some(tag.as_str()), false, false, *force),
            ManualAction::Plan { tag, force, .. } => (tag.as_deref(), false, true, *force),
            ManualAction::Rollback { .. } => {
                let result = self.on_rollback(svc, invocation).await;
                return collect(vec![(svc, result)]);
            }
        };
        let tag = match tag.or_else(|| svc.redeploy_tag()) {
            Some(t) => t,
            None => {
                return Ok(Summary::only(
                    Outcome::Rejected,
                    format!("service {}: every pattern in `tags` has a wildcard; name the tag with {{\"action\": \"deploy\", \"tag\": …}}", svc.name),
                ))
            }
        };
        let trigger = TriggerRef::Manual { action: action.verb().to_string(), request_id: request_id.to_string() };
        let lease = async {
            if dry_run {
                Ok(None)
            } else {
                self.take_lease(svc, invocation, trigger.id(), "").await.map(Some)
            }
        };
        let (tagged, lease) = tokio::join!(self.ecr.resolve_tag(&svc.repository, tag), lease);
        let lease = lease?;
        let tagged = match tagged {
            Ok(Some(t)) => t,
            other => {
                if let Some(l) = &lease {
                    self.release(svc, l, None).await;
                }
                if let Err(e) = other {
                    return Err(e.into());
                }
                return Ok(Summary::only(
                    Outcome::Rejected,
                    format!("tag {}:{tag} does not exist in ECR", svc.repository),
                ));
            }
        };
        let image = ImageRef {
            registry: ImageRef::ecr_registry(&tagged.registry_id, &self.region),
            repository: svc.repository.clone(),
            tag: Some(tag.to_string()),
            digest: Some(tagged.digest.clone()),
        };
        let req = Request {
            invocation,
            trigger,
            image: &image,
            pushed_at: tagged.pushed_at.clone(),
            event_time: None,
            force,
            dry_run,
            allow_rolled_back,
        };
        let result = match lease {
            Some(lease) => self.under_lease_boxed(svc, Ok(lease), None, req).await,
            None => match self.read_state(svc, false).await {
                Ok(state) => self.rollout_boxed(svc, state, req, None).await,
                Err(e) => Err(e),
            },
        };
        collect(vec![(svc, result)])
    }
}

/// The account of an ARN (`arn:partition:service:region:account:…`), when it has one.
fn account_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let account = (parts.next() == Some("arn")).then(|| parts.nth(3)).flatten()?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// Turns per-service results into the answer, each failure as [`Error::disposition`] decides: a
/// transient one fails the invocation so Lambda retries it; so does AccessDenied, so it counts in
/// the function's Errors metric and the event waits in the dead-letter queue for a redrive after
/// the IAM fix. Other failures are answered `rejected`, flagged for the topic when AWS refused them.
fn collect(results: Vec<(&ServiceConfig, Result<DeploymentSummary, Error>)>) -> Result<Summary, Error> {
    let mut deployments = Vec::with_capacity(results.len());
    for (svc, r) in results {
        match r {
            Ok(d) => deployments.push(d),
            Err(e) => match e.disposition() {
                Disposition::Retry | Disposition::Escalate => return Err(e),
                Disposition::Refuse { publish } => {
                    warn!(service = %svc.name, error = %e, outcome = "rejected", "decision");
                    let mut d = DeploymentSummary::new(&svc.name, svc.target(), Outcome::Rejected, e.to_string());
                    d.needs_attention = publish;
                    deployments.push(d);
                }
            },
        }
    }
    Ok(Summary::of(deployments))
}

#[cfg(test)]
mod tests {
    use super::account_of_arn;

    #[test]
    fn the_functions_account_comes_from_its_arn() {
        assert_eq!(account_of_arn("arn:aws:lambda:ap-southeast-2:123456789012:function:deploy"), Some("123456789012"));
        assert_eq!(
            account_of_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:deploy:live"),
            Some("123456789012")
        );
        assert_eq!(account_of_arn("arn:aws:lambda:ap-southeast-2::function:deploy"), None);
        assert_eq!(account_of_arn("deploy"), None);
    }
}
