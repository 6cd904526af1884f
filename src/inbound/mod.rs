//! What arrives: one small parser per payload family.

pub mod hook;
