//! Walks libpg_query's parse tree (as serde JSON) into actions.
//!
//! The tree is walked generically, so node types the walker has no rule for
//! are still searched for tables and function calls; only the node types that
//! change *what* is done (DML, DDL, COPY, EXPLAIN, PREPARE…) have rules.

use crate::settings::{self, SettingChange};
use crate::tree::Tree as Value;
use crate::{functions, Action, ActionKind, Flags, SqlError, StatementAnalysis, TableRef};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Deeper trees are refused rather than walked (libpg_query's own protobuf
/// decoding already limits nesting; this guards the walker itself).
const MAX_DEPTH: usize = 2_000;

pub(crate) struct Walker {
    actions: Vec<Action>,
    functions: BTreeSet<String>,
    opaque: BTreeSet<String>,
    flags: Flags,
    cte_scopes: Vec<Vec<String>>,
    /// Inside EXPLAIN without ANALYZE: nothing is executed.
    explain_only: bool,
    /// RangeVars met while set become this kind instead of reads (DDL and GRANT targets).
    target: Option<ActionKind>,
    dml_depth: usize,
    depth: usize,
    prepares: Option<String>,
    executes: Option<String>,
    deallocates: Option<Option<String>>,
    settings: Vec<SettingChange>,
    /// Holds a secret (a password, a connection string): recorded only redacted.
    secret: bool,
    /// Qualified names that may be calls, each once (a set: a statement may
    /// hold tens of thousands of qualified columns).
    attributes: std::collections::HashSet<crate::AttributeUse>,
}

pub(crate) fn field<'a>(b: &'a Value, key: &str) -> Option<&'a Value> {
    b.get(key).filter(|v| !v.is_null())
}

fn is_nonempty(b: &Value, key: &str) -> bool {
    match field(b, key) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
        None => false,
    }
}

pub(crate) fn str_field<'a>(b: &'a Value, key: &str) -> &'a str {
    b.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A node, wrapped (`{"node": {"Type": {…}}}`) or not (`{"Type": {…}}`): its type and body.
pub(crate) fn node_of(v: &Value) -> Option<(&str, &Value)> {
    let v = v.get("node").unwrap_or(v);
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let (k, b) = m.first()?;
    k.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some((k.as_ref(), b))
}

fn is_range_var(m: &[(Cow<'static, str>, Value)]) -> bool {
    let has = |key: &str| m.iter().any(|(k, _)| k == key);
    has("relname") && has("schemaname")
}

/// CamelCase node name without `Stmt` to snake_case: `AlterSystemStmt` -> `alter_system`.
fn operation_name(ty: &str) -> String {
    let base = ty.strip_suffix("Stmt").unwrap_or(ty);
    match base {
        "Dropdb" => return "drop_database".into(),
        "Createdb" => return "create_database".into(),
        _ => {}
    }
    let mut out = String::with_capacity(base.len() + 4);
    for (i, c) in base.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The kind a top-level statement node stands for.
fn statement_kind(ty: &str, b: &Value) -> ActionKind {
    use ActionKind::*;
    match ty {
        "SelectStmt" if is_nonempty(b, "into_clause") => Ddl,
        "SelectStmt" | "DeclareCursorStmt" | "FetchStmt" => Select,
        "InsertStmt" => Insert,
        "UpdateStmt" => Update,
        "DeleteStmt" => Delete,
        "MergeStmt" => Merge,
        "TruncateStmt" => Truncate,
        "CopyStmt" if b.get("is_from").and_then(Value::as_bool).unwrap_or(false) => CopyIn,
        "CopyStmt" => CopyOut,
        "DoStmt" | "CallStmt" => Procedural,
        "ExplainStmt" => Explain,
        "TransactionStmt" => Transaction,
        "VariableSetStmt"
            if matches!(
                str_field(b, "name").to_ascii_lowercase().as_str(),
                "role" | "session_authorization"
            ) =>
        {
            Dcl
        }
        "VariableSetStmt" | "VariableShowStmt" | "DiscardStmt" | "ListenStmt" | "UnlistenStmt"
        | "NotifyStmt" | "DeallocateStmt" | "PrepareStmt" | "ExecuteStmt" | "ClosePortalStmt"
        | "ConstraintsSetStmt" => Set,
        "GrantStmt"
        | "GrantRoleStmt"
        | "CreateRoleStmt"
        | "AlterRoleStmt"
        | "AlterRoleSetStmt"
        | "DropRoleStmt"
        | "AlterDefaultPrivilegesStmt"
        | "ReassignOwnedStmt"
        | "DropOwnedStmt"
        | "CreateUserMappingStmt"
        | "AlterUserMappingStmt"
        | "DropUserMappingStmt"
        | "SecLabelStmt" => Dcl,
        "AlterSystemStmt"
        | "VacuumStmt"
        | "ClusterStmt"
        | "ReindexStmt"
        | "CheckPointStmt"
        | "LoadStmt"
        | "CreateExtensionStmt"
        | "AlterExtensionStmt"
        | "AlterExtensionContentsStmt"
        | "CreateTableSpaceStmt"
        | "DropTableSpaceStmt"
        | "AlterTableSpaceOptionsStmt"
        | "CreateEventTrigStmt"
        | "AlterEventTrigStmt"
        | "CreateSubscriptionStmt"
        | "AlterSubscriptionStmt"
        | "DropSubscriptionStmt"
        | "CreatePublicationStmt"
        | "AlterPublicationStmt"
        | "CreateFdwStmt"
        | "AlterFdwStmt"
        | "CreateForeignServerStmt"
        | "AlterForeignServerStmt"
        | "ImportForeignSchemaStmt"
        | "CreatePLangStmt" => Admin,
        "CreateStmt"
        | "AlterTableStmt"
        | "DropStmt"
        | "IndexStmt"
        | "ViewStmt"
        | "CreateTableAsStmt"
        | "RenameStmt"
        | "CreateSchemaStmt"
        | "CreateSeqStmt"
        | "AlterSeqStmt"
        | "CreateFunctionStmt"
        | "AlterFunctionStmt"
        | "CreateTrigStmt"
        | "RuleStmt"
        | "CreateDomainStmt"
        | "AlterDomainStmt"
        | "CompositeTypeStmt"
        | "CreateEnumStmt"
        | "AlterEnumStmt"
        | "CreateRangeStmt"
        | "DefineStmt"
        | "CommentStmt"
        | "AlterOwnerStmt"
        | "AlterObjectSchemaStmt"
        | "AlterObjectDependsStmt"
        | "CreatedbStmt"
        | "DropdbStmt"
        | "AlterDatabaseStmt"
        | "AlterDatabaseSetStmt"
        | "AlterDatabaseRefreshCollStmt"
        | "RefreshMatViewStmt"
        | "CreatePolicyStmt"
        | "AlterPolicyStmt"
        | "CreateCastStmt"
        | "CreateConversionStmt"
        | "CreateOpClassStmt"
        | "CreateOpFamilyStmt"
        | "AlterOpFamilyStmt"
        | "CreateStatsStmt"
        | "AlterStatsStmt"
        | "CreateTransformStmt"
        | "CreateAmStmt"
        | "AlterTypeStmt"
        | "AlterCollationStmt"
        | "AlterTSDictionaryStmt"
        | "AlterTSConfigurationStmt"
        | "CreateForeignTableStmt"
        | "AlterTableMoveAllStmt" => Ddl,
        _ => Other,
    }
}

impl Walker {
    fn new() -> Self {
        Self {
            actions: Vec::new(),
            functions: BTreeSet::new(),
            opaque: BTreeSet::new(),
            flags: Flags::default(),
            cte_scopes: Vec::new(),
            explain_only: false,
            target: None,
            dml_depth: 0,
            depth: 0,
            prepares: None,
            executes: None,
            deallocates: None,
            settings: Vec::new(),
            secret: false,
            attributes: std::collections::HashSet::new(),
        }
    }

    fn action(&mut self, kind: ActionKind, table: Option<TableRef>, has_where: Option<bool>) {
        let (kind, has_where) = if self.explain_only {
            (ActionKind::Explain, None)
        } else {
            (kind, has_where)
        };
        let a = Action {
            kind,
            table,
            has_where,
        };
        if !self.actions.contains(&a) {
            self.actions.push(a);
        }
    }

    fn attribute(&mut self, qualifier: Option<String>, name: String) {
        self.attributes
            .insert(crate::AttributeUse { qualifier, name });
    }

    fn is_cte(&self, name: &str) -> bool {
        self.cte_scopes.iter().any(|s| s.iter().any(|c| c == name))
    }

    fn table_of(&self, rv: &Value) -> Option<TableRef> {
        let name = str_field(rv, "relname");
        if name.is_empty() {
            return None;
        }
        let schema = str_field(rv, "schemaname");
        if schema.is_empty() && self.is_cte(name) {
            return None;
        }
        Some(TableRef {
            schema: (!schema.is_empty()).then(|| schema.to_string()),
            name: name.to_string(),
        })
    }

    fn visit(&mut self, v: &Value) -> Result<(), SqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SqlError::TooComplex);
        }
        match v {
            Value::Object(m) if is_range_var(m) => {
                if str_field(v, "relpersistence") == "t"
                    || str_field(v, "schemaname").starts_with("pg_temp")
                {
                    self.flags.temporary = true;
                }
                if let Some(t) = self.table_of(v) {
                    let kind = self.target.unwrap_or(ActionKind::Select);
                    self.action(kind, Some(t), None);
                }
            }
            Value::Object(m) => {
                for (k, child) in m {
                    if k.starts_with(|c: char| c.is_ascii_uppercase()) {
                        self.node(k, child)?;
                    } else {
                        self.visit(child)?;
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.visit(x)?;
                }
            }
            _ => {}
        }
        self.depth -= 1;
        Ok(())
    }

    /// Visits every field of `b` except those named in `skip`.
    fn visit_except(&mut self, b: &Value, skip: &[&str]) -> Result<(), SqlError> {
        if let Value::Object(m) = b {
            for (k, child) in m {
                if !skip.contains(&k.as_ref()) {
                    self.visit(child)?;
                }
            }
        }
        Ok(())
    }

    fn with_targets(&mut self, kind: ActionKind, v: Option<&Value>) -> Result<(), SqlError> {
        if let Some(v) = v {
            let saved = self.target.replace(kind);
            self.visit(v)?;
            self.target = saved;
        }
        Ok(())
    }

    /// Visits a statement's WITH clause, each CTE's body seeing only the
    /// CTEs before it (all of them, itself included, under RECURSIVE), as
    /// PostgreSQL scopes them: in `WITH orders AS (SELECT * FROM orders)`
    /// the body reads the table. Then the names are in scope for the rest
    /// of the statement, until [`Self::leave_with`].
    fn enter_with(&mut self, b: &Value) -> Result<(), SqlError> {
        let mut names = Vec::new();
        if let Some(w) = field(b, "with_clause") {
            let recursive = w.get("recursive").and_then(Value::as_bool) == Some(true);
            let ctes: Vec<&Value> = w
                .get("ctes")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let name_of = |c: &Value| match node_of(c) {
                Some(("CommonTableExpr", e)) => {
                    e.get("ctename").and_then(Value::as_str).map(str::to_string)
                }
                _ => None,
            };
            let all: Vec<String> = ctes.iter().filter_map(|c| name_of(c)).collect();
            for (i, c) in ctes.iter().enumerate() {
                let visible = if recursive {
                    all.clone()
                } else {
                    ctes[..i].iter().filter_map(|c| name_of(c)).collect()
                };
                self.cte_scopes.push(visible);
                let visited = self.visit(c);
                self.cte_scopes.pop();
                visited?;
            }
            names = all;
        }
        self.cte_scopes.push(names);
        Ok(())
    }

    fn leave_with(&mut self) {
        self.cte_scopes.pop();
    }

    fn dml(
        &mut self,
        kind: ActionKind,
        b: &Value,
        has_where: Option<bool>,
    ) -> Result<(), SqlError> {
        if self.dml_depth > 0 {
            // A data-changing statement nested in another (a CTE, EXPLAIN ANALYZE's
            // statement excepted, which is top level): it still counts as what it does.
            self.flags.data_modifying_cte = true;
        }
        self.dml_depth += 1;
        self.enter_with(b)?;
        if let Some(t) = field(b, "relation").and_then(|r| self.table_of(r)) {
            self.action(kind, Some(t), has_where);
        }
        self.visit_except(b, &["relation", "with_clause"])?;
        self.leave_with();
        self.dml_depth -= 1;
        Ok(())
    }

    fn node(&mut self, ty: &str, b: &Value) -> Result<(), SqlError> {
        use ActionKind::*;
        match ty {
            "SelectStmt" => {
                if let Some(into) = field(b, "into_clause") {
                    self.with_targets(Ddl, into.get("rel"))?;
                }
                if is_nonempty(b, "locking_clause") {
                    self.flags.locks_rows = true;
                }
                self.dml_depth += 1;
                self.enter_with(b)?;
                self.visit_except(b, &["into_clause", "with_clause"])?;
                self.leave_with();
                self.dml_depth -= 1;
            }
            "InsertStmt" => {
                if let Some(oc) = field(b, "on_conflict_clause") {
                    // ONCONFLICT_UPDATE: an upsert also updates the target.
                    if oc.get("action").and_then(Value::as_i64) == Some(3) {
                        if let Some(t) = field(b, "relation").and_then(|r| self.table_of(r)) {
                            self.action(Update, Some(t), Some(is_nonempty(oc, "where_clause")));
                        }
                    }
                }
                self.dml(Insert, b, None)?;
            }
            "UpdateStmt" => self.dml(Update, b, Some(bounded(b)))?,
            "DeleteStmt" => self.dml(Delete, b, Some(bounded(b)))?,
            "MergeStmt" => self.dml(Merge, b, None)?,
            "TruncateStmt" => self.with_targets(Truncate, field(b, "relations"))?,
            "CopyStmt" => {
                let from = b.get("is_from").and_then(Value::as_bool).unwrap_or(false);
                if b.get("is_program")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    self.flags.copy_program = true;
                } else if !str_field(b, "filename").is_empty() {
                    self.flags.copy_file = true;
                }
                let kind = if from { CopyIn } else { CopyOut };
                self.with_targets(kind, field(b, "relation"))?;
                self.visit_except(b, &["relation"])?;
            }
            "FuncCall" => {
                let name = qualified_name(b.get("funcname"));
                if !name.is_empty() {
                    if settings::is_set_config(&name) {
                        let change = settings::from_set_config(b);
                        // The same flags as the SET it amounts to; a name known
                        // only at run time could be any of them.
                        match change.name.as_deref() {
                            Some("search_path") => self.flags.changes_search_path = true,
                            Some("role" | "session_authorization") => {
                                self.flags.changes_role = true
                            }
                            Some(_) => {}
                            None => {
                                self.flags.changes_search_path = true;
                                self.flags.changes_role = true;
                            }
                        }
                        self.settings.push(change);
                    }
                    if name.contains("dblink") {
                        // dblink's connection strings carry passwords.
                        self.secret = true;
                    }
                    if !functions::is_safe(&name) {
                        self.opaque.insert(name.clone());
                    }
                    self.functions.insert(name);
                }
                self.visit_except(b, &["funcname"])?;
            }
            "DoStmt" => {
                self.flags.opaque_code = true;
                self.action(Procedural, None, None);
            }
            "CallStmt" => {
                self.flags.opaque_code = true;
                self.action(Procedural, None, None);
                if let Some(fc) = field(b, "funccall") {
                    let name = qualified_name(fc.get("funcname"));
                    if !name.is_empty() {
                        self.opaque.insert(name.clone());
                        self.functions.insert(name);
                    }
                }
                self.visit(b)?;
            }
            "CreateFunctionStmt" => {
                self.flags.opaque_code = true;
                self.visit_except(b, &["options"])?;
            }
            "ExplainStmt" => {
                let analyze = b
                    .get("options")
                    .and_then(Value::as_array)
                    .is_some_and(|opts| opts.iter().any(explain_analyze_option));
                if analyze {
                    self.flags.explain_analyze = true;
                    self.visit(b)?;
                } else {
                    let saved = std::mem::replace(&mut self.explain_only, true);
                    self.visit(b)?;
                    self.explain_only = saved;
                }
            }
            "PrepareStmt" => {
                self.prepares = Some(str_field(b, "name").to_string());
                self.visit_except(b, &["name"])?;
            }
            "ExecuteStmt" => {
                self.executes = Some(str_field(b, "name").to_string());
                self.visit_except(b, &["name"])?;
            }
            "DeallocateStmt" => {
                let name = str_field(b, "name");
                self.deallocates = Some((!name.is_empty()).then(|| name.to_string()));
            }
            "VariableSetStmt" => {
                // Setting names are case-insensitive (`SET "SEARCH_PATH" = x`).
                let name = str_field(b, "name").to_ascii_lowercase();
                match name.as_str() {
                    "search_path" => self.flags.changes_search_path = true,
                    "role" | "session_authorization" => self.flags.changes_role = true,
                    _ => {}
                }
                // Only the session's own SET changes this session; one inside
                // ALTER ROLE/DATABASE/FUNCTION … SET applies elsewhere.
                if self.depth == 0 {
                    self.settings.extend(settings::from_variable_set(b));
                }
                self.visit(b)?;
            }
            "ColumnRef" => {
                // `x.f` may be the function call `f(x)` (attribute notation).
                let mut parts = Vec::new();
                for p in field(b, "fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match node_of(p) {
                        Some(("String", s)) => parts.push(str_field(s, "sval").to_string()),
                        _ => parts.push(String::new()),
                    }
                }
                if parts.len() >= 2 {
                    if let Some(name) = parts.pop().filter(|n| !n.is_empty()) {
                        self.attribute(parts.pop().filter(|q| !q.is_empty()), name);
                    }
                }
            }
            "A_Indirection" | "AIndirection" => {
                // `(expr).f`: the same, on any expression.
                for p in field(b, "indirection")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(("String", s)) = node_of(p) {
                        self.attribute(None, str_field(s, "sval").to_string());
                    }
                }
                self.visit(b)?;
            }
            "DefElem" => {
                // `PASSWORD 'x'` of a role, `OPTIONS (password 'x')` of a user
                // mapping or server, however the name was quoted or escaped.
                if str_field(b, "defname").eq_ignore_ascii_case("password") {
                    self.secret = true;
                }
                self.visit(b)?;
            }
            "DropStmt" => {
                for name in dropped_names(b.get("objects")) {
                    self.action(Ddl, Some(name), None);
                }
                self.visit_except(b, &["objects"])?;
            }
            "GrantStmt" => {
                self.with_targets(Dcl, field(b, "objects"))?;
                self.visit_except(b, &["objects"])?;
            }
            "ViewStmt" => {
                self.with_targets(Ddl, field(b, "view"))?;
                self.visit_except(b, &["view"])?;
            }
            "CreateTableAsStmt" => {
                self.with_targets(Ddl, field(b, "into").and_then(|i| i.get("rel")))?;
                self.visit_except(b, &["into"])?;
            }
            _ if statement_kind(ty, b) == Ddl || statement_kind(ty, b) == Admin => {
                let kind = statement_kind(ty, b);
                const TARGETS: [&str; 5] = ["relation", "relations", "sequence", "table", "rels"];
                for t in TARGETS {
                    self.with_targets(kind, field(b, t))?;
                }
                self.visit_except(b, &TARGETS)?;
            }
            _ => self.visit(b)?,
        }
        Ok(())
    }
}

fn explain_analyze_option(opt: &Value) -> bool {
    let Some(("DefElem", d)) = node_of(opt) else {
        return false;
    };
    if str_field(d, "defname") != "analyze" {
        return false;
    }
    // `ANALYZE` alone, or `ANALYZE true/on/1`; `ANALYZE false/off/0` does not execute.
    match field(d, "arg") {
        None => true,
        Some(arg) => {
            let s = arg.to_string().to_ascii_lowercase();
            !(s.contains("\"false\"")
                || s.contains("\"off\"")
                || s.contains("\"ival\":0")
                || s.contains("\"boolval\":false"))
        }
    }
}

/// `["pg_catalog", "lower"]` as String nodes -> `pg_catalog.lower`.
fn qualified_name(v: Option<&Value>) -> String {
    let mut parts = Vec::new();
    if let Some(Value::Array(items)) = v {
        for it in items {
            if let Some(("String", s)) = node_of(it) {
                if let Some(s) = s.get("sval").and_then(Value::as_str) {
                    parts.push(s.to_ascii_lowercase());
                }
            }
        }
    }
    parts.join(".")
}

/// Names in a DROP's object list that are (schema-)qualified names.
fn dropped_names(v: Option<&Value>) -> Vec<TableRef> {
    let mut out = Vec::new();
    if let Some(Value::Array(objs)) = v {
        for o in objs {
            if let Some(("List", l)) = node_of(o) {
                let items = l.get("items");
                let name = qualified_name(items);
                let mut parts: Vec<&str> = name.split('.').collect();
                if let Some(last) = parts.pop().filter(|s| !s.is_empty()) {
                    out.push(TableRef {
                        schema: parts.last().map(|s| s.to_string()),
                        name: last.to_string(),
                    });
                }
            }
        }
    }
    out
}

/// Whether an UPDATE's or DELETE's WHERE bounds the rows of its target.
fn bounded(b: &Value) -> bool {
    let relation = field(b, "relation");
    let name = relation.map(|r| str_field(r, "relname")).unwrap_or("");
    let alias = relation
        .and_then(|r| field(r, "alias"))
        .map(|a| str_field(a, "aliasname"))
        .unwrap_or("");
    let names: Vec<&str> = [name, alias]
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    let target = crate::bounds::Target {
        names: &names,
        joined: is_nonempty(b, "from_clause") || is_nonempty(b, "using_clause"),
    };
    crate::bounds::restricts(field(b, "where_clause"), &target)
}

/// Statements whose options or connection strings carry credentials.
fn holds_secret(ty: &str) -> bool {
    matches!(
        ty,
        "CreateRoleStmt"
            | "AlterRoleStmt"
            | "CreateUserMappingStmt"
            | "AlterUserMappingStmt"
            | "CreateForeignServerStmt"
            | "AlterForeignServerStmt"
            | "CreateSubscriptionStmt"
            | "AlterSubscriptionStmt"
    )
}

/// Analyzes one top-level statement node.
pub(crate) fn analyze_statement(stmt: &Value, text: &str) -> Result<StatementAnalysis, SqlError> {
    let (ty, body) = match stmt
        .get("node")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().next())
    {
        Some((ty, body)) => (ty.as_ref(), body),
        None => return Err(SqlError::Unsupported("empty statement node".into())),
    };
    let mut w = Walker::new();
    w.node(ty, body)?;
    if holds_secret(ty)
        || (matches!(ty, "DoStmt" | "CreateFunctionStmt" | "AlterFunctionStmt")
            && crate::secret::mentions_password(text))
    {
        w.secret = true;
    }
    let mut kind = statement_kind(ty, body);
    // EXPLAIN ANALYZE runs its statement and PREPARE prepares one: each is what its statement is.
    if (ty == "ExplainStmt" && w.flags.explain_analyze) || ty == "PrepareStmt" {
        kind = body
            .get("query")
            .and_then(node_of)
            .map(|(t, b)| statement_kind(t, b))
            .unwrap_or(ActionKind::Other);
    }
    if !w.opaque.is_empty() {
        w.action(ActionKind::Function, None, None);
    }
    // Every statement is at least its own kind, even when it names no table.
    let has_own_kind = w.actions.iter().any(|a| a.kind == kind);
    if w.actions.is_empty() || (!has_own_kind && kind != ActionKind::Select) {
        w.action(kind, None, None);
    }
    // The statement counts as the most severe thing it does.
    let effective = w
        .actions
        .iter()
        .map(|a| a.kind)
        .max()
        .unwrap_or(kind)
        .max(kind);
    Ok(StatementAnalysis {
        text: text.to_string(),
        kind: effective,
        operation: operation_name(ty),
        actions: w.actions,
        functions: w.functions.into_iter().collect(),
        opaque_functions: w.opaque.into_iter().collect(),
        flags: w.flags,
        prepares: w.prepares,
        executes: w.executes,
        deallocates: w.deallocates,
        settings: w.settings,
        secret: w.secret,
        attributes: {
            // In a stable order: analyses are compared and cached.
            let mut a: Vec<_> = w.attributes.into_iter().collect();
            a.sort_by(|x, y| (&x.qualifier, &x.name).cmp(&(&y.qualifier, &y.name)));
            a
        },
        columns: crate::flow::column_flow(ty, body),
        copy_out: (ty == "CopyStmt")
            .then(|| crate::copy::copy_out(body))
            .flatten(),
        values_rows: values_rows(ty, body),
    })
}

/// The rows of an `INSERT … VALUES` without a WITH (whose own writes would
/// count too).
fn values_rows(ty: &str, body: &Value) -> Option<u64> {
    if ty != "InsertStmt" || field(body, "with_clause").is_some() {
        return None;
    }
    let (ty, select) = node_of(field(body, "select_stmt")?)?;
    if ty != "SelectStmt" {
        return None;
    }
    if field(select, "with_clause").is_some() {
        return None;
    }
    // An INSERT … SELECT has no VALUES lists (an empty one, as parsed).
    let n = select.get("values_lists")?.as_array()?.len();
    u64::try_from(n).ok().filter(|n| *n > 0)
}
