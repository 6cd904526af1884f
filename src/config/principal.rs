//! `trusted_registrants` patterns: which IAM principals' task-definition revisions a
//! `base = "family"` rollout may copy (and pushdeploy's own roles).

use crate::domain::glob::wildcard_match;

/// One entry of `trusted_registrants` (or one of pushdeploy's own roles): an IAM role, user or
/// the account's root, or an STS assumed-role session, with `*` and `?` inside a part of the ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalPattern {
    text: String,
    /// For a role: the prefix of its sessions' ARNs and the role name's pattern. ECS names the
    /// session that registered a revision (`…:sts::…:assumed-role/<role>/<session>`), never the
    /// role itself, and without the role's path.
    sessions: Option<(String, String)>,
}

const SHAPES: &str = "arn:aws:iam::<account>:role/<name>, arn:aws:iam::<account>:user/<name> or arn:aws:sts::<account>:assumed-role/<role>/<session>";

fn only_wildcards(s: &str) -> bool {
    s.chars().all(|c| c == '*' || c == '?')
}

impl PrincipalPattern {
    /// Validates a pattern; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let shown = crate::domain::image::truncate(s);
        if s.len() > 2048 {
            return Err(format!("{shown:?} is longer than an IAM ARN can be"));
        }
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(format!("{shown:?} is not a principal ARN: use {SHAPES}"));
        };
        if arn != "arn" {
            return Err(format!("{shown:?} is not a principal ARN: use {SHAPES}"));
        }
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(format!("{shown:?}: partition {partition:?} is not aws, aws-cn or aws-us-gov"));
        }
        if !region.is_empty() {
            return Err(format!("{shown:?}: IAM and STS ARNs name no region (arn:aws:iam::<account>:…)"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{shown:?}: the account must be one account's 12 digits (a wildcard there would trust principals of any account)"
            ));
        }
        if let Some(c) = resource.chars().find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-/*?".contains(*c))) {
            return Err(format!("{shown:?} has {c:?}, which no IAM name has"));
        }
        let sessions = sessions_of(&shown, partition, service, account, resource)?;
        Ok(Self { text: s.to_string(), sessions })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `principal` (a revision's `registeredBy`) is one this pattern trusts. A wildcard
    /// matches within one part of the ARN, never across a `/`.
    pub fn matches(&self, principal: &str) -> bool {
        let by_parts = |pattern: &str, text: &str| {
            let (p, t): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), text.split('/').collect());
            p.len() == t.len() && p.iter().zip(&t).all(|(p, t)| wildcard_match(p.as_bytes(), t.as_bytes()))
        };
        if by_parts(&self.text, principal) {
            return true;
        }
        let Some((prefix, role)) = &self.sessions else { return false };
        principal
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(r, session)| !session.is_empty() && !session.contains('/') && by_parts(role, r))
    }
}

/// For a role pattern, its sessions' ARN prefix and the role name's pattern; `None` for the other
/// shapes (matched as written); `Err` for a shape that names no principal or would trust too many.
fn sessions_of(
    shown: &str,
    partition: &str,
    service: &str,
    account: &str,
    resource: &str,
) -> Result<Option<(String, String)>, String> {
    let name_of = |rest: &str| rest.rsplit('/').next().unwrap_or(rest).to_string();
    let sessions = match (service, resource.split_once('/')) {
        ("iam", None) if resource == "root" => None,
        ("iam", Some(("role", rest))) => {
            // A role's sessions are named without its path: `role/ci/*` would trust every role.
            if rest.is_empty() || only_wildcards(&name_of(rest)) {
                return Err(format!(
                    "{shown:?} would trust every role of account {account} (ECS names a role's sessions without its path): name the role; wildcards within the name are fine"
                ));
            }
            Some((format!("arn:{partition}:sts::{account}:assumed-role/"), name_of(rest)))
        }
        ("iam", Some(("user", rest))) => {
            if rest.split('/').all(only_wildcards) {
                return Err(format!("{shown:?} would trust every user of account {account}: name the users"));
            }
            None
        }
        ("sts", Some(("assumed-role", rest))) => {
            // Whoever assumes a role chooses the session name: the role is what is trusted.
            match rest.split_once('/') {
                Some((role, session)) if !only_wildcards(role) && !session.is_empty() && !session.contains('/') => {
                    None
                }
                _ => {
                    return Err(format!(
                        "{shown:?}: an assumed-role pattern names the role and then the session (assumed-role/<role>/<session>, e.g. assumed-role/terraform/*); whoever assumes a role chooses the session name, so the role must be named"
                    ))
                }
            }
        }
        _ => return Err(format!("{shown:?} names no role, user or assumed-role session: use {SHAPES}")),
    };
    Ok(sessions)
}

impl std::fmt::Display for PrincipalPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERRAFORM: &str = "arn:aws:iam::123456789012:role/terraform";
    const DEPLOY: &str = "arn:aws:iam::123456789012:role/pushdeploy/prod/pushdeploy-DeployRole-AB12";

    fn p(s: &str) -> PrincipalPattern {
        PrincipalPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_role_is_trusted_through_its_sessions_whatever_its_path() {
        let role = p(TERRAFORM);
        assert!(role.matches("arn:aws:sts::123456789012:assumed-role/terraform/ci-run-42"));
        assert!(!role.matches("arn:aws:sts::123456789012:assumed-role/terraform-admin/x"));
        assert!(!role.matches("arn:aws:sts::210987654321:assumed-role/terraform/x"), "another account");
        assert!(
            !role.matches("arn:aws:sts::123456789012:assumed-role/developer/terraform"),
            "a session name is the assumer's choice"
        );
        assert!(!role.matches("arn:aws:sts::123456789012:assumed-role/terraform/"), "no session");
        let pathed = p(DEPLOY);
        assert!(pathed.matches("arn:aws:sts::123456789012:assumed-role/pushdeploy-DeployRole-AB12/pushdeploy-deploy"));
        let sso = p("arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Infra_*");
        assert!(sso.matches("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Infra_0a1b2c/alice@example.com"));
        assert!(!sso.matches("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b2c/alice@example.com"));
    }

    #[test]
    fn sessions_users_and_root_match_as_written_and_wildcards_stay_within_a_part() {
        let any_session = p("arn:aws:sts::123456789012:assumed-role/terraform/*");
        assert!(any_session.matches("arn:aws:sts::123456789012:assumed-role/terraform/apply"));
        assert!(!any_session.matches("arn:aws:sts::123456789012:assumed-role/terraform-x/apply"));
        let prefix = p("arn:aws:sts::123456789012:assumed-role/tf-*/*");
        assert!(prefix.matches("arn:aws:sts::123456789012:assumed-role/tf-prod/s"));
        assert!(!prefix.matches("arn:aws:sts::123456789012:assumed-role/tf-prod/s/t"), "a * never spans a /");
        assert!(p("arn:aws:iam::123456789012:user/alice").matches("arn:aws:iam::123456789012:user/alice"));
        assert!(!p("arn:aws:iam::123456789012:user/alice").matches("arn:aws:iam::123456789012:user/alice2"));
        assert!(p("arn:aws:iam::123456789012:user/deployers/*").matches("arn:aws:iam::123456789012:user/deployers/bob"));
        assert!(p("arn:aws:iam::123456789012:root").matches("arn:aws:iam::123456789012:root"));
    }

    #[test]
    fn patterns_that_would_trust_too_much_are_refused_with_the_reason() {
        for (bad, why) in [
            ("*", "not a principal ARN"),
            ("terraform", "not a principal ARN"),
            ("arn:aws:iam::*:role/terraform", "12 digits"),
            ("arn:aws:iam::12345678901:role/terraform", "12 digits"),
            ("arn:aws:iam:ap-southeast-2:123456789012:role/terraform", "no region"),
            ("arn:aws:iam::123456789012:role/*", "every role"),
            ("arn:aws:iam::123456789012:role/ci/*", "every role"),
            ("arn:aws:iam::123456789012:user/*", "every user"),
            ("arn:aws:sts::123456789012:assumed-role/*/terraform", "the role must be named"),
            ("arn:aws:sts::123456789012:assumed-role/terraform", "the role must be named"),
            ("arn:aws:iam::123456789012:*", "names no role"),
            ("arn:aws:ecs::123456789012:role/terraform", "names no role"),
            ("arn:evil:iam::123456789012:role/terraform", "partition"),
            ("arn:aws:iam::123456789012:role/terra form", "' '"),
        ] {
            let e = PrincipalPattern::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
