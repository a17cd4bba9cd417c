//! `gatehouse audit …`: verification, proofs and the public key. These read
//! the log file directly (read-only), never through the gateway: a check
//! must not depend on the process it checks.

use anyhow::{anyhow, bail, Context, Result};
use gatehouse_core::EvidenceStore;
use gatehouse_evidence::merkle::{leaf_hash, verify_inclusion, Hash, MerkleTree};
use gatehouse_evidence::{
    split_notes, verify, Checkpoint, Entry, Report, StoredCheckpoint, StoredEntry, VerifierKey,
};
use gatehouse_store::SqliteEvidenceStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A log read from its file, with its checkpoints and witness copies.
pub struct LoadedLog {
    /// Entries in storage order.
    pub entries: Vec<StoredEntry>,
    /// Checkpoints from the store, then from each witness.
    pub checkpoints: Vec<StoredCheckpoint>,
}

impl LoadedLog {
    /// Reads the log at `path` and the witness files.
    pub async fn read(path: &Path, witnesses: &[PathBuf]) -> Result<Self> {
        let store = SqliteEvidenceStore::open_read_only(path)
            .await
            .with_context(|| format!("reading the evidence log {}", path.display()))?;
        let entries = store
            .entries()
            .await?
            .into_iter()
            .map(|r| StoredEntry {
                position: r.position,
                bytes: r.bytes,
            })
            .collect();
        let mut checkpoints: Vec<StoredCheckpoint> = store
            .checkpoints()
            .await?
            .into_iter()
            .map(|note| StoredCheckpoint {
                source: "store".into(),
                note,
            })
            .collect();
        for w in witnesses {
            let text = std::fs::read_to_string(w)
                .with_context(|| format!("reading the witness file {}", w.display()))?;
            let notes = split_notes(&text);
            if notes.is_empty() {
                bail!("{}: holds no checkpoints", w.display());
            }
            checkpoints.extend(notes.into_iter().map(|note| StoredCheckpoint {
                source: format!("witness {}", w.display()),
                note,
            }));
        }
        Ok(Self {
            entries,
            checkpoints,
        })
    }

    /// Verifies everything against `key`.
    pub fn verify(&self, key: &VerifierKey) -> Report {
        verify(&self.entries, &self.checkpoints, key)
    }

    /// The verified log's entries in sequence order, with their bytes, or
    /// an error naming the findings.
    pub fn verified(&self, key: &VerifierKey) -> Result<Vec<(Entry, &[u8])>> {
        let report = self.verify(key);
        if !report.is_clean() {
            bail!(
                "the evidence log does not verify ({} finding(s)); run `gatehouse audit verify` for details",
                report.findings.len()
            );
        }
        self.entries
            .iter()
            .map(|e| Ok((Entry::decode(&e.bytes)?, e.bytes.as_slice())))
            .collect()
    }

    /// The largest checkpoint that verifies with `key`.
    pub fn latest_checkpoint(&self, key: &VerifierKey) -> Option<(Checkpoint, &str)> {
        self.checkpoints
            .iter()
            .filter_map(|c| key.open(&c.note).ok().map(|cp| (cp, c.note.as_str())))
            .max_by_key(|(cp, _)| cp.size)
    }
}

/// Prints the report; returns whether the log is clean.
pub fn print_report(path: &Path, report: &Report, witnesses: usize) -> bool {
    println!(
        "evidence log {}: {} entries, {} checkpoint(s) verified{}, covered by a checkpoint up to entry {}",
        path.display(),
        report.entries,
        report.checkpoints_verified,
        if witnesses > 0 {
            format!(" (store and {witnesses} witness file(s))")
        } else {
            String::new()
        },
        report.verified_size.saturating_sub(1),
    );
    if report.verified_size < report.entries && report.is_clean() {
        println!(
            "note: entries {} to {} are linked by hash but not yet covered by a signed checkpoint \
             (the gateway signs one every checkpoint_interval)",
            report.verified_size,
            report.entries - 1
        );
    }
    if report.is_clean() {
        println!("OK: no entry was edited, deleted, inserted, reordered or cut off");
        return true;
    }
    for f in &report.findings {
        println!("FOUND: {f}");
    }
    println!(
        "{} finding(s): the log is not intact",
        report.findings.len()
    );
    false
}

/// A self-contained inclusion proof for one entry: what `audit proof` writes
/// and `audit verify-proof` checks with only the public key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Always `gatehouse-inclusion-proof/v1`.
    pub format: String,
    /// The entry's sequence number (its leaf index).
    pub seq: u64,
    /// The entry's canonical bytes, as text.
    pub entry: String,
    /// SHA-256(0x00 || entry), hex.
    pub leaf_hash: String,
    /// The size of the tree the proof is for.
    pub tree_size: u64,
    /// The audit path, hex, leaf to root (RFC 6962 / RFC 9162).
    pub proof: Vec<String>,
    /// The signed checkpoint whose root the path leads to.
    pub checkpoint: String,
}

/// Builds the inclusion proof of entry `seq` against the newest checkpoint.
pub fn prove(log: &LoadedLog, key: &VerifierKey, seq: u64) -> Result<InclusionProof> {
    let entries = log.verified(key)?;
    let (cp, note) = log
        .latest_checkpoint(key)
        .ok_or_else(|| anyhow!("the log has no signed checkpoint yet"))?;
    if seq >= entries.len() as u64 {
        bail!(
            "there is no entry {seq}: the log holds {} entries",
            entries.len()
        );
    }
    if seq >= cp.size {
        bail!(
            "entry {seq} is not yet covered by a checkpoint (the newest covers {} entries); \
             the gateway signs one every checkpoint_interval, try again shortly",
            cp.size
        );
    }
    let tree = MerkleTree::new(
        entries[..cp.size as usize]
            .iter()
            .map(|(_, b)| leaf_hash(b))
            .collect(),
    );
    proof_in(&tree, &cp, note, seq, entries[seq as usize].1)
}

/// The proof of entry `seq` (whose bytes are `bytes`) in `tree`, against
/// the checkpoint `cp` (signed as `note`) of the tree's size.
pub fn proof_in(
    tree: &MerkleTree,
    cp: &Checkpoint,
    note: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<InclusionProof> {
    let path = tree
        .inclusion_proof(seq as usize, cp.size as usize)
        .ok_or_else(|| {
            anyhow!(
                "no inclusion proof for entry {seq} in a tree of {}",
                cp.size
            )
        })?;
    Ok(InclusionProof {
        format: PROOF_FORMAT.into(),
        seq,
        entry: String::from_utf8(bytes.to_vec()).context("entry is not UTF-8")?,
        leaf_hash: hex::encode(leaf_hash(bytes)),
        tree_size: cp.size,
        proof: path.iter().map(hex::encode).collect(),
        checkpoint: note.to_string(),
    })
}

const PROOF_FORMAT: &str = "gatehouse-inclusion-proof/v1";

/// Checks a proof offline; returns the entry it proves.
pub fn check_proof(p: &InclusionProof, key: &VerifierKey) -> Result<Entry> {
    if p.format != PROOF_FORMAT {
        bail!("not a Gatehouse inclusion proof (format {:?})", p.format);
    }
    let cp = key
        .open(&p.checkpoint)
        .context("the checkpoint's signature does not verify with this key")?;
    if cp.size != p.tree_size {
        bail!(
            "the proof is for a tree of {} entries but its checkpoint covers {}",
            p.tree_size,
            cp.size
        );
    }
    let entry = Entry::decode(p.entry.as_bytes()).context("the proven entry is malformed")?;
    if entry.seq != p.seq {
        bail!(
            "the entry is number {}, the proof says {}",
            entry.seq,
            p.seq
        );
    }
    let leaf = leaf_hash(p.entry.as_bytes());
    if hex::encode(leaf) != p.leaf_hash {
        bail!("the entry does not hash to the proof's leaf hash: it was changed");
    }
    let path: Vec<Hash> = p
        .proof
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| anyhow!("{h:?} is not a SHA-256 hash in hex"))
        })
        .collect::<Result<_>>()?;
    if !verify_inclusion(p.seq, cp.size, &leaf, &path, &cp.root) {
        bail!(
            "the entry is not in the tree the checkpoint signs: the entry or the proof was changed"
        );
    }
    Ok(entry)
}

/// Reads a verifier key given as text or as a file holding it.
pub fn parse_verifier(arg: &str) -> Result<VerifierKey> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_string()
    };
    VerifierKey::parse(text.trim()).map_err(|e| {
        anyhow!(
            "--key: {e}; pass the key `gatehouse audit public-key` prints, or a file holding it"
        )
    })
}
