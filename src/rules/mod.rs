//! Pure decisions: what a push or an operator's action does, decided from what was read, as a
//! value the flows apply. No AWS calls, no tokio.

pub mod base;
pub mod decision;
pub mod freshness;
pub mod plan;
pub mod push;
pub mod rolled_back;
pub mod started;
pub mod taskdef;
