//! Starts moto with the todo app's estate and keeps it up while the file named by its argument
//! exists, printing the environment a function needs (for `cargo lambda watch`, see
//! scripts/invoke-events). Removing the file stops moto.

use std::path::PathBuf;
use std::time::Duration;

use testkit::estate::{Aws, TodoApp, BUCKET};
use testkit::moto::Moto;

#[tokio::main]
async fn main() {
    let Some(hold) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: estate <file that keeps it running>");
        std::process::exit(2);
    };
    let moto = Moto::start();
    let app = TodoApp::create(Aws::new(&moto.endpoint).await).await;
    // events/deploy-tag.json deploys backend v1.4.2: give it an image to find.
    app.aws.push_image("todo-backend", "v1.4.2", "backend-v1.4.2").await;
    for (k, v) in app.aws.function_env(testkit::iam::Role::Deploy) {
        println!("{k}={v}");
    }
    println!("PUSHDEPLOY_BUCKET={BUCKET}");
    println!("READY");
    while hold.exists() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(moto);
}
