//! Which revision a `base = "family"` rollout copies. Pure: ECS's answers in, a choice out.
//!
//! A copy of the family's newest revision takes everything but the image from whoever registered
//! it: command, environment, sidecars, privileges, the task role. So the newest revision is taken
//! only when a principal the config trusts registered it (`trusted_registrants`, matched against
//! the `registeredBy` ECS keeps for every revision); a newer one from anybody else is passed over,
//! and said so. Tags are no proof of origin: anyone with `ecs:TagResource` can add them later, so
//! pushdeploy's own copies are recognised by their tags *and* by the role that registered them.

use crate::domain::passed_over::PassedOver;
use aws_sdk_ecs::types::Tag;

use crate::config::PrincipalPattern;
use crate::domain::ecs_view::DescribedTaskDefinition;
use crate::domain::names::short_name;

/// Who may give a family's revisions to production: the config's `trusted_registrants`, and
/// pushdeploy's own roles (whose copies are never a base, only skipped).
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// `trusted_registrants`.
    pub registrants: &'a [PrincipalPattern],
    /// The deploy and verify functions' roles (`PUSHDEPLOY_ROLE_ARNS`).
    pub own_roles: &'a [PrincipalPattern],
}

/// What one revision of the family is to a `base = "family"` rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A copy pushdeploy registered: never a base, not worth a word.
    Own,
    /// A trusted principal registered it: a base.
    Trusted,
    /// Not a base, for this reason.
    Untrusted(String),
}

/// True when a revision carries one of pushdeploy's tags (which anyone may add with ecs:TagResource).
fn tagged_as_own(tags: &[Tag]) -> bool {
    tags.iter().any(|t| t.key().is_some_and(|k| k.starts_with(crate::domain::names::OWN_TAG_PREFIX)))
}

/// Where `td` stands: pushdeploy's own copy (its tags *and* one of its roles registered it), a
/// trusted registrant's revision, or neither (and why).
pub fn standing(td: &DescribedTaskDefinition, trust: Trust<'_>) -> Standing {
    let Some(by) = td.task_definition.registered_by() else {
        return Standing::Untrusted("ECS names no registrant for it".into());
    };
    let tagged = tagged_as_own(&td.tags);
    if tagged && trust.own_roles.iter().any(|p| p.matches(by)) {
        Standing::Own
    } else if trust.registrants.iter().any(|p| p.matches(by)) {
        Standing::Trusted
    } else if tagged {
        Standing::Untrusted("it carries pushdeploy's tags, but neither pushdeploy role registered it".into())
    } else {
        Standing::Untrusted("its registrant is not in trusted_registrants".into())
    }
}

/// Which revision to copy, and the newer ones passed over.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BaseChoice {
    /// The newest revision a trusted principal registered, among those looked at.
    pub base: Option<DescribedTaskDefinition>,
    /// Revisions newer than it that are not pushdeploy's own copies, newest first, with why.
    pub passed_over: Vec<PassedOver>,
}

/// Chooses the base from the family's newest revisions (newest first): the first a trusted
/// principal registered. pushdeploy's own copies are skipped silently; every other revision
/// before the base is passed over with its reason. With no trusted revision among them, there is
/// no base and the rollout copies what the service runs, which brings no new settings.
pub fn choose_base(newest_first: Vec<DescribedTaskDefinition>, trust: Trust<'_>) -> BaseChoice {
    let mut choice = BaseChoice::default();
    for td in newest_first {
        match standing(&td, trust) {
            Standing::Own => {}
            Standing::Trusted => {
                choice.base = Some(td);
                break;
            }
            Standing::Untrusted(reason) => choice.passed_over.push(PassedOver {
                task_definition: td.task_definition.task_definition_arn().unwrap_or_default().to_string(),
                registered_by: td.task_definition.registered_by().map(str::to_string),
                reason,
            }),
        }
    }
    choice
}

/// The choice set against what the service runs (`running`, a copy of `copied_from` when its
/// `pushdeploy:base` tag says so): no base when the service runs the base or a copy of it, and
/// then what runs, which is copied, is not among the revisions passed over. A `pushdeploy:` tag
/// on the base is dropped: a trusted registrant's revision is nobody's copy, so the tag was put
/// there later (ecs:TagResource), and the copy would name a forged origin.
pub fn against_running(mut choice: BaseChoice, running: &str, copied_from: Option<&str>) -> BaseChoice {
    choice.base = choice.base.filter(|b| {
        let arn = b.task_definition.task_definition_arn();
        arn != Some(running) && copied_from != arn
    });
    match choice.base.as_mut() {
        Some(b) => b.tags.retain(|t| !t.key().is_some_and(|k| k.starts_with(crate::domain::names::OWN_TAG_PREFIX))),
        None => choice.passed_over.retain(|p| p.task_definition != running),
    }
    choice
}

/// `reason`, and when revisions were passed over, which, and the base taken instead (`base`, or
/// what runs, `running`), for an answer's one sentence.
pub fn with_note(reason: String, base: Option<&str>, running: &str, passed_over: &[PassedOver]) -> String {
    if passed_over.is_empty() {
        return reason;
    }
    let names: Vec<&str> = passed_over.iter().map(|p| short_name(&p.task_definition)).collect();
    let base = match base {
        Some(b) => short_name(b).to_string(),
        None => format!("what runs ({})", short_name(running)),
    };
    format!(
        "{reason}; base {base}: passed over {} newer revision(s) of the family that no trusted registrant registered: {}",
        names.len(),
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::TaskDefinition;

    const TERRAFORM: &str = "arn:aws:iam::123456789012:role/terraform";
    const DEPLOY: &str = "arn:aws:iam::123456789012:role/pushdeploy/prod/pushdeploy-DeployRole-AB12";

    fn p(s: &str) -> PrincipalPattern {
        PrincipalPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn revision(n: u32, by: Option<&str>, own_tag: bool) -> DescribedTaskDefinition {
        let tags = if own_tag {
            vec![Tag::builder().key(crate::rules::plan::BASE_TAG).value("arn:…:task-definition/todo-backend:1").build()]
        } else {
            vec![Tag::builder().key("app").value("todo").build()]
        };
        DescribedTaskDefinition {
            task_definition: TaskDefinition::builder()
                .task_definition_arn(format!(
                    "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-backend:{n}"
                ))
                .set_registered_by(by.map(str::to_string))
                .build(),
            tags,
        }
    }

    #[test]
    fn the_base_is_the_newest_trusted_revision_and_newer_untrusted_ones_are_passed_over() {
        let (registrants, own_roles) = (vec![p(TERRAFORM)], vec![p(DEPLOY)]);
        let trust = Trust { registrants: &registrants, own_roles: &own_roles };
        let terraform = "arn:aws:sts::123456789012:assumed-role/terraform/apply";
        let deploy = "arn:aws:sts::123456789012:assumed-role/pushdeploy-DeployRole-AB12/pushdeploy-deploy";
        let developer = "arn:aws:sts::123456789012:assumed-role/developer/mallory";
        let newest_first = vec![
            revision(7, Some(developer), true), // a forged copy: pushdeploy's tags, someone else's hands
            revision(6, Some(deploy), true),    // pushdeploy's own copy: skipped without a word
            revision(5, Some(developer), false),
            revision(4, None, false),
            revision(3, Some(terraform), false),
            revision(2, Some(terraform), false),
        ];
        let choice = choose_base(newest_first, trust);
        let base = choice.base.expect("a base");
        assert!(base.task_definition.task_definition_arn().unwrap().ends_with("todo-backend:3"));
        let lines: Vec<String> = choice.passed_over.iter().map(PassedOver::line).collect();
        assert_eq!(
            lines,
            [
                format!("todo-backend:7 (registered by {developer}): it carries pushdeploy's tags, but neither pushdeploy role registered it"),
                format!("todo-backend:5 (registered by {developer}): its registrant is not in trusted_registrants"),
                "todo-backend:4: ECS names no registrant for it".to_string(),
            ]
        );

        // A trusted revision someone tagged as pushdeploy's is still Terraform's.
        assert_eq!(standing(&revision(8, Some(terraform), true), trust), Standing::Trusted);
        // Nothing trusted: no base (the rollout copies what runs), everything said.
        let none = choose_base(vec![revision(9, Some(developer), false), revision(6, Some(deploy), true)], trust);
        assert_eq!((none.base, none.passed_over.len()), (None, 1));
        // Without pushdeploy's roles known, its own copies are not believed to be its own.
        let unknown = Trust { registrants: &registrants, own_roles: &[] };
        assert!(matches!(standing(&revision(6, Some(deploy), true), unknown), Standing::Untrusted(_)));
    }

    #[test]
    fn a_base_the_service_already_runs_is_no_base_and_what_runs_is_not_passed_over() {
        let arn = |n: u32| format!("arn:aws:ecs:ap-southeast-2:123456789012:task-definition/todo-backend:{n}");
        let terraform = Some("arn:aws:sts::123456789012:assumed-role/terraform/apply");
        let passed = |n: u32| PassedOver { task_definition: arn(n), registered_by: None, reason: "r".into() };
        let choice =
            || BaseChoice { base: Some(revision(3, terraform, true)), passed_over: vec![passed(5), passed(4)] };

        // A newer trusted revision than what runs: it is the base, without a forged pushdeploy: tag.
        let c = against_running(choice(), &arn(4), Some(&arn(2)));
        let base = c.base.expect("a base");
        assert!(base.tags.is_empty(), "{:?}", base.tags);
        assert_eq!(c.passed_over.len(), 2, "what runs was passed over for the base: said so");
        // The service runs the base, or a copy of it: no base, and what runs is copied, not passed over.
        let c = against_running(choice(), &arn(3), None);
        assert_eq!((c.base, c.passed_over.len()), (None, 2));
        let c = against_running(choice(), &arn(4), Some(&arn(3)));
        assert_eq!(c.base, None);
        assert_eq!(c.passed_over, [passed(5)]);
    }

    #[test]
    fn an_answer_names_what_was_passed_over_and_the_base_taken_instead() {
        let td = |n: u32| format!("arn:aws:ecs:r:1:task-definition/todo-backend:{n}");
        let passed = |n: u32| PassedOver { task_definition: td(n), registered_by: None, reason: "r".into() };
        assert_eq!(with_note("a → b".into(), Some(&td(3)), &td(2), &[]), "a → b", "nothing passed over: nothing said");
        assert_eq!(
            with_note("a → b".into(), Some(&td(3)), &td(2), &[passed(5), passed(4)]),
            "a → b; base todo-backend:3: passed over 2 newer revision(s) of the family that no trusted registrant registered: todo-backend:5, todo-backend:4"
        );
        assert!(with_note("x".into(), None, &td(2), &[passed(5)])
            .starts_with("x; base what runs (todo-backend:2): passed over 1"));
    }

    #[test]
    fn passed_over_revisions_keep_their_record_shape() {
        let p = PassedOver {
            task_definition: "arn:aws:ecs:r:1:task-definition/todo-backend:5".into(),
            registered_by: None,
            reason: "ECS names no registrant for it".into(),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json, serde_json::json!({"task_definition": p.task_definition, "reason": p.reason}));
        assert_eq!(serde_json::from_value::<PassedOver>(json).unwrap(), p);
    }
}
