//! Column flow: which column references keep their origin in a result and
//! which leave the statement derived.

use gatehouse_sql::{analyze_uncached, ColumnFlow, CopyFormat, ParseMode};

fn flow(sql: &str) -> ColumnFlow {
    let a = analyze_uncached(sql, ParseMode::default()).unwrap();
    assert_eq!(a.statements.len(), 1, "{sql}");
    a.statements[0].columns.clone()
}

/// The derived references as `q.col` / `col`.
fn derived(sql: &str) -> Vec<String> {
    flow(sql)
        .derived
        .iter()
        .map(|c| match &c.qualifier {
            Some(q) => format!("{q}.{}", c.column),
            None => c.column.clone(),
        })
        .collect()
}

#[test]
fn plain_projections_keep_their_origin() {
    for sql in [
        "SELECT ssn FROM customers",
        "SELECT c.ssn AS x FROM customers c WHERE upper(ssn) = 'A' ORDER BY lower(ssn)",
        "SELECT x FROM (SELECT ssn AS x FROM customers) s",
        "WITH c AS (SELECT * FROM customers) SELECT ssn FROM c",
        "SELECT * FROM customers WHERE id IN (SELECT id FROM customers WHERE ssn LIKE '1%')",
        "SELECT 1 FROM customers WHERE EXISTS (SELECT upper(ssn) FROM customers)",
        "DELETE FROM customers WHERE ssn = 'x' RETURNING ssn",
        "EXPLAIN SELECT upper(ssn) FROM customers",
        "DECLARE k CURSOR FOR SELECT ssn FROM customers",
        "SELECT count(*) FROM customers GROUP BY ssn HAVING max(id) > 1",
        "COPY customers TO STDOUT",
    ] {
        assert!(derived(sql).is_empty(), "{sql}: {:?}", derived(sql));
    }
}

#[test]
fn derived_values_are_listed() {
    let cases: [(&str, &[&str]); 15] = [
        ("SELECT upper(ssn) FROM customers", &["ssn"]),
        ("SELECT c.ssn || '' FROM customers c", &["c.ssn"]),
        ("SELECT ssn::bytea FROM customers", &["ssn"]),
        ("SELECT ssn FROM customers UNION SELECT 'x'", &["ssn"]),
        ("SELECT (SELECT ssn FROM customers LIMIT 1)", &["ssn"]),
        ("SELECT row_to_json(c) FROM customers c", &["c"]),
        (
            "SELECT * FROM customers UNION ALL SELECT * FROM customers",
            &["*"],
        ),
        ("CREATE TABLE t AS SELECT ssn FROM customers", &["ssn"]),
        ("SELECT ssn INTO t FROM customers", &["ssn"]),
        ("CREATE VIEW v AS SELECT c.* FROM customers c", &["c.*"]),
        ("INSERT INTO t SELECT ssn FROM customers", &["ssn"]),
        ("UPDATE t SET x = c.ssn FROM customers c", &["c.ssn"]),
        ("COPY (SELECT ssn FROM customers) TO STDOUT", &["ssn"]),
        (
            "SELECT u FROM customers c, LATERAL unnest(ARRAY[c.ssn]) u",
            &["c.ssn"],
        ),
        (
            "SELECT CASE WHEN ssn LIKE '1%' THEN 1 END FROM customers",
            &["ssn"],
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(derived(sql), want.to_vec(), "{sql}");
    }
}

#[test]
fn renames_aliases_and_relations_are_listed() {
    let f = flow("SELECT upper(x) FROM (SELECT ssn AS x FROM crm.customers c) s(y), orders o");
    assert_eq!(f.renamed.len(), 1);
    assert_eq!(f.renamed[0].0.column, "ssn");
    assert_eq!(f.renamed[0].1, "x");
    assert_eq!(f.alias_columns, vec!["y".to_string()]);
    let names: Vec<(Option<String>, String)> = f
        .relations
        .iter()
        .map(|r| {
            (
                r.table.as_ref().map(|t| t.qualified("public")),
                r.name.clone(),
            )
        })
        .collect();
    assert!(names.contains(&(Some("crm.customers".into()), "c".into())));
    assert!(names.contains(&(Some("public.orders".into()), "o".into())));
    assert!(names.contains(&(None, "s".into())));
    assert_eq!(
        flow("SELECT c FROM customers c").projected,
        vec!["c".to_string()]
    );
}

#[test]
fn copy_out_options() {
    let a = analyze_uncached(
        "COPY crm.customers (id, ssn) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';', NULL 'n')",
        ParseMode::default(),
    )
    .unwrap();
    let c = a.statements[0].copy_out.clone().unwrap();
    assert_eq!(c.table.unwrap().qualified("public"), "crm.customers");
    assert_eq!(c.columns, vec!["id", "ssn"]);
    assert_eq!(c.format, CopyFormat::Csv);
    assert!(c.header);
    assert_eq!(c.delimiter.as_deref(), Some(";"));
    assert_eq!(c.null.as_deref(), Some("n"));
    let legacy = analyze_uncached("COPY t TO STDOUT CSV HEADER", ParseMode::default()).unwrap();
    let c = legacy.statements[0].copy_out.clone().unwrap();
    assert!(c.header && c.format == CopyFormat::Csv);
    let off = analyze_uncached("COPY t TO STDOUT (HEADER false)", ParseMode::default()).unwrap();
    assert!(!off.statements[0].copy_out.as_ref().unwrap().header);
    let from = analyze_uncached("COPY t FROM STDIN", ParseMode::default()).unwrap();
    assert!(from.statements[0].copy_out.is_none());
}

#[test]
fn set_statements_name_the_setting_and_its_value() {
    use gatehouse_sql::{SettingChange, SettingValue};
    let settings = |sql: &str| {
        analyze_uncached(sql, ParseMode::default())
            .unwrap()
            .statements[0]
            .settings
            .clone()
    };
    let one = |n: &str, value: SettingValue| {
        vec![SettingChange {
            name: Some(n.to_string()),
            value,
        }]
    };
    let lit = |v: &str| SettingValue::Literal(v.to_string());
    assert_eq!(
        settings("SET gatehouse.reason = 'ticket OPS-123'"),
        one("gatehouse.reason", lit("ticket OPS-123"))
    );
    assert_eq!(
        settings("SET LOCAL statement_timeout TO 5000"),
        one("statement_timeout", lit("5000"))
    );
    assert_eq!(
        settings("SET search_path = a, \"B\""),
        one(
            "search_path",
            SettingValue::List(vec!["a".into(), "B".into()])
        )
    );
    assert_eq!(
        settings("SET \"SEARCH_PATH\" = 'Payroll'"),
        one("search_path", SettingValue::List(vec!["Payroll".into()])),
        "one schema name as written, the setting's name in any case"
    );
    assert_eq!(
        settings("RESET gatehouse.reason"),
        one("gatehouse.reason", SettingValue::Default)
    );
    assert_eq!(
        settings("SET gatehouse.reason TO DEFAULT"),
        one("gatehouse.reason", SettingValue::Default)
    );
    assert!(settings("SELECT 1").is_empty());
    assert!(
        settings("ALTER ROLE r SET client_encoding = 'SJIS'").is_empty(),
        "another session's setting"
    );
    let a = analyze_uncached("SET \"SEARCH_PATH\" = x", ParseMode::default()).unwrap();
    assert!(a.statements[0].flags.changes_search_path);
}

#[test]
fn columns_merged_by_using_or_natural_are_derived() {
    assert_eq!(
        derived("SELECT ssn FROM customers a FULL JOIN other b USING (ssn)"),
        ["ssn"]
    );
    assert_eq!(
        derived("SELECT * FROM customers JOIN other USING (id, ssn)"),
        ["id", "ssn"]
    );
    assert_eq!(
        derived("SELECT * FROM customers NATURAL FULL JOIN other"),
        ["*"]
    );
    // Only compared, in a filter: nothing leaves.
    assert!(derived(
        "SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM customers JOIN other USING (ssn))"
    )
    .is_empty());
}

#[test]
fn qualified_names_that_may_be_function_calls_are_listed() {
    let attrs = |sql: &str| -> Vec<String> {
        let a = analyze_uncached(sql, ParseMode::default()).unwrap();
        a.statements[0]
            .attributes
            .iter()
            .map(|u| format!("{}.{}", u.qualifier.as_deref().unwrap_or("()"), u.name))
            .collect()
    };
    assert_eq!(
        attrs("SELECT s.nextval FROM cast('orders_id_seq' AS regclass) s"),
        ["s.nextval"]
    );
    assert_eq!(
        attrs("SELECT c.to_json, x.y.z FROM customers c WHERE (c).email IS NOT NULL"),
        ["().email", "c.to_json", "y.z"]
    );
    assert!(attrs("SELECT c.* FROM customers c").is_empty());
    assert!(attrs("SELECT id FROM customers").is_empty());
}
