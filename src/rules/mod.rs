//! Pure decisions: no AWS, no tokio, no HTTP; each takes what was read and returns a value the
//! flows apply.

pub mod base;
pub mod confirm;
pub mod decision;
pub mod freshness;
pub mod hook;
pub mod hook_verdict;
pub mod judge;
pub mod notify;
pub mod outcome;
pub mod plan;
pub mod probe;
pub mod push;
pub mod report;
pub mod retention;
pub mod rollback;
pub mod rollback_verdict;
pub mod rolled_back;
pub mod started;
pub mod target_group;
pub mod task_digests;
pub mod taskdef;
pub mod verdict;
