//! The `[evidence]` section: how this node writes its evidence log.

use super::segments::{SegmentSection, SegmentSpec};
use super::sinks::{SinkSection, SinkSpec};
use gatehouse_store::Durability;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct EvidenceSection {
    node: Option<String>,
    origin: Option<String>,
    signing_key_file: Option<String>,
    checkpoint_every: Option<u64>,
    checkpoint_interval: Option<String>,
    durability: Option<String>,
    write_ahead_reads: Option<bool>,
    #[serde(default)]
    witness_files: Vec<String>,
    #[serde(default)]
    witness_urls: Vec<String>,
    #[serde(default)]
    sinks: Vec<SinkSection>,
    #[serde(default)]
    segments: SegmentSection,
}

/// How this node writes its evidence log, checked.
#[derive(Debug, Clone)]
pub struct EvidenceSpec {
    /// The node's id, in every entry.
    pub node: String,
    /// The log's origin line in checkpoints.
    pub origin: String,
    /// The signing key, when configured (else generated into the data directory).
    pub signing_key_file: Option<PathBuf>,
    /// Sign a checkpoint after this many entries…
    pub checkpoint_every: u64,
    /// …or after this long.
    pub checkpoint_interval: Duration,
    /// When an event counts as written.
    pub durability: Durability,
    /// Statements that only read wait for their event too, instead of
    /// running while it is written (their answers held until it is).
    pub write_ahead_reads: bool,
    /// Append-only witness files.
    pub witness_files: Vec<PathBuf>,
    /// Witness HTTP endpoints (each checkpoint is POSTed).
    pub witness_urls: Vec<String>,
    /// Live sinks.
    pub sinks: Vec<SinkSpec>,
    /// Sealed segments.
    pub segments: SegmentSpec,
}

const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;
const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// A name usable in entries and note origins: no spaces, no `+`.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control() || c == '+')
}

impl EvidenceSection {
    /// Checks the section; `path` resolves relative paths, `data_dir` is where
    /// witnesses must not be.
    /// The configured `node` (the node's id, if `[server] node_id` is not set).
    pub(super) fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    pub(super) fn resolve(
        &self,
        path: impl Fn(&str) -> PathBuf,
        data_dir: &Path,
        node: &str,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<EvidenceSpec> {
        let mut ok = true;
        let mut bad = |key: &str, reason: String| {
            ok = false;
            problem(format!("evidence.{key}"), reason);
        };
        let node = node.to_string();
        let origin = self
            .origin
            .clone()
            .unwrap_or_else(|| format!("gatehouse/{node}"));
        if !valid_name(&origin) {
            bad(
                "origin",
                format!("{origin:?} cannot be a log origin: no spaces or '+' (e.g. \"gatehouse.example.com/gw-1\")"),
            );
        }
        let signing_key_file = self.signing_key_file.as_deref().map(&path);
        if let Some(f) = &signing_key_file {
            if !f.is_file() {
                bad(
                    "signing_key_file",
                    format!(
                        "{} does not exist; leave the key out to have one generated into data_dir",
                        f.display()
                    ),
                );
            }
        }
        let checkpoint_every = self.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_EVERY);
        if checkpoint_every == 0 {
            bad("checkpoint_every", "must be at least 1 (entries)".into());
        }
        let checkpoint_interval = match &self.checkpoint_interval {
            None => DEFAULT_CHECKPOINT_INTERVAL,
            Some(s) => super::parse_duration(s).unwrap_or_else(|r| {
                bad("checkpoint_interval", r);
                DEFAULT_CHECKPOINT_INTERVAL
            }),
        };
        let durability = match self.durability.as_deref() {
            None | Some("disk") => Durability::Disk,
            Some("os") => Durability::Os,
            Some(other) => {
                bad(
                    "durability",
                    format!("{other:?} is not a durability: use \"disk\" (fsync every commit) or \"os\" (survives the gateway being killed, not a power loss)"),
                );
                Durability::Disk
            }
        };
        let mut witness_files = Vec::new();
        for (i, f) in self.witness_files.iter().enumerate() {
            let p = path(f);
            let key = format!("witness_files[{i}]");
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            if absolute(&p).starts_with(absolute(data_dir)) {
                bad(
                    &key,
                    format!("{} is inside data_dir: a witness must live where the log does not, or it goes with it", p.display()),
                );
            } else if !dir.as_os_str().is_empty() && !dir.is_dir() {
                bad(&key, format!("the folder {} does not exist", dir.display()));
            }
            witness_files.push(p);
        }
        for (i, u) in self.witness_urls.iter().enumerate() {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bad(
                    &format!("witness_urls[{i}]"),
                    format!("{u:?} is not an http:// or https:// URL"),
                );
            }
        }
        let segments = self
            .segments
            .resolve(&path, data_dir, &mut |k, r| bad(k, r));
        let mut sinks: Vec<SinkSpec> = Vec::new();
        for (i, section) in self.sinks.iter().enumerate() {
            let key = format!("evidence.sinks[{i}]");
            let name = section.name();
            if self.sinks[..i].iter().any(|s| s.name() == name) {
                ok = false;
                problem(
                    format!("{key}.name"),
                    format!("{name:?} names another sink too: each sink keeps its own cursor, so names must differ"),
                );
            }
            sinks.extend(section.resolve(&key, &path, &mut |k, r| {
                ok = false;
                problem(k, r)
            }));
        }
        ok.then(|| EvidenceSpec {
            node,
            origin,
            signing_key_file,
            checkpoint_every,
            checkpoint_interval,
            durability,
            // On until the read classification covers views, operators and
            // overloads (see docs/evidence.md): opting out is the operator's call.
            write_ahead_reads: self.write_ahead_reads.unwrap_or(true),
            witness_files,
            witness_urls: self.witness_urls.clone(),
            sinks,
            segments,
        })
    }
}

/// `p` made absolute against the current directory, without touching the disk.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
