//! Plain types and their vocabulary, imported by every layer above and importing none of them.

pub mod arn;
pub mod artifact;
pub mod ecs_view;
pub mod error;
pub mod glob;
pub mod hook_check;
pub mod image;
pub mod lease;
pub mod lifecycle;
pub mod media_type;
pub mod mode;
pub mod names;
pub mod passed_over;
pub mod pause;
pub mod record;
pub mod rollback_request;
pub mod secret;
pub mod text;
pub mod timing;
