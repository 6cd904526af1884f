//! The flows: describe (AWS reads), decide (a value from `rules`), apply.

pub mod lease;
pub mod recovery;
pub mod rollback;
pub mod settle;
