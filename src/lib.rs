//! pushdeploy: continuous deployment for AWS ECS, driven by ECR pushes.
//!
//! Decisions ([`plan`], [`base`], [`taskdef`], [`config`], [`inbound`], [`lease`], [`rollback`], [`rolled_back`], [`report`],
//! [`timing`]) are pure; AWS calls live in [`aws`] (records and leases behind their stores);
//! [`deploy`] and [`verify`] orchestrate, through the shared [`flows`] (one service lease, one
//! rollback); the Lambda functions under `functions/` only wire the
//! runtime, and `cli/` is the operator's command.

pub mod artifact;
pub mod aws;
pub mod base;
pub mod config;
pub mod confirm;
pub mod deploy;
pub mod domain;
pub mod emf;
pub mod error;
pub mod flows;
pub mod freshness;
pub mod glob;
pub mod image;
pub mod inbound;
pub mod lease;
pub mod live_config;
pub mod media_type;
pub mod notify;
pub mod outcome;
pub mod plan;
pub mod record;
pub mod report;
pub mod retention;
pub mod rules;
/// Moved to [`rules::rollback`]; this path stays until the layout's path rewrite.
pub mod rollback {
    #[cfg(test)]
    pub(crate) use crate::rules::rollback::tests;
    pub use crate::rules::rollback::*;
}
pub mod rolled_back;
pub mod secrets;
pub mod setup;
pub mod smoke;
pub mod target_group;
pub mod task_digests;
pub mod taskdef;
pub mod text;
pub mod timing;
pub mod tls;
pub mod verify;

pub use error::Error;
