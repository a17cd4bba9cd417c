//! `gatehouse audit …`: verification, proofs and the public key. These read
//! the log file directly (read-only), never through the gateway: a check
//! must not depend on the process it checks.

use super::log_file::{LogFile, Pass};
use anyhow::{anyhow, bail, Context, Result};
use gatehouse_evidence::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use gatehouse_evidence::proofs::{KnownNodes, ProofPlan};
use gatehouse_evidence::{Checkpoint, Entry, VerifierKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::Path;

/// Prints the report; returns whether the log is clean.
pub fn print_report(path: &Path, pass: &Pass, witnesses: usize) -> bool {
    let report = &pass.report;
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
    println!(
        "read in {:.1} s ({:.0} entries/s)",
        pass.took.as_secs_f64(),
        pass.rate()
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
    if report.more_findings > 0 {
        println!(
            "FOUND: {} more (a report lists the first {})",
            report.more_findings,
            report.findings.len()
        );
    }
    println!(
        "{} finding(s): the log is not intact",
        report.findings.len() as u64 + report.more_findings
    );
    false
}

/// The report as `audit verify --json` prints it (and the API answers).
pub fn report_json(path: &Path, pass: &Pass, witnesses: usize) -> serde_json::Value {
    let report = &pass.report;
    let findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            v["message"] = f.to_string().into();
            v
        })
        .collect();
    serde_json::json!({
        "ok": report.is_clean(),
        "log": path.display().to_string(),
        "witness_files": witnesses,
        "entries": report.entries,
        "checkpoints_verified": report.checkpoints_verified,
        "verified_size": report.verified_size,
        "findings": findings,
        "more_findings": report.more_findings,
        "seconds": pass.took.as_secs_f64(),
        "entries_per_second": pass.rate().round(),
    })
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

/// Builds the inclusion proof of entry `seq` against the newest checkpoint:
/// one pass to verify the log, one to hash the leaves the checkpoint covers.
pub async fn prove(log: &LogFile, key: &VerifierKey, seq: u64) -> Result<InclusionProof> {
    let pass = log.verified(key, |_| ()).await?;
    let (cp, note) = log
        .latest_checkpoint(key)
        .await?
        .ok_or_else(|| anyhow!("the log has no signed checkpoint yet"))?;
    if seq >= pass.report.entries {
        bail!(
            "there is no entry {seq}: the log holds {} entries",
            pass.report.entries
        );
    }
    if seq >= cp.size {
        bail!(
            "entry {seq} is not yet covered by a checkpoint (the newest covers {} entries); \
             the gateway signs one every checkpoint_interval, try again shortly",
            cp.size
        );
    }
    let mut proven = None;
    prove_each(log, &cp, &BTreeSet::from([seq]), |_, bytes, path| {
        proven = Some((bytes.to_vec(), path));
        Ok(())
    })
    .await?;
    let (bytes, path) = proven.ok_or_else(|| anyhow!("no inclusion proof for entry {seq}"))?;
    proof_from(&cp, &note, seq, &bytes, &path)
}

/// The audit paths of entries `wanted` in the tree `cp` signs, each handed
/// to `each` with the entry's bytes, in sequence order: one pass hashes the
/// leaves the checkpoint covers (and fails unless they give its root), a
/// second hands over the wanted entries as they stream past. Memory is the
/// distinct nodes of the proofs, not their paths or the log. Call it on a
/// verified log (rows in sequence order).
pub async fn prove_each(
    log: &LogFile,
    cp: &Checkpoint,
    wanted: &BTreeSet<u64>,
    mut each: impl FnMut(u64, &[u8], Vec<Hash>) -> Result<()>,
) -> Result<()> {
    let plan = ProofPlan::new(cp.size, wanted.iter().copied()).ok_or_else(|| {
        anyhow!(
            "an entry to prove lies beyond the checkpoint of {} entries",
            cp.size
        )
    })?;
    let known = known_nodes(log, cp, plan).await?;
    let last = wanted.last().copied().unwrap_or(0);
    let (mut n, mut failed) = (0u64, None);
    log.rows(|row| {
        if n > last {
            return ControlFlow::Break(());
        }
        if wanted.contains(&n) {
            let done = known
                .path(n)
                .ok_or_else(|| anyhow!("no inclusion proof for entry {n}"))
                .and_then(|path| each(n, &row.bytes, path));
            if let Err(e) = done {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        n += 1;
        ControlFlow::Continue(())
    })
    .await?;
    failed.map_or(Ok(()), Err)
}

/// Pushes the leaves `cp` covers through `plan` (one pass over a verified
/// log), failing unless they hash to its signed root.
async fn known_nodes(log: &LogFile, cp: &Checkpoint, mut plan: ProofPlan) -> Result<KnownNodes> {
    let mut n = 0u64;
    log.rows(|row| {
        if n >= cp.size {
            return ControlFlow::Break(());
        }
        plan.push(&leaf_hash(&row.bytes));
        n += 1;
        ControlFlow::Continue(())
    })
    .await?;
    let known = plan.known().ok_or_else(|| {
        anyhow!(
            "the log holds fewer entries than its checkpoint of {} covers",
            cp.size
        )
    })?;
    if known.root != cp.root {
        bail!("the entries do not hash to the checkpoint's root: run `gatehouse audit verify`");
    }
    Ok(known)
}

/// The proof of entry `seq` (whose bytes are `bytes`) with audit path
/// `path`, against the checkpoint `cp` (signed as `note`).
pub fn proof_from(
    cp: &Checkpoint,
    note: &str,
    seq: u64,
    bytes: &[u8],
    path: &[Hash],
) -> Result<InclusionProof> {
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
const CONSISTENCY_FORMAT: &str = "gatehouse-consistency-proof/v1";

/// A self-contained consistency proof: the log of the older signed
/// checkpoint is a prefix of the newer one's (nothing signed was changed
/// or dropped since). What `audit consistency` writes and `audit
/// verify-consistency` checks with only the public key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Always `gatehouse-consistency-proof/v1`.
    pub format: String,
    /// The older tree's size.
    pub old_size: u64,
    /// The newer tree's size.
    pub new_size: u64,
    /// The proof, hex (RFC 6962 / RFC 9162).
    pub proof: Vec<String>,
    /// The signed checkpoint of the older tree.
    pub old_checkpoint: String,
    /// The signed checkpoint of the newer tree.
    pub new_checkpoint: String,
}

/// The consistency proof from the checkpoint of `from` entries to the
/// newest: one pass to verify the log, one to hash the leaves.
pub async fn prove_consistency(
    log: &LogFile,
    key: &VerifierKey,
    from: u64,
) -> Result<ConsistencyProof> {
    log.verified(key, |_| ()).await?;
    let checkpoints = log.checkpoints(key).await?;
    let (new, new_note) = checkpoints
        .last()
        .ok_or_else(|| anyhow!("the log has no signed checkpoint yet"))?;
    let (old, old_note) = checkpoints
        .iter()
        .find(|(c, _)| c.size == from)
        .ok_or_else(|| {
            anyhow!(
                "no signed checkpoint covers exactly {from} entries: give the size of one \
                 (a checkpoint you hold, or one `gatehouse audit export` names)"
            )
        })?;
    let plan = ProofPlan::new(new.size, [])
        .and_then(|p| p.with_consistency(from))
        .ok_or_else(|| anyhow!("no consistency proof from {from} to {} entries", new.size))?;
    let known = known_nodes(log, new, plan).await?;
    let proof = known
        .consistency(from)
        .ok_or_else(|| anyhow!("no consistency proof from {from} entries"))?;
    Ok(ConsistencyProof {
        format: CONSISTENCY_FORMAT.into(),
        old_size: old.size,
        new_size: new.size,
        proof: proof.iter().map(hex::encode).collect(),
        old_checkpoint: old_note.clone(),
        new_checkpoint: new_note.clone(),
    })
}

/// Checks a consistency proof offline.
pub fn check_consistency(
    p: &ConsistencyProof,
    key: &VerifierKey,
) -> Result<(Checkpoint, Checkpoint)> {
    if p.format != CONSISTENCY_FORMAT {
        bail!("not a Gatehouse consistency proof (format {:?})", p.format);
    }
    let old = key
        .open(&p.old_checkpoint)
        .context("the older checkpoint's signature does not verify with this key")?;
    let new = key
        .open(&p.new_checkpoint)
        .context("the newer checkpoint's signature does not verify with this key")?;
    if old.size != p.old_size || new.size != p.new_size {
        bail!("the proof's sizes are not its checkpoints' sizes");
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
    if !verify_consistency(old.size, new.size, &old.root, &new.root, &path) {
        bail!(
            "the log signed at {} entries is not a prefix of the log signed at {}: entries were \
             changed or dropped in between, or the proof was changed",
            old.size,
            new.size
        );
    }
    Ok((old, new))
}

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
