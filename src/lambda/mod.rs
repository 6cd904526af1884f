//! The Lambda wiring: the environment, the clients and the config read at a cold start, and the
//! config kept current while the function runs.

pub mod diagnostic;
pub mod live_config;
pub mod setup;
