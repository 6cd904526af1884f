//! `init`: writes `pushdeploy.toml` from the running estate, as ecspresso's `init` does for its
//! own config. Describe (the services, their images, the load balancers in front of them:
//! `describe`, `balancers`) → propose (a value: `propose`, `tags`, `smoke`) → render (`render`)
//! → check it with the library's own validation → write, and print what to check before
//! enforcing (`checklist`). The file starts in observe mode.

mod aws_error;
mod balancers;
mod checklist;
mod describe;
pub mod estate;
mod propose;
mod render;
mod smoke;
mod tags;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::process::ExitCode;

use pushdeploy::config::{Config, Limits};

use crate::insight::Failed;

/// What `init` was asked.
pub struct Options {
    /// The cluster.
    pub cluster: String,
    /// Only these services (default: every service of the cluster).
    pub services: Vec<String>,
    /// Where to write (default: stdout).
    pub output: Option<std::path::PathBuf>,
    /// Overwrite an existing file.
    pub force: bool,
}

/// Describes, proposes, checks and writes: 0 written; 1 nothing valid to write (why is printed);
/// 2 AWS refused, or the file could not be written.
pub async fn run(o: Options) -> Result<ExitCode, Failed> {
    if let Some(path) = o.output.as_ref().filter(|p| p.exists() && !o.force) {
        eprintln!("pushdeploy init: {} exists; give --force to overwrite it", path.display());
        return Ok(ExitCode::from(1));
    }
    let sdk = pushdeploy::aws::AwsPolicy::default().loader().load().await;
    // A cluster ARN names the cluster last; the config names clusters by name.
    let cluster = o.cluster.rsplit('/').next().unwrap_or(&o.cluster);
    let estate = describe::describe(&sdk, cluster, &o.services).await?;
    let (text, checklist) = match write_up(&estate) {
        Ok(done) => done,
        Err(why) => {
            eprintln!("pushdeploy init: {why}");
            return Ok(ExitCode::from(1));
        }
    };
    match &o.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| Failed(format!("cannot write {}: {e}", path.display())))?
        }
        None => {
            std::io::stdout().write_all(text.as_bytes()).map_err(|e| Failed(format!("cannot write stdout: {e}")))?
        }
    }
    let shown = o.output.as_ref().map_or("the config".to_string(), |p| p.display().to_string());
    eprintln!("pushdeploy init: wrote {shown} (observe mode). Before enforcing, check:");
    for (i, line) in checklist.iter().enumerate() {
        eprintln!("{:>3}. {}", i + 1, pushdeploy::domain::text::printable(line));
    }
    Ok(ExitCode::SUCCESS)
}

/// The file and its checklist for `estate`, once the file passes the validation `validate` runs
/// (with its default limits and this cluster); `Err` says why nothing is written.
pub fn write_up(estate: &estate::Estate) -> Result<(String, Vec<String>), String> {
    let proposal = propose::propose(estate);
    let text = render::render(&proposal);
    if proposal.services.is_empty() {
        let why: Vec<String> = proposal.skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        return Err(format!(
            "no service of cluster {} can be deployed by pushdeploy, so no config is written{}",
            estate.cluster,
            if why.is_empty() {
                " (the cluster has no ACTIVE service)".to_string()
            } else {
                format!(": {}", why.join("; "))
            }
        ));
    }
    let limits = Limits {
        clusters: Some(vec![estate.cluster.clone()]),
        smoke_budget_ms: Some(pushdeploy::domain::timing::smoke_budget_ms(300)),
        verify_memory_mb: Some(128),
    };
    Config::parse(&text, "pushdeploy.toml").and_then(|c| c.check_limits(&limits)).map_err(|e| {
        format!("the config init proposes is not valid, so it is not written ({e}); please report this with the estate's names")
    })?;
    Ok((text, checklist::checklist(&proposal)))
}
