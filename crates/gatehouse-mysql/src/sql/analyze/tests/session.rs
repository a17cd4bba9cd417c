//! Session state: SET, USE, SHOW, transactions, prepared statements.

use super::{actions, kind, ok, refused};
use crate::sql::SqlModeChange;
use gatehouse_sql::{SettingChange, SettingValue};

fn setting(name: &str, value: SettingValue) -> SettingChange {
    SettingChange {
        name: Some(name.into()),
        value,
    }
}

fn literal(v: &str) -> SettingValue {
    SettingValue::Literal(v.into())
}

#[test]
fn every_spelling_of_a_session_variable_is_a_session_setting() {
    for sql in [
        "SET wait_timeout = 60",
        "SET SESSION wait_timeout = 60",
        "SET LOCAL wait_timeout = 60",
        "SET @@wait_timeout = 60",
        "SET @@session.wait_timeout = 60",
        "SET @@SESSION.WAIT_TIMEOUT = 60",
        "SET @@local.wait_timeout = 60",
        "SET wait_timeout := 60",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "set", "{sql}");
        assert_eq!(st.analysis.operation, "variable_set", "{sql}");
        assert_eq!(
            st.analysis.settings,
            [setting("wait_timeout", literal("60"))],
            "{sql}"
        );
    }
}

#[test]
fn user_variables_are_settings_by_their_at_name() {
    let st = ok("SET @Total = 5, @name := 'x'");
    assert_eq!(kind(&st), "set");
    assert_eq!(
        st.analysis.settings,
        [
            setting("@total", literal("5")),
            setting("@name", literal("x"))
        ]
    );
    let st = ok("SET @u = (SELECT max(a) FROM t)");
    assert_eq!(actions(&st), ["select t", "set"]);
    assert_eq!(st.analysis.settings, [setting("@u", SettingValue::Unknown)]);
}

#[test]
fn words_and_defaults_are_values_as_written() {
    let st = ok("SET autocommit = ON, sql_safe_updates = DEFAULT, time_zone = '+00:00'");
    assert_eq!(
        st.analysis.settings,
        [
            setting("autocommit", literal("ON")),
            setting("sql_safe_updates", SettingValue::Default),
            setting("time_zone", literal("+00:00")),
        ]
    );
    assert!(
        st.analysis.columns.derived.is_empty(),
        "ON is a value, not a column"
    );
}

#[test]
fn sql_mode_changes_are_reported() {
    for (sql, want) in [
        (
            "SET sql_mode = 'ANSI_QUOTES'",
            Some(SqlModeChange::Literal("ANSI_QUOTES".into())),
        ),
        (
            "SET SESSION sql_mode = ''",
            Some(SqlModeChange::Literal(String::new())),
        ),
        (
            "SET @@sql_mode = TRADITIONAL",
            Some(SqlModeChange::Literal("TRADITIONAL".into())),
        ),
        (
            "SET @@session.sql_mode = DEFAULT",
            Some(SqlModeChange::Default),
        ),
        (
            "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')",
            Some(SqlModeChange::Unknown),
        ),
        ("SET sql_mode = @saved", Some(SqlModeChange::Unknown)),
        ("SET sql_mode = 4", Some(SqlModeChange::Unknown)),
        (
            "SET autocommit = 1, sql_mode = 'ANSI'",
            Some(SqlModeChange::Literal("ANSI".into())),
        ),
        // The server's default for new sessions, not this session's.
        ("SET GLOBAL sql_mode = 'ANSI'", None),
        ("SET @sql_mode = 'ANSI'", None),
    ] {
        assert_eq!(ok(sql).sql_mode, want, "{sql}");
    }
}

#[test]
fn set_names_sets_the_character_sets_of_the_connection() {
    let st = ok("SET NAMES utf8mb4 COLLATE utf8mb4_bin");
    assert_eq!(kind(&st), "set");
    assert_eq!(
        st.analysis.settings,
        [
            setting("character_set_client", literal("utf8mb4")),
            setting("character_set_connection", literal("utf8mb4")),
            setting("character_set_results", literal("utf8mb4")),
        ]
    );
    let st = ok("SET CHARACTER SET 'latin1'");
    assert_eq!(st.analysis.settings.len(), 2);
    assert_eq!(
        kind(&ok("SET collation_connection = utf8mb4_0900_ai_ci")),
        "set"
    );
}

#[test]
fn set_role_changes_the_role() {
    let st = ok("SET ROLE reporting");
    assert_eq!(kind(&st), "dcl");
    assert!(st.analysis.flags.changes_role);
    assert_eq!(
        st.analysis.settings,
        [setting("role", literal("reporting"))]
    );
    assert_eq!(kind(&ok("SET DEFAULT ROLE r TO u")), "dcl");
}

#[test]
fn use_makes_a_database_current() {
    let st = ok("USE `Shop`");
    assert_eq!(kind(&st), "set");
    assert_eq!(st.analysis.operation, "use");
    assert_eq!(st.uses_database.as_deref(), Some("Shop"));
}

#[test]
fn transaction_control_is_transaction() {
    for sql in [
        "BEGIN",
        "BEGIN WORK",
        "START TRANSACTION",
        "START TRANSACTION READ ONLY",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        "START TRANSACTION READ WRITE, WITH CONSISTENT SNAPSHOT",
        "COMMIT",
        "COMMIT AND CHAIN",
        "ROLLBACK",
        "ROLLBACK TO SAVEPOINT s",
        "SAVEPOINT s",
        "RELEASE SAVEPOINT s",
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET SESSION TRANSACTION READ ONLY",
        "XA START 'x'",
    ] {
        assert_eq!(kind(&ok(sql)), "transaction", "{sql}");
    }
}

#[test]
fn show_is_set_and_describing_a_table_reads_it() {
    for sql in [
        "SHOW TABLES",
        "SHOW FULL TABLES FROM shop LIKE 'o%'",
        "SHOW DATABASES",
        "SHOW VARIABLES LIKE 'sql_mode'",
        "SHOW GLOBAL STATUS",
        "SHOW PROCESSLIST",
        "SHOW WARNINGS",
        "SHOW GRANTS FOR 'u'@'%'",
        "SHOW GRANTS FOR CURRENT_USER()",
        "SHOW ENGINE INNODB STATUS",
        "SHOW CREATE PROCEDURE p",
        "HELP 'contents'",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "set", "{sql}");
        assert_eq!(actions(&st), ["set"], "{sql}: FROM shop is not a table");
    }
    for (sql, table) in [
        ("DESCRIBE t", "select t"),
        ("DESC shop.t", "select shop.t"),
        ("EXPLAIN t", "select t"),
        ("SHOW COLUMNS FROM t", "select t"),
        ("SHOW FULL COLUMNS FROM t FROM shop", "select shop.t"),
        ("SHOW CREATE TABLE shop.t", "select shop.t"),
        ("SHOW INDEX FROM t FROM shop", "select shop.t"),
        ("SHOW KEYS IN t", "select t"),
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "select", "{sql}");
        assert_eq!(actions(&st), [table], "{sql}");
    }
}

#[test]
fn explain_plans_without_running() {
    for sql in [
        "EXPLAIN SELECT * FROM t",
        "EXPLAIN FORMAT=JSON SELECT * FROM t",
        "DESCRIBE SELECT * FROM t",
        "EXPLAIN DELETE FROM t",
        "EXPLAIN UPDATE t SET a = 1",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "explain", "{sql}");
        assert_eq!(actions(&st), ["explain t"], "{sql}");
        assert!(!st.analysis.flags.explain_analyze, "{sql}");
    }
}

#[test]
fn prepared_statements_are_what_they_prepare() {
    let st = ok("PREPARE s FROM 'SELECT a FROM t WHERE id = ?'");
    assert_eq!(kind(&st), "select");
    assert_eq!(st.analysis.operation, "prepare");
    assert_eq!(actions(&st), ["select t"]);
    assert_eq!(st.placeholders, 1);
    let st = ok("PREPARE s FROM 'DELETE FROM t WHERE id = ?'");
    assert_eq!(actions(&st), ["delete t where"]);
    let st = ok("EXECUTE s USING @a, @b");
    assert_eq!(kind(&st), "set");
    assert_eq!(st.analysis.executes.as_deref(), Some("s"));
    let st = ok("DEALLOCATE PREPARE s");
    assert_eq!(kind(&st), "set");
    assert_eq!(st.analysis.deallocates, Some(Some("s".into())));
}

#[test]
fn preparing_a_session_setting_is_refused() {
    refused("PREPARE s FROM 'SET sql_mode = ''ANSI_QUOTES'''");
    refused("PREPARE s FROM 'SET NAMES latin1'");
    // A user variable changes nothing the gateway follows.
    assert_eq!(kind(&ok("PREPARE s FROM 'SET @a = ?'")), "set");
}

#[test]
fn a_prepared_statement_the_lexer_rejects_is_a_nested_error() {
    // The string holds an unterminated comment.
    let e = refused("PREPARE s FROM 'SELECT 1 /* x'");
    assert!(
        matches!(e, crate::sql::analyze::AnalyzeError::Nested(_)),
        "{e}"
    );
}
