//! The local end-to-end demo: moto plays AWS, a runtime-API host plays Lambda, a stand-in plays the
//! todo app behind its ALB, and the built `deploy` and `verify` functions run the whole loop:
//! push → digest-pinned rollout → smoke test → verified or rolled back. Run it with `scripts/demo`.

use serde_json::Value;
use testkit::estate::{
    blue_green_config, ecr_push_event, ecs_deployment_event, family_base_config, hook_invocation, local_config,
    registry, Aws, HookCall, TodoApp, BUCKET, CLUSTER,
};
use testkit::guard::Emulator;
use testkit::iam::Role;
use testkit::runtime::{function_binary, FunctionProcess};
use testkit::standin::{Behaviour, Listener, SnsSink, TodoStandIn};

struct Demo {
    aws: Aws,
    /// ECS's service deployments as the demo plays them (moto has none).
    ecs: std::sync::Arc<testkit::revisions::Revisions>,
    app: TodoStandIn,
    deploy: std::sync::Arc<FunctionProcess>,
    verify: FunctionProcess,
    seq: u32,
    /// The record id of the first deployment verify rolled back.
    rolled_back: Option<String>,
}

#[tokio::main]
async fn main() {
    step("Starting moto (AWS on 127.0.0.1), the todo estate, and a stand-in app behind the \"ALB\"");
    let emu = Emulator::start().await;
    let todo = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let aws = todo.aws.clone();
    let app = TodoStandIn::start(aws.clone()).await;
    let sink = SnsSink::start(&aws, "pushdeploy-verdicts").await;
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

    let dir = std::env::temp_dir().join(format!("pushdeploy-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("demo dir");
    let config = dir.join("pushdeploy.toml");
    // The backend lets Terraform own its task definition: pushdeploy copies the family's newest
    // revision that Terraform's role registered.
    let text_config = family_base_config(&local_config(&app.url()));
    std::fs::write(&config, text_config).expect("write config");

    step("Building deploy and verify and starting each under its own Lambda runtime-API host");
    let harness = aws.clone();
    let function_env = |role: Role| {
        let mut env = harness.function_env(role);
        env.push(("PUSHDEPLOY_CONFIG".into(), config.display().to_string()));
        env.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
        env.push(("PUSHDEPLOY_TOPIC_ARN".into(), sink.topic_arn.clone()));
        env.push(("RUST_LOG".into(), "info".into()));
        env
    };
    let deploy = FunctionProcess::start(&function_binary("deploy"), &function_env(Role::Deploy)).await;
    let verify = FunctionProcess::start(&function_binary("verify"), &function_env(Role::Verify)).await;
    println!("  deploy on AWS_LAMBDA_RUNTIME_API={}, verify on {}", deploy.host.addr, verify.host.addr);
    println!("  config: {} (smoke: 2 passing rounds in a row of 5; read-after-write on the backend)", config.display());
    let mut demo = Demo {
        aws,
        ecs: emu.guard.ecs.clone(),
        app,
        deploy: std::sync::Arc::new(deploy),
        verify,
        seq: 0,
        rolled_back: None,
    };

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

    step("Notifications (SNS → an HTTP subscriber on 127.0.0.1), subject and first line");
    for n in sink.notifications() {
        println!("  [{}]\n      {}", text(&n["Subject"]), text(&n["Message"]).lines().next().unwrap_or_default());
    }

    step("10. The operator's view: `pushdeploy status`, `history backend`, `show`, `report` (and its page), then `validate` and the manual actions through Lambda Invoke");
    let page = testkit::moto::workspace_root().join("target/pushdeploy-report.html");
    let mut operator = demo.aws.function_env(Role::Deploy);
    // The operator's own credentials, not a function's role.
    operator.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    operator.push(("AWS_ACCESS_KEY_ID".into(), "testing".into()));
    operator.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
    operator.push(("PUSHDEPLOY_CONFIG".into(), config.display().to_string()));
    // The manual actions go through Lambda Invoke: a local Invoke endpoint in front of deploy.
    let lambda = testkit::lambda::LambdaService::start(
        [("pushdeploy-deploy".to_string(), demo.deploy.clone())].into_iter().collect(),
    )
    .await;
    operator.push(("AWS_ENDPOINT_URL_LAMBDA".into(), lambda.endpoint.clone()));
    let page_arg = page.display().to_string();
    let config_arg = config.display().to_string();
    let rolled_back = demo.rolled_back.clone().unwrap_or_default();
    for args in [
        vec!["status"],
        vec!["history", "backend"],
        vec!["show", rolled_back.as_str()],
        vec!["report", "--since", "1d", "--html", page_arg.as_str()],
        vec!["report", "--since", "1d", "--json", "--service", "frontend"],
        vec!["validate", config_arg.as_str()],
        vec!["plan", "frontend"],
        vec!["redeploy", "frontend"],
        vec!["deploy", "backend", "v1.4.2"],
        vec!["rollback", "backend"],
    ] {
        println!("\n$ pushdeploy {}", args.join(" "));
        let mut command = std::process::Command::new(testkit::runtime::cli_binary());
        command.args(&args).envs(operator.clone());
        let out = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run pushdeploy");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    println!("  the report page: {} (open it in a browser; it needs no network)", page.display());
    drop(lambda);

    step("11. The backend turns blue/green: ECS deploys it with strategy BLUE_GREEN and calls pushdeploy's verify as its lifecycle hook at POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT");
    let bg_config = dir.join("pushdeploy-bluegreen.toml");
    let bg_text =
        blue_green_config(&demo.app.url(), &demo.app.test_url(), 5, 2).replace("\"PRODUCTION_TRAFFIC_SHIFT\", ", "");
    std::fs::write(&bg_config, &bg_text).expect("write config");
    emu.guard.set_fixture(
        "ecs:DescribeServices",
        testkit::estate::blue_green_service(
            "todo-backend",
            &["POST_TEST_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"],
        ),
    );
    let bg_env = |role: Role| {
        let mut env = function_env(role);
        env.retain(|(k, _)| k != "PUSHDEPLOY_CONFIG");
        env.push(("PUSHDEPLOY_CONFIG".into(), bg_config.display().to_string()));
        env
    };
    let bg_deploy = FunctionProcess::start(&function_binary("deploy"), &bg_env(Role::Deploy)).await;
    let bg_verify = FunctionProcess::start(&function_binary("verify"), &bg_env(Role::Verify)).await;
    println!(
        "  config: {} ([service.hook] on the backend; smoke.test_url {} with header {}: {})",
        bg_config.display(),
        demo.app.test_url(),
        testkit::standin::TEST_HEADER.0,
        testkit::standin::TEST_HEADER.1
    );
    println!(
        "  production listener {} stays on blue until ECS shifts it; the test listener serves green",
        demo.app.url()
    );
    let plan = invoke(&bg_deploy, &serde_json::json!({"action": "plan", "service": "backend"})).await;
    println!("  plan: {}", text(&plan["deployments"][0]["ecs_rollout"]));

    step("11a. docker push todo-backend:latest (broken) to the blue/green backend");
    let broken = blue_green_release(&demo, &bg_deploy, &bg_verify, "backend-bg-broken", Behaviour::Broken).await;
    println!(
        "  production listener served the broken image {} times",
        demo.app.served().iter().filter(|s| s.listener == Listener::Production && s.digest == broken).count()
    );

    step("11b. docker push todo-backend:latest (good) to the blue/green backend");
    let good = blue_green_release(&demo, &bg_deploy, &bg_verify, "backend-bg-good", Behaviour::Good).await;
    println!(
        "  production listener served the good image {} times",
        demo.app.served().iter().filter(|s| s.listener == Listener::Production && s.digest == good).count()
    );
    bg_deploy.stop().await;
    bg_verify.stop().await;

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

impl Demo {
    async fn release(&mut self, service: &str, seed: &str, behaviour: Behaviour) -> Value {
        self.release_tag(service, "latest", seed, behaviour).await
    }

    /// Push → deploy → ECS events → verify, printing what each step did; answers the push event.
    async fn release_tag(&mut self, service: &str, tag: &str, seed: &str, behaviour: Behaviour) -> Value {
        self.seq += 1;
        let before = self.aws.service_task_definition(CLUSTER, service).await;
        let digest = self.aws.push_image(service, tag, seed).await;
        self.app.set(digest.as_str(), behaviour);
        println!("  pushed {service}:{tag} @ {}…", &digest.as_str()[..19]);
        let push = ecr_push_event(&format!("push-{}", self.seq), service, tag, &digest);
        let answer = self.invoke_deploy(&push).await;
        let d = &answer["deployments"][0];
        println!("  deploy: {}  {}", answer["outcome"], text(&d["reason"]));
        let Some(dep) = d["ecs_deployment_id"].as_str().map(str::to_string) else { return push };
        println!("    now runs {}", images(&self.aws, text(&d["task_definition"])).await);
        for key in d["written"].as_array().into_iter().flatten() {
            println!("    wrote s3://{BUCKET}/{}", text(key));
        }
        println!("  ECS reports the rollout in progress, then completed → verify");
        self.invoke_verify(service, &dep, "SERVICE_DEPLOYMENT_IN_PROGRESS").await;
        let verdict = self.invoke_verify(service, &dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
        let v = &verdict["deployments"][0];
        println!("  verify: {}  {}", verdict["outcome"], text(&v["reason"]));
        let record = self.record(service, &dep).await;
        if record["status"] == "rolled_back" && self.rolled_back.is_none() {
            self.rolled_back = record["id"].as_str().map(str::to_string);
        }
        if let Some(rollback) = record["rollback_deployment"].as_str() {
            let rollback = pushdeploy::domain::record::ecs_deployment_id(rollback).expect("a record id");
            let done = self.invoke_verify(service, &rollback, "SERVICE_DEPLOYMENT_COMPLETED").await;
            println!(
                "  rollback deployment completed → verify: {}  {}",
                done["outcome"],
                text(&done["deployments"][0]["reason"])
            );
        }
        let now = self.aws.service_task_definition(CLUSTER, service).await;
        println!("  {service} runs {} (was {})", short(&now), short(&before));
        if record["rolled_back_to"].is_string() {
            let was = self.aws.images_of(&before).await.first().map(|(_, i)| i.clone()).unwrap_or_default();
            println!(
                "    {} (the revision it returned to names {was}, which points at the build just rolled back)",
                images(&self.aws, &now).await
            );
        }
        print_timeline(&self.record(service, &dep).await);
        push
    }

    async fn invoke_deploy(&self, event: &Value) -> Value {
        invoke(&self.deploy, event).await
    }

    async fn invoke_verify(&mut self, service: &str, deployment: &str, what: &str) -> Value {
        self.seq += 1;
        let event = ecs_deployment_event(&format!("ecs-{}", self.seq), service, deployment, what, "");
        invoke(&self.verify, &event).await
    }

    async fn record(&self, service: &str, deployment: &str) -> Value {
        let key = pushdeploy::domain::record::record_key(CLUSTER, service, deployment).expect("deployment id");
        serde_json::from_slice(&self.aws.object(BUCKET, &key).await).unwrap_or_default()
    }
}

/// A push to the blue/green backend, with the demo playing ECS: UpdateService (deploy) starts
/// the deployment, ECS calls the hook at each stage until it answers, shifts production only
/// after POST_TEST_TRAFFIC_SHIFT passed, and rolls back on FAILED. Answers the pushed digest.
async fn blue_green_release(
    demo: &Demo,
    deploy: &FunctionProcess,
    verify: &FunctionProcess,
    seed: &str,
    behaviour: Behaviour,
) -> String {
    let service = "todo-backend";
    let blue = demo.aws.service_task_definition(CLUSTER, service).await;
    demo.app.hold_production(service, &blue);
    let digest = demo.aws.push_image(service, "latest", seed).await;
    demo.app.set(digest.as_str(), behaviour);
    println!("  pushed {service}:latest @ {}…", &digest.as_str()[..19]);
    let answer = invoke(deploy, &ecr_push_event(&format!("push-{seed}"), service, "latest", &digest)).await;
    let d = &answer["deployments"][0];
    println!("  deploy: {}  {}", answer["outcome"], text(&d["reason"]));
    let dep = text(&d["ecs_deployment_id"]).to_string();
    let green = demo.aws.service_task_definition(CLUSTER, service).await;
    let (deployment, revision) = demo.aws.newest_service_deployment(CLUSTER, service).await;
    println!(
        "  ECS starts service deployment {} (green {}, blue {} keeps production)",
        short(&deployment),
        short(&green),
        short(&blue)
    );
    let stage = |name: &'static str, production: Option<(u32, u32)>| {
        let (deployment, revision) = (deployment.clone(), revision.clone());
        async move {
            // ECS is at this stage (rolling back when green is at 0 %) while it calls the hook.
            let rolling_back = production.is_some_and(|(green, _)| green == 0);
            let status = if rolling_back { "ROLLBACK_IN_PROGRESS" } else { "IN_PROGRESS" };
            demo.ecs.set_service_deployment(&deployment, status, Some(name));
            let mut details = serde_json::Map::new();
            for n in 1..=10 {
                let call = HookCall {
                    execution_id: &format!("{name}-{n}"),
                    stage: name,
                    service,
                    deployment: &deployment,
                    revision: &revision,
                    production,
                    hook_details: Some(Value::Object(details.clone())),
                };
                let answer = invoke(verify, &hook_invocation(&call)).await;
                let status = text(&answer["hookStatus"]).to_string();
                let why = text(&answer["hookDetails"]["pushdeploy"]["reason"]).to_string();
                match answer["callBackDelay"].as_u64() {
                    Some(delay) => println!("    hook {name}: {status} (ECS calls again in {delay} s): {why}"),
                    None => println!("    hook {name}: {status}: {why}"),
                }
                if status != "IN_PROGRESS" {
                    return status;
                }
                for (k, v) in answer["hookDetails"].as_object().into_iter().flatten() {
                    details.insert(k.clone(), v.clone());
                }
            }
            "TIMED_OUT".to_string()
        }
    };
    if stage("POST_TEST_TRAFFIC_SHIFT", None).await == "SUCCEEDED" {
        demo.app.shift_production(service, &green, 100);
        println!("  ECS shifts production traffic to green");
        if stage("POST_PRODUCTION_TRAFFIC_SHIFT", None).await == "SUCCEEDED" {
            demo.ecs.set_service_deployment(&deployment, "SUCCESSFUL", None);
            let seq = format!("ecs-{seed}");
            let done =
                invoke(verify, &ecs_deployment_event(&seq, service, &dep, "SERVICE_DEPLOYMENT_COMPLETED", "")).await;
            println!(
                "  ECS completes the deployment → verify: {}  {}",
                done["outcome"],
                text(&done["deployments"][0]["reason"])
            );
        }
    } else {
        println!(
            "  ECS rolls back: test traffic returns to blue, and its traffic-shift hook is called with green at 0 %"
        );
        stage("PRODUCTION_TRAFFIC_SHIFT", Some((0, 100))).await;
        // ECS's own rollback (moto has no blue/green): the service returns to blue.
        demo.aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(service)
            .task_definition(&blue)
            .send()
            .await
            .expect("ECS returns to blue");
        demo.ecs.set_service_deployment(&deployment, "ROLLBACK_SUCCESSFUL", None);
        let seq = format!("ecs-{seed}");
        let failed = invoke(
            verify,
            &ecs_deployment_event(&seq, service, &dep, "SERVICE_DEPLOYMENT_FAILED", "rolled back by a lifecycle hook"),
        )
        .await;
        println!(
            "  ECS reports the deployment failed → verify: {}  {}",
            failed["outcome"],
            text(&failed["deployments"][0]["reason"])
        );
    }
    println!("  {service} runs {}", short(&demo.aws.service_task_definition(CLUSTER, service).await));
    print_timeline(&demo.record(service, &dep).await);
    digest.as_str().to_string()
}

fn print_timeline(record: &Value) {
    println!(
        "  timeline of {} ({}:{}, status {}):",
        text(&record["id"]),
        text(&record["repository"]),
        text(&record["tag"]),
        record["status"]
    );
    let at = |e: &Value| pushdeploy::domain::record::epoch_seconds(text(&e["at"]));
    let events = record["timeline"].as_array().cloned().unwrap_or_default();
    let start = events.iter().find(|e| e["event"] == "started").and_then(at);
    for e in &events {
        let offset = match (start, at(e)) {
            (Some(s), Some(t)) if e["event"] != "pushed" => format!("+{:>6.0} ms", (t - s) * 1000.0),
            _ => "          ".into(),
        };
        println!("    {offset}  {:<16} {}", text(&e["event"]), text(&e["at"]));
    }
    if let Some(smoke) = record["smoke"].as_object() {
        let probe = smoke
            .get("read_after_write")
            .map(|p| format!(", read-after-write {}/{} reads", p["reads_seen"], p["reads"]))
            .unwrap_or_default();
        println!("    smoke: {} round(s) in {} ms{probe}", smoke["rounds_run"], smoke["duration_ms"]);
    }
}

async fn invoke(function: &FunctionProcess, event: &Value) -> Value {
    match function.invoke(event).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("the function answered an error: {e}\n{}", function.logs().join("\n"));
            std::process::exit(1);
        }
    }
}

async fn images(aws: &Aws, td: &str) -> String {
    let all = aws.images_of(td).await;
    let (name, image) = all.first().cloned().unwrap_or_default();
    format!("{} ({name}={image})", short(td))
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
