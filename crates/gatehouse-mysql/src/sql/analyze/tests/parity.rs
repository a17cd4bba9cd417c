//! The same statement decides the same way on MySQL and PostgreSQL: where
//! the syntax is shared, the analysis must equal gatehouse-sql's.

use super::ok;
use gatehouse_sql::{analyze_uncached, ParseMode};

/// Statements both servers read the same way.
const SHARED: &[&str] = &[
    "SELECT 1",
    "SELECT * FROM orders",
    "SELECT count(*) FROM shop.orders WHERE total > 10",
    "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > 10",
    "SELECT a FROM t WHERE b IN (SELECT c FROM u)",
    "SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)",
    "SELECT a FROM t UNION SELECT b FROM u",
    "WITH c AS (SELECT id FROM orders) SELECT id FROM c",
    "SELECT * FROM t FOR UPDATE",
    "SELECT lower(name), now() FROM customers",
    "DELETE FROM orders WHERE id = 1",
    "DELETE FROM orders",
    "DELETE FROM orders WHERE 1 = 1",
    "DELETE FROM orders WHERE id = id",
    "DELETE FROM orders WHERE id > 5 OR true",
    "UPDATE orders SET total = 1 WHERE id = 5",
    "UPDATE orders SET total = 0",
    "UPDATE shop.orders SET total = total + 1 WHERE id IN (SELECT order_id FROM refunds)",
    "INSERT INTO orders (id) VALUES (1), (2)",
    "INSERT INTO archive.orders SELECT * FROM orders WHERE id < 10",
    "DROP TABLE orders",
    "DROP TABLE shop.orders, customers",
    "DROP VIEW v",
    "DROP DATABASE shop",
    "CREATE TABLE x (a INT)",
    "CREATE TABLE x AS SELECT ssn FROM people",
    "CREATE INDEX i ON orders (total)",
    "CREATE VIEW v AS SELECT a FROM t",
    "TRUNCATE orders",
    "EXPLAIN SELECT * FROM orders",
    "EXPLAIN DELETE FROM orders WHERE id = 1",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "GRANT SELECT ON orders TO bob",
    "REVOKE SELECT ON orders FROM bob",
    "CREATE ROLE r",
];

#[test]
fn shared_statements_give_the_same_analysis_as_postgresql() {
    for sql in SHARED {
        let pg =
            analyze_uncached(sql, ParseMode::default()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let pg = &pg.statements[0];
        let my = ok(sql).analysis;
        assert_eq!(my.kind, pg.kind, "{sql}");
        assert_eq!(my.operation, pg.operation, "{sql}");
        assert_eq!(my.actions, pg.actions, "{sql}");
        assert_eq!(my.flags, pg.flags, "{sql}");
        assert_eq!(my.functions, pg.functions, "{sql}");
        assert_eq!(my.opaque_functions, pg.opaque_functions, "{sql}");
        assert_eq!(my.values_rows, pg.values_rows, "{sql}");
    }
}

#[test]
fn the_mysql_spelling_of_a_statement_decides_like_the_postgresql_one() {
    for (mysql, postgres) in [
        ("DROP SCHEMA shop", "DROP DATABASE shop"),
        ("SELECT * FROM `orders`", "SELECT * FROM \"orders\""),
        (
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT * FROM t FOR SHARE",
        ),
        (
            "UPDATE t JOIN u ON t.id = u.id SET t.a = u.b",
            "UPDATE t SET a = u.b FROM u WHERE t.id = u.id",
        ),
        (
            "DELETE t FROM t JOIN u ON t.id = u.id",
            "DELETE FROM t USING u WHERE t.id = u.id",
        ),
        ("SET ROLE r", "SET ROLE r"),
        (
            "EXPLAIN ANALYZE SELECT * FROM t",
            "EXPLAIN ANALYZE SELECT * FROM t",
        ),
        (
            "DELETE FROM orders WHERE TRUE",
            "DELETE FROM orders WHERE true",
        ),
    ] {
        let pg = analyze_uncached(postgres, ParseMode::default())
            .unwrap_or_else(|e| panic!("{postgres}: {e}"));
        let pg = &pg.statements[0];
        let my = ok(mysql).analysis;
        assert_eq!(my.kind, pg.kind, "{mysql}");
        assert_eq!(my.actions, pg.actions, "{mysql}");
        assert_eq!(my.flags, pg.flags, "{mysql}");
    }
}
