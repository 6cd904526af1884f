//! ECS ARNs: a service's (in either of ECS's forms), a cluster's and a service deployment's.

use crate::domain::error::InputError;
use crate::domain::image::truncate;

/// An ECS service named by ARN, in either of ECS's two forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceArn {
    /// The cluster: the long form names it; the short form (`…:service/<name>`, every service
    /// created before ECS's long ARN format and never migrated) does not.
    pub cluster: Option<String>,
    /// The service name.
    pub service: String,
}

/// The resource part of an ECS ARN (`service/…`, `cluster/…`), or `None` when `arn` is no ECS ARN.
fn ecs_resource(arn: &str) -> Option<&str> {
    let mut parts = arn.strip_prefix("arn:")?.splitn(5, ':');
    let (_partition, service, _region, _account) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (service == "ecs").then_some(parts.next()?)
}

/// `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>` (long form) or
/// `arn:aws:ecs:<region>:<account>:service/<service>` (short form) → the cluster, if named, and the service.
pub fn parse_service_arn(arn: &str) -> Result<ServiceArn, InputError> {
    let bad = || InputError::new(format!("{:?} is not an ECS service ARN", truncate(arn)));
    let mut parts = ecs_resource(arn).ok_or_else(bad)?.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(c), Some(s), None) if is_name(c) && is_name(s) => {
            Ok(ServiceArn { cluster: Some(c.to_string()), service: s.to_string() })
        }
        (Some("service"), Some(s), None, None) if is_name(s) => {
            Ok(ServiceArn { cluster: None, service: s.to_string() })
        }
        _ => Err(bad()),
    }
}

/// `arn:aws:ecs:<region>:<account>:cluster/<cluster>` → the cluster name.
pub fn parse_cluster_arn(arn: &str) -> Result<String, InputError> {
    let bad = || InputError::new(format!("{:?} is not an ECS cluster ARN", truncate(arn)));
    match ecs_resource(arn).ok_or_else(bad)?.split_once('/') {
        Some(("cluster", c)) if is_name(c) => Ok(c.to_string()),
        _ => Err(bad()),
    }
}

/// `arn:aws:ecs:<region>:<account>:service-deployment/<cluster>/<service>/<id>` → (cluster,
/// service). ECS names service deployments in this one form, whatever the service's own ARN.
pub fn parse_service_deployment_arn(arn: &str) -> Result<(String, String), InputError> {
    let bad = || InputError::new(format!("{:?} is not a service deployment ARN", truncate(arn)));
    let mut parts = ecs_resource(arn).ok_or_else(bad)?.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service-deployment"), Some(c), Some(s), Some(id), None) if is_name(c) && is_name(s) && is_name(id) => {
            Ok((c.to_string(), s.to_string()))
        }
        _ => Err(bad()),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_arns_parse_in_both_forms() {
        let long =
            parse_service_arn("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-cluster/todo-backend").unwrap();
        assert_eq!(long, ServiceArn { cluster: Some("todo-cluster".into()), service: "todo-backend".into() });
        let short = parse_service_arn("arn:aws:ecs:ap-southeast-2:123456789012:service/todo-backend").unwrap();
        assert_eq!(short, ServiceArn { cluster: None, service: "todo-backend".into() });
        assert_eq!(parse_service_arn("arn:aws-cn:ecs:cn-north-1:1:service/s").unwrap().service, "s");
        for bad in [
            "x",
            "arn:aws:ecs:r:1:service/",
            "arn:aws:ecs:r:1:service/a/b/c",
            "arn:aws:ecs:r:1:service//b",
            "arn:aws:ecs:r:1:cluster/a",
            "arn:aws:ecr:r:1:service/a/b",
            "arn:aws:ecs:r:1:service-deployment/a/b/c",
            "arn:aws:ecs:r:1:service/a b",
        ] {
            assert!(parse_service_arn(bad).unwrap_err().0.contains("not an ECS service ARN"), "{bad}");
        }
        assert_eq!(parse_cluster_arn("arn:aws:ecs:r:1:cluster/todo-cluster").unwrap(), "todo-cluster");
        assert!(parse_cluster_arn("arn:aws:ecs:r:1:service/todo-cluster").is_err());
        let d = parse_service_deployment_arn("arn:aws:ecs:r:1:service-deployment/c/s/AbC123").unwrap();
        assert_eq!(d, ("c".to_string(), "s".to_string()));
        assert!(parse_service_deployment_arn("arn:aws:ecs:r:1:service-deployment/s/AbC123").is_err());
    }
}
