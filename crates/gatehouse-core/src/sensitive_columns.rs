//! Sensitive columns the masking detectors found: once a detector masks a
//! value that came straight from a table column, that column is known to
//! hold sensitive data, and column masking protects it like a column an
//! operator named in a rule (its value may leave only as itself, masked).
//!
//! Protocol-neutral: adapters report what they find; the set is per
//! connection, kept in memory for the data path (a lock-free read of an
//! `Arc` per decision), persisted in the store and logged in the evidence
//! log. A column is dropped only by an operator, and that is logged first.

use crate::{AuditEvent, AuditTrail, Identity, SessionId, Store, StoreError, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// How a sensitive column was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// A detector masked a value of it in a result.
    Query,
    /// `gatehouse masking discover` sampled it.
    Discover,
}

impl FoundBy {
    /// `query` or `discover`.
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Query => "query",
            FoundBy::Discover => "discover",
        }
    }
}

/// A table column known to hold sensitive values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitiveColumn {
    /// Its id (what `masking remove` takes).
    pub id: String,
    /// The connection whose database holds it.
    pub connection: String,
    /// Schema, table and column, as the catalog names them.
    pub schema: String,
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// The detector that found it (`pan`, `email`…).
    pub detector: String,
    /// How it was found.
    pub found_by: FoundBy,
    /// Whose result showed it (a query), or who ran the discovery.
    pub found_for: Option<String>,
    /// The session whose result showed it (a query).
    pub session: Option<SessionId>,
    /// For a discovery: values with a hit, of those sampled.
    pub sampled: Option<(u64, u64)>,
    /// When.
    pub found_at: Timestamp,
}

impl SensitiveColumn {
    fn new(
        connection: &str,
        (schema, table, column): (&str, &str, &str),
        detector: &str,
        found_by: FoundBy,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            connection: connection.into(),
            schema: schema.into(),
            table: table.into(),
            column: column.into(),
            detector: detector.into(),
            found_by,
            found_for: None,
            session: None,
            sampled: None,
            found_at: Timestamp::now(),
        }
    }

    /// A column a detector found in a result of `session`, run by `identity`.
    pub fn found_in_result(
        connection: &str,
        name: (&str, &str, &str),
        detector: &str,
        identity: &Identity,
        session: SessionId,
    ) -> Self {
        Self {
            found_for: Some(identity.subject.clone()),
            session: Some(session),
            ..Self::new(connection, name, detector, FoundBy::Query)
        }
    }

    /// A column a discovery run found: `hits` of `sampled` values.
    pub fn found_by_sampling(
        connection: &str,
        name: (&str, &str, &str),
        detector: &str,
        (hits, sampled): (u64, u64),
        by: &str,
    ) -> Self {
        Self {
            found_for: Some(by.into()),
            sampled: Some((hits, sampled)),
            ..Self::new(connection, name, detector, FoundBy::Discover)
        }
    }

    /// `schema.table.column`.
    pub fn qualified(&self) -> String {
        format!("{}.{}.{}", self.schema, self.table, self.column)
    }

    /// Whether it is the same column as `other` (same connection and name).
    pub fn same_column(&self, other: &SensitiveColumn) -> bool {
        self.connection == other.connection
            && self.schema == other.schema
            && self.table == other.table
            && self.column == other.column
    }
}

/// What went wrong keeping the set.
#[derive(Debug, thiserror::Error)]
pub enum SensitiveColumnsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The evidence log could not take the event.
    #[error(transparent)]
    Audit(#[from] crate::AuditError),
}

/// Every connection's discovered sensitive columns.
pub struct SensitiveColumns {
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditTrail>,
    by_connection: RwLock<HashMap<String, Arc<[SensitiveColumn]>>>,
    /// Changes whenever a column is added or removed anywhere: decisions
    /// made under an older set are made again.
    generation: AtomicU64,
}

impl SensitiveColumns {
    /// The set over `store`, with the columns it holds.
    pub async fn open(
        store: Arc<dyn Store>,
        audit: Arc<dyn AuditTrail>,
    ) -> Result<Self, StoreError> {
        let mut by_connection: HashMap<String, Vec<SensitiveColumn>> = HashMap::new();
        for c in store.list_sensitive_columns().await? {
            by_connection
                .entry(c.connection.clone())
                .or_default()
                .push(c);
        }
        Ok(Self {
            store,
            audit,
            by_connection: RwLock::new(
                by_connection
                    .into_iter()
                    .map(|(k, v)| (k, Arc::from(v)))
                    .collect(),
            ),
            generation: AtomicU64::new(1),
        })
    }

    /// The generation of the set (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `connection`'s columns.
    pub fn of(&self, connection: &str) -> Arc<[SensitiveColumn]> {
        let map = self.by_connection.read().unwrap_or_else(|e| e.into_inner());
        map.get(connection)
            .cloned()
            .unwrap_or_else(|| Arc::from([]))
    }

    /// Every column, by connection and name.
    pub fn list(&self) -> Vec<SensitiveColumn> {
        let map = self.by_connection.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<SensitiveColumn> = map.values().flat_map(|v| v.iter().cloned()).collect();
        all.sort_by(|a, b| {
            (&a.connection, &a.schema, &a.table, &a.column).cmp(&(
                &b.connection,
                &b.schema,
                &b.table,
                &b.column,
            ))
        });
        all
    }

    /// Adds `column` to the set in memory at once (protection never waits
    /// for a disk); `false` when it was known. Then [`record`](Self::record) it.
    pub fn note(&self, column: &SensitiveColumn) -> bool {
        let mut map = self
            .by_connection
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let now = map
            .get(&column.connection)
            .cloned()
            .unwrap_or_else(|| Arc::from([]));
        if now.iter().any(|c| c.same_column(column)) {
            return false;
        }
        let mut next = now.to_vec();
        next.push(column.clone());
        map.insert(column.connection.clone(), next.into());
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Logs a noted column in the evidence log, then stores it.
    pub async fn record(&self, column: &SensitiveColumn) -> Result<(), SensitiveColumnsError> {
        self.audit
            .append(vec![AuditEvent::sensitive_column_found(column)])
            .await?;
        self.store.save_sensitive_column(column).await?;
        Ok(())
    }

    /// Notes and records `column`; `false` when it was known.
    pub async fn found(&self, column: &SensitiveColumn) -> Result<bool, SensitiveColumnsError> {
        if !self.note(column) {
            return Ok(false);
        }
        self.record(column).await?;
        Ok(true)
    }

    /// Removes column `id` for `by` (an operator): logged first, then
    /// stored, then dropped from memory. `None`: no such column.
    pub async fn remove(
        &self,
        id: &str,
        by: &str,
    ) -> Result<Option<SensitiveColumn>, SensitiveColumnsError> {
        let Some(column) = self.list().into_iter().find(|c| c.id == id) else {
            return Ok(None);
        };
        self.audit
            .append(vec![AuditEvent::sensitive_column_removed(&column, by)])
            .await?;
        self.store
            .remove_sensitive_column(id, Timestamp::now())
            .await?;
        let mut map = self
            .by_connection
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(now) = map.get(&column.connection).cloned() {
            let next: Vec<SensitiveColumn> = now.iter().filter(|c| c.id != id).cloned().collect();
            map.insert(column.connection.clone(), next.into());
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(Some(column))
    }
}
