//! A build pushdeploy rolled back never ships again by accident, played through the built `deploy`
//! and `verify` binaries and the operator's `pushdeploy` command: `redeploy` rolls again the
//! digest the service runs (never whatever the config's first tag names by then), and a digest a
//! verify rolled back is refused by `deploy`, `redeploy`, `plan` and a new push of it unless forced.

use std::sync::Arc;

use serde_json::{json, Value};
use testkit::estate::{ecr_push_event, ecs_deployment_event, local_config, Aws, TodoApp, CLUSTER};
use testkit::guard::Emulator;
use testkit::lambda::LambdaService;
use testkit::runtime::FunctionProcess;
use testkit::standin::{Behaviour, SnsSink, TodoStandIn};

use crate::function::start_function;
use crate::support::{record_of, Snapshot};

const BACKEND: &str = "todo-backend";

struct Estate {
    emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
    sink: SnsSink,
    deploy: Arc<FunctionProcess>,
    verify: FunctionProcess,
    seq: u32,
}

impl Estate {
    async fn new() -> Self {
        let emu = Emulator::start().await;
        let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let sink = SnsSink::start(&app.aws, "pushdeploy-verdicts").await;
        // The backend watches ["latest", "v*"].
        let config = local_config(&standin.url());
        let topic = [("PUSHDEPLOY_TOPIC_ARN", sink.topic_arn.as_str())];
        let deploy = Arc::new(start_function("deploy", &app.aws, &config, &topic).await);
        let verify = start_function("verify", &app.aws, &config, &topic).await;
        Self { emu, app, standin, sink, deploy, verify, seq: 0 }
    }

    fn aws(&self) -> &Aws {
        &self.app.aws
    }

    /// Pushes an image behaving as `b` to `tag` and delivers the push to the deploy binary.
    async fn push(&mut self, tag: &str, seed: &str, b: Behaviour) -> (String, Value) {
        let digest = self.aws().push_image(BACKEND, tag, seed).await;
        self.standin.set(digest.as_str(), b);
        let answer = self.deliver_push(tag, digest.as_str()).await;
        (digest.to_string(), answer)
    }

    /// Delivers an ECR push event of `digest` to `tag` (a new event id each time).
    async fn deliver_push(&mut self, tag: &str, digest: &str) -> Value {
        self.seq += 1;
        let digest = pushdeploy::domain::image::Digest::parse(digest).unwrap();
        self.deploy.invoke(&ecr_push_event(&format!("evt-rb-{}", self.seq), BACKEND, tag, &digest)).await.unwrap()
    }

    /// ECS reports `deployment` complete; the verify binary's verdict.
    async fn completed(&mut self, deployment: &str) -> Value {
        self.seq += 1;
        let event = ecs_deployment_event(
            &format!("ecs-rb-{}", self.seq),
            BACKEND,
            deployment,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "",
        );
        self.verify.invoke(&event).await.unwrap()
    }

    /// A push of a good build of `tag`, rolled out and verified; its ECS deployment id.
    async fn deployed(&mut self, tag: &str, seed: &str) -> (String, String) {
        let (digest, started) = self.push(tag, seed, Behaviour::Good).await;
        assert_eq!(started["outcome"], "started", "{started}");
        let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
        let verdict = self.completed(&dep).await;
        assert_eq!(verdict["outcome"], "verified", "{verdict}");
        (digest, dep)
    }

    /// The digest the backend container of the service's revision is pinned to.
    async fn runs(&self) -> String {
        let td = self.aws().service_task_definition(CLUSTER, BACKEND).await;
        let images = self.aws().images_of(&td).await;
        let image = &images.iter().find(|(name, _)| name == "backend").expect("the backend container").1;
        image.split_once('@').map(|(_, d)| d.to_string()).unwrap_or_else(|| panic!("{image} is not pinned"))
    }

    /// ECS's PRIMARY deployment of the backend service now.
    async fn primary(&self) -> String {
        let out = self.aws().ecs.describe_services().cluster(CLUSTER).services(BACKEND).send().await.unwrap();
        let service = &out.services()[0];
        let primary = service.deployments().iter().find(|d| d.status() == Some("PRIMARY")).expect("a primary");
        primary.id().unwrap().to_string()
    }

    async fn manual(&self, action: Value) -> Value {
        self.deploy.invoke(&action).await.expect("answered")
    }
}

/// Runs `pushdeploy ARGS` as the operator against the deploy binary behind `lambda`.
async fn pushdeploy(aws: &Aws, lambda: &LambdaService, args: &[&str]) -> (i32, String) {
    let mut env = aws.function_env(testkit::iam::Role::Deploy);
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut command = std::process::Command::new(testkit::runtime::cli_binary());
    command
        .args(args)
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint)
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run pushdeploy");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn redeploy_of_a_backend_on_a_version_tag_keeps_the_digest_it_runs() {
    let mut e = Estate::new().await;
    // `latest` names one build, the backend runs another: the v1.4.2 pushed after it.
    let (latest, _) = e.deployed("latest", "backend-latest-rd").await;
    let (v142, _) = e.deployed("v1.4.2", "backend-v142-rd").await;
    assert_ne!(latest, v142);
    assert_eq!(e.runs().await, v142);
    let before = e.primary().await;

    let answer = e.manual(json!({"action": "redeploy", "service": "backend"})).await;

    assert_eq!(answer["outcome"], "started", "{answer}");
    let d = &answer["deployments"][0];
    assert_eq!(d["action"], "force-new-deployment", "{answer}");
    assert_eq!(e.runs().await, v142, "the digest it ran, not what `latest` names");
    let dep = d["ecs_deployment_id"].as_str().unwrap();
    assert_ne!(dep, before, "a new ECS deployment");
    assert_eq!(e.primary().await, dep, "ECS rolls it out");
    let rec = record_of(e.aws(), BACKEND, dep).await;
    assert_eq!((rec["digest"].as_str(), rec["tag"].as_str()), (Some(v142.as_str()), Some("v1.4.2")), "{rec}");
    assert_eq!(rec["trigger"]["action"], "redeploy");
    assert!(e.emu.guard.denied().is_empty(), "{:?}", e.emu.guard.denied());
    e.verify.stop().await;
}

#[tokio::test]
async fn a_build_verify_rolled_back_is_refused_until_forced_and_a_new_build_deploys() {
    let mut e = Estate::new().await;
    let lambda =
        LambdaService::start([("pushdeploy-deploy".to_string(), e.deploy.clone())].into_iter().collect()).await;
    let (good, _) = e.deployed("latest", "backend-good-rb").await;

    // A broken build pushed to `latest`: verify smoke-tests it on ECS's completion and rolls it back.
    let (broken, started) = e.push("latest", "backend-broken-rb", Behaviour::Broken).await;
    assert_eq!(started["outcome"], "started", "{started}");
    let bad_dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    assert_eq!(e.completed(&bad_dep).await["outcome"], "rolled_back");
    assert_eq!(e.runs().await, good);
    let rolled = record_of(e.aws(), BACKEND, &bad_dep).await;
    assert_eq!((rolled["status"].as_str(), rolled["digest"].as_str()), (Some("rolled_back"), Some(broken.as_str())));
    let rollback_reason = rolled["reason"].as_str().unwrap().to_string();
    assert!(rollback_reason.contains("status 500"), "{rollback_reason}");
    let bad_id = bad_dep.replace('/', "-");
    // The revision it returned to (or a copy of it pinned to what it ran).
    let returned_to = e.aws().service_task_definition(CLUSTER, BACKEND).await;

    // redeploy rolls the good build the service runs again, never what `latest` names.
    let answer = e.manual(json!({"action": "redeploy", "service": "backend"})).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    assert_eq!(e.runs().await, good, "redeploy never rolls the broken build out");
    assert_eq!(e.primary().await, answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap());
    let after_redeploy = e.aws().service_task_definition(CLUSTER, BACKEND).await;
    assert_eq!(after_redeploy, returned_to, "the same revision, new tasks");

    // `pushdeploy deploy backend latest`: refused, quoting the rollback; nothing changes.
    let before = Snapshot::take(e.aws()).await;
    let verdicts = e.sink.notifications().len();
    let (code, out) = pushdeploy(e.aws(), &lambda, &["deploy", "backend", "latest"]).await;
    assert_eq!(code, 1, "refused: {out}");
    assert!(out.contains("backend (todo-cluster/todo-backend): rejected"), "{out}");
    assert!(out.contains(&format!("{broken} (deployed as latest) was rolled back by pushdeploy")), "{out}");
    assert!(out.contains(&bad_id) && out.contains(&rollback_reason[..40]), "the rollback and its reason: {out}");
    assert!(out.contains("pushdeploy deploy backend latest --force"), "{out}");
    assert_eq!(Snapshot::take(e.aws()).await, before, "nothing changed in ECS or S3");
    // The same through the function's own event, and `plan` says deploy would refuse it.
    let answer = e.manual(json!({"action": "deploy", "service": "backend", "tag": "latest"})).await;
    assert_eq!(answer["deployments"][0]["outcome"], "rejected", "{answer}");
    let (code, out) = pushdeploy(e.aws(), &lambda, &["plan", "backend", "latest"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("planned — deploy would refuse it: ") && out.contains(&bad_id), "{out}");
    let (_, out) = pushdeploy(e.aws(), &lambda, &["plan", "backend", "latest", "--force"]).await;
    assert!(out.contains("planned — deploy would register") && out.contains("forced past the rollback"), "{out}");
    assert_eq!(Snapshot::take(e.aws()).await, before, "plan changes nothing");
    assert_eq!(e.sink.notifications().len(), verdicts, "an operator's refusal is answered, not published");

    // The broken build pushed again (a CI re-run): refused, and a person is told how to go past it.
    let answer = e.deliver_push("latest", &broken).await;
    let d = &answer["deployments"][0];
    assert_eq!(d["outcome"], "rejected", "{answer}");
    assert!(d["reason"].as_str().unwrap().contains(&bad_id), "{answer}");
    assert_eq!(Snapshot::take(e.aws()).await, before, "the push changed nothing");
    let told = e.sink.notifications()[verdicts..].to_vec();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0]["Subject"].as_str().unwrap().starts_with("pushdeploy ACTION NEEDED: backend"), "{}", told[0]);
    let message = told[0]["Message"].as_str().unwrap();
    assert!(message.contains("was rolled back by pushdeploy") && message.contains("--force"), "{message}");

    // With force, the operator's deploy goes ahead, and says what it went past.
    let (code, out) = pushdeploy(e.aws(), &lambda, &["deploy", "backend", "latest", "--force"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("backend (todo-cluster/todo-backend): started") && out.contains("forced past the rollback"),
        "{out}"
    );
    assert_eq!(e.runs().await, broken, "forced: the rolled-back build runs");

    // A new build pushed to the same tag deploys as usual.
    let (fixed, answer) = e.push("latest", "backend-fixed-rb", Behaviour::Good).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    assert_eq!(e.runs().await, fixed);
    assert!(e.emu.guard.denied().is_empty(), "{:?}", e.emu.guard.denied());
    drop(lambda);
    e.verify.stop().await;
}
