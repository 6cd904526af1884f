//! pushdeploy: continuous deployment for AWS ECS, driven by ECR pushes.
//!
//! Layers, each a folder importing only those below it (docs/src/layout.md): [`domain`] (plain
//! types), [`config`], [`inbound`] (what arrives), [`rules`] (pure decisions), [`aws`] (clients and
//! stores), [`smoke`] (smoke tests through the load balancer), [`flows`] (describe, decide, apply)
//! and [`lambda`] (the functions' wiring).

pub mod aws;
pub mod config;
pub mod domain;
pub mod flows;
pub mod inbound;
pub mod lambda;
pub mod rules;
pub mod smoke;

pub use domain::error::Error;
