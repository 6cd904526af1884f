//! Plain types and their vocabulary, imported by every layer above and importing none of them.

pub mod artifact;
pub mod ecs_view;
pub mod error;
pub mod glob;
pub mod image;
pub mod lease;
pub mod lifecycle;
pub mod media_type;
pub mod names;
pub mod record;
pub mod text;
pub mod timing;
