//! Stand-ins on 127.0.0.1: the todo app behind its "ALB", whose behaviour depends on the image the
//! service runs in moto; and, re-exported from its own module, the SNS subscriber the tests read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::clients::Aws;
use crate::http::{serve, Request, Response};
use crate::names::CLUSTER;

// Where the tests have always found it.
pub use crate::sns_sink::SnsSink;

/// How an image behaves once deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves the app correctly, state shared by every task.
    Good,
    /// Answers 500.
    Broken,
    /// Works, but each of its two tasks keeps its own in-memory state (the seed's bug).
    StatePerTask,
    /// Redirects every request to another host.
    RedirectsAway,
    /// Answers with a 2 MiB body.
    HugeBody,
    /// Works, but answers a new item's id as this text (`../../admin/users/1`): a hostile build
    /// aiming the read-after-write probe's clean-up DELETE at another path.
    AnswersId(&'static str),
    /// Never answers: holds every request open (the build hangs, or verify is about to die).
    Hangs,
    /// A build that would have its secrets recorded: every API answer is JSON with a
    /// secret-looking token at `/status` ([`LEAKED`]), and `/api/login` redirects off-site with an
    /// OAuth code and state in its `Location`.
    Leaky,
    /// Works, but answers 500 to `errors_per_mille` of every 1000 requests, drawn at random from
    /// the stand-in's seeded generator ([`TodoStandIn::seed`]): a build that fails some of the time.
    Flaky {
        /// Failures per thousand requests.
        errors_per_mille: u32,
    },
}

/// The word in everything [`Behaviour::Leaky`] answers that must never be recorded or told.
pub const LEAKED: &str = "SECRET";

#[derive(Default)]
struct Store {
    items: Vec<Value>,
}

/// Which listener of the "ALB" a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Users' traffic.
    Production,
    /// The blue/green test listener: green only, and only with the test header.
    Test,
}

/// The header the test listener's rule requires (a header-based test listener rule).
pub const TEST_HEADER: (&str, &str) = ("x-pushdeploy-test", "1");

/// How the production listener routes a service during a blue/green deployment: each request to
/// green with probability `share` percent, else to blue, as an ALB's weighted forward does.
#[derive(Debug, Clone)]
struct Route {
    blue: String,
    green: Option<String>,
    share: u64,
}

/// The seed a stand-in starts with, so a test that never seeds one still sees the same traffic
/// from one run to the next.
pub const DEFAULT_SEED: u64 = 0x5eed_a1b0;

/// One request the "ALB" served: through which listener, what was asked, to which image, with
/// what status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The listener.
    pub listener: Listener,
    /// The request's method.
    pub method: String,
    /// The request's path (and query), as it arrived.
    pub path: String,
    /// The image's digest (empty when none was resolved).
    pub digest: String,
    /// The status answered.
    pub status: u16,
    /// The request's `Authorization` header, as it arrived (what a smoke test sent).
    pub authorization: Option<String>,
}

struct State {
    aws: Aws,
    behaviours: Mutex<HashMap<String, Behaviour>>,
    routes: Mutex<HashMap<String, Route>>,
    served: Mutex<Vec<Served>>,
    // The `Authorization` value the API requires, when it requires one.
    api_authorization: Mutex<Option<String>>,
    // Two tasks' stores; Good uses the first for everything.
    tasks: [Mutex<Store>; 2],
    next_task: AtomicU64,
    next_id: AtomicU64,
    // Every random draw (routing by weight, a flaky build's failures) comes from here: seeded, so
    // a test's traffic is the same from run to run.
    rng: Mutex<fastrand::Rng>,
}

/// The todo app as seen through its load balancer: `/` is the frontend, `/api/` the backend.
/// Its test listener (blue/green) serves what the service runs in moto (green, once
/// UpdateService took it); its production listener does too unless a route holds it on blue.
pub struct TodoStandIn {
    /// `127.0.0.1:<port>` of the production listener.
    pub addr: String,
    /// `127.0.0.1:<port>` of the test listener.
    pub test_addr: String,
    state: Arc<State>,
    task: JoinHandle<()>,
    test_task: JoinHandle<()>,
}

impl TodoStandIn {
    /// Starts the app; images not given a behaviour are [`Behaviour::Good`].
    pub async fn start(aws: Aws) -> Self {
        let state = Arc::new(State {
            aws,
            behaviours: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            served: Mutex::new(Vec::new()),
            api_authorization: Mutex::new(None),
            tasks: [Mutex::new(Store::default()), Mutex::new(Store::default())],
            next_task: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            rng: Mutex::new(fastrand::Rng::with_seed(DEFAULT_SEED)),
        });
        let s = state.clone();
        let (addr, task) = serve(move |req| {
            let s = s.clone();
            async move { handle(&s, req, Listener::Production).await }
        })
        .await;
        let s = state.clone();
        let (test_addr, test_task) = serve(move |req| {
            let s = s.clone();
            async move { handle(&s, req, Listener::Test).await }
        })
        .await;
        Self { addr, test_addr, state, task, test_task }
    }

    /// Holds `service`'s production traffic on `blue` (the revision it runs before a blue/green
    /// deployment), whatever moto says it runs: ECS keeps production there until it shifts it.
    pub fn hold_production(&self, service: &str, blue: &str) {
        let route = Route { blue: blue.to_string(), green: None, share: 0 };
        self.state.routes.lock().expect("lock").insert(service.to_string(), route);
    }

    /// Shifts `share` percent of `service`'s production traffic to `green` (100: all of it): from
    /// now on each request goes to green with that probability, as a weighted ALB rule sends it.
    pub fn shift_production(&self, service: &str, green: &str, share: u64) {
        let mut routes = self.state.routes.lock().expect("lock");
        let route = routes.get_mut(service).expect("hold_production first");
        route.green = Some(green.to_string());
        route.share = share;
    }

    /// Restarts the stand-in's random draws (routing by weight, [`Behaviour::Flaky`]) from `seed`.
    pub fn seed(&self, seed: u64) {
        *self.state.rng.lock().expect("lock") = fastrand::Rng::with_seed(seed);
    }

    /// From now on the API (`/api/`) answers 401 to a request without exactly this `Authorization`
    /// header, as an API behind a sign-in does; the frontend stays public.
    pub fn require_api_authorization(&self, value: &str) {
        *self.state.api_authorization.lock().expect("lock") = Some(value.to_string());
    }

    /// Every request served so far.
    pub fn served(&self) -> Vec<Served> {
        self.state.served.lock().expect("lock").clone()
    }

    /// `http://127.0.0.1:<port>/` of the test listener.
    pub fn test_url(&self) -> String {
        format!("http://{}/", self.test_addr)
    }

    /// Declares how the image with `digest` behaves.
    pub fn set(&self, digest: &str, behaviour: Behaviour) {
        self.state.behaviours.lock().expect("lock").insert(digest.to_string(), behaviour);
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Items the backend holds now, across both tasks.
    pub fn item_count(&self) -> usize {
        self.state.tasks.iter().map(|t| t.lock().expect("lock").items.len()).sum()
    }
}

impl Drop for TodoStandIn {
    fn drop(&mut self) {
        self.task.abort();
        self.test_task.abort();
    }
}

/// The task definition a request to `service` through `listener` reaches.
async fn task_definition_for(s: &State, service: &str, listener: Listener) -> Option<String> {
    if listener == Listener::Production {
        let routes = s.routes.lock().expect("lock");
        if let Some(route) = routes.get(service) {
            // At random by weight, as an ALB routes: no request is promised to green.
            let draw = s.rng.lock().expect("lock").u64(0..100);
            return Some(match &route.green {
                Some(green) if draw < route.share => green.clone(),
                _ => route.blue.clone(),
            });
        }
    }
    match s.aws.ecs.describe_services().cluster(CLUSTER).services(service).send().await {
        Ok(out) => out.services().first().and_then(|svc| svc.task_definition()).map(str::to_string),
        Err(_) => None,
    }
}

async fn behaviour_of(s: &State, service: &str, listener: Listener) -> (Behaviour, String) {
    let Some(td) = task_definition_for(s, service, listener).await else { return (Behaviour::Broken, String::new()) };
    let image = s.aws.images_of(&td).await.into_iter().next().map(|(_, i)| i).unwrap_or_default();
    // A task started from a tag runs what the tag points at when it starts: as ECS does, the
    // stand-in resolves it now (a rollback to `:latest` after a broken push runs the broken image).
    let digest = match image.split_once('@') {
        Some((_, d)) => d.to_string(),
        None => match image.rsplit_once(':').and_then(|(r, t)| Some((r.split_once('/')?.1, t))) {
            Some((repo, tag)) => s
                .aws
                .ecr
                .describe_images()
                .repository_name(repo)
                .image_ids(aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(tag).build())
                .send()
                .await
                .ok()
                .and_then(|o| o.image_details().first().and_then(|d| d.image_digest().map(str::to_string)))
                .unwrap_or_default(),
            None => String::new(),
        },
    };
    let behaviour = s.behaviours.lock().expect("lock").get(&digest).copied().unwrap_or(Behaviour::Good);
    (behaviour, digest)
}

async fn handle(s: &State, req: Request, listener: Listener) -> Response {
    if listener == Listener::Test && req.header(TEST_HEADER.0) != Some(TEST_HEADER.1) {
        // The test listener's rule matches only requests with the test header.
        return Response::new(404, "no test listener rule matched (stand-in)");
    }
    let api = req.path.starts_with("/api/");
    let (behaviour, digest) = behaviour_of(s, if api { "todo-backend" } else { "todo-frontend" }, listener).await;
    let authorization = req.header("authorization").map(str::to_string);
    if behaviour == Behaviour::Hangs {
        let served = Served {
            listener,
            method: req.method.clone(),
            path: req.path.clone(),
            digest: digest.clone(),
            status: 0,
            authorization: authorization.clone(),
        };
        s.served.lock().expect("lock").push(served);
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let required = s.api_authorization.lock().expect("lock").clone();
    let response = match required {
        Some(want) if api && authorization.as_deref() != Some(want.as_str()) => {
            Response::new(401, "sign in first (stand-in)").with_header("www-authenticate", "Bearer")
        }
        _ => respond(s, &req, api, behaviour),
    };
    let served = Served {
        listener,
        method: req.method.clone(),
        path: req.path.clone(),
        digest,
        status: response.status,
        authorization,
    };
    s.served.lock().expect("lock").push(served);
    response
}

fn respond(s: &State, req: &Request, api: bool, behaviour: Behaviour) -> Response {
    match behaviour {
        Behaviour::Broken => return Response::new(500, "internal error (stand-in-body-7f3a)"),
        Behaviour::RedirectsAway => {
            return Response::new(302, "").with_header("location", "http://127.0.0.2:9/elsewhere");
        }
        Behaviour::HugeBody => {
            let mut body = vec![b' '; 2 * 1024 * 1024];
            body.extend_from_slice(b"<div id=\"root\"></div>");
            return Response::new(200, body);
        }
        Behaviour::Leaky if req.path.starts_with("/api/login") => {
            let to = format!("https://sso.example.com/authorize?code={LEAKED}-code-4f1d&state={LEAKED}-state-9c2e");
            return Response::new(302, "").with_header("location", &to);
        }
        Behaviour::Leaky if api => {
            let body = json!({"status": format!("{LEAKED}-token-eyJhbGciOiJIUzI1NiJ9"), "token": LEAKED});
            return Response::new(200, body.to_string()).with_header("content-type", "application/json");
        }
        Behaviour::Flaky { errors_per_mille } if s.rng.lock().expect("lock").u32(0..1000) < errors_per_mille => {
            return Response::new(500, "internal error (stand-in-flaky)");
        }
        Behaviour::Good
        | Behaviour::Flaky { .. }
        | Behaviour::Hangs
        | Behaviour::StatePerTask
        | Behaviour::AnswersId(_)
        | Behaviour::Leaky => {}
    }
    if !api {
        return Response::new(200, "<!doctype html><title>Todo</title><div id=\"root\"></div>")
            .with_header("content-type", "text/html");
    }
    let task = match behaviour {
        Behaviour::StatePerTask => (s.next_task.fetch_add(1, Ordering::SeqCst) % 2) as usize,
        _ => 0,
    };
    let mut store = s.tasks[task].lock().expect("lock");
    let path = req.path.trim_start_matches("/api/");
    match (req.method.as_str(), path) {
        ("GET", "todoItems") => Response::new(200, Value::Array(store.items.clone()).to_string()),
        ("POST", "todoItems") => {
            let mut item: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
            item["id"] = match behaviour {
                Behaviour::AnswersId(id) => json!(id),
                _ => json!(s.next_id.fetch_add(1, Ordering::SeqCst)),
            };
            store.items.push(item.clone());
            Response::new(201, item.to_string())
        }
        ("DELETE", p) if p.starts_with("todoItems/") => {
            let id = p.trim_start_matches("todoItems/").parse::<u64>().ok();
            let before = store.items.len();
            store.items.retain(|i| i["id"].as_u64() != id);
            Response::new(if store.items.len() < before { 204 } else { 404 }, "")
        }
        _ => Response::new(404, "not found"),
    }
}
