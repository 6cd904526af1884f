//! Smoke URLs on an HTTPS load balancer: `connect_to` sends every request to a given address
//! while the URL's host name stays in TLS (SNI, the certificate's check) and the Host header, as
//! curl's `--connect-to`. Against a local TLS server with a certificate for `todo.example.test`
//! from a local CA, the smoke client trusting that CA as verify trusts the public ones.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pushdeploy::config::Config;
use pushdeploy::smoke::client::HttpClient;
use pushdeploy::smoke::engine;
use pushdeploy::smoke::look::look;
use pushdeploy::smoke::secrets::Resolved;
use testkit::http::{serve, Request, Response};
use testkit::tls::{LocalCa, TlsFront};

/// The user's host name: no DNS server knows it.
const HOST: &str = "todo.example.test";

/// A todo API on plain HTTP that keeps each request's Host header, behind a TLS front.
struct Site {
    hosts: Arc<Mutex<Vec<String>>>,
    front: TlsFront,
    _app: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(ca: &LocalCa, name: &str) -> Self {
        let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = hosts.clone();
        let (addr, app) = serve(move |req: Request| {
            kept.lock().unwrap().push(req.header("host").unwrap_or_default().to_string());
            async move { Response::new(200, r#"{"status":"ok"}"#).with_header("content-type", "application/json") }
        })
        .await;
        let front = TlsFront::for_site(&format!("http://{addr}"), &ca.site(name)).await;
        Self { hosts, front, _app: app }
    }

    fn port(&self) -> u16 {
        self.front.endpoint.rsplit(':').next().unwrap().parse().unwrap()
    }
}

fn ca(test: &str) -> LocalCa {
    LocalCa::generate(&std::env::temp_dir().join(format!("pushdeploy-https-{test}-{}", std::process::id())))
}

fn smoke_config(url: &str, connect_to: Option<&str>) -> pushdeploy::config::SmokeConfig {
    let connect = connect_to.map(|c| format!("connect_to = \"{c}\"\n")).unwrap_or_default();
    let text = format!(
        "[defaults]\ncluster = \"todo\"\n[[service]]\nname = \"backend\"\nservice = \"todo-backend\"\nrepository = \"todo-backend\"\ntags = [\"latest\"]\n[service.smoke]\nurl = \"{url}\"\n{connect}attempts = 1\nconsecutive = 1\ntimeout_ms = 3000\n[[service.smoke.check]]\npath = \"todoItems\"\njson_pointer = \"/status\"\nequals = \"ok\"\n"
    );
    Config::parse(&text, "https.toml").unwrap().services[0].smoke.clone().unwrap()
}

async fn smoke(http: &HttpClient, url: &str, connect_to: Option<&str>) -> serde_json::Value {
    let cfg = smoke_config(url, connect_to);
    let deadline = Instant::now() + Duration::from_secs(30);
    serde_json::to_value(engine::run(&cfg, http, None, &Resolved::default(), "t", deadline).await).unwrap()
}

#[tokio::test]
async fn connect_to_reaches_the_site_by_its_host_name_with_the_certificate_verified() {
    let ca = ca("reach");
    let site = Site::start(&ca, HOST).await;
    let http = HttpClient::trusting(vec![ca.root()]);
    let url = format!("https://{HOST}:{}/api/", site.port());

    let report = smoke(&http, &url, Some("127.0.0.1")).await;

    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["target"], format!("{url} via 127.0.0.1:{}", site.port()));
    assert_eq!(site.front.server_names(), vec![Some(HOST.to_string())], "the handshake named the host");
    assert_eq!(*site.hosts.lock().unwrap(), vec![format!("{HOST}:{}", site.port())], "and so did Host");

    // Without connect_to the same URL goes nowhere: the name resolves to nothing.
    let report = smoke(&http, &url, None).await;
    assert_eq!(report["passed"], false);
    let failure = report["rounds"][0]["checks"][0]["failures"].to_string();
    assert!(failure.contains("could not connect: the host name did not resolve"), "{failure}");
    assert_eq!(site.front.server_names().len(), 1, "no connection reached the site");
    assert!(report.get("target").is_none(), "{report}");
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_with_the_name_it_is_for() {
    let ca = ca("wrong-name");
    let site = Site::start(&ca, "other.example.test").await;
    let http = HttpClient::trusting(vec![ca.root()]);
    let url = format!("https://{HOST}:{}/api/", site.port());

    let report = smoke(&http, &url, Some("127.0.0.1")).await;

    assert_eq!(report["passed"], false);
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("TLS: the certificate is not valid for todo.example.test"), "{reason}");
    assert!(reason.contains("other.example.test"), "it says the name the certificate has: {reason}");
    assert!(site.hosts.lock().unwrap().is_empty(), "no request was sent over the refused connection");

    // And a server whose CA verify does not trust is told apart from a wrong name.
    let untrusting = HttpClient::new();
    let report = smoke(&untrusting, &url, Some("127.0.0.1")).await;
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("TLS: the certificate's issuer is not trusted"), "{reason}");
}

#[tokio::test]
async fn a_look_reports_the_http_to_https_redirect_and_where_each_request_connected() {
    let ca = ca("redirect");
    let site = Site::start(&ca, HOST).await;
    let https_port = site.port();
    let (addr, _redirector) = serve(move |req: Request| async move {
        Response::new(301, "").with_header("location", &format!("https://{HOST}:{https_port}{}", req.path))
    })
    .await;
    let http_port = addr.rsplit(':').next().unwrap().to_string();
    let http = HttpClient::trusting(vec![ca.root()]);
    let url = reqwest::Url::parse(&format!("http://{HOST}:{http_port}/api/")).unwrap();
    let to = pushdeploy::config::ConnectTo { host: "127.0.0.1".into(), port: None };

    let hops = look(&http, &url, &Default::default(), Some(&to), Duration::from_secs(3)).await;

    let hops = serde_json::to_value(&hops).unwrap();
    assert_eq!(hops[0]["status"], 301, "{hops}");
    assert_eq!(hops[0]["location"], format!("https://{HOST}:{https_port}/api/"));
    assert_eq!(hops[0]["connected"], format!("127.0.0.1:{http_port}"));
    assert_eq!(hops[1]["status"], 200, "{hops}");
    assert_eq!(hops[1]["connected"], format!("127.0.0.1:{https_port}"));
    assert_eq!(hops.as_array().unwrap().len(), 2);
    assert_eq!(site.front.server_names(), vec![Some(HOST.to_string())]);
}

#[tokio::test]
async fn validate_live_prints_what_the_deployed_verify_function_reached() {
    let ca = ca("live");
    let site = Site::start(&ca, HOST).await;
    let wrong = Site::start(&ca, "other.example.test").await;
    let https_port = site.port();
    let (addr, _redirector) = serve(move |req: Request| async move {
        Response::new(301, "").with_header("location", &format!("https://{HOST}:{https_port}{}", req.path))
    })
    .await;
    let http_port = addr.rsplit(':').next().unwrap().to_string();
    let config = testkit::estate::local_config("http://127.0.0.1:1/")
        .replace(
            "url = \"http://127.0.0.1:1/api/\"",
            &format!("url = \"http://{HOST}:{http_port}/api/\"\nconnect_to = \"127.0.0.1\""),
        )
        .replace(
            "url = \"http://127.0.0.1:1/\"",
            &format!("url = \"https://{HOST}:{}/\"\nconnect_to = \"127.0.0.1\"", wrong.port()),
        );
    assert_eq!(config.matches("connect_to").count(), 2, "{config}");
    let emu = testkit::guard::Emulator::start().await;
    let app = testkit::estate::TodoApp::create(testkit::estate::Aws::new(&emu.endpoint).await).await;
    let bundle = ca.bundle.to_string_lossy().into_owned();
    let verify = crate::function::start_function("verify", &app.aws, &config, &[("SSL_CERT_FILE", &bundle)]).await;
    let lambda = testkit::lambda::LambdaService::start(
        [("pushdeploy-verify".to_string(), std::sync::Arc::new(verify))].into_iter().collect(),
    )
    .await;
    let file = std::env::temp_dir().join(format!("pushdeploy-https-live-{}.toml", std::process::id()));
    std::fs::write(&file, &config).unwrap();
    let mut env = app.aws.function_env(testkit::iam::Role::Deploy);
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
    let mut c = std::process::Command::new(testkit::runtime::cli_binary());
    c.arg("validate").arg(&file).arg("--live").envs(env).env("AWS_ACCESS_KEY_ID", "testing");
    c.env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint);
    let out = tokio::task::spawn_blocking(move || c.output()).await.unwrap().expect("run pushdeploy");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("{said}");

    assert_eq!(out.status.code(), Some(1), "a URL failed: {said}");
    assert!(said.contains("live, through pushdeploy-verify:"), "{said}");
    assert!(said.contains(&format!("http://{HOST}:{http_port}/api/ via 127.0.0.1:{http_port}")), "{said}");
    assert!(said.contains(&format!("301 → https://{HOST}:{https_port}/api/ (127.0.0.1:{http_port}, ")), "{said}");
    assert!(said.contains(&format!("200 (127.0.0.1:{https_port}, ")), "{said}");
    assert!(said.contains("error: TLS: the certificate is not valid for todo.example.test (it names"), "{said}");
    assert_eq!(site.front.server_names(), vec![Some(HOST.to_string())], "verify named the host in TLS");
    assert_eq!(lambda.invoked()[0].payload, serde_json::json!({"action": "probe"}));
}
