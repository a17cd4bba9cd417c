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
    /// The size its newest checkpoint covers.
    pub newest_checkpoint: u64,
    /// For each witness, the largest of this node's checkpoints it cosigned
    /// (and whose cosignature verified).
    pub cosigned_through: HashMap<String, u64>,
    /// What is wrong, each naming the node.
    pub findings: Vec<String>,
}

/// Verifies every node's replica; the reports, by node.
pub async fn verify_fleet(replicas: &EvidenceReplicas) -> Result<Vec<NodeReport>> {
    let keys: HashMap<String, String> = replicas.node_keys().await?.into_iter().collect();
    let mut nodes: Vec<&String> = keys.keys().collect();
    nodes.sort();
    let mut reports = Vec::new();
    for node in nodes {
        let key_text = &keys[node];
        let mut r = NodeReport {
            node: node.clone(),
            key: key_text.clone(),
            entries: 0,
            checkpoints_verified: 0,
            newest_checkpoint: 0,
            cosigned_through: HashMap::new(),
            findings: Vec::new(),
        };
        let key = match VerifierKey::parse(key_text) {
            Ok(k) => k,
            Err(e) => {
                r.findings
                    .push(format!("node {node}: its published key is unreadable: {e}"));
                reports.push(r);
                continue;
            }
        };
        let replica = replicas.replica_log(node);
        let report = verify_store(LogSource::store(&replica), Vec::new(), &key, |_| ())
            .await
            .map_err(|e| anyhow!("node {node}: reading its replica: {e}"))?;
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
        for (size, note) in replicas.checkpoints(node).await? {
            r.newest_checkpoint = r.newest_checkpoint.max(size);
            if let Ok(cp) = key.open(&note) {
                signed.insert(size, cp.body());
            }
        }
        for (size, witness, note) in replicas.cosignatures(node).await? {
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
                    "node {node}: {witness} cosigned a checkpoint at size {size} that is not the one the node's replica holds (root {}): the log or its checkpoints were replaced after they were witnessed",
                    hex::encode(cp.root)
                )),
                Ok(_) => {
                    let through = r.cosigned_through.entry(witness).or_insert(0);
                    *through = (*through).max(size);
                }
            }
        }
        reports.push(r);
    }
    Ok(reports)
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
    out
}

/// Runs `gatehouse audit fleet`.
pub async fn run(config: &Path, json: bool) -> Result<ExitCode> {
    let raw = RawConfig::parse(config).map_err(|p| anyhow!("{p}"))?;
    let StoreSpec::Shared(shared) = raw.store().map_err(|p| anyhow!("{p}"))? else {
        bail!(
            "{}: no [store] url: with the embedded store there is one node; use `gatehouse audit verify`",
            config.display()
        );
    };
    let store = PgStore::connect(shared.settings("gatehouse-audit")).await?;
    let reports = verify_fleet(&store.evidence_replicas()).await;
    store.close().await;
    let reports = reports?;
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
    let store = PgStore::connect(shared.settings("gatehouse-evidence")).await?;
    let replicas = store.evidence_replicas();
    let written = write_packs(&replicas, period, policy.as_ref(), interval, node, out).await;
    store.close().await;
    let written = written?;
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
        let reports = verify_fleet(replicas).await?;
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
