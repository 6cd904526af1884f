//! Whether the stack may pass a task definition's roles: deploy registers a copy of the running
//! task definition with its task and execution roles, and ECS refuses RegisterTaskDefinition
//! unless the deploy role holds iam:PassRole on both. The template grants it on the stack's
//! TaskRoleArns and ExecutionRoleArns only, so a role added in Terraform needs a stack update.

use crate::domain::glob::wildcard_match;

/// The roles the stack passes: the template's TaskRoleArns and ExecutionRoleArns (IAM resource
/// patterns: `*` and `?` as wildcards), given to the functions as `PUSHDEPLOY_TASK_ROLE_ARNS` and
/// `PUSHDEPLOY_EXECUTION_ROLE_ARNS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassableRoles {
    /// TaskRoleArns.
    pub task: Vec<String>,
    /// ExecutionRoleArns.
    pub execution: Vec<String>,
}

impl PassableRoles {
    /// From the two comma-separated lists (CloudFormation's `!Join [",", …]` of each parameter);
    /// `None` when neither is set, as on a stack older than these variables: then nothing is known.
    pub fn from_lists(task: Option<&str>, execution: Option<&str>) -> Option<Self> {
        if task.is_none() && execution.is_none() {
            return None;
        }
        let split = |list: Option<&str>| -> Vec<String> {
            list.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        Some(Self { task: split(task), execution: split(execution) })
    }
}

/// Whether `role` (an ARN, or the bare role name ECS also accepts) matches one of `patterns`.
fn passes(role: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        if role.starts_with("arn:") {
            wildcard_match(p.as_bytes(), role.as_bytes())
        } else {
            // A bare name: the pattern's role name (the ARN's last path segment).
            let name = p.rsplit(['/', ':']).next().unwrap_or(p);
            wildcard_match(name.as_bytes(), role.as_bytes())
        }
    })
}

/// One warning per role of the task definition the stack does not pass: each says which role,
/// which parameter lacks it, what will fail and what to do. Empty when every role is passed.
pub fn unpassable(task_role: Option<&str>, execution_role: Option<&str>, stack: &PassableRoles) -> Vec<String> {
    let mut warnings = Vec::new();
    for (kind, role, patterns, parameter) in [
        ("task role", task_role, &stack.task, "TaskRoleArns"),
        ("execution role", execution_role, &stack.execution, "ExecutionRoleArns"),
    ] {
        if let Some(role) = role.filter(|r| !r.is_empty() && !passes(r, patterns)) {
            warnings.push(format!(
                "{kind} {role} is not in the stack's {parameter}: RegisterTaskDefinition will be refused; update the stack with it"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "arn:aws:iam::123456789012:role/todo-app";
    const EXEC: &str = "arn:aws:iam::123456789012:role/todo-exec";

    /// A case: its name, the task definition's task and execution roles, the stack's lists, and
    /// how each expected warning starts.
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, PassableRoles, &'a [&'a str]);

    fn stack(task: &str, execution: &str) -> PassableRoles {
        PassableRoles::from_lists(Some(task), Some(execution)).unwrap()
    }

    #[test]
    fn each_role_the_stack_does_not_pass_is_named_with_its_parameter() {
        let cases: [Case; 8] = [
            ("both passed", Some(APP), Some(EXEC), stack(APP, EXEC), &[]),
            ("no roles at all", None, None, stack("", ""), &[]),
            ("empty role fields", Some(""), Some(""), stack("", ""), &[]),
            (
                "task role missing",
                Some(APP),
                Some(EXEC),
                stack("", EXEC),
                &["task role arn:aws:iam::123456789012:role/todo-app is not in the stack's TaskRoleArns"],
            ),
            (
                "execution role missing",
                Some(APP),
                Some(EXEC),
                stack(APP, "arn:aws:iam::123456789012:role/other"),
                &["execution role arn:aws:iam::123456789012:role/todo-exec is not in the stack's ExecutionRoleArns"],
            ),
            ("both missing", Some(APP), Some(EXEC), stack("", ""), &["task role", "execution role"]),
            ("a wildcard pattern passes", Some(APP), None, stack("arn:aws:iam::123456789012:role/todo-*", ""), &[]),
            ("a bare role name is matched by name", Some("todo-app"), None, stack(&format!("{APP}, {EXEC}"), ""), &[]),
        ];
        for (name, task, exec, roles, expected) in cases {
            let got = unpassable(task, exec, &roles);
            assert_eq!(got.len(), expected.len(), "{name}: {got:?}");
            for (g, e) in got.iter().zip(expected) {
                assert!(g.starts_with(e), "{name}: {g}");
                assert!(g.ends_with("RegisterTaskDefinition will be refused; update the stack with it"), "{name}: {g}");
            }
        }
    }

    #[test]
    fn a_role_in_another_account_or_path_does_not_match() {
        let roles = stack(APP, "");
        assert_eq!(unpassable(Some("arn:aws:iam::999999999999:role/todo-app"), None, &roles).len(), 1);
        assert_eq!(unpassable(Some("arn:aws:iam::123456789012:role/team/todo-app"), None, &roles).len(), 1);
        assert_eq!(unpassable(Some("todo-other"), None, &roles).len(), 1);
    }

    #[test]
    fn unset_lists_mean_unknown_and_empty_ones_pass_nothing() {
        assert_eq!(PassableRoles::from_lists(None, None), None);
        assert_eq!(PassableRoles::from_lists(Some(""), None), Some(PassableRoles::default()));
        assert_eq!(stack(" a , b ,", "").task, ["a", "b"]);
    }
}
