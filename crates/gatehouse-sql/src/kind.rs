use serde::{Deserialize, Serialize};

/// What a statement (or a part of it) does. One Cedar action per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Reads rows (SELECT, FETCH, a CTE or subquery reading a table).
    Select,
    /// EXPLAIN without ANALYZE: plans, does not execute.
    Explain,
    /// Transaction control (BEGIN, COMMIT, SAVEPOINT…).
    Transaction,
    /// Session settings and state (SET, SHOW, RESET, DISCARD, LISTEN, PREPARE bookkeeping…).
    Set,
    /// INSERT.
    Insert,
    /// UPDATE (also INSERT … ON CONFLICT DO UPDATE).
    Update,
    /// MERGE.
    Merge,
    /// DELETE.
    Delete,
    /// COPY … TO (reads a table or query out).
    CopyOut,
    /// COPY … FROM (writes a table).
    CopyIn,
    /// A call to a function the gateway cannot see into (not a known built-in).
    Function,
    /// TRUNCATE.
    Truncate,
    /// Schema changes: CREATE, ALTER, DROP, COMMENT, REFRESH…
    Ddl,
    /// Privileges and roles: GRANT, REVOKE, CREATE/ALTER/DROP ROLE, SET ROLE…
    Dcl,
    /// Procedural code the gateway cannot see into: DO, CALL.
    Procedural,
    /// Server administration: ALTER SYSTEM, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, extensions…
    Admin,
    /// Anything the analyzer does not classify (LOCK, …): policies must permit it explicitly.
    Other,
}

impl ActionKind {
    /// Every kind, in severity order.
    pub const ALL: [ActionKind; 17] = [
        Self::Select,
        Self::Explain,
        Self::Transaction,
        Self::Set,
        Self::Insert,
        Self::Update,
        Self::Merge,
        Self::Delete,
        Self::CopyOut,
        Self::CopyIn,
        Self::Function,
        Self::Truncate,
        Self::Ddl,
        Self::Dcl,
        Self::Procedural,
        Self::Admin,
        Self::Other,
    ];

    /// Changes rows of a table (what a row cap counts): INSERT, UPDATE,
    /// MERGE, DELETE, COPY … FROM.
    pub fn changes_rows(self) -> bool {
        matches!(
            self,
            Self::Insert | Self::Update | Self::Merge | Self::Delete | Self::CopyIn
        )
    }

    /// The snake_case name (also the Cedar action id).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Explain => "explain",
            Self::Transaction => "transaction",
            Self::Set => "set",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Merge => "merge",
            Self::Delete => "delete",
            Self::CopyOut => "copy_out",
            Self::CopyIn => "copy_in",
            Self::Function => "function",
            Self::Truncate => "truncate",
            Self::Ddl => "ddl",
            Self::Dcl => "dcl",
            Self::Procedural => "procedural",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the kind changes data or schema.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Insert
                | Self::Update
                | Self::Merge
                | Self::Delete
                | Self::CopyIn
                | Self::Truncate
                | Self::Ddl
        )
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
