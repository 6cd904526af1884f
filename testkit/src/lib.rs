//! Local stand-ins for AWS and the Lambda service: moto, the todo estate, a runtime-API host.
//!
//! Used by the integration tests, the demo and the benchmarks; never by the functions.

pub mod canary;
pub mod clients;
pub mod configs;
pub mod estate;
pub mod events;
pub mod faults;
pub mod guard;
pub mod http;
pub mod iam;
pub mod lambda;
pub mod moto;
pub mod names;
pub mod revisions;
pub mod runtime;
pub mod sns_sink;
pub mod standin;
pub mod tls;
pub mod traffic;
