//! The deploy path against moto: what a user would check after a push.

use serde_json::{json, Value};
use testkit::estate::{registry, BUCKET, CLUSTER};

use crate::support::{World, TODO_CONFIG};

const FRONTEND_DEFS: &str = "imagedefinitions/todo-cluster/todo-frontend/imagedefinitions.json";
const FRONTEND_DETAIL: &str = "imagedefinitions/todo-cluster/todo-frontend/imageDetail.json";

#[tokio::test]
async fn push_rolls_the_service_onto_the_pinned_digest_and_keeps_every_field() {
    let w = World::new(TODO_CONFIG).await;
    let aws = w.aws();
    let before = aws.service_task_definition(CLUSTER, "todo-frontend").await;
    let (event, digest) = w.push("evt-1", "todo-frontend", "latest", "frontend-v1").await;

    let answer = w.handle(event).await;

    assert_eq!(answer["outcome"], "started", "{answer}");
    let d = &answer["deployments"][0];
    let pinned = format!("{}/todo-frontend@{}", registry(), digest);
    assert_eq!(d["image"], pinned.as_str());
    let after = aws.service_task_definition(CLUSTER, "todo-frontend").await;
    assert_ne!(after, before);
    assert!(after.ends_with("todo-frontend:2"), "{after}");
    assert_eq!(d["task_definition"], after.as_str());
    assert_eq!(
        aws.images_of(&after).await,
        vec![
            ("frontend".to_string(), pinned.clone()),
            ("log_router".to_string(), "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable".to_string()),
        ]
    );

    // Everything but the image is a faithful copy.
    let old = aws
        .ecs
        .describe_task_definition()
        .task_definition(&before)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let new = aws
        .ecs
        .describe_task_definition()
        .task_definition(&after)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let (o, n) = (old.task_definition().unwrap(), new.task_definition().unwrap());
    assert_eq!(n.task_role_arn(), o.task_role_arn());
    assert!(n.task_role_arn().is_some());
    assert_eq!(n.execution_role_arn(), o.execution_role_arn());
    assert_eq!(n.runtime_platform(), o.runtime_platform());
    assert!(n.runtime_platform().is_some());
    assert_eq!(n.ephemeral_storage(), o.ephemeral_storage());
    assert_eq!(n.volumes(), o.volumes());
    assert_eq!(n.placement_constraints(), o.placement_constraints());
    assert!(!n.placement_constraints().is_empty());
    assert_eq!(n.proxy_configuration(), o.proxy_configuration());
    assert!(n.proxy_configuration().is_some());
    assert_eq!((n.cpu(), n.memory(), n.network_mode()), (o.cpu(), o.memory(), o.network_mode()));
    assert_eq!(n.requires_compatibilities(), o.requires_compatibilities());
    assert_eq!(new.tags()[..old.tags().len()], *old.tags(), "the task definition's own tags are kept");
    assert_eq!(new.tags()[0].key(), Some("app"));
    let pushed_at = new.tags().iter().find(|t| t.key() == Some(pushdeploy::rules::plan::PUSHED_AT_TAG)).unwrap();
    assert!(
        pushed_at.value().unwrap().parse::<i64>().unwrap() > 1_700_000_000,
        "the push time is recorded for ordering"
    );
    let (oc, nc) = (o.container_definitions(), n.container_definitions());
    assert_eq!(nc[0].secrets(), oc[0].secrets());
    assert_eq!(nc[0].secrets()[0].name(), "DB_PASSWORD");
    assert_eq!(nc[0].environment(), oc[0].environment());
    assert_eq!(nc[0].log_configuration(), oc[0].log_configuration());
    assert_eq!(nc[1].firelens_configuration(), oc[1].firelens_configuration());
    assert!(nc[1].firelens_configuration().is_some());

    // Artifacts, byte for byte.
    assert_eq!(
        String::from_utf8(aws.object(BUCKET, FRONTEND_DEFS).await).unwrap(),
        format!(r#"[{{"name":"frontend","imageUri":"{pinned}"}}]"#)
    );
    assert_eq!(
        String::from_utf8(aws.object(BUCKET, FRONTEND_DETAIL).await).unwrap(),
        format!(r#"{{"ImageURI":"{pinned}"}}"#)
    );

    // The record, found from the ECS deployment id in one GET.
    let ecs_id = d["ecs_deployment_id"].as_str().unwrap();
    let key = pushdeploy::domain::record::record_key(CLUSTER, "todo-frontend", ecs_id).unwrap();
    let record: Value = serde_json::from_slice(&aws.object(BUCKET, &key).await).unwrap();
    assert_eq!(record["status"], "started");
    assert_eq!(record["digest"], digest.as_str());
    assert_eq!(record["tag"], "latest");
    assert_eq!(record["image_uri"], pinned.as_str());
    assert_eq!(record["previous_task_definition"], before.as_str());
    assert_eq!(record["task_definition"], after.as_str());
    assert_eq!(record["ecs_deployment_id"], ecs_id);
    assert_eq!(record["trigger"], json!({"kind": "push", "event_id": "evt-1"}));
    assert_eq!(record["containers"], json!(["frontend"]));
    let events: Vec<&str> =
        record["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, vec!["pushed", "started"]);
    let service = aws.ecs.describe_services().cluster(CLUSTER).services("todo-frontend").send().await.unwrap();
    let primary = service.services()[0].deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap();
    assert_eq!(primary.id(), Some(ecs_id));
    let lease_key = pushdeploy::domain::lease::lease_key(CLUSTER, "todo-frontend");
    assert_eq!(
        aws.keys(BUCKET).await,
        vec![key, FRONTEND_DETAIL.to_string(), FRONTEND_DEFS.to_string(), lease_key.clone()]
    );
    let lease: pushdeploy::domain::lease::Lease =
        serde_json::from_slice(&aws.object(BUCKET, &lease_key).await).unwrap();
    assert!(lease.released && lease.pending.is_none(), "{lease:?}");
    assert_eq!(lease.task_definition.as_deref(), Some(after.as_str()), "the lease names where it left the service");
}

#[tokio::test]
async fn a_duplicate_delivery_is_unchanged_and_changes_nothing() {
    let w = World::new(TODO_CONFIG).await;
    let (event, _) = w.push("evt-dup", "todo-frontend", "latest", "frontend-v1").await;
    assert_eq!(w.handle(event.clone()).await["outcome"], "started");
    let before = w.snapshot().await;
    let again = w.handle(event).await;
    assert_eq!(again["outcome"], "unchanged", "{again}");
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.aws().revisions("todo-frontend").await.len(), 2);
}

#[tokio::test]
async fn an_older_push_of_the_same_tag_is_superseded() {
    let w = World::new(TODO_CONFIG).await;
    let (older, _) = w.push("evt-old", "todo-frontend", "latest", "frontend-v1").await;
    let (newer, newest) = w.push("evt-new", "todo-frontend", "latest", "frontend-v2").await;
    let before = w.snapshot().await;
    let answer = w.handle(older).await;
    assert_eq!(answer["outcome"], "superseded", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains(newest.short()), "{answer}");
    assert_eq!(w.snapshot().await, before);
    // The newer one still deploys, whatever the arrival order was.
    assert_eq!(w.handle(newer).await["outcome"], "started");
}

#[tokio::test]
async fn events_that_deploy_nothing_are_ignored_and_change_nothing() {
    let w = World::new(TODO_CONFIG).await;
    let (event, _) = w.push("evt-x", "todo-frontend", "latest", "frontend-v1").await;
    let (unwatched_tag, _) = w.push("evt-y", "todo-frontend", "feature-x", "frontend-f").await;
    w.aws().create_repository("todo-admin").await;
    let (unwatched_repo, _) = w.push("evt-z", "todo-admin", "latest", "admin-v1").await;
    let before = w.snapshot().await;
    let mut cases = vec![
        ("unwatched tag", unwatched_tag, "no service watches"),
        ("unwatched repository", unwatched_repo, "no service watches"),
    ];
    let mut delete = event.clone();
    delete["detail"]["action-type"] = json!("DELETE");
    cases.push(("delete", delete, "not a push"));
    let mut failed = event.clone();
    failed["detail"]["result"] = json!("FAILURE");
    cases.push(("failed push", failed, "FAILURE"));
    let mut untagged = event.clone();
    untagged["detail"].as_object_mut().unwrap().remove("image-tag");
    cases.push(("untagged", untagged, "untagged"));
    for (name, e, why) in cases {
        let answer = w.handle(e).await;
        assert_eq!(answer["outcome"], "ignored", "{name}: {answer}");
        assert!(answer["reason"].as_str().unwrap().contains(why), "{name}: {answer}");
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn only_images_deploy_signatures_charts_and_artifacts_are_ignored() {
    // A service watching every tag, as teams that sign images often do.
    let w = World::new(&TODO_CONFIG.replacen("tags = [\"latest\"]", "tags = [\"*\"]", 1)).await;
    let (image, _) = w.push("evt-img", "todo-frontend", "latest", "frontend-v1").await;
    let sig_tag = format!("sha256-{}.sig", "7f".repeat(32));
    let (signature, _) = w.push("evt-sig", "todo-frontend", &sig_tag, "frontend-v1-signature").await;
    let (attestation, _) = w.push("evt-att", "todo-frontend", &sig_tag.replace(".sig", ".att"), "att").await;
    let (mut chart, _) = w.push("evt-chart", "todo-frontend", "chart-1.2.0", "chart").await;
    chart["detail"]["artifact-media-type"] = json!("application/vnd.cncf.helm.config.v1+json");
    // An event that does not say: ECR's own artifactMediaType decides (moto has none: a fixture
    // answers the field as ECR's DescribeImages model defines it).
    let (sbom_untold, _) = w.push("evt-sbom", "todo-frontend", "sbom-1", "sbom").await;
    let before = w.snapshot().await;
    w.emu.guard.set_fixture(
        "ecr:DescribeImages",
        std::sync::Arc::new(|req: &Value, mut moto: Value| {
            if req["imageIds"][0]["imageTag"] == "sbom-1" {
                moto["imageDetails"][0]["artifactMediaType"] = json!("application/spdx+json");
            }
            moto
        }),
    );
    for (name, e, why) in [
        ("signature", signature, "cosign signature"),
        ("attestation", attestation, "cosign attestation"),
        ("chart", chart, "application/vnd.cncf.helm.config.v1+json"),
        ("sbom told by ECR", sbom_untold, "application/spdx+json"),
    ] {
        let answer = w.handle(e).await;
        assert_eq!(answer["outcome"], "ignored", "{name}: {answer}");
        assert!(answer["reason"].as_str().unwrap().contains(why), "{name}: {answer}");
    }
    assert_eq!(w.snapshot().await, before, "nothing a deploy owns changed");

    // A multi-platform index is an image: it deploys by the index digest.
    let mut index = image;
    index["detail"]["manifest-media-type"] = json!("application/vnd.oci.image.index.v1+json");
    let answer = w.handle(index.clone()).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let td = w.aws().service_task_definition(CLUSTER, "todo-frontend").await;
    let digest = index["detail"]["image-digest"].as_str().unwrap();
    assert!(w.aws().images_of(&td).await[0].1.ends_with(digest), "runs the index digest");
}

#[tokio::test]
async fn with_a_family_base_terraform_owns_the_settings_and_pushdeploy_the_image() {
    let config = testkit::estate::family_base_config(TODO_CONFIG);
    let w = World::new(&config).await;
    let aws = w.aws();
    let terraform_v1 = aws.service_task_definition(CLUSTER, "todo-backend").await;
    let (first, _) = w.push("evt-f1", "todo-backend", "latest", "backend-v1").await;
    assert_eq!(w.handle(first).await["outcome"], "started");

    // Terraform changes an environment variable: a new revision of the family, image by tag.
    let terraform_v2 = aws.register_changed_revision(&terraform_v1, ("TODO_ENV", "staging")).await;
    let planned = w.handle(json!({"action": "plan", "service": "backend"})).await;
    let d = &planned["deployments"][0];
    assert_eq!(planned["outcome"], "planned", "{planned}");
    assert_eq!(d["base"], terraform_v2.as_str(), "plan names the revision it copies: {planned}");
    let diff: Vec<&str> = d["diff"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(diff.contains(&"backend.environment.TODO_ENV: \"prod\" → \"staging\""), "{diff:?}");

    let (second, digest) = w.push("evt-f2", "todo-backend", "latest", "backend-v2").await;
    let answer = w.handle(second.clone()).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let running = aws.service_task_definition(CLUSTER, "todo-backend").await;
    let described = aws.ecs.describe_task_definition().task_definition(&running).send().await.unwrap();
    let backend = &described.task_definition().unwrap().container_definitions()[0];
    assert_eq!(backend.image().unwrap(), format!("{}/todo-backend@{digest}", registry()), "pushdeploy owns the image");
    let env: Vec<_> = backend.environment().iter().map(|kv| (kv.name().unwrap(), kv.value().unwrap())).collect();
    assert_eq!(env, [("TODO_ENV", "staging")], "Terraform owns the rest");

    // The same push again: the service already runs the newest base with this digest.
    assert_eq!(w.handle(second).await["deployments"][0]["outcome"], "unchanged");
}

#[tokio::test]
async fn bad_input_is_rejected_with_a_reason_and_changes_nothing() {
    let w = World::new(TODO_CONFIG).await;
    let (event, _) = w.push("evt-b", "todo-frontend", "latest", "frontend-v1").await;
    let before = w.snapshot().await;
    let mut no_detail = event.clone();
    no_detail.as_object_mut().unwrap().remove("detail");
    let mut wrong_type = event.clone();
    wrong_type["detail"]["image-tag"] = json!(42);
    let mut other_region = event.clone();
    other_region["region"] = json!("us-east-1");
    let cases = vec![
        (json!("just a string"), "JSON object"),
        (json!({"action": "destroy", "service": "frontend"}), "unknown action"),
        (json!({"action": "deploy", "service": "payments", "tag": "v1"}), "unknown service"),
        (json!({"action": "deploy", "service": ["frontend"], "tag": "v1"}), "malformed"),
        (json!({"action": "deploy", "service": "backend", "tag": "v9.9.9"}), "does not exist in ECR"),
        (no_detail, "no detail"),
        (wrong_type, "malformed"),
        (other_region, "region"),
    ];
    for (e, why) in cases {
        let answer = w.handle(e.clone()).await;
        assert_eq!(answer["outcome"], "rejected", "{e}: {answer}");
        assert!(answer["reason"].as_str().unwrap().contains(why), "{e}: {answer}");
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn one_push_rolls_every_matched_service_with_only_its_own_containers() {
    let config = format!(
        "{TODO_CONFIG}\n[[service]]\nname = \"worker\"\nservice = \"todo-worker\"\nrepository = \"todo-backend\"\ntags = [\"latest\"]\ncontainers = [\"worker\"]\n"
    );
    let w = World::new(&config).await;
    let aws = w.aws();
    let reg = registry();
    let unpinned = format!("{reg}/todo-backend:latest");
    let td = aws
        .register_rich_task_definition("todo-worker", &[("worker", unpinned.clone()), ("metrics", unpinned.clone())])
        .await;
    aws.create_service(CLUSTER, "todo-worker", &td).await;
    w.emu.guard.set_policies(testkit::iam::Policies::template_for_families(&[
        "todo-frontend",
        "todo-backend",
        "todo-worker",
    ]));
    let (event, digest) = w.push("evt-both", "todo-backend", "latest", "backend-v1").await;

    let answer = w.handle(event).await;

    assert_eq!(answer["outcome"], "started", "{answer}");
    let outcomes = crate::support::outcomes(&answer);
    assert_eq!(outcomes, vec![("backend", "started"), ("worker", "started")]);
    let pinned = format!("{reg}/todo-backend@{digest}");
    let backend = aws.service_task_definition(CLUSTER, "todo-backend").await;
    assert_eq!(aws.images_of(&backend).await[0], ("backend".to_string(), pinned.clone()));
    let worker = aws.service_task_definition(CLUSTER, "todo-worker").await;
    let images = aws.images_of(&worker).await;
    assert_eq!(images[0], ("worker".to_string(), pinned.clone()));
    assert_eq!(images[1], ("metrics".to_string(), unpinned), "a container not named in `containers` keeps its image");
    let defs = aws.object(BUCKET, "imagedefinitions/todo-cluster/todo-worker/imagedefinitions.json").await;
    assert_eq!(String::from_utf8(defs).unwrap(), format!(r#"[{{"name":"worker","imageUri":"{pinned}"}}]"#));
    // The frontend was not touched.
    assert!(aws.service_task_definition(CLUSTER, "todo-frontend").await.ends_with(":1"));
}

#[tokio::test]
async fn plan_answers_the_diff_and_changes_nothing() {
    let w = World::new(TODO_CONFIG).await;
    let (_, digest) = w.push("evt-p", "todo-frontend", "latest", "frontend-v1").await;
    let before = w.snapshot().await;
    let answer = w.handle(json!({"action": "plan", "service": "frontend"})).await;
    assert_eq!(answer["outcome"], "planned", "{answer}");
    let d = &answer["deployments"][0];
    assert_eq!(d["action"], "register-task-definition");
    assert_eq!(
        d["changes"],
        json!([{"container": "frontend", "from": format!("{}/todo-frontend:latest", registry()), "to": format!("{}/todo-frontend@{}", registry(), digest)}])
    );
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn manual_deploy_and_redeploy() {
    let w = World::new(TODO_CONFIG).await;
    let aws = w.aws();
    let digest = aws.push_image("todo-backend", "v1.4.2", "backend-v142").await;
    let answer = w.handle(json!({"action": "deploy", "service": "backend", "tag": "v1.4.2"})).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let td = aws.service_task_definition(CLUSTER, "todo-backend").await;
    assert_eq!(aws.images_of(&td).await[0].1, format!("{}/todo-backend@{digest}", registry()));
    let record_key = format!(
        "deployments/todo-cluster/todo-backend/{}.json",
        answer["deployments"][0]["ecs_deployment_id"].as_str().unwrap().replace('/', "-")
    );
    let record: Value = serde_json::from_slice(&aws.object(BUCKET, &record_key).await).unwrap();
    assert_eq!(record["trigger"]["kind"], "manual");
    assert_eq!(record["trigger"]["action"], "deploy");
    assert_eq!(record["tag"], "v1.4.2");

    // The same tag again is unchanged; redeploy forces new tasks on the same revision.
    assert_eq!(
        w.handle(json!({"action": "deploy", "service": "backend", "tag": "v1.4.2"})).await["outcome"],
        "unchanged"
    );
    let frontend_before = aws.service_task_definition(CLUSTER, "todo-frontend").await;
    let first = w.handle(json!({"action": "redeploy", "service": "frontend"})).await;
    assert_eq!(first["outcome"], "started");
    let pinned_td = aws.service_task_definition(CLUSTER, "todo-frontend").await;
    assert_ne!(pinned_td, frontend_before, "the first redeploy pins the tag's digest");
    let again = w.handle(json!({"action": "redeploy", "service": "frontend"})).await;
    assert_eq!(again["outcome"], "started", "{again}");
    assert_eq!(again["deployments"][0]["action"], "force-new-deployment");
    assert_eq!(aws.service_task_definition(CLUSTER, "todo-frontend").await, pinned_td);
    assert_ne!(again["deployments"][0]["ecs_deployment_id"], first["deployments"][0]["ecs_deployment_id"]);
}

#[tokio::test]
async fn force_new_deployment_keeps_the_task_definition() {
    let config = TODO_CONFIG.replace("strategy = \"pin-digest\"", "strategy = \"force-new-deployment\"");
    let w = World::new(&config).await;
    let aws = w.aws();
    let before = aws.service_task_definition(CLUSTER, "todo-frontend").await;
    let (event, digest) = w.push("evt-f", "todo-frontend", "latest", "frontend-v1").await;
    let answer = w.handle(event.clone()).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    assert_eq!(answer["deployments"][0]["action"], "force-new-deployment");
    assert_eq!(aws.service_task_definition(CLUSTER, "todo-frontend").await, before);
    assert_eq!(aws.revisions("todo-frontend").await.len(), 1);
    let defs = String::from_utf8(aws.object(BUCKET, FRONTEND_DEFS).await).unwrap();
    assert!(defs.contains(digest.as_str()), "{defs}");
    let snap = w.snapshot().await;
    assert_eq!(w.handle(event).await["outcome"], "unchanged");
    assert_eq!(w.snapshot().await, snap);
}

#[tokio::test]
async fn a_push_for_many_services_reads_them_in_one_call_and_a_missing_one_fails_alone() {
    use testkit::estate::{ecr_push_event, Aws, TodoApp};
    use testkit::faults::FaultProxy;
    let moto = testkit::guard::Emulator::start().await;
    let app = TodoApp::create(Aws::new(&moto.endpoint).await).await;
    let mut config = format!("[defaults]\ncluster = \"{CLUSTER}\"\n");
    for i in 0..12 {
        let name = format!("web-{i}");
        // web-11 is configured but never created: ECS answers it MISSING.
        if i < 11 {
            let image = format!("{}/todo-frontend:latest", registry());
            let td = app.aws.register_rich_task_definition(&name, &[("web", image)]).await;
            app.aws.create_service(CLUSTER, &name, &td).await;
        }
        config.push_str(&format!(
            "[[service]]\nname = \"{name}\"\nservice = \"{name}\"\nrepository = \"todo-frontend\"\ntags = [\"latest\"]\n"
        ));
    }
    let families: Vec<String> = (0..12).map(|i| format!("web-{i}")).collect();
    let families: Vec<&str> = families.iter().map(String::as_str).collect();
    moto.guard.set_policies(testkit::iam::Policies::template_for_families(&families));
    let proxy = FaultProxy::start(&moto.endpoint, std::time::Duration::from_secs(1)).await;
    let via = Aws::new(&proxy.endpoint).await;
    let deployer = crate::support::deployer(&via, &config);
    let digest = app.aws.push_image("todo-frontend", "latest", "fan-out").await;
    proxy.take_calls();

    let answer = serde_json::to_value(
        deployer.handle(ecr_push_event("evt-fan", "todo-frontend", "latest", &digest), "req").await.unwrap(),
    )
    .unwrap();

    let outcomes = crate::support::outcomes(&answer);
    assert_eq!(outcomes.iter().filter(|(_, o)| *o == "started").count(), 11, "{answer}");
    assert_eq!(outcomes.iter().find(|(s, _)| *s == "web-11").unwrap().1, "rejected", "{answer}");
    let describes = proxy.take_calls().iter().filter(|c| *c == "ecs:DescribeServices").count();
    assert_eq!(describes, 2, "12 services of one cluster are read in DescribeServices calls of 10");
    for i in 0..11 {
        let td = app.aws.service_task_definition(CLUSTER, &format!("web-{i}")).await;
        assert!(app.aws.images_of(&td).await[0].1.ends_with(digest.as_str()), "web-{i} runs {td}");
    }
}
