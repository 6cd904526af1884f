//! What to check before enforcing, printed to stderr after the file: each `# check`, the images
//! pushdeploy leaves alone, the stack's parameters (the roles it must pass), ECR lifecycle rules.
//! Pure.

use super::propose::Proposal;
use super::smoke::{short_name, SmokeFinding};

/// The checklist's lines, in the order to work through them.
pub fn checklist(p: &Proposal) -> Vec<String> {
    let mut out = Vec::new();
    for plan in &p.services {
        for e in &plan.entries {
            if let Some(why) = &e.tags.check {
                out.push(format!("{} tags: {why}", e.name));
            }
        }
        match &plan.smoke {
            SmokeFinding::Proposed(s) => {
                out.extend(s.checks.iter().map(|c| format!("{} smoke url {}: {c}", plan.service, s.url)));
                out.push(format!("{} smoke check path {:?}: {}", plan.service, s.check_path, s.check_path_note));
                if let Some(lb) = &s.internal {
                    out.push(format!(
                        "{} smoke: {lb} is internal: verify reaches it only from inside the VPC (the stack's VerifySubnetIds and VerifySecurityGroupIds)",
                        plan.service
                    ));
                }
            }
            SmokeFinding::NoLoadBalancer => {
                out.push(format!("{}: no smoke test (no load balancer): verify judges by ECS alone", plan.service))
            }
            SmokeFinding::Unreached(tg) => out.push(format!(
                "{}: no smoke test: no listener rule forwards to {}; add [service.smoke] by hand",
                plan.service,
                short_name(tg)
            )),
        }
        if plan.blue_green.is_some() {
            out.push(format!("{}: blue/green: see the commented [service.hook]", plan.service));
        }
        for (c, image, why) in &plan.foreign {
            out.push(format!("{} container {c} is not deployed by pushdeploy: {image} ({why})", plan.service));
        }
        if !plan.circuit_breaker {
            out.push(format!(
                "{}: the deployment circuit breaker is off: tasks that never become healthy are ECS's to stop (deploymentCircuitBreaker enable and rollback)",
                plan.service
            ));
        }
    }
    for (name, why) in &p.skipped {
        out.push(format!("{name} is left out: {why}"));
    }
    out.extend(stack(p));
    out
}

/// The stack's parameters for these services, the roles it must pass, and the ECR and
/// Terraform settings a rollback depends on.
fn stack(p: &Proposal) -> Vec<String> {
    let mut repos: Vec<&str> = Vec::new();
    let (mut task_roles, mut execution_roles): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for plan in &p.services {
        for e in &plan.entries {
            if !repos.contains(&e.repository.as_str()) {
                repos.push(&e.repository);
            }
        }
        for (role, list) in [(&plan.roles.0, &mut task_roles), (&plan.roles.1, &mut execution_roles)] {
            if let Some(r) = role.as_deref().filter(|r| !list.contains(r)) {
                list.push(r);
            }
        }
    }
    if repos.is_empty() {
        return Vec::new();
    }
    let prefix = common_prefix(&repos);
    vec![
        format!(
            "stack parameters: ClusterName={} RepositoryNames={} RepositoryArnPrefix={prefix}",
            p.cluster,
            repos.join(",")
        ),
        format!(
            "iam:PassRole: a copy keeps the task definition's roles, so the stack must pass each: TaskRoleArns={} ExecutionRoleArns={} (a role added later in Terraform needs a stack update, or every deployment of that service is AccessDenied)",
            task_roles.join(","),
            execution_roles.join(",")
        ),
        format!(
            "ECR lifecycle rules of {}: a rollback needs the digest it returns to; expire untagged images only after days (sinceImagePushed 30) or keep 20 or more, never imageCountMoreThan 1 (aws ecr get-lifecycle-policy --repository-name NAME)",
            repos.join(", ")
        ),
        "Terraform (or CloudFormation) owning the services: lifecycle { ignore_changes = [task_definition] }, or the next apply reverts what pushdeploy deployed".into(),
        "then: pushdeploy validate FILE --cluster CLUSTER --verify-timeout SECONDS, upload, push, read the verdicts; set mode = \"enforce\" when they are right".into(),
    ]
}

/// The longest common prefix of the repository names (empty: every repository).
fn common_prefix(names: &[&str]) -> String {
    let first = names[0];
    let len = names.iter().map(|n| first.bytes().zip(n.bytes()).take_while(|(a, b)| a == b).count()).min().unwrap_or(0);
    first[..len].to_string()
}
