//! A `[[service]]` entry this release of pushdeploy cannot read: which service it is, and why
//! (read by [`super::compat`]).

use crate::domain::error::Unreadable;
use crate::domain::glob::TagPattern;

/// A `[[service]]` entry this release cannot read, and which service it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableService {
    /// Its index among the `[[service]]` entries (file order).
    pub entry: usize,
    /// ECS cluster name.
    pub cluster: String,
    /// ECS service name.
    pub service: String,
    /// The ECR repository feeding it.
    pub repository: String,
    /// Its tag patterns, when they could be read; `None`: every push to `repository` is its.
    pub tags: Option<Vec<TagPattern>>,
    /// Why: file, key, what is wrong, and this release's version.
    pub problem: Unreadable,
}

impl UnreadableService {
    /// The entry's `name`.
    pub fn name(&self) -> &str {
        &self.problem.name
    }

    /// `cluster/service`.
    pub fn target(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }

    /// True when a push of `repository:tag` may be this service's (every tag when its tags are unreadable).
    pub fn watches(&self, repository: &str, tag: &str) -> bool {
        self.repository == repository && self.tags.as_ref().is_none_or(|t| t.iter().any(|p| p.matches(tag)))
    }
}
