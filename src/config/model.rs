//! The validated config's shape: services, their smoke tests and hooks, and the lookups verify and deploy make.

use std::collections::BTreeMap;

use crate::domain::glob::TagPattern;
use crate::domain::lifecycle::{Listener, Stage};

use super::PrincipalPattern;

/// How a rollout changes a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Register a copy of the current task definition with images pinned to the pushed digest.
    PinDigest,
    /// Keep the task definition (tag-based images) and force ECS to start new tasks.
    ForceNewDeployment,
}

/// Which revision a pin-digest rollout copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    /// The revision the service runs now (default).
    #[default]
    Service,
    /// The newest ACTIVE revision of the service's family that a trusted principal registered
    /// (`trusted_registrants`): Terraform owns everything but the image.
    Family,
}

pub use crate::domain::mode::Mode;

/// `connect_to = "HOST[:PORT]"`: where smoke requests are sent, while the URL's own host name stays
/// in TLS (SNI and the certificate's check) and the Host header, as curl's `--connect-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// A DNS name or an IP address (an IPv6 one without brackets).
    pub host: String,
    /// The port; `None`: the URL's own.
    pub port: Option<u16>,
}

/// The whole validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from, for error messages.
    pub source: String,
    /// Every managed service, in file order.
    pub services: Vec<ServiceConfig>,
    /// What each ECS service is judged by (verify, the hook, `keep_revisions`): its entries merged.
    pub(super) judged: Vec<Judged>,
    /// Each of `services`' index among the file's `[[service]]` entries, for errors naming a key.
    pub(super) entry_of: Vec<usize>,
    /// The entries this release of pushdeploy cannot read ([`super::compat`]).
    pub(super) unreadable: Vec<super::UnreadableService>,
}

/// One ECS service's rules: every `[[service]]` entry for it merged ([`super::merge_entries`]).
#[derive(Debug, Clone)]
pub(super) struct Judged {
    /// The merged rules: the first entry's names; every entry's smoke checks; the hook,
    /// `keep_revisions`, strategy and base the entries agree on.
    pub(super) rules: ServiceConfig,
    /// The entries merged, as indexes into `services` (file order).
    pub(super) entries: Vec<usize>,
}

/// One managed ECS service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Name manual events use.
    pub name: String,
    /// ECS cluster name.
    pub cluster: String,
    /// ECS service name.
    pub service: String,
    /// ECR repository feeding it.
    pub repository: String,
    /// Tag patterns that deploy.
    pub tags: Vec<TagPattern>,
    /// Containers to update; `None` means every container whose image is from `repository`.
    pub containers: Option<Vec<String>>,
    /// Rollout strategy.
    pub strategy: Strategy,
    /// Which revision a rollout copies.
    pub base: Base,
    /// With `base = "family"`: the principals whose revisions may be copied (ECS's `registeredBy`).
    pub trusted_registrants: Vec<PrincipalPattern>,
    /// With `base = "family"`: a push whose base changes more than the image is refused until an
    /// operator deploys it (`redeploy` or `deploy`).
    pub hold_base_changes: bool,
    /// Smoke test run by `verify`, if any.
    pub smoke: Option<SmokeConfig>,
    /// After a verified deployment, deregister pushdeploy's own revisions beyond the newest N.
    pub keep_revisions: Option<u32>,
    /// `[service.hook]`: pushdeploy is the service's ECS lifecycle hook (blue/green, linear, canary).
    pub hook: Option<HookConfig>,
    /// Whether verify acts on its verdict or only records and tells it.
    pub mode: Mode,
    /// `[service.analysis]`: judge green (or a rolling deployment's bake) on the load balancer's
    /// own metrics of real traffic, against blue (or the window before the deployment).
    pub analysis: Option<AnalysisConfig>,
}

/// What an analysis step that is still undecided for want of traffic comes to once its window
/// (or the hook's budget) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TooLittleTraffic {
    /// Too little evidence is no evidence of health: the step fails (default).
    #[default]
    Fail,
    /// The step passes, its record and message saying how little traffic it saw.
    Pass,
}

/// `[service.analysis]`: canary analysis from the ALB's CloudWatch metrics (the book, Analysis).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    /// The load balancer's ARN; `None`: found from the listener rule or the target group.
    pub load_balancer: Option<String>,
    /// The target groups compared; empty: the service's own (and its blue/green alternate).
    pub target_groups: Vec<String>,
    /// The test listener rule; `None`: the service's `advancedConfiguration.testListenerRule`.
    pub test_listener_rule: Option<String>,
    /// How long each step is watched before it may pass.
    pub window_ms: u64,
    /// Fewer green requests than this by the window's end is too little traffic to judge.
    pub min_requests: u64,
    /// What too little traffic comes to.
    pub too_little_traffic: TooLittleTraffic,
    /// Green's 5XX share above this fails, whatever blue's.
    pub max_error_rate: f64,
    /// How much worse than blue green's error rate may be before the test can fail it.
    pub max_error_increase: f64,
    /// The one-sided test fails green when its p-value is below `1 - confidence`.
    pub confidence: f64,
    /// Ceiling on green's TargetResponseTime p95, if any.
    pub max_p95_ms: Option<u64>,
    /// Ceiling on green's TargetResponseTime p99, if any.
    pub max_p99_ms: Option<u64>,
    /// Green's p95/p99 above blue's times this (and above it by `latency_slack_ms`) fails.
    pub max_latency_ratio: f64,
    /// Absolute slack on the latency ratio, so a few ms on a fast service is no regression.
    pub latency_slack_ms: u64,
    /// Green's UnHealthyHostCount (maximum) above this fails.
    pub max_unhealthy: u32,
    /// Rolling services only: how long the group is watched after ECS completes.
    pub bake_ms: Option<u64>,
    /// Production steps' active checks through the production listener (blue and green by weight).
    pub production_checks: bool,
}

impl Default for AnalysisConfig {
    /// The documented defaults (docs/src/analysis.md).
    fn default() -> Self {
        Self {
            load_balancer: None,
            target_groups: vec![],
            test_listener_rule: None,
            window_ms: 300_000,
            min_requests: 200,
            too_little_traffic: TooLittleTraffic::Fail,
            max_error_rate: 0.05,
            max_error_increase: 0.005,
            confidence: 0.99,
            max_p95_ms: None,
            max_p99_ms: None,
            max_latency_ratio: 1.5,
            latency_slack_ms: 25,
            max_unhealthy: 0,
            bake_ms: None,
            production_checks: false,
        }
    }
}

/// `[service.hook]`: the stages the service's `lifecycleHooks` call pushdeploy at, and their timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Stages that smoke-test (POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT).
    pub stages: Vec<Stage>,
    /// The hook's `timeoutConfiguration.timeoutInMinutes` (ECS's default: 1,440): set the same
    /// value in the service's lifecycle hook.
    pub timeout_minutes: u32,
    /// How long invocations that cannot advance a check (a transient failure, an unreadable
    /// config, a record not written yet) may go on before the hook answers FAILED: `stuck_minutes`,
    /// by default half the timeout and at most 30 minutes, so it ends before ECS's timeout acts.
    pub stuck_ms: u64,
}

impl HookConfig {
    /// The hook's timeout.
    pub fn timeout_ms(&self) -> u64 {
        u64::from(self.timeout_minutes) * 60_000
    }
}

/// A request header's value in a smoke test: written in the config, or read from SSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// A value written in the config: only for headers that carry no credential
    /// ([`crate::config::credentials::is_credential_header`]).
    Plain(String),
    /// `{ ssm = "/pushdeploy/todo/api-token" }`: the name of a SecureString parameter in SSM
    /// Parameter Store, read (decrypted) by verify when a smoke test runs.
    Ssm(String),
}

/// `[service.smoke]`: how `verify` judges a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeConfig {
    /// Base URL the check paths are joined to.
    pub url: String,
    /// Base URL of the test listener (blue/green): where POST_TEST_TRAFFIC_SHIFT checks go.
    pub test_url: Option<String>,
    /// Where every request of the smoke test connects, the URL's host name kept for TLS and Host.
    pub connect_to: Option<ConnectTo>,
    /// Headers added to every request through the test listener (for header-based test rules).
    pub test_headers: BTreeMap<String, HeaderValue>,
    /// Rounds before giving up.
    pub attempts: u32,
    /// Pause between rounds.
    pub interval_ms: u64,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Passing rounds in a row required.
    pub consecutive: u32,
    /// Optional target group whose targets must all be healthy.
    pub target_group_arn: Option<String>,
    /// HTTP checks, all of which must pass in a round.
    pub checks: Vec<CheckConfig>,
    /// Largest response body read per request; more fails the check.
    pub max_body_bytes: usize,
    /// Optional read-after-write probe, run once after the rounds pass.
    pub read_after_write: Option<ReadAfterWriteConfig>,
}

impl SmokeConfig {
    /// Worst-case time the rounds and the probe can take, for the verify function's time budget.
    pub fn budget_ms(&self) -> u64 {
        u64::from(self.attempts) * (self.interval_ms + self.round_ms()) + self.probe_ms()
    }

    /// Worst-case time of one round of checks.
    pub fn round_ms(&self) -> u64 {
        self.timeout_ms * self.checks.len() as u64
    }

    /// Worst-case time of the read-after-write probe (write, reads, delete).
    pub fn probe_ms(&self) -> u64 {
        self.read_after_write.as_ref().map_or(0, |p| (u64::from(p.reads) + 2) * self.timeout_ms)
    }

    /// The most response-body bytes held at once: a round's checks run together, each up to
    /// `max_body_bytes`; the probe holds its write's answer and one read at a time.
    pub fn peak_body_bytes(&self) -> u64 {
        let held = (self.checks.len() as u64).max(if self.read_after_write.is_some() { 2 } else { 0 });
        held * self.max_body_bytes as u64
    }

    /// Worst-case time a hook invocation takes: one round, and the probe after the last.
    pub fn invocation_ms(&self) -> u64 {
        self.round_ms() + self.probe_ms()
    }

    /// The checks as they go through `listener`: the test listener's URL and headers, or these.
    pub fn through(&self, listener: Listener) -> SmokeConfig {
        let mut aimed = self.clone();
        if listener == Listener::Test {
            if let Some(url) = &self.test_url {
                aimed.url = url.clone();
            }
            for check in &mut aimed.checks {
                for (k, v) in &self.test_headers {
                    check.headers.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            if let Some(p) = &mut aimed.read_after_write {
                for (k, v) in &self.test_headers {
                    p.headers.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        // In blue/green the production target group holds blue while green is tested, and ECS
        // reaches these stages only with green's tasks healthy: the gate would judge the wrong tasks.
        aimed.target_group_arn = None;
        aimed
    }
}

/// `[service.smoke.read_after_write]`: write a unique marker once, then every read must see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadAfterWriteConfig {
    /// Path the marker is written to.
    pub write_path: String,
    /// Method of the write (default POST).
    pub write_method: String,
    /// Body of the write; `{marker}` is replaced by the unique marker.
    pub write_body: String,
    /// Path read back.
    pub read_path: String,
    /// How many reads must all see the marker.
    pub reads: u32,
    /// Headers sent with every probe request.
    pub headers: BTreeMap<String, HeaderValue>,
    /// Optional clean-up path; `{id}` is replaced by the value at `id_pointer` in the write's answer.
    pub delete_path: Option<String>,
    /// JSON pointer to the written item's id in the write's answer.
    pub id_pointer: Option<String>,
}

/// One `[[service.smoke.check]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// Path joined to the smoke URL.
    pub path: String,
    /// HTTP method.
    pub method: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, HeaderValue>,
    /// Request body.
    pub body: Option<String>,
    /// Expected status.
    pub status: u16,
    /// Text the body must contain.
    pub contains: Option<String>,
    /// JSON pointer into the response body.
    pub json_pointer: Option<String>,
    /// Value the pointer must equal.
    pub equals: Option<serde_json::Value>,
    /// Slowest acceptable response.
    pub max_latency_ms: Option<u64>,
}

impl Config {
    /// The service a manual event names.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The clusters of the configured ECS services named `service` (readable or not): where an
    /// event about a short-ARN service (`…:service/<name>`, which names no cluster) may belong.
    pub fn clusters_of(&self, service: &str) -> Vec<&str> {
        let readable = self.services.iter().map(|s| (&s.service, &s.cluster));
        let unreadable = self.unreadable.iter().map(|u| (&u.service, &u.cluster));
        let mut clusters: Vec<&str> =
            readable.chain(unreadable).filter(|(s, _)| *s == service).map(|(_, c)| c.as_str()).collect();
        clusters.sort_unstable();
        clusters.dedup();
        clusters
    }

    /// What an ECS cluster/service pair is judged by (verify, the lifecycle hook, `keep_revisions`):
    /// every `[[service]]` entry for it merged, so each entry's smoke checks run. The one place
    /// verify looks a service up: never the first entry alone.
    pub fn by_ecs_service(&self, cluster: &str, service: &str) -> Option<&ServiceConfig> {
        self.judged.iter().map(|j| &j.rules).find(|s| s.cluster == cluster && s.service == service)
    }
}

impl ServiceConfig {
    /// True when this service deploys pushes of `repository:tag`.
    pub fn watches(&self, repository: &str, tag: &str) -> bool {
        self.repository == repository && self.tags.iter().any(|p| p.matches(tag))
    }

    /// The tag `redeploy` re-resolves: the first pattern that names exactly one tag.
    pub fn redeploy_tag(&self) -> Option<&str> {
        self.tags.iter().find(|p| p.is_literal()).map(|p| p.as_str())
    }

    /// `cluster/service`, as logs and errors name it.
    pub fn target(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }

    /// Why verify may never reach the test listener, when the config suggests it: the hook checks
    /// at POST_TEST_TRAFFIC_SHIFT through a `test_url` on another port than `url`, and verify runs
    /// outside the VPC (`verify_in_vpc`: the stack's VerifySubnetIds). A second listener port is
    /// reachable from the internet only with its own security-group ingress and a certificate for
    /// the host; without them every round times out and ECS rolls back every deployment. Not an
    /// error: the port may be open on purpose, which nothing here can see.
    pub fn test_listener_warning(&self, verify_in_vpc: bool) -> Option<String> {
        let (Some(hook), Some(smoke)) = (&self.hook, &self.smoke) else { return None };
        if verify_in_vpc || !hook.stages.contains(&Stage::PostTestTrafficShift) {
            return None;
        }
        let port = |u: &str| url::Url::parse(u).ok().and_then(|u| u.port_or_known_default());
        let (test, prod) = (port(smoke.test_url.as_deref()?)?, port(&smoke.url)?);
        if test == prod {
            return None;
        }
        Some(format!(
            "smoke.test_url is on port {test} and url on {prod}, and verify runs outside the VPC (the stack has no VerifySubnetIds): unless the load balancer's security group admits verify on {test} (and, for https, its certificate names test_url's host), every POST_TEST_TRAFFIC_SHIFT round times out and ECS rolls back every deployment. Fix: a header-matched test listener rule on url's port (test_url on {prod} with test_headers), or verify in the VPC (VerifySubnetIds, VerifySecurityGroupIds); the book, Blue/green, \"a test path verify can reach\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{parse, MIN, TODO};

    #[test]
    fn parses_the_todo_example() {
        let c = parse(TODO).unwrap();
        assert_eq!(c.services.len(), 2);
        let b = c.service("backend").unwrap();
        assert_eq!(b.cluster, "todo-cluster");
        assert_eq!(b.service, "todo-backend");
        assert!(b.watches("todo-backend", "v1.4.2"));
        assert!(!b.watches("todo-frontend", "latest"));
        assert_eq!(b.redeploy_tag(), Some("latest"));
        assert_eq!(b.strategy, Strategy::PinDigest);
        let smoke = b.smoke.as_ref().unwrap();
        assert_eq!(smoke.checks[0].path, "todoItems");
        assert_eq!(smoke.checks[0].max_latency_ms, Some(1000));
    }

    #[test]
    fn a_test_listener_on_another_port_is_flagged_unless_verify_runs_in_the_vpc() {
        let config = |test_url: &str, stages: &str| {
            let text = format!(
                "{MIN}[service.smoke]\nurl='https://todo.example.com/api/'\ntest_url='{test_url}'\ntest_headers={{ x-pushdeploy-test = '1' }}\ninterval_ms=15000\n[[service.smoke.check]]\npath='todoItems'\n[service.hook]\nstages=[{stages}]\ntimeout_minutes=60\n"
            );
            parse(&text).unwrap().services[0].clone()
        };
        let post_test = "'POST_TEST_TRAFFIC_SHIFT','POST_PRODUCTION_TRAFFIC_SHIFT'";
        let port = config("https://todo.example.com:8443/api/", post_test);
        let why = port.test_listener_warning(false).expect("flagged");
        assert!(
            why.starts_with("smoke.test_url is on port 8443 and url on 443, and verify runs outside the VPC"),
            "{why}"
        );
        assert!(why.contains("header-matched test listener rule") && why.contains("VerifySubnetIds"), "{why}");
        assert_eq!(port.test_listener_warning(true), None, "in the VPC it reaches the listener");
        // The header-matched rule on the production port, written with or without the port.
        assert_eq!(config("https://todo.example.com/api/", post_test).test_listener_warning(false), None);
        assert_eq!(config("https://todo.example.com:443/api/", post_test).test_listener_warning(false), None);
        // No check through the test listener: nothing to reach.
        let production_only = config("https://todo.example.com:8443/api/", "'POST_PRODUCTION_TRAFFIC_SHIFT'");
        assert_eq!(production_only.test_listener_warning(false), None);
    }
}
