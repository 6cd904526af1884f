//! A deploy: an ECR push or a manual action in, rollouts started, an answer out.
//!
//! Each step reads like a script: describe the service (AWS reads), decide (a value from
//! [`crate::rules`]), apply it. One file per step, named for it: `push` (`on_push`) and `manual`
//! (`on_manual`) route a trigger to its services; `holding` takes each service's lease;
//! `describe` reads what the service runs (`read_state`, `describe_state`); `rollout` decides
//! ([`crate::rules::decision`]) and answers what changes nothing; `change` registers, updates the
//! service and writes the record; `manual_rollback` and `redeploy` are the operator's own actions.

mod change;
mod connections;
mod describe;
mod holding;
mod manual;
mod manual_rollback;
mod paused;
mod push;
mod redeploy;
mod rollback_pick;
mod rollout;

use serde_json::Value;
use tracing::{info, warn};

use crate::aws::ecr::EcrClient;
use crate::aws::ecs::EcsClient;
use crate::aws::leases::LeaseStore;
use crate::aws::records::RecordStore;
use crate::aws::s3::Store;
use crate::aws::sns::Notifier;
use crate::config::{Config, ServiceConfig};
use crate::domain::error::{Disposition, Error};
use crate::domain::image::ImageRef;
use crate::domain::record::TriggerRef;
use crate::inbound::{self as event, Trigger};
use crate::rules::notify::{problem_message, Problem};
use crate::rules::outcome::{DeploymentSummary, Outcome, Summary};
// `super::decision::…` in the step files: the decision is a rule now.
use crate::domain::timing::{self, Deadline};
use crate::rules::decision;

/// Everything a deploy needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Deployer {
    /// The validated config.
    pub config: Config,
    /// ECS client.
    pub ecs: EcsClient,
    /// ECR client.
    pub ecr: EcrClient,
    /// The artifact bucket (its config object, the artifacts).
    pub store: Store,
    /// The deployment records and artifacts in the bucket.
    pub records: RecordStore,
    /// The service leases in the bucket.
    pub leases: LeaseStore,
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
    /// The operators' pauses beside the config (`pushdeploy pause`); none for a config read from a file.
    pub pauses: Option<crate::aws::pauses::PauseStore>,
    /// The roles the stack passes (`PUSHDEPLOY_TASK_ROLE_ARNS`, `PUSHDEPLOY_EXECUTION_ROLE_ARNS`):
    /// `plan` warns of a role it does not; `None`: unknown (a stack without the variables).
    pub passable_roles: Option<crate::rules::pass_role::PassableRoles>,
}

impl Deployer {
    /// A deployer acting through `clients` on `config`; it knows none of pushdeploy's own roles,
    /// takes verify to run outside the VPC and reads no pauses until told (`own_roles`,
    /// `verify_in_vpc`, `pauses`).
    pub fn new(config: Config, clients: &crate::aws::Clients) -> Self {
        Self {
            config,
            ecs: clients.ecs.clone(),
            ecr: clients.ecr.clone(),
            store: clients.store.clone(),
            records: clients.records.clone(),
            leases: clients.leases.clone(),
            region: clients.region.clone(),
            notifier: clients.notifier.clone(),
            own_roles: Vec::new(),
            verify_in_vpc: false,
            pauses: None,
            passable_roles: None,
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
            Err(_) => Err(Error::Deadline(crate::domain::error::Failure {
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
            crate::flows::metrics::record(
                &d.service,
                &[crate::flows::metrics::Observation::Count(crate::flows::metrics::ACTION_NEEDED)],
            );
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
    fn records(&self) -> &RecordStore {
        &self.records
    }

    /// The service leases in the bucket.
    fn leases(&self) -> &LeaseStore {
        &self.leases
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
