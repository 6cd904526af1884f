//! Services with short ARNs (`arn:aws:ecs:<region>:<account>:service/<name>`): every service
//! created before ECS's long ARN format and never migrated. moto gives every service the short
//! form while the account setting `serviceLongArnFormat` is `disabled` (AWS no longer lets an
//! account disable it, but the services created meanwhile keep their short ARNs), so each test
//! disables it before the estate is created. The guard authorizes each call on a service against
//! the ARN ECS gave it, as IAM does; ECS's service deployment and revision ARNs stay in the long
//! form (they always name the cluster), as ECS names them.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::SettingName;
use pushdeploy::flows::deploy::Deployer;
use pushdeploy::flows::verify::Verifier;
use serde_json::{json, Map, Value};
use testkit::estate::{
    blue_green_config, ecr_push_event, ecs_deployment_event, hook_invocation, local_config, Aws, HookCall, TodoApp,
    ACCOUNT, CLUSTER, REGION,
};
use testkit::guard::Emulator;
use testkit::iam::{Policies, Role};
use testkit::standin::{Behaviour, TodoStandIn};

use crate::function::start_function;
use crate::support::{assert_returned_to, deployer, record_of, verifier, Snapshot};

const BACKEND: &str = "todo-backend";
const SHORT_STATEMENT: &str = "TheClustersServicesWithShortArns";

fn short_arn(service: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{service}")
}

/// moto and the todo estate, its services created with short ARNs.
async fn short_arn_estate() -> (Emulator, TodoApp) {
    let emu = Emulator::start().await;
    let aws = Aws::new(&emu.endpoint).await;
    aws.ecs
        .put_account_setting()
        .name(SettingName::ServiceLongArnFormat)
        .value("disabled")
        .send()
        .await
        .expect("put account setting");
    let app = TodoApp::create(aws).await;
    let described = app.aws.ecs.describe_services().cluster(CLUSTER).services(BACKEND).send().await.unwrap();
    assert_eq!(described.services()[0].service_arn(), Some(short_arn(BACKEND).as_str()), "the estate is short-ARN");
    (emu, app)
}

/// ECS's deployment state change for a short-ARN service: its `resources` name no cluster.
fn short_event(id: &str, service: &str, deployment: &str, name: &str) -> Value {
    let mut event = ecs_deployment_event(id, service, deployment, name, "");
    event["resources"] = json!([short_arn(service)]);
    event
}

/// The calls on the backend service the guard saw, each with its resource and what allowed it.
fn service_calls(emu: &Emulator, role: Role) -> Vec<(String, String, Vec<String>)> {
    emu.guard
        .calls()
        .into_iter()
        .filter(|c| c.role == role)
        .flat_map(|c| {
            let op = c.operation.clone();
            c.checks.into_iter().map(move |(check, verdict)| (op.clone(), check.resource, verdict.allowed_by))
        })
        .filter(|(_, resource, _)| resource.contains(":service/") && resource.ends_with(BACKEND))
        .collect()
}

#[tokio::test]
async fn a_short_arn_service_is_deployed_verified_and_rolled_back_by_the_binaries_under_the_templates_roles() {
    let (emu, app) = short_arn_estate().await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let config = local_config(&standin.url());
    let deploy = start_function("deploy", &app.aws, &config, &[("PUSHDEPLOY_CLUSTERS", CLUSTER)]).await;
    let verify = start_function("verify", &app.aws, &config, &[("PUSHDEPLOY_CLUSTERS", CLUSTER)]).await;
    let original = app.aws.service_task_definition(CLUSTER, BACKEND).await;

    // A good push: deployed, and ECS's event (resources: the short ARN) verified.
    let good = app.aws.push_image(BACKEND, "latest", "backend-short-good").await;
    let started = deploy.invoke(&ecr_push_event("evt-short-1", BACKEND, "latest", &good)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let running = app.aws.service_task_definition(CLUSTER, BACKEND).await;
    assert_ne!(running, original);
    let images = app.aws.images_of(&running).await;
    assert!(images[0].1.ends_with(&format!("@{}", good.as_str())), "pinned to the pushed digest: {images:?}");
    let verified = verify.invoke(&short_event("ecs-short-1", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED")).await;
    let verified = verified.expect("answered");
    assert_eq!(verified["outcome"], "verified", "{verified}");
    assert_eq!(record_of(&app.aws, BACKEND, &dep).await["status"], "verified");

    // A broken push: verify's smoke test fails and it rolls the short-ARN service back.
    let broken = app.aws.push_image(BACKEND, "latest", "backend-short-broken").await;
    standin.set(broken.as_str(), Behaviour::Broken);
    let started = deploy.invoke(&ecr_push_event("evt-short-2", BACKEND, "latest", &broken)).await.unwrap();
    assert_eq!(started["outcome"], "started", "{started}");
    let dep2 = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let answer = verify.invoke(&short_event("ecs-short-2", BACKEND, &dep2, "SERVICE_DEPLOYMENT_COMPLETED")).await;
    let answer = answer.expect("answered");
    assert_eq!(answer["outcome"], "rolled_back", "{answer}");
    // Back on the verified revision (or the copy of it pinned for the rollback), on the good digest.
    assert_returned_to(&app.aws, BACKEND, &running, ("backend", Some(good.as_str()))).await;
    assert_eq!(record_of(&app.aws, BACKEND, &dep2).await["status"], "rolled_back");

    // The short prefix of the EventBridge rule also lets through other clusters' long ARNs, and a
    // short ARN of a service the config does not name: verify ignores both and changes nothing.
    let before = Snapshot::take(&app.aws).await;
    let mut other = ecs_deployment_event("ecs-other", BACKEND, &dep2, "SERVICE_DEPLOYMENT_COMPLETED", "");
    other["resources"] = json!([format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/other-cluster/{BACKEND}")]);
    let ignored = verify.invoke(&other).await.expect("answered");
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    let ignored = verify.invoke(&short_event("ecs-unknown", "payments", &dep2, "SERVICE_DEPLOYMENT_COMPLETED")).await;
    let ignored = ignored.expect("answered");
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    assert!(ignored["reason"].as_str().unwrap().contains("payments (a short service ARN"), "{ignored}");
    assert_eq!(Snapshot::take(&app.aws).await, before);

    // IAM saw the short ARN, and only the short-form statement allowed it.
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
    for role in [Role::Deploy, Role::Verify] {
        let calls = service_calls(&emu, role);
        let ops: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
        assert!(ops.contains(&"ecs:DescribeServices") && ops.contains(&"ecs:UpdateService"), "{role:?}: {ops:?}");
        for (op, resource, by) in &calls {
            assert_eq!(resource, &short_arn(BACKEND), "{role:?} {op}");
            assert_eq!(by, &[SHORT_STATEMENT], "{role:?} {op}");
        }
    }
    deploy.stop().await;
    verify.stop().await;
}

#[tokio::test]
async fn without_the_short_form_statement_a_short_arn_service_is_denied_and_left_as_it_was() {
    let (emu, app) = short_arn_estate().await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    emu.guard.set_policies(Policies::template().without(Role::Deploy, |st| st["Sid"] == SHORT_STATEMENT));
    let deployer = deployer(&app.aws, &local_config(&standin.url()));
    let original = app.aws.service_task_definition(CLUSTER, BACKEND).await;
    let digest = app.aws.push_image(BACKEND, "latest", "backend-short-denied").await;
    let answer = deployer.handle(ecr_push_event("evt-short-denied", BACKEND, "latest", &digest), "req").await;
    let text = match answer {
        Ok(summary) => serde_json::to_value(summary).unwrap().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(text.contains("AccessDenied") || text.contains("not authorized"), "{text}");
    let denied = emu.guard.denied();
    assert!(!denied.is_empty());
    let resource = &denied[0].checks.iter().find(|(_, v)| !v.allowed).unwrap().0.resource;
    assert_eq!(resource, &short_arn(BACKEND), "the long-form statement does not match the short ARN");
    assert_eq!(app.aws.service_task_definition(CLUSTER, BACKEND).await, original);
}

/// The backend as a blue/green service with pushdeploy's hook, its ARN short.
struct ShortBlueGreen {
    emu: Emulator,
    app: TodoApp,
    standin: TodoStandIn,
    deployer: Deployer,
    verifier: Verifier,
}

impl ShortBlueGreen {
    async fn new() -> Self {
        let (emu, app) = short_arn_estate().await;
        let standin = TodoStandIn::start(app.aws.clone()).await;
        let config = blue_green_config(&standin.url(), &standin.test_url(), 5, 2);
        let deployer = deployer(&app.aws, &config);
        let verifier = verifier(&app.aws, &config, None);
        Self { emu, app, standin, deployer, verifier }
    }

    /// ECS's invocation at `stage`, its `serviceArn` the short ARN.
    async fn hook(&self, stage: &str, n: u32, deployment: &str, revision: &str, details: &Map<String, Value>) -> Value {
        self.emu.guard.ecs.set_service_deployment(deployment, "IN_PROGRESS", Some(stage));
        let mut payload = hook_invocation(&HookCall {
            execution_id: &format!("exec-short-{n}"),
            stage,
            service: BACKEND,
            deployment,
            revision,
            production: None,
            hook_details: Some(Value::Object(details.clone())),
        });
        payload["executionDetails"]["serviceArn"] = json!(short_arn(BACKEND));
        let answer = self.verifier.invoke(payload, Instant::now() + Duration::from_secs(60)).await.expect("an answer");
        serde_json::to_value(answer).unwrap()
    }
}

#[tokio::test]
async fn a_short_arn_services_hook_is_checked_and_answered_not_refused_as_malformed() {
    let bg = ShortBlueGreen::new().await;
    let blue = bg.app.aws.service_task_definition(CLUSTER, BACKEND).await;
    bg.standin.hold_production(BACKEND, &blue);
    let digest = bg.app.aws.push_image(BACKEND, "latest", "backend-short-bg").await;
    bg.standin.set(digest.as_str(), Behaviour::Good);
    let answer = bg.deployer.handle(ecr_push_event("push-short-bg", BACKEND, "latest", &digest), "req").await.unwrap();
    let answer = serde_json::to_value(answer).unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let dep = answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();
    let (deployment, revision) = bg.app.aws.newest_service_deployment(CLUSTER, BACKEND).await;
    assert!(deployment.contains(&format!(":service-deployment/{CLUSTER}/{BACKEND}/")), "{deployment}");

    let mut details = Map::new();
    let mut statuses = Vec::new();
    for n in 1..=5 {
        let a = bg.hook("POST_TEST_TRAFFIC_SHIFT", n, &deployment, &revision, &details).await;
        statuses.push(a["hookStatus"].as_str().unwrap().to_string());
        if a["hookStatus"] != "IN_PROGRESS" {
            let why = a["hookDetails"]["pushdeploy"]["reason"].as_str().unwrap_or_default().to_string();
            assert!(why.contains("passed through the test listener in 2 round(s)"), "{a}");
            break;
        }
        details.extend(a["hookDetails"].as_object().unwrap().clone());
    }
    assert_eq!(statuses, ["IN_PROGRESS", "SUCCEEDED"]);
    let rec = record_of(&bg.app.aws, BACKEND, &dep).await;
    assert_eq!(rec["hook_checks"][0]["passed"], true, "{rec}");
    assert_eq!(rec["service_deployment_arn"], deployment.as_str());

    // ECS's completion, its resources the short ARN: verified on the hook's checks.
    bg.emu.guard.ecs.set_service_deployment(&deployment, "SUCCESSFUL", None);
    let done = bg
        .verifier
        .invoke(
            short_event("ecs-short-bg", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    let done = serde_json::to_value(done).unwrap();
    assert_eq!(done["outcome"], "verified", "{done}");
    assert!(bg.emu.guard.denied().is_empty(), "{:?}", bg.emu.guard.denied());
    let described = service_calls(&bg.emu, Role::Verify);
    assert!(
        described.iter().any(|(op, r, _)| op == "ecs:DescribeServiceDeployments" && *r == short_arn(BACKEND)),
        "ECS's service deployment is read under the service's short ARN: {described:?}"
    );
}

#[tokio::test]
async fn a_short_arn_event_finds_its_cluster_by_the_record_when_two_clusters_have_a_service_of_that_name() {
    let (emu, app) = short_arn_estate().await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    let config = local_config(&standin.url());
    // verify's config also names a todo-backend in another cluster: the short ARN fits both.
    let two_clusters = format!(
        "{config}\n[[service]]\nname = \"backend-other\"\nservice = \"{BACKEND}\"\ncluster = \"other-cluster\"\nrepository = \"todo-backend\"\ntags = [\"release\"]\n"
    );
    let deployer = deployer(&app.aws, &config);
    let verifier = verifier(&app.aws, &two_clusters, None);
    let digest = app.aws.push_image(BACKEND, "latest", "backend-short-two").await;
    let started = deployer.handle(ecr_push_event("evt-short-two", BACKEND, "latest", &digest), "req").await.unwrap();
    let started = serde_json::to_value(started).unwrap();
    let dep = started["deployments"][0]["ecs_deployment_id"].as_str().unwrap().to_string();

    let deadline = || Instant::now() + Duration::from_secs(60);
    let done = verifier.handle(short_event("ecs-short-two", BACKEND, &dep, "SERVICE_DEPLOYMENT_COMPLETED"), deadline());
    let done = serde_json::to_value(done.await.unwrap()).unwrap();
    assert_eq!(done["outcome"], "verified", "{done}");
    assert_eq!(record_of(&app.aws, BACKEND, &dep).await["status"], "verified");

    // A deployment neither cluster's records name is not pushdeploy's.
    let before = Snapshot::take(&app.aws).await;
    let stranger =
        short_event("ecs-short-stranger", BACKEND, "ecs-svc/9999999999999999999", "SERVICE_DEPLOYMENT_FAILED");
    let ignored = serde_json::to_value(verifier.handle(stranger, deadline()).await.unwrap()).unwrap();
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    assert!(ignored["reason"].as_str().unwrap().contains("in any of other-cluster, todo-cluster"), "{ignored}");
    assert_eq!(Snapshot::take(&app.aws).await, before);
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
}
