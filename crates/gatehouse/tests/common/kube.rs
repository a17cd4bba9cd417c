//! The test tree's Kubernetes API server (`tests/kube-apiserver/server.py`,
//! an in-memory stand-in for kube-apiserver on Python's standard library;
//! its header lists what it models), started on a free loopback port with
//! a log of every request it got, and the kubectl binaries that drive it.

use super::{stderr, stdout, Harness, Options};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            // The other lines are the server's own events (exec_end).
            .filter(|r| r.get("method").is_some())
            .collect()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kubectl 1.`minor`: 1.27 to 1.33 as the Google Cloud SDK ships them on
/// these machines, 1.35 as scripts/setup unpacks it from its npm package.
pub fn kubectl(minor: u32) -> PathBuf {
    let p = if minor == 35 {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube-client/bin/kubectl.1.35")
    } else {
        PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"))
    };
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup test",
        p.display()
    );
    p
}

/// The official Kubernetes Python client (in its venv) running `script` in
/// `tests/kube-client`.
pub fn python_client(script: &str) -> Command {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube-client");
    let mut cmd = Command::new(dir.join(".venv/bin/python"));
    cmd.arg(dir.join(script)).stdin(Stdio::null());
    cmd
}

/// The gateway's own credential for the API server.
pub const CLUSTER_TOKEN: &str = "cluster-credential-5b8e1d";

const POLICY: &str = r#"
@id("connect")
permit (principal, action == Gatehouse::Action::"connect", resource);

@id("ci-reads")
permit (principal in Gatehouse::Group::"ci", action in Gatehouse::Action::"k8s:read", resource);

@id("ci-writes")
permit (principal in Gatehouse::Group::"ci", action in Gatehouse::Action::"k8s:write", resource);

@id("prod-deletes")
@approval("sre")
forbid (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"k8s:delete", resource)
when { resource.namespace == "prod" };

@id("ci-streams")
permit (principal in Gatehouse::Group::"ci", action in [Gatehouse::Action::"k8s:exec", Gatehouse::Action::"k8s:attach", Gatehouse::Action::"k8s:portforward"], resource)
unless { context.command like "rm *" };

@id("risky-exec-waits")
@approval("sre-hold")
forbid (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"k8s:exec", resource)
when { context.argv.contains("--risky") };

@id("no-kube-system-writes")
forbid (principal, action in Gatehouse::Action::"k8s:write", resource)
when { resource.namespace == "kube-system" };

@id("no-discard-port")
forbid (principal, action == Gatehouse::Action::"k8s:portforward", resource)
when { context.ports.contains(9) };

@id("no-dev-secrets")
forbid (principal, action in Gatehouse::Action::"k8s:read", resource)
when { resource.resource == "secrets" && resource.namespace == "dev" };
"#;

const CONFIG: &str = r#"
[[approval.route]]
name = "sre"
approvers = ["sre"]
mode = "request"

[[approval.route]]
name = "sre-hold"
approvers = ["sre"]
mode = "hold"
hold_timeout = "60s"

[[connection]]
name = "prod-cluster"
kind = "kubernetes"
url = "http://127.0.0.1:{api_port}"
auth = "bearer"
token_env = "CLUSTER_TOKEN"
impersonate = true

[connection.masking]
detectors = ["email"]
exempt_groups = ["sre"]
"#;

/// A gateway with a `prod-cluster` connection to the test API server, a
/// kubeconfig from `gatehouse kubeconfig`, and two callers' tokens.
pub struct Cluster {
    pub h: Harness,
    pub api: KubeApi,
    pub kubeconfig: PathBuf,
    /// A CI job (group ci).
    pub ci: String,
    /// An approver (groups ci and sre).
    pub sre: String,
}

impl Cluster {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// With more configuration (an OIDC issuer).
    pub fn start_with(extra: &str) -> Self {
        let api = KubeApi::start(CLUSTER_TOKEN);
        let config: &'static str = Box::leak(format!("{CONFIG}\n{extra}").into_boxed_str());
        let h = Harness::with(Options {
            policy: Some(POLICY.into()),
            extra_config: config,
            vars: vec![("{api_port}", api.port.to_string())],
            env: vec![("CLUSTER_TOKEN", CLUSTER_TOKEN.to_string())],
            ..Options::default()
        });
        let kubeconfig = h.dir.path().join("kubeconfig");
        // The CA that signed the gateway's certificate (Python's TLS wants
        // a root; kubectl would take the certificate itself, the default).
        let ca = h.dir.path().join("ca.pem");
        let out = h.cli(&[
            "kubeconfig",
            "--connection",
            "prod-cluster",
            "--ca",
            ca.to_str().unwrap(),
            "--out",
            kubeconfig.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let ci = h.token("ci-deploy", &["ci"], "1h");
        let sre = h.token("sre-lead", &["ci", "sre"], "1h");
        Self {
            h,
            api,
            kubeconfig,
            ci,
            sre,
        }
    }

    /// kubectl 1.`minor` as `token`, not yet run.
    pub fn kubectl_cmd(&self, minor: u32, token: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl(minor));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.h.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("GATEHOUSE_TOKEN", token)
            .args(["--request-timeout", "30s"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// kubectl 1.`minor` as the CI job.
    pub fn kubectl(&self, minor: u32, args: &[&str]) -> Output {
        self.kubectl_cmd(minor, &self.ci, args).output().unwrap()
    }

    /// kubectl 1.`minor` as the CI job, which must succeed: its stdout.
    pub fn ok(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl(minor, args);
        assert!(
            out.status.success(),
            "kubectl 1.{minor} {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        never_the_credential(&out);
        stdout(&out)
    }

    /// kubectl 1.`minor` as the CI job, which must fail: its stderr.
    pub fn refused(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl(minor, args);
        assert!(
            !out.status.success(),
            "kubectl 1.{minor} {args:?} ran: {}",
            stdout(&out)
        );
        never_the_credential(&out);
        stderr(&out)
    }
}

/// The gateway's own credential reaches no caller.
fn never_the_credential(out: &Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(
            !text.contains(CLUSTER_TOKEN),
            "the gateway's credential reached the caller: {text}"
        );
    }
}
