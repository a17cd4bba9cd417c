//! Wiring: store, recorder, TLS, the PostgreSQL listener and the REST API.

mod data_dir;
mod tasks;

use data_dir::{ensure_admin_key, masking_key, prepare_data_dir};
use tasks::{expire_approvals, reload_on_sighup};

use crate::certs;
use crate::config::{GatewayConfig, TlsSource};
use anyhow::{Context, Result};
use gatehouse_api::ApiState;
use gatehouse_core::{ApprovalDesk, AuditEvent, AuditTrail, SessionRecorder, Store};
use gatehouse_evidence::EvidenceLog;
use gatehouse_mask::MaskingEngine;
use gatehouse_postgres::{ConnectionMasking, GateSettings, ListenerSettings, PostgresGateway};
use gatehouse_session::Gatekeeper;
use gatehouse_sql::Analyzer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Statements whose analysis is cached (by text).
const ANALYSIS_CACHE_ENTRIES: usize = 10_000;

/// File name of the masking hash key inside the data directory.
pub const MASKING_KEY_FILE: &str = "masking.key";

/// File name of the admin key inside the data directory.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// A gateway started in this process.
pub struct RunningGateway {
    /// Where the PostgreSQL listener accepts clients.
    pub postgres_addr: SocketAddr,
    /// Where the REST API listens.
    pub api_addr: SocketAddr,
    /// Where the HTTP listener accepts callers, when configured.
    pub http_addr: Option<SocketAddr>,
    /// Where the SSH listener accepts callers, when configured.
    pub ssh_addr: Option<SocketAddr>,
    /// Where the MySQL listener accepts callers, when configured.
    pub mysql_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The tasks that talk to a shared store in the background (heartbeat,
    /// approval changes, witnessing, recordings): a store call hung on a
    /// silent network must not hold the stop, so they get a grace period.
    background: Vec<JoinHandle<()>>,
    /// Keeps OIDC keys fresh; never ends by itself, so it is aborted at stop.
    key_refresh: Option<JoinHandle<()>>,
    recorder_task: JoinHandle<()>,
    recorder_stop: gatehouse_core::RecorderStop,
    store: crate::fleet::OpenStore,
    evidence: crate::evidence::OpenLog,
    /// Copies the log to a shared store; awaited (briefly) after it closes.
    replicator: Option<JoinHandle<()>>,
}

/// Starts the gateway described by `config`.
pub async fn start(config: &GatewayConfig) -> Result<RunningGateway> {
    prepare_data_dir(&config.data_dir)?;
    let admin_key = ensure_admin_key(&config.data_dir)?;
    config.node.keep().with_context(|| {
        format!(
            "keeping this node's id in {}",
            config.data_dir.join(crate::config::NODE_ID_FILE).display()
        )
    })?;
    let opened = crate::fleet::OpenStore::open(config).await?;
    let store: Arc<dyn Store> = opened.dyn_store();
    let started_at = crate::fleet::register(store.as_ref(), config).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let replica_cursor = config
        .data_dir
        .join(crate::evidence::sinks::CURSOR_DIR)
        .join(crate::fleet::replicator::REPLICA_CURSOR);
    let holds = match &opened {
        crate::fleet::OpenStore::Shared(..) => vec![replica_cursor.clone()],
        crate::fleet::OpenStore::Embedded(_) => Vec::new(),
    };
    let evidence = crate::evidence::open(&config.evidence, &config.data_dir, &holds).await?;
    let fleet_evidence = match &opened {
        crate::fleet::OpenStore::Shared(pg, _) => Some(
            crate::fleet::start_evidence(
                pg,
                config,
                &evidence,
                replica_cursor,
                shutdown.subscribe(),
            )
            .await?,
        ),
        crate::fleet::OpenStore::Embedded(_) => None,
    };
    crate::fleet::end_earlier_runs(store.as_ref(), started_at).await?;
    let (replicator, witness_task) = match fleet_evidence {
        Some(f) => (Some(f.replicator), Some(f.witness)),
        None => (None, None),
    };
    let audit: Arc<dyn AuditTrail> = Arc::new(evidence.log.clone());
    audit
        .append(vec![
            AuditEvent::config_loaded(&config.file.display().to_string(), &config.sha256),
            gatehouse_api::policy_event("start", &config.policy),
        ])
        .await
        .context("writing the first events to the evidence log")?;

    let (cert, key) = match &config.tls {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned => certs::ensure_self_signed(&config.data_dir)?,
    };
    let cert_pem = std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pem = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
    let tls = gatehouse_postgres::server_config(&cert_pem, &key_pem)
        .with_context(|| format!("loading TLS certificate {}", cert.display()))?;
    let tls_for_http = http_server_tls(&tls);

    let pg_listener = TcpListener::bind(config.postgres_listen)
        .await
        .with_context(|| {
            format!(
                "{}: listeners.postgres: cannot listen on {}",
                config.file.display(),
                config.postgres_listen
            )
        })?;
    let api_listener = TcpListener::bind(config.api_listen)
        .await
        .with_context(|| {
            format!(
                "{}: server.api_listen: cannot listen on {}",
                config.file.display(),
                config.api_listen
            )
        })?;
    let http_listener = match config.http_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{}: listeners.http: cannot listen on {addr}",
                config.file.display()
            )
        })?),
        None => None,
    };
    let http_addr = http_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let ssh_listener = match config.ssh_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{}: listeners.ssh: cannot listen on {addr}",
                config.file.display()
            )
        })?),
        None => None,
    };
    let ssh_addr = ssh_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let mysql_listener = match config.mysql_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{}: listeners.mysql: cannot listen on {addr}",
                config.file.display()
            )
        })?),
        None => None,
    };
    let mysql_addr = mysql_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let postgres_addr = pg_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let mut masking = HashMap::new();
    let mut http_targets = HashMap::new();
    let kube = |t: &gatehouse_http::HttpTarget| t.dialect == gatehouse_http::Dialect::Kubernetes;
    let hash_key = if config.masking.is_empty()
        && !config.http_connections.iter().any(kube)
        && config.ssh_connections.is_empty()
    {
        None
    } else {
        Some(masking_key(config)?)
    };
    for target in &config.http_connections {
        let mut t = target.clone();
        if let (true, Some(key)) = (kube(&t), &hash_key) {
            // Secret values are always masked on a kubernetes connection;
            // its [connection.masking] adds detectors, rules and exemptions.
            let spec = config.masking.get(&t.name);
            let m = gatehouse_http::kube_masking(
                spec.map(|s| s.detectors.clone()).unwrap_or_default(),
                spec.map(|s| s.rules.clone()).unwrap_or_default(),
                key.clone(),
                spec.map(|s| s.exempt_groups.clone()).unwrap_or_default(),
            )
            .with_context(|| format!("masking for connection {}", t.name))?;
            t.masking = Some(Arc::new(m));
        } else if let (Some(spec), Some(key)) = (config.masking.get(&t.name), &hash_key) {
            let engine = spec
                .engine(key.clone())
                .with_context(|| format!("masking for connection {}", t.name))?;
            t.masking = Some(Arc::new(gatehouse_http::HttpMasking {
                engine: Arc::new(engine),
                secrets: None,
                exempt_groups: spec.exempt_groups.clone(),
            }));
        }
        http_targets.insert(t.name.clone(), Arc::new(t));
    }
    let mut ssh_targets = HashMap::new();
    for target in &config.ssh_connections {
        let mut t = gatehouse_ssh::SshTarget::clone(target);
        if let Some(key) = &hash_key {
            // Secret values are always masked in a shell's or command's
            // output; [connection.masking] adds detectors.
            let detectors = config
                .masking
                .get(&t.name)
                .map(|s| s.detectors.clone())
                .unwrap_or_default();
            t.masking = Arc::new(
                gatehouse_ssh::ssh_masking(detectors, key.clone())
                    .with_context(|| format!("masking for connection {}", t.name))?,
            );
        }
        ssh_targets.insert(t.name.clone(), Arc::new(t));
    }
    let mut mysql_targets = HashMap::new();
    for target in &config.mysql_connections {
        let mut t = gatehouse_mysql::MysqlTarget::clone(target);
        if let (Some(key), Some(spec)) = (&hash_key, config.masking.get(&t.name)) {
            t.masking =
                Some(Arc::new(spec.engine(key.clone()).with_context(|| {
                    format!("masking for connection {}", t.name)
                })?));
            t.exempt_groups = spec.exempt_groups.clone();
        }
        mysql_targets.insert(t.name.clone(), Arc::new(t));
    }
    let sensitive_columns = Arc::new(
        gatehouse_core::SensitiveColumns::open(store.clone(), audit.clone())
            .await
            .context("reading the found sensitive columns from the store")?,
    );
    let mut sampler = gatehouse_postgres::TableSampler::new();
    if let Some(key) = hash_key {
        for target in &config.connections {
            if let Some(spec) = config.masking.get(&target.name) {
                let engine = spec
                    .engine(key.clone())
                    .with_context(|| format!("masking for connection {}", target.name))?;
                let mut connection_masking = ConnectionMasking::new(
                    Arc::new(engine),
                    spec.exempt_groups.clone(),
                    spec.trusted_functions.clone(),
                    target.clone(),
                );
                if spec.discover_columns {
                    connection_masking = connection_masking.with_discovery(
                        gatehouse_postgres::Discovery::new(sensitive_columns.clone(), &target.name),
                    );
                }
                let connection_masking = Arc::new(connection_masking);
                sampler.add(target.clone(), connection_masking.clone());
                masking.insert(target.name.clone(), connection_masking);
            }
        }
    }
    let (recorder, recorder_task) = SessionRecorder::spawn(store.clone(), audit.clone(), 8192);
    let recorder_stop = recorder.stop_signal();
    let follow_from = crate::fleet::store_clock(store.as_ref()).await?;
    let mut desk = ApprovalDesk::open(config.approval_routes.clone(), store.clone(), audit.clone())
        .await
        .context("reading the approval requests from the store")?
        .with_filing_limit(config.limits.approval_requests_per_minute)
        .with_pending_limit(config.limits.max_pending_approvals_per_identity);
    if !config.approval_webhooks.is_empty() {
        let (tx, rx) = tokio::sync::mpsc::channel(crate::notify::QUEUE);
        crate::notify::start(&config.approval_webhooks, rx)?;
        desk = desk.with_notices(tx);
    }
    let approvals = Arc::new(desk);
    let (authenticator, oidc_task) = crate::identity::authenticator(config, store.clone())?;
    // One login sequence and one count of sessions for every listener.
    let gatekeeper = Gatekeeper::new(
        authenticator.clone(),
        config.policy.clone(),
        recorder,
        Some(approvals.clone()),
    )
    .with_max_sessions_per_identity(config.limits.session.max_sessions_per_identity)
    .with_plaintext_on_loopback(config.plaintext_on_loopback)
    .with_failed_login_limit(config.limits.failed_logins_per_minute);
    let settings = ListenerSettings {
        tls,
        connections: config
            .connections
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect(),
        handshake_timeout: config.handshake_timeout,
        gate: GateSettings {
            analyzer: Arc::new(
                Analyzer::new(ANALYSIS_CACHE_ENTRIES)
                    .with_max_len(config.limits.session.max_statement_size),
            ),
            policy: config.policy.clone(),
            functions: Arc::default(),
        },
        masking,
        record_masking: Arc::new(MaskingEngine::secrets_only()),
        limits: config.limits.session.clone(),
    };
    let http_task = http_listener.map(|listener| {
        let settings = gatehouse_http::HttpSettings {
            tls: tls_for_http.clone(),
            plaintext_on_loopback: config.plaintext_on_loopback,
            connections: http_targets,
            policy: config.policy.clone(),
            record_masking: Arc::new(MaskingEngine::secrets_only()),
            max_request_body: config.limits.session.max_message_size as usize,
            max_masked_value: config.limits.session.max_masked_row_size as usize,
            header_timeout: config.handshake_timeout,
            max_connections: config.limits.session.max_connections as usize,
            recordings: config.data_dir.join("recordings"),
        };
        let gateway = gatehouse_http::HttpGateway::new(settings, gatekeeper.clone());
        let rx = shutdown_rx.clone();
        tokio::spawn(async move { gateway.serve(listener, rx).await })
    });
    let ssh_ca = match &ssh_listener {
        Some(_) => {
            let path = config.data_dir.join(gatehouse_ssh::CA_KEY_FILE);
            Some(
                gatehouse_ssh::CertificateAuthority::load_or_create(&path)
                    .with_context(|| format!("the SSH CA key {}", path.display()))?,
            )
        }
        None => None,
    };
    let ssh_task = match (ssh_listener, ssh_ca.clone()) {
        (Some(listener), Some(ca)) => {
            let key_path = config.data_dir.join(gatehouse_ssh::HOST_KEY_FILE);
            let host_key = gatehouse_ssh::load_or_create_host_key(&key_path)
                .with_context(|| format!("the SSH host key {}", key_path.display()))?;
            let settings = gatehouse_ssh::SshSettings {
                host_key,
                connections: ssh_targets,
                policy: config.policy.clone(),
                record_masking: Arc::new(MaskingEngine::secrets_only()),
                recordings: config.data_dir.join("recordings"),
                idle_timeout: config.ssh_idle_timeout,
                keepalive: config.ssh_keepalive,
                max_connections: config.limits.session.max_connections as usize,
                login_timeout: config.handshake_timeout,
                ca,
            };
            let gateway = gatehouse_ssh::SshGateway::new(settings, gatekeeper.clone());
            let rx = shutdown_rx.clone();
            Some(tokio::spawn(
                async move { gateway.serve(listener, rx).await },
            ))
        }
        _ => None,
    };
    let mysql_task = mysql_listener.map(|listener| {
        let settings = gatehouse_mysql::MysqlSettings {
            tls: settings.tls.clone(),
            connections: mysql_targets,
            policy: config.policy.clone(),
            record_masking: Arc::new(MaskingEngine::secrets_only()),
            login_timeout: config.handshake_timeout,
            max_message: config.limits.session.max_message_size as usize,
            max_masked_row: config.limits.session.max_masked_row_size as usize,
            max_connections: config.limits.session.max_connections as usize,
        };
        let gateway = gatehouse_mysql::MysqlGateway::new(settings, gatekeeper.clone());
        let rx = shutdown_rx.clone();
        tokio::spawn(async move { gateway.serve(listener, rx).await })
    });
    let gateway = PostgresGateway::new(settings, gatekeeper);
    let pg_task = {
        let rx = shutdown_rx.clone();
        tokio::spawn(async move { gateway.serve(pg_listener, rx).await })
    };
    let store_for_tasks = store.clone();
    let api_task = {
        let mut rx = shutdown_rx;
        let state = ApiState {
            store,
            admin_key,
            policy: config.policy.clone(),
            audit: audit.clone(),
            connections: config
                .connections
                .iter()
                .map(|c| (c.name.clone(), "postgres".to_string()))
                .chain(
                    config
                        .http_connections
                        .iter()
                        .map(|c| (c.name.clone(), c.dialect.kind().to_string())),
                )
                .chain(
                    config
                        .ssh_connections
                        .iter()
                        .map(|c| (c.name.clone(), "ssh".to_string())),
                )
                .chain(
                    config
                        .mysql_connections
                        .iter()
                        .map(|c| (c.name.clone(), "mysql".to_string())),
                )
                .collect(),
            approvals: approvals.clone(),
            authenticator,
            evidence: Some(evidence.log.clone()),
            sensitive_columns,
            sampler: Some(Arc::new(sampler)),
            recordings: config.data_dir.join("recordings"),
            ssh_ca: ssh_ca.map(|ca| (ca, config.ssh_certificate_ttl)),
            console: Arc::new(gatehouse_api::Console::new(config.console.clone())),
            evidence_review: Some(Arc::new(crate::evidence::review::LogReview::new(
                &config.evidence,
                &config.data_dir,
                &config.file,
            )?)),
        };
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = gatehouse_api::serve(api_listener, state, stop).await {
                tracing::error!(error = %e, "REST API stopped");
            }
        })
    };
    let follow_task = tokio::spawn(crate::fleet::follow_approvals(
        store_for_tasks.clone(),
        approvals.clone(),
        follow_from,
        shutdown.subscribe(),
    ));
    let recordings_task = matches!(opened, crate::fleet::OpenStore::Shared(..)).then(|| {
        tokio::spawn(crate::fleet::share_recordings(
            store_for_tasks.clone(),
            config.data_dir.join("recordings"),
            shutdown.subscribe(),
        ))
    });
    // Only other nodes read heartbeats: the embedded store's one node
    // registers at start and marks its stop.
    let heartbeat_task = match &opened {
        crate::fleet::OpenStore::Shared(_, lost_after) => {
            Some(tokio::spawn(crate::fleet::heartbeat(
                store_for_tasks,
                config.clone(),
                started_at,
                *lost_after,
                shutdown.subscribe(),
            )))
        }
        crate::fleet::OpenStore::Embedded(_) => None,
    };
    let expiry_task = tokio::spawn(expire_approvals(approvals, shutdown.subscribe()));
    let reload_task = tokio::spawn(reload_on_sighup(
        config.policy.clone(),
        audit.clone(),
        shutdown.subscribe(),
    ));
    let (engine, _) = config.policy.current();
    for f in engine.files() {
        tracing::info!(file = %f.path.display(), sha256 = %f.sha256, policies = f.policies, "policy loaded");
    }
    audit
        .append(vec![AuditEvent::gateway_started(
            env!("CARGO_PKG_VERSION"),
            &[
                format!("postgres {postgres_addr}"),
                format!("api {api_addr}"),
            ]
            .into_iter()
            .chain(http_addr.map(|a| format!("http {a}")))
            .chain(ssh_addr.map(|a| format!("ssh {a}")))
            .chain(mysql_addr.map(|a| format!("mysql {a}")))
            .collect::<Vec<_>>(),
        )])
        .await
        .context("writing to the evidence log")?;
    tracing::info!(
        postgres = %postgres_addr, api = %format!("http://{api_addr}"),
        connections = config.connections.len(), policy_mode = config.policy.mode().as_str(),
        "gatehouse started"
    );
    Ok(RunningGateway {
        postgres_addr,
        api_addr,
        http_addr,
        ssh_addr,
        mysql_addr,
        shutdown,
        tasks: [pg_task, api_task, reload_task, expiry_task]
            .into_iter()
            .chain(http_task)
            .chain(ssh_task)
            .chain(mysql_task)
            .collect(),
        background: std::iter::once(follow_task)
            .chain(heartbeat_task)
            .chain(recordings_task)
            .chain(witness_task)
            .collect(),
        key_refresh: oidc_task,
        recorder_task,
        recorder_stop,
        store: opened,
        evidence,
        replicator,
    })
}

impl RunningGateway {
    /// Stops accepting, ends every session, and waits until all records are written.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        // A store that stays unwritable must not keep the sessions (and so
        // the gateway) from ending.
        self.recorder_stop.stopping();
        if let Some(t) = self.key_refresh {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        let deadline = tokio::time::Instant::now() + crate::fleet::REPLICA_GRACE;
        for mut t in self.background {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                tracing::warn!(
                    "a task waiting on the shared store did not stop in time; it is cut short"
                );
                t.abort();
            }
        }
        // Every session (and so every recorder handle) is gone: the writer drains and ends.
        let _ = self.recorder_task.await;
        let log: &EvidenceLog = &self.evidence.log;
        if let Err(e) = log
            .append(vec![AuditEvent::gateway_stopped("shutdown")])
            .await
        {
            tracing::error!(error = %e, "could not log the gateway stopping");
        }
        // Seals the log with a final checkpoint, hands it to the witnesses
        // and lets the sinks catch up.
        self.evidence.close().await;
        if let Some(mut replicator) = self.replicator {
            let grace = crate::fleet::REPLICA_GRACE;
            if tokio::time::timeout(grace, &mut replicator).await.is_err() {
                tracing::warn!("the last evidence entries did not reach the shared store in time; they are copied at the next start");
                replicator.abort();
            }
        }
        if let Err(e) = self
            .store
            .dyn_store()
            .node_stopped(gatehouse_core::Timestamp::now())
            .await
        {
            tracing::error!(error = %e, "could not mark this node stopped in the store");
        }
        self.store.close().await;
        tracing::info!("gatehouse stopped");
    }
}

/// Runs until SIGINT or SIGTERM, then stops cleanly.
pub async fn run(config: &GatewayConfig) -> Result<()> {
    let gw = start(config).await?;
    wait_for_signal().await?;
    tracing::info!("shutting down");
    gw.stop().await;
    Ok(())
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
pub async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// The PostgreSQL listener's TLS settings for HTTP callers: the same
/// certificate, offering HTTP/1.1 by ALPN.
fn http_server_tls(pg: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    let mut c = (**pg).clone();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// Completes once `rx` reads true; the watch guard is dropped inside so the future stays `Send`.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
