//! Step 10: the operator's view through the `pushdeploy` command, the manual actions through a
//! local Lambda Invoke endpoint.

use std::path::Path;

use testkit::estate::BUCKET;
use testkit::iam::Role;

use crate::release::Demo;
use crate::show::step;

/// Step 10: `status`, `history`, `show`, `report` (and its page), `validate`, and the manual actions.
pub async fn commands(demo: &Demo, config: &Path) {
    step("10. The operator's view: `pushdeploy status`, `history backend`, `show`, `report` (and its page), then `validate` and the manual actions through Lambda Invoke");
    let page = testkit::moto::workspace_root().join("target/pushdeploy-report.html");
    let mut operator = demo.aws.function_env(Role::Deploy);
    // The operator's own credentials, not a function's role.
    operator.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    operator.push(("AWS_ACCESS_KEY_ID".into(), "testing".into()));
    operator.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
    operator.push(("PUSHDEPLOY_CONFIG".into(), config.display().to_string()));
    // The manual actions go through Lambda Invoke: a local Invoke endpoint in front of deploy.
    let lambda = testkit::lambda::LambdaService::start(
        [("pushdeploy-deploy".to_string(), demo.deploy.clone())].into_iter().collect(),
    )
    .await;
    operator.push(("AWS_ENDPOINT_URL_LAMBDA".into(), lambda.endpoint.clone()));
    let page_arg = page.display().to_string();
    let config_arg = config.display().to_string();
    let rolled_back = demo.rolled_back.clone().unwrap_or_default();
    for args in [
        vec!["status"],
        vec!["history", "backend"],
        vec!["show", rolled_back.as_str()],
        vec!["report", "--since", "1d", "--html", page_arg.as_str()],
        vec!["report", "--since", "1d", "--json", "--service", "frontend"],
        vec!["validate", config_arg.as_str()],
        vec!["plan", "frontend"],
        vec!["redeploy", "frontend"],
        vec!["deploy", "backend", "v1.4.2"],
        vec!["rollback", "backend"],
    ] {
        println!("\n$ pushdeploy {}", args.join(" "));
        let mut command = std::process::Command::new(testkit::runtime::cli_binary());
        command.args(&args).envs(operator.clone());
        let out = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run pushdeploy");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    println!("  the report page: {} (open it in a browser; it needs no network)", page.display());
    drop(lambda);
}
