//! Role policies from template.yaml, and how `iam-rs` evaluates a check against them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use iam_rs::{
    Arn, Context, ContextValue, Decision, EvaluationOptions, IAMPolicy, IAMRequest, PolicyEvaluator, Principal,
    PrincipalId,
};
use serde::Serialize;
use serde_json::Value;

use super::{Check, Role};
use crate::moto::workspace_root;
use crate::names::{ACCOUNT, REGION};

/// The verdict on one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Allowed (an Allow matched and no Deny did).
    pub allowed: bool,
    /// The Sids of the statements that allowed it.
    pub allowed_by: Vec<String>,
}

/// Role policies, rendered from template.yaml or given directly.
#[derive(Debug, Clone)]
pub struct Policies {
    /// Where they came from, e.g. `template.yaml`.
    pub source: String,
    /// Each role's policy document as JSON.
    pub documents: HashMap<Role, Value>,
    parsed: HashMap<Role, IAMPolicy>,
}

impl Policies {
    /// The roles of template.yaml for the local estate, rendered once per process by
    /// `scripts/iam_policies.py` (the same rendering the IAM linter reads).
    pub fn template() -> &'static Policies {
        static TEMPLATE: OnceLock<Policies> = OnceLock::new();
        TEMPLATE.get_or_init(|| {
            let rendered = render_template(&[]);
            Policies::from_roles("template.yaml", &rendered)
        })
    }

    /// The roles of template.yaml for an estate whose task definitions are `families` (their task
    /// and execution roles named as the estate names them), as a user would fill in the parameters.
    pub fn template_for_families(families: &[&str]) -> Policies {
        let roles = |suffix: &str| {
            families.iter().map(|f| format!("arn:aws:iam::{ACCOUNT}:role/{f}-{suffix}")).collect::<Vec<_>>().join(",")
        };
        let (task, execution) = (roles("task"), roles("execution"));
        let rendered = render_template(&[("TaskRoleArns", &task), ("ExecutionRoleArns", &execution)]);
        Policies::from_roles("template.yaml (task roles of the test's families)", &rendered)
    }

    /// Policies from `{"DeployRole": <document>, "VerifyRole": <document>}`.
    pub fn from_roles(source: &str, roles: &Value) -> Self {
        let mut documents = HashMap::new();
        let mut parsed = HashMap::new();
        for role in Role::ALL {
            let doc = roles[role.logical_id()].clone();
            let policy = IAMPolicy::from_json(&doc.to_string())
                .unwrap_or_else(|e| panic!("{source}: {} is not a policy iam-rs reads: {e}", role.logical_id()));
            documents.insert(role, doc);
            parsed.insert(role, policy);
        }
        Self { source: source.to_string(), documents, parsed }
    }

    /// These policies with `role`'s statements for which `drop` answers true removed.
    pub fn without(&self, role: Role, drop: impl Fn(&Value) -> bool) -> Self {
        let mut roles = serde_json::Map::new();
        for r in Role::ALL {
            let mut doc = self.documents[&r].clone();
            if r == role {
                if let Some(statements) = doc["Statement"].as_array_mut() {
                    statements.retain(|s| !drop(s));
                }
            }
            roles.insert(r.logical_id().to_string(), doc);
        }
        Self::from_roles(&format!("{} (edited)", self.source), &Value::Object(roles))
    }

    /// Evaluates one check for `role`.
    pub fn evaluate(&self, role: Role, check: &Check) -> Verdict {
        let policy = &self.parsed[&role];
        let resource = if check.resource == "*" {
            // iam-rs needs an ARN; this one matches only a policy resource of "*" (or `...:*`), as
            // AWS evaluates actions that support no resource-level permissions.
            let service = check.action.split(':').next().unwrap_or("?");
            format!("arn:aws:{service}:{REGION}:{ACCOUNT}:*")
        } else {
            check.resource.clone()
        };
        let Ok(resource) = Arn::parse(&resource) else {
            return Verdict { allowed: false, allowed_by: vec![] };
        };
        let mut context = Context::new();
        for (k, v) in &check.context {
            context.insert(k.clone(), ContextValue::String(v.clone()));
        }
        let request = IAMRequest::new_with_context(
            Principal::Aws(PrincipalId::String(role.arn())),
            check.action.clone(),
            resource,
            context,
        );
        let evaluator = PolicyEvaluator::with_policies(vec![policy.clone()]).with_options(EvaluationOptions {
            collect_match_details: true,
            stop_on_explicit_deny: false,
            ..EvaluationOptions::default()
        });
        match evaluator.evaluate(&request) {
            Ok(result) => Verdict {
                allowed: result.decision == Decision::Allow,
                allowed_by: result
                    .statement_details
                    .iter()
                    .filter(|s| s.conditions_satisfied && s.effect == iam_rs::IAMEffect::Allow)
                    .map(|s| s.sid.clone().unwrap_or_else(|| "(no Sid)".into()))
                    .collect(),
            },
            Err(_) => Verdict { allowed: false, allowed_by: vec![] },
        }
    }

    /// The Sids of `role`'s statements.
    pub fn sids(&self, role: Role) -> Vec<String> {
        self.documents[&role]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)").to_string())
            .collect()
    }
}

/// Renders template.yaml's role policies for the local estate, with `--set` overrides.
pub fn render_template(overrides: &[(&str, &str)]) -> Value {
    render_stack(overrides)["roles"].clone()
}

/// Everything `scripts/iam_policies.py` renders: `roles`, `stack` (physical ids and ARNs, e.g.
/// `ArtifactKeyArn`), `resource_policies` and `trust_policies`.
pub fn render_stack(overrides: &[(&str, &str)]) -> Value {
    let root = workspace_root();
    let venv = root.join(".venv/bin/python");
    let python: PathBuf = if venv.exists() { venv } else { PathBuf::from("python3") };
    let mut cmd = Command::new(python);
    cmd.arg(root.join("scripts/iam_policies.py"));
    for (k, v) in overrides {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run scripts/iam_policies.py (scripts/setup installs its PyYAML)");
    assert!(out.status.success(), "scripts/iam_policies.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("iam_policies.py prints JSON")
}
