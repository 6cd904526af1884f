//! The proposal on estates written by hand: what the file says, and that it is valid.

use pushdeploy::config::{Config, Mode};

use super::estate::{Condition, Container, Estate, Listener, LoadBalancer, Rule, Service, TargetGroup};
use super::tags::{looks_versioned, pattern_of};
use super::write_up;

const REG: &str = "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com";
const DNS: &str = "todo-alb-1.ap-southeast-2.elb.amazonaws.com";
const LB: &str = "arn:aws:elasticloadbalancing:ap-southeast-2:123456789012:loadbalancer/app/todo-alb/1";
const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

fn tg(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:ap-southeast-2:123456789012:targetgroup/{name}/1")
}

fn service(name: &str, images: &[(&str, String)], target_group: Option<&str>) -> Service {
    Service {
        name: name.into(),
        task_definition: format!("arn:aws:ecs:ap-southeast-2:123456789012:task-definition/{name}:3"),
        controller: "ECS".into(),
        strategy: "ROLLING".into(),
        circuit_breaker: true,
        target_groups: target_group.map(tg).into_iter().collect(),
        containers: images.iter().map(|(c, i)| Container { name: c.to_string(), image: i.clone() }).collect(),
        task_role: Some(format!("arn:aws:iam::123456789012:role/{name}-task")),
        execution_role: Some("arn:aws:iam::123456789012:role/ecs-execution".into()),
        ..Service::default()
    }
}

fn rule(priority: &str, conditions: &[(&str, &str)], to: &str) -> Rule {
    Rule {
        priority: priority.into(),
        conditions: conditions
            .iter()
            .map(|(f, v)| Condition { field: f.to_string(), values: vec![v.to_string()] })
            .collect(),
        forwards_to: vec![tg(to)],
    }
}

/// The todo app behind one ALB: `protocol` on `port` with `rules`.
fn todo(protocol: &str, port: u16, rules: Vec<Rule>) -> Estate {
    Estate {
        account: "123456789012".into(),
        region: "ap-southeast-2".into(),
        cluster: "todo-cluster".into(),
        services: vec![
            service("todo-frontend", &[("frontend", format!("{REG}/todo-frontend:latest"))], Some("frontend")),
            service("todo-backend", &[("backend", format!("{REG}/todo-backend:latest"))], Some("backend")),
        ],
        target_groups: vec![
            TargetGroup { arn: tg("frontend"), health_check_path: Some("/".into()) },
            TargetGroup { arn: tg("backend"), health_check_path: Some("/api/health".into()) },
        ],
        load_balancers: vec![LoadBalancer {
            arn: LB.into(),
            name: "todo-alb".into(),
            dns_name: DNS.into(),
            internal: false,
        }],
        listeners: vec![Listener { load_balancer: LB.into(), protocol: protocol.into(), port, rules }],
    }
}

/// The written text, parsed as `validate` does; and the checklist.
fn written(estate: &Estate) -> (String, Config, Vec<String>) {
    let (text, checklist) = write_up(estate).unwrap_or_else(|e| panic!("{e}"));
    let config = Config::parse(&text, "init.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, config, checklist)
}

#[test]
fn an_https_listener_with_host_rules_gives_the_host_and_connects_to_the_alb() {
    let https = todo(
        "HTTPS",
        443,
        vec![
            rule("10", &[("host-header", "todo.example.com"), ("path-pattern", "/api/*")], "backend"),
            rule("20", &[("host-header", "Todo.Example.com")], "frontend"),
            Rule { priority: "default".into(), ..Rule::default() },
        ],
    );
    let (text, config, checklist) = written(&https);
    let [front, back] = &config.services[..] else { panic!("two services: {text}") };
    assert_eq!((front.name.as_str(), front.repository.as_str()), ("todo-frontend", "todo-frontend"));
    assert_eq!((back.service.as_str(), back.repository.as_str()), ("todo-backend", "todo-backend"));
    assert_eq!(front.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["latest"]);
    let smoke = back.smoke.as_ref().unwrap();
    assert_eq!(smoke.url, "https://todo.example.com/api/");
    assert_eq!(smoke.connect_to.as_ref().unwrap().host, DNS);
    assert_eq!(smoke.target_group_arn.as_deref(), Some(tg("backend").as_str()));
    assert_eq!(smoke.checks[0].path, "health", "the health check path, under the URL's path");
    assert_eq!(front.smoke.as_ref().unwrap().url, "https://todo.example.com/", "host names are lowercased");
    assert!(config.services.iter().all(|s| s.mode == Mode::Observe), "{text}");
    assert!(text.contains("[defaults]\ncluster = \"todo-cluster\"\nstrategy = \"pin-digest\"\nmode = \"observe\""));
    assert!(!text.contains("# check: the HTTPS listener"), "hosts are known: {text}");
    assert!(checklist
        .iter()
        .any(|l| l.contains("RepositoryNames=todo-frontend,todo-backend RepositoryArnPrefix=todo-")));
    assert!(checklist.iter().any(|l| l.starts_with("iam:PassRole")
        && l.contains("TaskRoleArns=arn:aws:iam::123456789012:role/todo-frontend-task,arn:aws:iam::123456789012:role/todo-backend-task")));
    assert!(checklist.iter().any(|l| l.starts_with("ECR lifecycle rules of todo-frontend, todo-backend")));
}

#[test]
fn an_https_listener_without_a_host_rule_is_marked_check() {
    let https = todo(
        "HTTPS",
        443,
        vec![rule("10", &[("path-pattern", "/api/*")], "backend"), rule("default", &[], "frontend")],
    );
    let (text, config, checklist) = written(&https);
    let front = config.services[0].smoke.as_ref().unwrap();
    assert_eq!(front.url, format!("https://{DNS}/"));
    assert_eq!(front.connect_to.as_ref().unwrap().host, DNS);
    assert!(text.contains("# check: the HTTPS listener's rule names no host"), "{text}");
    assert!(checklist.iter().any(|l| l.starts_with("todo-backend smoke url") && l.contains("names no host")));
}

#[test]
fn a_plain_http_listener_gives_the_alb_s_name_and_no_connect_to() {
    let http =
        todo("HTTP", 8080, vec![rule("5", &[("path-pattern", "/api/*")], "backend"), rule("default", &[], "frontend")]);
    let (text, config, _) = written(&http);
    let back = config.services[1].smoke.as_ref().unwrap();
    assert_eq!(back.url, format!("http://{DNS}:8080/api/"));
    assert!(back.connect_to.is_none(), "{text}");
    assert_eq!(config.services[0].smoke.as_ref().unwrap().url, format!("http://{DNS}:8080/"));
}

#[test]
fn what_a_rule_cannot_say_is_marked_check() {
    let odd = todo(
        "HTTPS",
        443,
        vec![
            rule("1", &[("host-header", "*.example.com"), ("path-pattern", "/api*")], "backend"),
            rule("2", &[("host-header", "todo.example.com"), ("http-header", "X-Canary: 1")], "frontend"),
        ],
    );
    let (text, config, _) = written(&odd);
    assert!(text.contains("# check: the rule matches hosts \"*.example.com\""), "{text}");
    assert!(text.contains("# check: the rule's path pattern is \"/api*\""), "{text}");
    assert!(text.contains("# check: the rule also matches on http-header (X-Canary: 1)"), "{text}");
    assert_eq!(config.services[1].smoke.as_ref().unwrap().url, format!("https://{DNS}/api"));
}

#[test]
fn a_service_with_no_load_balancer_gets_no_smoke_test_and_says_so() {
    let mut estate = todo("HTTPS", 443, Vec::new());
    estate.services[0].target_groups.clear();
    let (text, config, checklist) = written(&estate);
    assert!(config.services[0].smoke.is_none());
    assert!(text.contains("# No smoke test: the service registers with no load balancer target group"), "{text}");
    // The backend's target group is behind no rule.
    assert!(config.services[1].smoke.is_none());
    assert!(text.contains("no HTTP or HTTPS listener rule forwards to its target group backend"), "{text}");
    assert!(checklist
        .iter()
        .any(|l| l == "todo-frontend: no smoke test (no load balancer): verify judges by ECS alone"));
}

#[test]
fn sidecars_from_docker_hub_and_other_registries_are_listed_as_not_deployable() {
    let mut estate = todo("HTTP", 80, vec![rule("default", &[], "frontend")]);
    estate.services[0].containers.extend([
        Container { name: "envoy".into(), image: "envoyproxy/envoy:v1.31".into() },
        Container { name: "agent".into(), image: "999999999999.dkr.ecr.ap-southeast-2.amazonaws.com/agent:1".into() },
        Container { name: "log".into(), image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/log:2".into() },
    ]);
    estate.services.push(service("nginx-only", &[("web", "nginx:1.27".into())], None));
    let (text, config, checklist) = written(&estate);
    assert_eq!(config.services.len(), 2, "nginx-only is left out: {text}");
    assert!(text.contains("#   container envoy: envoyproxy/envoy:v1.31 (Docker Hub"), "{text}");
    assert!(text.contains(
        "#   container agent: 999999999999.dkr.ecr.ap-southeast-2.amazonaws.com/agent:1 (ECR of account 999999999999"
    ));
    assert!(text.contains("(ECR in us-east-1: pushdeploy deploys pushes to ECR in ap-southeast-2 only)"), "{text}");
    assert!(text.contains("#   nginx-only: no container runs an image from this account's ECR"), "{text}");
    assert!(checklist.iter().any(|l| l.starts_with("todo-frontend container envoy is not deployed")));
    assert!(checklist.iter().any(|l| l.starts_with("nginx-only is left out")));
}

#[test]
fn a_versioned_tag_is_kept_and_a_pattern_offered_to_confirm() {
    let mut estate = todo("HTTP", 80, vec![rule("default", &[], "frontend")]);
    estate.services[1].containers[0].image = format!("{REG}/todo-backend:v1.4.2");
    estate.services[0].containers[0].image = format!("{REG}/todo-frontend@{DIGEST}");
    let (text, config, checklist) = written(&estate);
    assert_eq!(config.services[1].tags[0].as_str(), "v1.4.2");
    assert!(text.contains("# check: \"v1.4.2\" looks versioned"), "{text}");
    assert!(text.contains("tags = [\"v1.4.2\"]\n# tags = [\"v*\"]\n"), "{text}");
    assert!(text.contains(&format!("# check: the service runs {DIGEST} by digest only")), "{text}");
    assert!(checklist.iter().any(|l| l.starts_with("todo-backend tags: \"v1.4.2\" looks versioned")));
}

#[test]
fn versioned_tags_and_their_patterns() {
    for (tag, versioned, pattern) in [
        ("v1.4.2", true, "v*"),
        ("2026.12.07-abc", true, "*.*.*-*"),
        ("release-12", true, "release-*"),
        ("3f9a2c1", true, "???????"),
        ("1.27", true, "*.*"),
    ] {
        assert_eq!(looks_versioned(tag), versioned, "{tag}");
        assert_eq!(pattern_of(tag), pattern, "{tag}");
        assert!(pushdeploy::domain::glob::TagPattern::parse(pattern).unwrap().matches(tag), "{pattern} matches {tag}");
    }
    for tag in ["latest", "main", "stable", "prod", "deadbeef"] {
        assert!(!looks_versioned(tag), "{tag}");
    }
}

#[test]
fn a_blue_green_service_gets_a_commented_hook_and_two_repositories_two_entries() {
    let mut estate = todo("HTTP", 80, vec![rule("default", &[], "frontend")]);
    let front = &mut estate.services[0];
    front.strategy = "BLUE_GREEN".into();
    front.hook_stages = vec!["POST_TEST_TRAFFIC_SHIFT".into(), "POST_PRODUCTION_TRAFFIC_SHIFT".into()];
    front.containers.push(Container { name: "assets".into(), image: format!("{REG}/todo/assets:latest") });
    let (text, config, _) = written(&estate);
    assert!(
        text.contains("# [service.hook]\n# stages = [\"POST_TEST_TRAFFIC_SHIFT\", \"POST_PRODUCTION_TRAFFIC_SHIFT\"]"),
        "{text}"
    );
    assert!(config.services.iter().all(|s| s.hook.is_none()), "only a hint");
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["todo-frontend", "todo-frontend-assets", "todo-backend"]);
    assert_eq!(config.services[1].repository, "todo/assets");
}

#[test]
fn nothing_deployable_writes_nothing_and_says_why() {
    let mut estate = todo("HTTP", 80, Vec::new());
    estate.services.truncate(1);
    estate.services[0].containers[0].image = "nginx:1.27".into();
    let why = write_up(&estate).unwrap_err();
    assert!(why.contains("no service of cluster todo-cluster can be deployed") && why.contains("Docker Hub"), "{why}");
    estate.services[0].controller = "CODE_DEPLOY".into();
    assert!(write_up(&estate).unwrap_err().contains("its deployment controller is CODE_DEPLOY"));
}

#[test]
fn values_are_escaped_and_comments_stay_on_their_line() {
    let odd = todo("HTTPS", 443, vec![rule("1", &[("path-pattern", "/a\"b\\c/*")], "frontend")]);
    let mut odd = odd;
    odd.services[0].containers.push(Container { name: "x".into(), image: "bad image\n[defaults]".into() });
    let (text, config, _) = written(&odd);
    assert_eq!(config.services[0].smoke.as_ref().unwrap().url, format!("https://{DNS}/a\"b\\c/"));
    assert!(text.contains("#   container x: bad image [defaults]"), "{text}");
}

#[test]
fn an_internal_alb_and_a_service_without_circuit_breaker_reach_the_checklist() {
    let mut estate =
        todo("HTTP", 80, vec![rule("default", &[], "frontend"), rule("3", &[("path-pattern", "/api/*")], "backend")]);
    estate.load_balancers[0].internal = true;
    estate.services[1].circuit_breaker = false;
    estate.services[1].task_role = None;
    let (_, _, checklist) = written(&estate);
    assert!(checklist.iter().any(
        |l| l.starts_with("todo-frontend smoke: todo-alb is internal: verify reaches it only from inside the VPC")
    ));
    assert!(checklist.iter().any(|l| l.starts_with("todo-backend: the deployment circuit breaker is off")));
    assert!(!checklist.iter().any(|l| l.starts_with("todo-frontend: the deployment circuit breaker")));
    assert!(checklist.iter().any(|l| l.contains("TaskRoleArns=arn:aws:iam::123456789012:role/todo-frontend-task ExecutionRoleArns=arn:aws:iam::123456789012:role/ecs-execution ")));
}
