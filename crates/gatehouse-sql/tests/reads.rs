//! Which statements only read: what the gateway may forward before their
//! decision is durable (holding the answer until it is). Anything the
//! analysis cannot vouch for must count as a change.

use gatehouse_sql::{analyze_uncached, ParseMode};

fn only_reads(sql: &str) -> bool {
    let a = analyze_uncached(sql, ParseMode::default()).unwrap();
    assert_eq!(a.statements.len(), 1, "{sql}");
    a.statements[0].only_reads()
}

#[test]
fn plain_reads_only_read() {
    for sql in [
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 4711",
        "SELECT 1",
        "SELECT count(*), max(b.x) FROM a JOIN b ON a.id = b.a_id GROUP BY a.k",
        "WITH x AS (SELECT * FROM t) SELECT * FROM x",
        "SELECT * FROM t WHERE id IN (SELECT id FROM u) ORDER BY 1 LIMIT 5",
        "select lower(name), coalesce(note, '') from customers",
        "VALUES (1), (2)",
    ] {
        assert!(only_reads(sql), "{sql} only reads");
    }
}

#[test]
fn anything_with_an_effect_or_unknown_is_not_a_read() {
    for sql in [
        // functions the gateway cannot see into, or that change state
        "SELECT nextval('s')",
        "SELECT setval('s', 5)",
        "SELECT set_config('search_path', 'x', false)",
        "SELECT my_function(1)",
        "SELECT pg_advisory_lock(1)",
        "SELECT lo_import('/etc/passwd')",
        "SELECT t.f FROM t WHERE false AND my_function(t) IS NULL",
        // writes hidden in a read's clothes
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "SELECT * INTO newt FROM t",
        "SELECT * INTO TEMP x FROM t",
        "SELECT * FROM pg_temp.t",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t FOR SHARE",
        // not a SELECT at all
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET x = 1 WHERE id = 2",
        "DELETE FROM t WHERE id = 2",
        "EXPLAIN ANALYZE SELECT 1",
        "EXPLAIN SELECT 1",
        "COPY t TO STDOUT",
        "SHOW search_path",
        "SET search_path = x",
        "BEGIN",
        "COMMIT",
        "PREPARE p AS SELECT 1",
        "EXECUTE p",
        "DEALLOCATE p",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CALL p()",
        "LOCK TABLE t",
        "LISTEN c",
        "NOTIFY c",
        "DECLARE c CURSOR FOR SELECT 1",
        "FETCH 1 FROM c",
        "TRUNCATE t",
    ] {
        assert!(!only_reads(sql), "{sql} must not count as a read");
    }
}
