//! Stand-ins on 127.0.0.1: the todo app behind its "ALB", whose behaviour depends on the image the
//! service runs in moto, and an SNS HTTP subscriber that keeps what it is sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::estate::{Aws, CLUSTER};
use crate::http::{serve, Request, Response};

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
}

#[derive(Default)]
struct Store {
    items: Vec<Value>,
}

struct State {
    aws: Aws,
    behaviours: Mutex<HashMap<String, Behaviour>>,
    // Two tasks' stores; Good uses the first for everything.
    tasks: [Mutex<Store>; 2],
    next_task: AtomicU64,
    next_id: AtomicU64,
}

/// The todo app as seen through its load balancer: `/` is the frontend, `/api/` the backend.
pub struct TodoStandIn {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl TodoStandIn {
    /// Starts the app; images not given a behaviour are [`Behaviour::Good`].
    pub async fn start(aws: Aws) -> Self {
        let state = Arc::new(State {
            aws,
            behaviours: Mutex::new(HashMap::new()),
            tasks: [Mutex::new(Store::default()), Mutex::new(Store::default())],
            next_task: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        let s = state.clone();
        let (addr, task) = serve(move |req| {
            let s = s.clone();
            async move { handle(&s, req).await }
        })
        .await;
        Self { addr, state, task }
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
    }
}

async fn behaviour_of(s: &State, service: &str) -> Behaviour {
    let td = match s.aws.ecs.describe_services().cluster(CLUSTER).services(service).send().await {
        Ok(out) => out.services().first().and_then(|svc| svc.task_definition()).map(str::to_string),
        Err(_) => None,
    };
    let Some(td) = td else { return Behaviour::Broken };
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
    s.behaviours.lock().expect("lock").get(&digest).copied().unwrap_or(Behaviour::Good)
}

async fn handle(s: &State, req: Request) -> Response {
    let api = req.path.starts_with("/api/");
    let behaviour = behaviour_of(s, if api { "todo-backend" } else { "todo-frontend" }).await;
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
        Behaviour::Good | Behaviour::StatePerTask => {}
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
            item["id"] = json!(s.next_id.fetch_add(1, Ordering::SeqCst));
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

/// An HTTP endpoint subscribed to an SNS topic in moto, keeping every notification.
pub struct SnsSink {
    /// The topic's ARN.
    pub topic_arn: String,
    received: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl SnsSink {
    /// Creates `topic` and subscribes a loopback HTTP endpoint to it.
    pub async fn start(aws: &Aws, topic: &str) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let r = received.clone();
        let (addr, task) = serve(move |req: Request| {
            let r = r.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
                    r.lock().expect("lock").push(v);
                }
                Response::new(200, "")
            }
        })
        .await;
        let topic_arn =
            aws.sns.create_topic().name(topic).send().await.expect("topic").topic_arn().expect("arn").to_string();
        aws.sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("http")
            .endpoint(format!("http://{addr}/"))
            .send()
            .await
            .expect("subscribe");
        Self { topic_arn, received, task }
    }

    /// Notifications received so far (`Subject`, `Message`, `MessageAttributes`, …).
    pub fn notifications(&self) -> Vec<Value> {
        self.received.lock().expect("lock").iter().filter(|v| v["Type"] == "Notification").cloned().collect()
    }
}

impl Drop for SnsSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
