//! Starts moto (behind the guard, whose emulation answers ECS's service deployments and
//! revisions, which moto lacks) with the todo app's estate and keeps it up while the file named by
//! its argument exists, printing the environment a function needs (for `cargo lambda watch`, see
//! scripts/invoke-events). Removing the file stops moto.

use std::path::PathBuf;
use std::time::Duration;

use testkit::estate::{Aws, TodoApp, BUCKET};
use testkit::guard::Emulator;

#[tokio::main]
async fn main() {
    let Some(hold) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: estate <file that keeps it running>");
        std::process::exit(2);
    };
    let emu = Emulator::start().await;
    let app = TodoApp::create(Aws::new(&emu.endpoint).await).await;
    // events/deploy-tag.json deploys backend v1.4.2: give it an image to find.
    app.aws.push_image("todo-backend", "v1.4.2", "backend-v1.4.2").await;
    // One `cargo lambda watch` runs both functions with one environment, so it gets the
    // harness's own credentials, which the guard does not hold to either role (the tests do).
    for (k, v) in app.aws.function_env(testkit::iam::Role::Deploy) {
        let v = if k == "AWS_ACCESS_KEY_ID" { "testing".to_string() } else { v };
        println!("{k}={v}");
    }
    println!("PUSHDEPLOY_BUCKET={BUCKET}");
    println!("READY");
    while hold.exists() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(emu);
}
