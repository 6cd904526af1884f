//! One function per command that needs AWS: each reads what it needs, prints it and returns the
//! exit status (`validate`, offline, is in `validate`; `redrive` in its own folder).

use std::path::PathBuf;
use std::process::ExitCode;

use pushdeploy::domain::text::printable;

use crate::args::{From, Scope};
use crate::insight::{self, load_config, Aws, Failed};
use crate::{invoke, page, print_json, render};

/// `status`: one row per configured service of the live config (and how `--config`'s file
/// differs from it); 1 when one needs attention.
pub async fn status(scope: Scope, json: bool, function: &str) -> Result<ExitCode, Failed> {
    let aws = Aws::from_env(&scope.from.bucket).await?;
    let (chosen, paused) = tokio::join!(
        crate::live::config_for_status(&aws, &scope.config, &scope.from.bucket, function),
        crate::pause::status_lines(&aws, &scope)
    );
    let (chosen, paused) = (chosen?, paused?);
    let services = insight::status(&aws, &chosen.config).await?;
    let notes: Vec<String> = chosen.notes.iter().map(|n| printable(n).into_owned()).collect();
    if json {
        print_json(&services);
        notes.iter().for_each(|n| eprintln!("{n}"));
    } else {
        print!("{}", render::status(&services));
        println!();
        for line in &paused {
            println!("{line}");
        }
        notes.iter().for_each(|n| println!("{n}"));
    }
    Ok(if insight::needs_attention(&services) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `history`: a service's deployments and rollbacks, newest first.
pub async fn history(service: &str, limit: usize, scope: Scope, json: bool, wide: bool) -> Result<ExitCode, Failed> {
    let aws = Aws::from_env(&scope.from.bucket).await?;
    let config = load_config(&aws, &scope.config).await?;
    let Some(svc) = config.service(service) else {
        let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        return Err(Failed(format!("no service {service:?} in the config; it has {known:?}")));
    };
    let records = insight::history(&aws, svc, limit).await?;
    if json {
        print_json(&records);
    } else {
        println!("{}", render::history(&records, wide));
    }
    Ok(ExitCode::SUCCESS)
}

/// `show`: one deployment record; 1 when no record has that id.
pub async fn show(id: &str, from: From, json: bool) -> Result<ExitCode, Failed> {
    let aws = Aws::from_env(&from.bucket).await?;
    match insight::show(&aws, id).await? {
        Some(r) if json => print_json(&r),
        Some(r) => print!("{}", render::show(&r)),
        None => {
            eprintln!(
                "pushdeploy: no deployment record {} in s3://{}/deployments/",
                printable(id),
                printable(&from.bucket)
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `report` is asked for.
pub struct ReportAsked {
    /// The window's start as typed (`30d`, an RFC 3339 time).
    pub since: String,
    /// Only this service.
    pub service: Option<String>,
    /// Print JSON instead of tables.
    pub json: bool,
    /// Also write the HTML page here.
    pub html: Option<PathBuf>,
}

/// `report`: the four DORA keys, as tables or JSON, and the HTML page when asked.
pub async fn report(asked: ReportAsked, from: From) -> Result<ExitCode, Failed> {
    let now = insight::now();
    let since = insight::parse_since(&asked.since, now).map_err(Failed)?;
    let aws = Aws::from_env(&from.bucket).await?;
    let window = pushdeploy::rules::report::Window { since, until: now };
    let reported = insight::report(&aws, window, asked.service.as_deref()).await?;
    if asked.json {
        if reported.skipped > 0 {
            eprintln!("pushdeploy: {} object(s) were not deployment records and were skipped", reported.skipped);
        }
        print_json(&reported.report);
    } else {
        print!("{}", render::report(&reported.report, reported.skipped));
    }
    if let Some(path) = asked.html {
        let page = page::render(&reported.report, &reported.records, window, &from.bucket, reported.skipped)
            .map_err(Failed)?;
        std::fs::write(&path, page).map_err(|e| Failed(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("pushdeploy: wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `deploy`, `redeploy`, `rollback` and `plan`: invokes the deploy function with a manual action
/// and prints its answer.
pub async fn act(function: &str, action: invoke::Action<'_>) -> Result<ExitCode, Failed> {
    let answer = invoke::invoke(function, &action).await?;
    let (text, done) = invoke::describe(&answer);
    print!("{text}");
    Ok(match answer {
        invoke::Answer::Failed(..) => ExitCode::from(2),
        _ if done => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
