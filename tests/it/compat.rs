//! A config written for another release, through the binaries: a service this release cannot
//! read is refused and not judged while every other service deploys and is verified; a config
//! that cannot be read at all leaves a warm function on its last good one; `requires` above this
//! release makes every service unreadable; `validate` lists every problem.

use serde_json::Value;
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::standin::{SnsSink, TodoStandIn};

use crate::function::start_function;
use crate::support::Snapshot;

const VERSION: &str = pushdeploy::config::RUNNING_VERSION;

async fn upload(aws: &Aws, config: &str) {
    aws.s3
        .put_object()
        .bucket(BUCKET)
        .key("pushdeploy.toml")
        .body(config.as_bytes().to_vec().into())
        .send()
        .await
        .expect("upload the config");
}

async fn record(aws: &Aws, service: &str, deployment: &str) -> Value {
    let key = pushdeploy::domain::record::record_key(CLUSTER, service, deployment).unwrap();
    serde_json::from_slice(&aws.object(BUCKET, &key).await).unwrap()
}

/// The local config with a key a newer release reads (`approval`, made up: no release reads it) in the backend's entry only.
fn with_newer_key(config: &str) -> String {
    let newer = config.replacen(
        "repository = \"todo-backend\"\ntags = [\"latest\", \"v*\"]\n",
        "repository = \"todo-backend\"\ntags = [\"latest\", \"v*\"]\napproval = \"manual\"\n",
        1,
    );
    assert_ne!(newer, config);
    newer
}

/// The digest-pinned image `service` runs now, by its task definition in ECS.
async fn running_image(aws: &Aws, service: &str) -> String {
    let td = aws.service_task_definition(CLUSTER, service).await;
    aws.images_of(&td).await[0].1.clone()
}

fn messages(sink: &SnsSink) -> Vec<String> {
    sink.notifications().iter().map(|n| n["Message"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn a_service_this_release_cannot_read_is_refused_and_not_judged_while_the_other_deploys_and_is_verified() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    let env = [("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str()), ("PUSHDEPLOY_CONFIG_RECHECK_SECONDS", "0")];
    let config = local_config(&standin.url());

    // Before the upgrade of the config: a backend rollout pushdeploy started, still open.
    let deploy = start_function("deploy", &app.aws, &config, &env).await;
    let first = app.aws.push_image("todo-backend", "latest", "backend-compat-1").await;
    let started = deploy.invoke(&ecr_push_event("evt-b1", "todo-backend", "latest", &first)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let backend_dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let backend_td = app.aws.service_task_definition(CLUSTER, "todo-backend").await;

    // A config written for a newer release: the backend's entry has a key this one does not know.
    upload(&app.aws, &with_newer_key(&config)).await;

    // The frontend deploys as before.
    let web = app.aws.push_image("todo-frontend", "latest", "frontend-compat-1").await;
    let answer = deploy.invoke(&ecr_push_event("evt-f1", "todo-frontend", "latest", &web)).await.unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let frontend_dep = answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    assert!(running_image(&app.aws, "todo-frontend").await.ends_with(web.as_str()), "the frontend runs the push");

    // The backend's pushes are refused, naming this release and the key; nothing in ECS changes.
    let before = Snapshot::take(&app.aws).await;
    for (id, seed) in [("evt-b2", "backend-compat-2"), ("evt-b3", "backend-compat-3")] {
        let digest = app.aws.push_image("todo-backend", "latest", seed).await;
        let refused = deploy.invoke(&ecr_push_event(id, "todo-backend", "latest", &digest)).await.unwrap();
        assert_eq!(refused["outcome"], "config_unreadable", "{refused}");
        let d = &refused["deployments"][0];
        assert_eq!((d["service"].as_str(), d["outcome"].as_str()), (Some("backend"), Some("config_unreadable")));
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!(
                "pushdeploy {VERSION} cannot read the config of service backend (invalid config s3://{BUCKET}/pushdeploy.toml: service[1].approval: unknown key)"
            )),
            "{reason}"
        );
        assert!(reason.ends_with("nothing was deployed for it"), "{reason}");
    }
    // So are an operator's actions on it.
    let redeploy = deploy.invoke(&serde_json::json!({"action": "redeploy", "service": "backend"})).await.unwrap();
    assert_eq!(redeploy["outcome"], "config_unreadable", "{redeploy}");
    assert_eq!(Snapshot::take(&app.aws).await, before, "nothing changed");
    assert_eq!(app.aws.service_task_definition(CLUSTER, "todo-backend").await, backend_td);

    // The topic heard of it once for this version of the config, not once per push.
    let told = messages(&sink);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(
        told[0].contains(&format!("pushdeploy {VERSION} cannot read the config of service backend")),
        "{}",
        told[0]
    );
    assert!(told[0].contains("service[1].approval: unknown key"), "{}", told[0]);
    assert!(told[0].contains("every other service deploys as configured"), "{}", told[0]);

    // verify judges the frontend, and does not judge the backend's open rollout: no verdict, no
    // rollback, said on the record and to the topic once; the event fails, so it is parked.
    let verify = start_function("verify", &app.aws, &with_newer_key(&config), &env).await;
    let completed = ecs_deployment_event("ecs-f1", "todo-frontend", &frontend_dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let judged = verify.invoke(&completed).await.expect("the frontend is judged");
    assert_eq!(judged["outcome"], "verified", "{judged}");
    let backend_event =
        ecs_deployment_event("ecs-b1", "todo-backend", &backend_dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    for _ in 0..2 {
        let failed = verify.invoke(&backend_event).await.expect_err("not judged: the invocation fails");
        assert_eq!(failed["errorType"], "Permanent.Config", "{failed}");
        let message = failed["errorMessage"].as_str().unwrap();
        assert!(message.contains(&format!("service[1].approval: pushdeploy {VERSION} cannot read it (unknown key), so deployment {backend_dep} of {CLUSTER}/todo-backend was not judged")), "{message}");
    }
    let rec = record(&app.aws, "todo-backend", &backend_dep).await;
    assert_eq!(rec["status"], "started", "no verdict: {rec}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("was not judged (neither verified nor rolled back)") && reason.contains(VERSION), "{rec}");
    let stamps: Vec<&str> = rec["timeline"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
    assert_eq!(stamps.iter().filter(|e| **e == "not_judged").count(), 1, "said once: {stamps:?}");
    assert_eq!(app.aws.service_task_definition(CLUSTER, "todo-backend").await, backend_td, "nothing rolled back");
    let told = messages(&sink);
    let about: Vec<&String> =
        told.iter().filter(|m| m.contains(&format!("deployment {backend_dep} was not judged"))).collect();
    assert_eq!(about.len(), 1, "{told:#?}");
    assert!(told.iter().any(|m| m.contains("their deployments are not judged")), "verify's load message: {told:#?}");

    // The fix (here: the key removed; or the functions upgraded): the parked event is judged.
    upload(&app.aws, &config).await;
    let judged = verify.invoke(&backend_event).await.expect("judged once readable");
    assert_eq!(judged["outcome"], "verified", "{judged}");
    assert_eq!(record(&app.aws, "todo-backend", &backend_dep).await["status"], "verified");
    deploy.stop().await;
    verify.stop().await;
}

#[tokio::test]
async fn a_config_unreadable_as_a_whole_leaves_a_warm_function_on_its_last_good_one_and_requires_is_honoured() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
    let env = [("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str()), ("PUSHDEPLOY_CONFIG_RECHECK_SECONDS", "0")];
    let config = local_config(&standin.url());
    let deploy = start_function("deploy", &app.aws, &config, &env).await;
    let push = |id: &'static str, seed: &'static str| {
        let aws = app.aws.clone();
        let deploy = &deploy;
        async move {
            let digest = aws.push_image("todo-frontend", "latest", seed).await;
            (deploy.invoke(&ecr_push_event(id, "todo-frontend", "latest", &digest)).await.unwrap(), digest)
        }
    };
    let (answer, _) = push("evt-1", "frontend-whole-1").await;
    assert_eq!(answer["outcome"], "started", "{answer}");

    // [defaults] with a newer release's key: the whole file is refused, the last good one stays.
    let newer_defaults =
        config.replacen("strategy = \"pin-digest\"\n", "strategy = \"pin-digest\"\napproval = \"manual\"\n", 1);
    upload(&app.aws, &newer_defaults).await;
    let (answer, digest) = push("evt-2", "frontend-whole-2").await;
    assert_eq!(answer["outcome"], "started", "deployed with the last good config: {answer}");
    assert!(running_image(&app.aws, "todo-frontend").await.ends_with(digest.as_str()));
    let (answer, _) = push("evt-3", "frontend-whole-3").await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let told = messages(&sink);
    assert_eq!(told.len(), 1, "once for this version of the config: {told:#?}");
    assert!(
        told[0].contains("defaults.approval: unknown key") && told[0].contains("goes on with the last good config"),
        "{}",
        told[0]
    );

    // A cold start has no good config to go on with: the push is refused, nothing deployed.
    let cold = start_function("deploy", &app.aws, &newer_defaults, &env).await;
    let before = Snapshot::take(&app.aws).await;
    let digest = app.aws.push_image("todo-frontend", "latest", "frontend-whole-4").await;
    let refused = cold.invoke(&ecr_push_event("evt-4", "todo-frontend", "latest", &digest)).await.unwrap();
    assert_eq!(refused["outcome"], "rejected", "{refused}");
    assert!(refused["reason"].as_str().unwrap().contains("defaults.approval: unknown key"), "{refused}");
    assert_eq!(Snapshot::take(&app.aws).await, before);
    cold.stop().await;

    // `requires` above this release: every service is unreadable, for that reason.
    upload(&app.aws, &format!("requires = \"99.0\"\n{config}")).await;
    let (answer, _) = push("evt-5", "frontend-whole-5").await;
    assert_eq!(answer["outcome"], "config_unreadable", "{answer}");
    let reason = answer["deployments"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("requires: this file needs pushdeploy 99.0 or later, and this is {VERSION}")),
        "{reason}"
    );
    assert!(messages(&sink).last().unwrap().contains("frontend, backend of 2 service(s)"), "{:#?}", messages(&sink));
    deploy.stop().await;
}

#[test]
fn validate_lists_every_service_this_release_cannot_read() {
    let dir = std::env::temp_dir().join(format!("pushdeploy-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pushdeploy.toml");
    let config = with_newer_key(&local_config("http://127.0.0.1:1/")).replacen(
        "repository = \"todo-frontend\"\ntags = [\"latest\"]\n",
        "repository = \"todo-frontend\"\ntags = [\"latest\"]\nstrategy = \"yolo\"\n",
        1,
    );
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(testkit::runtime::cli_binary())
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run pushdeploy validate");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("service[0].strategy: unknown strategy \"yolo\""), "{text}");
    assert!(text.contains("service[1].approval: unknown key"), "{text}");
    assert!(text.contains(&format!("pushdeploy {VERSION} cannot read 2 of 2 service(s)")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
