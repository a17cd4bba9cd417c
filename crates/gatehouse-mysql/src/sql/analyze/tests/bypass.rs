//! Statements that must never come out as harmless reads.

use super::{actions, derived, kind, ok, refused, run};
use crate::sql::analyze::AnalyzeError;

#[test]
fn select_into_outfile_is_a_copy_to_a_server_file_not_a_read() {
    for sql in [
        "SELECT * FROM t INTO OUTFILE '/tmp/x'",
        "SELECT a INTO OUTFILE '/tmp/x' FROM t",
        "SELECT a FROM t INTO DUMPFILE '/tmp/x'",
        "SELECT a FROM t INTO OUTFILE '/tmp/x' CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' \
         OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n'",
        "SELECT a FROM t UNION SELECT b FROM u INTO OUTFILE '/tmp/x'",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "copy_out", "{sql}");
        assert!(st.analysis.flags.copy_file, "{sql}");
        assert_eq!(st.analysis.operation, "copy", "{sql}");
        assert!(actions(&st).contains(&"select t".to_string()), "{sql}");
        assert!(actions(&st).contains(&"copy_out".to_string()), "{sql}");
    }
}

#[test]
fn what_select_into_outfile_writes_counts_as_derived() {
    let st = ok("SELECT ssn FROM people INTO OUTFILE '/tmp/x'");
    assert_eq!(derived(&st), ["ssn"]);
    assert!(st.analysis.columns.projected.is_empty());
}

#[test]
fn a_prepared_drop_table_is_ddl_on_the_table() {
    let st = ok("PREPARE s FROM 'DROP TABLE t'");
    assert_eq!(kind(&st), "ddl");
    assert_eq!(actions(&st), ["ddl t"]);
    assert_eq!(st.analysis.prepares.as_deref(), Some("s"));
    assert_eq!(st.analysis.operation, "prepare");
    assert_eq!(st.analysis.text, "PREPARE s FROM 'DROP TABLE t'");
}

#[test]
fn a_prepared_statement_is_lexed_as_the_server_reads_it() {
    // The comment inside the string is a comment to the server too, and
    // the executable comment runs.
    let st = ok("PREPARE s FROM 'SELECT 1 /*!50000 FROM secrets */ -- x'");
    assert_eq!(actions(&st), ["select secrets"]);
    // Escaped quotes inside the literal.
    let st = ok(r"PREPARE s FROM 'SELECT * FROM t WHERE a = \'x\' AND b = ?'");
    assert_eq!(actions(&st), ["select t"]);
    assert_eq!(st.placeholders, 1);
}

#[test]
fn prepare_from_a_variable_is_refused() {
    let e = refused("PREPARE s FROM @q");
    assert!(
        e.to_string().contains("prepare from a string literal"),
        "{e}"
    );
}

#[test]
fn a_prepared_statement_cannot_prepare_or_execute_another() {
    for sql in [
        "PREPARE s FROM 'PREPARE t FROM ''DROP TABLE x'''",
        "PREPARE s FROM 'EXECUTE t'",
        "PREPARE s FROM 'DEALLOCATE PREPARE t'",
    ] {
        assert!(
            matches!(refused(sql), AnalyzeError::Unsupported(_)),
            "{sql}"
        );
    }
}

#[test]
fn preparing_two_statements_is_refused() {
    assert_eq!(
        refused("PREPARE s FROM 'SELECT 1; DROP TABLE t'"),
        AnalyzeError::MultipleStatements
    );
}

#[test]
fn replace_into_deletes_and_inserts() {
    for sql in [
        "REPLACE INTO t VALUES (1)",
        "REPLACE t SET a = 1",
        "REPLACE INTO t SELECT * FROM u",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "delete", "{sql}");
        assert_eq!(st.analysis.operation, "replace");
        assert!(
            actions(&st).starts_with(&["insert t".into(), "delete t no where".into()]),
            "{sql}"
        );
        assert_eq!(
            st.analysis.values_rows, None,
            "{sql}: a REPLACE may delete more rows"
        );
    }
}

#[test]
fn call_is_procedural_opaque_code() {
    let st = ok("CALL p()");
    assert_eq!(kind(&st), "procedural");
    assert!(st.analysis.flags.opaque_code);
    assert_eq!(st.analysis.opaque_functions, ["p"]);
    let st = ok("CALL shop.p((SELECT ssn FROM people LIMIT 1))");
    assert_eq!(st.analysis.opaque_functions, ["shop.p"]);
    assert!(actions(&st).contains(&"select people".to_string()));
}

#[test]
fn load_data_infile_is_a_copy_in_from_a_server_file() {
    let st = ok("LOAD DATA INFILE '/tmp/x' INTO TABLE shop.t FIELDS TERMINATED BY ','");
    assert_eq!(kind(&st), "copy_in");
    assert_eq!(actions(&st), ["copy_in shop.t"]);
    assert!(st.analysis.flags.copy_file);
    let st = ok("LOAD DATA INFILE '/tmp/x' REPLACE INTO TABLE t (a, @b)");
    assert_eq!(actions(&st), ["copy_in t", "delete t no where"]);
    let st = ok("LOAD XML INFILE '/tmp/x.xml' INTO TABLE t");
    assert_eq!(kind(&st), "copy_in");
}

#[test]
fn load_data_local_is_refused() {
    let e = refused("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t");
    assert_eq!(
        e.to_string(),
        "LOAD DATA LOCAL is refused: the gateway never lets a server read files from the client"
    );
    refused("LOAD DATA LOW_PRIORITY LOCAL INFILE 'x' INTO TABLE t");
}

#[test]
fn load_data_computing_values_is_refused() {
    refused("LOAD DATA INFILE '/tmp/x' INTO TABLE t (a, @b) SET c = load_file('/etc/passwd')");
}

#[test]
fn side_effect_functions_are_opaque_function_calls() {
    for (sql, f) in [
        ("SELECT load_file('/etc/passwd')", "load_file"),
        ("SELECT sleep(10)", "sleep"),
        ("SELECT BENCHMARK(1000000, md5('x'))", "benchmark"),
        ("SELECT get_lock('x', 10)", "get_lock"),
        ("SELECT release_all_locks()", "release_all_locks"),
        ("SELECT master_pos_wait('f', 4)", "master_pos_wait"),
        ("SELECT sys_exec('id')", "sys_exec"),
        ("SELECT my_udf(1)", "my_udf"),
        ("SELECT shop.lower('x')", "shop.lower"),
        ("SELECT * FROM t WHERE a = (SELECT sleep(1))", "sleep"),
        ("SELECT 1 FROM t ORDER BY sleep(1)", "sleep"),
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "function", "{sql}");
        assert!(
            st.analysis.opaque_functions.contains(&f.to_string()),
            "{sql}"
        );
        assert!(actions(&st).contains(&"function".to_string()), "{sql}");
    }
}

#[test]
fn do_sleep_is_an_opaque_function() {
    let st = ok("DO sleep(1)");
    assert_eq!(kind(&st), "function");
    assert_eq!(st.analysis.operation, "do");
    assert_eq!(st.analysis.opaque_functions, ["sleep"]);
    assert_eq!(kind(&ok("DO 1 + 1")), "select");
    // DO is an expression list only: anything else it is rewritten into is refused.
    refused("DO 1 UNION SELECT 2; DROP TABLE t");
}

#[test]
fn set_global_changes_the_server_for_everyone() {
    for sql in [
        "SET GLOBAL general_log = 1",
        "SET @@global.general_log = 1",
        "SET PERSIST max_connections = 10",
        "SET PERSIST_ONLY max_connections = 10",
        "SET @@persist.max_connections = 10",
        "SET x = 1, GLOBAL general_log = 1",
        "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED",
    ] {
        assert_eq!(kind(&ok(sql)), "admin", "{sql}");
    }
    // A modifier holds for the assignments after it.
    let st = ok("SET GLOBAL general_log = 1, slow_query_log = 1");
    assert_eq!(kind(&st), "admin");
    assert!(st.analysis.settings.is_empty());
}

#[test]
fn a_multibyte_client_character_set_is_refused() {
    for sql in [
        "SET NAMES gbk",
        "SET NAMES 'sjis'",
        "SET NAMES big5 COLLATE big5_bin",
        "SET CHARACTER SET gbk",
        "SET CHARSET cp932",
        "SET character_set_client = gbk",
        "SET SESSION character_set_connection = 'gb18030'",
        "SET @@character_set_client = sjis",
        "SET collation_connection = gbk_chinese_ci",
        "SET GLOBAL character_set_client = gbk",
        "SET character_set_client = @x",
        "SET NAMES DEFAULT",
    ] {
        let e = refused(sql);
        assert!(matches!(e, AnalyzeError::Unsupported(_)), "{sql}: {e}");
    }
    assert!(refused("SET NAMES gbk").to_string().contains("backslash"));
    for sql in [
        "SET NAMES utf8mb4",
        "SET NAMES latin1",
        "SET CHARACTER SET ascii",
        "SET NAMES binary",
        "SET character_set_results = NULL",
    ] {
        assert_eq!(kind(&ok(sql)), "set", "{sql}");
    }
}

#[test]
fn two_statements_are_refused() {
    for sql in [
        "SELECT 1; DROP TABLE t",
        "SELECT 1; garbage that does not parse",
        "SELECT 1 /*!50000 ; DROP TABLE t */",
        "LOAD DATA INFILE 'x' INTO TABLE t; DROP TABLE t",
        "CREATE USER u; DROP TABLE t",
        "CREATE PROCEDURE p() BEGIN SELECT 1; END; DROP TABLE t",
        "CREATE PROCEDURE p() SELECT 1; DROP TABLE t",
        "PREPARE s FROM 'SELECT 1'; DROP TABLE t",
        "LOCK TABLES t READ; DROP TABLE t",
        "SET PASSWORD = 'x'; DROP TABLE t",
    ] {
        assert_eq!(
            run(sql).err(),
            Some(AnalyzeError::MultipleStatements),
            "{sql}"
        );
    }
    // A trailing semicolon is one statement.
    assert_eq!(kind(&ok("SELECT 1;")), "select");
    assert_eq!(
        kind(&ok("CREATE PROCEDURE p() BEGIN SELECT 1; END;")),
        "ddl"
    );
}

#[test]
fn a_routine_body_hides_no_second_statement() {
    let body = "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; \
                WHILE 0 DO SELECT 2; END WHILE; SELECT CASE WHEN 1 THEN 2 END; END";
    assert_eq!(kind(&ok(body)), "ddl");
    assert_eq!(
        run(&format!("{body}; DROP TABLE t")).err(),
        Some(AnalyzeError::MultipleStatements)
    );
    let nested = "CREATE PROCEDURE IF NOT EXISTS p() BEGIN \
                  IF (a > 0) THEN IF NOT EXISTS (SELECT 1) THEN SELECT IF(a, 1, 2); END IF; END IF; \
                  DROP TABLE IF EXISTS t; SELECT REPEAT('x', 2); \
                  l: REPEAT SET @a = 1; UNTIL 1 END REPEAT; END";
    assert_eq!(kind(&ok(nested)), "ddl");
    assert_eq!(
        run(&format!("{nested}; DROP TABLE t")).err(),
        Some(AnalyzeError::MultipleStatements)
    );
    // END closing what never opened, or the wrong block.
    refused("CREATE PROCEDURE p() SELECT 1; END; DROP TABLE t");
    refused("CREATE PROCEDURE p() BEGIN IF a THEN SELECT 1; END WHILE; END");
}

#[test]
fn create_table_as_select_derives_the_columns_it_stores() {
    let st = ok("CREATE TABLE x AS SELECT ssn FROM people");
    assert_eq!(kind(&st), "ddl");
    assert_eq!(actions(&st), ["ddl x", "select people"]);
    assert_eq!(derived(&st), ["ssn"]);
    let st = ok("CREATE TABLE x SELECT p.ssn FROM people p");
    assert_eq!(derived(&st), ["p.ssn"]);
}

#[test]
fn a_cte_named_like_a_table_still_reads_the_table() {
    let st = ok("WITH orders AS (SELECT * FROM orders) SELECT * FROM orders");
    assert_eq!(actions(&st), ["select orders"]);
    let st = ok("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b");
    assert_eq!(
        actions(&st),
        ["select b"],
        "the first CTE reads the table b"
    );
    let st =
        ok("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r");
    assert_eq!(actions(&st), ["select"]);
}

#[test]
fn a_show_with_an_expression_the_parser_would_drop_is_refused() {
    // sqlparser reads these SHOW forms as a list of words, so the subquery
    // would vanish from the analysis while the server runs it.
    refused("SHOW INDEX FROM t WHERE (SELECT load_file('/etc/passwd')) IS NOT NULL");
    refused("SHOW TABLE STATUS WHERE Name IN (SELECT ssn FROM people)");
    // Forms parsed whole keep their expressions.
    let st = ok("SHOW TABLES WHERE (SELECT 1 FROM secrets LIMIT 1) = 1");
    assert!(actions(&st).contains(&"select secrets".to_string()));
}

#[test]
fn set_password_is_dcl_and_never_a_session_setting() {
    for sql in [
        "SET PASSWORD = 'sekrit'",
        "SET PASSWORD FOR 'u'@'%' = 'sekrit'",
        "SET password = 'sekrit'",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "dcl", "{sql}");
        assert!(st.analysis.secret, "{sql}");
        assert!(!st.analysis.text.contains("sekrit"), "{sql}");
        assert!(st.analysis.settings.is_empty(), "{sql}");
    }
}

#[test]
fn explain_analyze_runs_the_statement_it_explains() {
    let st = ok("EXPLAIN ANALYZE DELETE FROM t");
    assert_eq!(kind(&st), "delete");
    assert!(st.analysis.flags.explain_analyze);
    assert_eq!(actions(&st), ["delete t no where"]);
    // MariaDB's ANALYZE statement runs it too.
    let st = ok("ANALYZE DELETE FROM t WHERE id = 1");
    assert_eq!(kind(&st), "delete");
    assert!(st.analysis.flags.explain_analyze);
    let st = ok("EXPLAIN ANALYZE SELECT sleep(1) FROM t");
    assert_eq!(kind(&st), "function");
}

#[test]
fn prepared_statement_names_are_case_insensitive() {
    // The server takes `S` and `s` for one statement: the gateway must too.
    assert_eq!(
        ok("PREPARE S FROM 'SELECT 1'").analysis.prepares.as_deref(),
        Some("s")
    );
    assert_eq!(ok("EXECUTE S").analysis.executes.as_deref(), Some("s"));
    assert_eq!(
        ok("DEALLOCATE PREPARE S").analysis.deallocates,
        Some(Some("s".into()))
    );
    assert_eq!(
        ok("DROP PREPARE `S`").analysis.deallocates,
        Some(Some("s".into()))
    );
}

#[test]
fn statements_the_gateway_does_not_know_are_refused() {
    for sql in [
        "HANDLER t OPEN",
        "HANDLER t READ FIRST",
        "BINLOG 'AAAA'",
        "SET STATEMENT max_statement_time = 1 FOR SELECT 1",
        "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u')",
        "ALTER TABLE t ENGINE = InnoDB",
        "EXPLAIN FOR CONNECTION 5",
        "SELECT a INTO b FROM t",
        "CHECKPOINT",
        "SELECT * FROM t AS OF TIMESTAMP '2020-01-01'",
        "PREPARE s AS SELECT 1",
        "DEALLOCATE s",
        "ANALYZE",
        "EXPLAIN DROP TABLE t",
        "WITH c AS (SELECT id FROM u) DELETE FROM t WHERE id IN (SELECT id FROM c)",
        "SELECT 1 UNION TABLE t",
        "EXECUTE s (1, 2)",
    ] {
        run(sql).expect_err(sql);
    }
}

#[test]
fn lock_in_share_mode_locks_rows() {
    assert!(
        ok("SELECT * FROM t LOCK IN SHARE MODE")
            .analysis
            .flags
            .locks_rows
    );
    assert!(
        ok("SELECT * FROM t WHERE a IN (SELECT b FROM u FOR UPDATE)")
            .analysis
            .flags
            .locks_rows
    );
    assert!(
        ok("INSERT INTO t SELECT * FROM u FOR UPDATE")
            .analysis
            .flags
            .locks_rows
    );
}

#[test]
fn loadable_functions_and_plugins_are_administration() {
    let st = ok("CREATE FUNCTION evil RETURNS STRING SONAME 'evil.so'");
    assert_eq!(kind(&st), "admin");
    assert!(st.analysis.flags.opaque_code);
    let st = ok("INSTALL PLUGIN p SONAME 'p.so'");
    assert_eq!(kind(&st), "admin");
    assert!(st.analysis.flags.opaque_code);
}

#[test]
fn a_parse_error_never_quotes_a_password() {
    let e = refused("CREATE TABLE t (password INT) 'sekrit'");
    assert!(!e.to_string().contains("sekrit"), "{e}");
}

#[test]
fn update_and_delete_modifiers_are_not_taken_for_table_names() {
    // sqlparser alone reads `UPDATE IGNORE payroll` as an update of a table
    // named IGNORE aliased payroll, and `DELETE LOW_PRIORITY FROM payroll`
    // as a delete from LOW_PRIORITY that only reads payroll.
    for (sql, want) in [
        (
            "UPDATE IGNORE payroll SET salary = 1",
            "update payroll no where",
        ),
        (
            "UPDATE LOW_PRIORITY IGNORE payroll SET salary = 1 WHERE id = 2",
            "update payroll where",
        ),
        (
            "DELETE LOW_PRIORITY FROM payroll WHERE id = 2",
            "delete payroll where",
        ),
        (
            "DELETE QUICK IGNORE FROM payroll",
            "delete payroll no where",
        ),
    ] {
        assert_eq!(actions(&ok(sql)), [want], "{sql}");
    }
    // A reserved word is never a table name unquoted: whatever put one
    // there, the statement is refused rather than misread.
    refused("SELECT * FROM select");
    refused("UPDATE ignore.t SET a = 1");
    assert_eq!(actions(&ok("SELECT * FROM `select`")), ["select select"]);
    assert_eq!(
        actions(&ok("SELECT * FROM shop.select")),
        ["select shop.select"]
    );
}

#[test]
fn mariadb_dynamic_and_compound_statements_are_refused() {
    refused("EXECUTE IMMEDIATE 'DROP TABLE t'");
    refused("EXECUTE IMMEDIATE @q");
    refused("BEGIN NOT ATOMIC DROP TABLE t; END");
    refused("BEGIN NOT ATOMIC DROP TABLE t END");
}
