//! The smoke URL proposed from a service's load balancer: the listener rule that forwards to its
//! target group, read for the host and path a request must carry to reach it. What cannot be
//! known from the rule is said, for a `# check`. Pure.

use super::estate::{Estate, Listener, LoadBalancer, Rule, Service};

/// Where a service's smoke test would send its requests, and what to check about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeProposal {
    /// `url`: scheme, host and the rule's path.
    pub url: String,
    /// `connect_to`: the load balancer's DNS name, when the URL names another host.
    pub connect_to: Option<String>,
    /// The target group whose targets must all be healthy.
    pub target_group: String,
    /// The one check's path, under the URL's path.
    pub check_path: String,
    /// What the check path is and why it needs a look.
    pub check_path_note: String,
    /// Which listener and rule the URL was read from.
    pub source: String,
    /// What could not be known about the URL (each a `# check`).
    pub checks: Vec<String>,
    /// The load balancer is internal: verify must run in the VPC to reach it.
    pub internal: Option<String>,
}

/// What the load balancer says about a service's smoke URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeFinding {
    /// A URL, from a listener rule.
    Proposed(SmokeProposal),
    /// The service registers with no target group.
    NoLoadBalancer,
    /// Its target group is forwarded to by no HTTP or HTTPS listener rule.
    Unreached(String),
}

/// The smoke URL for `service`, from the first of its target groups.
pub fn propose_smoke(estate: &Estate, service: &Service) -> SmokeFinding {
    let Some(tg) = service.target_groups.first() else { return SmokeFinding::NoLoadBalancer };
    let mut routes: Vec<(&Listener, &Rule, &LoadBalancer)> = Vec::new();
    for l in estate.listeners.iter().filter(|l| l.protocol == "HTTPS" || l.protocol == "HTTP") {
        let Some(lb) = estate.load_balancers.iter().find(|lb| lb.arn == l.load_balancer) else { continue };
        routes.extend(l.rules.iter().filter(|r| r.forwards_to.contains(tg)).map(|r| (l, r, lb)));
    }
    // HTTPS first (what users reach), then the rule that leaves the least to guess, then priority.
    routes.sort_by_key(|(l, r, _)| (l.protocol != "HTTPS", read_rule(r).checks.len(), priority(r)));
    let Some((listener, rule, lb)) = routes.first() else { return SmokeFinding::Unreached(tg.clone()) };
    let mut proposal = from_rule(listener, rule, lb, tg);
    if service.target_groups.len() > 1 {
        proposal.checks.push(format!(
            "the service registers with {} target groups; the URL is the first's ({})",
            service.target_groups.len(),
            short_name(tg)
        ));
    }
    let health = estate.target_groups.iter().find(|t| &t.arn == tg).and_then(|t| t.health_check_path.clone());
    (proposal.check_path, proposal.check_path_note) = check_path(&proposal.url, health.as_deref());
    SmokeFinding::Proposed(proposal)
}

/// A rule's priority for sorting: the default rule last.
fn priority(r: &Rule) -> u32 {
    r.priority.parse().unwrap_or(u32::MAX)
}

/// The host, path and unknowns a rule's conditions give.
struct ReadRule {
    host: Option<String>,
    path: String,
    checks: Vec<String>,
}

fn read_rule(rule: &Rule) -> ReadRule {
    let mut out = ReadRule { host: None, path: "/".into(), checks: Vec::new() };
    for c in &rule.conditions {
        let first = c.values.first().cloned().unwrap_or_default();
        if c.values.len() > 1 {
            out.checks.push(format!(
                "the rule's {} matches any of {}; the first is used",
                c.field,
                c.values.join(", ")
            ));
        }
        match c.field.as_str() {
            "host-header" if first.contains(['*', '?']) => out.checks.push(format!(
                "the rule matches hosts {first:?}: write one host name it matches in place of the load balancer's"
            )),
            "host-header" => out.host = Some(first.to_ascii_lowercase()),
            "path-pattern" => {
                let (path, check) = base_path(&first);
                out.path = path;
                out.checks.extend(check);
            }
            other => out.checks.push(format!(
                "the rule also matches on {other} ({}), which smoke requests do not carry: add it to the check's headers or point url at another rule",
                c.values.join(", ")
            )),
        }
    }
    out
}

/// The URL path under which a path pattern's requests go: `/api/*` → `/api/`; a wildcard
/// elsewhere, or an exact path, gives its literal prefix and a check.
fn base_path(pattern: &str) -> (String, Option<String>) {
    let wild = pattern.find(['*', '?']);
    let literal = &pattern[..wild.unwrap_or(pattern.len())];
    let literal = if literal.starts_with('/') { literal.to_string() } else { format!("/{literal}") };
    let clean = wild == Some(pattern.len() - 1) && pattern.ends_with('*') && literal.ends_with('/');
    if clean {
        return (literal, None);
    }
    let why = match wild {
        Some(_) => format!("the rule's path pattern is {pattern:?}: the URL takes its part before the first wildcard; make sure the check's path matches the pattern"),
        None => format!("the rule matches the path {pattern:?} exactly, and check paths are joined under it: point the check at a path it matches"),
    };
    (literal, Some(why))
}

/// The proposal from one listener rule (the check path is filled in by the caller).
fn from_rule(listener: &Listener, rule: &Rule, lb: &LoadBalancer, tg: &str) -> SmokeProposal {
    let read = read_rule(rule);
    let https = listener.protocol == "HTTPS";
    let scheme = if https { "https" } else { "http" };
    let port = match (https, listener.port) {
        (true, 443) | (false, 80) => String::new(),
        (_, p) => format!(":{p}"),
    };
    let mut checks = read.checks;
    let (host, connect_to) = match (&read.host, https) {
        (Some(h), _) => (h.clone(), Some(lb.dns_name.clone())),
        (None, true) => {
            checks.push(format!(
                "the HTTPS listener's rule names no host, and its certificate is for your domain, not for {}: write the host name users reach in place of it (connect_to keeps the requests on the load balancer)",
                lb.dns_name
            ));
            (lb.dns_name.clone(), Some(lb.dns_name.clone()))
        }
        (None, false) => (lb.dns_name.clone(), None),
    };
    SmokeProposal {
        url: format!("{scheme}://{host}{port}{}", read.path),
        connect_to,
        target_group: tg.to_string(),
        check_path: "/".into(),
        check_path_note: String::new(),
        source: format!("{} {}:{}, rule {}", lb.name, listener.protocol, listener.port, rule.priority),
        checks,
        internal: lb.internal.then(|| lb.name.clone()),
    }
}

/// The check's path: the target group's health check path when it is under the URL's path,
/// else the URL itself; and what to look at.
fn check_path(url: &str, health: Option<&str>) -> (String, String) {
    let base = url.find("://").and_then(|s| url[s + 3..].find('/').map(|p| &url[s + 3 + p..])).unwrap_or("/");
    let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
    match health {
        Some(h) if h.starts_with(&base) => {
            let rest = &h[base.len()..];
            let path = if rest.is_empty() { "/".to_string() } else { rest.to_string() };
            (path, format!("the target group's health check path ({h}): a page that proves the new build works is better"))
        }
        Some(h) => (
            "/".into(),
            format!("the URL itself (the target group's health check path {h} is not under {base}): a page that proves the new build works, answering 200"),
        ),
        None => ("/".into(), "the URL itself: a page that proves the new build works, answering 200".into()),
    }
}

/// The last part of an ARN (`targetgroup/NAME/ID` → `NAME`), for messages.
pub fn short_name(arn: &str) -> &str {
    let mut parts = arn.rsplit('/');
    let last = parts.next().unwrap_or(arn);
    parts.next().unwrap_or(last)
}
