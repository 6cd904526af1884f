//! Benchmarks: the deploy's AWS calls and critical path, fan-out, cold start, warm invocations,
//! footprint, the moto floor, the peer (fabfuel `ecs-deploy`) side by side, and canary analysis.
//! Prints markdown.
//! Run with `scripts/bench` (it installs ecs-deploy and builds everything in release).

mod binary;
mod calls;
mod canary;
mod concurrent;
mod hook;
mod measure;
mod report;
mod setup;
mod tls;

use testkit::estate::BUCKET;
use testkit::moto::workspace_root;
use testkit::runtime::release_binary;

#[tokio::main]
async fn main() {
    let config_path = workspace_root().join("examples/pushdeploy.toml");
    let config_text = std::fs::read_to_string(&config_path).expect("example config");
    println!("# pushdeploy benchmarks\n");
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), setup::uname());
    // `scripts/bench concurrent` or `scripts/bench report`: only that table.
    match std::env::args().nth(1).as_deref() {
        Some("concurrent") => return concurrent::concurrent_pushes(&config_text).await,
        Some("report") => return report::report_scale().await,
        Some("hook") => return hook::hook_invocations().await,
        Some("tls") => return tls::tls_cold_starts(&config_text).await,
        Some("canary") => return canary::canary_analysis().await,
        _ => {}
    }
    let deploy_bin = release_binary("deploy");
    let verify_bin = release_binary("verify");
    let pusher = setup::Pusher::default();
    calls::one_deploy(&config_text, &pusher).await;
    calls::fan_out(&pusher).await;
    concurrent::concurrent_pushes(&config_text).await;
    hook::hook_invocations().await;
    tls::tls_cold_starts(&config_text).await;
    canary::canary_analysis().await;

    // 3–6. The release binary under a runtime-API host.
    let (motos, app) = setup::new_app().await;
    let mut env = app.aws.function_env(testkit::iam::Role::Deploy);
    env.push(("PUSHDEPLOY_CONFIG".into(), config_path.display().to_string()));
    env.push(("PUSHDEPLOY_BUCKET".into(), BUCKET.into()));
    env.push(("RUST_LOG".into(), "warn".into()));
    let measured = binary::release_binary_runs(&deploy_bin, &verify_bin, &env, &app, &pusher).await;
    binary::peer_side_by_side(&deploy_bin, &env, &app, &pusher, measured.floor).await;
    binary::cost_model(measured.warm, measured.verify);
    drop(motos);
    let _ = std::fs::remove_file(&measured.verify_config);
}
