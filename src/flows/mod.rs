//! The flows: describe (AWS reads), decide (a value from `rules`), apply.

pub mod settle;
