//! End-to-end harness: a real PostgreSQL from initdb (TLS on, users for each
//! backend authentication method), the real `gatehouse` binary in front of
//! it, and real clients (psql, pgbench, tokio-postgres over rustls).

#![allow(dead_code)]

pub mod browser;
pub mod evidence_log;
pub mod http;
pub mod kube;
pub mod mariadb;
pub mod mysql;
pub mod oidc;
pub mod ssh;
pub mod store;
pub mod upstream;

use gatehouse::certs::TestCa;
use gatehouse::pgcluster::{free_port, random_hex, ClusterOptions, TempCluster};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A policy that permits everything: the data-path tests are not about policy.
pub const ALLOW_ALL: &str = "@id(\"allow-all\")\npermit (principal, action, resource);\n";

/// A `[[connection]]` named `$name` to the harness's cluster as `app_owner`
/// over TLS (`{db_port}` is filled in by the harness), as a literal for
/// `concat!` in a test's `extra_config`.
#[macro_export]
macro_rules! app_connection {
    ($name:literal) => {
        concat!(
            "[[connection]]\nname = \"",
            $name,
            "\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {db_port}\ndatabase = \"app\"\n",
            "user = \"app_owner\"\npassword_env = \"GATEHOUSE_TEST_APP_PASSWORD\"\nbackend_tls = \"require\"\n"
        )
    };
}

/// What differs between harnesses.
pub struct Options {
    /// `[listeners] plaintext_on_loopback = true`, for raw-socket tests.
    pub plaintext_on_loopback: bool,
    /// Policy text (default: permit everything).
    pub policy: Option<String>,
    /// `enforce` or `audit`.
    pub policy_mode: &'static str,
    /// Appended to the configuration; `{db_port}` is replaced by the cluster's
    /// port, `{gateway_api_port}` by the gateway's API port.
    pub extra_config: &'static str,
    /// More `{name}` → value replacements in `extra_config` (an upstream's port).
    pub vars: Vec<(&'static str, String)>,
    /// Environment for the gateway (upstream credentials).
    pub env: Vec<(&'static str, String)>,
    /// `[listeners] ssh` on a free port.
    pub ssh: bool,
    /// `[listeners] mysql` on a free port.
    pub mysql: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            plaintext_on_loopback: false,
            policy: None,
            policy_mode: "enforce",
            extra_config: "",
            vars: Vec::new(),
            env: Vec::new(),
            ssh: false,
            mysql: false,
        }
    }
}

pub struct Harness {
    /// The target database (shared with the harness's other nodes).
    pub cluster: Arc<TempCluster>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub pg_port: u16,
    pub api_port: u16,
    /// The HTTP listener (HTTPS with the test CA's certificate).
    pub http_port: u16,
    /// The SSH listener, when the options asked for one.
    pub ssh_port: u16,
    /// The MySQL listener, when the options asked for one.
    pub mysql_port: u16,
    env: Vec<(&'static str, String)>,
    /// Backend passwords: they must never leave the gateway.
    pub backend_passwords: Vec<String>,
    pub ca_pem: String,
    pub policy_file: PathBuf,
    gateway: Option<Child>,
}

impl Harness {
    pub fn start() -> Self {
        Self::with(Options::default())
    }

    pub fn with(opts: Options) -> Self {
        let ca = TestCa::new("gatehouse test CA").unwrap();
        let db_cert = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
        let cluster = TempCluster::start(&ClusterOptions {
            tls: Some((db_cert.cert_pem, db_cert.key_pem)),
            hba_prepend: vec![
                // app_owner may only log in over TLS: proves backend_tls really encrypts.
                "hostnossl all app_owner 127.0.0.1/32 reject".into(),
                "host all md5_user 127.0.0.1/32 md5".into(),
                "host all plain_user 127.0.0.1/32 password".into(),
            ],
        })
        .unwrap();
        let app_pw = random_hex(16);
        let md5_pw = random_hex(16);
        let plain_pw = random_hex(16);
        cluster
            .sql(
                "postgres",
                &format!(
                    "CREATE ROLE app_owner LOGIN PASSWORD '{app_pw}';
                     SET password_encryption = 'md5';
                     CREATE ROLE md5_user LOGIN PASSWORD '{md5_pw}';
                     RESET password_encryption;
                     CREATE ROLE plain_user LOGIN PASSWORD '{plain_pw}';"
                ),
            )
            .unwrap();
        cluster
            .sql("postgres", "CREATE DATABASE app OWNER app_owner")
            .unwrap();

        let dir = tempfile::Builder::new()
            .prefix("gatehouse-test-")
            .tempdir()
            .unwrap();
        let gw_cert = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
        std::fs::write(dir.path().join("gateway.pem"), &gw_cert.cert_pem).unwrap();
        std::fs::write(dir.path().join("gateway.key"), &gw_cert.key_pem).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("md5.password"), format!("{md5_pw}\n")).unwrap();
        std::fs::write(dir.path().join("plain.password"), &plain_pw).unwrap();
        let pg_port = free_port().unwrap();
        let api_port = free_port().unwrap();
        let http_port = free_port().unwrap();
        let ssh_port = free_port().unwrap();
        let ssh_listener = if opts.ssh {
            format!("ssh = \"127.0.0.1:{ssh_port}\"")
        } else {
            String::new()
        };
        let mysql_port = free_port().unwrap();
        let mysql_listener = if opts.mysql {
            format!("mysql = \"127.0.0.1:{mysql_port}\"")
        } else {
            String::new()
        };
        let closed_port = free_port().unwrap();
        let policy_file = dir.path().join("policy.cedar");
        std::fs::write(&policy_file, opts.policy.as_deref().unwrap_or(ALLOW_ALL)).unwrap();
        let db_port = cluster.port();
        let config = dir.path().join("gatehouse.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
data_dir = "data"
api_listen = "127.0.0.1:{api_port}"

[listeners]
postgres = "127.0.0.1:{pg_port}"
http = "127.0.0.1:{http_port}"
{ssh_listener}
{mysql_listener}
plaintext_on_loopback = {plain}

[tls]
cert = "gateway.pem"
key = "gateway.key"

[policy]
files = ["{policy_file}"]
mode = "{policy_mode}"

[[connection]]
name = "app-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "app_owner"
password_env = "GATEHOUSE_TEST_APP_PASSWORD"
backend_tls = "require"

[[connection]]
name = "app-verified"
kind = "postgres"
host = "localhost"
port = {db_port}
database = "app"
user = "app_owner"
password_env = "GATEHOUSE_TEST_APP_PASSWORD"
backend_tls = "verify-full"
backend_ca = "ca.pem"

[[connection]]
name = "md5-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "md5_user"
password_file = "md5.password"
backend_tls = "disable"

[[connection]]
name = "plain-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "plain_user"
password_file = "plain.password"
backend_tls = "prefer"

[[connection]]
name = "down-db"
kind = "postgres"
host = "127.0.0.1"
port = {closed_port}
database = "app"
user = "app_owner"
password_env = "GATEHOUSE_TEST_APP_PASSWORD"
backend_tls = "disable"
connect_timeout = "3s"
{extra}
"#,
                plain = opts.plaintext_on_loopback,
                policy_file = policy_file.display(),
                policy_mode = opts.policy_mode,
                extra = opts.vars.iter().fold(
                    opts.extra_config
                        .replace("{db_port}", &db_port.to_string())
                        .replace("{gateway_api_port}", &api_port.to_string()),
                    |text, (name, value)| text.replace(name, value)
                ),
            ),
        )
        .unwrap();
        let mut h = Self {
            cluster: Arc::new(cluster),
            data_dir: dir.path().join("data"),
            log: dir.path().join("gateway.log"),
            config,
            dir,
            pg_port,
            api_port,
            http_port,
            ssh_port,
            mysql_port,
            env: opts.env,
            backend_passwords: vec![app_pw, md5_pw, plain_pw],
            ca_pem: ca.cert_pem(),
            policy_file,
            gateway: None,
        };
        h.start_gateway();
        h
    }

    /// Another gateway node beside this one: the same configuration (so
    /// the same store, when it names a shared one) with its own data
    /// directory, ports and log, started. Its node id is generated.
    pub fn another_node(&self) -> Harness {
        let n = random_hex(3);
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-node-")
            .tempdir()
            .unwrap();
        let (pg_port, api_port, http_port, ssh_port, mysql_port) = (
            free_port().unwrap(),
            free_port().unwrap(),
            free_port().unwrap(),
            free_port().unwrap(),
            free_port().unwrap(),
        );
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = [
            (
                "data_dir = \"data\"".to_string(),
                format!("data_dir = \"data-{n}\""),
            ),
            (
                format!("127.0.0.1:{}\"", self.api_port),
                format!("127.0.0.1:{api_port}\""),
            ),
            (
                format!("127.0.0.1:{}\"", self.pg_port),
                format!("127.0.0.1:{pg_port}\""),
            ),
            (
                format!("127.0.0.1:{}\"", self.http_port),
                format!("127.0.0.1:{http_port}\""),
            ),
            (
                format!("127.0.0.1:{}\"", self.ssh_port),
                format!("127.0.0.1:{ssh_port}\""),
            ),
            (
                format!("127.0.0.1:{}\"", self.mysql_port),
                format!("127.0.0.1:{mysql_port}\""),
            ),
        ]
        .iter()
        .fold(text, |t, (from, to)| t.replace(from, to));
        // Beside the first node's file: its relative paths (certificates,
        // password files) name the same files.
        let config = self.dir.path().join(format!("gatehouse-{n}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut node = Harness {
            cluster: self.cluster.clone(),
            data_dir: self.dir.path().join(format!("data-{n}")),
            log: dir.path().join("gateway.log"),
            config,
            dir,
            pg_port,
            api_port,
            http_port,
            ssh_port,
            mysql_port,
            env: self.env.clone(),
            backend_passwords: self.backend_passwords.clone(),
            ca_pem: self.ca_pem.clone(),
            policy_file: self.policy_file.clone(),
            gateway: None,
        };
        node.start_gateway();
        node
    }

    /// This node's id (generated into its data directory when not configured).
    pub fn node_id(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("node_id"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn start_gateway(&mut self) {
        self.spawn_gateway();
        self.wait_for_gateway();
    }

    /// Starts the gateway without waiting for it to listen.
    pub fn spawn_gateway(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("GATEHOUSE_TEST_APP_PASSWORD", &self.backend_passwords[0])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GATEHOUSE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.gateway = Some(child);
    }

    /// Waits until the spawned gateway listens (or fails the test).
    pub fn wait_for_gateway(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pg = std::net::TcpStream::connect(("127.0.0.1", self.pg_port)).is_ok();
            let api = std::net::TcpStream::connect(("127.0.0.1", self.api_port)).is_ok();
            if pg && api {
                break;
            }
            if let Some(status) = self.gateway.as_mut().unwrap().try_wait().unwrap() {
                panic!("gateway exited with {status}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `gatehouse serve` in the foreground for a start that is expected
    /// to fail; returns how it ended.
    pub fn serve_expecting_failure(&self) -> Output {
        let out = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("GATEHOUSE_TEST_APP_PASSWORD", &self.backend_passwords[0])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(!out.status.success(), "the gateway started");
        out
    }

    /// Stops the gateway with SIGTERM (a clean shutdown that flushes records).
    pub fn stop_gateway(&mut self) {
        if let Some(mut child) = self.gateway.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("gateway did not stop on SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Kills the gateway with SIGKILL (no chance to flush anything) and reaps it.
    pub fn kill_gateway(&mut self) {
        if let Some(mut child) = self.gateway.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn gateway_pid(&self) -> u32 {
        self.gateway.as_ref().expect("gateway running").id()
    }

    pub fn gateway_running(&mut self) -> bool {
        matches!(self.gateway.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an admin command against this gateway.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("GATEHOUSE_ADMIN_KEY")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The public id of `identity`'s token, from `gatehouse token list`.
    pub fn token_id_of(&self, identity: &str) -> String {
        self.cli_ok(&["token", "list", "--json"])
            .parse::<serde_json::Value>()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["identity"] == identity)
            .unwrap_or_else(|| panic!("no token of {identity}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Like [`Self::cli`], asserting success; returns stdout.
    /// `gatehouse evidence` for the period `from`..`to`, written to `out`.
    pub fn evidence_pack(&self, from: &str, to: &str, out: &std::path::Path) -> Output {
        self.cli(&[
            "evidence",
            "--from",
            from,
            "--to",
            to,
            "--out",
            out.to_str().unwrap(),
        ])
    }

    /// The evidence log's events, as `gatehouse audit export --format jsonl` gives them.
    pub fn evidence_events(&self) -> Vec<serde_json::Value> {
        self.cli_ok(&["audit", "export", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The id of the pending approval request whose text contains
    /// `marker`, once it appears (within 20 s).
    pub fn pending_approval(&self, marker: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.cli(&["approvals", "list", "--pending", "--json"]);
            let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            if let Some(r) = list.as_array().and_then(|a| {
                a.iter()
                    .find(|r| r["text"].as_str().unwrap_or("").contains(marker))
            }) {
                return r["id"].as_str().unwrap().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no pending request for {marker}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `statement_result` event of the action whose recorded text
    /// contains `needle`, once it is written (within 15 s).
    pub fn result_of(&self, needle: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.evidence_events();
            let decided = events.iter().find(|e| {
                e["kind"] == "statement"
                    && e["payload"]["text"]
                        .as_str()
                        .is_some_and(|t| t.contains(needle))
            });
            if let Some(d) = decided {
                let found = events.iter().find(|e| {
                    e["kind"] == "statement_result"
                        && e["payload"]["session"] == d["payload"]["session"]
                        && e["payload"]["seq"] == d["payload"]["seq"]
                });
                if let Some(r) = found {
                    return r.clone();
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no result for {needle:?}: {events:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "gatehouse {args:?} failed: {}\n--- the gateway's log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn token(&self, identity: &str, groups: &[&str], ttl: &str) -> String {
        let mut args = vec!["token", "create", "--identity", identity, "--ttl", ttl];
        for g in groups {
            args.push("--group");
            args.push(g);
        }
        self.cli_ok(&args).trim().to_string()
    }

    fn libpq_env(&self, cmd: &mut Command, token: &str, dbname: &str) {
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.pg_port.to_string())
            .env("PGDATABASE", dbname)
            .env("PGUSER", "tester")
            .env("PGPASSWORD", token)
            .env("PGSSLMODE", "require")
            .env("PGCONNECT_TIMEOUT", "10");
    }

    /// A Python script of the tests (run by the tests' venv, `tests/mcp/.venv`,
    /// which `scripts/setup test` fills) with libpq's environment pointing it
    /// through the gateway.
    pub fn python_cmd(&self, script: &str, token: &str, dbname: &str) -> Command {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut cmd = Command::new(dir.join("mcp/.venv/bin/python"));
        cmd.arg(dir.join(script));
        self.libpq_env(&mut cmd, token, dbname);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// A psql command through the gateway (not yet run).
    pub fn psql_cmd(&self, token: &str, dbname: &str) -> Command {
        let mut cmd = Command::new(self.cluster.tool("psql"));
        cmd.args(["-X", "-v", "ON_ERROR_STOP=1"]);
        self.libpq_env(&mut cmd, token, dbname);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs psql through the gateway with tuples-only output.
    pub fn psql(&self, token: &str, dbname: &str, sql: &str) -> Output {
        self.psql_cmd(token, dbname)
            .args(["-q", "-A", "-t", "-c", sql])
            .output()
            .unwrap()
    }

    /// A pgbench command through the gateway (not yet run).
    pub fn pgbench_cmd(&self, token: &str) -> Command {
        let mut cmd = Command::new(self.cluster.tool("pgbench"));
        self.libpq_env(&mut cmd, token, "app-db");
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn tls_connector(&self) -> tokio_postgres_rustls::MakeRustlsConnect {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut self.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_postgres_rustls::MakeRustlsConnect::new(cfg)
    }

    pub fn pg_config(&self, token: &str, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("localhost")
            .port(self.pg_port)
            .dbname(dbname)
            .user("tester")
            .password(token)
            .application_name("gatehouse-e2e")
            .ssl_mode(tokio_postgres::config::SslMode::Require)
            .connect_timeout(Duration::from_secs(10));
        c
    }

    /// Connects with tokio-postgres over TLS (certificate verified against the test CA).
    pub async fn connect(
        &self,
        token: &str,
        dbname: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) = self
            .pg_config(token, dbname)
            .connect(self.tls_connector())
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Connects, expecting a refusal; returns the error.
    pub async fn refused(&self, token: &str, dbname: &str, why: &str) -> tokio_postgres::Error {
        match self.connect(token, dbname).await {
            Ok(_) => panic!("connection to {dbname} should be refused: {why}"),
            Err(e) => e,
        }
    }

    /// A TLS connector for cancel requests.
    pub fn cancel_tls(&self) -> tokio_postgres_rustls::MakeRustlsConnect {
        self.tls_connector()
    }

    /// Every file under the data directory, as bytes.
    pub fn data_dir_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir, &mut out);
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut c) = self.gateway.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Today's date (UTC), as a period's bound: `2026-11-30`.
/// Creates the app database's `customers` table with five rows.
pub fn create_customers(h: &Harness) {
    h.cluster
        .sql(
            "app",
            "CREATE TABLE customers (id int, name text); GRANT ALL ON customers TO app_owner",
        )
        .unwrap();
    refill_customers(h);
}

/// Puts five more rows into `customers`.
pub fn refill_customers(h: &Harness) {
    h.cluster
        .sql(
            "app",
            "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) g",
        )
        .unwrap();
}

/// How many rows `customers` holds, read on the backend.
pub fn customer_count(h: &Harness) -> String {
    h.cluster
        .sql("app", "SELECT count(*) FROM customers")
        .unwrap()
}

pub fn today() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_string()
}

/// The approval request id in a refusal: `… request <uuid>`.
pub fn request_id(err: &str) -> String {
    let at = err
        .find("request ")
        .unwrap_or_else(|| panic!("no request id in {err}"))
        + 8;
    err[at..at + 36].to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// The SQLSTATE of a tokio-postgres error.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("<no SQLSTATE: {e}>"))
}

/// The server's message of a tokio-postgres error (its `Display` says only "db error").
pub fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Reads a `VmXxx:` figure (in KiB) from /proc/PID/status.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A plaintext protocol-level session, logged in with `token` to `dbname`
/// and read up to the first ReadyForQuery (needs `plaintext_on_loopback`).
/// The startup packet asks for GSSAPI encryption first, which must be declined.
pub async fn raw_login(port: u16, token: &str, dbname: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 8, 4, 210, 22, 48]).await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"N", "GSSENCRequest declined");
    let mut startup = Vec::new();
    for kv in ["user", "raw", "database", dbname] {
        startup.extend_from_slice(kv.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut pkt = ((startup.len() + 8) as u32).to_be_bytes().to_vec();
    pkt.extend_from_slice(&196608u32.to_be_bytes());
    pkt.extend_from_slice(&startup);
    s.write_all(&pkt).await.unwrap();
    let mut auth = [0u8; 9];
    s.read_exact(&mut auth).await.unwrap();
    assert_eq!(
        auth,
        [b'R', 0, 0, 0, 8, 0, 0, 0, 3],
        "asked for the token as a cleartext password"
    );
    let mut pw = vec![b'p'];
    pw.extend_from_slice(&((token.len() + 5) as u32).to_be_bytes());
    pw.extend_from_slice(token.as_bytes());
    pw.push(0);
    s.write_all(&pw).await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
        let mut chunk = [0u8; 1024];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before ReadyForQuery");
        got.extend_from_slice(&chunk[..n]);
    }
    s
}

impl Harness {
    /// Waits until the backend runs a statement starting with `prefix`.
    pub fn wait_until_running(&self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let sql = format!(
            "select count(*) from pg_stat_activity where state = 'active' and query like '{}%'",
            prefix.replace('\'', "''")
        );
        while self.cluster.sql("app", &sql).unwrap() == "0" {
            assert!(
                Instant::now() < deadline,
                "{prefix} never started on the backend"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `identity` has `n` sessions, all ended; newest first.
    pub fn ended_sessions(&self, identity: &str, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let list: Vec<serde_json::Value> = serde_json::from_str(&self.cli_ok(&[
                "sessions",
                "list",
                "--identity",
                identity,
                "--json",
            ]))
            .unwrap();
            if list.len() == n && list.iter().all(|s| !s["end"].is_null()) {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "sessions of {identity} not recorded: {list:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One session with its statements, as `sessions show --json` prints it.
    pub fn session_detail(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["sessions", "show", id, "--json"])).unwrap()
    }
}

/// The starter policies (`examples/policies/starter.cedar`).
pub const STARTER_POLICY: &str = include_str!("../../../../examples/policies/starter.cedar");

/// The starter policies' approval route `dba` (request mode), approved by
/// the group `dba-leads`.
pub const DBA_ROUTE: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "request"
request_ttl = "1h"
valid_for = "15m"
"#;

/// A gateway with the starter policies and their `dba` route (plaintext on
/// loopback for raw clients) over an `orders (id int, note text)` table of
/// `rows` rows the backend login may change.
pub fn starter_with_orders(rows: u32) -> Harness {
    let h = Harness::with(Options {
        plaintext_on_loopback: true,
        policy: Some(STARTER_POLICY.into()),
        extra_config: DBA_ROUTE,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            &format!(
                "CREATE TABLE orders (id int PRIMARY KEY, note text);
                 INSERT INTO orders SELECT g, 'o' || g FROM generate_series(1, {rows}) g;
                 GRANT ALL ON orders TO app_owner;"
            ),
        )
        .unwrap();
    h
}
