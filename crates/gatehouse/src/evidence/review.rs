//! The evidence log as the console and the API read it: the same reading
//! `gatehouse audit` does (the file, read-only, with its segments and
//! witness files), on a thread of its own so that a long verification never
//! holds up the gateway's sessions, and one at a time.

use super::commands::{prove, report_json};
use super::log_file::LogFile;
use super::segments::SegmentPlaces;
use crate::config::EvidenceSpec;
use anyhow::{Context, Result};
use gatehouse_api::ReviewError;
use gatehouse_evidence::VerifierKey;
use serde_json::{json, Value};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The gateway's own log, for [`gatehouse_api::EvidenceReview`].
pub struct LogReview(Arc<Log>);

/// Where the log is and how to check it.
struct Log {
    node: String,
    log: PathBuf,
    key: VerifierKey,
    witnesses: Vec<PathBuf>,
    places: SegmentPlaces,
    /// One reading at a time: each may read the whole log. The guard
    /// goes with the reading's thread, so a caller who leaves does not free
    /// it while the reading runs on.
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl LogReview {
    /// The review of the log in `data_dir` configured by `spec`.
    pub fn new(spec: &EvidenceSpec, data_dir: &Path) -> Result<Self> {
        Ok(Self(Arc::new(Log {
            node: spec.node.clone(),
            log: super::log_path(data_dir),
            key: super::verifier_key(spec, data_dir)?,
            witnesses: spec.witness_files.clone(),
            places: SegmentPlaces::configured(&spec.segments),
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
        })))
    }

    /// Runs `read` over the opened log on a thread and runtime of its own.
    async fn reading<T, F, Fut>(&self, read: F) -> Result<T, ReviewError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Log>, LogFile) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>>,
    {
        let turn = self
            .0
            .one_at_a_time
            .clone()
            .try_lock_owned()
            .map_err(|_| ReviewError::Busy)?;
        let this = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a reader")?;
            rt.block_on(async move {
                let log = LogFile::open(&this.log, &this.witnesses, &this.places)
                    .await?
                    .without_progress();
                read(this, log).await
            })
        })
        .await
        .map_err(|e| ReviewError::Failed(format!("the reader stopped: {e}")))?
        .map_err(|e| ReviewError::Failed(format!("{e:#}")))
    }
}

impl Log {
    async fn status_now(self: Arc<Self>, log: LogFile) -> Result<Value> {
        let entries = log.last_seq().await?.map_or(0, |s| s + 1);
        let newest = log.latest_checkpoint(&self.key).await?;
        let witnesses: Vec<Value> = self
            .witnesses
            .iter()
            .map(|w| {
                let label = format!("witness {}", w.display());
                let holds = newest.as_ref().is_some_and(|(_, note)| {
                    log.witnessed().any(|(src, n)| src == label && n == note)
                });
                let newest_there = log
                    .witnessed()
                    .filter(|(src, _)| *src == label)
                    .filter_map(|(_, n)| self.key.open(n).ok())
                    .map(|cp| cp.size)
                    .max();
                json!({
                    "name": w.display().to_string(),
                    "holds_newest": holds,
                    "detail": match newest_there {
                        Some(size) if !holds => format!("its newest copy covers {size} entries"),
                        None => "holds no checkpoint of this log".to_string(),
                        _ => String::new(),
                    },
                })
            })
            .collect();
        Ok(json!({
            "node": self.node,
            "log": self.log.display().to_string(),
            "key": self.key.to_string(),
            "entries": entries,
            "checkpoint": newest.map(|(cp, _)| json!({
                "size": cp.size,
                "root": hex::encode(cp.root),
                "origin": cp.origin,
            })),
            "witnesses": witnesses,
            "read_at": gatehouse_core::Timestamp::now(),
        }))
    }
}

#[async_trait::async_trait]
impl gatehouse_api::EvidenceReview for LogReview {
    async fn status(&self) -> Result<Value, ReviewError> {
        self.reading(|this, log| this.status_now(log)).await
    }

    async fn verify(&self) -> Result<Value, ReviewError> {
        self.reading(|this, log| async move {
            let pass = log.verify(&this.key, |_| ()).await?;
            Ok(report_json(&this.log, &pass, this.witnesses.len()))
        })
        .await
    }

    async fn prove(&self, seq: u64) -> Result<Value, ReviewError> {
        self.reading(move |this, log| async move {
            let proof = prove(&log, &this.key, seq).await?;
            Ok(serde_json::to_value(proof)?)
        })
        .await
    }
}
