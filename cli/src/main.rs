//! `pushdeploy`: the operator's command. `validate` checks a `pushdeploy.toml` offline with the
//! same validation the functions apply before they act on it; `status`, `history`, `show` and
//! `report` say what pushdeploy did and does, from the records, the leases and ECS; the manual
//! actions invoke the deploy function; `redrive` replays what the functions parked.
//!
//! Exit status: 0 done; 1 the answer needs attention (an invalid config, a failed last
//! deployment, an unknown id); 2 the command could not run (unreadable input, AWS refused).

mod args;
mod commands;
mod insight;
mod invoke;
mod live;
mod page;
mod queue;
mod redrive;
mod render;
mod validate;

use std::process::ExitCode;

use clap::Parser;
use pushdeploy::domain::text::{json_printable, printable};

use args::{Cli, Command};
use commands::{act, ReportAsked};
use insight::Failed;

fn main() -> ExitCode {
    let command = Cli::parse().command;
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    if let Command::Validate {
        file,
        clusters,
        verify_timeout,
        verify_memory,
        verify_in_vpc,
        live,
        service,
        verify_function,
    } = command
    {
        let offline = validate::run(&file, validate::Stack { clusters, verify_timeout, verify_memory, verify_in_vpc });
        if !live || offline != ExitCode::SUCCESS {
            return offline;
        }
        return match runtime().block_on(live::run(&verify_function, service.as_deref())) {
            Ok(code) => code,
            Err(Failed(why)) => {
                eprintln!("pushdeploy: {}", error_text(&why));
                ExitCode::from(2)
            }
        };
    }
    let runtime = runtime();
    match runtime.block_on(run(command)) {
        Ok(code) => code,
        Err(Failed(why)) => {
            eprintln!("pushdeploy: {}", error_text(&why));
            ExitCode::from(2)
        }
    }
}

/// An error for the terminal: it may quote an S3 key, a record, a config or an AWS message, so no
/// character in it may act on the terminal; its own line breaks (a TOML parse error's snippet) stay.
fn error_text(why: &str) -> String {
    why.lines().map(printable).collect::<Vec<_>>().join("\n")
}

/// Prints `value` as pretty JSON, the characters that would act on a terminal (C1 controls, DEL,
/// bidi overrides, which serde_json leaves raw) escaped: the same JSON for `jq`, safe on a screen.
fn print_json(value: &impl serde::Serialize) {
    println!("{}", json_printable(&serde_json::to_string_pretty(value).expect("output always serializes")));
}

/// Runs one command that needs AWS (every one but `validate`).
async fn run(command: Command) -> Result<ExitCode, Failed> {
    match command {
        Command::Validate { .. } => unreachable!("validate runs without a runtime"),
        Command::Status { scope, json } => commands::status(scope, json).await,
        Command::History { service, limit, scope, json } => commands::history(&service, limit, scope, json).await,
        Command::Show { id, from, json } => commands::show(&id, from, json).await,
        Command::Report { since, service, json, html, from } => {
            commands::report(ReportAsked { since, service, json, html }, from).await
        }
        Command::Deploy { service, tag, force, function } => {
            act(&function.name, invoke::Action::Deploy(&service, &tag, invoke::Force(force))).await
        }
        Command::Redeploy { service, force, function } => {
            act(&function.name, invoke::Action::Redeploy(&service, invoke::Force(force))).await
        }
        Command::Rollback { service, function } => act(&function.name, invoke::Action::Rollback(&service)).await,
        Command::Plan { service, tag, force, function } => {
            act(&function.name, invoke::Action::Plan(&service, tag.as_deref(), invoke::Force(force))).await
        }
        Command::Redrive { queue_url, function, verify_function, rules, dry_run, yes, delete_skipped, max } => {
            let deploy = function.name;
            let verify = verify_function;
            redrive::run(redrive::Options { queue_url, deploy, verify, rules, dry_run, yes, delete_skipped, max }).await
        }
    }
}
