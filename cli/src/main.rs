//! `pushdeploy`: the operator's command. `validate` checks a `pushdeploy.toml` offline with the
//! same validation the functions apply before they act on it; `status`, `history`, `show` and
//! `report` say what pushdeploy did and does, from the records, the leases and ECS; the manual
//! actions invoke the deploy function; `redrive` replays what the functions parked.
//!
//! Exit status: 0 done; 1 the answer needs attention (an invalid config, a failed last
//! deployment, an unknown id); 2 the command could not run (unreadable input, AWS refused).

mod args;
mod commands;
mod deployed;
mod estate;
mod init;
mod insight;
mod invoke;
mod live;
mod page;
mod pause;
mod probe;
mod queue;
mod redrive;
mod render;
mod settings;
mod validate;

use std::process::ExitCode;

use clap::Parser;
use pushdeploy::domain::text::{json_printable, printable};

use args::{Cli, Command};
use commands::{act, ReportAsked};
use insight::Failed;

fn main() -> ExitCode {
    let command = Cli::parse().command;
    if matches!(command, Command::Validate { .. }) {
        return validate_then_probe(command);
    }
    match runtime().block_on(run(command)) {
        Ok(code) => code,
        Err(Failed(why)) => {
            eprintln!("pushdeploy: {}", error_text(&why));
            ExitCode::from(2)
        }
    }
}

/// The runtime the commands that call AWS run on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// `validate`: the file against the deployed limits, then, with --live and a valid file, the
/// deployed verify function's look at each smoke URL.
fn validate_then_probe(command: Command) -> ExitCode {
    let Command::Validate {
        file,
        clusters,
        verify_timeout,
        verify_memory,
        verify_in_vpc,
        offline,
        live,
        service,
        function,
        verify_function,
    } = command
    else {
        unreachable!("called for validate only")
    };
    let flags = settings::Flags { clusters, verify_timeout, verify_memory, verify_in_vpc };
    let (deploy, verify) = (function.name, verify_function.name.clone());
    let checked = validate::run(validate::Asked { file, flags, offline, deploy, verify });
    if !live || checked != ExitCode::SUCCESS {
        return checked;
    }
    match runtime().block_on(probe::run(&verify_function.name, service.as_deref())) {
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
        Command::Init { cluster, services, output, force } => {
            init::run(init::Options { cluster, services, output, force }).await
        }
        Command::Status { scope, json, function } => commands::status(scope, json, &function.name).await,
        Command::History { service, limit, scope, json, wide } => {
            commands::history(&service, limit, scope, json, wide).await
        }
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
        Command::Rollback { service, to, force, dry_run, requested_by, function } => {
            let by = requested_by.or_else(|| std::env::var("USER").ok()).filter(|u| !u.is_empty());
            let asked =
                invoke::RollbackAsked { to: to.as_deref(), force: invoke::Force(force), dry_run, by: by.as_deref() };
            act(&function.name, invoke::Action::Rollback(&service, asked)).await
        }
        Command::Plan { service, tag, force, function } => {
            act(&function.name, invoke::Action::Plan(&service, tag.as_deref(), invoke::Force(force))).await
        }
        Command::Pause { service, all, reason, scope } => pause::pause(service, all, reason, scope).await,
        Command::Resume { service, all, scope } => pause::resume(service, all, scope).await,
        Command::Redrive { queue_url, function, verify_function, rules, dry_run, yes, delete_skipped, max } => {
            let deploy = function.name;
            let verify = verify_function.name;
            redrive::run(redrive::Options { queue_url, deploy, verify, rules, dry_run, yes, delete_skipped, max }).await
        }
    }
}
