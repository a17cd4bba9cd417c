//! Masking of everything the backend sends a client: DataRow values (text
//! and binary), COPY TO STDOUT rows, ErrorResponse and NoticeResponse
//! fields, and NotificationResponse payloads. Rows are masked one by one as
//! they stream; a value that cannot be inspected stops the result (fail
//! closed) instead of going out.

mod catalog;
mod copy;
mod discovery;
mod errors;
mod guard;
mod plan;
mod types;
mod values;

pub(crate) use copy::CopyPlan;
pub use discovery::Discovery;
pub(crate) use guard::ColumnGuard;
pub(crate) use plan::{parse_row_description, Column, ResultFormats, ResultPlan};

use crate::backend::BackendTarget;
use bytes::BytesMut;
use catalog::{Catalog, TableInfo, TABLE_TTL};
use gatehouse_core::{Identity, MaskingSummary, SensitiveColumn, SessionId};
use gatehouse_mask::{MaskTally, MaskingEngine, Scratch};
use gatehouse_sql::TableRef;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Masking configured for one connection, shared by its sessions.
pub struct ConnectionMasking {
    engine: Arc<MaskingEngine>,
    exempt_groups: Vec<String>,
    trusted_functions: Arc<[String]>,
    catalog: Catalog,
    /// Columns the detectors find sensitive become covered (when on).
    discovery: Option<Arc<Discovery>>,
}

impl ConnectionMasking {
    /// The connection's masking engine.
    pub(crate) fn engine(&self) -> &Arc<MaskingEngine> {
        &self.engine
    }

    /// Masking with `engine` for the connection `target`; identities in one
    /// of `exempt_groups` receive clear values (their recordings are still
    /// masked). Under column rules, masked sessions may call functions the
    /// gateway cannot see into only when they match `trusted_functions`.
    pub fn new(
        engine: Arc<MaskingEngine>,
        exempt_groups: Vec<String>,
        trusted_functions: Vec<String>,
        target: Arc<BackendTarget>,
    ) -> Self {
        Self {
            engine,
            exempt_groups,
            trusted_functions: trusted_functions.into(),
            catalog: Catalog::new(target),
            discovery: None,
        }
    }

    /// Discovery on this connection, when on.
    pub(crate) fn discovery(&self) -> Option<&Arc<Discovery>> {
        self.discovery.as_ref()
    }

    /// Turns sensitive-column discovery on.
    pub fn with_discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }
}

/// Why a result could not be masked; the client gets this instead of rows.
#[derive(Debug)]
pub(crate) struct MaskFailure(pub(crate) String);

/// What building a result plan needs.
pub(crate) enum PlanState<P = ResultPlan> {
    Ready(P),
    /// Tables must be looked up first (see [`SessionMasking::take_wanted`]).
    Wait,
    /// The lookup failed: the result cannot be masked.
    Failed(String),
}

/// Per-session masking state.
pub(crate) struct SessionMasking {
    engine: Arc<MaskingEngine>,
    /// Masking of this connection, when configured.
    connection: Option<Arc<ConnectionMasking>>,
    /// Responses are masked: configured and the caller is not exempt.
    pub(crate) active: bool,
    exempt_group: Option<String>,
    tables: HashMap<u32, Arc<TableInfo>>,
    tables_generation: u64,
    tables_since: Instant,
    /// Tables a plan is waiting for.
    wanted: Wanted,
    /// Tables COPY named, resolved (or why not).
    named: HashMap<TableRef, Result<u32, String>>,
    pub(crate) scratch: Scratch,
    /// One value's masked bytes.
    value: Vec<u8>,
    /// A decoded value (bytea, int8, numeric) to scan.
    decoded: Vec<u8>,
    /// A value masked by rule, before it is encoded for COPY.
    field: Vec<u8>,
    /// Replacement messages, split off for each one.
    pub(crate) out: BytesMut,
    /// Set after a failure: everything up to ReadyForQuery is withheld.
    pub(crate) withholding: bool,
    /// A failed catalog lookup, for the plan that waited for it.
    catalog_error: Option<String>,
    /// Whose results these are, for the columns they show sensitive.
    finder: Option<(Identity, SessionId)>,
    /// Columns found sensitive (noted already), for the relay to record.
    found: Vec<SensitiveColumn>,
}

impl SessionMasking {
    /// Masking for a session of an identity in `groups`. Without connection
    /// masking, `records` masks what the recordings keep.
    pub(crate) fn new(
        connection: Option<Arc<ConnectionMasking>>,
        records: Arc<MaskingEngine>,
        groups: &[String],
    ) -> Self {
        let exempt_group = connection.as_ref().and_then(|c| {
            c.exempt_groups
                .iter()
                .find(|g| groups.iter().any(|x| x == *g))
                .cloned()
        });
        let engine = connection
            .as_ref()
            .map(|c| c.engine.clone())
            .unwrap_or(records);
        Self {
            active: connection.is_some() && exempt_group.is_none(),
            engine,
            connection,
            exempt_group,
            tables: HashMap::new(),
            tables_generation: 0,
            tables_since: Instant::now(),
            wanted: Wanted::default(),
            named: HashMap::new(),
            scratch: Scratch::default(),
            value: Vec::new(),
            decoded: Vec::new(),
            field: Vec::new(),
            out: BytesMut::new(),
            withholding: false,
            catalog_error: None,
            finder: None,
            found: Vec::new(),
        }
    }

    /// Names whose results these are (the identity and session a found
    /// column is recorded with).
    pub(crate) fn found_for(&mut self, identity: &Identity, session: SessionId) {
        self.finder = Some((identity.clone(), session));
    }

    /// Discovery on this connection, when on and the session is masked.
    pub(crate) fn discovery(&self) -> Option<&Arc<Discovery>> {
        self.connection
            .as_ref()
            .filter(|_| self.active)
            .and_then(|c| c.discovery.as_ref())
    }

    /// The columns found sensitive since the last call (already protecting;
    /// still to be logged and stored).
    pub(crate) fn take_found(&mut self) -> Vec<SensitiveColumn> {
        std::mem::take(&mut self.found)
    }

    /// Detector `detector` masked a value of column `attnum` of table `oid`:
    /// that column is sensitive.
    pub(crate) fn detector_hit(&mut self, (oid, attnum): (u32, i16), detector: usize) {
        let (Some(d), Some((identity, session))) = (self.discovery(), &self.finder) else {
            return;
        };
        let Some(t) = self.tables.get(&oid) else {
            return;
        };
        let Some(column) = t.column(attnum) else {
            return;
        };
        // A session's temporary tables end with it (and are its own data).
        if t.schema.starts_with("pg_temp") || t.schema.starts_with("pg_toast") {
            return;
        }
        if d.knows(&t.schema, &t.name, column) {
            return;
        }
        let Some(name) = self.engine.detector_names().nth(detector) else {
            return;
        };
        let found = SensitiveColumn::found_in_result(
            d.connection(),
            (&t.schema, &t.name, column),
            name,
            identity,
            *session,
        );
        if d.note(&found) {
            self.found.push(found);
        }
    }

    /// Whether column rules apply.
    pub(crate) fn has_rules(&self) -> bool {
        !self.engine.rules().is_empty()
    }

    /// The check of statements against column rules, when they apply to this session.
    pub(crate) fn column_guard(&self) -> Option<ColumnGuard> {
        let c = self.connection.as_ref()?;
        (self.active && (self.has_rules() || c.discovery.is_some())).then(|| {
            ColumnGuard::new(
                self.engine.clone(),
                c.trusted_functions.clone(),
                c.discovery.clone(),
            )
        })
    }

    /// The summary recorded with a statement.
    pub(crate) fn summary(&self, tally: &MaskTally) -> Option<MaskingSummary> {
        self.connection.as_ref()?;
        let (detectors, rules) = tally.named(&self.engine);
        Some(MaskingSummary {
            values_masked: tally.total(),
            detectors,
            rules,
            exempt_group: self.exempt_group.clone(),
        })
    }

    /// Notes a statement that may change the schema.
    pub(crate) fn schema_changed(&mut self) {
        if let Some(c) = &self.connection {
            c.catalog.schema_changed();
        }
    }

    /// Takes the tables a plan waits for.
    pub(crate) fn take_wanted(&mut self) -> Wanted {
        std::mem::take(&mut self.wanted)
    }

    /// The catalog lookup for [`take_wanted`](Self::take_wanted)'s tables, run
    /// without the tracker locked.
    pub(crate) fn lookup_handle(&self) -> Option<Arc<ConnectionMasking>> {
        self.connection.clone()
    }

    /// Stores looked-up tables. OIDs the catalog does not know are stored as
    /// unknown tables so the plan does not wait for them again; a name
    /// resolves only when exactly one table has it.
    pub(crate) fn add_tables(&mut self, asked: &Wanted, found: Vec<(u32, Arc<TableInfo>)>) {
        for name in &asked.names {
            let candidates: Vec<&(u32, Arc<TableInfo>)> = found
                .iter()
                .filter(|(_, t)| {
                    t.name == name.name && name.schema.as_ref().is_none_or(|s| *s == t.schema)
                })
                .collect();
            let resolved = match candidates[..] {
                [(oid, _)] => Ok(*oid),
                [] => Err(format!(
                    "no table {} was found in the catalog",
                    display(name)
                )),
                _ => Err(format!(
                    "{} names tables in several schemas ({}); qualify it with its schema",
                    display(name),
                    candidates
                        .iter()
                        .map(|(_, t)| t.schema.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            self.named.insert(name.clone(), resolved);
        }
        for (oid, info) in found {
            self.tables.insert(oid, info);
        }
        for oid in &asked.oids {
            self.tables.entry(*oid).or_insert_with(|| {
                Arc::new(TableInfo {
                    schema: String::new(),
                    name: String::new(),
                    columns: Vec::new(),
                    generated: Vec::new(),
                })
            });
        }
    }

    /// Notes a failed lookup: the waiting plan fails.
    pub(crate) fn catalog_failed(&mut self, e: String) {
        self.catalog_error = Some(e);
    }

    /// Drops the session's table cache when the schema may have changed.
    fn refresh_tables(&mut self) {
        let Some(c) = &self.connection else { return };
        let g = c.catalog.generation();
        if g != self.tables_generation || self.tables_since.elapsed() > TABLE_TTL {
            self.tables.clear();
            self.named.clear();
            self.tables_generation = g;
            self.tables_since = Instant::now();
        }
    }
}

/// Tables a plan waits for: by OID (a RowDescription's) or by name (a COPY's).
#[derive(Clone, Debug, Default)]
pub(crate) struct Wanted {
    pub(crate) oids: Vec<u32>,
    pub(crate) names: Vec<TableRef>,
}

impl Wanted {
    fn is_empty(&self) -> bool {
        self.oids.is_empty() && self.names.is_empty()
    }
}

fn display(t: &TableRef) -> String {
    match &t.schema {
        Some(s) => format!("{s}.{}", t.name),
        None => t.name.clone(),
    }
}

/// Runs a catalog lookup (outside the tracker lock).
pub(crate) async fn lookup(
    c: &ConnectionMasking,
    wanted: Wanted,
) -> Result<Vec<(u32, Arc<TableInfo>)>, String> {
    c.catalog.lookup(wanted.oids, wanted.names).await
}
