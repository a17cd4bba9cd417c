//! The test tree's upstream REST API (`tests/http-upstream/upstream.py`, a
//! real HTTP/1.1 server on Python's standard library), started on a free
//! loopback port and stopped when dropped; and curl, the client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Upstream {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Upstream {
    /// Starts the upstream with extra arguments (`--require-bearer TOKEN`).
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("port");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http-upstream/upstream.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0", "--ready-file"])
            .arg(&ready)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&ready) {
                break p.trim().parse().unwrap();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the upstream exited with {status}");
            }
            assert!(Instant::now() < deadline, "the upstream did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as curl got it.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    /// Header lines, lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Runs curl with `args` (URL included) against the gateway, trusting the
/// test CA; returns status, headers and body.
pub fn curl(ca: &Path, args: &[&str]) -> Got {
    let dir = tempfile::tempdir().unwrap();
    let head: PathBuf = dir.path().join("head");
    let body: PathBuf = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(ca)
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .output()
        .unwrap();
    let head_text = std::fs::read_to_string(&head).unwrap_or_default();
    let mut lines = head_text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "curl {args:?} got no response: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&std::fs::read(&body).unwrap_or_default()).into_owned(),
    }
}
