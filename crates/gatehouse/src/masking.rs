//! `gatehouse masking …`: the columns the masking detectors found sensitive
//! (through the running gateway's API): list them, remove one, or sample a
//! connection's tables to find them before any query shows one.

use crate::admin::AdminClient;
use anyhow::{bail, Result};
use gatehouse_api::{ColumnFilter, DiscoverRequest, DiscoveredColumn};
use gatehouse_core::SensitiveColumn;
use std::fmt::Write as _;
use std::process::ExitCode;

/// `gatehouse masking …`.
#[derive(clap::Subcommand)]
pub enum MaskingCommand {
    /// List the columns the detectors found sensitive: column masking
    /// protects them like columns named in a rule.
    Columns {
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        /// JSON output: the API's array of columns.
        #[arg(long)]
        json: bool,
    },
    /// Stop protecting a found column (logged in the evidence log); a
    /// detector that masks one of its values again finds it again.
    Remove {
        /// The column's id (`masking columns` shows it).
        id: String,
        /// JSON output: the column removed.
        #[arg(long)]
        json: bool,
    },
    /// Sample every table of a connection through the gateway's backend
    /// login (read only) and record the columns the detectors find
    /// sensitive, so they are protected before a query shows one.
    Discover {
        /// The connection to sample.
        #[arg(long)]
        connection: String,
        /// Rows read per table (first rows; 1 to 10000).
        #[arg(long, default_value_t = 100)]
        rows: u32,
        /// JSON output: the final result (progress still goes to stderr).
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `masking` command.
pub async fn run(cmd: &MaskingCommand, client: &AdminClient) -> Result<ExitCode> {
    match cmd {
        MaskingCommand::Columns { connection, json } => {
            let list = client
                .sensitive_columns(&ColumnFilter {
                    connection: connection.clone(),
                })
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no sensitive columns found yet (run `gatehouse masking discover --connection NAME`)");
            } else {
                print!("{}", columns(&list));
            }
        }
        MaskingCommand::Remove { id, json } => {
            let c = client.remove_sensitive_column(id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!(
                    "{} on connection {} is no longer protected as sensitive (recorded in the evidence log)",
                    c.qualified(),
                    c.connection
                );
            }
        }
        MaskingCommand::Discover {
            connection,
            rows,
            json,
        } => {
            let mut result = None;
            let mut failure = None;
            let req = DiscoverRequest {
                connection: connection.clone(),
                rows_per_table: Some(*rows),
            };
            client
                .discover(&req, |line| {
                    if let Some(p) = line.get("progress") {
                        let skipped = p["skipped"]
                            .as_str()
                            .map(|s| format!(" (skipped: {s})"))
                            .unwrap_or_default();
                        eprintln!(
                            "{}/{} tables  {}{skipped}",
                            p["tables_done"],
                            p["tables"],
                            p["table"].as_str().unwrap_or("")
                        );
                    } else if let Some(r) = line.get("result") {
                        result = Some(r.clone());
                    } else if let Some(e) = line.get("error") {
                        failure = Some(e.as_str().unwrap_or("unknown error").to_string());
                    }
                    Ok(())
                })
                .await?;
            if let Some(e) = failure {
                bail!("discovery on {connection} failed: {e}");
            }
            let Some(result) = result else {
                bail!("the gateway ended the discovery on {connection} without a result; its log says why");
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                let found: Vec<DiscoveredColumn> =
                    serde_json::from_value(result["columns"].clone())?;
                print!("{}", discovered(connection, &found));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A table of found columns.
fn columns(list: &[SensitiveColumn]) -> String {
    let mut out = format!(
        "{:<38} {:<14} {:<36} {:<10} {:<9} {}\n",
        "ID", "CONNECTION", "COLUMN", "DETECTOR", "FOUND BY", "FOUND AT"
    );
    for c in list {
        let _ = writeln!(
            out,
            "{:<38} {:<14} {:<36} {:<10} {:<9} {}",
            c.id,
            c.connection,
            c.qualified(),
            c.detector,
            c.found_by.as_str(),
            c.found_at.rfc3339()
        );
    }
    out
}

/// What a discovery found, with hit rates.
fn discovered(connection: &str, found: &[DiscoveredColumn]) -> String {
    if found.is_empty() {
        return format!("no sensitive column found on {connection}\n");
    }
    let mut out = format!(
        "{:<36} {:<10} {:>14} {}\n",
        "COLUMN", "DETECTOR", "HITS", "STATE"
    );
    for f in found {
        let s = &f.sampled;
        let rate = if s.sampled == 0 {
            0.0
        } else {
            100.0 * s.hits as f64 / s.sampled as f64
        };
        let _ = writeln!(
            out,
            "{:<36} {:<10} {:>14} {}",
            format!("{}.{}.{}", s.schema, s.table, s.column),
            s.detector,
            format!("{}/{} {rate:.0}%", s.hits, s.sampled),
            if f.new { "new" } else { "known" }
        );
    }
    out
}
