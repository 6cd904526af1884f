//! The build under test is hostile: what it answers must not steer the smoke test's requests, and
//! nothing it answers (nor a secret in a check's path) may reach the record, the answer or the
//! notification. Against moto and the stand-in app, as verify runs in Lambda.

use std::time::{Duration, Instant};

use pushdeploy::flows::deploy::Deployer;
use pushdeploy::flows::verify::Verifier;
use serde_json::Value;
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::standin::{Behaviour, SnsSink, TodoStandIn, LEAKED};

use crate::support::{deployer, verifier};

/// moto behind the IAM guard, the estate, the stand-in, a topic, and pushdeploy with a config.
struct Attack {
    app: TodoApp,
    standin: TodoStandIn,
    sink: SnsSink,
    deployer: Deployer,
    verifier: Verifier,
    seq: u32,
    // Last: moto outlives the clients above.
    _emu: Emulator,
}

impl Attack {
    /// `config` is given the stand-in's URL.
    async fn new(config: impl Fn(&str) -> String) -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
        let config = config(&standin.url());
        let deployer = deployer(&app.aws, &config);
        let verifier = verifier(&app.aws, &config, Some(&sink.topic_arn));
        Self { app, standin, sink, deployer, verifier, seq: 0, _emu: emu }
    }

    /// Pushes a backend build that behaves as `b`, rolls it out, and answers verify's verdict on
    /// ECS's completion with the deployment's record.
    async fn deploy_and_verify(&mut self, seed: &str, b: Behaviour) -> (Value, Value) {
        self.seq += 1;
        let digest = self.app.aws.push_image("todo-backend", "latest", seed).await;
        self.standin.set(digest.as_str(), b);
        let push = ecr_push_event(&format!("push-{}", self.seq), "todo-backend", "latest", &digest);
        let started = serde_json::to_value(self.deployer.handle(push, "req").await.unwrap()).unwrap();
        assert_eq!(started["outcome"], "started", "{started}");
        let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
        let done = ecs_deployment_event(
            &format!("ecs-{}", self.seq),
            "todo-backend",
            &dep,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "completed",
        );
        let answer = self.verifier.handle(done, Instant::now() + Duration::from_secs(120)).await.expect("verdict");
        let key = pushdeploy::domain::record::record_key(CLUSTER, "todo-backend", &dep).unwrap();
        let record = serde_json::from_slice(&self.app.aws.object(BUCKET, &key).await).unwrap();
        (serde_json::to_value(answer).unwrap(), record)
    }

    /// Every object under `deployments/`, as text.
    async fn records_in_s3(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for key in self.app.aws.keys(BUCKET).await.into_iter().filter(|k| k.starts_with("deployments/")) {
            let text = String::from_utf8_lossy(&self.app.aws.object(BUCKET, &key).await).into_owned();
            out.push((key, text));
        }
        out
    }
}

#[tokio::test]
async fn an_id_from_the_build_under_test_cannot_aim_the_probe_s_clean_up_elsewhere() {
    let mut a = Attack::new(local_config).await;
    let cases =
        [("../../admin/users/1", "contains a path separator"), ("%2e%2e%2fadmin", "contains % (percent-encoding)")];
    for (n, (id, kind)) in cases.into_iter().enumerate() {
        let items_before = a.standin.item_count();

        let (answer, rec) = a.deploy_and_verify(&format!("backend-hostile-id-{n}"), Behaviour::AnswersId(id)).await;

        // Its reads all saw the item, yet the build fails: its answer tried to steer a request.
        assert_eq!(answer["outcome"], "rolled_back", "{answer}");
        let probe = &rec["smoke"]["read_after_write"];
        assert_eq!((probe["reads_seen"].as_u64(), probe["passed"].as_bool()), (Some(6), Some(false)), "{probe}");
        assert_eq!(probe["cleaned_up"], false);
        let reason = rec["reason"].as_str().unwrap();
        assert!(reason.starts_with("read-after-write: the write answered an id at /id that "), "{reason}");
        assert!(reason.contains(kind) && reason.contains("no DELETE was sent"), "{reason}");
        let said = answer.to_string();
        assert!(said.contains(kind), "the answer names the kind: {said}");
        for shown in [reason.to_string(), said, rec.to_string()] {
            assert!(!shown.contains("admin"), "the hostile id is not echoed: {shown}");
        }
        // Nothing was deleted, and no request went anywhere but under the smoke url (`/api/`).
        assert_eq!(a.standin.item_count(), items_before + 1, "the probe's item is left, not something else deleted");
        let served = a.standin.served();
        assert!(served.iter().all(|s| s.method != "DELETE"), "{served:?}");
        assert!(served.iter().all(|s| s.path.starts_with("/api/")), "{served:?}");
    }
    let told: Vec<String> = a.sink.notifications().iter().map(|n| n.to_string()).collect();
    assert!(told.len() >= 2 && told.iter().all(|n| !n.contains("admin")), "{told:?}");
}

/// A backend whose checks carry a secret in their path, and a sign-in check.
fn leaky_config(app: &str) -> String {
    format!(
        r#"[defaults]
cluster = "{CLUSTER}"
strategy = "pin-digest"

[[service]]
name = "backend"
service = "todo-backend"
repository = "todo-backend"
tags = ["latest"]

[service.smoke]
url = "{app}api/"
attempts = 2
interval_ms = 100
timeout_ms = 2000
consecutive = 1

[[service.smoke.check]]
path = "health?token={LEAKED}-path-token#frag={LEAKED}"
contains = "healthy"
json_pointer = "/status"
equals = "ok"

[[service.smoke.check]]
path = "login?next={LEAKED}-next"
"#
    )
}

#[tokio::test]
async fn nothing_the_build_answers_and_no_query_reaches_the_record_the_answer_or_the_topic() {
    let mut a = Attack::new(leaky_config).await;

    let (answer, rec) = a.deploy_and_verify("backend-leaky", Behaviour::Leaky).await;

    // The secrets were there for the taking: in the path sent, in the body, in the Location.
    let served = a.standin.served();
    assert!(served.iter().any(|s| s.path.contains(&format!("?token={LEAKED}"))), "{served:?}");
    assert!(served.iter().any(|s| s.path.starts_with("/api/login") && s.status == 302), "{served:?}");

    // The verdict fails, and says why in terms a person can act on.
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.starts_with("GET health: "), "{reason}");
    assert!(reason.contains("does not contain the expected text"), "{reason}");
    assert!(reason.contains("value at /status differs from the expected string"), "{reason}");
    let checks = &rec["smoke"]["rounds"][0]["checks"];
    assert_eq!(checks[1]["check"], "GET login");
    assert_eq!(checks[1]["status"], 302);
    let login = checks[1]["failures"].to_string();
    assert!(login.contains("redirect to another host refused (https://sso.example.com)"), "{login}");

    // And nowhere it lands carries the secret.
    let told = a.sink.notifications();
    assert!(!told.is_empty(), "the verdict was notified");
    let mut places: Vec<(String, String)> = vec![("verify's answer".into(), answer.to_string())];
    places.extend(a.records_in_s3().await);
    places.extend(told.iter().map(|n| ("notification".to_string(), n.to_string())));
    for (place, text) in &places {
        assert!(!text.contains(LEAKED), "{place} carries the secret: {text}");
        assert!(!text.contains("eyJhbGciOi") && !text.contains("state="), "{place}: {text}");
    }
}
