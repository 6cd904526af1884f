//! `pushdeploy.toml`: parsed and validated before anything is deployed, errors named by file and key.

use std::collections::{BTreeMap, BTreeSet};

use toml::{Table, Value};

use crate::error::ConfigError;
use crate::glob::TagPattern;
use crate::hook::{Listener, Stage};
use crate::image::validate_repository;
use crate::rules::base::PrincipalPattern;

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

/// The whole validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from, for error messages.
    pub source: String,
    /// Every managed service, in file order.
    pub services: Vec<ServiceConfig>,
    /// What each ECS service is judged by (verify, the hook, `keep_revisions`): its entries merged.
    judged: Vec<Judged>,
}

/// One ECS service's rules: every `[[service]]` entry for it merged ([`merge_entries`]).
#[derive(Debug, Clone)]
struct Judged {
    /// The merged rules: the first entry's names; every entry's smoke checks; the hook,
    /// `keep_revisions`, strategy and base the entries agree on.
    rules: ServiceConfig,
    /// The entries merged, as indexes into `services` (file order).
    entries: Vec<usize>,
}

/// What a deployment of pushdeploy allows a config to ask for: checked by the functions at load
/// and by `pushdeploy validate` before an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The clusters the stack's roles may touch (`PUSHDEPLOY_CLUSTERS`); `None`: not checked.
    pub clusters: Option<Vec<String>>,
    /// The time a smoke test may take at worst (verify's timeout less its margin); `None`: not checked.
    pub smoke_budget_ms: Option<u64>,
    /// The verify function's memory in MB (`VerifyMemorySize`): every smoke test's response
    /// bodies at their worst must fit in it; `None`: not checked.
    pub verify_memory_mb: Option<u64>,
}

/// What the verify process needs besides response bodies (runtime, SDK clients, TLS, the config
/// and the record), in MB: measured peaks stay well under it.
pub const VERIFY_BASELINE_MB: u64 = 48;

/// How many times its bytes a body can take at worst while it is judged: the body itself and its
/// parse into a JSON document for a `json_pointer` check.
pub const BODY_MEMORY_FACTOR: u64 = 3;
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
    /// ([`crate::secrets::is_credential_header`]).
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
    /// Parses and validates config text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: source.to_string(),
            key: key.to_string(),
            message: cap(message),
        };
        let root: Table = text
            .parse()
            .map_err(|e: toml::de::Error| err("(syntax)", e.message().to_string() + &location(text, e.span())))?;
        let mut root = Fields::new(root, "", source);

        let mut default_cluster = None;
        let mut default_strategy = Strategy::PinDigest;
        let mut default_base = Base::Service;
        let mut default_registrants = None;
        let mut default_hold = false;
        if let Some(defaults) = root.table("defaults")? {
            let mut d = Fields::new(defaults, "defaults", source);
            default_cluster = d.opt_cluster("cluster")?;
            if let Some(s) = d.opt_str("strategy")? {
                default_strategy = parse_strategy(&s).map_err(|m| d.err("strategy", m))?;
            }
            if let Some(b) = d.opt_str("base")? {
                default_base = parse_base(&b).map_err(|m| d.err("base", m))?;
            }
            default_registrants = registrants(&mut d)?;
            default_hold = d.opt_bool("hold_base_changes")?.unwrap_or(false);
            d.finish()?;
        }

        let raw_services = root.array_of_tables("service")?.unwrap_or_default();
        root.finish()?;
        if raw_services.is_empty() {
            return Err(err("service", "no [[service]] is configured: nothing would ever deploy".into()));
        }

        let mut services = Vec::with_capacity(raw_services.len());
        let mut names = BTreeSet::new();
        for (i, t) in raw_services.into_iter().enumerate() {
            let path = format!("service[{i}]");
            let mut f = Fields::new(t, &path, source);
            let name = f.req_name("name")?;
            if !names.insert(name.clone()) {
                return Err(f.err("name", format!("service name {name:?} is used twice")));
            }
            // `service` is a name or an ARN in either of ECS's forms; a long ARN names the cluster too.
            let (arn_cluster, service) = f.req_service("service")?;
            let own_cluster = f.opt_cluster("cluster")?;
            let cluster = match (arn_cluster, own_cluster.or_else(|| default_cluster.clone())) {
                (Some(a), Some(c)) if a != c => {
                    return Err(f.err(
                        "service",
                        format!("the service ARN names cluster {a:?}, but the service's cluster is {c:?}"),
                    ))
                }
                (Some(c), _) | (None, Some(c)) => c,
                (None, None) => return Err(f.err("cluster", "missing: set it here or in [defaults]".into())),
            };
            let repository = f.req_str("repository")?;
            validate_repository(&repository).map_err(|e| f.err("repository", e.0))?;
            let tag_strings = f.req_str_array("tags")?;
            if tag_strings.is_empty() {
                return Err(f.err("tags", "empty: list at least one tag pattern, e.g. [\"latest\"]".into()));
            }
            let mut tags = Vec::with_capacity(tag_strings.len());
            for (j, t) in tag_strings.iter().enumerate() {
                tags.push(TagPattern::parse(t).map_err(|m| f.err(&format!("tags[{j}]"), m))?);
            }
            let containers = f.opt_str_array("containers")?;
            if let Some(c) = &containers {
                if c.is_empty() {
                    return Err(
                        f.err("containers", "empty: omit it to update every container from the repository".into())
                    );
                }
                for (j, name) in c.iter().enumerate() {
                    if !is_ecs_name(name) {
                        return Err(f.err(&format!("containers[{j}]"), format!("{name:?} is not a container name")));
                    }
                }
            }
            let strategy = match f.opt_str("strategy")? {
                Some(s) => parse_strategy(&s).map_err(|m| f.err("strategy", m))?,
                None => default_strategy,
            };
            let base = match f.opt_str("base")? {
                Some(b) => parse_base(&b).map_err(|m| f.err("base", m))?,
                None => default_base,
            };
            if base == Base::Family && strategy == Strategy::ForceNewDeployment {
                return Err(f.err(
                    "base",
                    "\"family\" copies a revision with the image pinned; strategy \"force-new-deployment\" copies nothing: use pin-digest".into(),
                ));
            }
            let own_registrants = registrants(&mut f)?;
            let own_hold = f.opt_bool("hold_base_changes")?;
            // Set on a service that copies what it runs, they would silently do nothing.
            for (key, set) in
                [("trusted_registrants", own_registrants.is_some()), ("hold_base_changes", own_hold.is_some())]
            {
                if set && base != Base::Family {
                    return Err(f.err(
                        key,
                        "only base = \"family\" reads it (this service copies the revision it runs): set base = \"family\" or remove it".into(),
                    ));
                }
            }
            let trusted_registrants = own_registrants.or_else(|| default_registrants.clone()).unwrap_or_default();
            if base == Base::Family && trusted_registrants.is_empty() {
                // Without it, whoever may call ecs:RegisterTaskDefinition would choose production's
                // command, environment, sidecars and task role with the next push.
                return Err(f.err(
                    "trusted_registrants",
                    "missing: base = \"family\" copies the family's newest revision, so name the principals whose revisions may reach production (here or in [defaults]), e.g. [\"arn:aws:iam::123456789012:role/terraform\"]: the role your Terraform runs as (README, \"Trusted registrants\")".into(),
                ));
            }
            let hold_base_changes = own_hold.unwrap_or(default_hold);
            let keep_revisions = f.opt_int("keep_revisions", 1, 1000)?.map(|n| n as u32);
            let smoke = match f.table("smoke")? {
                Some(t) => Some(parse_smoke(t, &format!("{path}.smoke"), source)?),
                None => None,
            };
            let hook = match f.table("hook")? {
                Some(t) => Some(parse_hook(t, &format!("{path}.hook"), source)?),
                None => None,
            };
            match (&hook, &smoke) {
                (Some(_), None) => {
                    return Err(f.err(
                        "smoke",
                        "missing: [service.hook] makes pushdeploy ECS's lifecycle hook, and the hook judges with [service.smoke] (url and checks)".into(),
                    ))
                }
                (Some(h), Some(s)) if h.stages.contains(&Stage::PostTestTrafficShift) && s.test_url.is_none() => {
                    return Err(f.err(
                        "smoke.test_url",
                        "missing: [service.hook] checks at POST_TEST_TRAFFIC_SHIFT, through the load balancer's test listener; set test_url to it".into(),
                    ))
                }
                (None, Some(s)) if s.test_url.is_some() || !s.test_headers.is_empty() => {
                    return Err(f.err(
                        "smoke.test_url",
                        "only [service.hook] checks through the test listener: add [service.hook] or remove test_url and test_headers".into(),
                    ))
                }
                (Some(h), Some(s)) => hook_fits(h, s).map_err(|m| f.err("hook.timeout_minutes", m))?,
                _ => {}
            }
            f.finish()?;
            services.push(ServiceConfig {
                name,
                cluster,
                service,
                repository,
                tags,
                containers,
                strategy,
                base,
                trusted_registrants,
                hold_base_changes,
                smoke,
                keep_revisions,
                hook,
            });
        }
        let judged = judge_by_ecs_service(&services).map_err(|(i, key, message)| ConfigError {
            file: source.to_string(),
            key: format!("service[{i}].{key}"),
            message,
        })?;
        for j in &judged {
            if let (Some(h), Some(s)) = (&j.rules.hook, &j.rules.smoke) {
                hook_fits(h, s).map_err(|message| ConfigError {
                    file: source.to_string(),
                    key: format!("service[{}].hook.timeout_minutes", j.entries[0]),
                    message,
                })?;
            }
        }
        Ok(Self { source: source.to_string(), services, judged })
    }

    /// Refuses smoke tests whose worst case would not fit in `available_ms` (the verify function's
    /// timeout less a margin), and hook checks that would not fit in the hook's own timeout.
    pub fn check_smoke_budget(&self, available_ms: u64) -> Result<(), ConfigError> {
        for (i, s) in self.judged_entries() {
            // A hook runs one round per invocation: each invocation must fit, not the whole test.
            let (needed, what, lower) = match (&s.smoke, &s.hook) {
                (None, _) => continue,
                (Some(smoke), Some(_)) => (
                    smoke.invocation_ms(),
                    "one hook invocation runs a round and, after the last, the probe: timeout_ms × checks + probe",
                    "lower timeout_ms",
                ),
                (Some(smoke), None) => (
                    smoke.budget_ms(),
                    "worst case attempts × (interval_ms + timeout_ms × checks) + probe",
                    "lower attempts, interval_ms or timeout_ms,",
                ),
            };
            if needed > available_ms {
                return Err(ConfigError {
                    file: self.source.clone(),
                    key: format!("service[{i}].smoke"),
                    message: format!(
                        "{what} = {needed} ms does not fit in the {available_ms} ms the verify function has; {lower} or raise the verify function's timeout (VerifyTimeoutSeconds, less 20 s kept for the verdict)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses smoke tests whose response bodies at their worst would not fit in verify's memory
    /// (`memory_mb`): a verify that runs out of memory dies mid-test, and every retry dies again.
    pub fn check_memory(&self, memory_mb: u64) -> Result<(), ConfigError> {
        let available = memory_mb.saturating_sub(VERIFY_BASELINE_MB) * 1024 * 1024;
        for (i, s) in self.judged_entries() {
            let Some(smoke) = &s.smoke else { continue };
            let needed = smoke.peak_body_bytes() * BODY_MEMORY_FACTOR;
            if needed > available {
                return Err(ConfigError {
                    file: self.source.clone(),
                    key: format!("service[{i}].smoke.max_body_bytes"),
                    message: format!(
                        "{} check(s) held at once × max_body_bytes {} × {BODY_MEMORY_FACTOR} (a body and its JSON parse) = {} MiB does not fit in the {} MiB the verify function has for bodies ({memory_mb} MB less {VERIFY_BASELINE_MB} MB for the runtime); lower max_body_bytes or raise VerifyMemorySize",
                        smoke.peak_body_bytes() / smoke.max_body_bytes.max(1) as u64,
                        smoke.max_body_bytes,
                        needed.div_ceil(1024 * 1024),
                        available / (1024 * 1024),
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses services outside `clusters` (the clusters the functions' roles may touch): on AWS
    /// every call for them would be AccessDenied, so say so before the first push.
    pub fn check_clusters(&self, clusters: &[&str]) -> Result<(), ConfigError> {
        match self.services.iter().position(|s| !clusters.contains(&s.cluster.as_str())) {
            None => Ok(()),
            Some(i) => Err(ConfigError {
                file: self.source.clone(),
                key: format!("service[{i}].cluster"),
                message: format!(
                    "{:?} is not a cluster this stack manages ({clusters:?}): its IAM roles may touch only those services; deploy a stack for that cluster or fix the name",
                    crate::image::truncate(&self.services[i].cluster)
                ),
            }),
        }
    }

    /// Every check the functions make before they act on a config (beyond parsing): the clusters
    /// the stack manages, when known, and the smoke budgets against verify's time.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), ConfigError> {
        if let Some(clusters) = &limits.clusters {
            self.check_clusters(&clusters.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        if let Some(ms) = limits.smoke_budget_ms {
            self.check_smoke_budget(ms)?;
        }
        if let Some(mb) = limits.verify_memory_mb {
            self.check_memory(mb)?;
        }
        Ok(())
    }

    /// The service a manual event names.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The clusters of the configured ECS services named `service`: where an event about a
    /// short-ARN service (`…:service/<name>`, which names no cluster) may belong.
    pub fn clusters_of(&self, service: &str) -> Vec<&str> {
        let mut clusters: Vec<&str> =
            self.services.iter().filter(|s| s.service == service).map(|s| s.cluster.as_str()).collect();
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

    /// Each ECS service's merged rules with the index of the entry whose smoke test it judges by
    /// (the first with one), for errors that name a key.
    fn judged_entries(&self) -> impl Iterator<Item = (usize, &ServiceConfig)> {
        self.judged.iter().map(|j| {
            let i = j.entries.iter().copied().find(|&i| self.services[i].smoke.is_some()).unwrap_or(j.entries[0]);
            (i, &j.rules)
        })
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
        let port = |u: &str| reqwest::Url::parse(u).ok().and_then(|u| u.port_or_known_default());
        let (test, prod) = (port(smoke.test_url.as_deref()?)?, port(&smoke.url)?);
        if test == prod {
            return None;
        }
        Some(format!(
            "smoke.test_url is on port {test} and url on {prod}, and verify runs outside the VPC (the stack has no VerifySubnetIds): unless the load balancer's security group admits verify on {test} (and, for https, its certificate names test_url's host), every POST_TEST_TRAFFIC_SHIFT round times out and ECS rolls back every deployment. Fix: a header-matched test listener rule on url's port (test_url on {prod} with test_headers), or verify in the VPC (VerifySubnetIds, VerifySecurityGroupIds); README, \"A reachable test path\""
        ))
    }
}

fn parse_base(s: &str) -> Result<Base, String> {
    match s {
        "service" => Ok(Base::Service),
        "family" => Ok(Base::Family),
        other => Err(format!("unknown base {other:?}: use \"service\" (copy what runs) or \"family\" (copy the family's newest revision a trusted principal registered)")),
    }
}

/// `trusted_registrants`, when set: principal ARN patterns, each validated and named by its index.
fn registrants(f: &mut Fields<'_>) -> Result<Option<Vec<PrincipalPattern>>, ConfigError> {
    const KEY: &str = "trusted_registrants";
    let Some(list) = f.opt_str_array(KEY)? else { return Ok(None) };
    if list.is_empty() {
        return Err(f.err(
            KEY,
            "empty: list the principals whose revisions base = \"family\" may copy, e.g. your Terraform role's ARN"
                .into(),
        ));
    }
    let mut patterns = Vec::with_capacity(list.len());
    for (j, s) in list.iter().enumerate() {
        patterns.push(PrincipalPattern::parse(s).map_err(|m| f.err(&format!("{KEY}[{j}]"), m))?);
    }
    Ok(Some(patterns))
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "pin-digest" => Ok(Strategy::PinDigest),
        "force-new-deployment" => Ok(Strategy::ForceNewDeployment),
        other => Err(format!("unknown strategy {other:?}: use \"pin-digest\" or \"force-new-deployment\"")),
    }
}

/// Refuses a hook whose smoke test could outlast the hook's own timeout: ECS would act on its
/// timeout before pushdeploy's verdict.
fn hook_fits(h: &HookConfig, s: &SmokeConfig) -> Result<(), String> {
    // ECS calls back `interval_ms` (whole seconds) after each IN_PROGRESS answer.
    let worst = u64::from(s.attempts) * (s.interval_ms.div_ceil(1000) * 1000 + s.round_ms()) + s.probe_ms();
    if h.stuck_ms + s.interval_ms.div_ceil(1000) * 1000 > h.timeout_ms() {
        return Err(format!(
            "stuck_minutes ({} s) and one call-back ({} ms) outlast the hook's {} min timeout: ECS's timeout action would decide instead of pushdeploy; lower stuck_minutes or interval_ms",
            h.stuck_ms / 1000,
            s.interval_ms,
            h.timeout_minutes
        ));
    }
    if worst > h.timeout_ms() {
        return Err(format!(
            "the smoke test may take {worst} ms at worst (attempts × (interval_ms rounded up to seconds + timeout_ms × checks) + probe), longer than the hook's {} min: ECS would act on its timeout before pushdeploy's verdict; raise timeoutConfiguration.timeoutInMinutes (and this) or lower attempts, interval_ms or timeout_ms",
            h.timeout_minutes
        ));
    }
    Ok(())
}

/// Groups the entries by ECS service (file order) and merges each group ([`merge_entries`]).
/// `Err((entry, key, why))` names the entry and key that cannot merge.
fn judge_by_ecs_service(services: &[ServiceConfig]) -> Result<Vec<Judged>, (usize, String, String)> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, s) in services.iter().enumerate() {
        match groups.iter_mut().find(|g| services[g[0]].cluster == s.cluster && services[g[0]].service == s.service) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
        .into_iter()
        .map(|entries| {
            let rules = merge_entries(services, &entries)?;
            Ok(Judged { rules, entries })
        })
        .collect()
}

/// Pure: one ECS service's rules from its `[[service]]` entries (`entries`, indexes into
/// `services`). Two entries for one service are legitimate (a task whose containers come from
/// two repositories), but the service has one revision, one verdict and one hook: every entry's
/// smoke checks are judged together (the verdict fails if any fails), and what cannot be merged
/// is refused, naming both entries: differing strategy, base, hook or `keep_revisions`, and smoke
/// tests that differ in anything but their checks (one URL, one pace, one probe per service).
pub fn merge_entries(services: &[ServiceConfig], entries: &[usize]) -> Result<ServiceConfig, (usize, String, String)> {
    let first = entries[0];
    let mut merged = services[first].clone();
    let mut smoke_from: Option<usize> = merged.smoke.is_some().then_some(first);
    let mut hook_from: Option<usize> = merged.hook.is_some().then_some(first);
    let mut keep_from: Option<usize> = merged.keep_revisions.is_some().then_some(first);
    for &i in &entries[1..] {
        let s = &services[i];
        let clash = |key: &str, earlier: usize, what: String| {
            (
                i,
                key.to_string(),
                format!(
                    "service[{earlier}] ({}) and service[{i}] ({}) both deploy to {}/{}, which has one revision, one verdict and one lifecycle hook: {what}",
                    services[earlier].name, s.name, s.cluster, s.service
                ),
            )
        };
        if s.strategy != merged.strategy {
            return Err(clash("strategy", first, "they must use the same strategy".into()));
        }
        if s.base != merged.base {
            return Err(clash("base", first, "they must copy the same base".into()));
        }
        if let Some(h) = &s.hook {
            match hook_from {
                Some(e) if merged.hook.as_ref() != Some(h) => {
                    return Err(clash("hook", e, "their [service.hook] differ; set it once, on one entry".into()))
                }
                Some(_) => {}
                None => {
                    merged.hook = Some(h.clone());
                    hook_from = Some(i);
                }
            }
        }
        if let Some(k) = s.keep_revisions {
            match keep_from {
                Some(e) if merged.keep_revisions != Some(k) => {
                    return Err(clash(
                        "keep_revisions",
                        e,
                        "their keep_revisions differ; set it once, on one entry".into(),
                    ))
                }
                Some(_) => {}
                None => {
                    merged.keep_revisions = Some(k);
                    keep_from = Some(i);
                }
            }
        }
        let Some(theirs) = &s.smoke else { continue };
        let Some(e) = smoke_from else {
            merged.smoke = Some(theirs.clone());
            smoke_from = Some(i);
            continue;
        };
        let ours = merged.smoke.as_mut().expect("smoke_from names an entry with a smoke test");
        if let Some(key) = smoke_difference(ours, theirs) {
            return Err(clash(
                &format!("smoke.{key}"),
                e,
                format!("their smoke tests differ in {key}, and verify runs every entry's checks as one smoke test; give both the same {key} or put every check under one entry's [service.smoke]"),
            ));
        }
        ours.checks.extend(theirs.checks.iter().cloned());
        if ours.read_after_write.is_none() {
            ours.read_after_write = theirs.read_after_write.clone();
        }
    }
    Ok(merged)
}

/// The first setting (other than the checks) in which two smoke tests differ, if any; two
/// read-after-write probes differ even when equal (one probe per service).
fn smoke_difference(a: &SmokeConfig, b: &SmokeConfig) -> Option<&'static str> {
    [
        ("url", a.url == b.url),
        ("test_url", a.test_url == b.test_url),
        ("test_headers", a.test_headers == b.test_headers),
        ("attempts", a.attempts == b.attempts),
        ("interval_ms", a.interval_ms == b.interval_ms),
        ("timeout_ms", a.timeout_ms == b.timeout_ms),
        ("consecutive", a.consecutive == b.consecutive),
        ("target_group_arn", a.target_group_arn == b.target_group_arn),
        ("max_body_bytes", a.max_body_bytes == b.max_body_bytes),
        ("read_after_write", a.read_after_write.is_none() || b.read_after_write.is_none()),
    ]
    .into_iter()
    .find(|(_, same)| !same)
    .map(|(key, _)| key)
}

fn parse_hook(t: Table, path: &str, source: &str) -> Result<HookConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let names = f.req_str_array("stages")?;
    if names.is_empty() {
        return Err(f.err("stages", format!("empty: list the stages to check at, of {:?}", Stage::checking())));
    }
    let mut stages = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let key = format!("stages[{j}]");
        let stage = Stage::parse(name).ok_or_else(|| f.err(&key, format!("{name:?} is not an ECS lifecycle stage")))?;
        if stage.listener().is_none() {
            return Err(f.err(
                &key,
                format!(
                    "pushdeploy checks nothing at {name}: green serves no traffic yet there; use {:?}",
                    Stage::checking()
                ),
            ));
        }
        if stages.contains(&stage) {
            return Err(f.err(&key, format!("{name} is listed twice")));
        }
        stages.push(stage);
    }
    stages.sort();
    let timeout_minutes = f.opt_int("timeout_minutes", 1, 1440)?.unwrap_or(1440) as u32;
    let timeout_ms = u64::from(timeout_minutes) * 60_000;
    let stuck_ms = match f.opt_int("stuck_minutes", 1, 1439)? {
        Some(m) => m as u64 * 60_000,
        None => (timeout_ms / 2).min(crate::hook::DEFAULT_STUCK_MS),
    };
    // The answer after the budget is spent comes one call-back later (ECS's default delay when
    // the config cannot be read); it must still come before ECS's timeout.
    if stuck_ms + crate::hook::DEFAULT_CALLBACK_MS > timeout_ms {
        return Err(f.err(
            "stuck_minutes",
            format!(
                "{} min leaves no call-back before the hook's {timeout_minutes} min timeout: ECS's timeout action would decide instead of pushdeploy; lower it below timeout_minutes",
                stuck_ms / 60_000
            ),
        ));
    }
    f.finish()?;
    Ok(HookConfig { stages, timeout_minutes, stuck_ms })
}

fn http_url(f: &Fields<'_>, key: &str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
        return Err(f.err(key, format!("{url:?} is not an http:// or https:// URL")));
    }
    Ok(())
}

fn parse_smoke(t: Table, path: &str, source: &str) -> Result<SmokeConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let url = f.req_str("url")?;
    http_url(&f, "url", &url)?;
    let test_url = f.opt_str("test_url")?;
    if let Some(u) = &test_url {
        http_url(&f, "test_url", u)?;
    }
    let test_headers = header_table(&mut f, "test_headers")?;
    let attempts = f.opt_int("attempts", 1, 1000)?.unwrap_or(10) as u32;
    let interval_ms = f.opt_int("interval_ms", 0, 600_000)?.unwrap_or(3000) as u64;
    let timeout_ms = f.opt_int("timeout_ms", 1, 600_000)?.unwrap_or(5000) as u64;
    let consecutive = f.opt_int("consecutive", 1, 1000)?.unwrap_or(3) as u32;
    if consecutive > attempts {
        return Err(
            f.err("consecutive", format!("{consecutive} passing rounds can never happen in {attempts} attempts"))
        );
    }
    let target_group_arn = f.opt_str("target_group_arn")?;
    if let Some(arn) = &target_group_arn {
        if !arn.starts_with("arn:") || !arn.contains(":targetgroup/") {
            return Err(f.err("target_group_arn", format!("{arn:?} is not a target group ARN")));
        }
    }
    let mut checks = Vec::new();
    for (i, t) in f.array_of_tables("check")?.unwrap_or_default().into_iter().enumerate() {
        checks.push(parse_check(t, &format!("{path}.check[{i}]"), source)?);
    }
    if checks.is_empty() {
        return Err(f.err("check", "no [[service.smoke.check]]: a smoke test needs at least one check".into()));
    }
    let max_body_bytes = f.opt_int("max_body_bytes", 1, 64 * 1024 * 1024)?.unwrap_or(1024 * 1024) as usize;
    let read_after_write = match f.table("read_after_write")? {
        Some(t) => Some(parse_read_after_write(t, &format!("{path}.read_after_write"), source)?),
        None => None,
    };
    let smoke = SmokeConfig {
        url,
        test_url,
        test_headers,
        attempts,
        interval_ms,
        timeout_ms,
        consecutive,
        target_group_arn,
        checks,
        max_body_bytes,
        read_after_write,
    };
    if let Some(clear) = crate::secrets::credential_in_clear(&smoke) {
        return Err(f.err(
            clear.url_key,
            format!(
                "{:?} is not https://, and {} carries a credential, which would cross the network in clear text: use the load balancer's HTTPS listener (http:// is accepted only for 127.0.0.1 and localhost)",
                crate::smoke::client::without_query(clear.url),
                f.key(&clear.header)
            ),
        ));
    }
    f.finish()?;
    Ok(smoke)
}

fn parse_read_after_write(t: Table, path: &str, source: &str) -> Result<ReadAfterWriteConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let write_path = f.req_str("write_path")?;
    relative_path(&f, "write_path", &write_path)?;
    let write_method = f.opt_str("write_method")?.unwrap_or_else(|| "POST".into()).to_ascii_uppercase();
    if !["POST", "PUT", "PATCH"].contains(&write_method.as_str()) {
        return Err(f.err("write_method", format!("{write_method:?} does not write: use POST, PUT or PATCH")));
    }
    let write_body = f.opt_str("write_body")?.unwrap_or_else(|| r#"{"marker":"{marker}"}"#.into());
    if !write_body.contains("{marker}") {
        return Err(f.err("write_body", "must contain {marker}, or the reads could never find what was written".into()));
    }
    let read_path = f.req_str("read_path")?;
    relative_path(&f, "read_path", &read_path)?;
    let reads = f.opt_int("reads", 1, 100)?.unwrap_or(6) as u32;
    let headers = header_table(&mut f, "headers")?;
    let delete_path = f.opt_str("delete_path")?;
    let id_pointer = f.opt_str("id_pointer")?;
    if let Some(d) = &delete_path {
        relative_path(&f, "delete_path", d)?;
        if d.contains("{id}") && id_pointer.is_none() {
            return Err(f.err(
                "id_pointer",
                "delete_path uses {id}: say where the id is in the write's answer, e.g. \"/id\"".into(),
            ));
        }
    }
    if let Some(p) = &id_pointer {
        if !p.starts_with('/') {
            return Err(f.err("id_pointer", format!("{p:?} is not a JSON pointer (it starts with /)")));
        }
    }
    f.finish()?;
    Ok(ReadAfterWriteConfig {
        write_path,
        write_method,
        write_body,
        read_path,
        reads,
        headers,
        delete_path,
        id_pointer,
    })
}

fn relative_path(f: &Fields<'_>, key: &str, p: &str) -> Result<(), ConfigError> {
    if p.contains("://") || p.starts_with("//") || p.contains('\\') || p.chars().any(char::is_control) {
        return Err(f.err(key, "must be a path relative to the smoke url, not a URL".into()));
    }
    Ok(())
}

/// A table of request headers: each value a string, or `{ ssm = "/name" }` for a value read from
/// SSM Parameter Store. A credential header ([`crate::secrets::is_credential_header`]) must be
/// read from SSM: written here, it would be readable by everyone who can read the config, and
/// stay in every old version of the object.
fn header_table(f: &mut Fields<'_>, key: &str) -> Result<BTreeMap<String, HeaderValue>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(h) = f.table(key)? else { return Ok(out) };
    for (k, v) in h {
        let at = format!("{key}.{k}");
        let value = match v {
            Value::String(_) if crate::secrets::is_credential_header(&k) => {
                return Err(f.err(
                    &at,
                    format!(
                        "{k} carries a credential, and pushdeploy.toml (and every old version of it) is readable by all who read the config: store the value in SSM Parameter Store as a SecureString and write {k} = {{ ssm = \"/pushdeploy/<service>/<name>\" }}"
                    ),
                ))
            }
            Value::String(s) => HeaderValue::Plain(s),
            Value::Table(t) => {
                let mut r = Fields::new(t, &f.key(&at), f.source);
                if r.table.contains_key("secret") {
                    return Err(r.err(
                        "secret",
                        "Secrets Manager is not read by pushdeploy (one secrets service keeps verify small): store the value in SSM Parameter Store as a SecureString and write { ssm = \"/pushdeploy/<service>/<name>\" }".into(),
                    ));
                }
                let name = r.req_str("ssm")?;
                crate::secrets::check_parameter_name(&name).map_err(|m| r.err("ssm", format!("{name:?} {m}")))?;
                r.finish()?;
                HeaderValue::Ssm(name)
            }
            other => {
                return Err(f.err(
                    &at,
                    format!("must be a string or {{ ssm = \"/name\" }}, found {}", other.type_str()),
                ))
            }
        };
        out.insert(k, value);
    }
    Ok(out)
}

fn parse_check(t: Table, path: &str, source: &str) -> Result<CheckConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let path_s = f.req_str("path")?;
    relative_path(&f, "path", &path_s)?;
    let method = f.opt_str("method")?.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        return Err(f.err("method", format!("unknown HTTP method {method:?}")));
    }
    let headers = header_table(&mut f, "headers")?;
    let body = f.opt_str("body")?;
    let status = f.opt_int("status", 100, 599)?.unwrap_or(200) as u16;
    let contains = f.opt_str("contains")?;
    let json_pointer = f.opt_str("json_pointer")?;
    let equals = f.take("equals").map(toml_to_json);
    if equals.is_some() && json_pointer.is_none() {
        return Err(f.err("equals", "equals needs json_pointer: the value it compares".into()));
    }
    if let Some(p) = &json_pointer {
        if !(p.is_empty() || p.starts_with('/')) {
            return Err(f.err("json_pointer", format!("{p:?} is not a JSON pointer (it starts with /)")));
        }
    }
    let max_latency_ms = f.opt_int("max_latency_ms", 1, 600_000)?.map(|v| v as u64);
    f.finish()?;
    Ok(CheckConfig { path: path_s, method, headers, body, status, contains, json_pointer, equals, max_latency_ms })
}

fn toml_to_json(v: Value) -> serde_json::Value {
    match v {
        Value::String(s) => s.into(),
        Value::Integer(i) => i.into(),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into),
        Value::Boolean(b) => b.into(),
        Value::Datetime(d) => d.to_string().into(),
        Value::Array(a) => a.into_iter().map(toml_to_json).collect(),
        Value::Table(t) => t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect(),
    }
}

/// Keeps error messages readable when they quote hostile input.
fn cap(message: String) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message;
    }
    let cut = (0..=MAX).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
    format!("{}…", &message[..cut])
}

/// ECS names: letters, digits, hyphens and underscores, 1 to 255.
fn is_ecs_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// A table being read key by key, so leftovers can be reported as unknown keys.
struct Fields<'a> {
    table: Table,
    path: String,
    source: &'a str,
}

impl<'a> Fields<'a> {
    fn new(table: Table, path: &str, source: &'a str) -> Self {
        Self { table, path: path.to_string(), source }
    }

    fn key(&self, k: &str) -> String {
        // TOML allows an empty key (`"" = 1`); shown quoted, so an error always names a key.
        let k = if k.is_empty() { "\"\"" } else { k };
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn err(&self, k: &str, message: String) -> ConfigError {
        ConfigError { file: self.source.to_string(), key: crate::image::truncate(&self.key(k)), message: cap(message) }
    }

    fn take(&mut self, k: &str) -> Option<Value> {
        self.table.remove(k)
    }

    fn type_err(&self, k: &str, want: &str, v: &Value) -> ConfigError {
        self.err(k, format!("must be {want}, found {}", v.type_str()))
    }

    fn opt_str(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.type_err(k, "a string", &v)),
        }
    }

    fn req_str(&mut self, k: &str) -> Result<String, ConfigError> {
        match self.opt_str(k)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.err(k, "must not be empty".into())),
            None => Err(self.err(k, "missing (required)".into())),
        }
    }

    fn opt_name(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        let v = self.opt_str(k)?;
        if let Some(s) = &v {
            if !is_ecs_name(s) {
                return Err(self.err(k, format!("{s:?} is not a valid name (letters, digits, - and _, at most 255)")));
            }
        }
        Ok(v)
    }

    /// A cluster, by name or by ARN (`arn:aws:ecs:<region>:<account>:cluster/<name>`): its name.
    fn opt_cluster(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        match self.opt_str(k)? {
            Some(s) if s.starts_with("arn:") => {
                crate::event::parse_cluster_arn(&s).map(Some).map_err(|e| self.err(k, e.0))
            }
            Some(s) if !is_ecs_name(&s) => {
                Err(self.err(k, format!("{s:?} is not a valid name (letters, digits, - and _, at most 255)")))
            }
            other => Ok(other),
        }
    }

    /// A service, by name or by ARN in either of ECS's forms (long `…:service/<cluster>/<name>`,
    /// short `…:service/<name>`): the cluster a long ARN names, and the name.
    fn req_service(&mut self, k: &str) -> Result<(Option<String>, String), ConfigError> {
        match self.opt_str(k)? {
            Some(s) if s.starts_with("arn:") => {
                crate::event::parse_service_arn(&s).map(|a| (a.cluster, a.service)).map_err(|e| self.err(k, e.0))
            }
            Some(s) if is_ecs_name(&s) => Ok((None, s)),
            Some(s) => Err(self.err(k, format!("{s:?} is not a valid name (letters, digits, - and _, at most 255)"))),
            None => Err(self.err(k, "missing (required)".into())),
        }
    }

    fn opt_bool(&mut self, k: &str) -> Result<Option<bool>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err(self.type_err(k, "true or false", &v)),
        }
    }

    fn req_name(&mut self, k: &str) -> Result<String, ConfigError> {
        match self.opt_name(k)? {
            Some(s) => Ok(s),
            None => Err(self.err(k, "missing (required)".into())),
        }
    }

    fn opt_int(&mut self, k: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Integer(i)) if (min..=max).contains(&i) => Ok(Some(i)),
            Some(Value::Integer(i)) => Err(self.err(k, format!("{i} is out of range {min}..={max}"))),
            Some(v) => Err(self.type_err(k, "an integer", &v)),
        }
    }

    fn opt_str_array(&mut self, k: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.opt_array(k, "a string", "an array of strings", |v| match v {
            Value::String(s) => Ok(s),
            other => Err(other),
        })
    }

    /// An optional array whose items `item` accepts; a rejected item is named by its index.
    fn opt_array<T>(
        &mut self,
        k: &str,
        item_kind: &str,
        array_kind: &str,
        item: impl Fn(Value) -> Result<T, Value>,
    ) -> Result<Option<Vec<T>>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.into_iter().enumerate() {
                    out.push(item(v).map_err(|other| self.type_err(&format!("{k}[{i}]"), item_kind, &other))?);
                }
                Ok(Some(out))
            }
            Some(v) => Err(self.type_err(k, array_kind, &v)),
        }
    }

    fn req_str_array(&mut self, k: &str) -> Result<Vec<String>, ConfigError> {
        self.opt_str_array(k)?.ok_or_else(|| self.err(k, "missing (required)".into()))
    }

    fn table(&mut self, k: &str) -> Result<Option<Table>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(v) => Err(self.type_err(k, "a table", &v)),
        }
    }

    fn array_of_tables(&mut self, k: &str) -> Result<Option<Vec<Table>>, ConfigError> {
        self.opt_array(k, "a table", "an array of tables ([[...]])", |v| match v {
            Value::Table(t) => Ok(t),
            other => Err(other),
        })
    }

    /// Reports the first key nobody asked for.
    fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            Some(k) => Err(self.err(k, "unknown key".into())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODO: &str = include_str!("../examples/pushdeploy.toml");

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "test.toml")
    }

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

    fn key_of(s: &str) -> String {
        let e = parse(s).unwrap_err();
        assert_eq!(e.file, "test.toml");
        assert!(!e.message.is_empty());
        e.key
    }

    const MIN: &str = "[[service]]\nname='a'\nservice='s'\ncluster='c'\nrepository='r'\ntags=['latest']\n";

    #[test]
    fn errors_name_the_key() {
        assert_eq!(key_of(&MIN.replace("tags=['latest']", "tags=[]")), "service[0].tags");
        assert_eq!(key_of(&MIN.replace("tags=['latest']", "tags=['v[1]']")), "service[0].tags[0]");
        assert_eq!(key_of(&format!("{MIN}colour='red'\n")), "service[0].colour");
        assert_eq!(key_of(&MIN.replace("repository='r'\n", "")), "service[0].repository");
        assert_eq!(key_of(&MIN.replace("cluster='c'\n", "")), "service[0].cluster");
        assert_eq!(key_of(&format!("{MIN}strategy='yolo'\n")), "service[0].strategy");
        assert_eq!(key_of(&format!("{MIN}base='repo'\n")), "service[0].base");
        assert_eq!(key_of(&format!("{MIN}base='family'\nstrategy='force-new-deployment'\n")), "service[0].base");
        assert_eq!(key_of(&format!("[defaults]\nbase='x'\n{MIN}")), "defaults.base");
        assert_eq!(key_of(&format!("{MIN}keep_revisions=0\n")), "service[0].keep_revisions");
        // Found by the fuzzer: an empty key is still named.
        assert_eq!(key_of("\"\" = \"\"\n"), "\"\"");
        assert_eq!(key_of(&format!("{MIN}{}", MIN.replace("service='s'", "service='t'"))), "service[1].name");
        assert_eq!(key_of(&MIN.replace("tags=['latest']", "tags='latest'")), "service[0].tags");
        assert_eq!(key_of(&format!("[defaults]\nregion='x'\n{MIN}")), "defaults.region");
        assert_eq!(key_of(&MIN.replace("name='a'", "name='../a'")), "service[0].name");
        assert_eq!(key_of("x = 1\nx = 2\n"), "(syntax)");
        assert_eq!(key_of(""), "service");
        assert_eq!(key_of(&format!("{MIN}[service.smoke]\nurl='http://x/'\n")), "service[0].smoke.check");
        assert_eq!(
            key_of(&format!(
                "{MIN}[service.smoke]\nurl='http://x/'\n[[service.smoke.check]]\npath='/'\nstatus='200'\n"
            )),
            "service[0].smoke.check[0].status"
        );
    }

    #[test]
    fn a_service_may_be_named_by_either_form_of_its_arn() {
        let svc = |service: &str, cluster: &str| {
            format!("{cluster}[[service]]\nname='b'\nservice='{service}'\nrepository='r'\ntags=['latest']\n")
        };
        const A: &str = "arn:aws:ecs:ap-southeast-2:123456789012";
        let long = parse(&svc(&format!("{A}:service/todo-cluster/todo-backend"), "")).unwrap();
        assert_eq!(
            (long.services[0].cluster.as_str(), long.services[0].service.as_str()),
            ("todo-cluster", "todo-backend")
        );
        // The short form names no cluster: it comes from the service's or [defaults]'s `cluster`.
        let short = parse(&svc(&format!("{A}:service/todo-backend"), "[defaults]\ncluster='todo-cluster'\n")).unwrap();
        assert_eq!(
            (short.services[0].cluster.as_str(), short.services[0].service.as_str()),
            ("todo-cluster", "todo-backend")
        );
        assert_eq!(short.clusters_of("todo-backend"), ["todo-cluster"]);
        assert!(short.clusters_of("todo-frontend").is_empty());
        let by_arn = parse(&svc(
            &format!("{A}:service/todo-backend"),
            &format!("[defaults]\ncluster='{A}:cluster/todo-cluster'\n"),
        ))
        .unwrap();
        assert_eq!(by_arn.services[0].cluster, "todo-cluster");
        let e = parse(&svc(&format!("{A}:service/todo-backend"), "")).unwrap_err();
        assert_eq!((e.key.as_str(), e.message.contains("missing")), ("service[0].cluster", true), "{e}");
        let e =
            parse(&svc(&format!("{A}:service/prod/todo-backend"), "[defaults]\ncluster='todo-cluster'\n")).unwrap_err();
        assert!(e.message.contains("names cluster \"prod\""), "{e}");
        let e = parse(&svc(&format!("{A}:service-deployment/c/s/1"), "")).unwrap_err();
        assert!(e.message.contains("not an ECS service ARN"), "{e}");
        let e = parse(&svc("todo-backend", &format!("[defaults]\ncluster='{A}:service/x'\n"))).unwrap_err();
        assert!(e.message.contains("not an ECS cluster ARN"), "{e}");
    }

    #[test]
    fn smoke_budget_must_fit_the_verify_timeout() {
        let c = parse(TODO).unwrap();
        // 10 attempts × (3000 ms interval + 5000 ms timeout × 1 check) = 80 s per service.
        assert_eq!(c.services[0].smoke.as_ref().unwrap().budget_ms(), 80_000);
        assert!(c.check_clusters(&["todo-cluster"]).is_ok());
        let e = c.check_clusters(&["prod"]).unwrap_err();
        assert_eq!(e.key, "service[0].cluster");
        assert!(e.message.contains("not a cluster this stack manages"), "{e}");
        // The backend adds its read-after-write probe: (6 reads + 2) × 5000 ms.
        assert_eq!(c.services[1].smoke.as_ref().unwrap().budget_ms(), 120_000);
        assert!(c.check_smoke_budget(120_000).is_ok());
        let e = c.check_smoke_budget(119_999).unwrap_err();
        assert_eq!(e.key, "service[1].smoke");
        assert!(e.message.contains("120000 ms does not fit in the 119999 ms"), "{e}");
        let e = c.check_smoke_budget(79_999).unwrap_err();
        assert_eq!(e.key, "service[0].smoke");
        assert!(e.message.contains("80000 ms does not fit in the 79999 ms"), "{e}");
    }

    #[test]
    fn read_after_write_keys_are_checked() {
        let smoke = "[service.smoke]\nurl='http://x/api/'\n[[service.smoke.check]]\npath='todoItems'\n[service.smoke.read_after_write]\n";
        let ok = format!("{MIN}{smoke}write_path='todoItems'\nread_path='todoItems'\ndelete_path='todoItems/{{id}}'\nid_pointer='/id'\n");
        let c = parse(&ok).unwrap();
        let p = c.services[0].smoke.as_ref().unwrap().read_after_write.clone().unwrap();
        assert_eq!((p.write_method.as_str(), p.reads), ("POST", 6));
        assert!(p.write_body.contains("{marker}"));
        assert_eq!(key_of(&ok.replace("id_pointer='/id'\n", "")), "service[0].smoke.read_after_write.id_pointer");
        assert_eq!(key_of(&format!("{ok}write_body='{{}}'\n")), "service[0].smoke.read_after_write.write_body");
        assert_eq!(key_of(&format!("{ok}write_method='GET'\n")), "service[0].smoke.read_after_write.write_method");
        assert_eq!(
            key_of(&ok.replace("read_path='todoItems'", "read_path='http://evil/'")),
            "service[0].smoke.read_after_write.read_path"
        );
    }

    #[test]
    fn hook_stages_need_a_smoke_test_a_test_url_and_a_timeout_that_fits() {
        let smoke = "[service.smoke]\nurl='http://prod/'\ntest_url='http://test:8080/'\ntest_headers={x-pushdeploy-test='1'}\nattempts=5\ninterval_ms=1500\ntimeout_ms=2000\nconsecutive=2\n[[service.smoke.check]]\npath='/'\n";
        let hook =
            "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT','POST_PRODUCTION_TRAFFIC_SHIFT']\ntimeout_minutes=5\n";
        let c = parse(&format!("{MIN}{smoke}{hook}")).unwrap();
        let s = &c.services[0];
        let h = s.hook.as_ref().unwrap();
        assert_eq!(h.stages, vec![Stage::PostTestTrafficShift, Stage::PostProductionTrafficShift]);
        assert_eq!(h.timeout_ms(), 300_000);
        assert_eq!(h.stuck_ms, 150_000, "by default half the timeout");
        let day = parse(&format!("{MIN}{smoke}{}", hook.replace("timeout_minutes=5\n", ""))).unwrap();
        assert_eq!(day.services[0].hook.as_ref().unwrap().stuck_ms, 30 * 60_000, "at most 30 minutes by default");
        let set = parse(&format!("{MIN}{smoke}{hook}stuck_minutes=4\n")).unwrap();
        assert_eq!(set.services[0].hook.as_ref().unwrap().stuck_ms, 240_000);
        // The FAILED after a spent budget comes a call-back later, and must come before ECS's timeout.
        let e = parse(&format!("{MIN}{smoke}{hook}stuck_minutes=5\n")).unwrap_err();
        assert_eq!(e.key, "service[0].hook.stuck_minutes");
        assert!(e.message.contains("ECS's timeout action would decide"), "{e}");
        let test = s.smoke.as_ref().unwrap().through(Listener::Test);
        assert_eq!(test.url, "http://test:8080/");
        assert_eq!(test.checks[0].headers.get("x-pushdeploy-test"), Some(&HeaderValue::Plain("1".into())));
        let prod = s.smoke.as_ref().unwrap().through(Listener::Production);
        assert_eq!(prod.url, "http://prod/");
        assert!(prod.checks[0].headers.is_empty());

        assert_eq!(key_of(&format!("{MIN}{hook}")), "service[0].smoke");
        assert_eq!(
            key_of(&format!("{MIN}{}{hook}", smoke.replace("test_url='http://test:8080/'\n", ""))),
            "service[0].smoke.test_url"
        );
        assert_eq!(key_of(&format!("{MIN}{smoke}")), "service[0].smoke.test_url", "a test URL only a hook uses");
        assert_eq!(
            key_of(&format!("{MIN}{smoke}{}", hook.replace("'POST_TEST_TRAFFIC_SHIFT',", "'PRE_SCALE_UP',"))),
            "service[0].hook.stages[0]"
        );
        assert_eq!(
            key_of(&format!("{MIN}{smoke}{}", hook.replace("'POST_TEST_TRAFFIC_SHIFT'", "'SOON'"))),
            "service[0].hook.stages[0]"
        );
        assert_eq!(key_of(&format!("{MIN}{smoke}[service.hook]\nstages=[]\n")), "service[0].hook.stages");
        // 5 × (2 s + 2000 ms × 1 check) = 20 s: a 1-minute timeout fits, 30 attempts do not.
        assert!(parse(&format!("{MIN}{smoke}{}", hook.replace("=5", "=1"))).is_ok());
        let e = parse(&format!("{MIN}{}{}", smoke.replace("attempts=5", "attempts=30"), hook.replace("=5", "=1")))
            .unwrap_err();
        assert_eq!(e.key, "service[0].hook.timeout_minutes");
        assert!(e.message.contains("120000 ms at worst"), "{e}");
        // Each invocation runs one round: 2000 ms must fit in verify's time, not the 20 s whole.
        assert!(c.check_smoke_budget(2_000).is_ok());
        assert_eq!(c.check_smoke_budget(1_999).unwrap_err().key, "service[0].smoke");
    }

    const SMOKE: &str = "[service.smoke]\nurl='https://alb/api/'\n[[service.smoke.check]]\npath='todoItems'\n";

    #[test]
    fn a_credential_header_is_read_from_ssm_never_written_in_the_config() {
        let with = |headers: &str| format!("{MIN}{SMOKE}headers={{ {headers} }}\n");
        let c = parse(&with("Authorization={ssm='/pushdeploy/todo/api-token'}, Accept='application/json'")).unwrap();
        let h = &c.services[0].smoke.as_ref().unwrap().checks[0].headers;
        assert_eq!(h["Authorization"], HeaderValue::Ssm("/pushdeploy/todo/api-token".into()));
        assert_eq!(h["Accept"], HeaderValue::Plain("application/json".into()));
        // A reference may name any header, a credential or not.
        assert!(parse(&with("X-Tenant={ssm='/pushdeploy/todo/tenant'}")).is_ok());

        for header in ["Authorization", "X-Api-Key", "Cookie", "X-Auth-Token", "proxy-authorization"] {
            let e = parse(&with(&format!("{header}='Bearer s3cr3t'"))).unwrap_err();
            assert_eq!(e.key, format!("service[0].smoke.check[0].headers.{header}"));
            assert!(e.message.contains("SSM Parameter Store as a SecureString"), "{e}");
            assert!(e.message.contains(&format!("{header} = {{ ssm = ")), "the fix, spelled out: {e}");
            assert!(!e.to_string().contains("s3cr3t"), "the value is not quoted back: {e}");
        }
        let e = parse(&format!(
            "{MIN}{SMOKE}[service.smoke.read_after_write]\nwrite_path='todoItems'\nread_path='todoItems'\nheaders={{Authorization='Bearer s3cr3t'}}\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "service[0].smoke.read_after_write.headers.Authorization");
        let hook = "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT']\ntimeout_minutes=10\n";
        let e = parse(&format!(
            "{MIN}{}{hook}",
            SMOKE.replace("[[", "test_url='https://alb:8443/api/'\ntest_headers={X-Test-Token='s3cr3t'}\n[[")
        ))
        .unwrap_err();
        assert_eq!(e.key, "service[0].smoke.test_headers.X-Test-Token");

        for (headers, key, why) in [
            ("Authorization={ssm=''}", "headers.Authorization.ssm", "empty"),
            ("Authorization={ssm='/a b'}", "headers.Authorization.ssm", "contains ' '"),
            ("Authorization={ssm=1}", "headers.Authorization.ssm", "must be a string"),
            ("Authorization={}", "headers.Authorization.ssm", "missing"),
            ("Authorization={ssm='/a', kms='k'}", "headers.Authorization.kms", "unknown key"),
            (
                "Authorization={secret='arn:aws:secretsmanager:r:1:secret:n-AbCdEf'}",
                "headers.Authorization.secret",
                "SSM Parameter Store",
            ),
            ("Authorization=1", "headers.Authorization", "must be a string or { ssm"),
        ] {
            let e = parse(&with(headers)).unwrap_err();
            assert_eq!(e.key, format!("service[0].smoke.check[0].{key}"), "{headers}");
            assert!(e.message.contains(why), "{headers}: {e}");
        }
    }

    #[test]
    fn a_credential_header_never_goes_over_plain_http() {
        let reference = "headers={Authorization={ssm='/pushdeploy/todo/api-token'}}\n";
        let on = |url: &str| format!("{MIN}{}{reference}", SMOKE.replace("https://alb/api/", url));
        let e = parse(&on("http://todo-alb-1.elb.amazonaws.com/api/")).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.url");
        assert!(e.message.contains("service[0].smoke.check[0].headers.Authorization carries a credential"), "{e}");
        assert!(e.message.contains("HTTPS listener"), "{e}");
        // Loopback only: clear text that never reaches a network (the tests' stand-in).
        assert!(parse(&on("http://127.0.0.1:8080/api/")).is_ok());
        assert!(parse(&on("http://localhost:8080/api/")).is_ok());
        // A non-credential header may go anywhere; so may a credential-free smoke test.
        assert!(parse(&format!("{MIN}{}headers={{Accept='text/html'}}\n", SMOKE.replace("https", "http"))).is_ok());

        // Checks also run through the test listener when a hook checks there.
        let hook = "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT']\ntimeout_minutes=10\n";
        let test_url = |url: &str, headers: &str| {
            format!("{MIN}{}{headers}{hook}", SMOKE.replace("[[", &format!("test_url='{url}'\n[[")))
        };
        assert!(parse(&test_url("https://alb:8443/api/", reference)).is_ok());
        let e = parse(&test_url("http://alb:8080/api/", reference)).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.test_url");
        let test_token = |url: &str| {
            format!(
                "{MIN}{}{hook}",
                SMOKE.replace(
                    "https://alb/api/'\n",
                    &format!("http://alb/api/'\ntest_url='{url}'\ntest_headers={{X-Test-Token={{ssm='/p/t'}}}}\n")
                )
            )
        };
        // test_headers go only through the test URL: the production URL may stay http://.
        assert!(parse(&test_token("https://alb:8443/api/")).is_ok());
        assert_eq!(parse(&test_token("http://alb:8080/api/")).unwrap_err().key, "service[0].smoke.test_url");
    }

    #[test]
    fn response_bodies_at_their_worst_must_fit_in_verifys_memory() {
        let text = |cap: u64| {
            format!("[[service]]\nname='b'\nservice='b'\ncluster='c'\nrepository='r'\ntags=['latest']\n[service.smoke]\nurl='https://x/'\nmax_body_bytes={cap}\n[[service.smoke.check]]\npath='/a'\n[[service.smoke.check]]\npath='/b'\n")
        };
        let c = Config::parse(&text(1024 * 1024), "t.toml").unwrap();
        assert_eq!(c.services[0].smoke.as_ref().unwrap().peak_body_bytes(), 2 * 1024 * 1024);
        assert!(c.check_memory(128).is_ok());
        // 2 checks × 64 MiB × 3 = 384 MiB: far beyond 128 MB.
        let c = Config::parse(&text(64 * 1024 * 1024), "t.toml").unwrap();
        let e = c.check_memory(128).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.max_body_bytes");
        assert!(e.message.contains("384 MiB does not fit in the 80 MiB"), "{}", e.message);
        assert!(c.check_memory(1024).is_ok());
        let limits = Limits { verify_memory_mb: Some(128), ..Default::default() };
        assert!(c.check_limits(&limits).is_err());
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

    #[test]
    fn a_family_base_names_its_trusted_registrants() {
        const TF: &str = "arn:aws:iam::123456789012:role/terraform";
        let family = format!("{MIN}base='family'\n");
        // Without it, anyone who may register a revision would choose production's settings.
        let e = parse(&family).unwrap_err();
        assert_eq!(e.key, "service[0].trusted_registrants");
        assert!(e.message.starts_with("missing: base = \"family\" copies the family's newest revision"), "{e}");
        let c = parse(&format!("{family}trusted_registrants=['{TF}']\nhold_base_changes=true\n")).unwrap();
        let s = &c.services[0];
        assert_eq!(s.trusted_registrants.iter().map(|p| p.as_str()).collect::<Vec<_>>(), [TF]);
        assert!(s.hold_base_changes);
        assert!(s.trusted_registrants[0].matches("arn:aws:sts::123456789012:assumed-role/terraform/apply"));

        // [defaults] give every service its list and hold; a service's own list replaces it.
        let d = format!("[defaults]\nbase='family'\ntrusted_registrants=['{TF}']\nhold_base_changes=true\n");
        let c = parse(&format!("{d}{MIN}")).unwrap();
        assert_eq!(c.services[0].trusted_registrants[0].as_str(), TF);
        assert!(c.services[0].hold_base_changes);
        let other = "arn:aws:sts::123456789012:assumed-role/infra/*";
        let c = parse(&format!("{d}{MIN}trusted_registrants=['{other}']\nhold_base_changes=false\n")).unwrap();
        assert_eq!(c.services[0].trusted_registrants.iter().map(|p| p.as_str()).collect::<Vec<_>>(), [other]);
        assert!(!c.services[0].hold_base_changes);
        // [defaults] may name registrants for the family services among others; a service that
        // copies what it runs may not set them (they would do nothing).
        let c = parse(&format!("[defaults]\ntrusted_registrants=['{TF}']\n{MIN}")).unwrap();
        assert_eq!(c.services[0].base, Base::Service);
        assert_eq!(key_of(&format!("{MIN}trusted_registrants=['{TF}']\n")), "service[0].trusted_registrants");
        assert_eq!(key_of(&format!("{MIN}hold_base_changes=true\n")), "service[0].hold_base_changes");

        assert_eq!(key_of(&format!("{family}trusted_registrants=[]\n")), "service[0].trusted_registrants");
        assert_eq!(key_of(&format!("{family}trusted_registrants='{TF}'\n")), "service[0].trusted_registrants");
        let e = parse(&format!("{family}trusted_registrants=['{TF}', 'arn:aws:iam::*:role/terraform']\n")).unwrap_err();
        assert_eq!(e.key, "service[0].trusted_registrants[1]");
        assert!(e.message.contains("12 digits"), "{e}");
        assert_eq!(key_of(&format!("[defaults]\ntrusted_registrants=['*']\n{MIN}")), "defaults.trusted_registrants[0]");
        assert_eq!(
            key_of(&format!("{family}trusted_registrants=['{TF}']\nhold_base_changes='yes'\n")),
            "service[0].hold_base_changes"
        );
    }

    #[test]
    fn entries_for_one_ecs_service_are_judged_together_or_refused_naming_both() {
        let entry = |name: &str, extra: &str| {
            format!("[[service]]\nname='{name}'\nservice='todo'\ncluster='c'\nrepository='{name}'\ntags=['latest']\ncontainers=['{name}']\n{extra}")
        };
        let smoke =
            |url: &str, path: &str| format!("[service.smoke]\nurl='{url}'\n[[service.smoke.check]]\npath='{path}'\n");
        let paths = |c: &Config| -> Vec<String> {
            let s = c.by_ecs_service("c", "todo").unwrap().smoke.as_ref().unwrap();
            s.checks.iter().map(|k| k.path.clone()).collect()
        };
        // The first entry has no smoke test: the service is still judged by the second's.
        let c = parse(&format!("{}{}", entry("web", ""), entry("api", &smoke("http://x/", "/api")))).unwrap();
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().name, "web", "named by its first entry");
        assert_eq!(paths(&c), ["/api"]);
        // Both have one: every check runs, and the budget counts them all.
        let both = format!("{}{}", entry("web", &smoke("http://x/", "/")), entry("api", &smoke("http://x/", "/api")));
        let c = parse(&both).unwrap();
        assert_eq!(paths(&c), ["/", "/api"]);
        // 10 attempts × (3000 ms + 5000 ms × 2 checks) = 130 s, where each entry alone takes 80 s.
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().smoke.as_ref().unwrap().budget_ms(), 130_000);
        assert_eq!(c.check_smoke_budget(129_999).unwrap_err().key, "service[0].smoke");
        // keep_revisions and a hook set once apply to the service.
        let c = parse(&format!("{}{}", entry("web", "keep_revisions=5\n"), entry("api", ""))).unwrap();
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().keep_revisions, Some(5));
        let c = parse(&format!("{}{}", entry("web", ""), entry("api", "keep_revisions=5\n"))).unwrap();
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().keep_revisions, Some(5));

        // What cannot be merged is refused, naming both entries and the key.
        for (second, key, why) in [
            (entry("api", &smoke("http://y/", "/api")), "service[1].smoke.url", "their smoke tests differ in url"),
            (entry("api", "strategy='force-new-deployment'\n"), "service[1].strategy", "the same strategy"),
        ] {
            let e = parse(&format!("{}{second}", entry("web", &smoke("http://x/", "/")))).unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.message.starts_with("service[0] (web) and service[1] (api) both deploy to c/todo"), "{e}");
            assert!(e.message.contains(why), "{e}");
        }
        let e = parse(&format!("{}{}", entry("web", "keep_revisions=5\n"), entry("api", "keep_revisions=3\n")))
            .unwrap_err();
        assert_eq!(e.key, "service[1].keep_revisions");
        // Entries for different ECS services are separate, as before.
        let c = parse(&format!(
            "{}{}",
            entry("web", ""),
            entry("api", &smoke("http://x/", "/")).replace("service='todo'", "service='other'")
        ))
        .unwrap();
        assert!(c.by_ecs_service("c", "todo").unwrap().smoke.is_none());
        assert!(c.by_ecs_service("c", "other").unwrap().smoke.is_some());
    }

    #[test]
    fn defaults_apply_and_can_be_overridden() {
        let c = parse(&format!(
            "[defaults]\ncluster='d'\nstrategy='force-new-deployment'\n{}",
            MIN.replace("cluster='c'\n", "")
        ))
        .unwrap();
        assert_eq!(c.services[0].cluster, "d");
        assert_eq!(c.services[0].strategy, Strategy::ForceNewDeployment);
    }
}
