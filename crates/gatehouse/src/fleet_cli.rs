//! `gatehouse nodes …` (through the running gateway's API) and
//! `gatehouse store …` (straight to the configured store).

use crate::admin::AdminClient;
use crate::config::{RawConfig, StoreSpec};
use anyhow::{bail, Result};
use gatehouse_core::{NodeRecord, Timestamp};
use gatehouse_store::{PgStore, SchemaState};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `gatehouse nodes …`.
#[derive(clap::Subcommand)]
pub enum NodesCommand {
    /// The gateway nodes sharing the store, with their last heartbeat.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `gatehouse store …`.
#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Bring a shared PostgreSQL store's schema up to this gatehouse's
    /// version (run once per upgrade, before the new nodes start).
    Migrate,
    /// Whether the shared store's schema matches this gatehouse.
    Status,
}

/// Runs `gatehouse nodes …`.
pub async fn nodes(cmd: &NodesCommand, client: &AdminClient) -> Result<ExitCode> {
    match cmd {
        NodesCommand::List { json } => {
            let list = client.list_nodes().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", nodes_table(&list, Timestamp::now()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The nodes as a table: id, API address, version, state, last heartbeat.
pub fn nodes_table(list: &[NodeRecord], now: Timestamp) -> String {
    let mut out = format!(
        "{:<24}  {:<21}  {:<8}  {:<28}  {}\n",
        "NODE", "API", "VERSION", "STATE", "LAST HEARTBEAT"
    );
    for n in list {
        let state = match (&n.stopped_at, &n.lost) {
            (Some(at), _) => format!("stopped {}", at.rfc3339()),
            (None, Some((_, by))) => format!("lost (sessions ended by {by})"),
            (None, None) => "running".to_string(),
        };
        let ago = (now.unix_millis() - n.heartbeat_at.unix_millis()).max(0) / 1000;
        let _ = writeln!(
            out,
            "{:<24}  {:<21}  {:<8}  {:<28}  {} ({ago}s ago)",
            n.id,
            n.api_address,
            n.version,
            state,
            n.heartbeat_at.rfc3339()
        );
    }
    out
}

/// Runs `gatehouse store …` against the store `config` names.
pub async fn store(cmd: &StoreCommand, config: &Path) -> Result<ExitCode> {
    let raw = RawConfig::parse(config).map_err(|p| anyhow::anyhow!("{p}"))?;
    let spec = raw.store().map_err(|p| anyhow::anyhow!("{p}"))?;
    let StoreSpec::Shared(shared) = spec else {
        bail!(
            "{}: no [store] url: this node uses its embedded SQLite store, which migrates itself at start; `gatehouse store` is for a shared PostgreSQL store",
            config.display()
        );
    };
    let settings = shared.settings("gatehouse-cli");
    match cmd {
        StoreCommand::Migrate => {
            let (before, after) = PgStore::migrate(&settings).await?;
            if before == after {
                println!(
                    "the store at {} is at schema version {after}: nothing to do",
                    shared.url
                );
            } else {
                println!(
                    "the store at {} went from schema version {before} to {after}",
                    shared.url
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Status => {
            let state = PgStore::schema_state(&settings).await?;
            let (line, ok) = match state {
                SchemaState::Empty => (
                    "empty: the first node to start sets it up (or run `gatehouse store migrate`)"
                        .to_string(),
                    true,
                ),
                SchemaState::Current => ("at this gatehouse's schema version".to_string(), true),
                SchemaState::Older { applied, known } => (
                    format!("at schema version {applied}, older than this gatehouse's {known}: run `gatehouse store migrate`"),
                    false,
                ),
                SchemaState::Newer { applied, known } => (
                    format!("at schema version {applied}, newer than this gatehouse's {known}: upgrade this gatehouse"),
                    false,
                ),
            };
            println!("the store at {}: {line}", shared.url);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
