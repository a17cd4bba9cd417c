//! `gatehouse masking discover`: samples the tables of a connection's
//! database through the gateway's own backend login and runs the
//! connection's detectors over the values, so columns holding sensitive
//! data are known (and protected) before any caller's query shows one.
//!
//! Read only: each table is read in a `READ ONLY` transaction with a
//! statement timeout, its first rows only; the values never leave the
//! gateway (only counts and column names do).

use crate::backend::{self, BackendTarget};
use crate::codec::Cursor;
use crate::mask::ConnectionMasking;
use async_trait::async_trait;
use gatehouse_core::{ColumnSampler, SampledColumn, SamplingProgress};
use gatehouse_mask::{MaskTally, Scratch, TextKind};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How long one table's sample may take on the server.
const STATEMENT_TIMEOUT: &str = "30s";
/// What of each value is read (characters): enough for any detector's match,
/// and rows stay well within the gateway's limit for its own queries.
const VALUE_PREFIX: u32 = 2048;
/// Columns read per query, for the same reason.
const COLUMNS_PER_QUERY: usize = 64;

/// Every column the detectors can read (strings, JSON, and numbers long
/// enough to be a card), of every table and materialized view the backend
/// login may read, outside the system schemas (views and foreign tables
/// would run their code, or another server's, as the gateway's login).
const COLUMNS_SQL: &str = "SELECT n.nspname::text, c.relname::text, a.attname::text \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
     JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
     WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND (t.typcategory = 'S' OR t.typname IN ('json', 'jsonb', 'int8', 'numeric')) \
     AND pg_catalog.has_table_privilege(c.oid, 'SELECT') \
     ORDER BY 1, 2, a.attnum";

/// Samples the connections that have discovery on.
#[derive(Default)]
pub struct TableSampler {
    connections: HashMap<String, (Arc<BackendTarget>, Arc<ConnectionMasking>)>,
}

impl TableSampler {
    /// A sampler of no connection yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `target`, masked by `masking` (sampled only if its discovery is on).
    pub fn add(&mut self, target: Arc<BackendTarget>, masking: Arc<ConnectionMasking>) {
        self.connections
            .insert(target.name.clone(), (target, masking));
    }
}

/// One column to sample.
struct Sampled {
    column: String,
    values: u64,
    /// Hits by detector index.
    hits: BTreeMap<usize, u64>,
}

#[async_trait]
impl ColumnSampler for TableSampler {
    fn can_sample(&self, connection: &str) -> Result<(), String> {
        match self.connections.get(connection) {
            None => Err(format!(
                "no PostgreSQL connection {connection:?} with masking is configured"
            )),
            Some((_, m)) if m.discovery().is_none() => Err(format!(
                "connection {connection:?} does not discover sensitive columns (set \
                 discover_columns = true in its [connection.masking])"
            )),
            Some(_) => Ok(()),
        }
    }

    async fn sample(
        &self,
        connection: &str,
        rows: u32,
        progress: mpsc::Sender<SamplingProgress>,
    ) -> Result<Vec<SampledColumn>, String> {
        self.can_sample(connection)?;
        let Some((target, masking)) = self.connections.get(connection) else {
            return Err(format!("no connection {connection:?}"));
        };
        let mut s = backend::connect(target, &[])
            .await
            .map_err(|e| e.to_string())?;
        let (stream, buf) = (&mut s.stream, &mut s.leftover);
        backend::own_query::<0>(
            stream,
            buf,
            // Built-ins as themselves, whatever the login's search path.
            &format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'; SET search_path = pg_catalog"),
            |_| Ok(()),
        )
        .await?;
        // Tables in order, each with its columns.
        let mut tables: Vec<((String, String), Vec<Sampled>)> = Vec::new();
        backend::own_query::<3>(stream, buf, COLUMNS_SQL, |[schema, table, column]| {
            let key = (schema.to_string(), table.to_string());
            if tables.last().is_none_or(|(k, _)| *k != key) {
                tables.push((key, Vec::new()));
            }
            if let Some((_, cols)) = tables.last_mut() {
                cols.push(Sampled {
                    column: column.to_string(),
                    values: 0,
                    hits: BTreeMap::new(),
                });
            }
            Ok(())
        })
        .await?;
        let engine = masking.engine().clone();
        let (mut scratch, mut tally, mut out) =
            (Scratch::default(), MaskTally::default(), Vec::new());
        let total = u32::try_from(tables.len()).unwrap_or(u32::MAX);
        for (done, ((schema, table), cols)) in tables.iter_mut().enumerate() {
            let mut skipped = None;
            for cols in cols.chunks_mut(COLUMNS_PER_QUERY) {
                let read = sample_columns(stream, buf, (schema, table), cols, rows, &mut |v| {
                    // Read as plain text (a prefix of a JSON value may not parse).
                    tally.take_last_detector();
                    out.clear();
                    engine.mask_text(v, TextKind::Plain, &mut out, &mut scratch, &mut tally);
                    tally.take_last_detector()
                })
                .await;
                if let Err(e) = read {
                    // A failed sample leaves the transaction aborted; end it.
                    backend::own_query::<0>(stream, buf, "ROLLBACK", |_| Ok(())).await?;
                    skipped = Some(e);
                    break;
                }
            }
            let step = SamplingProgress {
                tables_done: u32::try_from(done + 1).unwrap_or(u32::MAX),
                tables: total,
                table: format!("{schema}.{table}"),
                skipped,
            };
            if progress.send(step).await.is_err() {
                return Err("the caller went away".into());
            }
        }
        let names: Vec<&str> = engine.detector_names().collect();
        let mut found = Vec::new();
        for ((schema, table), cols) in &tables {
            for col in cols {
                // The detector with the most hits names what the column holds.
                let best = col.hits.iter().max_by_key(|(_, n)| **n);
                if let Some((&d, &hits)) = best {
                    found.push(SampledColumn {
                        schema: schema.clone(),
                        table: table.clone(),
                        column: col.column.clone(),
                        detector: names.get(d).copied().unwrap_or("detector").to_string(),
                        hits,
                        sampled: col.values,
                    });
                }
            }
        }
        Ok(found)
    }
}

/// Reads up to `rows` rows of `cols` of a table, handing each value to
/// `detect` (which says which detector, if any, found something in it).
async fn sample_columns(
    stream: &mut crate::stream::PgStream,
    buf: &mut bytes::BytesMut,
    (schema, table): (&str, &str),
    cols: &mut [Sampled],
    rows: u32,
    detect: &mut impl FnMut(&[u8]) -> Option<usize>,
) -> Result<(), String> {
    let list: Vec<String> = cols
        .iter()
        .map(|c| {
            format!(
                "pg_catalog.left({}::pg_catalog.text, {VALUE_PREFIX})",
                ident(&c.column)
            )
        })
        .collect();
    let sql = format!(
        "BEGIN TRANSACTION READ ONLY; SELECT {} FROM {}.{} LIMIT {rows}; COMMIT",
        list.join(", "),
        ident(schema),
        ident(table)
    );
    backend::own_query_rows(stream, buf, &sql, |body| {
        let mut c = Cursor::new(body);
        let n = c.count16("column count").map_err(|e| e.to_string())?;
        if n != cols.len() {
            return Err(format!("{n} values in a row of {} columns", cols.len()));
        }
        for col in cols.iter_mut() {
            let len = c.i32("value length").map_err(|e| e.to_string())?;
            // NULL: nothing to read.
            let Ok(len) = usize::try_from(len) else {
                continue;
            };
            let value = c.bytes(len, "value").map_err(|e| e.to_string())?;
            col.values += 1;
            if let Some(d) = detect(value) {
                *col.hits.entry(d).or_default() += 1;
            }
        }
        Ok(())
    })
    .await
}

/// A quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
