//! The config as a running function sees it: read at the first invocation, re-read when its S3
//! object changes, so an upload takes effect without touching the functions.
//!
//! An S3 config is looked at again at most every `recheck` (a conditional GET on its ETag: S3
//! answers 304 while it is unchanged). A missing object is a transient error, so Lambda retries
//! the event and the dead-letter queue keeps it, instead of refusing pushes while the config is
//! being uploaded. A config with services this release cannot read (a newer release's keys,
//! `requires`) is used for the others, and those services are published to the topic once per
//! version of the object. A config that cannot be read at all (TOML syntax, `[defaults]`, limits)
//! is published once per version too; a function that read a good one before goes on with it,
//! and one that has none (a cold start) refuses every invocation with the error: a push is
//! answered `rejected`, an ECS event fails (retried, then kept in the failed-invocations queue),
//! a lifecycle hook answers FAILED. Nothing is deployed or judged on a guess.

use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::aws::s3::Fetched;
use crate::aws::sns::Notifier;
use crate::aws::Clients;
use crate::config::Config;
use crate::domain::error::{AwsError, ConfigError, Error};

/// How often a function looks for a new config object when `PUSHDEPLOY_CONFIG_RECHECK_SECONDS` is unset.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(30);

/// Where the config lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file, read once per cold start.
    File(String),
    /// An S3 object, re-read when it changes.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
}

impl Location {
    /// Parses `PUSHDEPLOY_CONFIG`: a path or `s3://bucket/key`.
    pub fn parse(source: &str) -> Result<Self, ConfigError> {
        let Some(rest) = source.strip_prefix("s3://") else {
            return Ok(Location::File(source.to_string()));
        };
        let (bucket, key) =
            rest.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty()).ok_or_else(|| ConfigError {
                file: source.into(),
                key: "PUSHDEPLOY_CONFIG".into(),
                message: "an S3 location must look like s3://bucket/key".into(),
            })?;
        Ok(Location::S3 { bucket: bucket.to_string(), key: key.to_string() })
    }

    fn describe(&self) -> String {
        match self {
            Location::File(p) => p.clone(),
            Location::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// Builds a function's state from its clients and a parsed config (validation beyond parsing included).
pub type Build<T> = fn(&Clients, Config) -> Result<T, Error>;

/// A function's state, rebuilt whenever its config changes.
pub struct Live<T> {
    function: &'static str,
    clients: Clients,
    location: Location,
    build: Build<T>,
    recheck: Duration,
    state: Option<Result<T, String>>,
    etag: Option<String>,
    checked: Option<Instant>,
}

impl<T: Clone> Live<T> {
    /// A function's live config; nothing is read until the first [`Live::current`].
    pub fn new(
        function: &'static str,
        clients: Clients,
        location: Location,
        build: Build<T>,
        recheck: Duration,
    ) -> Self {
        Self { function, clients, location, build, recheck, state: None, etag: None, checked: None }
    }

    /// The SDK clients, the artifact bucket among them: what a function may still use to put on a
    /// record why it cannot judge while its config is invalid.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The state to handle an invocation with: `Ok(Err(reason))` refuses it (an invalid config),
    /// `Err` fails it so Lambda retries (a missing config object, S3 unreachable).
    pub async fn current(&mut self) -> Result<Result<T, String>, Error> {
        // No state yet (never read, or a read was cut short, e.g. by init's time limit): read.
        let due = self.state.is_none()
            || match (&self.location, self.checked) {
                (_, None) => true,
                (Location::File(_), Some(_)) => false,
                (Location::S3 { .. }, Some(at)) => at.elapsed() >= self.recheck,
            };
        if due {
            self.refresh().await?;
        }
        Ok(self.state.clone().expect("a state is set once the config was read"))
    }

    async fn refresh(&mut self) -> Result<(), Error> {
        let source = self.location.describe();
        let Some(text) = self.read_text(&source).await? else {
            self.checked = Some(Instant::now());
            return Ok(());
        };
        let built = match text {
            Ok(text) => match Config::read(&text, &source) {
                Ok(config) => {
                    let told = crate::rules::unreadable::load_message(self.function, &config);
                    (self.build)(&self.clients, config).map(|t| (t, told))
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        self.apply(built, &source).await
    }

    /// The config's text; `None` when the S3 object is unchanged since the state was built.
    async fn read_text(&mut self, source: &str) -> Result<Option<Result<String, ConfigError>>, Error> {
        let unreadable = |message: String| ConfigError { file: source.to_string(), key: "(file)".into(), message };
        let (bucket, key) = match &self.location {
            Location::File(path) => {
                return Ok(Some(std::fs::read_to_string(path).map_err(|e| unreadable(format!("cannot read: {e}")))))
            }
            Location::S3 { bucket, key } => (bucket, key),
        };
        // Without a state, "not modified" would leave nothing to answer with.
        let known = self.state.as_ref().and(self.etag.as_deref());
        match self.clients.store.read_if_changed(bucket, key, known).await? {
            Fetched::NotModified => Ok(None),
            Fetched::Missing => Err(AwsError {
                action: "read pushdeploy.toml",
                target: source.to_string(),
                detail: "the config object does not exist (yet)".into(),
                hint: "upload pushdeploy.toml there (the book, Deploying to AWS); this event is retried, then kept in the failed-invocations queue",
                transient: true,
            }
            .into()),
            Fetched::Object { bytes, etag } => {
                self.etag = Some(etag);
                Ok(Some(String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into()))))
            }
        }
    }

    /// Takes a config just read: the new state, or (when it cannot be read at all) the last good
    /// one kept or, without one, every invocation refused; told to the topic either way.
    async fn apply(
        &mut self,
        built: Result<(T, Option<crate::rules::notify::Message>), Error>,
        source: &str,
    ) -> Result<(), Error> {
        self.checked = Some(Instant::now());
        match built {
            Ok((t, told)) => {
                info!(config = %source, etag = self.etag.as_deref().unwrap_or(""), "config loaded");
                if let Some(m) = told {
                    warn!(config = %source, problem = %m.body, "the config has services this release cannot read");
                    if let Some(n) = &self.clients.notifier {
                        n.send(&m).await;
                    }
                }
                self.state = Some(Ok(t));
            }
            Err(e) if e.is_transient() => return Err(e),
            // A new version of the config that cannot be read at all: the last good one stays.
            Err(e) if matches!(self.state, Some(Ok(_))) => {
                error!(config = %source, error = %e, "the new config is refused; pushdeploy goes on with the last good config it read");
                report_kept(self.clients.notifier.as_ref(), self.function, &e).await;
            }
            Err(e) => {
                error!(config = %source, error = %e, "pushdeploy refuses every invocation until the config is fixed");
                report_refusal(self.clients.notifier.as_ref(), self.function, &e).await;
                self.state = Some(Err(e.to_string()));
            }
        }
        Ok(())
    }
}

/// Publishes that a new config was refused and the function goes on with the last good one it
/// read, once per version of the object.
async fn report_kept(notifier: Option<&Notifier>, function: &str, err: &Error) {
    let Some(n) = notifier else { return };
    let m = crate::rules::notify::problem_message(&crate::rules::notify::Problem {
        function,
        service: "pushdeploy",
        target: None,
        doing: "read the new config",
        error: &err.to_string(),
        consequence: "this function goes on with the last good config it read until a valid one is uploaded; one started afresh (a cold start) has none and refuses every invocation, so fix or revert the upload",
    });
    n.send(&m).await;
}

/// Publishes why a function refuses every invocation (an invalid config, a missing setting) to
/// `notifier`, when there is one: a person must hear of it, once per cold start or new version of
/// the config.
pub async fn report_refusal(notifier: Option<&Notifier>, function: &str, err: &Error) {
    let Some(n) = notifier else { return };
    let m = crate::rules::notify::problem_message(&crate::rules::notify::Problem {
        function,
        service: "pushdeploy",
        target: None,
        doing: if function == "deploy" { "deploy" } else { "verify" },
        error: &err.to_string(),
        consequence: "every invocation is refused until the config is fixed (a new upload is picked up within PUSHDEPLOY_CONFIG_RECHECK_SECONDS)",
    });
    n.send(&m).await;
}

/// The recheck interval from `PUSHDEPLOY_CONFIG_RECHECK_SECONDS` (default 30 s).
pub fn recheck_from_env() -> Result<Duration, ConfigError> {
    match std::env::var("PUSHDEPLOY_CONFIG_RECHECK_SECONDS") {
        Ok(v) => v.parse::<u64>().map(Duration::from_secs).map_err(|_| ConfigError {
            file: "environment".into(),
            key: "PUSHDEPLOY_CONFIG_RECHECK_SECONDS".into(),
            message: format!("{v:?} is not a whole number of seconds"),
        }),
        Err(_) => Ok(DEFAULT_RECHECK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(Location::parse("a/b.toml").unwrap(), Location::File("a/b.toml".into()));
        assert_eq!(
            Location::parse("s3://b/dir/p.toml").unwrap(),
            Location::S3 { bucket: "b".into(), key: "dir/p.toml".into() }
        );
        assert_eq!(Location::parse("s3://b/").unwrap_err().key, "PUSHDEPLOY_CONFIG");
    }
}
