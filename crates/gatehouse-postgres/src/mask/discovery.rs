//! Sensitive-column discovery on one connection: a detector that masks a
//! value coming straight from a table column makes that column known to
//! hold sensitive data (`gatehouse_core::SensitiveColumns`), and from then
//! on the column guard protects it as if a rule named it.

use gatehouse_core::{SensitiveColumn, SensitiveColumns};
use gatehouse_mask::{ColumnRule, ColumnTarget, Strategy};
use std::sync::{Arc, Mutex};

/// How the guard's rules for found columns are labelled.
pub(crate) const FOUND: &str = "found sensitive";

/// Discovery for one connection, shared by its sessions.
pub struct Discovery {
    columns: Arc<SensitiveColumns>,
    connection: String,
    /// The connection's columns as guard rules, and the set's generation
    /// they were built at.
    rules: Mutex<(u64, Arc<[ColumnRule]>)>,
}

impl Discovery {
    /// Discovery on `connection`, into `columns`.
    pub fn new(columns: Arc<SensitiveColumns>, connection: &str) -> Self {
        Self {
            columns,
            connection: connection.to_string(),
            rules: Mutex::new((0, Arc::from([]))),
        }
    }

    /// The set all connections share.
    pub(crate) fn columns(&self) -> &Arc<SensitiveColumns> {
        &self.columns
    }

    /// The connection's name.
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    /// Changes whenever a column is found or removed (decisions made before
    /// are made again).
    pub(crate) fn generation(&self) -> u64 {
        self.columns.generation()
    }

    /// The connection's found columns as rules for the column guard (the
    /// strategy is not used: plain reads stay masked by the detectors).
    pub(crate) fn rules(&self) -> Arc<[ColumnRule]> {
        let generation = self.columns.generation();
        let mut cached = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != generation {
            let rules: Vec<ColumnRule> = self
                .columns
                .of(&self.connection)
                .iter()
                .map(|c| ColumnRule {
                    target: ColumnTarget::Exact {
                        schema: Some(c.schema.to_ascii_lowercase()),
                        table: c.table.to_ascii_lowercase(),
                        column: c.column.to_ascii_lowercase(),
                    },
                    strategy: Strategy::Redact,
                    label: format!(
                        "{FOUND} by the {} detector (`{}`; `gatehouse masking columns` lists it)",
                        c.detector,
                        c.qualified(),
                    ),
                })
                .collect();
            *cached = (generation, rules.into());
        }
        cached.1.clone()
    }

    /// Whether the column is known already.
    pub(crate) fn knows(&self, schema: &str, table: &str, column: &str) -> bool {
        self.columns
            .of(&self.connection)
            .iter()
            .any(|c| c.schema == schema && c.table == table && c.column == column)
    }

    /// Adds a found column in memory (protection starts now); `true` when
    /// it is new, and must then be recorded.
    pub(crate) fn note(&self, column: &SensitiveColumn) -> bool {
        self.columns.note(column)
    }
}
