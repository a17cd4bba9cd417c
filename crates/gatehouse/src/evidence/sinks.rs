//! The transports of live sinks: HTTP (batches of lines, POSTed) and syslog
//! (RFC 5424 over TCP, RFC 6587 octet counting). Cursors, ordering and
//! retries are `gatehouse_evidence::spawn_sink`'s.

use crate::config::{EvidenceSpec, SinkSpec, SinkTarget};
use anyhow::{Context, Result};
use async_trait::async_trait;
use gatehouse_core::EvidenceStore;
use gatehouse_evidence::export::Format;
use gatehouse_evidence::{spawn_sink, EvidenceLog, Sink, SinkEvent, SinkSettings};
use gatehouse_store::SqliteEvidenceStore;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Where the sinks' cursors live, under `data_dir`.
pub const CURSOR_DIR: &str = "sinks";

/// The cursor file of sink `name`.
pub fn cursor_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(CURSOR_DIR).join(format!("{name}.next"))
}

/// Starts every configured sink, reading the log at `log_file` through its
/// own read-only connection (so deliveries never wait on the writer's).
pub async fn start(
    spec: &EvidenceSpec,
    data_dir: &Path,
    log_file: &Path,
    log: &EvidenceLog,
) -> Result<Vec<JoinHandle<()>>> {
    if spec.sinks.is_empty() {
        return Ok(Vec::new());
    }
    let dir = data_dir.join(CURSOR_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store: Arc<dyn EvidenceStore> = Arc::new(
        SqliteEvidenceStore::open_read_only(log_file)
            .await
            .with_context(|| format!("opening {} for the sinks", log_file.display()))?,
    );
    let mut tasks = Vec::new();
    for s in &spec.sinks {
        let settings = SinkSettings {
            name: s.name.clone(),
            format: s.format,
            batch_max: s.batch_max,
            cursor: cursor_path(data_dir, &s.name),
        };
        let task = spawn_sink(
            transport(s, &spec.node)?,
            settings,
            store.clone(),
            log.committed(),
        )
        .await
        .with_context(|| format!("starting evidence sink {:?}", s.name))?;
        tasks.push(task);
    }
    Ok(tasks)
}

fn transport(s: &SinkSpec, node: &str) -> Result<Box<dyn Sink>> {
    Ok(match &s.target {
        SinkTarget::Http {
            url,
            bearer_token_file,
        } => {
            let token = match bearer_token_file {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            Box::new(HttpSink {
                name: s.name.clone(),
                url: url.clone(),
                token,
                content_type: match s.format {
                    Format::Jsonl | Format::Ocsf => "application/x-ndjson",
                    Format::Cef => "text/plain; charset=utf-8",
                },
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .context("building the HTTP client for a sink")?,
            })
        }
        SinkTarget::Syslog { address } => Box::new(SyslogSink {
            address: address.clone(),
            hostname: syslog_token(node, 255),
            stream: None,
        }),
    })
}

/// POSTs each batch as lines; the headers name the sequence numbers so a
/// receiver can drop a batch it has already taken.
struct HttpSink {
    name: String,
    url: String,
    token: Option<String>,
    content_type: &'static str,
    client: reqwest::Client,
}

#[async_trait]
impl Sink for HttpSink {
    fn describe(&self) -> String {
        format!("http {}", super::redacted(&self.url))
    }

    async fn deliver(&mut self, batch: &[SinkEvent]) -> Result<(), String> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let mut body = String::with_capacity(batch.iter().map(|e| e.line.len() + 1).sum());
        for e in batch {
            body.push_str(&e.line);
            body.push('\n');
        }
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, self.content_type)
            .header("Gatehouse-Sink", &self.name)
            .header("Gatehouse-Node", &first.entry.node)
            .header("Gatehouse-First-Seq", first.entry.seq)
            .header("Gatehouse-Last-Seq", last.entry.seq)
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let answer = req.send().await.map_err(|e| e.without_url().to_string())?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {}", answer.status()))
        }
    }
}

/// RFC 5424 messages over one TCP connection, reconnected after any error.
/// TCP syslog has no acknowledgement: bytes the server's kernel took but the
/// server never read are lost if it dies at that moment (see docs/evidence.md).
struct SyslogSink {
    address: String,
    hostname: String,
    stream: Option<TcpStream>,
}

/// Facility `authpriv` (10): security and authorization messages.
const FACILITY: u8 = 10;
/// Our structured-data ID; 32473 is the private enterprise number RFC 5612
/// sets aside for examples, until Gatehouse has its own.
const SD_ID: &str = "gatehouse@32473";

#[async_trait]
impl Sink for SyslogSink {
    fn describe(&self) -> String {
        format!("syslog tcp {}", self.address)
    }

    async fn deliver(&mut self, batch: &[SinkEvent]) -> Result<(), String> {
        let mut frames = Vec::new();
        for e in batch {
            let msg = self.message(e);
            frames.extend_from_slice(format!("{} ", msg.len()).as_bytes());
            frames.extend_from_slice(msg.as_bytes());
        }
        let stream = match &mut self.stream {
            Some(s) => s,
            None => self.stream.insert(
                TcpStream::connect(&self.address)
                    .await
                    .map_err(|e| format!("cannot connect: {e}"))?,
            ),
        };
        let written = async {
            stream.write_all(&frames).await?;
            stream.flush().await
        }
        .await;
        written.map_err(|e| {
            self.stream = None;
            format!("cannot write: {e}")
        })
    }
}

impl SyslogSink {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG`.
    fn message(&self, e: &SinkEvent) -> String {
        // warning for refusals and failures, notice for the rest.
        let severity = if e.failure { 4 } else { 5 };
        let mut m = String::with_capacity(e.line.len() + 200);
        let _ = write!(
            m,
            "<{}>1 {} {} gatehouse {} {} [{SD_ID} seq=\"{}\" leaf=\"{}\"] \u{feff}{}",
            FACILITY * 8 + severity,
            e.entry.event.time,
            self.hostname,
            std::process::id(),
            syslog_token(e.entry.event.kind.as_str(), 32),
            e.entry.seq,
            e.leaf_hash,
            e.line
        );
        m
    }
}

/// A header field: printable ASCII without spaces, at most `max` long; `-` if empty.
fn syslog_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}
