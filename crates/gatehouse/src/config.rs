//! The gateway's TOML configuration: parsing, validation and resolution.
//!
//! Loading happens in two steps. [`RawConfig::parse`] checks the structure
//! (every section, unknown keys are errors) and is all the admin commands
//! need. [`RawConfig::resolve`] checks meaning and reads secrets and TLS files,
//! as `serve` and `check-config` do. Both report every problem they find, each
//! with the file, the key and the reason.

use gatehouse_policy::{PolicyEngine, PolicyHandle, PolicyMode};
use gatehouse_postgres::BackendTarget;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The key, as a dotted path (`connection[0].port`), or empty for the file itself.
    pub key: String,
    /// What is wrong and, where useful, how to fix it.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.reason)
        }
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigProblems(pub Vec<Problem>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    data_dir: Option<String>,
    api_listen: Option<String>,
    log_format: Option<String>,
    node_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListenersSection {
    postgres: Option<String>,
    http: Option<String>,
    ssh: Option<String>,
    mysql: Option<String>,
    ssh_idle_timeout: Option<String>,
    ssh_keepalive: Option<String>,
    ssh_certificate_ttl: Option<String>,
    #[serde(default)]
    plaintext_on_loopback: bool,
    handshake_timeout: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: String,
    key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    files: Vec<String>,
    #[serde(default)]
    mode: PolicyMode,
}

/// A structurally valid configuration (secrets not yet read).
#[derive(Debug, Clone)]
pub struct RawConfig {
    file: PathBuf,
    sha256: String,
    base: PathBuf,
    server: ServerSection,
    listeners: ListenersSection,
    tls: Option<TlsSection>,
    policy: Option<PolicySection>,
    masking: Option<masking::MaskingSection>,
    evidence: evidence::EvidenceSection,
    approval: approval::ApprovalSection,
    identity: identity::IdentitySection,
    limits: limits::LimitsSection,
    store: store::StoreSection,
    console: console::ConsoleSection,
    connections: Vec<connections::ConnectionSection>,
}

/// Where the client-facing certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files named in `[tls]`.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed certificate generated into the data directory.
    SelfSigned,
}

/// A fully checked configuration, ready to serve.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// SHA-256 of the file as read (hex), for the evidence log.
    pub sha256: String,
    /// Data directory (store, generated keys and certificates).
    pub data_dir: PathBuf,
    /// This node's id.
    pub node: NodeIdentity,
    /// Where tokens, sessions and approvals are kept.
    pub store: StoreSpec,
    /// REST API address.
    pub api_listen: SocketAddr,
    /// PostgreSQL listener address.
    pub postgres_listen: SocketAddr,
    /// HTTP listener address, when configured.
    pub http_listen: Option<SocketAddr>,
    /// Accept non-TLS clients from loopback addresses.
    pub plaintext_on_loopback: bool,
    /// Limit for a client's startup handshake.
    pub handshake_timeout: Duration,
    /// Client-facing certificate.
    pub tls: TlsSource,
    /// Backends, in file order.
    pub connections: Vec<Arc<BackendTarget>>,
    /// HTTP upstreams (`kind = "http"`), in file order; masking is attached at start.
    pub http_connections: Vec<gatehouse_http::HttpTarget>,
    /// SSH listener address, when configured.
    pub ssh_listen: Option<SocketAddr>,
    /// A quiet SSH caller connection is closed after this long.
    pub ssh_idle_timeout: Duration,
    /// Keepalives go to a quiet SSH caller this often.
    pub ssh_keepalive: Duration,
    /// How long an SSH certificate from `gatehouse ssh login` is valid.
    pub ssh_certificate_ttl: Duration,
    /// SSH hosts (`kind = "ssh"`), in file order; masking is attached at start.
    pub ssh_connections: Vec<Arc<gatehouse_ssh::SshTarget>>,
    /// MySQL listener address, when configured.
    pub mysql_listen: Option<SocketAddr>,
    /// MySQL and MariaDB servers (`kind = "mysql"`), in file order; masking is attached at start.
    pub mysql_connections: Vec<Arc<gatehouse_mysql::MysqlTarget>>,
    /// The policy, loaded and validated.
    pub policy: Arc<PolicyHandle>,
    /// Masking by connection name (connections without masking are absent).
    pub masking: HashMap<String, MaskingSpec>,
    /// The masking hash key file, when configured (else generated into the data directory).
    pub masking_key_file: Option<PathBuf>,
    /// How the evidence log is written.
    pub evidence: EvidenceSpec,
    /// Approval routes by name.
    pub approval_routes: Vec<gatehouse_core::ApprovalRoute>,
    /// Where approval notices are POSTed.
    pub approval_webhooks: Vec<WebhookSpec>,
    /// Trusted OIDC issuers.
    pub oidc_issuers: Vec<gatehouse_identity::oidc::IssuerSettings>,
    /// `[limits]`: what one caller can make the gateway hold or do.
    pub limits: Limits,
    /// `[console]`: the web console and its auditors.
    pub console: gatehouse_api::ConsoleSettings,
    /// Things that are valid but probably not meant.
    pub warnings: Vec<String>,
}

/// Default REST API address.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8089";
const DEFAULT_DATA_DIR: &str = "./gatehouse-data";
const MISSING_POLICY: &str = "no [policy] files: Gatehouse denies by default, so every connection \
    will be refused; add [policy] files = [\"policies/starter.cedar\"] \
    (examples/policies/starter.cedar is a starting point)";

impl RawConfig {
    /// Reads and structurally checks `file`.
    pub fn parse(file: &Path) -> Result<Self, ConfigProblems> {
        let problem = |key: &str, reason: String| Problem {
            file: file.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigProblems(vec![problem("", format!("cannot read the file: {e}"))]))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigProblems(vec![problem(
                "",
                format!("not valid TOML: {}", e.to_string().trim()),
            )])
        })?;
        let mut problems = Vec::new();
        let mut server = ServerSection::default();
        let mut listeners = ListenersSection::default();
        let mut tls = None;
        let mut policy = None;
        let mut masking = None;
        let mut evidence = evidence::EvidenceSection::default();
        let mut approval = approval::ApprovalSection::default();
        let mut identity = identity::IdentitySection::default();
        let mut limits = limits::LimitsSection::default();
        let mut store = store::StoreSection::default();
        let mut console = console::ConsoleSection::default();
        let mut connections = Vec::new();
        let mut saw_listeners = false;
        for (key, value) in table {
            match key.as_str() {
                "server" => section(&key, value, &mut problems, file).map(|s| server = s),
                "listeners" => {
                    saw_listeners = true;
                    section(&key, value, &mut problems, file).map(|s| listeners = s)
                }
                "tls" => section(&key, value, &mut problems, file).map(|s| tls = Some(s)),
                "policy" => section(&key, value, &mut problems, file).map(|s| policy = Some(s)),
                "masking" => section(&key, value, &mut problems, file).map(|s| masking = Some(s)),
                "evidence" => section(&key, value, &mut problems, file).map(|s| evidence = s),
                "approval" => section(&key, value, &mut problems, file).map(|s| approval = s),
                "identity" => section(&key, value, &mut problems, file).map(|s| identity = s),
                "limits" => section(&key, value, &mut problems, file).map(|s| limits = s),
                "store" => section(&key, value, &mut problems, file).map(|s| store = s),
                "console" => section(&key, value, &mut problems, file).map(|s| console = s),
                "connection" => {
                    match value {
                        toml::Value::Array(items) => {
                            for (i, item) in items.into_iter().enumerate() {
                                let k = format!("connection[{i}]");
                                if let Some(c) = section::<connections::ConnectionSection>(
                                    &k,
                                    item,
                                    &mut problems,
                                    file,
                                ) {
                                    connections.push(c);
                                }
                            }
                        }
                        _ => problems.push(problem(
                            "connection",
                            "must be an array of tables: write each as [[connection]]".into(),
                        )),
                    }
                    None
                }
                other => {
                    problems.push(problem(
                        other,
                        "unknown section; expected one of server, listeners, tls, policy, masking, evidence, approval, identity, limits, store, console, connection"
                            .into(),
                    ));
                    None
                }
            };
        }
        if !saw_listeners {
            problems.push(problem(
                "listeners",
                "missing: add [listeners] with postgres = \"127.0.0.1:15432\"".into(),
            ));
        }
        if !problems.is_empty() {
            return Err(ConfigProblems(problems));
        }
        let base = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            file: file.to_path_buf(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
            base,
            server,
            listeners,
            tls,
            policy,
            masking,
            evidence,
            approval,
            identity,
            limits,
            store,
            console,
            connections,
        })
    }

    /// The `[store]` section, checked (what `gatehouse store` needs).
    pub fn store(&self) -> Result<StoreSpec, ConfigProblems> {
        let mut problems = Vec::new();
        let spec = self.store.resolve(&|p| self.path(p), &mut |key, reason| {
            problems.push(Problem {
                file: self.file.clone(),
                key,
                reason,
            })
        });
        spec.filter(|_| problems.is_empty())
            .ok_or(ConfigProblems(problems))
    }

    /// This node's id, checked (generated ids are not yet kept).
    pub fn node(&self) -> Result<NodeIdentity, ConfigProblems> {
        let mut problems = Vec::new();
        let node = self.resolve_node(&mut |key, reason| {
            problems.push(Problem {
                file: self.file.clone(),
                key,
                reason,
            })
        });
        node.ok_or(ConfigProblems(problems))
    }

    fn resolve_node(&self, problem: &mut dyn FnMut(String, String)) -> Option<NodeIdentity> {
        node::resolve(
            self.server.node_id.as_deref(),
            self.evidence.node(),
            &self.data_dir(),
            problem,
        )
    }

    /// The trusted OIDC issuers, checked (what `identity inspect` needs).
    pub fn oidc_issuers(
        &self,
    ) -> Result<Vec<gatehouse_identity::oidc::IssuerSettings>, ConfigProblems> {
        let mut problems = Vec::new();
        let issuers = self
            .identity
            .resolve(&|p| self.path(p), &mut |key, reason| {
                problems.push(Problem {
                    file: self.file.clone(),
                    key,
                    reason,
                })
            });
        issuers.ok_or(ConfigProblems(problems))
    }

    /// The `[evidence]` section, checked (what the `audit` commands need).
    pub fn evidence(&self) -> Result<EvidenceSpec, ConfigProblems> {
        let mut problems = Vec::new();
        let mut problem = |key, reason| {
            problems.push(Problem {
                file: self.file.clone(),
                key,
                reason,
            })
        };
        let node = self.resolve_node(&mut problem);
        let spec = self.evidence.resolve(
            |p| self.path(p),
            &self.data_dir(),
            node.as_ref().map_or(node::PLACEHOLDER, |n| &n.id),
            &mut problem,
        );
        let spec = spec.filter(|_| node.is_some());
        spec.ok_or(ConfigProblems(problems))
    }

    /// The policy files named in `[policy]`, relative to the config file's folder.
    pub fn policy_files(&self) -> Option<Vec<PathBuf>> {
        self.policy
            .as_ref()
            .map(|p| p.files.iter().map(|f| self.path(f)).collect())
    }

    /// The policy files, or a problem naming what to add.
    pub fn require_policy_files(&self) -> Result<Vec<PathBuf>, ConfigProblems> {
        match self.policy_files() {
            Some(f) if !f.is_empty() => Ok(f),
            _ => Err(ConfigProblems(vec![Problem {
                file: self.file.clone(),
                key: "policy.files".into(),
                reason: MISSING_POLICY.into(),
            }])),
        }
    }

    /// The connections as written: name and kind (`postgres`, `http`, `mcp`).
    pub fn connection_kinds(&self) -> Vec<(String, String)> {
        self.connections
            .iter()
            .map(|c| (c.name.clone(), c.kind.clone()))
            .collect()
    }

    /// The data directory, relative paths taken from the config file's folder.
    pub fn data_dir(&self) -> PathBuf {
        self.path(self.server.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR))
    }

    /// Whether the gateway's log is JSON lines (`[server] log_format = "json"`)
    /// rather than text; checked by [`Self::resolve`].
    pub fn log_json(&self) -> bool {
        self.server.log_format.as_deref() == Some("json")
    }

    /// The HTTP listener's address as written (validated by [`Self::resolve`]).
    pub fn http_listen(&self) -> Option<&str> {
        self.listeners.http.as_deref()
    }

    /// The SSH listener's address as written (validated by [`Self::resolve`]).
    pub fn ssh_listen(&self) -> Option<&str> {
        self.listeners.ssh.as_deref()
    }

    /// The gateway's certificate file: `[tls] cert`, else the self-signed
    /// one the gateway generates into its data directory.
    pub fn tls_cert(&self) -> PathBuf {
        match &self.tls {
            Some(t) => self.path(&t.cert),
            None => self.data_dir().join("tls/gateway.pem"),
        }
    }

    /// The REST API address as written (validated by [`Self::resolve`]).
    pub fn api_listen(&self) -> &str {
        self.server
            .api_listen
            .as_deref()
            .unwrap_or(DEFAULT_API_LISTEN)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// Checks meaning, reads backend passwords and TLS material.
    pub fn resolve(&self) -> Result<GatewayConfig, ConfigProblems> {
        let mut problems = Vec::new();
        let mut problem = |key: String, reason: String| {
            problems.push(Problem {
                file: self.file.clone(),
                key,
                reason,
            })
        };

        let api_listen = parse_addr(self.api_listen())
            .map_err(|r| problem("server.api_listen".into(), r))
            .ok();
        let postgres_listen = match &self.listeners.postgres {
            Some(a) => parse_addr(a)
                .map_err(|r| problem("listeners.postgres".into(), r))
                .ok(),
            None => {
                problem("listeners.postgres".into(), "missing: the address to accept PostgreSQL clients on, e.g. \"127.0.0.1:15432\"".into());
                None
            }
        };
        if let Some(f) = &self.server.log_format {
            if !matches!(f.as_str(), "text" | "json") {
                problem(
                    "server.log_format".into(),
                    format!("{f:?} is not a log format: use \"text\" or \"json\""),
                );
            }
        }
        let http_listen = self.listeners.http.as_ref().and_then(|a| {
            parse_addr(a)
                .map_err(|r| problem("listeners.http".into(), r))
                .ok()
        });
        let ssh_listen = self.listeners.ssh.as_ref().and_then(|a| {
            parse_addr(a)
                .map_err(|r| problem("listeners.ssh".into(), r))
                .ok()
        });
        let mysql_listen = self.listeners.mysql.as_ref().and_then(|a| {
            parse_addr(a)
                .map_err(|r| problem("listeners.mysql".into(), r))
                .ok()
        });
        let mut ssh_duration = |key: &str, v: &Option<String>, default: u64| match v {
            Some(t) => parse_duration(t)
                .map_err(|r| problem(format!("listeners.{key}"), r))
                .unwrap_or_default(),
            None => Duration::from_secs(default),
        };
        let ssh_idle_timeout =
            ssh_duration("ssh_idle_timeout", &self.listeners.ssh_idle_timeout, 1800);
        let ssh_keepalive = ssh_duration("ssh_keepalive", &self.listeners.ssh_keepalive, 30);
        let ssh_certificate_ttl = ssh_duration(
            "ssh_certificate_ttl",
            &self.listeners.ssh_certificate_ttl,
            600,
        );
        if !(60..=86_400).contains(&ssh_certificate_ttl.as_secs()) {
            problem(
                "listeners.ssh_certificate_ttl".into(),
                "between 1m and 24h: certificates are meant to be short-lived".into(),
            );
        }
        let handshake_timeout = match &self.listeners.handshake_timeout {
            Some(t) => parse_duration(t)
                .map_err(|r| problem("listeners.handshake_timeout".into(), r))
                .ok(),
            None => Some(Duration::from_secs(30)),
        };

        let tls = match &self.tls {
            None => Some(TlsSource::SelfSigned),
            Some(t) => {
                let cert = self.path(&t.cert);
                let key = self.path(&t.key);
                match (std::fs::read(&cert), std::fs::read(&key)) {
                    (Ok(c), Ok(k)) => match gatehouse_postgres::server_config(&c, &k) {
                        Ok(_) => Some(TlsSource::Files { cert, key }),
                        Err(e) => {
                            problem(
                                "tls".into(),
                                format!(
                                    "certificate {} and key {} cannot be used: {e}",
                                    cert.display(),
                                    key.display()
                                ),
                            );
                            None
                        }
                    },
                    (c, k) => {
                        if let Err(e) = c {
                            problem(
                                "tls.cert".into(),
                                format!("cannot read {}: {e}", cert.display()),
                            );
                        }
                        if let Err(e) = k {
                            problem(
                                "tls.key".into(),
                                format!("cannot read {}: {e}", key.display()),
                            );
                        }
                        None
                    }
                }
            }
        };

        let policy = match &self.policy {
            Some(p) if !p.files.is_empty() => {
                let paths: Vec<PathBuf> = p.files.iter().map(|f| self.path(f)).collect();
                match PolicyEngine::load(&paths) {
                    Ok(engine) => Some(PolicyHandle::new(engine, paths, p.mode)),
                    Err(e) => {
                        for pr in e.0 {
                            problem("policy.files".into(), pr.to_string());
                        }
                        None
                    }
                }
            }
            _ => match PolicyEngine::from_sources(&[]) {
                // No policies: valid, but default deny refuses every connection.
                Ok(engine) => Some(PolicyHandle::new(engine, Vec::new(), PolicyMode::Enforce)),
                Err(e) => {
                    problem("policy".into(), e.to_string());
                    None
                }
            },
        };

        if self.connections.is_empty() {
            problem(
                "connection".into(),
                "no [[connection]] configured: add at least one backend for callers to reach"
                    .into(),
            );
        }
        let masking_global =
            masking::resolve_global(self.masking.as_ref(), |p| self.path(p), &mut problem);
        let node = self.resolve_node(&mut problem);
        let store = self.store.resolve(&|p| self.path(p), &mut problem);
        // Checked with a stand-in id when the node's is wrong, so that
        // every problem of the section is named at once.
        let evidence = self.evidence.resolve(
            |p| self.path(p),
            &self.data_dir(),
            node.as_ref().map_or(node::PLACEHOLDER, |n| &n.id),
            &mut problem,
        );
        let approval_routes = self.approval.resolve(&mut problem);

        let approval_webhooks = self.approval.webhooks(&mut problem);
        let oidc_issuers = self.identity.resolve(&|p| self.path(p), &mut problem);
        let console =
            self.console
                .resolve(oidc_issuers.as_deref(), &|p| self.path(p), &mut problem);
        let limits = self
            .limits
            .resolve()
            .map_err(|(key, reason)| problem(key, reason))
            .unwrap_or_default();
        let policy = match (policy, &approval_routes) {
            (Some(handle), Some(routes)) => {
                let names: Vec<String> = routes.iter().map(|r| r.name.clone()).collect();
                let (engine, _) = handle.current();
                for (policy_id, route) in PolicyHandle::undefined_routes(&engine, &names) {
                    problem(
                        "policy.files".into(),
                        format!("policy {policy_id} sends statements to approval route {route:?}, which no [[approval.route]] defines: add one (name = {route:?}, approvers = [\"…\"])"),
                    );
                }
                Some(Arc::new(handle.with_routes(names)))
            }
            (policy, _) => policy.map(Arc::new),
        };
        let mut masking_specs = HashMap::new();
        let mut names = HashSet::new();
        let mut connections = Vec::new();
        let mut http_connections = Vec::new();
        let mut ssh_connections = Vec::new();
        let mut mysql_connections = Vec::new();
        for (i, c) in self.connections.iter().enumerate() {
            let target = c.resolve(i, &mut names, |p| self.path(p), &mut problem);
            let mut ok = true;
            if let Some(m) = &c.masking {
                let prefix = format!("connection[{i}].masking");
                match masking::resolve_connection(
                    m,
                    &masking_global,
                    &prefix,
                    &c.kind,
                    &mut problem,
                ) {
                    Some(spec) => {
                        masking_specs.insert(c.name.clone(), spec);
                    }
                    None => ok = false,
                }
            }
            match (ok, target) {
                (true, Some(connections::Resolved::Postgres(t))) => connections.push(Arc::new(t)),
                (true, Some(connections::Resolved::Http(t))) => {
                    if self.listeners.http.is_none() {
                        problem(
                            format!("connection[{i}].kind"),
                            "http and mcp connections need an HTTP listener: add http = \"127.0.0.1:18080\" to [listeners]".into(),
                        );
                    }
                    http_connections.push(t);
                }
                (true, Some(connections::Resolved::Ssh(t))) => {
                    if self.listeners.ssh.is_none() {
                        problem(
                            format!("connection[{i}].kind"),
                            "ssh connections need an SSH listener: add ssh = \"127.0.0.1:2222\" to [listeners]".into(),
                        );
                    }
                    ssh_connections.push(Arc::new(t));
                }
                (true, Some(connections::Resolved::Mysql(t))) => {
                    if self.listeners.mysql.is_none() {
                        problem(
                            format!("connection[{i}].kind"),
                            "mysql connections need a MySQL listener: add mysql = \"127.0.0.1:13306\" to [listeners]".into(),
                        );
                    }
                    mysql_connections.push(Arc::new(t));
                }
                _ => {}
            }
        }

        match (
            api_listen,
            postgres_listen,
            handshake_timeout,
            tls,
            policy,
            evidence,
            approval_routes,
            approval_webhooks,
            oidc_issuers,
            node,
            store,
        ) {
            (
                Some(api_listen),
                Some(postgres_listen),
                Some(handshake_timeout),
                Some(tls),
                Some(policy),
                Some(evidence),
                Some(approval_routes),
                Some(approval_webhooks),
                Some(oidc_issuers),
                Some(node),
                Some(store),
            ) if problems.is_empty() => Ok(GatewayConfig {
                file: self.file.clone(),
                sha256: self.sha256.clone(),
                data_dir: self.data_dir(),
                node,
                store,
                api_listen,
                postgres_listen,
                http_listen,
                plaintext_on_loopback: self.listeners.plaintext_on_loopback,
                handshake_timeout,
                tls,
                connections,
                http_connections,
                ssh_listen,
                ssh_idle_timeout,
                ssh_keepalive,
                ssh_certificate_ttl,
                ssh_connections,
                mysql_listen,
                mysql_connections,
                warnings: if self.policy.is_none() {
                    vec![format!("{}: policy: {MISSING_POLICY}", self.file.display())]
                } else {
                    Vec::new()
                },
                policy,
                masking: masking_specs,
                masking_key_file: masking_global.hash_key_file,
                evidence,
                approval_routes,
                approval_webhooks,
                oidc_issuers,
                limits,
                console,
            }),
            _ => Err(ConfigProblems(problems)),
        }
    }
}

fn section<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
    problems: &mut Vec<Problem>,
    file: &Path,
) -> Option<T> {
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(Problem {
                file: file.to_path_buf(),
                key: key.to_string(),
                reason: e.message().trim().to_string(),
            });
            None
        }
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address of the form IP:PORT, e.g. \"127.0.0.1:15432\"")
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than zero".into()),
        Err(e) => Err(format!(
            "{s:?} is not a duration such as \"10s\" or \"2m\": {e}"
        )),
    }
}

mod approval;
mod connections;
mod console;
mod evidence;
mod http;
mod identity;
mod limits;
mod masking;
mod node;
mod segments;
mod sinks;
mod ssh;
mod store;
pub use approval::{WebhookFormat, WebhookSpec};
pub use evidence::EvidenceSpec;
pub use limits::Limits;
pub use masking::{read_hash_key, MaskingSpec};
pub use node::{NodeIdentity, NODE_ID_FILE};
pub use segments::{Archive, SegmentSpec};
pub use sinks::{SinkSpec, SinkTarget};
pub use store::{SharedStore, StoreSpec, HEARTBEAT};
