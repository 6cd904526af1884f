//! A way back on day one: `pushdeploy rollback` as an operator runs it right after cutover, the
//! real binary through a Lambda Invoke stand-in in front of the deploy function's own process,
//! against moto behind the IAM guard. The old pipeline deployed the backend twice (each revision
//! naming its tag); pushdeploy has verified nothing. ECS's history (the test side's service
//! revisions) is all there is to go back by.

use std::sync::Arc;

use serde_json::Value;
use testkit::estate::{Aws, TodoApp, BUCKET, CLUSTER};
use testkit::guard::Emulator;
use testkit::lambda::LambdaService;
use testkit::names::registry;
use testkit::runtime::FunctionProcess;

use crate::function::start_function;
use crate::support::{assert_returned_to, Snapshot, TODO_CONFIG};

const BACKEND: &str = "todo-backend";

struct DayOne {
    emu: Emulator,
    app: TodoApp,
    deploy: Arc<FunctionProcess>,
    lambda: LambdaService,
    /// Terraform's revision (`todo-backend:latest`, the first image) and the pipeline's two
    /// (`:v1`, `:v2`), each with the digest the service ran.
    ran: Vec<(String, String)>,
}

impl DayOne {
    async fn new() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let aws = &app.aws;
        let terraform = aws.service_task_definition(CLUSTER, BACKEND).await;
        let mut ran = vec![(terraform.clone(), app.backend_v0.as_str().to_string())];
        for tag in ["v1", "v2"] {
            ran.push(pipeline_deploys(aws, &terraform, tag).await);
        }
        // The tags move on after they ran: a rollback must run what ran, not what they name now.
        for tag in ["latest", "v1"] {
            aws.push_image(BACKEND, tag, &format!("backend-{tag}-moved-on")).await;
        }
        let deploy = Arc::new(start_function("deploy", aws, TODO_CONFIG, &[]).await);
        let lambda = LambdaService::start([("pushdeploy-deploy".to_string(), deploy.clone())].into()).await;
        Self { emu, app, deploy, lambda, ran }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }

    async fn running(&self) -> String {
        self.aws().service_task_definition(CLUSTER, BACKEND).await
    }

    /// Runs `pushdeploy ARGS` as the operator; (exit code, stdout, stderr).
    async fn pushdeploy(&self, args: &[&str]) -> (i32, String, String) {
        let mut env = self.aws().function_env(testkit::iam::Role::Deploy);
        env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
        let mut command = std::process::Command::new(testkit::runtime::cli_binary());
        command
            .args(args)
            .envs(env)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_ENDPOINT_URL_LAMBDA", &self.lambda.endpoint)
            .env("USER", "on-call")
            .stdin(std::process::Stdio::null());
        let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // What the operator sees (`--nocapture` shows it; the book quotes it).
        eprintln!("$ pushdeploy {}\n{stdout}{stderr}(exit {:?})", args.join(" "), out.status.code());
        (out.status.code().unwrap_or(-1), stdout.into_owned(), stderr.into_owned())
    }

    /// The deployment records in the bucket.
    async fn records(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for k in self.aws().keys(BUCKET).await.into_iter().filter(|k| k.starts_with("deployments/")) {
            out.push(serde_json::from_slice(&self.aws().object(BUCKET, &k).await).unwrap());
        }
        out
    }

    async fn stop(self) {
        let denied = self.emu.guard.denied();
        drop(self.lambda);
        drop(self.deploy);
        assert!(denied.is_empty(), "{denied:?}");
    }
}

/// The old pipeline's deploy: `tag` pushed, a revision of the family naming it, UpdateService.
async fn pipeline_deploys(aws: &Aws, like: &str, tag: &str) -> (String, String) {
    let digest = aws.push_image(BACKEND, tag, &format!("backend-pipeline-{tag}")).await;
    let image = format!("{}/{BACKEND}:{tag}", registry());
    let td = aws
        .register_revision_like(
            like,
            |td| {
                let mut containers = td.container_definitions().to_vec();
                containers
                    .iter_mut()
                    .filter(|c| c.name() == Some("backend"))
                    .for_each(|c| c.image = Some(image.clone()));
                td.container_definitions = Some(containers);
            },
            Vec::new(),
        )
        .await;
    aws.ecs.update_service().cluster(CLUSTER).service(BACKEND).task_definition(&td).send().await.unwrap();
    (td, digest.as_str().to_string())
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[tokio::test]
async fn day_one_rollback_lists_what_ecs_ran_then_returns_to_a_revision_or_a_digest_it_ran() {
    let e = DayOne::new().await;
    let [(terraform, v0), (td_v1, v1), (td_v2, _)] = <[_; 3]>::try_from(e.ran.clone()).unwrap();
    let before = Snapshot::take(e.aws()).await;

    // No target: nothing verified, nothing recorded. It says so and lists what ECS ran.
    let (code, out, err) = e.pushdeploy(&["rollback", "backend"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("rejected — rollback of backend: pushdeploy has no record of this service"), "{out}");
    assert!(out.contains("pick one with `pushdeploy rollback backend --to REVISION|DIGEST`"), "{out}");
    let listed: Vec<&str> = out.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(listed.len(), 3, "{out}");
    for (line, (td, digest)) in listed.iter().zip([(&td_v2, None), (&td_v1, Some(&v1)), (&terraform, Some(&v0))]) {
        assert!(line.trim_start().starts_with(short(td)), "newest first: {out}");
        assert!(digest.is_none_or(|d| line.contains(&format!("backend={d}"))), "{line}");
    }
    assert!(listed[0].ends_with("[runs now]"), "{out}");

    // A dry run says what it would do and changes nothing.
    let (code, out, _) = e.pushdeploy(&["rollback", "backend", "--to", short(&td_v1), "--dry-run"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("planned — would roll back to {}", short(&td_v1))), "{out}");
    assert!(out.contains("which ECS's history shows the service ran"), "{out}");
    assert_eq!(Snapshot::take(e.aws()).await, before, "nothing changed");

    // --to family:N: back to the pipeline's v1, pinned to the digest it ran (`v1` has moved on).
    let (code, out, err) = e.pushdeploy(&["rollback", "backend", "--to", short(&td_v1)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rolled_back — rolling back to"), "{out}");
    let now = assert_returned_to(e.aws(), BACKEND, &td_v1, ("backend", Some(&v1))).await;
    assert_ne!(now, td_v1, "a copy pinned to the digest v1 ran");
    let records = e.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    let rec = &records[0];
    assert_eq!(rec["trigger"]["action"], "rollback");
    assert_eq!(rec["task_definition"], now.as_str());
    assert_eq!(rec["previous_task_definition"], td_v2.as_str());
    assert_eq!(rec["requested"]["to"], short(&td_v1));
    assert_eq!(rec["requested"]["target_from"], "ecs_history");
    assert_eq!(rec["requested"]["requested_by"], "on-call");

    // --to sha256:…: the newest revision that ran it (Terraform's, naming `latest`, moved on since).
    let (code, out, err) = e.pushdeploy(&["rollback", "backend", "--to", &v0, "--requested-by", "alice"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("the newest revision it ran with {v0}")), "{out}");
    assert_returned_to(e.aws(), BACKEND, &terraform, ("backend", Some(&v0))).await;
    let rec = e.records().await.into_iter().find(|r| r["requested"]["to"] == v0.as_str()).expect("a record");
    assert_eq!(rec["requested"]["requested_by"], "alice");
    e.stop().await;
}

#[tokio::test]
async fn a_revision_or_digest_the_service_never_ran_is_refused_and_nothing_changes() {
    let e = DayOne::new().await;
    let terraform = e.ran[0].0.clone();
    // Registered in the family (anyone with ecs:RegisterTaskDefinition may), never deployed.
    let never_ran = e.aws().register_changed_revision(&terraform, ("TODO_ENV", "evil")).await;
    // Pushed to the repository, never deployed.
    let never_deployed = e.aws().push_image(BACKEND, "v3", "backend-never-deployed").await;
    let before = Snapshot::take(e.aws()).await;
    let running = e.running().await;
    for (to, why) in [
        (short(&never_ran).to_string(), "shows no deployment of that revision"),
        (never_ran.clone(), "shows no deployment of that revision"),
        (never_deployed.as_str().to_string(), "shows no revision that ran that digest"),
        (e.ran[2].1.clone(), "the service already runs"),
    ] {
        let (code, out, err) = e.pushdeploy(&["rollback", "backend", "--to", &to]).await;
        assert_eq!(code, 1, "{to}: {out}{err}");
        assert!(out.contains("rejected — rollback of backend: ") && out.contains(why), "{to}: {out}");
        assert!(out.contains("nothing changed"), "{out}");
    }
    // Malformed: refused by the function's parser before anything is read.
    let (code, out, _) = e.pushdeploy(&["rollback", "backend", "--to", "latest"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("name a task definition revision (family:N or its ARN) or an image digest"), "{out}");
    assert_eq!(e.running().await, running);
    assert_eq!(Snapshot::take(e.aws()).await, before, "nothing changed in ECS or S3");
    e.stop().await;
}
