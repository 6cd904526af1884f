//! Names every layer shares: the prefix of pushdeploy's own task-definition tags and the short
//! form of a task definition ARN. Here, below both `aws` and `rules`, so neither imports the other.

/// The prefix of every task definition tag pushdeploy sets: a revision carrying one is its copy.
pub const OWN_TAG_PREFIX: &str = "pushdeploy:";

/// `family:revision` of a task definition, or its ARN's tail.
pub fn short_name(td_arn: &str) -> &str {
    td_arn.rsplit('/').next().unwrap_or(td_arn)
}
