//! Pure decisions: no AWS, no tokio, no HTTP.

pub mod hook;
pub mod verdict;
