//! Local stand-ins for AWS and the Lambda service: moto, the todo estate, a runtime-API host.
//!
//! Used by the integration tests, the demo and the benchmarks; never by the functions.

pub mod estate;
pub mod faults;
pub mod guard;
pub mod http;
pub mod iam;
pub mod lambda;
pub mod moto;
pub mod revisions;
pub mod runtime;
pub mod standin;
pub mod tls;
