//! `pushdeploy.toml`: parsed and validated before anything is deployed, errors named by file and key.
//!
//! `model` is the validated shape; `parse` (with `parse_smoke`, `parse_hook`, `parse_analysis` and the field reader
//! `fields`) reads the text into it; `merge` merges the entries for one ECS service; `limits`
//! checks a config against what a deployment of pushdeploy allows; `principal` reads
//! `trusted_registrants`; `compat` says what this release does with entries it cannot read
//! (a newer release's keys, `requires`).

mod compat;
pub mod credentials;
mod fields;
mod limits;
mod merge;
mod model;
mod parse;
mod parse_analysis;
mod parse_hook;
mod parse_smoke;
mod principal;
mod unreadable;

pub use compat::{at_least, RUNNING_VERSION};
pub use limits::{Limits, BODY_MEMORY_FACTOR, VERIFY_BASELINE_MB};
pub use merge::merge_entries;
pub use model::{
    AnalysisConfig, Base, CheckConfig, Config, ConnectTo, HeaderValue, HookConfig, Mode, ReadAfterWriteConfig,
    ServiceConfig, SmokeConfig, Strategy, TooLittleTraffic,
};
pub use principal::PrincipalPattern;
pub use unreadable::UnreadableService;

/// What the tests of every part of the config share: the example config and a minimal service.
#[cfg(test)]
mod test_support {
    use super::Config;
    use crate::domain::error::ConfigError;

    pub const TODO: &str = include_str!("../../examples/pushdeploy.toml");

    pub fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "test.toml")
    }

    pub fn key_of(s: &str) -> String {
        let e = parse(s).unwrap_err();
        assert_eq!(e.file, "test.toml");
        assert!(!e.message.is_empty());
        e.key
    }

    pub const MIN: &str = "[[service]]\nname='a'\nservice='s'\ncluster='c'\nrepository='r'\ntags=['latest']\n";

    pub const SMOKE: &str = "[service.smoke]\nurl='https://alb/api/'\n[[service.smoke.check]]\npath='todoItems'\n";
}
