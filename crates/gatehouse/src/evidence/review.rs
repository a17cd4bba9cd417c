//! The evidence log as the console and the API read it: the same reading
//! `gatehouse audit` does (the file, read-only, with its segments and
//! witness files), on a thread of its own so that a long verification never
//! holds up the gateway's sessions, and one at a time.

use super::commands::{prove, report_json};
use super::log_file::LogFile;
use super::pack::Period;
use super::seal::Sealing;
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

/// Packs larger than this are refused here (the CLI writes any size).
const MAX_PACK: u64 = 256 * 1024 * 1024;

/// Where the log is and how to check it.
struct Log {
    node: String,
    /// The configuration file: its policy says what identities may reach.
    config: PathBuf,
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
    pub fn new(spec: &EvidenceSpec, data_dir: &Path, config: &Path) -> Result<Self> {
        Ok(Self(Arc::new(Log {
            node: spec.node.clone(),
            config: config.to_path_buf(),
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

    async fn pack(
        &self,
        from: gatehouse_core::Timestamp,
        to: gatehouse_core::Timestamp,
        sealed: Option<u64>,
    ) -> Result<gatehouse_api::EvidencePack, ReviewError> {
        self.reading(move |this, log| async move {
            let raw = crate::config::RawConfig::parse(&this.config)
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            let policy = super::cli::access_policy(Some(&raw), &this.config)?;
            let sealing = match sealed {
                Some(size) => Sealing::Sealed(size),
                None => Sealing::NotAsked {
                    why: "the gateway could not sign a checkpoint just now".into(),
                    interval: None,
                },
            };
            let dir = tempfile::Builder::new()
                .prefix("gatehouse-pack-")
                .tempdir()
                .context("a folder for the pack")?;
            let day =
                |t: gatehouse_core::Timestamp| t.rfc3339().chars().take(10).collect::<String>();
            let name = format!(
                "gatehouse-evidence-{}-{}-{}",
                safe_name(&this.node),
                day(from),
                day(to)
            );
            let out = dir.path().join(&name);
            let period = Period {
                from: from.to_system_time(),
                to: to.to_system_time(),
            };
            super::pack::write(&log, &this.key, &period, policy.as_ref(), &sealing, &out).await?;
            let tar = archive(&out, &name)?;
            Ok(gatehouse_api::EvidencePack {
                tar,
                file_name: format!("{name}.tar"),
            })
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

/// A node id as it may appear in a file name.
fn safe_name(node: &str) -> String {
    node.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The pack folder `dir` as a tar archive whose entries sit under `name/`.
fn archive(dir: &Path, name: &str) -> Result<Vec<u8>> {
    // What the archive will weigh: a 512-byte header per entry, contents
    // padded to 512 bytes, two closing blocks.
    let mut size = 1024u64;
    for entry in walk(dir)? {
        size += 512 + std::fs::metadata(&entry)?.len().div_ceil(512) * 512;
    }
    if size > MAX_PACK {
        anyhow::bail!(
            "the pack is {} MiB, more than the {} MiB a download carries: write it on the gateway's host with `gatehouse evidence --from --to --out`, or choose a shorter period",
            size >> 20,
            MAX_PACK >> 20
        );
    }
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_dir_all(name, dir)
        .context("archiving the pack")?;
    tar.into_inner().context("archiving the pack")
}

/// Every file and folder under `dir`.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(walk(&path)?);
        }
        found.push(path);
    }
    Ok(found)
}
