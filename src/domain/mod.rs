//! Plain types and their vocabulary, imported by every layer above and importing none of them.

pub mod artifact;
pub mod ecs_view;
pub mod names;
