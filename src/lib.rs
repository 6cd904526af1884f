//! pushdeploy: continuous deployment for AWS ECS, driven by ECR pushes.
//!
//! Decisions ([`rules`]: the push plan, the rollout decision, task definitions, bases; and
//! [`config`], [`event`], [`lease`], [`rollback`], [`report`], [`timing`]) are pure, over the plain
//! types of [`domain`]; AWS calls live in [`aws`] (records and leases behind their stores);
//! [`deploy`] and [`verify`] orchestrate; the Lambda functions under `functions/` only wire the
//! runtime, and `cli/` is the operator's command.

pub mod aws;
pub mod config;
pub mod confirm;
pub mod deploy;
pub mod domain;
pub mod emf;
pub mod error;
pub mod event;
pub mod glob;
pub mod hook;
pub mod image;
pub mod lease;
pub mod live_config;
pub mod media_type;
pub mod notify;
pub mod outcome;
pub mod record;
pub mod recovery;
pub mod report;
pub mod retention;
pub mod rollback;
pub mod rollback_revision;
pub mod rules;
pub mod secrets;
pub mod setup;
pub mod smoke;
pub mod target_group;
pub mod task_digests;
pub mod text;
pub mod timing;
pub mod tls;
pub mod verify;

pub use error::Error;

// The paths of before issue 23 (`crate::plan`, `crate::base`, …), kept only so branches written
// against them merge; remove once every branch uses `rules::` and `domain::`.
#[doc(hidden)]
pub use domain::artifact;
#[doc(hidden)]
pub use rules::{base, freshness, plan, rolled_back, taskdef};
