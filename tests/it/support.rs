//! Shared set-up: moto, the todo estate, a deployer over it, and a snapshot of what could change.

use pushdeploy::domain::image::Digest;
use pushdeploy::flows::deploy::Deployer;
use serde_json::Value;
use testkit::estate::{ecr_push_event, Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;

/// The todo app's config, as the demo uses it.
pub const TODO_CONFIG: &str = include_str!("../../examples/pushdeploy.toml");

/// moto, the estate, and a deployer with `config`.
pub struct World {
    pub app: TodoApp,
    pub deployer: Deployer,
    pub emu: Emulator,
}

impl World {
    pub async fn new(config: &str) -> Self {
        let moto = Emulator::start().await;
        let aws = Aws::new(&moto.endpoint).await;
        let app = TodoApp::create(aws).await;
        let deployer = deployer(&app.aws, config);
        Self { app, deployer, emu: moto }
    }

    pub fn aws(&self) -> &Aws {
        &self.app.aws
    }

    pub async fn handle(&self, event: Value) -> Value {
        let summary = self.deployer.handle(event, "test-request").await.expect("no transient failure against moto");
        serde_json::to_value(summary).expect("summary serializes")
    }

    /// Pushes `seed` as `repository:tag` and answers the push event for it.
    pub async fn push(&self, id: &str, repository: &str, tag: &str, seed: &str) -> (Value, Digest) {
        let digest = self.aws().push_image(repository, tag, seed).await;
        (ecr_push_event(id, repository, tag, &digest), digest)
    }

    pub async fn snapshot(&self) -> Snapshot {
        Snapshot::take(self.aws()).await
    }
}

pub use testkit::estate::deployer;

/// Each service's outcome in an answer, in order.
/// A lease another rollout holds on a service for the next minute (its expiry is `.0`'s
/// `expires_at_ms`; `.1` is now, in milliseconds since the epoch).
pub fn lease_held_by(holder: &str) -> (pushdeploy::domain::lease::Lease, u64) {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let lease = pushdeploy::domain::lease::Lease {
        holder: holder.into(),
        invocation: None,
        image_uri: "x".into(),
        expires_at_ms: now_ms + 60_000,
        pending: None,
        released: false,
        task_definition: None,
    };
    (lease, now_ms)
}

pub fn outcomes(answer: &Value) -> Vec<(&str, &str)> {
    answer["deployments"]
        .as_array()
        .expect("an answer lists its deployments")
        .iter()
        .map(|d| (d["service"].as_str().unwrap_or_default(), d["outcome"].as_str().unwrap_or_default()))
        .collect()
}

/// Everything a deploy could change: task definitions, what services run, every S3 object version
/// (but the service leases under `leases/`, which every decision takes and releases).
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    task_definitions: Vec<String>,
    services: Vec<(String, String, Vec<String>)>,
    object_versions: Vec<(String, String)>,
}

impl Snapshot {
    pub async fn take(aws: &Aws) -> Self {
        let mut task_definitions =
            aws.ecs.list_task_definitions().send().await.unwrap().task_definition_arns().to_vec();
        task_definitions.sort();
        let arns = aws.ecs.list_services().cluster(CLUSTER).send().await.unwrap().service_arns().to_vec();
        let described = aws.ecs.describe_services().cluster(CLUSTER).set_services(Some(arns)).send().await.unwrap();
        let mut services: Vec<(String, String, Vec<String>)> = described
            .services()
            .iter()
            .map(|s| {
                (
                    s.service_name().unwrap().to_string(),
                    s.task_definition().unwrap().to_string(),
                    s.deployments().iter().map(|d| d.id().unwrap().to_string()).collect(),
                )
            })
            .collect();
        services.sort();
        let versions = aws.s3.list_object_versions().bucket(BUCKET).send().await.unwrap();
        let mut object_versions: Vec<(String, String)> = versions
            .versions()
            .iter()
            .filter(|v| !v.key().unwrap_or_default().starts_with("leases/"))
            .map(|v| (v.key().unwrap().to_string(), v.version_id().unwrap_or_default().to_string()))
            .collect();
        object_versions.sort();
        Self { task_definitions, services, object_versions }
    }
}

pub use testkit::estate::verifier;

/// `now` is `original`, or a copy of it that pushdeploy pinned for a rollback: every container's
/// image is the original's, or the original's tag replaced by a digest.
pub async fn pinned_copy_of(aws: &Aws, now: &str, original: &str) -> Result<Vec<(String, String)>, String> {
    let (ran, was) = (aws.images_of(now).await, aws.images_of(original).await);
    if ran.len() != was.len() {
        return Err(format!("{now} has {} containers, {original} {}", ran.len(), was.len()));
    }
    let repo = |i: &str| {
        let name = i.split('@').next().unwrap_or(i);
        name.rsplit_once(':').map_or(name, |(r, _)| r).to_string()
    };
    for ((name, image), (_, before)) in ran.iter().zip(&was) {
        if !(image == before || (image.contains("@sha256:") && repo(image) == repo(before))) {
            return Err(format!("{name} runs {image}, which is not {before} pinned"));
        }
    }
    Ok(ran)
}

/// The service is back on `original` (or a pinned copy of it, see [`pinned_copy_of`]), with the
/// container `app.0` on the digest `app.1` when one is given; answers the revision it runs.
pub async fn assert_returned_to(aws: &Aws, service: &str, original: &str, app: (&str, Option<&str>)) -> String {
    let now = aws.service_task_definition(CLUSTER, service).await;
    let ran = pinned_copy_of(aws, &now, original).await.unwrap_or_else(|e| panic!("{service}: {e}"));
    if let (name, Some(digest)) = app {
        let image = &ran.iter().find(|(n, _)| n == name).expect("the app container").1;
        assert!(image.ends_with(&format!("@{digest}")), "{name} runs {image}, not {digest}");
    }
    now
}

/// The deployment record of `deployment` (`ecs-svc/…`) of `service`, as JSON.
pub async fn record_of(aws: &Aws, service: &str, deployment: &str) -> Value {
    let key = pushdeploy::domain::record::record_key(CLUSTER, service, deployment).unwrap();
    serde_json::from_slice(&aws.object(BUCKET, &key).await).unwrap()
}
