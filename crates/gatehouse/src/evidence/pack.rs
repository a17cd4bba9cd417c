//! `gatehouse evidence`: the SOC 2 evidence pack for a period. A folder an
//! auditor reads without the gateway: the period's entries, tables read off
//! them, the signed checkpoint covering them, the public key, an inclusion
//! proof for every entry a table lists and for the entries bounding the
//! period, and a script that checks it all with standard tools.

mod identities;
mod readme;
mod tables;

use super::commands::{proof_from, prove_each};
use super::log_file::LogFile;
use super::seal::{self, Sealing};
use anyhow::{anyhow, bail, Context, Result};

use gatehouse_evidence::{Entry, EventKind, VerifierKey};
use gatehouse_policy::PolicyEngine;
use identities::Identities;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::SystemTime;
use tables::Tables;

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

/// Writes the pack for `period` into `out` (which must not exist or be
/// empty), in three passes over the log that each keep one page of it in
/// memory: verification (which also finds the period), the period's entries
/// (events, tables, identities), and the leaves for the proofs.
pub async fn write(
    log: &LogFile,
    key: &VerifierKey,
    period: &Period,
    policy: Option<&AccessPolicy>,
    sealing: &Sealing,
    out: &Path,
) -> Result<Written> {
    let (from, to) = (rfc3339(period.from), rfc3339(period.to));
    let checkpoint = log.latest_checkpoint(key).await?;
    let covered = checkpoint.as_ref().map_or(0, |(cp, _)| cp.size);
    let (mut first, mut last, mut uncovered_time) = (None, None, None);
    log.verified(key, |e| {
        let Some(e) = e else { return };
        if e.time >= from && e.time < to {
            first.get_or_insert(e.seq);
            last = Some(e.seq);
        }
        if e.seq == covered {
            uncovered_time = Some(e.time);
        }
    })
    .await?;
    let first = first.ok_or_else(|| anyhow!("the log holds no event between {from} and {to}"))?;
    let mut last = last.unwrap_or(first);
    if last >= covered {
        match sealing {
            // Written after the gateway signed on request: the pack stops
            // at what it signed, and says so.
            Sealing::Sealed(_) if first < covered => last = covered - 1,
            _ => {
                return Err(seal::not_covered(
                    covered,
                    uncovered_time.as_deref().unwrap_or_default(),
                    sealing,
                    SystemTime::now(),
                ))
            }
        }
    }
    let (cp, note) = checkpoint.ok_or_else(|| anyhow!("the log has no signed checkpoint yet"))?;
    prepare(out)?;
    let read = read_period(log, period, first, last, out).await?;
    let before = first.checked_sub(1);
    let after = (last + 1 < cp.size).then_some(last + 1);
    // Proven complete up to `to` when an entry after the period is signed;
    // else only up to the last signed entry.
    let complete_until = match after {
        Some(_) => to.clone(),
        None => read.last_time.clone(),
    };
    let mut proven: BTreeSet<u64> = BTreeSet::from([first, last]);
    proven.extend(before);
    proven.extend(after);
    for t in read.tables.all() {
        proven.extend(t.seqs());
    }
    let proofs = out.join("proofs");
    std::fs::create_dir(&proofs).with_context(|| format!("creating {}", proofs.display()))?;
    prove_each(log, &cp, &proven, |seq, bytes, path| {
        let p = proof_from(&cp, &note, seq, bytes, &path)?;
        write_file(
            &proofs.join(format!("{seq}.json")),
            serde_json::to_string_pretty(&p)? + "\n",
        )
    })
    .await?;
    let mut tables = read.tables;
    tables
        .write(out)
        .with_context(|| format!("writing the tables in {}", out.display()))?;
    let mut identities = read.identities.table(period, policy);
    identities
        .write(out)
        .with_context(|| format!("writing the identities table in {}", out.display()))?;

    let (body, sig) = key.detached(&note).context("the checkpoint")?;
    write_file(&out.join("checkpoint.txt"), &note)?;
    write_file(&out.join("checkpoint.body"), body)?;
    write_file(&out.join("checkpoint.sig"), sig)?;
    write_file(&out.join("public-key.txt"), format!("{key}\n"))?;
    write_file(&out.join("public-key.pem"), key.pem())?;
    write_file(&out.join("verify_pack.py"), VERIFY_SCRIPT)?;

    let policy_match = policy.map(|p| {
        let configured: BTreeSet<String> =
            p.engine.files().iter().map(|f| f.sha256.clone()).collect();
        read.last_loaded.as_ref() == Some(&configured)
    });
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
    let events = (last - first + 1) as usize;
    let facts = readme::Facts {
        from: &from,
        to: &to,
        origin: &cp.origin,
        key: &key.to_string(),
        tree_size: cp.size,
        first: first as usize,
        last: last as usize,
        first_time: &read.first_time,
        last_time: &read.last_time,
        after: after.is_some(),
        complete_until: &complete_until,
        events,
        kinds: &read.kinds,
        tables: &tables,
        identities: &identities,
        policy_match,
        proofs: proven.len(),
    };
    write_file(&out.join("README.md"), readme::readme(&facts))?;
    write_file(&out.join("VERIFY.md"), readme::verify(&facts))?;
    Ok(Written {
        entries: events,
        proofs: proven.len(),
        tree_size: cp.size,
        complete_until: after.is_none().then_some(complete_until),
    })
}

/// What the pass over the log up to the period's end read.
struct PeriodRead {
    tables: Tables,
    identities: Identities,
    kinds: BTreeMap<&'static str, usize>,
    /// The SHA-256 of the policy files the log last recorded as loaded.
    last_loaded: Option<BTreeSet<String>>,
    first_time: String,
    last_time: String,
}

/// Reads entries 0 to `last` (of a verified log): who could act from all of
/// them, and from `first` on the tables, the count by kind and
/// `events.jsonl`, written as it is read.
async fn read_period(
    log: &LogFile,
    period: &Period,
    first: u64,
    last: u64,
    out: &Path,
) -> Result<PeriodRead> {
    let path = out.join("events.jsonl");
    let mut events = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?,
    );
    let mut read = PeriodRead {
        tables: Tables::new(out)
            .with_context(|| format!("writing the tables in {}", out.display()))?,
        identities: Identities::new(period),
        kinds: BTreeMap::new(),
        last_loaded: None,
        first_time: String::new(),
        last_time: String::new(),
    };
    let mut failed: Option<anyhow::Error> = None;
    log.rows(|row| {
        let e = match Entry::decode(&row.bytes) {
            Ok(e) => e,
            Err(e) => {
                failed = Some(anyhow!("entry at storage position {}: {e}", row.position));
                return ControlFlow::Break(());
            }
        };
        if e.seq > last {
            return ControlFlow::Break(());
        }
        read.identities.observe(&e);
        if e.event.kind == EventKind::PolicyLoaded {
            read.last_loaded = loaded_files(&e);
        }
        if e.seq < first {
            return ControlFlow::Continue(());
        }
        if let Err(err) = read.tables.observe(&e) {
            failed = Some(anyhow!("writing the tables in {}: {err}", out.display()));
            return ControlFlow::Break(());
        }
        *read.kinds.entry(e.event.kind.as_str()).or_default() += 1;
        if e.seq == first {
            read.first_time = e.event.time.clone();
        }
        if e.seq == last {
            read.last_time = e.event.time.clone();
        }
        let written = events
            .write_all(&row.bytes)
            .and_then(|()| events.write_all(b"\n"));
        if let Err(err) = written {
            failed = Some(anyhow!("writing {}: {err}", path.display()));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .await?;
    if let Some(e) = failed {
        return Err(e);
    }
    events
        .flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(read)
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

/// The SHA-256 of the files a `policy_loaded` entry records.
fn loaded_files(e: &Entry) -> Option<BTreeSet<String>> {
    e.event
        .payload
        .get("files")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f.get("sha256").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
}
