//! Smoke tests through the load balancer: pure judgement, an HTTP client, and the polling engine.

pub mod client;
pub mod engine;
pub mod id;
pub mod judge;
pub mod secrets;
