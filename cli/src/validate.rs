//! `validate`: checks a `pushdeploy.toml` offline with the same validation the functions apply,
//! against the stack's limits the flags give, and prints one summary per service.

use std::process::ExitCode;

use pushdeploy::config::{Config, Limits, ServiceConfig};
use pushdeploy::domain::text::printable;

use crate::error_text;

/// What `validate` is asked to check against: the stack's clusters, verify's timeout, memory and
/// whether it runs in the VPC.
pub struct Stack {
    /// The clusters the stack manages; unchecked when empty.
    pub clusters: Vec<String>,
    /// verify's timeout in seconds.
    pub verify_timeout: u64,
    /// verify's memory in MB.
    pub verify_memory: u64,
    /// verify runs in the VPC.
    pub verify_in_vpc: bool,
}

/// Reads and checks `file`: 0 valid (its services printed), 1 invalid, 2 unreadable.
pub fn run(file: &str, stack: Stack) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pushdeploy validate: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits {
        clusters: (!stack.clusters.is_empty()).then_some(stack.clusters),
        smoke_budget_ms: Some(pushdeploy::domain::timing::smoke_budget_ms(stack.verify_timeout)),
        verify_memory_mb: Some(stack.verify_memory),
    };
    match Config::read(&text, file).and_then(|c| c.check_limits(&limits).map(|()| c)) {
        // Every entry this release cannot read, each named: the file must be wholly valid.
        Ok(config) if !config.unreadable().is_empty() => {
            for e in config.problems() {
                eprintln!("{}", error_text(&e.to_string()));
            }
            eprintln!(
                "{file}: pushdeploy {} cannot read {} of {} service(s); the functions would refuse their pushes and not judge their deployments",
                pushdeploy::config::RUNNING_VERSION,
                config.unreadable().len(),
                config.unreadable().len() + config.services.len()
            );
            ExitCode::from(1)
        }
        Ok(config) => {
            println!("{file}: valid, {} service(s)", config.services.len());
            for s in &config.services {
                print_service(s, stack.verify_in_vpc);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_text(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

/// A valid service's lines: what it deploys from where, how it is checked, a warning about its
/// test listener, and where its base task definition comes from.
fn print_service(s: &ServiceConfig, verify_in_vpc: bool) {
    println!(
        "  {:<12} {}/{} ← {}:{} ({})",
        s.name,
        s.cluster,
        s.service,
        s.repository,
        s.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("|"),
        smoke_summary(s)
    );
    if let Some(why) = s.test_listener_warning(verify_in_vpc) {
        println!("  {:<12} warning: {}", "", printable(&why));
    }
    if s.base == pushdeploy::config::Base::Family {
        let trusted: Vec<&str> = s.trusted_registrants.iter().map(|p| p.as_str()).collect();
        let hold = if s.hold_base_changes {
            "; a push waits for an operator when the base changes more than the image"
        } else {
            ""
        };
        println!("  {:<12} base: the family's newest revision registered by {}{hold}", "", trusted.join(", "));
    }
}

/// How the service is checked: no smoke test, a smoke test's worst case, or the lifecycle hook's.
fn smoke_summary(s: &ServiceConfig) -> String {
    match (&s.smoke, &s.hook) {
        (None, _) => "no smoke test".to_string(),
        (Some(m), None) => format!("smoke test, worst case {} s", m.budget_ms().div_ceil(1000)),
        (Some(m), Some(h)) => format!(
            "lifecycle hook at {}: {} s at worst per invocation, within the hook's {} min; FAILED after {} s stuck",
            h.stages.iter().map(|st| st.as_str()).collect::<Vec<_>>().join(", "),
            m.invocation_ms().div_ceil(1000),
            h.timeout_minutes,
            h.stuck_ms / 1000
        ),
    }
}
