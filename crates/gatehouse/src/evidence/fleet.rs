//! `gatehouse audit fleet`: every node's evidence log as copied to the
//! shared store, verified from here: each replica's tree recomputed and
//! its checkpoints checked with the node's published key, and every
//! cosignature checked with its witness's key against the checkpoint it
//! cosigns. Findings name their node.

use crate::config::{RawConfig, StoreSpec};
use anyhow::{anyhow, bail, Context, Result};
use gatehouse_evidence::{verify_store, LogSource, VerifierKey};
use gatehouse_store::{EvidenceReplicas, PgStore};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// One node's verification.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// Its published key.
    pub key: String,
    /// Entries in its replica.
    pub entries: u64,
    /// Its checkpoints that verified against the replica's tree.
    pub checkpoints_verified: u64,
    /// The size its newest checkpoint that verifies covers.
    pub newest_checkpoint: u64,
    /// For each witness, the largest of this node's checkpoints it cosigned
    /// (and whose cosignature verified).
    pub cosigned_through: HashMap<String, u64>,
    /// What is wrong, each naming the node.
    pub findings: Vec<String>,
    /// What an auditor should know but is not wrong (a newest checkpoint
    /// not cosigned yet).
    pub warnings: Vec<String>,
}

/// Verifies every node's replica; the reports, by node. `pinned` are keys
/// the auditor holds (node → key): a published key that differs is a
/// finding.
pub async fn verify_fleet(
    replicas: &EvidenceReplicas,
    pinned: &HashMap<String, String>,
) -> Result<Vec<NodeReport>> {
    let keys: HashMap<String, String> = replicas.node_keys().await?.into_iter().collect();
    let nodes = replicas.known_nodes().await?;
    let several = nodes.len() > 1;
    let mut reports = Vec::new();
    for node in &nodes {
        let mut r = NodeReport {
            node: node.clone(),
            key: keys.get(node).cloned().unwrap_or_default(),
            entries: 0,
            checkpoints_verified: 0,
            newest_checkpoint: 0,
            cosigned_through: HashMap::new(),
            findings: Vec::new(),
            warnings: Vec::new(),
        };
        if let Err(e) = verify_node(replicas, &keys, pinned, several, &mut r).await {
            r.findings.push(format!(
                "node {node}: could not be read from the store: {e:#}"
            ));
        }
        reports.push(r);
    }
    for node in pinned.keys() {
        if !nodes.contains(node) {
            reports.push(NodeReport {
                node: node.clone(),
                key: String::new(),
                entries: 0,
                checkpoints_verified: 0,
                newest_checkpoint: 0,
                cosigned_through: HashMap::new(),
                findings: vec![format!(
                    "node {node}: its key was given with --key, but the store holds nothing of its log"
                )],
                warnings: Vec::new(),
            });
        }
    }
    Ok(reports)
}

/// Verifies one node's copy into `r`.
async fn verify_node(
    replicas: &EvidenceReplicas,
    keys: &HashMap<String, String>,
    pinned: &HashMap<String, String>,
    several: bool,
    r: &mut NodeReport,
) -> Result<()> {
    let node = r.node.clone();
    let Some(key_text) = keys.get(&node) else {
        r.findings.push(format!(
            "node {node}: its checkpoints or cosignatures are in the store, but no key: its key row was removed"
        ));
        return Ok(());
    };
    if let Some(want) = pinned.get(&node) {
        if want != key_text {
            r.findings.push(format!(
                "node {node}: the store publishes the key {key_text}, not the one given with --key ({want})"
            ));
            return Ok(());
        }
    }
    let key = match VerifierKey::parse(key_text) {
        Ok(k) => k,
        Err(e) => {
            r.findings
                .push(format!("node {node}: its published key is unreadable: {e}"));
            return Ok(());
        }
    };
    let replica = replicas.replica_log(&node);
    let report = verify_store(LogSource::store(&replica), Vec::new(), &key, |_| ())
        .await
        .map_err(|e| anyhow!("reading its copy: {e}"))?;
    r.entries = report.entries;
    r.checkpoints_verified = report.checkpoints_verified;
    r.findings
        .extend(report.findings.iter().map(|f| format!("node {node}: {f}")));
    if report.more_findings > 0 {
        r.findings.push(format!(
            "node {node}: and {} more findings",
            report.more_findings
        ));
    }
    // The node's own checkpoints by size: what a cosignature must match.
    let mut signed: HashMap<u64, String> = HashMap::new();
    for (size, note) in replicas.checkpoints(&node).await? {
        if let Ok(cp) = key.open(&note) {
            r.newest_checkpoint = r.newest_checkpoint.max(size);
            signed.insert(size, cp.body());
        }
    }
    for (size, witness, note) in replicas.cosignatures(&node).await? {
        if witness == node {
            r.findings.push(format!(
                "node {node}: a cosignature of its checkpoint at size {size} names the node itself as its witness"
            ));
            continue;
        }
        let checked = keys
            .get(&witness)
            .ok_or_else(|| format!("witness {witness} published no key"))
            .and_then(|k| VerifierKey::parse(k).map_err(|e| e.to_string()))
            .and_then(|k| k.witnessed(&note).map_err(|e| e.to_string()));
        match checked {
            Err(e) => r.findings.push(format!(
                "node {node}: the cosignature by {witness} of its checkpoint at size {size} does not verify: {e}"
            )),
            Ok(cp) if signed.get(&size) != Some(&cp.body()) => r.findings.push(format!(
                "node {node}: {witness} cosigned a checkpoint at size {size} that is not the one the node's copy holds (root {}): the log or its checkpoints were replaced after they were witnessed",
                hex::encode(cp.root)
            )),
            Ok(_) => {
                let through = r.cosigned_through.entry(witness).or_insert(0);
                *through = (*through).max(size);
            }
        }
    }
    let cosigned = r.cosigned_through.values().copied().max().unwrap_or(0);
    if several && r.newest_checkpoint > cosigned {
        r.warnings.push(format!(
            "node {node}: its newest checkpoint ({} entries) is not cosigned by another node yet (cosigned through {cosigned})",
            r.newest_checkpoint
        ));
    }
    Ok(())
}

/// The reports as text: a line per node, then the findings.
pub fn fleet_text(reports: &[NodeReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let mut witnesses: Vec<String> = r
            .cosigned_through
            .iter()
            .map(|(w, s)| format!("{w} through {s}"))
            .collect();
        witnesses.sort();
        let witnessed = if witnesses.is_empty() {
            "not cosigned yet".to_string()
        } else {
            format!("cosigned by {}", witnesses.join(", "))
        };
        let state = if r.findings.is_empty() {
            "ok"
        } else {
            "FINDINGS"
        };
        let _ = writeln!(
            out,
            "node {}: {state}: {} entries, {} checkpoints verified (newest at {}), {witnessed}",
            r.node, r.entries, r.checkpoints_verified, r.newest_checkpoint
        );
    }
    for f in reports.iter().flat_map(|r| &r.findings) {
        let _ = writeln!(out, "  {f}");
    }
    for w in reports.iter().flat_map(|r| &r.warnings) {
        let _ = writeln!(out, "  note: {w}");
    }
    out
}

/// Runs `gatehouse audit fleet`; `pinned` are `NODE=KEY` pairs (the key
/// as text or a file holding it).
pub async fn run(config: &Path, json: bool, pinned: &[String]) -> Result<ExitCode> {
    let mut keys = HashMap::new();
    for p in pinned {
        let (node, key) = p.split_once('=').ok_or_else(|| {
            anyhow!("--key {p:?}: write NODE=KEY (the key as text, or a file holding it)")
        })?;
        let key = super::commands::parse_verifier(key)?;
        keys.insert(node.to_string(), key.to_string());
    }
    let raw = RawConfig::parse(config).map_err(|p| anyhow!("{p}"))?;
    let StoreSpec::Shared(shared) = raw.store().map_err(|p| anyhow!("{p}"))? else {
        bail!(
            "{}: no [store] url: with the embedded store there is one node; use `gatehouse audit verify`",
            config.display()
        );
    };
    let replicas = PgStore::evidence_reader(&shared.settings("gatehouse-audit")).await?;
    let reports = verify_fleet(&replicas, &keys).await?;
    let clean = !reports.is_empty() && reports.iter().all(|r| r.findings.is_empty());
    if json {
        let out = serde_json::json!({ "ok": clean, "nodes": reports });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if reports.is_empty() {
        println!("no node has copied its evidence log to the shared store yet");
    } else {
        print!("{}", fleet_text(&reports));
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the evidence pack of node `node`'s log (or, with `None`, of
/// every node's, each in `out/<node>/`, with the fleet's verification in
/// `out/fleet.json`), from the copies in the shared store.
pub async fn run_pack(
    config: &Path,
    period: &super::pack::Period,
    node: Option<&str>,
    out: &Path,
    json: bool,
) -> Result<ExitCode> {
    let raw = RawConfig::parse(config).map_err(|p| anyhow!("{p}"))?;
    let StoreSpec::Shared(shared) = raw.store().map_err(|p| anyhow!("{p}"))? else {
        bail!(
            "{}: no [store] url: --node and --all-nodes read the copies of the nodes' logs in a shared store",
            config.display()
        );
    };
    let policy = super::cli::access_policy(Some(&raw), config)?;
    let interval = raw.evidence().ok().map(|e| e.checkpoint_interval);
    let replicas = PgStore::evidence_reader(&shared.settings("gatehouse-evidence")).await?;
    let written = write_packs(&replicas, period, policy.as_ref(), interval, node, out).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        for n in written["nodes"].as_array().into_iter().flatten() {
            match n["skipped"].as_str() {
                Some(why) => eprintln!("node {}: no pack: {why}", n["node"].as_str().unwrap_or("?")),
                None => eprintln!(
                    "node {}: wrote {}: {} events, {} inclusion proofs against its checkpoint of {} entries",
                    n["node"].as_str().unwrap_or("?"),
                    n["out"].as_str().unwrap_or("?"),
                    n["entries"],
                    n["proofs"],
                    n["tree_size"]
                ),
            }
        }
    }
    Ok(if written["ok"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn write_packs(
    replicas: &EvidenceReplicas,
    period: &super::pack::Period,
    policy: Option<&super::pack::AccessPolicy>,
    interval: Option<std::time::Duration>,
    only: Option<&str>,
    out: &Path,
) -> Result<serde_json::Value> {
    let keys: HashMap<String, String> = replicas.node_keys().await?.into_iter().collect();
    let mut nodes: Vec<&String> = keys.keys().collect();
    nodes.sort();
    if let Some(only) = only {
        if !keys.contains_key(only) {
            bail!(
                "node {only} has not copied its evidence log to the shared store; nodes that have: {}",
                nodes.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        nodes.retain(|n| n.as_str() == only);
    }
    if only.is_none() && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} is not empty: name a new folder", out.display());
    }
    let mut listed = Vec::new();
    let mut ok = true;
    for node in nodes {
        // Node ids come from the store: one that cannot name a folder of
        // its own (a path, `..`) gets no pack, only a line saying so.
        let folder_safe = !matches!(node.as_str(), "." | "..")
            && node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if only.is_none() && !folder_safe {
            listed.push(serde_json::json!({
                "node": node,
                "skipped": "its id cannot name a folder (use --node with --out to write its pack)",
            }));
            continue;
        }
        let key = VerifierKey::parse(&keys[node])
            .map_err(|e| anyhow!("node {node}: its published key is unreadable: {e}"))?;
        let log = super::log_file::LogFile::replica(replicas.replica_log(node));
        let dir = match only {
            Some(_) => out.to_path_buf(),
            None => out.join(node),
        };
        // No node is asked to sign: the pack covers what the node had
        // copied and signed, up to its newest checkpoint in the store (and
        // says so when that is short of the period's end).
        let newest = replicas
            .checkpoints(node)
            .await?
            .last()
            .map_or(0, |(size, _)| *size);
        let sealing = match newest {
            0 => super::seal::Sealing::NotAsked {
                why: format!("node {node} has published no checkpoint to the shared store yet"),
                interval,
            },
            n => super::seal::Sealing::Sealed(n),
        };
        match super::pack::write(&log, &key, period, policy, &sealing, &dir).await {
            Ok(w) => listed.push(serde_json::json!({
                "node": node,
                "out": dir.display().to_string(),
                "entries": w.entries,
                "proofs": w.proofs,
                "tree_size": w.tree_size,
                "complete_until": w.complete_until,
            })),
            // With every node: one that logged nothing in the period (or
            // has signed nothing of it yet) is said, not fatal.
            Err(e) if only.is_none() => {
                listed.push(serde_json::json!({ "node": node, "skipped": format!("{e:#}") }));
            }
            Err(e) => return Err(e.context(format!("node {node}"))),
        }
    }
    if only.is_none() {
        let reports = verify_fleet(replicas, &HashMap::new()).await?;
        ok = !reports.is_empty() && reports.iter().all(|r| r.findings.is_empty());
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let fleet = out.join("fleet.json");
        std::fs::write(
            &fleet,
            serde_json::to_string_pretty(&serde_json::json!({ "ok": ok, "nodes": reports }))?,
        )
        .with_context(|| format!("writing {}", fleet.display()))?;
    }
    Ok(serde_json::json!({ "ok": ok, "out": out.display().to_string(), "nodes": listed }))
}
