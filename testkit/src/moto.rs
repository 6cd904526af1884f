//! A moto server on a free loopback port, stopped when dropped.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server` on 127.0.0.1.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Where moto's request log goes.
    pub log: PathBuf,
}

/// The workspace root (this crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit sits in the workspace").to_path_buf()
}

/// Finds `moto_server`: `$MOTO_SERVER`, the repo's `.venv`, then `PATH`.
pub fn moto_command() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// Ports this process has handed out. moto takes a second or two to import before it binds its
/// port, and in that time the kernel may offer the same free port to another test: two motos
/// would then race for one port, and the loser's test would talk to the winner's moto (another
/// estate's buckets and subnets). A port is handed out once per process.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port that was free a moment ago on 127.0.0.1, never one this process handed out before.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut handed = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !handed.contains(&port) {
            handed.push(port);
            return port;
        }
    }
}

impl Moto {
    /// Starts moto and waits until it answers; panics with the log's tail if it cannot.
    pub fn start() -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("pushdeploy-moto-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("moto log file");
            let child = Command::new(moto_command())
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start moto_server ({e}); run scripts/setup or set MOTO_SERVER"));
            let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), log };
            if moto.wait_ready(Duration::from_secs(30)) {
                return moto;
            }
            last = std::fs::read_to_string(&moto.log).unwrap_or_default();
            let _ = moto.child.kill();
        }
        panic!("moto_server did not start: {last}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        let addr = self.endpoint.trim_start_matches("http://").to_string();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: x\r\n\r\n").is_ok() {
                    let mut buf = [0u8; 12];
                    if s.read(&mut buf).is_ok_and(|n| n > 0) {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
