//! Parsed schema, privilege and administration statements. Operation names
//! follow gatehouse-sql's (PostgreSQL's parse node, snake_case, without
//! `_stmt`), so one policy reads both: `DROP DATABASE` and MySQL's synonym
//! `DROP SCHEMA` are `drop_database`, `CREATE USER` is `create_role`,
//! `REVOKE` is `grant` as PostgreSQL's GrantStmt is.

use super::names::table_ref;
use super::scan::Tokens;
use super::statements::unsupported;
use super::walk::{Sink, Walk};
use super::{AnalyzeError, Facts};
use gatehouse_sql::{ActionKind, TableRef};
use sqlparser::ast::{
    AlterTableOperation, AlterViewOperation, CreateTableLikeKind, GrantObjects, KillType,
    ObjectName, ObjectNamePart, ObjectType, RenameTableNameKind, Statement,
};

/// Facts of the statements [`super::statements`] leaves to this module;
/// anything not mapped here is refused.
pub(super) fn statement(
    stmt: &Statement,
    tokens: &Tokens<'_>,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    use ActionKind::{Admin, Dcl, Ddl, Truncate};
    match stmt {
        Statement::Truncate(t) => {
            own(f, Truncate, "truncate");
            for target in &t.table_names {
                w.skip(&target.name);
                f.action(Truncate, Some(table_ref(&target.name)?), None);
            }
        }
        Statement::CreateTable(ct) => {
            if ct.clone.is_some() || ct.inherits.is_some() || ct.partition_of.is_some() {
                return Err(unsupported(tokens));
            }
            let op = if ct.query.is_some() {
                "create_table_as"
            } else {
                "create"
            };
            own(f, Ddl, op);
            f.flags.temporary = ct.temporary;
            target(&ct.name, f, w)?;
            // What CREATE TABLE … AS SELECT stores is read later without an origin.
            if let Some(q) = &ct.query {
                w.sink_query(q, Sink::Derived);
            }
            if let Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) =
                &ct.like
            {
                f.action(ActionKind::Select, Some(table_ref(&l.name)?), None);
            }
            references(tokens, f);
        }
        Statement::AlterTable(at) => {
            own(f, Ddl, "alter_table");
            target(&at.name, f, w)?;
            for op in &at.operations {
                // Renaming moves the table, possibly into another database.
                if let AlterTableOperation::RenameTable {
                    table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                } = op
                {
                    f.action(Ddl, Some(table_ref(n)?), None);
                }
            }
            references(tokens, f);
        }
        Statement::CreateIndex(ci) => {
            own(f, Ddl, "index");
            target(&ci.table_name, f, w)?;
        }
        Statement::CreateView(cv) => {
            if cv.materialized || cv.to.is_some() {
                return Err(unsupported(tokens));
            }
            own(f, Ddl, "view");
            target(&cv.name, f, w)?;
            w.sink_query(&cv.query, Sink::Derived);
        }
        Statement::AlterView(av) => {
            own(f, Ddl, "alter_view");
            target(&av.name, f, w)?;
            if let AlterViewOperation::As { query, .. } = &av.operation {
                w.sink_query(query, Sink::Derived);
            }
        }
        Statement::Drop {
            object_type,
            names,
            table,
            temporary,
            ..
        } => drop(*object_type, names, table.as_ref(), *temporary, tokens, f)?,
        Statement::DropFunction(_) | Statement::DropProcedure { .. } => own(f, Ddl, "drop"),
        Statement::DropTrigger(dt) => {
            own(f, Ddl, "drop");
            if let Some(t) = &dt.table_name {
                target(t, f, w)?;
            }
        }
        Statement::CreateDatabase { .. } | Statement::CreateSchema { .. } => {
            // A MySQL schema is a database.
            own(f, Ddl, "create_database");
        }
        Statement::RenameTable(list) => {
            own(f, Ddl, "rename");
            for r in list {
                f.action(Ddl, Some(table_ref(&r.old_name)?), None);
                f.action(Ddl, Some(table_ref(&r.new_name)?), None);
            }
        }
        Statement::CreateRole(cr) => {
            own(f, Dcl, "create_role");
            f.secret = cr.password.is_some();
        }
        Statement::CreateUser(_) => {
            own(f, Dcl, "create_role");
            f.secret = true;
        }
        Statement::AlterUser(_) => {
            own(f, Dcl, "alter_role");
            f.secret = true;
        }
        Statement::Grant(g) => {
            own(f, Dcl, "grant");
            granted_on(g.objects.as_ref(), f)?;
        }
        Statement::Revoke(r) => {
            own(f, Dcl, "grant");
            granted_on(r.objects.as_ref(), f)?;
        }
        Statement::GrantRole(_) | Statement::RevokeRole(_) => own(f, Dcl, "grant_role"),
        Statement::Kill { modifier, .. } if !matches!(modifier, Some(KillType::Mutation)) => {
            // The session layer decides whose statements may be killed.
            own(f, Admin, "kill");
        }
        Statement::Flush { tables, .. } => {
            own(f, Admin, "flush");
            for t in tables {
                f.action(Admin, Some(table_ref(t)?), None);
            }
        }
        _ => return Err(unsupported(tokens)),
    }
    Ok(())
}

fn own(f: &mut Facts, kind: ActionKind, operation: &str) {
    f.kind = kind;
    f.operation = operation.to_string();
}

/// The table a DDL statement creates or changes.
fn target(name: &ObjectName, f: &mut Facts, w: &mut Walk) -> Result<(), AnalyzeError> {
    w.skip(name);
    f.action(f.kind, Some(table_ref(name)?), None);
    Ok(())
}

/// `REFERENCES t` of a foreign key: the new key reads `t` (an insert
/// tells whether a row of `t` exists), as PostgreSQL's analysis counts it.
fn references(tokens: &Tokens<'_>, f: &mut Facts) {
    for i in 0..tokens.len() {
        if tokens.is(i, "REFERENCES") {
            if let Some((t, _)) = tokens.name(i + 1) {
                f.action(ActionKind::Select, Some(t), None);
            }
        }
    }
}

fn drop(
    object_type: ObjectType,
    names: &[ObjectName],
    table: Option<&ObjectName>,
    temporary: bool,
    tokens: &Tokens<'_>,
    f: &mut Facts,
) -> Result<(), AnalyzeError> {
    match object_type {
        ObjectType::Table | ObjectType::View => {
            own(f, ActionKind::Ddl, "drop");
            f.flags.temporary = temporary;
            for n in names {
                f.action(ActionKind::Ddl, Some(table_ref(n)?), None);
            }
        }
        // DROP INDEX i ON t changes t.
        ObjectType::Index => {
            own(f, ActionKind::Ddl, "drop");
            if let Some(t) = table {
                f.action(ActionKind::Ddl, Some(table_ref(t)?), None);
            }
        }
        ObjectType::Database | ObjectType::Schema => own(f, ActionKind::Ddl, "drop_database"),
        ObjectType::Role | ObjectType::User => own(f, ActionKind::Dcl, "drop_role"),
        _ => return Err(unsupported(tokens)),
    }
    Ok(())
}

/// The tables a GRANT or REVOKE is on: `db.t` and `t` are tables, `db.*`
/// and `*.*` are a database or the server (decided on the connection).
fn granted_on(objects: Option<&GrantObjects>, f: &mut Facts) -> Result<(), AnalyzeError> {
    let Some(GrantObjects::Tables(names)) = objects else {
        return Ok(());
    };
    for n in names {
        let wildcard =
            n.0.iter()
                .any(|p| matches!(p, ObjectNamePart::Identifier(i) if i.value == "*"));
        let table: Option<TableRef> = if wildcard { None } else { Some(table_ref(n)?) };
        f.action(ActionKind::Dcl, table, None);
    }
    Ok(())
}
