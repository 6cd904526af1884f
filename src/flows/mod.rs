//! Flows: each reads AWS, takes a decision from the pure layers and applies it.

pub mod lease;
pub mod recovery;
pub mod rollback;
