//! The `gatehouse audit` command line.

use super::commands::{
    check_consistency, check_proof, parse_verifier, print_report, prove, prove_consistency,
    ConsistencyProof, InclusionProof,
};
use super::log_file::LogFile;
use super::pack::{AccessPolicy, Period};
use super::seal::{self, Sealing};
use super::segments::SegmentPlaces;
use crate::config::RawConfig;
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use gatehouse_evidence::export::{Exported, Format};
use gatehouse_evidence::{Checkpoint, Entry, VerifierKey};
use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// `gatehouse audit …`
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the public key that verifies this node's checkpoints (give it to your auditor).
    PublicKey,
    /// Recompute the tree, check every checkpoint and witness copy; exits 1 on any finding.
    Verify {
        /// A witness file of checkpoints to check against as well (repeatable;
        /// default: the configuration's witness_files).
        #[arg(long = "witness")]
        witnesses: Vec<PathBuf>,
        /// JSON output: {"ok", "log", "entries", "checkpoints_verified", "verified_size", "findings": [{"kind", "message", …}]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: Source,
    },
    /// Verify every node's log as copied to the shared store, and the
    /// nodes' cosignatures of each other's checkpoints; exits 1 on any finding.
    Fleet {
        /// JSON output: {"ok", "nodes": [{"node", "key", "entries", "checkpoints_verified", "newest_checkpoint", "cosigned_through", "findings", "warnings"}]}.
        #[arg(long)]
        json: bool,
        /// A node's key as the auditor holds it, NODE=KEY (the key as text or a file; repeatable):
        /// a different key published in the store is a finding.
        #[arg(long = "key")]
        keys: Vec<String>,
    },
    /// Print an inclusion proof of one entry against the newest checkpoint.
    Proof {
        /// The entry's sequence number.
        seq: u64,
        /// Write the proof to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: Source,
    },
    /// Print a consistency proof: the log signed at an older checkpoint is a prefix of the newest.
    Consistency {
        /// The older checkpoint's size (entries it covers).
        #[arg(long)]
        from: u64,
        /// Write the proof to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: Source,
    },
    /// Check a consistency proof offline, with only the public key.
    VerifyConsistency {
        /// The proof file (from `audit consistency`).
        file: PathBuf,
        /// The public key (text or a file holding it).
        #[arg(long)]
        key: String,
    },
    /// List the sealed segments: entries, times, file, SHA-256, where they are.
    Segments {
        /// JSON output: [{"number", "first", "last", "entries", "first_time", "last_time", "file", "sha256", "bytes", "sealed_at", "archived_to", "archived_at", "found_at"}].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: Source,
    },
    /// Check an inclusion proof offline, with only the public key.
    VerifyProof {
        /// The proof file (from `audit proof`).
        file: PathBuf,
        /// The public key (text or a file holding it).
        #[arg(long)]
        key: String,
        /// JSON output: {"ok": true, "seq", "kind", "time", "log", "tree_size", "key"} or {"ok": false, "error"}.
        #[arg(long)]
        json: bool,
    },
    /// Export events as JSON lines, OCSF or CEF.
    Export {
        /// Output format: jsonl, ocsf or cef.
        #[arg(long, default_value = "jsonl")]
        format: Format,
        /// Only events at or after this time (RFC 3339, or a date: 2026-11-01).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time.
        #[arg(long)]
        until: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: Source,
    },
}

/// `gatehouse evidence`: the SOC 2 evidence pack for a period.
#[derive(clap::Args)]
pub struct PackArgs {
    /// Start of the period: a date (its midnight UTC) or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// End of the period: a date (included: up to the next midnight UTC) or
    /// an RFC 3339 time (excluded).
    #[arg(long)]
    to: String,
    /// The folder to write (new, or empty).
    #[arg(long)]
    out: PathBuf,
    /// JSON output: {"out", "entries", "proofs", "tree_size", "complete_until"}
    /// (with --all-nodes: {"out", "nodes": [{"node", "out", …} or {"node", "skipped"}]}).
    #[arg(long)]
    json: bool,
    /// Several nodes: the pack of node NODE's log, as copied to the shared store.
    #[arg(long, conflicts_with = "all_nodes")]
    node: Option<String>,
    /// Several nodes: a pack for every node's log (OUT/<node>/), from the
    /// copies in the shared store, with the fleet's verification (OUT/fleet.json).
    #[arg(long)]
    all_nodes: bool,
    #[command(flatten)]
    source: Source,
}

/// Writes an evidence pack; `server` is the gateway API asked for a fresh
/// checkpoint (default: the configuration's).
pub async fn run_pack(args: &PackArgs, config: &Path, server: Option<&str>) -> Result<ExitCode> {
    let from = parse_time("--from", &args.from)?;
    let mut to = parse_time("--to", &args.to)?;
    if args.to.len() == 10 {
        to += std::time::Duration::from_secs(24 * 3600);
    }
    if to <= from {
        bail!("--to must be after --from");
    }
    if args.node.is_some() || args.all_nodes {
        let period = Period { from, to };
        return super::fleet::run_pack(config, &period, args.node.as_deref(), &args.out, args.json)
            .await;
    }
    let r = resolve(&args.source, config)?;
    let raw = if config.exists() {
        Some(RawConfig::parse(config).map_err(|p| anyhow!("{p}"))?)
    } else {
        None
    };
    // The gateway signs what it has logged, so the last events are proven
    // now rather than after its checkpoint_interval.
    let interval = raw
        .as_ref()
        .and_then(|r| r.evidence().ok())
        .map(|e| e.checkpoint_interval);
    let sealing = if args.source.log.is_some() {
        Sealing::NotAsked {
            why: "--log names the log file, so no gateway is asked for a checkpoint".into(),
            interval,
        }
    } else {
        seal::ask(config, server, interval).await
    };
    let log = r.open(&r.witnesses).await?;
    let policy = access_policy(raw.as_ref(), config)?;
    let written = super::pack::write(
        &log,
        &r.key,
        &Period { from, to },
        policy.as_ref(),
        &sealing,
        &args.out,
    )
    .await?;
    if args.json {
        let out = serde_json::json!({
            "out": args.out.display().to_string(),
            "entries": written.entries,
            "proofs": written.proofs,
            "tree_size": written.tree_size,
            "complete_until": written.complete_until,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "wrote the evidence pack to {}: {} events, {} inclusion proofs against the checkpoint of {} entries; \
         check it with `python3 verify_pack.py` in that folder",
        args.out.display(),
        written.entries,
        written.proofs,
        written.tree_size
    );
    if let Some(until) = &written.complete_until {
        eprintln!(
            "note: the pack is complete up to {until} (its last signed entry), not up to {}: \
             the pack and its verifier say so; later events belong to a later pack",
            humantime::format_rfc3339_millis(to)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy and connections of the configuration, which the access
/// listing of a pack needs (none, with a note, without policy files).
pub(super) fn access_policy(
    raw: Option<&RawConfig>,
    config: &Path,
) -> Result<Option<AccessPolicy>> {
    let policy = match raw {
        Some(raw) => match raw.policy_files() {
            Some(files) if !files.is_empty() => {
                let engine = gatehouse_policy::PolicyEngine::load(&files)
                    .map_err(|p| anyhow!("{p}\nthe pack lists what identities may reach with these policy files: fix them first"))?;
                Some(AccessPolicy {
                    engine,
                    connections: raw.connection_kinds(),
                })
            }
            _ => None,
        },
        None => None,
    };
    if policy.is_none() {
        eprintln!(
            "note: no policy files in {}: identities.csv will not say what each identity may reach",
            config.display()
        );
    }
    Ok(policy)
}

/// Which log, and which key verifies it.
#[derive(clap::Args)]
pub struct Source {
    /// The evidence log file (default: evidence.db in the configuration's data_dir).
    #[arg(long)]
    log: Option<PathBuf>,
    /// The public key (text or a file holding it; default: derived from the
    /// configuration's signing key).
    #[arg(long)]
    key: Option<String>,
    /// A folder holding sealed segments moved off this host (repeatable;
    /// searched before the configured segment and archive folders).
    #[arg(long = "segments")]
    segments: Vec<PathBuf>,
}

struct Resolved {
    log: PathBuf,
    key: VerifierKey,
    witnesses: Vec<PathBuf>,
    places: SegmentPlaces,
}

impl Resolved {
    async fn open(&self, witnesses: &[PathBuf]) -> Result<LogFile> {
        LogFile::open(&self.log, witnesses, &self.places).await
    }
}

fn resolve(source: &Source, config: &Path) -> Result<Resolved> {
    // The configuration is read only for what the flags leave out.
    let configured = if source.log.is_none() || source.key.is_none() {
        let raw = RawConfig::parse(config).map_err(|p| {
            anyhow!("{p}\n(or pass --log and --key to check a log without a configuration)")
        })?;
        let spec = raw.evidence().map_err(|p| anyhow!("{p}"))?;
        Some((raw.data_dir(), spec))
    } else {
        None
    };
    let (log, witnesses, mut places) = match (&source.log, &configured) {
        (Some(l), _) => (l.clone(), Vec::new(), SegmentPlaces::beside(l)),
        (None, Some((data_dir, spec))) => (
            super::log_path(data_dir),
            spec.witness_files.clone(),
            SegmentPlaces::configured(&spec.segments),
        ),
        (None, None) => unreachable!("the configuration is read when --log is absent"),
    };
    places.dirs.splice(0..0, source.segments.iter().cloned());
    let key = match (&source.key, &configured) {
        (Some(k), _) => parse_verifier(k)?,
        (None, Some((data_dir, spec))) => super::verifier_key(spec, data_dir)?,
        (None, None) => unreachable!("the configuration is read when --key is absent"),
    };
    Ok(Resolved {
        log,
        key,
        witnesses,
        places,
    })
}

/// Parses `--since`/`--until`: RFC 3339, or a date meaning its midnight UTC.
fn parse_time(flag: &str, s: &str) -> Result<SystemTime> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full).map_err(|e| {
        anyhow!("{flag} {s:?} is not a time such as 2026-11-01 or 2026-11-01T12:00:00Z: {e}")
    })
}

/// Writes `value` as pretty JSON to `out`, or to stdout.
fn write_json(value: &impl serde::Serialize, out: Option<&Path>) -> Result<ExitCode> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs an audit command; `config` is the configuration file.
pub async fn run(cmd: &AuditCommand, config: &Path) -> Result<ExitCode> {
    match cmd {
        AuditCommand::PublicKey => {
            let raw = RawConfig::parse(config).map_err(|p| anyhow!("{p}"))?;
            let spec = raw.evidence().map_err(|p| anyhow!("{p}"))?;
            println!("{}", super::verifier_key(&spec, &raw.data_dir())?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            witnesses,
            source,
            json,
        } => {
            let r = resolve(source, config)?;
            let witnesses = if witnesses.is_empty() {
                r.witnesses.clone()
            } else {
                witnesses.clone()
            };
            let log = r.open(&witnesses).await?;
            let pass = log.verify(&r.key, |_| ()).await?;
            let report = &pass.report;
            if *json {
                let out = super::commands::report_json(&r.log, &pass, witnesses.len());
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(if report.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            Ok(if print_report(&r.log, &pass, witnesses.len()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Fleet { json, keys } => super::fleet::run(config, *json, keys).await,
        AuditCommand::Proof { seq, out, source } => {
            let r = resolve(source, config)?;
            let log = r.open(&r.witnesses).await?;
            let proof = prove(&log, &r.key, *seq).await?;
            write_json(&proof, out.as_deref())
        }
        AuditCommand::Consistency { from, out, source } => {
            let r = resolve(source, config)?;
            let log = r.open(&r.witnesses).await?;
            let proof = prove_consistency(&log, &r.key, *from).await?;
            write_json(&proof, out.as_deref())
        }
        AuditCommand::VerifyConsistency { file, key } => {
            let key = parse_verifier(key)?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let proof: ConsistencyProof = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a consistency proof", file.display()))?;
            match check_consistency(&proof, &key) {
                Ok((old, new)) => {
                    println!(
                        "OK: the log {} signed at {} entries is a prefix of the log signed at {}, by key {}",
                        key.name(),
                        old.size,
                        new.size,
                        key
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("FAILED: {e:#}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Segments { json, source } => {
            let r = resolve(source, config)?;
            super::segments::list(&r.log, &r.places, *json).await
        }
        AuditCommand::VerifyProof { file, key, json } => {
            let key = parse_verifier(key)?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let proof: InclusionProof = serde_json::from_str(&text)
                .with_context(|| format!("{}: not an inclusion proof", file.display()))?;
            let checked = check_proof(&proof, &key);
            if *json {
                let out = match &checked {
                    Ok(entry) => serde_json::json!({
                        "ok": true,
                        "seq": entry.seq,
                        "kind": entry.event.kind.as_str(),
                        "time": entry.event.time,
                        "log": key.name(),
                        "tree_size": proof.tree_size,
                        "key": key.to_string(),
                    }),
                    Err(e) => serde_json::json!({"ok": false, "error": format!("{e:#}")}),
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(if checked.is_ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            match checked {
                Ok(entry) => {
                    println!(
                        "OK: entry {} ({} at {}) is in the log {} signed at size {} by key {}",
                        entry.seq,
                        entry.event.kind.as_str(),
                        entry.event.time,
                        key.name(),
                        proof.tree_size,
                        key
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("FAILED: {e:#}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Export {
            format,
            since,
            until,
            out,
            source,
        } => {
            let since = since
                .as_deref()
                .map(|s| parse_time("--since", s))
                .transpose()?;
            let until = until
                .as_deref()
                .map(|s| parse_time("--until", s))
                .transpose()?;
            if let (Some(a), Some(b)) = (since, until) {
                if b <= a {
                    bail!("--until must be after --since");
                }
            }
            let r = resolve(source, config)?;
            let log = r.open(&r.witnesses).await?;
            log.verified(&r.key, |_| ()).await?;
            let checkpoints: Vec<Checkpoint> = log
                .checkpoints(&r.key)
                .await?
                .into_iter()
                .map(|(cp, _)| cp)
                .collect();
            let mut w: Box<dyn std::io::Write> = match out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut n = 0u64;
            // Sessions are followed from the log's start, so events of a
            // session that began before --since still carry who and where.
            let mut sessions = gatehouse_evidence::export::SessionIndex::default();
            // The first checkpoint covering each entry: entries come in order.
            let mut covering = 0usize;
            let mut failed: Option<anyhow::Error> = None;
            let mut next_seq = 0u64;
            log.rows(|row| {
                let entry = match Entry::decode(&row.bytes) {
                    Ok(e) => e,
                    Err(e) => {
                        failed = Some(anyhow!("entry at storage position {}: {e}", row.position));
                        return ControlFlow::Break(());
                    }
                };
                // Verified, so the entries run on by number; a reader
                // must still never skip one silently.
                if entry.seq != next_seq {
                    failed = Some(anyhow!(
                        "entry {next_seq} is missing from the log read after verification: run the export again"
                    ));
                    return ControlFlow::Break(());
                }
                next_seq += 1;
                let t = humantime::parse_rfc3339(&entry.event.time).ok();
                if since.is_some_and(|s| t.is_some_and(|t| t < s))
                    || until.is_some_and(|u| t.is_some_and(|t| t >= u))
                {
                    sessions.observe(&entry);
                    return ControlFlow::Continue(());
                }
                while checkpoints
                    .get(covering)
                    .is_some_and(|c| c.size <= entry.seq)
                {
                    covering += 1;
                }
                let line = Exported {
                    entry: &entry,
                    bytes: &row.bytes,
                    checkpoint: checkpoints.get(covering),
                    session: sessions.of(&entry),
                }
                .line(*format);
                sessions.observe(&entry);
                if let Err(e) = writeln!(w, "{line}") {
                    failed = Some(e.into());
                    return ControlFlow::Break(());
                }
                n += 1;
                ControlFlow::Continue(())
            })
            .await?;
            if let Some(e) = failed {
                return Err(e);
            }
            w.flush()?;
            if out.is_some() {
                eprintln!("exported {n} event(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
