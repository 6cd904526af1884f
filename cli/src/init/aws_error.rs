//! How `init` words an AWS call that failed.

use aws_sdk_ecs::error::ProvideErrorMetadata;

use crate::insight::{sdk_error_detail, Failed};

/// An AWS call that failed: what, on what, ECS's or ELB's word, and what to check.
pub fn failed<E, R>(call: &str, target: &str, permission: &str, e: aws_sdk_ecs::error::SdkError<E, R>) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = sdk_error_detail(&e);
    Failed(format!(
        "{call} for {target} failed: {detail}. Check: the cluster, the region (AWS_REGION) and {permission} for your credentials"
    ))
}
