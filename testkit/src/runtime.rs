//! A Lambda runtime-API host on loopback, and function processes polling it.
//!
//! It speaks the same `/2018-06-01/runtime/…` protocol as the Lambda service, so the real
//! `bootstrap` binaries run here unchanged: this is how tests and the demo invoke them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::http::{serve, Request, Response};

type Reply = Result<Value, Value>;
/// A process's log lines, as they are printed.
type Logs = Arc<Mutex<Vec<String>>>;
/// Queued invocations: request id and payload.
type Inbox = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>>;

#[derive(Default)]
struct Shared {
    waiting: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    polls: Mutex<Vec<Instant>>,
    init_error: Mutex<Option<String>>,
    /// The function's timeout in ms: each invocation's deadline (`lambda-runtime-deadline-ms`).
    timeout_ms: AtomicU64,
}

/// A runtime-API endpoint that hands queued events to whichever process polls it.
pub struct RuntimeHost {
    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
    events: mpsc::UnboundedSender<(String, Vec<u8>)>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    counter: AtomicU64,
}

impl RuntimeHost {
    /// Starts the host on a free loopback port.
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<(String, Vec<u8>)>();
        let rx: Inbox = Arc::new(tokio::sync::Mutex::new(rx));
        let shared = Arc::new(Shared { timeout_ms: AtomicU64::new(DEFAULT_TIMEOUT_MS), ..Shared::default() });
        let s = shared.clone();
        let (addr, task) = serve(move |req: Request| {
            let rx = rx.clone();
            let s = s.clone();
            async move { route(req, rx, s).await }
        })
        .await;
        Self { addr, events: tx, shared, task, counter: AtomicU64::new(0) }
    }

    /// Delivers `payload` and waits for the function's answer (`Err` holds the error document).
    pub async fn invoke(&self, payload: &Value, timeout: Duration) -> Reply {
        let rx = self.enqueue(payload);
        wait_for(rx, timeout).await
    }

    /// Queues `payload` for the next poll; the receiver gets the function's answer.
    fn enqueue(&self, payload: &Value) -> oneshot::Receiver<Reply> {
        let id = format!("req-{}", self.counter.fetch_add(1, Ordering::SeqCst) + 1);
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().expect("lock").insert(id.clone(), tx);
        self.events.send((id, serde_json::to_vec(payload).expect("json"))).expect("host running");
        rx
    }

    /// Times at which a process asked for the next invocation.
    pub fn polls(&self) -> Vec<Instant> {
        self.shared.polls.lock().expect("lock").clone()
    }

    /// The function's timeout: every later invocation's deadline is this far from its delivery.
    pub fn set_timeout(&self, timeout: Duration) {
        self.shared.timeout_ms.store(timeout.as_millis() as u64, Ordering::SeqCst);
    }

    /// The function's timeout (60 s unless set).
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.shared.timeout_ms.load(Ordering::SeqCst))
    }

    /// The error a process reported during init, if any.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().expect("lock").clone()
    }
}

impl Drop for RuntimeHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A function's timeout unless [`RuntimeHost::set_timeout`] says otherwise.
const DEFAULT_TIMEOUT_MS: u64 = 60_000;

async fn wait_for(rx: oneshot::Receiver<Reply>, timeout: Duration) -> Reply {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(Value::String("runtime host dropped the invocation".into())),
        Err(_) => Err(Value::String(format!("no answer within {timeout:?}"))),
    }
}

async fn route(req: Request, rx: Inbox, s: Arc<Shared>) -> Response {
    let path = req.path.trim_start_matches("/2018-06-01/runtime");
    if req.method == "GET" && path == "/invocation/next" {
        s.polls.lock().expect("lock").push(Instant::now());
        let next = rx.lock().await.recv().await;
        let Some((id, body)) = next else {
            return Response::new(500, "host stopped");
        };
        let timeout = u128::from(s.timeout_ms.load(Ordering::SeqCst));
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() + timeout;
        return Response::new(200, body)
            .with_header("content-type", "application/json")
            .with_header("lambda-runtime-aws-request-id", &id)
            .with_header("lambda-runtime-deadline-ms", &deadline.to_string())
            .with_header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy",
            )
            .with_header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000");
    }
    if req.method == "POST" && path == "/init/error" {
        *s.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&req.body).into_owned());
        return Response::new(202, "{}");
    }
    if let Some(rest) = path.strip_prefix("/invocation/") {
        if let Some((id, kind)) = rest.split_once('/') {
            let parsed: Value = serde_json::from_slice(&req.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into_owned()));
            let reply = if kind == "response" { Ok(parsed) } else { Err(parsed) };
            if let Some(tx) = s.waiting.lock().expect("lock").remove(id) {
                let _ = tx.send(reply);
            }
            return Response::new(202, "{}");
        }
    }
    Response::new(404, "unknown runtime API path")
}

/// A function binary running against its own runtime host; killed when dropped.
pub struct FunctionProcess {
    /// The host it polls.
    pub host: RuntimeHost,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// When the process was spawned.
    pub spawned: Instant,
    /// The environment it was spawned with, Lambda's own variables included.
    pub env: Vec<(String, String)>,
}

impl FunctionProcess {
    /// Spawns `binary` with `env` and waits until it polls for work (or fails init).
    pub async fn start(binary: &Path, env: &[(String, String)]) -> Self {
        let host = RuntimeHost::start().await;
        let spawned = Instant::now();
        let (child, logs, env) = spawn_child(&host.addr, binary, env, None);
        let mut p = Self { host, child, logs, spawned, env };
        let start = Instant::now();
        while p.host.polls().is_empty() && p.host.init_error().is_none() && start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{} exited during init ({status}): {}", binary.display(), p.logs().join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        p
    }

    /// A cold start as Lambda makes one: `payload` is queued before the process is spawned (in
    /// `cpu`'s cgroup from its first instruction, when given), so the first poll takes it. Returns
    /// the process, its answer and the time from spawn to answer.
    pub async fn cold_invoke(
        binary: &Path,
        env: &[(String, String)],
        cpu: Option<&CpuShare>,
        payload: &Value,
    ) -> (Self, Reply, Duration) {
        let host = RuntimeHost::start().await;
        let rx = host.enqueue(payload);
        let spawned = Instant::now();
        let (child, logs, env) = spawn_child(&host.addr, binary, env, cpu);
        let reply = wait_for(rx, Duration::from_secs(120)).await;
        let took = spawned.elapsed();
        (Self { host, child, logs, spawned, env }, reply, took)
    }

    /// Invokes the function once.
    pub async fn invoke(&self, payload: &Value) -> Result<Value, Value> {
        self.host.invoke(payload, Duration::from_secs(120)).await
    }

    /// Log lines printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("lock").clone()
    }

    /// The process id, e.g. to read its peak RSS from /proc.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The CPU time the process has used so far (every thread's, from the scheduler's
    /// nanosecond accounting in /proc, not the 10 ms ticks of /proc/<pid>/stat).
    pub fn cpu_time(&self) -> Duration {
        let Some(pid) = self.child.id() else { return Duration::ZERO };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
        let ns: u64 = tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
            .sum();
        Duration::from_nanos(ns)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Starts `binary` polling `runtime_api`; under `cpu` (a shell joins the cgroup, then execs it).
fn spawn_child(
    runtime_api: &str,
    binary: &Path,
    env: &[(String, String)],
    cpu: Option<&CpuShare>,
) -> (Child, Logs, Vec<(String, String)>) {
    let mut command = match cpu {
        None => Command::new(binary),
        Some(share) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg("echo $$ > \"$1\" && exec \"$0\"").arg(binary).arg(share.dir.join("cgroup.procs"));
            c
        }
    };
    let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function");
    let mut full: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", cpu.map_or(128, |c| c.memory_mb).to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/local".to_string()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // A later setting of the same name wins, as it would in the process.
    for (k, v) in env {
        full.retain(|(n, _)| n != k);
        full.push((k.clone(), v.clone()));
    }
    let mut child = command
        .env_clear()
        .envs(full.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let logs = Arc::new(Mutex::new(Vec::new()));
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let logs = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                logs.lock().expect("lock").push(line);
            }
        });
    }
    (child, logs, full)
}

/// Lambda's CPU share for a memory size, as a cgroup (v1 `cpu` controller, root only): a function
/// gets CPU in proportion to its memory, one whole vCPU at 1,769 MB, so the quota is
/// memory ÷ 1,769 of one CPU per 100 ms period. Removed when dropped (once its processes ended).
pub struct CpuShare {
    /// The function memory size it models, in MB.
    pub memory_mb: u32,
    dir: PathBuf,
}

/// Where cgroup v1 mounts the `cpu` controller.
const CPU_CGROUP: &str = "/sys/fs/cgroup/cpu";
/// The CFS period the quota is a share of.
pub const CPU_PERIOD_US: u64 = 100_000;

impl CpuShare {
    /// A cgroup giving `memory_mb` ÷ 1,769 of one CPU; `Err` says why not (no v1 cpu controller, not root).
    pub fn for_memory(memory_mb: u32) -> Result<Self, String> {
        let dir = Path::new(CPU_CGROUP).join(format!("pushdeploy-bench-{}-{memory_mb}", std::process::id()));
        let quota = (CPU_PERIOD_US * u64::from(memory_mb) / 1769).min(CPU_PERIOD_US * 64);
        let write = |file: &str, value: u64| {
            std::fs::write(dir.join(file), value.to_string()).map_err(|e| format!("{}: {e}", dir.join(file).display()))
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        write("cpu.cfs_period_us", CPU_PERIOD_US)?;
        write("cpu.cfs_quota_us", quota)?;
        Ok(Self { memory_mb, dir })
    }

    /// Moves a running process (all its threads) into the share.
    pub fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("join the cgroup");
    }

    /// The quota per period, in microseconds.
    pub fn quota_us(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("cpu.cfs_quota_us")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // Fails while a process is still inside; the processes are killed before this runs.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Builds a function crate once per test process (debug profile) and returns its binary.
pub fn function_binary(name: &str) -> PathBuf {
    built_binary(name, name, false)
}

/// Builds the operator command (`cli/`) and returns its `pushdeploy` binary.
pub fn cli_binary() -> PathBuf {
    built_binary("pushdeploy-cli", "pushdeploy", false)
}

/// Builds a function crate with the release profile and returns its binary.
pub fn release_binary(name: &str) -> PathBuf {
    built_binary(name, name, true)
}

fn built_binary(name: &str, bin: &str, release: bool) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let root = crate::moto::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().expect("lock");
    let id = format!("{name}-{release}");
    if !built.contains(&id) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut args = vec!["build", "--quiet", "-p", name];
        if release {
            args.push("--release");
        }
        let status =
            std::process::Command::new(cargo).args(&args).current_dir(&root).status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {name} failed");
        built.push(id);
    }
    target.join(if release { "release" } else { "debug" }).join(bin)
}
