//! `validate`: checks a `pushdeploy.toml` with the same validation the functions apply, against
//! the limits the stack's functions are deployed with (read from Lambda, [`crate::deployed`];
//! flags override them; `--offline` reads nothing), and prints one summary per service. When it
//! reads the stack it also reads what each service runs, and warns of a role the stack does not pass.

use std::process::ExitCode;

use pushdeploy::config::{Config, ServiceConfig};
use pushdeploy::domain::text::printable;

use crate::deployed::{self, Deployed};
use crate::error_text;
use crate::settings::{self, Checked, Flags};

/// What `validate` is asked.
pub struct Asked {
    /// The config file.
    pub file: String,
    /// The flags that override the deployed values.
    pub flags: Flags,
    /// Read nothing from AWS.
    pub offline: bool,
    /// The deploy function's name or ARN.
    pub deploy: String,
    /// The verify function's name or ARN.
    pub verify: String,
}

/// Reads and checks the file: 0 valid (its services printed), 1 invalid, 2 unreadable.
pub fn run(asked: Asked) -> ExitCode {
    let text = match std::fs::read_to_string(&asked.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pushdeploy validate: cannot read {}: {e}", asked.file);
            return ExitCode::from(2);
        }
    };
    let runtime = (!asked.offline)
        .then(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime"));
    let read: Option<Deployed> = runtime.as_ref().map(|r| r.block_on(deployed::read(&asked.deploy, &asked.verify)));
    let checked = match settings::combine(&asked.flags, read.as_ref()) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("pushdeploy validate: {}", printable(&why));
            return ExitCode::from(2);
        }
    };
    for line in &checked.unread {
        println!("{}", printable(line));
    }
    println!("{}", printable(&checked.line()));
    let file = asked.file.as_str();
    match Config::read(&text, file).and_then(|c| c.check_limits(&checked.limits()).map(|()| c)) {
        // Every entry this release cannot read, each named: the file must be wholly valid.
        Ok(config) if !config.unreadable().is_empty() => unreadable(file, &config),
        Ok(config) => {
            println!("{file}: valid, {} service(s)", config.services.len());
            let roles = match (&runtime, read.is_some_and(|d| d.deploy.is_ok())) {
                (Some(r), true) => r.block_on(crate::estate::role_warnings(&config, &checked)),
                _ => Vec::new(),
            };
            for s in &config.services {
                print_service(s, &checked);
                for w in roles.iter().filter(|(name, _)| *name == s.name) {
                    println!("  {:<12} warning: {}", "", printable(&w.1));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_text(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

/// Exit 1, naming every entry this release cannot read.
fn unreadable(file: &str, config: &Config) -> ExitCode {
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

/// A valid service's lines: what it deploys from where, how it is checked, a warning about its
/// test listener, and where its base task definition comes from.
fn print_service(s: &ServiceConfig, checked: &Checked) {
    let verify_in_vpc = checked.in_vpc.value;
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
