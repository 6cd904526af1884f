//! The local end-to-end demo: moto plays AWS, a runtime-API host plays Lambda, a stand-in plays the
//! todo app behind its ALB, and the built `deploy` and `verify` functions run the whole loop:
//! push → digest-pinned rollout → smoke test → verified or rolled back. Run it with `scripts/demo`.

mod blue_green;
mod canary;
mod operator;
mod release;
mod show;
mod steps;

use testkit::estate::{family_base_config, local_config, registry, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::{Emulator, GuardedCall};
use testkit::iam::Role;
use testkit::runtime::{function_binary, FunctionProcess};
use testkit::standin::{SnsSink, TodoStandIn};

use release::{Demo, Envs};
use show::{step, text};

#[tokio::main]
async fn main() {
    step("Starting moto (AWS on 127.0.0.1), the todo estate, and a stand-in app behind the \"ALB\"");
    let emu = Emulator::start().await;
    let todo = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let aws = todo.aws.clone();
    let app = TodoStandIn::start(aws.clone()).await;
    let sink = SnsSink::start(&aws, "pushdeploy-verdicts").await;
    print_estate(&emu, &sink, &app);

    let dir = std::env::temp_dir().join(format!("pushdeploy-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("demo dir");
    let config = dir.join("pushdeploy.toml");
    // The backend lets Terraform own its task definition: pushdeploy copies the family's newest
    // revision that Terraform's role registered.
    let text_config = family_base_config(&local_config(&app.url()));
    std::fs::write(&config, text_config).expect("write config");

    step("Building deploy and verify and starting each under its own Lambda runtime-API host");
    let envs = Envs { aws: aws.clone(), topic: sink.topic_arn.clone() };
    let deploy = FunctionProcess::start(&function_binary("deploy"), &envs.of(Role::Deploy, &config)).await;
    let verify = FunctionProcess::start(&function_binary("verify"), &envs.of(Role::Verify, &config)).await;
    println!("  deploy on AWS_LAMBDA_RUNTIME_API={}, verify on {}", deploy.host.addr, verify.host.addr);
    println!("  config: {} (smoke: 2 passing rounds in a row of 5; read-after-write on the backend)", config.display());
    let ecs = emu.guard.ecs.clone();
    let deploy = std::sync::Arc::new(deploy);
    let mut demo = Demo { aws, ecs, app, deploy, verify, seq: 0, rolled_back: None };

    steps::pushes(&mut demo).await;
    steps::manual_rollback(&mut demo).await;
    steps::terraform_revisions(&mut demo).await;

    step("Notifications (SNS → an HTTP subscriber on 127.0.0.1), subject and first line");
    for n in sink.notifications() {
        println!("  [{}]\n      {}", text(&n["Subject"]), text(&n["Message"]).lines().next().unwrap_or_default());
    }

    operator::commands(&demo, &config).await;
    blue_green::blue_green(&demo, &emu, &envs, &dir).await;
    canary::canary(&demo, &emu, &envs, &sink, &dir).await;
    let denied = iam_summary(&emu);

    step("Stopping the functions, the stand-in and moto");
    let Demo { deploy, verify, app, .. } = demo;
    if let Ok(deploy) = std::sync::Arc::try_unwrap(deploy) {
        deploy.stop().await;
    }
    verify.stop().await;
    drop(app);
    drop(sink);
    drop(emu);
    let _ = std::fs::remove_dir_all(&dir);
    println!("  done: everything this demo started has stopped.");
    if !denied.is_empty() {
        eprintln!("demo: {} call(s) were denied by template.yaml's role policies", denied.len());
        std::process::exit(1);
    }
}

/// What the demo started, and where.
fn print_estate(emu: &Emulator, sink: &SnsSink, app: &TodoStandIn) {
    println!(
        "  moto:      {} behind an IAM guard at {} (template.yaml's role policies, S3's 403 for a missing key)",
        emu.moto.endpoint, emu.endpoint
    );
    println!("  cluster:   {CLUSTER}: todo-frontend, todo-backend (Fargate, awsvpc)");
    println!("  ECR:       {}/todo-frontend, /todo-backend", registry());
    println!("  bucket:    s3://{BUCKET} (versioned);  SNS topic: {}", sink.topic_arn);
    println!(
        "  app:       {} (\"/\" → frontend, \"/api/\" → backend; behaves as the image the service runs in moto)",
        app.url()
    );
}

/// Prints every call the functions made, per role, and the denied ones: the denied calls.
fn iam_summary(emu: &Emulator) -> Vec<GuardedCall> {
    step("IAM: every call the functions made, checked against their roles in template.yaml");
    let calls = emu.guard.calls();
    for role in [Role::Deploy, Role::Verify] {
        let mine: Vec<_> = calls.iter().filter(|c| c.role == role).collect();
        let mut ops: Vec<&str> = mine.iter().map(|c| c.operation.as_str()).collect();
        ops.sort();
        ops.dedup();
        println!("  {}: {} calls ({})", role.logical_id(), mine.len(), ops.join(", "));
    }
    let denied = emu.guard.denied();
    for c in &denied {
        println!("  DENIED {:?} {}: {:?}", c.role, c.operation, c.checks);
    }
    println!("  denied: {}", denied.len());
    denied
}
