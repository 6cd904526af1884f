//! Pure decisions: no AWS, no tokio; each takes what was read and returns a value.

pub mod rollback;
