//! Pure decisions: no AWS, no tokio, no HTTP.

pub mod hook;
pub mod hook_verdict;
pub mod verdict;
