//! The test tree's Kubernetes API server (`tests/kube-apiserver/server.py`,
//! an in-memory stand-in for kube-apiserver on Python's standard library;
//! its header lists what it models), started on a free loopback port with
//! a log of every request it got, and the kubectl binaries that drive it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct KubeApi {
    pub port: u16,
    /// One JSON line per request received.
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl KubeApi {
    /// Starts the server; every request must carry `Bearer <token>`.
    pub fn start(token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("port");
        let log = dir.path().join("requests.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube-apiserver/server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0", "--token", token, "--ready-file"])
            .arg(&ready)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&ready) {
                if let Ok(p) = p.trim().parse() {
                    break p;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the Kubernetes API test server exited with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the Kubernetes API test server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            port,
            log,
            child,
            _dir: dir,
        }
    }

    /// Every request the server got so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubectl of minor version `minor` shipped on these machines.
pub fn kubectl(minor: u32) -> PathBuf {
    let p = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"));
    assert!(
        p.exists(),
        "{} is missing: scripts/setup installs it",
        p.display()
    );
    p
}
