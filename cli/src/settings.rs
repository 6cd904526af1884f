//! What `validate` checks a config against, and where each value came from: a flag, the deployed
//! functions' settings ([`crate::deployed`]), or the template's defaults when they cannot be read.
//! Pure: the values the functions check with, as they read them (`PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS`
//! and the rest), held to what Lambda gives verify (its Timeout, MemorySize and VpcConfig).

use pushdeploy::config::Limits;
use pushdeploy::domain::timing::smoke_budget_ms;
use pushdeploy::rules::pass_role::PassableRoles;

use crate::deployed::{Deployed, FunctionSettings};

/// The template's VerifyTimeoutSeconds default.
pub const TEMPLATE_VERIFY_TIMEOUT: u64 = 300;
/// The template's VerifyMemorySize default.
pub const TEMPLATE_VERIFY_MEMORY: u64 = 128;

/// What the operator gave on the command line; each given value overrides the deployed one.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--cluster`, repeated.
    pub clusters: Vec<String>,
    /// `--verify-timeout`.
    pub verify_timeout: Option<u64>,
    /// `--verify-memory`.
    pub verify_memory: Option<u64>,
    /// `--verify-in-vpc`.
    pub verify_in_vpc: bool,
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where from, for a person ("pushdeploy-verify's Timeout", "--verify-timeout").
    pub from: String,
}

fn sourced<T>(value: T, from: impl Into<String>) -> Sourced<T> {
    Sourced { value, from: from.into() }
}

/// What validate checks against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// verify's timeout, seconds.
    pub timeout: Sourced<u64>,
    /// verify's memory, MB.
    pub memory: Sourced<u64>,
    /// The clusters the stack manages; `None`: unchecked.
    pub clusters: Option<Sourced<Vec<String>>>,
    /// verify runs in the VPC.
    pub in_vpc: Sourced<bool>,
    /// The roles the stack passes, when the deploy function says.
    pub roles: Option<PassableRoles>,
    /// One line per function whose settings could not be read, and what was used instead.
    pub unread: Vec<String>,
}

impl Checked {
    /// The limits the config is checked with, as the functions build theirs.
    pub fn limits(&self) -> Limits {
        Limits {
            clusters: self.clusters.as_ref().map(|c| c.value.clone()),
            smoke_budget_ms: Some(smoke_budget_ms(self.timeout.value)),
            verify_memory_mb: Some(self.memory.value),
        }
    }

    /// The one line saying what was checked against, and where each value came from.
    pub fn line(&self) -> String {
        let clusters = match &self.clusters {
            Some(c) => format!("clusters {} ({})", c.value.join(", "), c.from),
            None => "clusters unchecked".to_string(),
        };
        let vpc = if self.in_vpc.value { "in the VPC" } else { "outside the VPC" };
        format!(
            "checked against: verify timeout {} s ({}), verify memory {} MB ({}), {clusters}, verify {vpc} ({})",
            self.timeout.value, self.timeout.from, self.memory.value, self.memory.from, self.in_vpc.from
        )
    }
}

/// A whole number from a function's environment, as the functions parse it (empty is unset).
fn number(f: &FunctionSettings, key: &str) -> Result<Option<Sourced<u64>>, String> {
    let Some(v) = f.var(key) else { return Ok(None) };
    v.parse::<u64>().map(|n| Some(sourced(n, format!("{}'s {key}", f.name)))).map_err(|_| {
        format!(
            "{}'s {key} is {v:?}, not a whole number: the functions refuse every config until the stack is fixed",
            f.name
        )
    })
}

/// The smallest of what the functions were given, and of what Lambda gives verify.
fn least(candidates: Vec<Sourced<u64>>) -> Option<Sourced<u64>> {
    candidates.into_iter().min_by_key(|c| c.value)
}

/// Every deployed value of one limit: verify's own (`own`, e.g. its Timeout) and `key` in each environment.
fn deployed_values(
    read: [Option<&FunctionSettings>; 2],
    key: &str,
    own: Option<Sourced<u64>>,
) -> Result<Vec<Sourced<u64>>, String> {
    let mut all: Vec<Sourced<u64>> = own.into_iter().collect();
    for f in read.into_iter().flatten() {
        all.extend(number(f, key)?);
    }
    Ok(all)
}

/// What to check against: `flags` first, then `deployed` (`None`: offline), then the template's defaults.
pub fn combine(flags: &Flags, deployed: Option<&Deployed>) -> Result<Checked, String> {
    let deploy = deployed.and_then(|d| d.deploy.as_ref().ok());
    let verify = deployed.and_then(|d| d.verify.as_ref().ok());
    let read = [deploy, verify];
    let timeouts = deployed_values(
        read,
        "PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS",
        verify.map(|v| sourced(v.timeout_s, format!("{}'s Timeout", v.name))),
    )?;
    let memories = deployed_values(
        read,
        "PUSHDEPLOY_VERIFY_MEMORY_MB",
        verify.map(|v| sourced(v.memory_mb, format!("{}'s MemorySize", v.name))),
    )?;
    let default = |v: u64, name: &str| sourced(v, format!("the template's default {name}"));
    let timeout = match flags.verify_timeout {
        Some(t) => sourced(t, "--verify-timeout"),
        None => least(timeouts).unwrap_or_else(|| default(TEMPLATE_VERIFY_TIMEOUT, "VerifyTimeoutSeconds")),
    };
    let memory = match flags.verify_memory {
        Some(m) => sourced(m, "--verify-memory"),
        None => least(memories).unwrap_or_else(|| default(TEMPLATE_VERIFY_MEMORY, "VerifyMemorySize")),
    };
    Ok(Checked {
        timeout,
        memory,
        clusters: clusters(flags, read),
        in_vpc: in_vpc(flags, deploy, verify),
        roles: deploy.and_then(|d| pushdeploy::lambda::setup::passable_roles(|k| d.var(k).map(String::from))),
        unread: unread(deployed),
    })
}

/// `--cluster`, else `PUSHDEPLOY_CLUSTERS` of deploy (or verify); `None`: unchecked.
fn clusters(flags: &Flags, read: [Option<&FunctionSettings>; 2]) -> Option<Sourced<Vec<String>>> {
    if !flags.clusters.is_empty() {
        return Some(sourced(flags.clusters.clone(), "--cluster"));
    }
    read.into_iter().flatten().find_map(|f| {
        let list = f.var("PUSHDEPLOY_CLUSTERS")?;
        let names = list.split(',').map(|s| s.trim().to_string()).collect();
        Some(sourced(names, format!("{}'s PUSHDEPLOY_CLUSTERS", f.name)))
    })
}

/// `--verify-in-vpc`, else verify's VpcConfig, else what deploy is told (`PUSHDEPLOY_VERIFY_IN_VPC`).
fn in_vpc(flags: &Flags, deploy: Option<&FunctionSettings>, verify: Option<&FunctionSettings>) -> Sourced<bool> {
    if flags.verify_in_vpc {
        return sourced(true, "--verify-in-vpc");
    }
    if let Some(v) = verify {
        return sourced(v.in_vpc, format!("{}'s VpcConfig", v.name));
    }
    if let Some(d) = deploy.filter(|d| d.var("PUSHDEPLOY_VERIFY_IN_VPC").is_some()) {
        let said = pushdeploy::lambda::setup::verify_in_vpc(|k| d.var(k).map(String::from));
        return sourced(said, format!("{}'s PUSHDEPLOY_VERIFY_IN_VPC", d.name));
    }
    sourced(false, "assumed: without --verify-in-vpc")
}

/// The lines saying which functions could not be read and what stands in for them.
fn unread(deployed: Option<&Deployed>) -> Vec<String> {
    let Some(d) = deployed else {
        return vec![
            "offline: checked against the flags and the template's defaults, not the deployed functions".into()
        ];
    };
    match (&d.deploy, &d.verify) {
        (Ok(_), Ok(_)) => Vec::new(),
        (Err(a), Err(b)) if a == b => {
            vec![format!("warning: cannot read the deployed functions' settings: {a}; checked against the flags and the template's defaults instead")]
        }
        (Err(a), Err(b)) => vec![format!(
            "warning: cannot read the deployed functions' settings: {a}; {b}; checked against the flags and the template's defaults instead"
        )],
        (Err(a), Ok(v)) => vec![format!("warning: cannot read the deploy function's settings: {a}; checked against {}'s alone", v.name)],
        (Ok(f), Err(b)) => vec![format!(
            "warning: cannot read the verify function's settings: {b}; checked against what {} is told of verify",
            f.name
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, timeout: u64, memory: u64, env: &[(&str, &str)]) -> FunctionSettings {
        FunctionSettings {
            name: name.into(),
            timeout_s: timeout,
            memory_mb: memory,
            in_vpc: false,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const TEMPLATE_ENV: [(&str, &str); 5] = [
        ("PUSHDEPLOY_CLUSTERS", "todo-cluster"),
        ("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "120"),
        ("PUSHDEPLOY_VERIFY_MEMORY_MB", "256"),
        ("PUSHDEPLOY_VERIFY_IN_VPC", "true"),
        ("PUSHDEPLOY_TASK_ROLE_ARNS", "arn:aws:iam::1:role/app"),
    ];

    fn stack() -> Deployed {
        let mut verify = function("v", 120, 256, &TEMPLATE_ENV);
        verify.in_vpc = true;
        Deployed { deploy: Ok(function("d", 30, 512, &TEMPLATE_ENV)), verify: Ok(verify) }
    }

    #[test]
    fn the_deployed_values_are_checked_with_where_each_came_from() {
        let c = combine(&Flags::default(), Some(&stack())).unwrap();
        assert_eq!(c.timeout, sourced(120, "v's Timeout"));
        assert_eq!(c.memory, sourced(256, "v's MemorySize"));
        assert_eq!(c.clusters, Some(sourced(vec!["todo-cluster".to_string()], "d's PUSHDEPLOY_CLUSTERS")));
        assert_eq!(c.in_vpc, sourced(true, "v's VpcConfig"));
        assert_eq!(c.roles.as_ref().unwrap().task, ["arn:aws:iam::1:role/app"]);
        assert!(c.unread.is_empty());
        assert_eq!(c.limits().smoke_budget_ms, Some(smoke_budget_ms(120)));
        assert_eq!(
            c.line(),
            "checked against: verify timeout 120 s (v's Timeout), verify memory 256 MB (v's MemorySize), clusters todo-cluster (d's PUSHDEPLOY_CLUSTERS), verify in the VPC (v's VpcConfig)"
        );
    }

    #[test]
    fn the_smallest_deployed_value_wins_and_flags_override_it() {
        // verify was edited in the console to 60 s: the functions still read 120, Lambda stops it at 60.
        let mut d = stack();
        d.verify.as_mut().unwrap().timeout_s = 60;
        d.deploy.as_mut().unwrap().env.insert("PUSHDEPLOY_VERIFY_MEMORY_MB".into(), "192".into());
        let c = combine(&Flags::default(), Some(&d)).unwrap();
        assert_eq!(c.timeout, sourced(60, "v's Timeout"));
        assert_eq!(c.memory, sourced(192, "d's PUSHDEPLOY_VERIFY_MEMORY_MB"));
        let flags = Flags {
            clusters: vec!["prod".into()],
            verify_timeout: Some(900),
            verify_memory: Some(1024),
            verify_in_vpc: true,
        };
        let c = combine(&flags, Some(&d)).unwrap();
        assert_eq!((c.timeout.value, c.timeout.from.as_str()), (900, "--verify-timeout"));
        assert_eq!((c.memory.value, c.memory.from.as_str()), (1024, "--verify-memory"));
        assert_eq!(c.clusters.unwrap().from, "--cluster");
        assert_eq!(c.in_vpc.from, "--verify-in-vpc");
    }

    #[test]
    fn what_cannot_be_read_is_said_once_and_the_template_s_defaults_stand_in() {
        let why = "no AWS credentials are configured".to_string();
        let none = Deployed { deploy: Err(why.clone()), verify: Err(why) };
        let c = combine(&Flags::default(), Some(&none)).unwrap();
        assert_eq!(c.timeout, sourced(300, "the template's default VerifyTimeoutSeconds"));
        assert_eq!(c.memory, sourced(128, "the template's default VerifyMemorySize"));
        assert_eq!((c.clusters, c.roles), (None, None));
        assert_eq!(c.unread, ["warning: cannot read the deployed functions' settings: no AWS credentials are configured; checked against the flags and the template's defaults instead"]);
        let offline = combine(&Flags::default(), None).unwrap();
        assert!(offline.unread[0].starts_with("offline:"), "{:?}", offline.unread);
        // Only deploy read: what it is told of verify.
        let d = stack();
        let half = Deployed { deploy: d.deploy, verify: Err("AccessDeniedException".into()) };
        let c = combine(&Flags::default(), Some(&half)).unwrap();
        assert_eq!(c.timeout, sourced(120, "d's PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS"));
        assert_eq!(c.in_vpc, sourced(true, "d's PUSHDEPLOY_VERIFY_IN_VPC"));
        assert!(
            c.unread[0].contains("AccessDeniedException") && c.unread[0].contains("what d is told"),
            "{:?}",
            c.unread
        );
    }

    #[test]
    fn a_deployed_setting_the_functions_cannot_read_is_an_error() {
        let mut d = stack();
        d.deploy.as_mut().unwrap().env.insert("PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS".into(), "5m".into());
        let e = combine(&Flags::default(), Some(&d)).unwrap_err();
        assert!(e.contains("d's PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS is \"5m\""), "{e}");
    }
}
