//! Resolves the table OID and column number of a RowDescription to
//! `schema.table.column`, through the backend's own catalog.
//!
//! One task per configured connection owns a catalog session (logged in
//! with the gateway's credentials, separate from client sessions, so a
//! lookup never interleaves with a client's protocol) and keeps a shared
//! cache. Sessions keep their own small cache on top and ask only for tables
//! they have not seen. Both caches are dropped when a statement that changes
//! the schema runs through the gateway, and entries live at most
//! [`TABLE_TTL`], so a change made elsewhere is seen within that time.

use crate::backend::{self, BackendTarget};
use gatehouse_sql::TableRef;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a table's column names are trusted without a schema change
/// seen through the gateway.
pub(crate) const TABLE_TTL: Duration = Duration::from_secs(60);

/// A table's schema, name and column names by number.
#[derive(Debug)]
pub(crate) struct TableInfo {
    pub(crate) schema: String,
    pub(crate) name: String,
    /// `(attnum, name)`, sorted by attnum.
    pub(crate) columns: Vec<(i16, String)>,
    /// Attnums of generated columns (left out of a COPY without a column list).
    pub(crate) generated: Vec<i16>,
}

impl TableInfo {
    pub(crate) fn column(&self, attnum: i16) -> Option<&str> {
        self.columns
            .binary_search_by_key(&attnum, |c| c.0)
            .ok()
            .map(|i| self.columns[i].1.as_str())
    }
}

type Reply = Result<Vec<(u32, Arc<TableInfo>)>, String>;

struct Request {
    oids: Vec<u32>,
    names: Vec<TableRef>,
    generation: u64,
    reply: oneshot::Sender<Reply>,
}

/// The catalog of one configured connection.
pub(crate) struct Catalog {
    target: Arc<BackendTarget>,
    /// Bumped whenever a schema-changing statement runs through the gateway.
    generation: AtomicU64,
    tx: OnceLock<mpsc::Sender<Request>>,
}

impl Catalog {
    pub(crate) fn new(target: Arc<BackendTarget>) -> Self {
        Self {
            target,
            generation: AtomicU64::new(1),
            tx: OnceLock::new(),
        }
    }

    /// The current schema generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Notes that the schema may have changed.
    pub(crate) fn schema_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Looks tables up by OID, and tables (plain, partitioned, materialized
    /// views, foreign) by name in every schema. Tables that do not exist
    /// (any more) are simply absent from the answer.
    pub(crate) async fn lookup(&self, oids: Vec<u32>, names: Vec<TableRef>) -> Reply {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(serve(self.target.clone(), rx));
            tx
        });
        let (reply, rx) = oneshot::channel();
        let req = Request {
            oids,
            names,
            generation: self.generation(),
            reply,
        };
        tx.send(req)
            .await
            .map_err(|_| "the catalog lookup task stopped".to_string())?;
        rx.await
            .map_err(|_| "the catalog lookup task stopped".to_string())?
    }
}

struct Cached {
    info: Arc<TableInfo>,
    generation: u64,
    at: Instant,
}

async fn serve(target: Arc<BackendTarget>, mut rx: mpsc::Receiver<Request>) {
    let mut session: Option<backend::BackendSession> = None;
    let mut cache: HashMap<u32, Cached> = HashMap::new();
    while let Some(req) = rx.recv().await {
        let fresh = |c: &Cached| c.generation == req.generation && c.at.elapsed() < TABLE_TTL;
        let mut found = Vec::with_capacity(req.oids.len());
        let mut missing = Vec::new();
        for oid in &req.oids {
            match cache.get(oid) {
                Some(c) if fresh(c) => found.push((*oid, c.info.clone())),
                _ => missing.push(*oid),
            }
        }
        if !missing.is_empty() || !req.names.is_empty() {
            // One retry on a new session: the old one may have been closed by the server.
            let mut result = Err(String::new());
            for _ in 0..2 {
                if session.is_none() {
                    match backend::connect(&target, &[]).await {
                        Ok(s) => session = Some(s),
                        Err(e) => {
                            result = Err(e.to_string());
                            break;
                        }
                    }
                }
                let Some(s) = session.as_mut() else { break };
                result = query(s, &missing, &req.names).await;
                if result.is_ok() {
                    break;
                }
                session = None;
            }
            match result {
                Ok(tables) => {
                    for (oid, info) in tables {
                        let info = Arc::new(info);
                        cache.insert(
                            oid,
                            Cached {
                                info: info.clone(),
                                generation: req.generation,
                                at: Instant::now(),
                            },
                        );
                        found.push((oid, info));
                    }
                }
                Err(e) => {
                    let _ = req.reply.send(Err(e));
                    continue;
                }
            }
        }
        let _ = req.reply.send(Ok(found));
    }
}

/// A string literal; the catalog session has `standard_conforming_strings`
/// on (the default since PostgreSQL 9.1), so only quotes need doubling.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn query(
    s: &mut backend::BackendSession,
    oids: &[u32],
    names: &[TableRef],
) -> Result<Vec<(u32, TableInfo)>, String> {
    let mut sql = String::from(
        "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, a.attgenerated <> '' \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND (false",
    );
    if !oids.is_empty() {
        sql.push_str(" OR c.oid IN (");
        for (i, oid) in oids.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let _ = write!(sql, "{oid}");
        }
        sql.push(')');
    }
    for t in names {
        if t.name.contains(['\\', '\0'])
            || t.schema
                .as_deref()
                .is_some_and(|s| s.contains(['\\', '\0']))
        {
            return Err(format!("cannot look up the table name {:?}", t.name));
        }
        let _ = write!(
            sql,
            " OR (c.relkind IN ('r', 'p', 'm', 'f') AND c.relname = {}",
            literal(&t.name)
        );
        if let Some(schema) = &t.schema {
            let _ = write!(sql, " AND n.nspname = {}", literal(schema));
        }
        sql.push(')');
    }
    sql.push_str(") ORDER BY c.oid, a.attnum");
    let mut tables: Vec<(u32, TableInfo)> = Vec::new();
    backend::own_query::<6>(&mut s.stream, &mut s.leftover, &sql, |row| {
        let [oid, schema, table, attnum, attname, generated] = row;
        let oid: u32 = oid.parse().map_err(|_| "bad oid")?;
        let attnum: i16 = attnum.parse().map_err(|_| "bad attnum")?;
        if tables.last().is_none_or(|t| t.0 != oid) {
            tables.push((
                oid,
                TableInfo {
                    schema: schema.to_string(),
                    name: table.to_string(),
                    columns: Vec::new(),
                    generated: Vec::new(),
                },
            ));
        }
        if let Some(t) = tables.last_mut() {
            t.1.columns.push((attnum, attname.to_string()));
            if generated == "t" {
                t.1.generated.push(attnum);
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| format!("catalog query failed: {e}"))?;
    Ok(tables)
}
