//! `pause` and `resume`: an operator's word, kept in S3 beside the deployed config, that a
//! service (or every service) takes no new change. The deploy function reads it on every push
//! and manual action; `status` shows it. Who paused is the caller STS names.

use std::process::ExitCode;

use pushdeploy::aws::pauses::PauseStore;
use pushdeploy::domain::pause::{Pause, Scope};
use pushdeploy::domain::text::printable;
use pushdeploy::lambda::live_config::Location;
use pushdeploy::rules::pause::describe;

use crate::args;
use crate::insight::{Aws, Failed};

/// The config the deploy function reads, whose pauses these are: `--config` when it is an S3
/// object, else the stack's default location, `s3://<bucket>/pushdeploy.toml`.
pub fn store(aws: &Aws, scope: &args::Scope) -> Result<PauseStore, Failed> {
    Ok(match Location::parse(&scope.config)? {
        Location::S3 { bucket, key } => PauseStore::new(aws.store.in_bucket(bucket), key),
        Location::File(_) => PauseStore::new(aws.store.clone(), "pushdeploy.toml"),
    })
}

/// What `pause` and `resume` name: a service of the config, or every service.
fn scope_of(service: Option<String>, all: bool) -> Result<Scope, Failed> {
    match (service, all) {
        (None, true) => Ok(Scope::All),
        (Some(name), false) => Ok(Scope::Service(name)),
        _ => Err(Failed("name one service or --all".into())),
    }
}

/// A service name the config knows (so a typo pauses nothing silently).
async fn known(aws: &Aws, scope: &args::Scope, what: &Scope) -> Result<(), Failed> {
    let Scope::Service(name) = what else { return Ok(()) };
    let config = crate::insight::load_config(aws, &scope.config).await?;
    if config.service(name).is_none() {
        let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        return Err(Failed(format!("no service {name:?} in {}; it has {names:?}", scope.config)));
    }
    Ok(())
}

/// Who is calling, as STS says (the pause's `by`).
async fn caller() -> Result<String, Failed> {
    let sdk = pushdeploy::aws::AwsPolicy::default().loader().load().await;
    let out = aws_sdk_sts::Client::new(&sdk).get_caller_identity().send().await.map_err(|e| {
        Failed(format!("STS GetCallerIdentity (who is pausing): {}", aws_sdk_sts::error::DisplayErrorContext(e)))
    })?;
    out.arn().map(str::to_string).ok_or_else(|| Failed("STS GetCallerIdentity named no ARN".into()))
}

/// The name a pause is shown under: the service or `every service`.
fn named(scope: &Scope) -> String {
    match scope {
        Scope::All => "every service".into(),
        Scope::Service(name) => printable(name).into_owned(),
    }
}

/// `pause`: writes the pause unless one is in force (then says whose, and exits 1).
pub async fn pause(service: Option<String>, all: bool, reason: String, scope: args::Scope) -> Result<ExitCode, Failed> {
    let what = scope_of(service, all)?;
    let aws = Aws::from_env(&scope.from.bucket).await?;
    known(&aws, &scope, &what).await?;
    let store = store(&aws, &scope)?;
    let since = pushdeploy::domain::record::rfc3339(crate::insight::now());
    let service = match &what {
        Scope::All => None,
        Scope::Service(name) => Some(name.clone()),
    };
    let mine = Pause { service, reason, by: caller().await?, since };
    if let Some(there) = store.create(&mine).await? {
        println!("{}: already {}; left as it is", named(&what), describe(&there));
        return Ok(ExitCode::from(1));
    }
    println!("{}: {}", named(&what), describe(&mine));
    println!(
        "  every push and manual action is answered `paused` and changes nothing; skipped pushes are not replayed\n  kept at {}; `pushdeploy resume {}` ends it",
        store.url(&what),
        what.argument()
    );
    Ok(ExitCode::SUCCESS)
}

/// `resume`: deletes the pause, saying whose it was; a service still under the pause of every
/// service is told so.
pub async fn resume(service: Option<String>, all: bool, scope: args::Scope) -> Result<ExitCode, Failed> {
    let what = scope_of(service, all)?;
    let aws = Aws::from_env(&scope.from.bucket).await?;
    known(&aws, &scope, &what).await?;
    let store = store(&aws, &scope)?;
    let by = caller().await?;
    let (was, all_pause) = match &what {
        Scope::All => (store.remove(&what).await?, None),
        Scope::Service(_) => tokio::try_join!(store.remove(&what), store.get(&Scope::All))?,
    };
    match &was {
        Some(p) => println!("{}: resumed by {} (it was {})", named(&what), printable(&by), describe(p)),
        None => println!("{}: was not paused", named(&what)),
    }
    if let Some(p) = all_pause {
        println!(
            "{}: still paused by the pause of every service: {}; `pushdeploy resume --all` ends it",
            named(&what),
            describe(&p)
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`'s lines for the pauses in force, one each (none: no line).
pub async fn status_lines(aws: &Aws, scope: &args::Scope) -> Result<Vec<String>, Failed> {
    let mut pauses = store(aws, scope)?.all().await?;
    pauses.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(pauses.iter().map(|p| format!("{}: {}", named(&p.scope()), describe(p))).collect())
}
