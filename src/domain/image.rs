//! Container image references, parsed once: `registry/repository[:tag][@sha256:digest]`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::error::InputError;

/// Longest tag Docker and ECR accept.
const MAX_TAG_LEN: usize = 128;
/// Longest repository name ECR accepts.
const MAX_REPOSITORY_LEN: usize = 256;

/// A `sha256:` image digest, validated to be 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 hex>`; anything else is refused.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| InputError::new(format!("image digest {:?} is not a sha256 digest", truncate(s))))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(InputError::new(format!(
                "image digest {:?} must be sha256: followed by 64 lowercase hex characters",
                truncate(s)
            )));
        }
        Ok(Self(s.to_string()))
    }

    /// The full `sha256:…` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex characters, as `docker images` shows them.
    pub fn short(&self) -> &str {
        &self.0["sha256:".len().."sha256:".len() + 12]
    }
}

impl TryFrom<String> for Digest {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image reference as ECS task definitions and ECR use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Host part, e.g. `123456789012.dkr.ecr.ap-southeast-2.amazonaws.com`; empty for Docker Hub short names.
    pub registry: String,
    /// Repository path inside the registry, e.g. `todo-frontend` or `team/api`.
    pub repository: String,
    /// Tag, when the reference names one.
    pub tag: Option<String>,
    /// Digest, when the reference is pinned.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference as found in a container definition.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        if s.is_empty() || s.len() > 1024 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::new(format!("image reference {:?} is not valid", truncate(s))));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A registry is the first path segment only when it looks like a host.
        let (registry, path) = match rest.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path)
            }
            _ => (String::new(), rest),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) => (repo, Some(tag.to_string())),
            None => (path, None),
        };
        validate_repository(repository)?;
        if let Some(tag) = &tag {
            validate_tag(tag)?;
        }
        Ok(Self { registry, repository: repository.to_string(), tag, digest })
    }

    /// The ECR registry host for an account and region.
    pub fn ecr_registry(account: &str, region: &str) -> String {
        format!("{account}.dkr.ecr.{region}.amazonaws.com")
    }

    /// `registry/repository@digest`, the form pushdeploy pins task definitions to.
    pub fn pinned_uri(&self) -> Option<String> {
        let digest = self.digest.as_ref()?;
        Some(format!("{}@{}", self.name(), digest))
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        if self.registry.is_empty() {
            self.repository.clone()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// True when both name the same repository in the same registry.
    pub fn same_repository(&self, other: &ImageRef) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Checks a repository name against ECR's rules (lowercase, digits, `._-/`, no `..`).
pub fn validate_repository(name: &str) -> Result<(), InputError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_REPOSITORY_LEN
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && !name.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if ok {
        Ok(())
    } else {
        Err(InputError::new(format!(
            "repository name {:?} is not a valid ECR repository name (lowercase letters, digits, . _ - /)",
            truncate(name)
        )))
    }
}

/// Checks a tag against Docker's rules (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn validate_tag(tag: &str) -> Result<(), InputError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(InputError::new(format!(
            "image tag {:?} is not a valid tag (at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -)",
            truncate(tag)
        )))
    }
}

/// Shortens untrusted text before it goes into an error message or a log line.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

    #[test]
    fn parses_ecr_reference_with_tag() {
        let r = ImageRef::parse("123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/todo-frontend:latest").unwrap();
        assert_eq!(r.registry, "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com");
        assert_eq!(r.repository, "todo-frontend");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.digest.is_none());
    }

    #[test]
    fn parses_pinned_reference_and_round_trips() {
        let s = format!("123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/team/api@{D}");
        let r = ImageRef::parse(&s).unwrap();
        assert_eq!(r.repository, "team/api");
        assert_eq!(r.digest.as_ref().unwrap().short(), "7f5b2640fe6f");
        assert_eq!(r.to_string(), s);
        assert_eq!(r.pinned_uri().unwrap(), s);
    }

    #[test]
    fn docker_hub_short_names_have_no_registry() {
        let r = ImageRef::parse("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable").unwrap();
        assert_eq!(r.registry, "public.ecr.aws");
        let r = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(r.registry, "");
        assert_eq!(r.repository, "nginx");
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn refuses_bad_digests() {
        assert!(Digest::parse("md5:abc").is_err());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&D.to_uppercase().replace("SHA256", "sha256")).is_err());
        assert!(Digest::parse(D).is_ok());
    }

    #[test]
    fn refuses_bad_tags_and_repositories() {
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag("v1.4.2").is_ok());
        assert!(validate_tag("ü").is_err());
        assert!(validate_repository("../etc").is_err());
        assert!(validate_repository("Todo").is_err());
        assert!(validate_repository("a//b").is_err());
        assert!(validate_repository("todo-backend").is_ok());
    }
}
