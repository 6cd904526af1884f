//! Steps 1 to 9: pushes good and bad, a duplicate event, an unwatched tag, a manual rollback, and
//! Terraform's revisions copied while a developer's is passed over.

use testkit::estate::{ecr_push_event, CLUSTER};
use testkit::standin::Behaviour;

use crate::release::Demo;
use crate::show::{images, short, step, text};

/// Steps 1 to 7: pushes, one event delivered twice, and a tag no service watches.
pub async fn pushes(demo: &mut Demo) {
    step("1. docker push todo-frontend:latest (a good image)");
    let first = demo.release("todo-frontend", "frontend-v1", Behaviour::Good).await;

    step("2. The same push event delivered again (EventBridge is at-least-once)");
    let answer = demo.invoke_deploy(&first).await;
    println!("  deploy: {}  ({})", answer["outcome"], text(&answer["reason"]));

    step("3. docker push todo-backend:latest (a broken image: the API answers 500); the estate's revisions are Terraform's, `todo-backend:latest` by tag");
    demo.release("todo-backend", "backend-broken", Behaviour::Broken).await;

    step("4. docker push todo-backend:latest (works, but keeps its todo items in each task's memory)");
    demo.release("todo-backend", "backend-per-task", Behaviour::StatePerTask).await;

    step("5. docker push todo-backend:v1.4.2 (a good image, matched by the tag pattern \"v*\")");
    demo.release_tag("todo-backend", "v1.4.2", "backend-v1.4.2", Behaviour::Good).await;

    step("6. docker push todo-frontend:feature-x (no service watches that tag)");
    let digest = demo.aws.push_image("todo-frontend", "feature-x", "frontend-feature").await;
    let answer = demo.invoke_deploy(&ecr_push_event("push-x", "todo-frontend", "feature-x", &digest)).await;
    println!("  deploy: {}  ({})", answer["outcome"], text(&answer["reason"]));

    step("7. docker push todo-frontend:latest (another good image)");
    demo.release("todo-frontend", "frontend-v2", Behaviour::Good).await;
}

/// Step 8: a manual rollback of the frontend, and verify's verdict on it.
pub async fn manual_rollback(demo: &mut Demo) {
    step("8. {\"action\": \"rollback\", \"service\": \"frontend\"}: back to the last verified deployment before the current one");
    let answer = demo.invoke_deploy(&serde_json::json!({"action": "rollback", "service": "frontend"})).await;
    let d = &answer["deployments"][0];
    println!("  deploy: {}  {}", answer["outcome"], text(&d["reason"]));
    if let Some(dep) = d["ecs_deployment_id"].as_str().map(str::to_string) {
        let done = demo.invoke_verify("todo-frontend", &dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
        println!(
            "  rollback deployment completed → verify: {}  {}",
            done["outcome"],
            text(&done["deployments"][0]["reason"])
        );
        println!(
            "  todo-frontend runs {}",
            images(&demo.aws, &demo.aws.service_task_definition(CLUSTER, "todo-frontend").await).await
        );
    }
}

/// Step 9: Terraform and a developer register revisions; the backend (base = "family") copies
/// only Terraform's.
pub async fn terraform_revisions(demo: &mut Demo) {
    step("9. Terraform changes TODO_ENV to \"staging\" (a new revision of todo-backend's family, image by tag); then a developer registers one of their own; backend has base = \"family\" trusting only Terraform's role");
    let running = demo.aws.service_task_definition(CLUSTER, "todo-backend").await;
    let family = running.rsplit('/').next().and_then(|r| r.split(':').next()).unwrap_or("todo-backend").to_string();
    let terraform = demo.aws.revisions(&family).await;
    let first_terraform = terraform.first().cloned().unwrap_or_default();
    let changed = demo.aws.register_changed_revision(&first_terraform, ("TODO_ENV", "staging")).await;
    println!("  terraform apply registered {}", short(&changed));
    // Anyone with ecs:RegisterTaskDefinition can add a newer revision; only Terraform's are copied.
    let developer = demo.aws.signing_as("developer");
    let unreviewed = developer.register_changed_revision(&changed, ("TODO_ENV", "debug")).await;
    println!("  a developer's session registered {} (TODO_ENV=debug)", short(&unreviewed));
    let plan = demo.invoke_deploy(&serde_json::json!({"action": "plan", "service": "backend"})).await;
    let p = &plan["deployments"][0];
    println!("  plan: {}  base {}", plan["outcome"], short(text(&p["base"])));
    for passed in p["passed_over"].as_array().into_iter().flatten() {
        println!(
            "    passed over {} (registered by {}): {}",
            short(text(&passed["task_definition"])),
            text(&passed["registered_by"]),
            text(&passed["reason"])
        );
    }
    for line in p["diff"].as_array().into_iter().flatten() {
        println!("    {}", text(line));
    }
    demo.release("todo-backend", "backend-v1.5", Behaviour::Good).await;
    print_environment(demo).await;
}

/// The environment of the backend's first container, as it runs now.
async fn print_environment(demo: &Demo) {
    let now = demo.aws.service_task_definition(CLUSTER, "todo-backend").await;
    let env = demo.aws.ecs.describe_task_definition().task_definition(&now).send().await.expect("describe");
    let vars: Vec<String> = env
        .task_definition()
        .map(|t| {
            t.container_definitions()[0]
                .environment()
                .iter()
                .map(|kv| format!("{}={}", kv.name().unwrap_or_default(), kv.value().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    println!("  {} runs with {}", short(&now), vars.join(", "));
}
