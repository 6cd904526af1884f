//! Which push is fresh, and which revisions pruning may take, played through the built `deploy` and
//! `verify` binaries: a tag moved back to an older build deploys it; an event older than one
//! already deployed is superseded; a push time someone wrote on a task definition blocks nothing;
//! a verified staging deployment never deregisters what production (same family) runs or would
//! roll back to.

use aws_sdk_ecs::types::Tag;
use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::runtime::FunctionProcess;
use testkit::standin::{Behaviour, TodoStandIn};

use crate::function::start_function;
use crate::support::{record_of, Snapshot};

const FRONTEND: &str = "todo-frontend";

struct Estate {
    _emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
}

impl Estate {
    async fn new() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        Self { _emu: emu, app, standin }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }
}

/// EventBridge's `time` of an event `secs` after `t0` (whole seconds, as EventBridge sends it).
fn at(t0: f64, secs: f64) -> String {
    pushdeploy::record::rfc3339(t0 + secs)
}

/// The push event `id` of `repository:tag` at `digest`, sent at `time`.
fn push_at(id: &str, repository: &str, tag: &str, digest: &pushdeploy::image::Digest, time: &str) -> Value {
    let mut event = ecr_push_event(id, repository, tag, digest);
    event["time"] = json!(time);
    event
}

/// The image of the service's app container (the first).
async fn running_image(aws: &Aws, service: &str) -> String {
    let td = aws.service_task_definition(CLUSTER, service).await;
    aws.images_of(&td).await[0].1.clone()
}

/// The one deployment of an answer.
fn only(answer: &Value) -> &Value {
    let d = &answer["deployments"][0];
    assert_eq!(answer["deployments"].as_array().map(Vec::len), Some(1), "{answer}");
    d
}

#[tokio::test]
async fn a_tag_moved_back_to_an_older_image_deploys_it_and_only_a_late_event_is_superseded() {
    let e = Estate::new().await;
    let config = local_config(&e.standin.url());
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let t0 = (pushdeploy::timing::now_ms() / 1000) as f64;

    // v1 then v2 to `latest`: both deploy.
    let v1 = e.aws().push_image(FRONTEND, "latest", "frontend-fresh-v1").await;
    let first = deploy.invoke(&push_at("evt-v1", FRONTEND, "latest", &v1, &at(t0, 10.0))).await.unwrap();
    assert_eq!(only(&first)["outcome"], "started", "{first}");
    let v2 = e.aws().push_image(FRONTEND, "latest", "frontend-fresh-v2").await;
    let second = deploy.invoke(&push_at("evt-v2", FRONTEND, "latest", &v2, &at(t0, 20.0))).await.unwrap();
    assert_eq!(only(&second)["outcome"], "started", "{second}");
    assert!(running_image(e.aws(), FRONTEND).await.ends_with(&format!("@{v2}")));
    let rec = record_of(e.aws(), FRONTEND, only(&second)["ecs_deployment_id"].as_str().unwrap()).await;
    assert_eq!(rec["event_time"], at(t0, 20.0), "the record keeps the event's own time: {rec}");

    // Someone re-points `latest` at v1's digest (a rollback or promotion by retag); ECR keeps v1's
    // first push time for that digest.
    let retagged = e.aws().push_image(FRONTEND, "latest", "frontend-fresh-v1").await;
    assert_eq!(retagged, v1, "the same image, the same digest");

    // Before its event arrives, v1's first event is delivered again, late: the tag names its
    // digest again, but v2's later event was already acted on. Superseded, nothing changes.
    let before = Snapshot::take(e.aws()).await;
    let late = deploy.invoke(&push_at("evt-v1", FRONTEND, "latest", &v1, &at(t0, 10.0))).await.unwrap();
    assert_eq!(only(&late)["outcome"], "superseded", "{late}");
    let why = only(&late)["reason"].as_str().unwrap();
    assert!(why.contains("was deployed for push evt-v2, an event 10 s after this one"), "{why}");
    assert_eq!(Snapshot::take(e.aws()).await, before);

    // The retag's own event, later than both: v1's digest deploys, with a record of it.
    let back = deploy.invoke(&push_at("evt-retag", FRONTEND, "latest", &v1, &at(t0, 30.0))).await.unwrap();
    let d = only(&back);
    assert_eq!(d["outcome"], "started", "{back}");
    let td = e.aws().service_task_definition(CLUSTER, FRONTEND).await;
    assert_eq!(d["task_definition"], td.as_str());
    assert!(running_image(e.aws(), FRONTEND).await.ends_with(&format!("@{v1}")), "the service runs v1's digest");
    let rec = record_of(e.aws(), FRONTEND, d["ecs_deployment_id"].as_str().unwrap()).await;
    assert_eq!((rec["digest"].as_str(), rec["task_definition"].as_str()), (Some(v1.as_str()), Some(td.as_str())));
    assert_eq!(rec["trigger"], json!({"kind": "push", "event_id": "evt-retag"}));
    assert_eq!(rec["event_time"], at(t0, 30.0));
    assert_eq!(rec["status"], "started");

    // v2's event delivered again now: `latest` names v1's digest, so it is superseded.
    let before = Snapshot::take(e.aws()).await;
    let stale = deploy.invoke(&push_at("evt-v2", FRONTEND, "latest", &v2, &at(t0, 20.0))).await.unwrap();
    assert_eq!(only(&stale)["outcome"], "superseded", "{stale}");
    assert_eq!(Snapshot::take(e.aws()).await, before);

    // Another principal tags the running revision with pushdeploy's push time, far in the future
    // (anyone with ecs:TagResource can): the next push still deploys.
    let pushed_at = Tag::builder().key(pushdeploy::plan::PUSHED_AT_TAG).value("4102444800").build();
    e.aws().signing_as("developer").ecs.tag_resource().resource_arn(&td).tags(pushed_at).send().await.unwrap();
    let v3 = e.aws().push_image(FRONTEND, "latest", "frontend-fresh-v3").await;
    let third = deploy.invoke(&push_at("evt-v3", FRONTEND, "latest", &v3, &at(t0, 40.0))).await.unwrap();
    assert_eq!(only(&third)["outcome"], "started", "{third}");
    assert!(running_image(e.aws(), FRONTEND).await.ends_with(&format!("@{v3}")));
    let rec = record_of(e.aws(), FRONTEND, only(&third)["ecs_deployment_id"].as_str().unwrap()).await;
    assert_eq!(rec["digest"], v3.as_str());
    assert_eq!(
        e.aws().keys(BUCKET).await.iter().filter(|k| k.starts_with(&format!("deployments/{CLUSTER}/{FRONTEND}/"))).count(),
        4,
        "one record per push that deployed (v1, v2, the retag, v3)"
    );
    deploy.stop().await;
}
