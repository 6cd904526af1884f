//! Integration tests against moto on a free loopback port: one binary, one module per area.

mod base_trust;
mod config_agreement;
mod deploy;
mod faults;
mod freshness_pruning;
mod function;
mod hooks;
mod hostile;
mod https;
mod iam;
mod insight;
mod layers;
mod long_history;
mod memory;
mod redrive;
mod reliability;
mod rollbacks;
mod rolled_back_builds;
mod secrets;
mod short_arns;
mod smoke_attacks;
mod steering;
mod support;
mod test_path;
mod through_binaries;
pub(crate) mod verify;
