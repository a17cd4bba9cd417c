//! The evidence log on this node: its files in the data directory, its
//! signing key, its witnesses, and the `audit` commands that read it.

use crate::config::EvidenceSpec;
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use gatehouse_evidence::{EvidenceLog, FileWitness, LogSettings, SigningKey, VerifierKey, Witness};
use gatehouse_store::SqliteEvidenceStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub mod cli;
pub mod commands;
pub mod fleet;
pub mod log_file;
pub mod pack;
pub mod review;
pub mod seal;
pub mod segments;
pub mod sinks;

/// File name of the evidence log inside the data directory.
pub const LOG_FILE: &str = "evidence.db";
/// File name of the generated signing key inside the data directory.
pub const KEY_FILE: &str = "evidence.key";

/// Where the log of a data directory lives.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_FILE)
}

fn key_path(spec: &EvidenceSpec, data_dir: &Path) -> PathBuf {
    spec.signing_key_file
        .clone()
        .unwrap_or_else(|| data_dir.join(KEY_FILE))
}

fn parse_key(path: &Path) -> Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SigningKey::parse(text.trim())
        .with_context(|| format!("{}: not an evidence signing key", path.display()))
}

/// The node's signing key: the configured file, else `data_dir/evidence.key`,
/// generated (named after the log's origin) on first start.
pub fn signing_key(spec: &EvidenceSpec, data_dir: &Path) -> Result<SigningKey> {
    let path = key_path(spec, data_dir);
    if spec.signing_key_file.is_some() || path.exists() {
        return parse_key(&path);
    }
    let key = SigningKey::generate(&spec.origin)?;
    crate::certs::write_private(&path, format!("{}\n", key.encode()).as_bytes())?;
    tracing::info!(path = %path.display(), public_key = %key.verifier(), "generated the evidence signing key");
    Ok(key)
}

/// The public key for verification, from the node's signing key (never generated here).
pub fn verifier_key(spec: &EvidenceSpec, data_dir: &Path) -> Result<VerifierKey> {
    let path = key_path(spec, data_dir);
    if !path.exists() {
        bail!(
            "no evidence signing key at {}: the gateway generates it on its first start; \
             or pass the public key with --key",
            path.display()
        );
    }
    Ok(parse_key(&path)?.verifier())
}

/// A URL without what may be a secret (user info, query), for logs.
pub(crate) fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

/// Publishes checkpoints by POSTing the note (text/plain) to a URL.
struct HttpWitness {
    url: String,
    client: reqwest::Client,
}

#[async_trait]
impl Witness for HttpWitness {
    fn name(&self) -> String {
        format!("url {}", redacted(&self.url))
    }

    async fn publish(&self, note: &str) -> Result<(), String> {
        let answer = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(note.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", answer.status()))
        }
    }
}

/// The running log: its handle and its writer task.
pub struct OpenLog {
    /// Appends go here.
    pub log: EvidenceLog,
    /// The writer; ends after [`EvidenceLog::close`].
    pub task: JoinHandle<()>,
    /// The live sinks' feeders; they end once the log is closed and delivered.
    pub sinks: Vec<JoinHandle<()>>,
    /// Seals and archives segments (when the log is kept in segments).
    pub sealer: Option<JoinHandle<()>>,
}

/// How long stopping waits for sinks to take what is left; the rest goes
/// out at the next start, from the saved cursors.
const SINK_GRACE: Duration = Duration::from_secs(5);

impl OpenLog {
    /// Closes the log (final checkpoint, witnesses), then lets the sinks
    /// deliver what is left.
    pub async fn close(self) {
        if let Some(sealer) = &self.sealer {
            // A seal cut short leaves a file without a record, which the
            // next seal writes again.
            sealer.abort();
        }
        self.log.close().await;
        let _ = self.task.await;
        let deadline = tokio::time::Instant::now() + SINK_GRACE;
        for mut sink in self.sinks {
            if tokio::time::timeout_at(deadline, &mut sink).await.is_err() {
                tracing::warn!(
                    "an evidence sink did not take every event before the gateway stopped; \
                     it resumes from its saved position at the next start"
                );
                sink.abort();
            }
        }
    }
}

/// Before the log is extended: cuts a torn last note off a witness file
/// (a crash while it was appended), and refuses a log that is behind its
/// witness. The writer publishes a checkpoint only after it is stored, so
/// a witness ahead of the store means signed entries were lost (a torn or
/// truncated file, or another log put in its place); extending the log
/// would sign a second, different tree of the same size.
fn check_witness(
    witness: &FileWitness,
    file: &Path,
    key: &VerifierKey,
    stored: u64,
    log: &Path,
) -> Result<()> {
    let cut = witness
        .repair()
        .with_context(|| format!("reading the witness file {}", file.display()))?;
    if cut > 0 {
        tracing::warn!(
            witness = %file.display(),
            bytes = cut,
            "the witness file ended in a torn write (a crash while a checkpoint was appended); the partial note was cut off"
        );
    }
    let Some(note) = witness
        .newest_note()
        .with_context(|| format!("reading the witness file {}", file.display()))?
    else {
        return Ok(());
    };
    let cp = key.open(&note).map_err(|e| {
        anyhow::anyhow!(
            "the newest checkpoint in the witness file {} does not verify with this node's key ({e}): \
             is it another node's witness?",
            file.display()
        )
    })?;
    if cp.size > stored {
        let holds = match stored {
            0 => "holds no signed entry".to_string(),
            n => format!("holds signed entries up to {} only", n - 1),
        };
        bail!(
            "the evidence log {} {holds}, but the witness file {} holds a checkpoint of {} \
             entries: entries {} to {} were lost (a torn or truncated file, a power loss with \
             durability = \"os\", or another log in its place). The gateway will not extend it: \
             restore the file from a backup, or move both the log and the witness file aside \
             (keep them: they are evidence) to start a new log",
            log.display(),
            file.display(),
            cp.size,
            stored,
            cp.size - 1
        );
    }
    Ok(())
}

/// Opens (creating on first start) the node's log and starts its writer.
/// `holds` are more cursor files (beside the sinks') whose readers sealing
/// must wait for: the copy to a shared store.
pub async fn open(spec: &EvidenceSpec, data_dir: &Path, holds: &[PathBuf]) -> Result<OpenLog> {
    let key = signing_key(spec, data_dir)?;
    let path = log_path(data_dir);
    let store = SqliteEvidenceStore::open(&path, spec.durability)
        .await
        .with_context(|| format!("opening the evidence log {}", path.display()))?;
    let newest = store.largest_checkpoint().await?;
    let mut witnesses: Vec<Arc<dyn Witness>> = Vec::new();
    for f in &spec.witness_files {
        let witness = FileWitness::new(f.clone());
        check_witness(&witness, f, &key.verifier(), newest, &path)?;
        witnesses.push(Arc::new(witness));
    }
    if !spec.witness_urls.is_empty() {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client for witnesses")?;
        for u in &spec.witness_urls {
            witnesses.push(Arc::new(HttpWitness {
                url: u.clone(),
                client: client.clone(),
            }));
        }
    }
    let settings = LogSettings {
        node: spec.node.clone(),
        origin: spec.origin.clone(),
        checkpoint_every: spec.checkpoint_every,
        checkpoint_interval: spec.checkpoint_interval,
        witnesses,
    };
    let verifier = key.verifier();
    let (log, task) = EvidenceLog::open(Arc::new(store.clone()), key, settings)
        .await
        .with_context(|| {
            format!(
                "{}: run `gatehouse audit verify` to see what is wrong; to start a new log, \
                 move the file aside (keep it: it is evidence)",
                path.display()
            )
        })?;
    let log = log.writing_reads_ahead(spec.write_ahead_reads);
    // Rows of sealed segments a crash left in the store go first: a sink
    // starting now must find the live log's first entry.
    store
        .purge_sealed()
        .await
        .with_context(|| format!("removing sealed entries from {}", path.display()))?;
    let sinks = sinks::start(spec, data_dir, &path, &log).await?;
    let sealer = (spec.segments.entries > 0).then(|| {
        let cursors = spec
            .sinks
            .iter()
            .map(|s| sinks::cursor_path(data_dir, &s.name))
            .chain(holds.iter().cloned())
            .collect();
        segments::spawn_sealer(store, verifier, spec.segments.clone(), cursors)
    });
    Ok(OpenLog {
        log,
        task,
        sinks,
        sealer,
    })
}
