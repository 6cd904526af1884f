//! Smoke tests through the load balancer: an HTTP client, the credentials a check sends, and the polling engine (the judgement is pure: `rules::judge`).

pub mod client;
pub mod connect;
pub mod engine;
pub mod id;
pub mod look;
pub mod secrets;
pub mod tls_words;
