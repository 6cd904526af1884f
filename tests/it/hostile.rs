//! Hostile input: every malformed event is `rejected` with a reason and changes nothing in AWS;
//! every malformed config is refused before anything could be deployed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::estate::{ecs_deployment_event, local_config};

use crate::support::{verifier, World, TODO_CONFIG};

fn with(base: &Value, path: &[&str], value: Value) -> Value {
    let mut e = base.clone();
    let mut at = &mut e;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    match value {
        Value::Null if path.last() == Some(&"-") => {}
        v => at[*path.last().unwrap()] = v,
    }
    e
}

fn without(base: &Value, key: &str) -> Value {
    let mut e = base.clone();
    e.as_object_mut().unwrap().remove(key);
    e
}

#[tokio::test]
async fn forty_hostile_events_are_rejected_and_change_nothing() {
    let w = World::new(TODO_CONFIG).await;
    let (push, _) = w.push("evt-h", "todo-frontend", "latest", "frontend-v1").await;
    let ecs = ecs_deployment_event(
        "ecs-h",
        "todo-frontend",
        "ecs-svc/1234567890123456789",
        "SERVICE_DEPLOYMENT_COMPLETED",
        "",
    );
    let long = "a".repeat(300);
    let huge = "x".repeat(100_000);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("null", json!(null), "JSON object"),
        ("number", json!(42), "JSON object"),
        ("string", json!("deploy frontend"), "JSON object"),
        ("array", json!([push.clone()]), "JSON object"),
        ("empty object", json!({}), "neither"),
        ("action wrong type", json!({"action": 5, "service": "frontend"}), "malformed"),
        ("action wrong case", json!({"action": "DEPLOY", "service": "frontend", "tag": "v1"}), "unknown action"),
        ("unknown action", json!({"action": "destroy", "service": "frontend"}), "unknown action"),
        ("deploy without service", json!({"action": "deploy", "tag": "v1"}), "service"),
        ("deploy without tag", json!({"action": "deploy", "service": "backend"}), "tag"),
        ("empty service", json!({"action": "redeploy", "service": ""}), "service"),
        ("path traversal service", json!({"action": "redeploy", "service": "../../etc/passwd"}), "unknown service"),
        ("huge service", json!({"action": "redeploy", "service": huge}), "service"),
        ("unicode service", json!({"action": "redeploy", "service": "frontend\u{202e}"}), "unknown service"),
        ("control chars in service", json!({"action": "redeploy", "service": "front\nend"}), "printable"),
        ("300-char tag", json!({"action": "deploy", "service": "backend", "tag": long}), "not a valid tag"),
        ("traversal tag", json!({"action": "deploy", "service": "backend", "tag": "../latest"}), "not a valid tag"),
        ("unicode tag", json!({"action": "deploy", "service": "backend", "tag": "lätest"}), "not a valid tag"),
        ("extra field", json!({"action": "redeploy", "service": "frontend", "now": true}), "unknown field"),
        ("tag wrong type", json!({"action": "plan", "service": "frontend", "tag": 1}), "malformed"),
        ("missing detail", without(&push, "detail"), "no detail"),
        ("null detail", with(&push, &["detail"], json!(null)), "no detail"),
        ("array detail", with(&push, &["detail"], json!([1])), "malformed"),
        ("traversal repository", with(&push, &["detail", "repository-name"], json!("../../etc")), "repository name"),
        ("300-char repository", with(&push, &["detail", "repository-name"], json!(long)), "repository name"),
        (
            "digest not sha256",
            with(&push, &["detail", "image-digest"], json!("md5:0cc175b9c0f1b6a831c399e269772661")),
            "sha256",
        ),
        ("digest too short", with(&push, &["detail", "image-digest"], json!("sha256:abc")), "64 lowercase hex"),
        (
            "digest uppercase",
            with(&push, &["detail", "image-digest"], json!(format!("sha256:{}", "A".repeat(64)))),
            "64 lowercase hex",
        ),
        ("300-char image tag", with(&push, &["detail", "image-tag"], json!(long)), "not a valid tag"),
        ("slash in image tag", with(&push, &["detail", "image-tag"], json!("a/b")), "not a valid tag"),
        ("image tag wrong type", with(&push, &["detail", "image-tag"], json!(7)), "malformed"),
        ("short account", with(&push, &["account"], json!("12345")), "12-digit"),
        ("another account", with(&push, &["account"], json!("999999999999")), "account 999999999999"),
        ("another region", with(&push, &["region"], json!("us-east-1")), "region us-east-1"),
        ("bogus region", with(&push, &["region"], json!("../..")), "not an AWS region"),
        ("another source", with(&push, &["source"], json!("aws.ec2")), "unsupported event"),
        (
            "another detail-type",
            with(&push, &["detail-type"], json!("EC2 Instance State-change Notification")),
            "unsupported event",
        ),
        ("control chars in id", with(&push, &["id"], json!("evt\n-1")), "event id"),
        ("huge id", with(&push, &["id"], json!(huge)), "event id"),
        ("traversal deployment id", with(&ecs, &["detail", "deploymentId"], json!("ecs-svc/../../x")), "deploymentId"),
        (
            "huge deployment id",
            with(&ecs, &["detail", "deploymentId"], json!(format!("ecs-svc/{huge}"))),
            "deploymentId",
        ),
        ("no resources", with(&ecs, &["resources"], json!([])), "resources"),
        (
            "not a service ARN",
            with(&ecs, &["resources"], json!(["arn:aws:ecs:ap-southeast-2:123456789012:task/x"])),
            "service ARN",
        ),
        (
            "unknown ECS event",
            with(&ecs, &["detail", "eventName"], json!("SERVICE_TASK_PLACEMENT_FAILURE")),
            "unknown ECS deployment event",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let v = verifier(w.aws(), &local_config("http://127.0.0.1:9/"), None);
    let before = w.snapshot().await;
    for (name, event, why) in &cases {
        let is_ecs = event["source"] == "aws.ecs";
        let answer = if is_ecs {
            serde_json::to_value(v.handle(event.clone(), Instant::now() + Duration::from_secs(30)).await.unwrap())
                .unwrap()
        } else {
            serde_json::to_value(w.deployer.handle(event.clone(), "req").await.unwrap()).unwrap()
        };
        assert_eq!(answer["outcome"], "rejected", "{name}: {answer}");
        let reason = answer["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: reason {reason:?} should mention {why:?}");
        assert!(reason.len() < 600, "{name}: the reason quotes hostile input at length ({} bytes)", reason.len());
    }
    assert_eq!(w.snapshot().await, before, "no hostile event changed anything");
}

#[test]
fn hostile_configs_are_refused_with_file_and_key() {
    let min = "[[service]]\nname='a'\nservice='s'\ncluster='c'\nrepository='r'\ntags=['latest']\n";
    let long = "x".repeat(300);
    let nested = format!("x = {}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty file", String::new(), "service"),
        ("binary garbage", "\u{0}\u{1}\u{2}\u{fffd}".into(), "(syntax)"),
        ("duplicate keys", min.replace("tags=['latest']", "tags=['latest']\ntags=['v*']"), "(syntax)"),
        ("duplicate tables", "[defaults]\ncluster='c'\n[defaults]\ncluster='d'\n".to_string() + min, "(syntax)"),
        ("deeply nested arrays", nested, "(syntax)"),
        ("unknown top-level key", format!("verbose = true\n{min}"), "verbose"),
        ("tag pattern 300 chars", min.replace("['latest']", &format!("['{long}']")), "service[0].tags[0]"),
        ("traversal in name", min.replace("name='a'", "name='../../a'"), "service[0].name"),
        ("traversal in cluster", min.replace("cluster='c'", "cluster='c/../d'"), "service[0].cluster"),
        ("traversal in repository", min.replace("repository='r'", "repository='../r'"), "service[0].repository"),
        ("unicode service", min.replace("service='s'", "service='sérvice'"), "service[0].service"),
        ("huge name", min.replace("name='a'", &format!("name='{}'", "n".repeat(100_000))), "service[0].name"),
        ("tags not a list", min.replace("['latest']", "'latest'"), "service[0].tags"),
        ("tag not a string", min.replace("['latest']", "[1]"), "service[0].tags[0]"),
        ("unknown strategy", format!("{min}strategy='yolo'\n"), "service[0].strategy"),
        (
            "smoke url not http",
            format!("{min}[service.smoke]\nurl='file:///etc/passwd'\n[[service.smoke.check]]\npath='/'\n"),
            "service[0].smoke.url",
        ),
        (
            "check path is a URL",
            format!("{min}[service.smoke]\nurl='http://a/'\n[[service.smoke.check]]\npath='http://evil/'\n"),
            "service[0].smoke.check[0].path",
        ),
        (
            "attempts out of range",
            format!("{min}[service.smoke]\nurl='http://a/'\nattempts=100000\n[[service.smoke.check]]\npath='/'\n"),
            "service[0].smoke.attempts",
        ),
        (
            "negative timeout",
            format!("{min}[service.smoke]\nurl='http://a/'\ntimeout_ms=-1\n[[service.smoke.check]]\npath='/'\n"),
            "service[0].smoke.timeout_ms",
        ),
        (
            "header not a string",
            format!("{min}[service.smoke]\nurl='http://a/'\n[[service.smoke.check]]\npath='/'\nheaders={{X=1}}\n"),
            "service[0].smoke.check[0].headers.X",
        ),
    ];
    for (name, text, key) in cases {
        let e = pushdeploy::config::Config::parse(&text, "pushdeploy.toml")
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(e.file, "pushdeploy.toml", "{name}");
        assert!(e.key.contains(key), "{name}: key {:?} should name {key:?}", e.key);
        assert!(e.to_string().len() < 800, "{name}: the error quotes the input at length");
    }
}

#[test]
fn pushdeploy_validate_applies_the_functions_checks_offline() {
    let dir = std::env::temp_dir().join(format!("pushdeploy-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |config: &str, args: &[&str]| {
        let path = dir.join("pushdeploy.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(testkit::runtime::cli_binary())
            .arg("validate")
            .arg(&path)
            .arg("--offline")
            .args(args)
            .output()
            .expect("run pushdeploy validate");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = run(TODO_CONFIG, &["--cluster", "todo-cluster", "--verify-timeout", "300"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("valid, 2 service(s)") && out.contains("backend"), "{out}");
    let (code, out) = run(&TODO_CONFIG.replacen("tags = [\"latest\"]", "tags = []", 1), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("service[0].tags"), "{out}");
    let (code, out) = run(TODO_CONFIG, &["--cluster", "prod"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("service[0].cluster") && out.contains("not a cluster this stack manages"), "{out}");
    // The todo app's smoke tests need 100 s at worst: a 60 s verify cannot keep them.
    let (code, out) = run(TODO_CONFIG, &["--verify-timeout", "60"]);
    assert_eq!(code, Some(1));
    assert!(out.contains(".smoke: worst case"), "{out}");
    // A blue/green backend runs one round per hook invocation: that fits in 60 s.
    let bg = testkit::estate::blue_green_config("http://127.0.0.1:1/", "http://127.0.0.1:2/", 5, 2);
    let (code, out) = run(&bg, &["--verify-timeout", "60"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("(lifecycle hook at POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT: 18 s at worst per invocation, within the hook's 10 min; FAILED after 300 s stuck)"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
