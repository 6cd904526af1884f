//! Plain types and their vocabulary, importing nothing above them.

pub mod lifecycle;
