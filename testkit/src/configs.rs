//! The todo app's pushdeploy configs, and a deployer and a verifier built from one.

use crate::clients::Aws;
use crate::iam::Role;
use crate::names::{BUCKET, CLUSTER};

/// The todo app's config with the backend as a blue/green service whose lifecycle hook is
/// pushdeploy: checks through the stand-in's test listener at `test` and production at `app`.
pub fn blue_green_config(app: &str, test: &str, attempts: u32, consecutive: u32) -> String {
    let (header, value) = crate::standin::TEST_HEADER;
    local_config(app)
        .replace(
            &format!("url = \"{app}api/\"\nattempts = 5\ninterval_ms = 100\ntimeout_ms = 2000\nconsecutive = 2\n"),
            &format!(
                "url = \"{app}api/\"\ntest_url = \"{test}api/\"\ntest_headers = {{ {header} = \"{value}\" }}\nattempts = {attempts}\ninterval_ms = 1000\ntimeout_ms = 2000\nconsecutive = {consecutive}\n"
            ),
        )
        + "\n[service.hook]\nstages = [\"POST_TEST_TRAFFIC_SHIFT\", \"PRODUCTION_TRAFFIC_SHIFT\", \"POST_PRODUCTION_TRAFFIC_SHIFT\"]\ntimeout_minutes = 10\n"
}

/// `config` (the todo app's) with the backend copying its family's newest revision that the
/// estate's Terraform registered: `base = "family"`, `trusted_registrants` naming its role.
pub fn family_base_config(config: &str) -> String {
    config.replacen(
        "repository = \"todo-backend\"",
        &format!(
            "repository = \"todo-backend\"\nbase = \"family\"\ntrusted_registrants = [\"{}\"]",
            crate::iam::TERRAFORM_ROLE_ARN
        ),
        1,
    )
}

/// The todo app's config with smoke tests against a local stand-in at `app` (`http://127.0.0.1:<port>/`).
pub fn local_config(app: &str) -> String {
    format!(
        r#"# The todo app on this machine: the "ALB" is a stand-in on 127.0.0.1.
[defaults]
cluster = "{CLUSTER}"
strategy = "pin-digest"

[[service]]
name = "frontend"
service = "todo-frontend"
repository = "todo-frontend"
tags = ["latest"]

[service.smoke]
url = "{app}"
attempts = 5
interval_ms = 100
timeout_ms = 2000
consecutive = 2

[[service.smoke.check]]
path = "/"
status = 200
contains = "<div id=\"root\">"

[[service]]
name = "backend"
service = "todo-backend"
repository = "todo-backend"
tags = ["latest", "v*"]

[service.smoke]
url = "{app}api/"
attempts = 5
interval_ms = 100
timeout_ms = 2000
consecutive = 2

[[service.smoke.check]]
path = "todoItems"
status = 200
json_pointer = ""
max_latency_ms = 1000

[service.smoke.read_after_write]
write_path = "todoItems"
write_body = '{{"name": "{{marker}}", "isComplete": false}}'
read_path = "todoItems"
reads = 6
delete_path = "todoItems/{{id}}"
id_pointer = "/id"
"#
    )
}

/// pushdeploy's clients over `aws` (as one role), on the artifact bucket, notifying `topic` when given.
pub fn clients(aws: &Aws, topic: Option<&str>) -> pushdeploy::aws::Clients {
    let sdk = pushdeploy::aws::SdkClients {
        config: aws.sdk.clone(),
        ecs: aws.ecs.clone(),
        ecr: aws.ecr.clone(),
        s3: aws.s3.clone(),
        elbv2: aws.elbv2.clone(),
        sns: aws.sns.clone(),
    };
    pushdeploy::aws::Clients::new(sdk, BUCKET, topic.map(str::to_string))
}

/// A deployer over `aws` with `config` (what `setup::deployer_from_env` builds in Lambda).
pub fn deployer(aws: &Aws, config: &str) -> pushdeploy::flows::deploy::Deployer {
    let config = pushdeploy::config::Config::parse(config, "test.toml").expect("test config is valid");
    pushdeploy::flows::deploy::Deployer {
        own_roles: Role::ALL
            .iter()
            .map(|r| pushdeploy::config::PrincipalPattern::parse(&r.role_arn()).expect("a role ARN"))
            .collect(),
        ..pushdeploy::flows::deploy::Deployer::new(config, &clients(&aws.as_role(Role::Deploy), None))
    }
}

/// A verifier over `aws` with `config`, notifying `topic` when given.
pub fn verifier(aws: &Aws, config: &str, topic: Option<&str>) -> pushdeploy::flows::verify::Verifier {
    let config = pushdeploy::config::Config::parse(config, "test.toml").expect("test config is valid");
    let clients = clients(&aws.as_role(Role::Verify), topic);
    pushdeploy::flows::verify::Verifier::new(config, &clients, pushdeploy::smoke::client::HttpClient::new())
}
