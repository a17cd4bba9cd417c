//! Schema changes, stored programs, privileges and administration.

use super::{actions, kind, ok, refused};

#[test]
fn table_ddl_changes_the_table() {
    for (sql, op, acts) in [
        (
            "CREATE TABLE t (a INT PRIMARY KEY)",
            "create",
            vec!["ddl t"],
        ),
        (
            "CREATE TABLE shop.t LIKE shop.u",
            "create",
            vec!["ddl shop.t", "select shop.u"],
        ),
        (
            "ALTER TABLE t ADD COLUMN b INT",
            "alter_table",
            vec!["ddl t"],
        ),
        (
            "ALTER TABLE t RENAME TO other.t",
            "alter_table",
            vec!["ddl t", "ddl other.t"],
        ),
        ("DROP TABLE t, shop.u", "drop", vec!["ddl t", "ddl shop.u"]),
        ("RENAME TABLE a TO b", "rename", vec!["ddl a", "ddl b"]),
        ("CREATE INDEX i ON t (a)", "index", vec!["ddl t"]),
        ("DROP INDEX i ON t", "drop", vec!["ddl t"]),
        (
            "CREATE VIEW v AS SELECT a FROM t",
            "view",
            vec!["ddl v", "select t"],
        ),
        (
            "ALTER VIEW v AS SELECT a FROM t",
            "alter_view",
            vec!["ddl v", "select t"],
        ),
        ("DROP VIEW v", "drop", vec!["ddl v"]),
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "ddl", "{sql}");
        assert_eq!(st.analysis.operation, op, "{sql}");
        assert_eq!(actions(&st), acts, "{sql}");
    }
}

#[test]
fn a_foreign_key_reads_the_table_it_references() {
    let st = ok("CREATE TABLE t (a INT, FOREIGN KEY (a) REFERENCES shop.people (id))");
    assert_eq!(actions(&st), ["ddl t", "select shop.people"]);
    let st = ok("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES people (id)");
    assert_eq!(actions(&st), ["ddl t", "select people"]);
}

#[test]
fn a_column_default_calling_a_side_effect_function_is_a_function_call() {
    let st = ok("CREATE TABLE t (a TEXT DEFAULT (load_file('/etc/passwd')))");
    assert_eq!(st.analysis.opaque_functions, ["load_file"]);
    assert!(actions(&st).contains(&"function".to_string()));
}

#[test]
fn temporary_tables_are_flagged() {
    assert!(
        ok("CREATE TEMPORARY TABLE t (a INT)")
            .analysis
            .flags
            .temporary
    );
    assert!(ok("DROP TEMPORARY TABLE t").analysis.flags.temporary);
}

#[test]
fn database_and_schema_are_one_thing() {
    for (sql, op) in [
        ("CREATE DATABASE d", "create_database"),
        ("CREATE SCHEMA d", "create_database"),
        ("DROP DATABASE d", "drop_database"),
        ("DROP SCHEMA IF EXISTS d", "drop_database"),
        ("ALTER DATABASE d CHARACTER SET utf8mb4", "alter_database"),
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "ddl", "{sql}");
        assert_eq!(st.analysis.operation, op, "{sql}");
    }
}

#[test]
fn stored_programs_are_ddl_with_opaque_code() {
    for (sql, op) in [
        (
            "CREATE PROCEDURE p() BEGIN DELETE FROM t; END",
            "create_function",
        ),
        (
            "CREATE DEFINER = `root`@`%` PROCEDURE p() SELECT 1",
            "create_function",
        ),
        (
            "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1",
            "create_function",
        ),
        (
            "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t",
            "create_event",
        ),
        (
            "CREATE DEFINER = trigger@localhost PROCEDURE p() SELECT 1",
            "create_function",
        ),
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "ddl", "{sql}");
        assert_eq!(st.analysis.operation, op, "{sql}");
        assert!(st.analysis.flags.opaque_code, "{sql}");
        // The body is not analysed: it does not run now.
        assert_eq!(actions(&st), ["ddl"], "{sql}");
    }
}

#[test]
fn a_trigger_changes_its_table() {
    let st = ok("CREATE TRIGGER tr BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.a = 1");
    assert_eq!(actions(&st), ["ddl shop.t"]);
    assert_eq!(st.analysis.operation, "create_trig");
    assert!(st.analysis.flags.opaque_code);
    refused("CREATE TRIGGER tr");
}

#[test]
fn dropping_and_altering_stored_programs_is_ddl() {
    for sql in [
        "DROP PROCEDURE p",
        "DROP FUNCTION IF EXISTS f",
        "DROP TRIGGER tr",
        "DROP EVENT e",
        "ALTER PROCEDURE p COMMENT 'x'",
        "ALTER EVENT e DISABLE",
    ] {
        assert_eq!(kind(&ok(sql)), "ddl", "{sql}");
    }
    assert!(
        ok("ALTER EVENT e DO DELETE FROM t")
            .analysis
            .flags
            .opaque_code
    );
}

#[test]
fn a_routine_body_mentioning_a_password_is_a_secret() {
    let st = ok("CREATE PROCEDURE p() ALTER USER u IDENTIFIED BY 'sekrit'");
    assert!(st.analysis.secret);
    assert!(!st.analysis.text.contains("sekrit"));
}

#[test]
fn grants_are_dcl_on_the_tables_they_name() {
    for (sql, acts, op) in [
        (
            "GRANT SELECT ON shop.orders TO 'u'@'%'",
            vec!["dcl shop.orders"],
            "grant",
        ),
        (
            "GRANT SELECT, INSERT ON orders TO u",
            vec!["dcl orders"],
            "grant",
        ),
        (
            "GRANT ALL PRIVILEGES ON *.* TO 'u'@'%' WITH GRANT OPTION",
            vec!["dcl"],
            "grant",
        ),
        ("GRANT SELECT ON shop.* TO u", vec!["dcl"], "grant"),
        (
            "REVOKE SELECT ON shop.orders FROM 'u'@'%'",
            vec!["dcl shop.orders"],
            "grant",
        ),
        ("GRANT r1 TO u", vec!["dcl"], "grant_role"),
        (
            "GRANT SELECT ON shop.orders TO u IDENTIFIED BY 'pw'",
            vec!["dcl shop.orders"],
            "grant",
        ),
        ("GRANT PROXY ON 'a'@'%' TO 'b'@'%'", vec!["dcl"], "grant"),
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "dcl", "{sql}");
        assert_eq!(actions(&st), acts, "{sql}");
        assert_eq!(st.analysis.operation, op, "{sql}");
    }
}

#[test]
fn account_statements_are_dcl_and_their_passwords_never_kept() {
    for (sql, op) in [
        ("CREATE USER 'u'@'%' IDENTIFIED BY 'sekrit'", "create_role"),
        (
            "CREATE USER u IDENTIFIED WITH caching_sha2_password BY 'sekrit'",
            "create_role",
        ),
        (
            "ALTER USER 'u'@'%' IDENTIFIED BY 'sekrit' PASSWORD EXPIRE",
            "alter_role",
        ),
        ("SET PASSWORD FOR u = 'sekrit'", "alter_role"),
        ("GRANT SELECT ON t TO u IDENTIFIED BY 'sekrit'", "grant"),
        (
            "PREPARE s FROM 'CREATE USER u IDENTIFIED BY ''sekrit'''",
            "prepare",
        ),
        (
            "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = 'sekrit'",
            "change_replication",
        ),
    ] {
        let st = ok(sql);
        assert!(st.analysis.secret, "{sql}");
        assert!(
            !st.analysis.text.contains("sekrit"),
            "{sql}: {}",
            st.analysis.text
        );
        assert!(st.analysis.text.contains("[masked:password]"), "{sql}");
        assert_eq!(st.analysis.operation, op, "{sql}");
    }
    let st = ok("CREATE USER 'u'@'%' IDENTIFIED BY 'sekrit'");
    assert_eq!(kind(&st), "dcl");
    for sql in [
        "DROP USER 'u'@'%'",
        "DROP USER u",
        "RENAME USER a TO b",
        "CREATE ROLE r",
        "DROP ROLE r",
    ] {
        assert_eq!(kind(&ok(sql)), "dcl", "{sql}");
    }
}

#[test]
fn server_administration_is_admin() {
    for sql in [
        "KILL 5",
        "KILL QUERY 5",
        "FLUSH PRIVILEGES",
        "FLUSH TABLES WITH READ LOCK",
        "RESET MASTER",
        "PURGE BINARY LOGS TO 'binlog.000010'",
        "CHANGE MASTER TO MASTER_HOST = 'x'",
        "START REPLICA",
        "STOP SLAVE",
        "UNINSTALL PLUGIN p",
        "SHUTDOWN",
        "RESTART",
        "OPTIMIZE TABLE t",
        "ANALYZE TABLE t, shop.u",
        "CHECK TABLE t",
        "REPAIR NO_WRITE_TO_BINLOG TABLE t",
        "LOCK INSTANCE FOR BACKUP",
    ] {
        assert_eq!(kind(&ok(sql)), "admin", "{sql}");
    }
    assert_eq!(ok("KILL 5").analysis.operation, "kill");
    assert_eq!(
        actions(&ok("ANALYZE TABLE t, shop.u")),
        ["admin t", "admin shop.u"]
    );
}

#[test]
fn table_locks_are_other() {
    let st = ok("LOCK TABLES t READ, shop.u AS x WRITE, v LOW_PRIORITY WRITE");
    assert_eq!(kind(&st), "other");
    assert_eq!(
        actions(&st),
        ["select t", "select shop.u", "select v", "other"]
    );
    assert_eq!(kind(&ok("LOCK TABLE t READ LOCAL")), "other");
    assert_eq!(kind(&ok("UNLOCK TABLES")), "other");
    refused("LOCK TABLES t READ (SELECT 1)");
}
