//! Where column values go (ColumnFlow), which column masking relies on.

use super::{derived, ok};

fn projected(sql: &str) -> Vec<String> {
    ok(sql).analysis.columns.projected
}

fn relations(sql: &str) -> Vec<String> {
    ok(sql)
        .analysis
        .columns
        .relations
        .iter()
        .map(|r| match &r.table {
            Some(t) => format!("{}={}", r.name, t.qualified("_")),
            None => r.name.clone(),
        })
        .collect()
}

#[test]
fn a_column_inside_an_expression_is_derived() {
    for (sql, want) in [
        ("SELECT CONCAT(ssn) FROM people", vec!["ssn"]),
        ("SELECT upper(p.ssn) FROM people p", vec!["p.ssn"]),
        ("SELECT CAST(SSN AS CHAR) FROM people", vec!["ssn"]),
        ("SELECT ssn || '' FROM people", vec!["ssn"]),
        ("SELECT doc->>'$.ssn' FROM people", vec!["doc"]),
        (
            "SELECT GROUP_CONCAT(ssn SEPARATOR ',') FROM people",
            vec!["ssn"],
        ),
        ("SELECT MATCH (bio) AGAINST ('x') FROM people", vec!["bio"]),
        ("SELECT @v := ssn FROM people", vec!["ssn"]),
        ("SELECT (ssn) FROM people", vec!["ssn"]),
    ] {
        assert_eq!(derived(&ok(sql)), want, "{sql}");
    }
}

#[test]
fn a_plain_projected_column_keeps_its_origin() {
    let st = ok("SELECT ssn, p.name, ssn AS s FROM people p WHERE ssn > 1 ORDER BY dob");
    assert!(derived(&st).is_empty());
    assert_eq!(st.analysis.columns.projected, ["ssn", "ssn"]);
    assert!(projected("SELECT * FROM people").is_empty());
}

#[test]
fn filters_send_no_values() {
    for sql in [
        "SELECT 1 FROM people WHERE ssn = '1'",
        "SELECT a FROM t GROUP BY a HAVING COUNT(ssn) > 1",
        "SELECT a FROM t JOIN people p ON p.ssn = t.a",
        "SELECT a FROM t WHERE a IN (SELECT ssn FROM people)",
        "SELECT a FROM t WHERE EXISTS (SELECT ssn FROM people)",
        "SELECT a FROM t WHERE a = ANY (SELECT ssn FROM people)",
        "SELECT a FROM t ORDER BY (SELECT ssn FROM people LIMIT 1)",
        "DELETE FROM people WHERE ssn = '1'",
        "SELECT COUNT(*) FROM people",
        "EXPLAIN SELECT CONCAT(ssn) FROM people",
    ] {
        assert!(
            derived(&ok(sql)).is_empty(),
            "{sql}: {:?}",
            derived(&ok(sql))
        );
    }
}

#[test]
fn set_operations_and_subqueries_lose_the_origin() {
    assert_eq!(
        derived(&ok("SELECT * FROM people UNION SELECT * FROM x")),
        ["*"]
    );
    assert_eq!(
        derived(&ok("SELECT ssn FROM people UNION ALL SELECT 1")),
        ["ssn"]
    );
    assert_eq!(
        derived(&ok("SELECT (SELECT ssn FROM people LIMIT 1)")),
        ["ssn"]
    );
    assert_eq!(
        derived(&ok("SELECT p.* FROM people p UNION SELECT 1")),
        ["p.*"]
    );
    // A subquery in FROM or a CTE: the server's origin for its columns is
    // not to be relied on, so they count as derived.
    assert_eq!(
        derived(&ok("SELECT * FROM (SELECT ssn FROM people) d")),
        ["ssn"]
    );
    assert_eq!(
        derived(&ok("WITH c AS (SELECT ssn FROM people) SELECT * FROM c")),
        ["ssn"]
    );
}

#[test]
fn merged_join_columns_are_derived() {
    assert_eq!(
        derived(&ok("SELECT ssn FROM a JOIN b USING (ssn)")),
        ["ssn"]
    );
    assert_eq!(derived(&ok("SELECT ssn FROM a NATURAL JOIN b")), ["*"]);
}

#[test]
fn values_written_or_stored_are_derived() {
    for (sql, want) in [
        ("CREATE TABLE x AS SELECT ssn FROM people", vec!["ssn"]),
        ("CREATE VIEW v AS SELECT ssn FROM people", vec!["ssn"]),
        ("INSERT INTO x SELECT ssn FROM people", vec!["ssn"]),
        ("INSERT INTO x SELECT * FROM people", vec!["*"]),
        (
            "UPDATE x SET a = (SELECT ssn FROM people LIMIT 1) WHERE id = 1",
            vec!["ssn"],
        ),
        ("SELECT ssn INTO @v FROM people", vec!["ssn"]),
        ("SELECT ssn FROM people INTO @v", vec!["ssn"]),
        ("SELECT ssn FROM people INTO OUTFILE '/tmp/x'", vec!["ssn"]),
        ("SET @v = (SELECT ssn FROM people LIMIT 1)", vec!["ssn"]),
        ("DO @v := (SELECT ssn FROM people LIMIT 1)", vec!["ssn"]),
    ] {
        assert_eq!(derived(&ok(sql)), want, "{sql}");
    }
}

#[test]
fn relations_name_every_table_and_alias() {
    assert_eq!(
        relations("SELECT 1 FROM shop.people p JOIN orders ON 1 WHERE x IN (SELECT y FROM z)"),
        ["p=shop.people", "orders=_.orders", "z=_.z"]
    );
    assert_eq!(
        relations("WITH c AS (SELECT 1) SELECT * FROM c, (SELECT 2) d"),
        ["c", "d"]
    );
    assert_eq!(relations("UPDATE people p SET a = 1"), ["p=_.people"]);
    assert_eq!(
        relations("INSERT INTO shop.people VALUES (1)"),
        ["people=shop.people"]
    );
}
