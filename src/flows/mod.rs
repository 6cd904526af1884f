//! The flows: describe (AWS reads), decide (a value from `rules`), apply.

pub mod deploy;
pub mod lease;
pub mod metrics;
pub mod recovery;
pub mod rollback;
pub mod settle;
pub mod verify;
