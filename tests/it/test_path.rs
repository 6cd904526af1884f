//! A test path verify can reach: the book's blue/green snippets and the example config name the
//! same hook stages, and `validate` (through the CLI) and `plan` (through the deploy binary) say
//! when `test_url` is on another port than `url` while verify runs outside the VPC.

use serde_json::json;
use testkit::estate::{blue_green_config, Aws, TodoApp};
use testkit::guard::Emulator;
use testkit::runtime::cli_binary;
use testkit::standin::TodoStandIn;

use crate::function::start_function;
use crate::support::TODO_CONFIG;

/// The book's blue/green chapter.
const BLUE_GREEN: &str = include_str!("../../docs/src/blue-green.md");

/// The blue/green chapter, from its title.
fn blue_green_section() -> &'static str {
    BLUE_GREEN
        .find("# Blue/green, linear and canary")
        .map(|start| &BLUE_GREEN[start..])
        .expect("the blue/green chapter")
}

/// Every stage list after `key` in `text` (`key = [..]`, `key: [..]`), each sorted.
fn stage_lists(text: &str, key: &str) -> Vec<Vec<String>> {
    let mut lists = Vec::new();
    for line in text.lines() {
        let line = line.trim_start().trim_start_matches("# ");
        let Some(rest) = line.strip_prefix(key) else { continue };
        let rest = rest.trim_start_matches([' ', '=', ':']);
        let Some(inner) = rest.strip_prefix('[').and_then(|r| r.split(']').next()) else { continue };
        let mut stages: Vec<String> =
            inner.split(',').map(|s| s.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty()).collect();
        stages.sort();
        lists.push(stages);
    }
    lists
}

#[test]
fn the_config_and_the_ecs_snippets_name_the_same_hook_stages() {
    let section = blue_green_section();
    let terraform = stage_lists(section, "lifecycle_stages");
    let cloudformation = stage_lists(section, "LifecycleStages");
    let config = stage_lists(section, "stages");
    let example = stage_lists(TODO_CONFIG, "stages");
    assert_eq!((terraform.len(), cloudformation.len(), config.len(), example.len()), (1, 1, 1, 1));
    let registered = &terraform[0];
    assert!(registered.contains(&"POST_TEST_TRAFFIC_SHIFT".to_string()), "{registered:?}");
    assert_eq!(&cloudformation[0], registered, "CloudFormation and Terraform register the same stages");
    assert_eq!(&config[0], registered, "[service.hook] stages checks only where ECS calls the hook");
    assert_eq!(&example[0], registered, "examples/pushdeploy.toml agrees");
    // The section leads with a reachable test path, before the stage table.
    let lead = section.find("test path verify can reach").expect("the test path paragraph");
    assert!(lead < section.find("| stage ECS calls at").expect("the stage table"));
}

/// The example config with its blue/green lines uncommented, `edit`ed.
fn blue_green_example(edit: impl Fn(String) -> String) -> String {
    let on: Vec<String> = TODO_CONFIG
        .lines()
        .map(|l| {
            let bare = l.strip_prefix("# ").unwrap_or(l);
            let uncomment = bare == "[service.hook]"
                || ["test_url", "test_headers", "stages", "timeout_minutes"]
                    .iter()
                    .any(|k| bare.starts_with(&format!("{k} =")));
            if uncomment {
                bare.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    edit(on.join("\n") + "\n")
}

fn validate(config: &str, extra: &[&str]) -> (Option<i32>, String) {
    let file = std::env::temp_dir().join(format!("pushdeploy-test-path-{}-{}.toml", std::process::id(), extra.len()));
    std::fs::write(&file, config).unwrap();
    let out = std::process::Command::new(cli_binary())
        .arg("validate")
        .arg(&file)
        .arg("--offline")
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn validate_warns_of_a_test_listener_on_its_own_port_unless_verify_runs_in_the_vpc() {
    // The example's own path: a header-matched rule on the production listener.
    let header_rule = blue_green_example(|c| c);
    assert!(header_rule.contains("\n[service.hook]\n") && header_rule.contains("\ntest_url = "), "{header_rule}");
    let (code, said) = validate(&header_rule, &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("lifecycle hook at POST_TEST_TRAFFIC_SHIFT"), "{said}");
    assert!(!said.contains("warning"), "{said}");

    let own_port = blue_green_example(|c| {
        c.replace("todo.example.com/api/\"\ntest_headers", "todo.example.com:8443/api/\"\ntest_headers")
    });
    assert!(own_port.contains(":8443/api/"), "{own_port}");
    let (code, said) = validate(&own_port, &[]);
    assert_eq!(code, Some(0), "valid, and warned: {said}");
    assert!(
        said.contains("warning: smoke.test_url is on port 8443 and url on 443, and verify runs outside the VPC"),
        "{said}"
    );
    assert!(
        said.contains("header-matched test listener rule") && said.contains("VerifySubnetIds"),
        "the fixes: {said}"
    );
    let (code, said) = validate(&own_port, &["--verify-in-vpc"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(!said.contains("warning"), "{said}");
}

#[tokio::test]
async fn plan_warns_of_a_test_listener_verify_cannot_reach_until_the_stack_puts_verify_in_the_vpc() {
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    // The stand-in's test listener is on its own port.
    let config = blue_green_config(&standin.url(), &standin.test_url(), 5, 2);
    emu.guard.set_fixture(
        "ecs:DescribeServices",
        testkit::estate::blue_green_service(
            "todo-backend",
            &["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"],
        ),
    );
    app.aws.push_image("todo-backend", "latest", "backend-test-path").await;
    let plan = json!({"action": "plan", "service": "backend"});
    for (in_vpc, warned) in [("false", true), ("true", false)] {
        let deploy = start_function("deploy", &app.aws, &config, &[("PUSHDEPLOY_VERIFY_IN_VPC", in_vpc)]).await;
        let answer = deploy.invoke(&plan).await.unwrap();
        assert_eq!(answer["outcome"], "planned", "{answer}");
        let note = answer["deployments"][0]["ecs_rollout"].as_str().unwrap();
        assert!(note.starts_with("ECS rolls it out BLUE_GREEN"), "{note}");
        assert_eq!(note.contains("; warning: smoke.test_url is on port"), warned, "VerifyInVpc {in_vpc}: {note}");
        deploy.stop().await;
    }
    assert!(emu.guard.denied().is_empty(), "{:?}", emu.guard.denied());
}
