//! Observe mode against moto and the stand-in app: verify runs every check, records and tells the
//! verdict it would have given, and changes nothing in ECS; the operator's `status` and `history`
//! say observe; a later enforce rollback passes over the observed failure, and its build is not
//! refused as rolled back.

use serde_json::Value;
use testkit::estate::{local_config, verifier, CLUSTER};
use testkit::standin::Behaviour;

use crate::support::{assert_returned_to, deployer, Snapshot};
use crate::verify::Loop;

const BACKEND: &str = "todo-backend";

/// The stand-in's config with `mode = "observe"` in `[defaults]`.
pub(crate) fn observe_config(app: &str) -> String {
    let config = local_config(app);
    let observing = config.replacen("[defaults]\n", "[defaults]\nmode = \"observe\"\n", 1);
    assert_ne!(observing, config, "the config has a [defaults] table");
    observing
}

fn timeline(record: &Value) -> Vec<String> {
    record["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_broken_build_in_observe_mode_is_recorded_and_told_as_would_roll_back_and_keeps_running() {
    let mut l = Loop::with_config(observe_config).await;
    let before = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    let dep = l.push(BACKEND, "backend-broken", Behaviour::Broken).await;
    let broken = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    assert_ne!(broken, before, "deploy is unchanged in observe mode: it deployed");
    let task_definitions = l.aws().ecs.list_task_definitions().send().await.unwrap().task_definition_arns().len();

    let answer = l.completed(BACKEND, &dep).await;

    assert_eq!(answer["outcome"], "failed", "{answer}");
    let said = answer["deployments"][0]["reason"].as_str().unwrap();
    assert_eq!(answer["reason"], format!("backend: {said}"));
    assert!(said.starts_with("observe: would roll back: GET todoItems: status 500, expected 200"), "{said}");
    // Nothing rolled back: ECS runs the broken build's revision, and nothing new was registered.
    assert_eq!(l.aws().service_task_definition(CLUSTER, BACKEND).await, broken, "nothing rolled back");
    assert_eq!(
        l.aws().ecs.list_task_definitions().send().await.unwrap().task_definition_arns().len(),
        task_definitions
    );
    let app = reqwest::get(format!("{}/api/todoItems", l.standin.url().trim_end_matches('/'))).await.unwrap();
    assert_eq!(app.status().as_u16(), 500, "the broken build still serves");

    let rec = l.record(BACKEND, &dep).await;
    assert_eq!((rec["status"].as_str(), rec["mode"].as_str()), (Some("failed"), Some("observe")), "{rec}");
    assert_eq!(rec["reason"], said);
    assert_eq!(rec["smoke"]["passed"], false, "every check ran as in enforce mode");
    assert_eq!(rec["smoke"]["rounds_run"], 4);
    assert!(rec["rolled_back_to"].is_null() && rec["rollback_deployment"].is_null(), "{rec}");
    assert_eq!(timeline(&rec), ["pushed", "started", "ecs_completed", "would_roll_back"]);

    let notes = l.sink.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let subject = notes[0]["Subject"].as_str().unwrap();
    assert!(subject.starts_with("pushdeploy observe, would roll back: backend latest@"), "{subject}");
    let message = notes[0]["Message"].as_str().unwrap();
    let first = message.lines().next().unwrap();
    assert!(first.starts_with("backend (todo-cluster/todo-backend) latest@"), "{first}");
    assert!(first.contains(": FAILED (observe mode: not rolled back, still serving)"), "{first}");
    assert!(first.contains("observe: would roll back: GET todoItems: status 500"), "{first}");
    assert!(message.contains("\"mode\": \"observe\""), "{message}");
    println!("Subject: {subject}\n{message}");

    // A duplicate delivery changes nothing and tells nobody again.
    let snapshot = Snapshot::take(l.aws()).await;
    let again = l.completed(BACKEND, &dep).await;
    assert_eq!(again["outcome"], "failed");
    let again_said = again["deployments"][0]["reason"].as_str().unwrap();
    assert!(again_said.starts_with("already failed (observe: would roll back: "), "{again}");
    assert_eq!(Snapshot::take(l.aws()).await, snapshot);
    assert_eq!(l.sink.notifications().len(), 1);
}

#[tokio::test]
async fn a_good_build_in_observe_mode_is_verified_and_its_record_says_observe() {
    let mut l = Loop::with_config(observe_config).await;
    let dep = l.push(BACKEND, "backend-good", Behaviour::Good).await;
    let answer = l.completed(BACKEND, &dep).await;
    assert_eq!(answer["outcome"], "verified", "{answer}");
    let rec = l.record(BACKEND, &dep).await;
    assert_eq!((rec["status"].as_str(), rec["mode"].as_str()), (Some("verified"), Some("observe")));
    let notes = l.sink.notifications();
    assert!(notes[0]["Subject"].as_str().unwrap().starts_with("pushdeploy verified (observe): backend"), "{notes:?}");
}

/// After an observed failure the service is put in enforce mode: the next broken push rolls back
/// to the last verified build, passing over the observed failure that ran just before it; the
/// observed failure's build is not refused as rolled back, while the enforced one's is.
#[tokio::test]
async fn an_observed_failure_is_passed_over_by_the_next_rollback_and_not_refused_as_rolled_back() {
    let mut l = Loop::with_config(observe_config).await;
    let good = l.push(BACKEND, "backend-good", Behaviour::Good).await;
    assert_eq!(l.completed(BACKEND, &good).await["outcome"], "verified");
    let verified_td = l.aws().service_task_definition(CLUSTER, BACKEND).await;
    let good_digest = l.record(BACKEND, &good).await["digest"].as_str().unwrap().to_string();
    let observed = l.push(BACKEND, "backend-broken", Behaviour::Broken).await;
    assert_eq!(l.completed(BACKEND, &observed).await["outcome"], "failed");
    let observed_rec = l.record(BACKEND, &observed).await;
    let observed_td = observed_rec["task_definition"].as_str().unwrap().to_string();
    assert_eq!(l.aws().service_task_definition(CLUSTER, BACKEND).await, observed_td, "still serving");

    // Enforce from now on.
    let enforce = local_config(&l.standin.url());
    l.deployer = deployer(l.aws(), &enforce);
    l.verifier = verifier(l.aws(), &enforce, Some(&l.sink.topic_arn));
    let broken = l.push(BACKEND, "backend-broken-again", Behaviour::Broken).await;
    let answer = l.completed(BACKEND, &broken).await;
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    let now = assert_returned_to(l.aws(), BACKEND, &verified_td, ("backend", Some(&good_digest))).await;
    assert_ne!(now, observed_td, "never back to the observed failure");
    let rec = l.record(BACKEND, &broken).await;
    assert_eq!(rec["rolled_back_to"], now.as_str());
    assert!(rec.get("mode").is_none(), "an enforce record has no mode field: {rec}");

    // The observed failure's build pushed again deploys (nothing rolled it back) ...
    let digest = l.aws().push_image(BACKEND, "latest", "backend-broken").await;
    assert_eq!(digest.as_str(), observed_rec["digest"].as_str().unwrap());
    let event = testkit::estate::ecr_push_event("push-observed-again", BACKEND, "latest", &digest);
    let again = serde_json::to_value(l.deployer.handle(event, "req").await.unwrap()).unwrap();
    assert_eq!(again["outcome"], "started", "{again}");
    // ... while the build enforce mode rolled back is refused.
    let digest = l.aws().push_image(BACKEND, "latest", "backend-broken-again").await;
    let event = testkit::estate::ecr_push_event("push-rolled-back-again", BACKEND, "latest", &digest);
    let refused = serde_json::to_value(l.deployer.handle(event, "req").await.unwrap()).unwrap();
    let reason = refused["deployments"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("was rolled back by pushdeploy"), "{refused}");
}

/// `pushdeploy status` and `history`, run as a process, say observe for the service and for its
/// observed failure.
#[tokio::test]
async fn status_and_history_say_observe() {
    let mut l = Loop::with_config(observe_config).await;
    let dep = l.push(BACKEND, "backend-broken", Behaviour::Broken).await;
    assert_eq!(l.completed(BACKEND, &dep).await["outcome"], "failed");
    let dir = std::env::temp_dir().join(format!("pushdeploy-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pushdeploy.toml");
    std::fs::write(&config, observe_config(&l.standin.url())).unwrap();

    let (code, table, err) = crate::insight::pushdeploy(&l, &config, &["status"]).await;
    assert_eq!(code, 1, "the newest deployment failed: {table}{err}");
    let row = table.lines().find(|r| r.contains("todo-cluster/todo-backend")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("backend (observe)") && row.contains("failed (observe)"), "{table}");
    println!("{table}");
    let (_, out, _) = crate::insight::pushdeploy(&l, &config, &["status", "--json"]).await;
    let status: Value = serde_json::from_str(&out).unwrap();
    let backend = status.as_array().unwrap().iter().find(|s| s["name"] == "backend").unwrap().clone();
    assert_eq!(backend["mode"], "observe");
    assert_eq!(backend["last"]["mode"], "observe");
    assert!(backend["last"]["reason"].as_str().unwrap().starts_with("observe: would roll back: "), "{backend}");
    assert_eq!(backend["task_definition"], l.aws().service_task_definition(CLUSTER, BACKEND).await.as_str());

    let (code, table, _) = crate::insight::pushdeploy(&l, &config, &["history", "backend", "--wide"]).await;
    assert_eq!(code, 0);
    assert!(table.contains("failed (observe)") && table.contains("observe: would roll back: GET todoItems"), "{table}");
    println!("{table}");
    let id = pushdeploy::domain::record::record_id(&dep).unwrap();
    let (_, shown, _) = crate::insight::pushdeploy(&l, &config, &["show", &id]).await;
    assert!(shown.contains("would_roll_back") && shown.contains("mode: observe"), "{shown}");
    println!("{shown}");
    std::fs::remove_dir_all(&dir).ok();
}
