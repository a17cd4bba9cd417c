//! Reads and writes: SELECT, INSERT, UPDATE, DELETE, TRUNCATE.

use super::{actions, kind, ok, refused};
use gatehouse_sql::TableRef;

#[test]
fn a_select_reads_every_table_it_names_anywhere() {
    let st = ok(
        "SELECT o.id, (SELECT max(x) FROM audit) FROM shop.orders o \
                 JOIN customers c ON c.id = o.customer_id \
                 LEFT JOIN (SELECT * FROM refunds) r ON r.order_id = o.id \
                 WHERE EXISTS (SELECT 1 FROM flags f WHERE f.id = o.id) \
                 UNION SELECT id, NULL FROM archive.orders",
    );
    assert_eq!(kind(&st), "select");
    assert_eq!(st.analysis.operation, "select");
    let mut got = actions(&st);
    got.sort();
    assert_eq!(
        got,
        [
            "select archive.orders",
            "select audit",
            "select customers",
            "select flags",
            "select refunds",
            "select shop.orders"
        ]
    );
}

#[test]
fn table_and_database_names_keep_their_case() {
    let st = ok("SELECT * FROM Shop.Orders");
    assert_eq!(
        st.analysis.actions[0].table,
        Some(TableRef {
            schema: Some("Shop".into()),
            name: "Orders".into()
        })
    );
    let st = ok("SELECT * FROM `my db`.`odd``name`");
    assert_eq!(actions(&st), ["select my db.odd`name"]);
}

#[test]
fn dual_and_ctes_are_not_tables() {
    assert_eq!(actions(&ok("SELECT 1 FROM DUAL")), ["select"]);
    assert_eq!(
        actions(&ok("WITH c AS (SELECT 1 AS a) SELECT a FROM c")),
        ["select"]
    );
    // A quoted `dual` or a qualified CTE name is a table.
    assert_eq!(actions(&ok("SELECT 1 FROM `dual`")), ["select dual"]);
    assert_eq!(
        actions(&ok("WITH c AS (SELECT 1) SELECT * FROM shop.c")),
        ["select shop.c"]
    );
}

#[test]
fn table_statement_and_values_are_reads() {
    assert_eq!(actions(&ok("TABLE t")), ["select t"]);
    assert_eq!(
        actions(&ok("TABLE shop.t ORDER BY a LIMIT 1")),
        ["select shop.t"]
    );
    assert_eq!(actions(&ok("VALUES ROW(1, 2), ROW(3, 4)")), ["select"]);
}

#[test]
fn locking_reads_lock_rows() {
    for sql in [
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t FOR SHARE NOWAIT",
        "SELECT * FROM t FOR UPDATE OF t SKIP LOCKED",
        "SELECT * FROM t LOCK IN SHARE MODE",
    ] {
        let st = ok(sql);
        assert!(st.analysis.flags.locks_rows, "{sql}");
        assert_eq!(kind(&st), "select", "{sql}");
    }
    assert!(!ok("SELECT * FROM t").analysis.flags.locks_rows);
}

#[test]
fn select_into_user_variables_is_a_select() {
    for sql in [
        "SELECT a INTO @x FROM t",
        "SELECT a, b FROM t INTO @x, @y",
        "SELECT 1 INTO @x",
    ] {
        let st = ok(sql);
        assert_eq!(kind(&st), "select", "{sql}");
    }
}

#[test]
fn placeholders_are_counted() {
    assert_eq!(ok("SELECT ? FROM t WHERE a = ? LIMIT ?").placeholders, 3);
    assert_eq!(ok("SELECT '?' FROM t WHERE `?` = 1").placeholders, 0);
    assert_eq!(ok("INSERT INTO t VALUES (?, ?), (?, ?)").placeholders, 4);
}

#[test]
fn delete_with_a_bounding_where_has_where() {
    let st = ok("DELETE FROM orders WHERE id = 1");
    assert_eq!(actions(&st), ["delete orders where"]);
    assert_eq!(st.analysis.operation, "delete");
    for sql in [
        "DELETE FROM orders",
        "DELETE FROM orders WHERE 1 = 1",
        "DELETE FROM orders WHERE 1",
        "DELETE FROM orders WHERE TRUE",
        "DELETE FROM orders WHERE id = id",
        "DELETE FROM orders WHERE orders.id = id",
        "DELETE FROM orders WHERE id <=> id",
        "DELETE FROM orders WHERE id > 5 OR 1",
        "DELETE FROM orders WHERE NOT (id <> id)",
        "DELETE FROM orders WHERE id BETWEEN id AND id",
        "DELETE FROM orders WHERE (id = id) IS TRUE",
        "DELETE FROM orders WHERE now() > '2000-01-01'",
        "DELETE FROM orders o WHERE o.id = o.id",
        "DELETE FROM orders LIMIT 10",
    ] {
        assert_eq!(actions(&ok(sql)), ["delete orders no where"], "{sql}");
    }
    assert_eq!(
        actions(&ok("DELETE FROM orders o WHERE o.id = 3")),
        ["delete orders where"]
    );
}

#[test]
fn multi_table_delete_writes_only_its_targets() {
    for sql in [
        "DELETE t FROM t JOIN u ON t.id = u.id WHERE u.x = 1",
        "DELETE t FROM t, u WHERE t.id = u.id",
        "DELETE FROM t USING t JOIN u ON t.id = u.id",
        "DELETE FROM t USING t, u WHERE t.id = u.id AND u.x = 1",
        "DELETE a FROM t AS a JOIN u ON a.id = u.id",
    ] {
        assert_eq!(actions(&ok(sql)), ["delete t where", "select u"], "{sql}");
    }
    let st = ok("DELETE t, u FROM t JOIN u ON t.id = u.id");
    assert_eq!(actions(&st), ["delete t where", "delete u where"]);
    // A join that keeps every row of the target does not bound it.
    assert_eq!(
        actions(&ok("DELETE t FROM t LEFT JOIN u ON t.id = u.id")),
        ["delete t no where", "select u"]
    );
}

#[test]
fn update_with_a_bounding_where_has_where() {
    let st = ok("UPDATE orders SET total = total + 1 WHERE id = 5");
    assert_eq!(actions(&st), ["update orders where"]);
    assert_eq!(kind(&st), "update");
    assert_eq!(
        actions(&ok("UPDATE orders SET total = 0")),
        ["update orders no where"]
    );
    assert_eq!(
        actions(&ok("UPDATE orders SET total = 0 WHERE id = id")),
        ["update orders no where"]
    );
    let st = ok("UPDATE orders SET total = (SELECT max(x) FROM audit) WHERE id = 5");
    assert_eq!(actions(&st), ["update orders where", "select audit"]);
}

#[test]
fn multi_table_update_writes_the_tables_its_set_assigns() {
    for sql in [
        "UPDATE t JOIN u ON t.id = u.id SET t.a = u.b",
        "UPDATE t, u SET t.a = u.b WHERE t.id = u.id",
        "UPDATE t AS x JOIN u ON x.id = u.id SET x.a = 1",
    ] {
        assert_eq!(actions(&ok(sql)), ["update t where", "select u"], "{sql}");
    }
    // An unqualified column of a join may be either table's.
    let st = ok("UPDATE t JOIN u ON t.id = u.id SET a = 1");
    assert_eq!(actions(&st), ["update t where", "update u where"]);
    let st = ok("UPDATE t, u SET t.a = 1, u.b = 2");
    assert_eq!(actions(&st), ["update t no where", "update u no where"]);
}

#[test]
fn insert_values_counts_its_rows() {
    let st = ok("INSERT INTO orders (id) VALUES (1), (2), (3)");
    assert_eq!(actions(&st), ["insert orders"]);
    assert_eq!(st.analysis.values_rows, Some(3));
    assert_eq!(
        ok("INSERT INTO orders SET id = 1").analysis.values_rows,
        Some(1)
    );
    assert_eq!(
        ok("INSERT IGNORE INTO orders VALUES (1)")
            .analysis
            .values_rows,
        Some(1)
    );
    assert_eq!(
        ok("INSERT INTO orders SELECT * FROM old")
            .analysis
            .values_rows,
        None
    );
}

#[test]
fn insert_select_reads_its_source() {
    let st = ok("INSERT INTO archive.orders SELECT * FROM orders WHERE id < 10");
    assert_eq!(actions(&st), ["insert archive.orders", "select orders"]);
    assert_eq!(kind(&st), "insert");
}

#[test]
fn insert_on_duplicate_key_update_also_updates() {
    let st = ok("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)");
    assert_eq!(actions(&st), ["insert t", "update t no where"]);
    assert_eq!(kind(&st), "update");
    assert_eq!(st.analysis.values_rows, Some(1));
    let st = ok("INSERT INTO t (a) VALUES (1) AS new ON DUPLICATE KEY UPDATE a = new.a");
    assert_eq!(actions(&st), ["insert t", "update t no where"]);
}

#[test]
fn truncate_truncates_each_table() {
    let st = ok("TRUNCATE TABLE shop.t");
    assert_eq!(actions(&st), ["truncate shop.t"]);
    assert_eq!(kind(&st), "truncate");
    assert_eq!(actions(&ok("TRUNCATE t")), ["truncate t"]);
}

#[test]
fn syntax_of_other_databases_is_refused() {
    for sql in [
        "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
        "UPDATE t SET a = 1 FROM u WHERE t.id = u.id",
        "DELETE FROM t1, t2",
        "SELECT TOP 1 * FROM t",
    ] {
        refused(sql);
    }
}
