//! `gatehouse evidence`: the SOC 2 evidence pack for a period. A folder an
//! auditor reads without the gateway: the period's entries, tables read off
//! them, the signed checkpoint covering them, the public key, an inclusion
//! proof for every entry a table lists and for the entries bounding the
//! period, and a script that checks it all with standard tools.

mod identities;
mod readme;
mod tables;

use super::commands::{proof_in, LoadedLog};
use super::seal::{self, Sealing};
use anyhow::{anyhow, bail, Context, Result};

use gatehouse_evidence::merkle::{leaf_hash, MerkleTree};
use gatehouse_evidence::{Entry, EventKind, VerifierKey};
use gatehouse_policy::PolicyEngine;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;
use tables::{Table, Tables};

/// The period a pack covers: `from` ≤ time < `to`.
pub struct Period {
    /// Start, inclusive.
    pub from: SystemTime,
    /// End, exclusive.
    pub to: SystemTime,
}

/// The policy an access listing is computed with.
pub struct AccessPolicy {
    /// The policy files of the configuration, loaded.
    pub engine: PolicyEngine,
    /// The configured connections.
    pub connections: Vec<(String, String)>,
}

/// What a written pack holds, for the command's summary.
pub struct Written {
    /// Entries in the period.
    pub entries: usize,
    /// Inclusion proofs written.
    pub proofs: usize,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// When the pack is proven complete only up to the last signed entry,
    /// short of the period's end: that entry's time.
    pub complete_until: Option<String>,
}

const VERIFY_SCRIPT: &str = include_str!("pack/verify_pack.py");

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Writes the pack for `period` into `out` (which must not exist or be empty).
pub fn write(
    log: &LoadedLog,
    key: &VerifierKey,
    period: &Period,
    policy: Option<&AccessPolicy>,
    sealing: &Sealing,
    out: &Path,
) -> Result<Written> {
    let (from, to) = (rfc3339(period.from), rfc3339(period.to));
    let verified = log.verified(key)?;
    let entries: Vec<(&Entry, &[u8])> = verified.iter().map(|(e, b)| (e, *b)).collect();
    let in_period = |e: &Entry| e.event.time >= from && e.event.time < to;
    let first = entries
        .iter()
        .position(|(e, _)| in_period(e))
        .ok_or_else(|| anyhow!("the log holds no event between {from} and {to}"))?;
    let mut last = entries
        .iter()
        .rposition(|(e, _)| in_period(e))
        .unwrap_or(first);
    let checkpoint = log.latest_checkpoint(key);
    let covered = checkpoint.as_ref().map_or(0, |(cp, _)| cp.size) as usize;
    if last >= covered {
        match sealing {
            // Written after the gateway signed on request: the pack stops
            // at what it signed, and says so.
            Sealing::Sealed(_) if first < covered => last = covered - 1,
            _ => {
                return Err(seal::not_covered(
                    covered as u64,
                    &entries[covered].0.event.time,
                    sealing,
                    SystemTime::now(),
                ))
            }
        }
    }
    let (cp, note) = checkpoint.ok_or_else(|| anyhow!("the log has no signed checkpoint yet"))?;
    prepare(out)?;
    let period_entries: Vec<&Entry> = entries[first..=last].iter().map(|(e, _)| *e).collect();
    let tables = Tables::from_entries(&period_entries);
    let tree = MerkleTree::new(
        entries[..cp.size as usize]
            .iter()
            .map(|(_, b)| leaf_hash(b))
            .collect(),
    );
    let before = first.checked_sub(1);
    let after = (last + 1 < cp.size as usize).then_some(last + 1);
    // Proven complete up to `to` when an entry after the period is signed;
    // else only up to the last signed entry.
    let complete_until = match after {
        Some(_) => to.clone(),
        None => entries[last].0.event.time.clone(),
    };
    let mut proven: BTreeSet<usize> = BTreeSet::from([first, last]);
    proven.extend(before);
    proven.extend(after);
    for t in tables.all() {
        proven.extend(t.seqs().map(|s| s as usize));
    }
    let proofs = out.join("proofs");
    std::fs::create_dir(&proofs).with_context(|| format!("creating {}", proofs.display()))?;
    for &seq in &proven {
        let p = proof_in(&tree, &cp, note, seq as u64, entries[seq].1)?;
        write_file(
            &proofs.join(format!("{seq}.json")),
            serde_json::to_string_pretty(&p)? + "\n",
        )?;
    }

    let mut events = Vec::new();
    for (_, bytes) in &entries[first..=last] {
        events.extend_from_slice(bytes);
        events.push(b'\n');
    }
    write_file(&out.join("events.jsonl"), events)?;
    for t in tables.all() {
        write_table(out, t)?;
    }
    let identities = identities::table(&entries[..=last], period, policy);
    write_table(out, &identities)?;

    let (body, sig) = key.detached(note).context("the checkpoint")?;
    write_file(&out.join("checkpoint.txt"), note)?;
    write_file(&out.join("checkpoint.body"), body)?;
    write_file(&out.join("checkpoint.sig"), sig)?;
    write_file(&out.join("public-key.txt"), format!("{key}\n"))?;
    write_file(&out.join("public-key.pem"), key.pem())?;
    write_file(&out.join("verify_pack.py"), VERIFY_SCRIPT)?;

    let policy_match = policy.map(|p| policy_in_force(p, &entries[..=last]));
    let manifest = json!({
        "format": "gatehouse-evidence-pack/v1",
        "from": from,
        "to": to,
        "origin": cp.origin,
        "tree_size": cp.size,
        "first": first,
        "last": last,
        "before": before,
        "after": after,
        "complete_until": complete_until,
        "tables": tables.all().iter().map(|t| t.name).collect::<Vec<_>>(),
    });
    write_file(
        &out.join("pack.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    let facts = readme::Facts {
        from: &from,
        to: &to,
        origin: &cp.origin,
        key: &key.to_string(),
        tree_size: cp.size,
        first,
        last,
        first_time: &entries[first].0.event.time,
        last_time: &entries[last].0.event.time,
        after: after.is_some(),
        complete_until: &complete_until,
        entries: &period_entries,
        tables: &tables,
        identities: &identities,
        policy_match,
        proofs: proven.len(),
    };
    write_file(&out.join("README.md"), readme::readme(&facts))?;
    write_file(&out.join("VERIFY.md"), readme::verify(&facts))?;
    Ok(Written {
        entries: last - first + 1,
        proofs: proven.len(),
        tree_size: cp.size,
        complete_until: after.is_none().then_some(complete_until),
    })
}

/// Creates `out`, or accepts it empty: a pack never overwrites anything.
fn prepare(out: &Path) -> Result<()> {
    if out.exists() {
        let mut items =
            std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
        if items.next().is_some() {
            bail!(
                "{} is not empty: give a new folder for the pack (nothing is overwritten)",
                out.display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn write_table(out: &Path, t: &Table) -> Result<()> {
    write_file(&out.join(format!("{}.csv", t.name)), t.csv())?;
    write_file(
        &out.join(format!("{}.json", t.name)),
        serde_json::to_string_pretty(&t.json())? + "\n",
    )
}

/// Whether the configured policy files are the ones the log last recorded
/// as loaded (by hash).
fn policy_in_force(p: &AccessPolicy, entries: &[(&Entry, &[u8])]) -> bool {
    let last_loaded = entries
        .iter()
        .rev()
        .find(|(e, _)| e.event.kind == EventKind::PolicyLoaded)
        .and_then(|(e, _)| e.event.payload.get("files"))
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f.get("sha256").and_then(Value::as_str))
                .map(str::to_string)
                .collect::<BTreeSet<_>>()
        });
    let configured: BTreeSet<String> = p.engine.files().iter().map(|f| f.sha256.clone()).collect();
    last_loaded.is_some_and(|l| l == configured)
}
