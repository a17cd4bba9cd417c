//! Sampling a database's tables for sensitive columns (`gatehouse masking
//! discover`), so that column masking protects them before any caller's
//! first query shows one. The adapter that speaks the database's protocol
//! samples; the API runs it and records what it finds.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// A column in which a detector found sensitive values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledColumn {
    /// Its schema.
    pub schema: String,
    /// Its table.
    pub table: String,
    /// Its name.
    pub column: String,
    /// The detector with the most hits in it.
    pub detector: String,
    /// Sampled values in which that detector found something.
    pub hits: u64,
    /// Values sampled (NULLs left out).
    pub sampled: u64,
}

/// How far a sampling run is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplingProgress {
    /// Tables sampled so far.
    pub tables_done: u32,
    /// Tables to sample.
    pub tables: u32,
    /// The table just sampled (`schema.table`).
    pub table: String,
    /// Why it could not be sampled, if it could not (no privilege, a timeout).
    pub skipped: Option<String>,
}

/// Samples the tables of a connection's database.
#[async_trait]
pub trait ColumnSampler: Send + Sync + 'static {
    /// `Err(why)` when `connection` cannot be sampled (no such database
    /// connection, or discovery is off for it).
    fn can_sample(&self, connection: &str) -> Result<(), String>;

    /// Reads up to `rows` rows of every table the gateway's backend login
    /// may read, in read-only transactions, telling `progress` after each
    /// table, and returns the columns where detectors found something.
    async fn sample(
        &self,
        connection: &str,
        rows: u32,
        progress: mpsc::Sender<SamplingProgress>,
    ) -> Result<Vec<SampledColumn>, String>;
}
