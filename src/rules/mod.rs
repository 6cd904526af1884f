//! Pure decisions: no AWS, no tokio, no HTTP; each takes what was read and returns a value.

pub mod hook;
pub mod hook_verdict;
pub mod rollback;
pub mod verdict;
