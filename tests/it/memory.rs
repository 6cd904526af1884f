//! Memory is bounded: a config whose smoke-test bodies could not fit in verify's memory is refused
//! by both functions and by `pushdeploy validate`, and a verify that keeps dying mid-test rolls the
//! deployment back instead of leaving it serving untested.

use std::time::Duration;

use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, CLUSTER};
use testkit::guard::Emulator;
use testkit::runtime::cli_binary;
use testkit::standin::{Behaviour, TodoStandIn};

use crate::function::start_function;
use crate::support::{assert_returned_to, Snapshot};

/// The todo config with the backend's bodies allowed up to 64 MiB: with its check and its
/// read-after-write probe, 2 × 64 MiB × 3 does not fit in 128 MB.
fn greedy(app: &str) -> String {
    local_config(app).replacen(
        &format!("url = \"{app}api/\"\nattempts = 5"),
        &format!("url = \"{app}api/\"\nmax_body_bytes = 67108864\nattempts = 5"),
        1,
    )
}

#[tokio::test]
async fn bodies_that_cannot_fit_in_verifys_memory_are_refused_by_validate_deploy_and_verify() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let config = greedy(&standin.url());
    assert!(config.contains("max_body_bytes = 67108864"), "{config}");

    // Before an upload.
    let file = std::env::temp_dir().join(format!("pushdeploy-greedy-{}.toml", std::process::id()));
    std::fs::write(&file, &config).unwrap();
    let out = std::process::Command::new(cli_binary())
        .args(["validate", file.to_str().unwrap(), "--verify-memory", "128"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("service[1].smoke.max_body_bytes") && said.contains("raise VerifyMemorySize"), "{said}");
    let out = std::process::Command::new(cli_binary())
        .args(["validate", file.to_str().unwrap(), "--verify-memory", "1024"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(&file);

    // The functions, as the template sets them up, agree: nothing deploys, nothing is judged.
    let memory = [("PUSHDEPLOY_VERIFY_MEMORY_MB", "128")];
    let deploy = start_function("deploy", &app.aws, &config, &memory).await;
    let before = Snapshot::take(&app.aws).await;
    let digest = app.aws.push_image("todo-backend", "latest", "backend-greedy").await;
    let answer = deploy.invoke(&ecr_push_event("evt-greedy", "todo-backend", "latest", &digest)).await.unwrap();
    assert_eq!(answer["outcome"], "rejected", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("max_body_bytes"), "{answer}");
    assert_eq!(Snapshot::take(&app.aws).await, before);
    deploy.stop().await;
    let verify = start_function("verify", &app.aws, &config, &memory).await;
    let event = ecs_deployment_event("ecs-greedy", "todo-backend", "ecs-svc/1", "SERVICE_DEPLOYMENT_COMPLETED", "");
    // verify does not answer an event it cannot judge: it fails, so the event is retried and kept.
    let failed = verify.invoke(&event).await.expect_err("an event verify cannot judge fails the invocation");
    assert_eq!(failed["errorType"], "Permanent.Config", "{failed}");
    assert!(failed["errorMessage"].as_str().unwrap().contains("does not fit in the 80 MiB"), "{failed}");
    verify.stop().await;
}

#[tokio::test]
async fn a_verify_that_dies_mid_test_twice_rolls_back_on_the_third_delivery() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let config = local_config(&standin.url());
    let before = app.aws.service_task_definition(CLUSTER, "todo-backend").await;
    let deploy = start_function("deploy", &app.aws, &config, &[]).await;
    let digest = app.aws.push_image("todo-backend", "latest", "backend-kills-verify").await;
    // Every request to the new build hangs: the invocation that tests it dies (as one that ran
    // out of memory would) before a verdict.
    standin.set(digest.as_str(), Behaviour::Hangs);
    let started = deploy.invoke(&ecr_push_event("evt-kill", "todo-backend", "latest", &digest)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let event = ecs_deployment_event("ecs-kill", "todo-backend", &dep, "SERVICE_DEPLOYMENT_COMPLETED", "");

    for delivery in 1..=2 {
        // Lambda delivers the event to a fresh instance, which dies mid-test.
        let verify = std::sync::Arc::new(start_function("verify", &app.aws, &config, &[]).await);
        let pid = verify.pid().expect("running");
        let invoking = {
            let (verify, event) = (verify.clone(), event.clone());
            tokio::spawn(async move { verify.invoke(&event).await })
        };
        let start = std::time::Instant::now();
        let reached = || standin.served().iter().filter(|s| s.digest == digest.as_str()).count();
        while reached() < delivery {
            assert!(start.elapsed() < Duration::from_secs(30), "delivery {delivery}: the smoke test never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        invoking.abort();
        let rec = crate::support::record_of(&app.aws, "todo-backend", &dep).await;
        assert_eq!(rec["smoke_attempts"], delivery, "{rec}");
        assert_eq!(rec["status"], "started");
    }

    // The third delivery does not test again: it rolls back.
    let verify = start_function("verify", &app.aws, &config, &[]).await;
    let served = standin.served().len();
    let answer = verify.invoke(&event).await.unwrap();
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("never reached a verdict"), "{answer}");
    assert_eq!(standin.served().len(), served, "not tested a third time");
    assert_returned_to(&app.aws, "todo-backend", &before, ("backend", Some(app.backend_v0.as_str()))).await;
    let rec = crate::support::record_of(&app.aws, "todo-backend", &dep).await;
    assert_eq!(rec["status"], "rolled_back");
    verify.stop().await;
    deploy.stop().await;
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
}
