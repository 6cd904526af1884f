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
use testkit::standin::TodoStandIn;

use crate::function::start_function;
use crate::support::{assert_returned_to, record_of, Snapshot};

const FRONTEND: &str = "todo-frontend";
const PRODUCTION: &str = "todo-backend";
const STAGING: &str = "todo-backend-staging";

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
    pushdeploy::domain::record::rfc3339(t0 + secs)
}

/// The push event `id` of `repository:tag` at `digest`, sent at `time`.
fn push_at(id: &str, repository: &str, tag: &str, digest: &pushdeploy::domain::image::Digest, time: &str) -> Value {
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
    let t0 = (pushdeploy::domain::timing::now_ms() / 1000) as f64;

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
    let pushed_at = Tag::builder().key(pushdeploy::rules::plan::PUSHED_AT_TAG).value("4102444800").build();
    e.aws().signing_as("developer").ecs.tag_resource().resource_arn(&td).tags(pushed_at).send().await.unwrap();
    let v3 = e.aws().push_image(FRONTEND, "latest", "frontend-fresh-v3").await;
    let third = deploy.invoke(&push_at("evt-v3", FRONTEND, "latest", &v3, &at(t0, 40.0))).await.unwrap();
    assert_eq!(only(&third)["outcome"], "started", "{third}");
    assert!(running_image(e.aws(), FRONTEND).await.ends_with(&format!("@{v3}")));
    let rec = record_of(e.aws(), FRONTEND, only(&third)["ecs_deployment_id"].as_str().unwrap()).await;
    assert_eq!(rec["digest"], v3.as_str());
    assert_eq!(
        e.aws()
            .keys(BUCKET)
            .await
            .iter()
            .filter(|k| k.starts_with(&format!("deployments/{CLUSTER}/{FRONTEND}/")))
            .count(),
        4,
        "one record per push that deployed (v1, v2, the retag, v3)"
    );
    deploy.stop().await;
}

/// The todo app's config where production (`backend`, tags `v*`) and staging (`backend-staging`,
/// `latest`) are two services of one task-definition family, each keeping one revision.
fn shared_family_config(app: &str) -> String {
    let config = local_config(app).replacen("tags = [\"latest\", \"v*\"]", "tags = [\"v*\"]\nkeep_revisions = 1", 1);
    assert!(config.contains("keep_revisions = 1"), "the backend's tags line moved: {config}");
    format!(
        r#"{config}
[[service]]
name = "backend-staging"
service = "{STAGING}"
repository = "todo-backend"
tags = ["latest"]
keep_revisions = 1

[service.smoke]
url = "{app}api/"
attempts = 3
interval_ms = 100
timeout_ms = 2000
consecutive = 1

[[service.smoke.check]]
path = "todoItems"
status = 200
"#
    )
}

/// Pushes `repository:tag` (an image made from `seed`) to the deploy binary, has ECS report the
/// rollout complete to the verify binary, and answers the revision the service runs, verified.
async fn deploy_verified(
    e: &Estate,
    (deploy, verify): (&FunctionProcess, &FunctionProcess),
    service: &str,
    tag: &str,
    seed: &str,
) -> String {
    let digest = e.aws().push_image("todo-backend", tag, seed).await;
    let started = deploy.invoke(&ecr_push_event(&format!("evt-{seed}"), "todo-backend", tag, &digest)).await.unwrap();
    let d = only(&started);
    assert_eq!(
        (d["outcome"].as_str(), d["target"].as_str()),
        (Some("started"), Some(format!("{CLUSTER}/{service}").as_str())),
        "{started}"
    );
    let dep = d["ecs_deployment_id"].as_str().unwrap();
    let completed = ecs_deployment_event(&format!("ecs-{seed}"), service, dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let verdict = verify.invoke(&completed).await.unwrap();
    assert_eq!(verdict["outcome"], "verified", "{verdict}");
    let td = e.aws().service_task_definition(CLUSTER, service).await;
    assert_eq!(d["task_definition"], td.as_str());
    td
}

/// ECS's status of a revision: `ACTIVE`, or `INACTIVE` once deregistered.
async fn status(aws: &Aws, td: &str) -> String {
    let out = aws.ecs.describe_task_definition().task_definition(td).send().await.unwrap();
    out.task_definition().unwrap().status().unwrap().as_str().to_string()
}

#[tokio::test]
async fn a_verified_staging_deployment_never_prunes_what_production_runs_or_would_roll_back_to() {
    let e = Estate::new().await;
    // Staging runs the backend's family too, from Terraform's revision.
    let terraform = e.aws().service_task_definition(CLUSTER, PRODUCTION).await;
    e.aws().create_service(CLUSTER, STAGING, &terraform).await;
    let config = shared_family_config(&e.standin.url());
    let deploy = start_function("deploy", e.aws(), &config, &[]).await;
    let verify = start_function("verify", e.aws(), &config, &[]).await;
    let fns = (&deploy, &verify);

    // Production: v1.0 then v1.1, both verified. It runs v1.1 and would roll back to v1.0.
    let prod_v10 = deploy_verified(&e, fns, PRODUCTION, "v1.0", "prune-prod-v10").await;
    let prod_v11 = deploy_verified(&e, fns, PRODUCTION, "v1.1", "prune-prod-v11").await;
    assert_ne!(prod_v10, prod_v11);

    // Staging: three verified deployments of `latest`, each pruning the shared family to one of
    // pushdeploy's revisions plus what any configured service runs or could roll back to.
    let staging_1 = deploy_verified(&e, fns, STAGING, "latest", "prune-stg-1").await;
    assert_eq!(
        (status(e.aws(), &prod_v11).await, status(e.aws(), &prod_v10).await),
        ("ACTIVE".into(), "ACTIVE".into())
    );
    let staging_2 = deploy_verified(&e, fns, STAGING, "latest", "prune-stg-2").await;
    let staging_3 = deploy_verified(&e, fns, STAGING, "latest", "prune-stg-3").await;

    // What production runs and would roll back to are still ACTIVE, and so are staging's own
    // current revision and its rollback target; staging's oldest copy is pruned.
    for (what, td) in [
        ("production runs", &prod_v11),
        ("production would roll back to", &prod_v10),
        ("staging runs", &staging_3),
        ("staging would roll back to", &staging_2),
    ] {
        assert_eq!(status(e.aws(), td).await, "ACTIVE", "{what}: {td}");
    }
    assert_eq!(status(e.aws(), &staging_1).await, "INACTIVE", "keep_revisions still prunes what nobody needs");
    assert_eq!(status(e.aws(), &terraform).await, "ACTIVE", "never a revision pushdeploy did not register");

    // Production's rollback then succeeds: it returns to v1.0's revision, and ECS's completion of
    // it is recorded as the rollback.
    let answer = deploy.invoke(&json!({"action": "rollback", "service": "backend"})).await.unwrap();
    let d = only(&answer);
    assert_eq!(d["outcome"], "rolled_back", "{answer}");
    // v1.0's revision (its log router sidecar is by tag, so a copy pinned to what it ran).
    let v10_backend = e.aws().images_of(&prod_v10).await[0].1.clone();
    let now = assert_returned_to(e.aws(), PRODUCTION, &prod_v10, ("backend", v10_backend.split('@').nth(1))).await;
    assert_eq!(d["task_definition"], now.as_str());
    let dep = d["ecs_deployment_id"].as_str().unwrap();
    let rec = record_of(e.aws(), PRODUCTION, dep).await;
    assert_eq!(
        (rec["trigger"]["action"].as_str(), rec["previous_task_definition"].as_str()),
        (Some("rollback"), Some(prod_v11.as_str()))
    );
    let completed = ecs_deployment_event("ecs-prune-rollback", PRODUCTION, dep, "SERVICE_DEPLOYMENT_COMPLETED", "");
    let verdict = verify.invoke(&completed).await.unwrap();
    assert_eq!(verdict["outcome"], "rolled_back", "{verdict}");
    assert_eq!(e.aws().service_task_definition(CLUSTER, PRODUCTION).await, now);
    deploy.stop().await;
    verify.stop().await;
}
