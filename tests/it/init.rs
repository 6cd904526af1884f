//! `pushdeploy init` run as a process against the todo estate behind its ALB in moto: the file it
//! writes names both services, their repositories and tags, smoke URLs read from the HTTPS
//! listener's rules with `connect_to` the ALB; `pushdeploy validate` accepts it; and the deploy
//! binary, given it as its config, deploys both services onto the pushed digests.

use pushdeploy::config::{Config, Mode};
use testkit::estate::{ecr_push_event, registry, Aws, TodoApp, CLUSTER, TODO_HOST};
use testkit::guard::Emulator;

use crate::function::start_function;

/// Runs `pushdeploy ARGS` as an operator (the guard checks only the functions' roles):
/// (exit code, stdout, stderr). On the blocking pool: the guard is served by this runtime.
async fn pushdeploy(aws: &Aws, args: &[&str]) -> (i32, String, String) {
    let mut env = aws.function_env(testkit::iam::Role::Deploy);
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut command = std::process::Command::new(testkit::runtime::cli_binary());
    command.args(args).envs(env).env("AWS_ACCESS_KEY_ID", "testing");
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn init_writes_a_config_that_validates_and_deploys_both_services() {
    let emu = Emulator::start().await;
    let (app, alb) = TodoApp::create_behind_alb(Aws::new(&emu.endpoint).await).await;
    let dir = std::env::temp_dir().join(format!("pushdeploy-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pushdeploy.toml");
    let path = file.to_str().unwrap();

    let (code, out, err) = pushdeploy(&app.aws, &["init", "--cluster", CLUSTER, "--output", path]).await;
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    println!("{text}\n--- stderr ---\n{err}");
    let config = Config::parse(&text, path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut services: Vec<(&str, &str, Vec<&str>)> = config
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.repository.as_str(), s.tags.iter().map(|t| t.as_str()).collect()))
        .collect();
    services.sort();
    assert_eq!(
        services,
        [("todo-backend", "todo-backend", vec!["latest"]), ("todo-frontend", "todo-frontend", vec!["latest"])]
    );
    for (service, url, tg) in [
        ("todo-frontend", format!("https://{TODO_HOST}/"), &alb.frontend),
        ("todo-backend", format!("https://{TODO_HOST}/api/"), &alb.backend),
    ] {
        let s = config.services.iter().find(|s| s.service == service).unwrap();
        let smoke = s.smoke.as_ref().unwrap();
        assert_eq!(smoke.url, url, "{text}");
        assert_eq!(smoke.connect_to.as_ref().map(|c| c.host.as_str()), Some(alb.dns_name.as_str()));
        assert_eq!(smoke.target_group_arn.as_ref(), Some(tg));
        assert_eq!(s.mode, Mode::Observe);
    }
    let backend = config.services.iter().find(|s| s.service == "todo-backend").unwrap();
    assert_eq!(backend.smoke.as_ref().unwrap().checks[0].path, "health", "the target group's health check path");
    assert!(text
        .contains("#   container log_router: public.ecr.aws/aws-observability/aws-for-fluent-bit:stable (ECR Public"));
    for line in [
        "Before enforcing, check:",
        "stack parameters: ClusterName=todo-cluster RepositoryNames=todo-backend,todo-frontend RepositoryArnPrefix=todo-",
        "iam:PassRole: a copy keeps the task definition's roles, so the stack must pass each: TaskRoleArns=arn:aws:iam::123456789012:role/todo-backend-task,arn:aws:iam::123456789012:role/todo-frontend-task",
        "ECR lifecycle rules of todo-backend, todo-frontend",
        "todo-frontend container log_router is not deployed by pushdeploy",
    ] {
        assert!(err.contains(line), "{line:?} in\n{err}");
    }

    // The same file on stdout; an existing file is kept unless --force.
    let (code, stdout, _) = pushdeploy(&app.aws, &["init", "--cluster", CLUSTER]).await;
    assert_eq!((code, stdout.as_str()), (0, text.as_str()));
    let (code, _, err) = pushdeploy(&app.aws, &["init", "--cluster", CLUSTER, "--output", path]).await;
    assert_eq!(code, 1);
    assert!(err.contains("exists; give --force to overwrite it"), "{err}");
    let (code, _, err) =
        pushdeploy(&app.aws, &["init", "--cluster", CLUSTER, "--service", "todo-backend", "--output", path, "--force"])
            .await;
    assert_eq!(code, 0, "{err}");
    let only = Config::parse(&std::fs::read_to_string(&file).unwrap(), path).unwrap();
    assert_eq!(only.services.iter().map(|s| s.service.as_str()).collect::<Vec<_>>(), ["todo-backend"]);
    std::fs::write(&file, &text).unwrap();
    // What AWS refuses is said, with what to check; nothing is written.
    let (code, _, err) = pushdeploy(&app.aws, &["init", "--cluster", "no-such-cluster"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ECS ListServices for no-such-cluster failed") && err.contains("Check: the cluster"), "{err}");
    let (code, _, err) = pushdeploy(&app.aws, &["init", "--cluster", CLUSTER, "--service", "todo-nope"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("todo-cluster/todo-nope failed: MISSING"), "{err}");

    let (code, out, err) = pushdeploy(&app.aws, &["validate", path, "--cluster", CLUSTER]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid, 2 service(s)"), "{out}");

    // The written config deploys both services: a push per repository, each pinned to its digest.
    let deploy = start_function("deploy", &app.aws, &text, &[]).await;
    for (i, (repository, container)) in
        [("todo-frontend", "frontend"), ("todo-backend", "backend")].into_iter().enumerate()
    {
        let digest = app.aws.push_image(repository, "latest", &format!("{repository}-init")).await;
        let event = ecr_push_event(&format!("evt-init-{i}"), repository, "latest", &digest);
        let answer = deploy.invoke(&event).await.unwrap();
        assert_eq!(answer["outcome"], "started", "{answer}");
        let running = app.aws.service_task_definition(CLUSTER, repository).await;
        let images = app.aws.images_of(&running).await;
        let image = images.iter().find(|(c, _)| c == container).map(|(_, i)| i.as_str());
        assert_eq!(image, Some(format!("{}/{repository}@{digest}", registry()).as_str()), "{images:?}");
    }
    deploy.stop().await;
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
    let _ = std::fs::remove_dir_all(&dir);
}
