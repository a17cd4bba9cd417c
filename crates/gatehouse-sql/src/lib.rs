//! Gatehouse SQL analysis.
//!
//! Every statement is parsed with libpg_query (PostgreSQL's own parser, via
//! the `pg_query` crate), so the analysis agrees with the server: comments,
//! case, quoting, dollar quoting and Unicode escapes cannot hide what a
//! statement does. Each statement becomes a list of [`Action`]s (what kind of
//! thing it does to which table) plus flags a policy can test. Anything the
//! parser rejects is an error, and the gateway refuses it.
//!
//! [`Analyzer`] caches analyses by statement text, so prepared statements and
//! repeated queries are parsed once.

mod bounds;
mod copy;
mod flow;
mod functions;
mod kind;
mod secret;
mod settings;
mod tree;
mod walk;

pub use copy::{CopyFormat, CopyOut};
pub use flow::{ColumnFlow, ColumnUse, RelationName};
pub use functions::is_safe as is_safe_function;
pub use kind::ActionKind;
pub use secret::redact_secrets;
pub use settings::{SettingChange, SettingValue};

use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// A table named in a statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableRef {
    /// Schema, when the statement qualified the name.
    pub schema: Option<String>,
    /// Table (or view, sequence…) name.
    pub name: String,
}

impl TableRef {
    /// `schema.name`, with `default_schema` for unqualified names.
    pub fn qualified(&self, default_schema: &str) -> String {
        format!(
            "{}.{}",
            self.schema.as_deref().unwrap_or(default_schema),
            self.name
        )
    }
}

/// One thing a statement does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What kind of thing.
    pub kind: ActionKind,
    /// To which table, if any.
    pub table: Option<TableRef>,
    /// For UPDATE and DELETE: whether a WHERE clause limits the rows.
    pub has_where: Option<bool>,
}

/// Facts about a statement a policy may test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// A data-changing statement is nested inside another (e.g. a CTE).
    pub data_modifying_cte: bool,
    /// `COPY … TO/FROM PROGRAM`: runs a shell command on the database server.
    pub copy_program: bool,
    /// `COPY … TO/FROM 'file'`: a file on the database server.
    pub copy_file: bool,
    /// `EXPLAIN ANALYZE`: the explained statement is executed.
    pub explain_analyze: bool,
    /// Changes `search_path`, which changes what unqualified names mean.
    pub changes_search_path: bool,
    /// `SET ROLE` / `SET SESSION AUTHORIZATION`.
    pub changes_role: bool,
    /// `SELECT … FOR UPDATE/SHARE`.
    pub locks_rows: bool,
    /// Procedural code whose body the gateway cannot see into (DO, CALL, CREATE FUNCTION).
    pub opaque_code: bool,
    /// Creates (or names) a relation in the session's temporary schema
    /// (`CREATE TEMP TABLE`, `SELECT … INTO TEMP`, `pg_temp.x`), which the
    /// server searches before the path for unqualified names.
    #[serde(default)]
    pub temporary: bool,
}

/// The analysis of one statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementAnalysis {
    /// The statement's own text within the query string.
    pub text: String,
    /// The most severe kind among its actions: what the statement counts as.
    pub kind: ActionKind,
    /// The parse node, snake_case without `_stmt` (`delete`, `drop`, `alter_system`, `drop_database`…).
    pub operation: String,
    /// Everything it does, table by table.
    pub actions: Vec<Action>,
    /// Every function called (lower case, qualified as written).
    pub functions: Vec<String>,
    /// Called functions that are not known side-effect-free built-ins.
    pub opaque_functions: Vec<String>,
    /// Flags.
    pub flags: Flags,
    /// `PREPARE name AS …`: the name (the actions are those of the prepared statement).
    pub prepares: Option<String>,
    /// `EXECUTE name`: the name; what it does is what was prepared under it.
    pub executes: Option<String>,
    /// `DEALLOCATE name` (`Some(Some)`), `DEALLOCATE ALL` (`Some(None)`).
    pub deallocates: Option<Option<String>>,
    /// Where its column references send their values (for column masking).
    pub columns: ColumnFlow,
    /// For `COPY … TO`: what it sends.
    pub copy_out: Option<CopyOut>,
    /// Every session setting it changes (`SET`, `RESET`, `set_config`).
    pub settings: Vec<SettingChange>,
    /// It holds a secret (a password, a connection string): its `text` is
    /// already redacted, and records keep only [`Analysis::redacted`].
    pub secret: bool,
    /// Qualified names `x.f` and `(expr).f`: PostgreSQL reads each as the
    /// column `f` of `x` when there is one, else as the call `f(x)`. Which one
    /// only the catalog can tell (see the adapter's function catalog).
    pub attributes: Vec<AttributeUse>,
    /// An `INSERT … VALUES` of this many rows (an upsert included): it
    /// changes at most that many rows, known before it runs.
    #[serde(default)]
    pub values_rows: Option<u64>,
}

/// A qualified name that may be a function call in attribute notation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttributeUse {
    /// The relation or alias it qualifies (`None` for `(expr).f`).
    pub qualifier: Option<String>,
    /// The name after the dot: a column, or a function taking `qualifier`.
    pub name: String,
}

/// The analysis of a query string (which may hold several statements).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// The statements in order (empty for an empty query).
    pub statements: Vec<StatementAnalysis>,
    /// When a statement holds a secret: the whole text with every literal
    /// replaced by a placeholder, the only form any record may keep.
    pub redacted: Option<String>,
}

/// Why a statement could not be analyzed. The gateway refuses it.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SqlError {
    /// The PostgreSQL parser rejected it.
    #[error("the statement could not be parsed: {0}")]
    Parse(String),
    /// Nested too deeply to analyze.
    #[error("the statement is nested too deeply to analyze")]
    TooComplex,
    /// Parsed, but not in a form the analyzer understands.
    #[error("the statement could not be analyzed: {0}")]
    Unsupported(String),
    /// Longer than the gateway analyzes (parsing costs memory in proportion).
    #[error("the statement is {len} bytes long, more than the {limit} bytes the gateway analyzes")]
    TooLong {
        /// The statement's length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// How the session lexes string literals (from `standard_conforming_strings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ParseMode {
    /// `standard_conforming_strings = off`: backslashes escape in '…' literals.
    pub backslash_escapes: bool,
}

/// A cached analysis (or the reason the text cannot be analyzed).
pub type CachedAnalysis = Arc<Result<Analysis, SqlError>>;

/// Bytes one parse mode's cache holds at most (estimated: texts plus a fixed
/// allowance per statement).
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;
/// Estimated cost of a cached statement besides its text (the analysis's
/// vectors and names, the LRU node).
const STATEMENT_OVERHEAD: usize = 1024;

/// One parse mode's cache, with the estimated bytes it holds.
struct Cache {
    entries: LruCache<String, CachedAnalysis>,
    bytes: usize,
}

/// Analyzes statements, with a cache keyed by statement text, bounded both in
/// entries and in bytes: by entries alone, 10,000 distinct 64 KiB texts would
/// have held over a gigabyte.
pub struct Analyzer {
    /// One cache per parse mode, looked up by `&str` (no allocation on a hit).
    caches: [Mutex<Cache>; 2],
    max_cached_len: usize,
    budget: usize,
    /// Longer texts are refused unparsed.
    max_len: usize,
    /// Texts over [`LARGE_TEXT`] are analyzed one at a time, so their peak
    /// memory (about 1 KiB per byte for a dense text) does not add up.
    large: Mutex<()>,
}

/// A text from which on analyses take turns (see [`Analyzer::analyze`]).
pub const LARGE_TEXT: usize = 64 * 1024;

impl Analyzer {
    /// A cache of `capacity` entries and [`DEFAULT_CACHE_BYTES`] per parse
    /// mode; statements longer than 64 KiB are not cached.
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        let cache = || {
            Mutex::new(Cache {
                entries: LruCache::new(cap),
                bytes: 0,
            })
        };
        Self {
            caches: [cache(), cache()],
            max_cached_len: 64 * 1024,
            budget: DEFAULT_CACHE_BYTES,
            max_len: usize::MAX,
            large: Mutex::new(()),
        }
    }

    /// The same, refusing texts longer than `bytes` without parsing them.
    pub fn with_max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// The same with another byte budget per parse mode.
    pub fn with_byte_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// Analyzes `sql`, from the cache when it was seen before. A text over
    /// [`LARGE_TEXT`] waits for any other large one to finish (callers on an
    /// async runtime should call this from a blocking section for such texts).
    pub fn analyze(&self, sql: &str, mode: ParseMode) -> CachedAnalysis {
        if sql.len() > self.max_len {
            return Arc::new(Err(SqlError::TooLong {
                len: sql.len(),
                limit: self.max_len,
            }));
        }
        let cache = &self.caches[usize::from(mode.backslash_escapes)];
        if let Some(hit) = lock(cache).entries.get(sql) {
            return hit.clone();
        }
        // Large texts one at a time. The lock holds only a unit: a panic
        // elsewhere leaves nothing half-done.
        let _turn =
            (sql.len() > LARGE_TEXT).then(|| self.large.lock().unwrap_or_else(|p| p.into_inner()));
        let result = Arc::new(analyze_uncached(sql, mode));
        let cost = approx_bytes(sql, &result);
        if sql.len() <= self.max_cached_len && cost <= self.budget {
            let mut c = lock(cache);
            if let Some((text, old)) = c.entries.push(sql.to_string(), result.clone()) {
                // Evicted by the entry limit, or the same text analyzed twice at once.
                c.bytes -= approx_bytes(&text, &old);
            }
            c.bytes += cost;
            while c.bytes > self.budget {
                let Some((text, old)) = c.entries.pop_lru() else {
                    break;
                };
                c.bytes -= approx_bytes(&text, &old);
            }
        }
        result
    }

    /// Entries and estimated bytes cached for `mode`.
    pub fn cached(&self, mode: ParseMode) -> (usize, usize) {
        let c = lock(&self.caches[usize::from(mode.backslash_escapes)]);
        (c.entries.len(), c.bytes)
    }
}

/// What caching `sql`'s analysis costs, estimated: the key, each statement's
/// copy of its text, and a fixed allowance per statement.
fn approx_bytes(sql: &str, analysis: &Result<Analysis, SqlError>) -> usize {
    let statements = match analysis {
        Ok(a) => {
            a.statements.iter().map(|s| s.text.len()).sum::<usize>()
                + STATEMENT_OVERHEAD * a.statements.len()
        }
        Err(_) => 0,
    };
    sql.len() + STATEMENT_OVERHEAD + statements
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    // The cache holds only finished values; a panic elsewhere cannot leave it half-updated.
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// Analyzes `sql` without the cache.
pub fn analyze_uncached(sql: &str, mode: ParseMode) -> Result<Analysis, SqlError> {
    let options = if mode.backslash_escapes {
        pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
    } else {
        pg_query::ParserOptions::DEFAULT
    };
    let parsed = pg_query::parse(sql, options).map_err(|e| SqlError::Parse(parse_message(e)))?;
    let mut statements = Vec::with_capacity(parsed.protobuf.stmts.len());
    for raw in &parsed.protobuf.stmts {
        let text = statement_text(sql, raw.stmt_location, raw.stmt_len);
        let Some(stmt) = raw.stmt.as_ref() else {
            continue;
        };
        let value = tree::Tree::from(stmt).map_err(|e| SqlError::Unsupported(e.to_string()))?;
        let mut st = walk::analyze_statement(&value, text)?;
        if st.secret {
            st.text = secret::redacted(&st.text);
        }
        statements.push(st);
    }
    let redacted = statements
        .iter()
        .any(|s| s.secret)
        .then(|| secret::redacted(sql));
    Ok(Analysis {
        statements,
        redacted,
    })
}

fn parse_message(e: pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) => m,
        other => other.to_string(),
    }
}

fn statement_text(sql: &str, location: i32, len: i32) -> &str {
    let start = usize::try_from(location).unwrap_or(0).min(sql.len());
    let end = match usize::try_from(len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(n) => start.saturating_add(n).min(sql.len()),
    };
    sql.get(start..end).map(str::trim).unwrap_or(sql)
}

impl StatementAnalysis {
    /// Running it cannot change anything: it only reads rows, calls no
    /// function outside the side-effect-free built-ins, takes no row locks,
    /// names nothing temporary, changes no setting and touches no prepared
    /// statement, file or program. Conservative: anything the analysis
    /// cannot vouch for counts as a change. (What the gateway may forward
    /// before its decision is durable, holding the answer back until it is.)
    /// Names in attribute notation that may be calls (`x.f`, see
    /// [`StatementAnalysis::attributes`]) must be resolved against the
    /// catalog first: a call found there is an opaque function.
    pub fn only_reads(&self) -> bool {
        let f = &self.flags;
        self.kind == ActionKind::Select
            && self.operation == "select"
            && self.actions.iter().all(|a| a.kind == ActionKind::Select)
            && self.opaque_functions.is_empty()
            && self.settings.is_empty()
            && self.prepares.is_none()
            && self.executes.is_none()
            && self.deallocates.is_none()
            && self.copy_out.is_none()
            && self.values_rows.is_none()
            && !(f.data_modifying_cte
                || f.copy_program
                || f.copy_file
                || f.explain_analyze
                || f.changes_search_path
                || f.changes_role
                || f.locks_rows
                || f.opaque_code
                || f.temporary)
    }

    /// A protocol-level FunctionCall message: a call to a function known only
    /// by its OID, which the gateway cannot see into.
    pub fn function_call(oid: i32) -> Self {
        let name = format!("oid:{oid}");
        StatementAnalysis {
            text: format!("<function call oid={oid}>"),
            kind: ActionKind::Function,
            operation: "function_call".into(),
            actions: vec![Action {
                kind: ActionKind::Function,
                table: None,
                has_where: None,
            }],
            functions: vec![name.clone()],
            opaque_functions: vec![name],
            flags: Flags::default(),
            prepares: None,
            executes: None,
            deallocates: None,
            columns: ColumnFlow::default(),
            copy_out: None,
            settings: Vec::new(),
            secret: false,
            attributes: Vec::new(),
            values_rows: None,
        }
    }
}
