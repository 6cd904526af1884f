//! The local end-to-end demo: moto plays AWS, the runtime-API host plays Lambda, and the built
//! `deploy` function turns a push into a digest-pinned rollout. Run it with `scripts/demo`.

use serde_json::Value;
use testkit::estate::{ecr_push_event, registry, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::moto::{workspace_root, Moto};
use testkit::runtime::{function_binary, FunctionProcess};

#[tokio::main]
async fn main() {
    let root = workspace_root();
    let config = root.join("examples/pushdeploy.toml");

    step("Starting moto (AWS on 127.0.0.1) and creating the todo app's estate");
    let moto = Moto::start();
    let app = TodoApp::create(Aws::new(&moto.endpoint).await).await;
    let aws = &app.aws;
    println!("  moto:      {}", moto.endpoint);
    println!("  cluster:   {CLUSTER} with services todo-frontend, todo-backend (Fargate, awsvpc)");
    println!("  ECR:       {}/todo-frontend, /todo-backend (each with :latest)", registry());
    println!("  bucket:    s3://{BUCKET} (versioned)");
    for s in ["todo-frontend", "todo-backend"] {
        let td = aws.service_task_definition(CLUSTER, s).await;
        println!("  {s} runs {}: {}", short(&td), images(aws, &td).await);
    }

    step("Building the deploy function and starting it under a Lambda runtime-API host");
    let mut env = aws.function_env();
    env.push(("PUSHDEPLOY_CONFIG".into(), config.display().to_string()));
    env.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
    env.push(("RUST_LOG".into(), "info".into()));
    let function = FunctionProcess::start(&function_binary("deploy"), &env).await;
    println!("  AWS_LAMBDA_RUNTIME_API={}  PUSHDEPLOY_CONFIG={}", function.host.addr, config.display());

    step("docker push todo-frontend:latest  (a new image lands in ECR)");
    let digest = aws.push_image("todo-frontend", "latest", "frontend-v1").await;
    println!("  pushed {}/todo-frontend:latest @ {digest}", registry());
    let event = ecr_push_event("13cde686-328b-6117-af20-0e5566167482", "todo-frontend", "latest", &digest);
    println!("  EventBridge delivers \"ECR Image Action\" PUSH/SUCCESS to deploy …");
    let answer = invoke(&function, &event).await;
    report(aws, &answer).await;

    step("The same event delivered again (EventBridge is at-least-once)");
    let again = invoke(&function, &event).await;
    println!("  outcome: {}  ({})", again["outcome"], text(&again["reason"]));

    step("docker push todo-backend:v1.4.2  (matches the backend's tag pattern \"v*\")");
    let digest = aws.push_image("todo-backend", "v1.4.2", "backend-v1.4.2").await;
    let answer =
        invoke(&function, &ecr_push_event("5b1e4a2c-9d0f-4c6e-8a7b-0e5566167483", "todo-backend", "v1.4.2", &digest))
            .await;
    report(aws, &answer).await;

    step("docker push todo-frontend:feature-x  (no service watches that tag)");
    let digest = aws.push_image("todo-frontend", "feature-x", "frontend-feature").await;
    let answer = invoke(
        &function,
        &ecr_push_event("0f0e0d0c-0000-4000-8000-000000000001", "todo-frontend", "feature-x", &digest),
    )
    .await;
    println!("  outcome: {}  ({})", answer["outcome"], text(&answer["reason"]));

    step("Decision log (JSON, one line per decision)");
    for line in function.logs().iter().filter(|l| l.contains("\"decision\"")) {
        println!("  {line}");
    }

    step("Stopping the function and moto");
    function.stop().await;
    drop(moto);
    println!("  done: everything this demo started has stopped.");
}

async fn invoke(function: &FunctionProcess, event: &Value) -> Value {
    match function.invoke(event).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("the function failed: {e}\n{}", function.logs().join("\n"));
            std::process::exit(1);
        }
    }
}

async fn report(aws: &Aws, answer: &Value) {
    println!("  outcome: {}", answer["outcome"]);
    for d in answer["deployments"].as_array().into_iter().flatten() {
        println!("  service {} ({}): {}", text(&d["service"]), text(&d["target"]), d["outcome"]);
        if let Some(td) = d["task_definition"].as_str() {
            println!("    task definition {} → {}", short(text(&d["previous_task_definition"])), short(td));
            println!("    containers now: {}", images(aws, td).await);
        }
        if let Some(id) = d["ecs_deployment_id"].as_str() {
            println!("    ECS deployment {id}");
        }
        for key in d["written"].as_array().into_iter().flatten() {
            let key = text(key);
            let bytes = aws.object(BUCKET, key).await;
            if key.starts_with("deployments/") {
                let record: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                println!(
                    "    s3://{BUCKET}/{key}  (record: status {}, trigger {})",
                    record["status"], record["trigger"]
                );
            } else {
                println!("    s3://{BUCKET}/{key}  {}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}

async fn images(aws: &Aws, td: &str) -> String {
    aws.images_of(td).await.iter().map(|(n, i)| format!("{n}={i}")).collect::<Vec<_>>().join(", ")
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn step(title: &str) {
    println!("\n== {title}");
}
