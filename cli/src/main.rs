//! `pushdeploy`: the operator's command. `validate` checks a `pushdeploy.toml` offline with the
//! same validation the functions apply before they act on it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pushdeploy::config::{Config, Limits};

#[derive(Parser)]
#[command(name = "pushdeploy", version, about = "Continuous deployment for AWS ECS: the operator's command")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a pushdeploy.toml as the functions will, before uploading it.
    ///
    /// Exit status: 0 valid, 1 invalid (the file, the key and what is wrong are printed), 2 unreadable.
    ///
    /// Example: pushdeploy validate pushdeploy.toml --cluster todo-cluster --verify-timeout 300
    Validate {
        /// The config file.
        file: String,
        /// A cluster the stack manages (the template's ClusterName); repeat for several. Unchecked when absent.
        #[arg(long = "cluster")]
        clusters: Vec<String>,
        /// verify's timeout in seconds (the template's VerifyTimeoutSeconds): every smoke budget must fit.
        #[arg(long, default_value_t = pushdeploy::setup::DEFAULT_VERIFY_TIMEOUT_SECONDS)]
        verify_timeout: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { file, clusters, verify_timeout } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("pushdeploy validate: cannot read {file}: {e}");
                    return ExitCode::from(2);
                }
            };
            let limits = Limits {
                clusters: (!clusters.is_empty()).then_some(clusters),
                smoke_budget_ms: Some(pushdeploy::timing::smoke_budget_ms(verify_timeout)),
            };
            match Config::parse(&text, &file).and_then(|c| c.check_limits(&limits).map(|()| c)) {
                Ok(config) => {
                    println!("{file}: valid, {} service(s)", config.services.len());
                    for s in &config.services {
                        let smoke = s.smoke.as_ref().map_or("no smoke test".to_string(), |m| {
                            format!("smoke test, worst case {} s", m.budget_ms().div_ceil(1000))
                        });
                        println!(
                            "  {:<12} {}/{} ← {}:{} ({smoke})",
                            s.name,
                            s.cluster,
                            s.service,
                            s.repository,
                            s.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("|")
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
