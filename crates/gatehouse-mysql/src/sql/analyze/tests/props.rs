//! Robustness: any text is analysed or refused, never a panic, and work
//! stays bounded for large or deeply nested statements.

use super::{kind, run};
use crate::sql::analyze::{analyze, AnalyzeError};
use crate::sql::lexer;
use proptest::prelude::*;

use super::MYSQL;

/// Fragments that reach the analysis's corners when strung together.
const FRAGMENTS: &[&str] = &[
    "SELECT ",
    "INSERT INTO t ",
    "UPDATE t SET a = 1 ",
    "DELETE FROM t ",
    "REPLACE ",
    "WITH c AS ",
    "(",
    ")",
    ",",
    ";",
    "'x'",
    "`q`",
    "@v",
    "@@global.x",
    "?",
    "*",
    "=",
    ":=",
    " FROM ",
    " t ",
    " WHERE ",
    " JOIN u ON ",
    " USING (a) ",
    " UNION ",
    " INTO OUTFILE ",
    " INTO @v ",
    " LOCK IN SHARE MODE ",
    " FOR UPDATE ",
    "PREPARE s FROM ",
    "EXECUTE s ",
    "SET ",
    "NAMES ",
    "GLOBAL ",
    "PERSIST ",
    "CREATE ",
    "PROCEDURE p() ",
    "BEGIN ",
    "END ",
    "IF ",
    "CASE ",
    "TRIGGER ",
    "ON ",
    "GRANT ",
    "SHOW ",
    "INDEX ",
    "LOAD DATA INFILE ",
    "TABLE ",
    "DO ",
    "EXPLAIN ",
    "ANALYZE ",
    "DEFINER = ",
    "sleep(1)",
    "1",
    " OR ",
    " AND ",
    "NOT ",
    "EXISTS ",
    "VALUES ",
    "ROW(1)",
    "DUAL ",
    "USE ",
    "LOCK TABLES ",
    "CALL p",
    "\\",
    "\"",
    "/*",
    "*/",
    "-- ",
    "#",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn analyze_never_panics_on_arbitrary_text(text in ".{0,200}") {
        let _ = analyze(&text, &text, &MYSQL);
        if let Ok(canonical) = lexer::canonical(&text, &MYSQL) {
            let _ = analyze(&canonical, &text, &MYSQL);
        }
    }

    #[test]
    fn analyze_never_panics_on_sql_like_text(
        parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24)
    ) {
        let text = parts.concat();
        let _ = analyze(&text, &text, &MYSQL);
        if let Ok(canonical) = lexer::canonical(&text, &MYSQL) {
            let _ = analyze(&canonical, &text, &MYSQL);
        }
    }
}

#[test]
fn empty_statements_are_refused() {
    for sql in ["", "   ", ";", " ; ;"] {
        assert_eq!(run(sql).err(), Some(AnalyzeError::Empty), "{sql:?}");
    }
}

#[test]
fn long_operator_chains_are_refused_before_they_overflow_the_stack() {
    // sqlparser builds `a OR b OR …` as a tree as deep as the chain; its
    // drop alone would overflow the stack at some depth.
    let chain = |n: usize| {
        let terms: Vec<String> = (0..n).map(|i| format!("a = {i}")).collect();
        format!("SELECT 1 FROM t WHERE {}", terms.join(" OR "))
    };
    assert_eq!(run(&chain(200_000)).err(), Some(AnalyzeError::TooComplex));
    assert_eq!(
        kind(&run(&chain(1_000)).expect("a 1000-term OR is fine")),
        "select"
    );
    let unions = vec!["SELECT 1"; 100_000].join(" UNION ");
    assert_eq!(run(&unions).err(), Some(AnalyzeError::TooComplex));
}

#[test]
fn deep_parentheses_are_refused() {
    let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert_eq!(run(&deep).err(), Some(AnalyzeError::TooComplex));
    let subqueries = format!("SELECT {}1{}", "(SELECT ".repeat(200), ")".repeat(200));
    assert_eq!(run(&subqueries).err(), Some(AnalyzeError::TooComplex));
}

#[test]
fn a_statement_of_megabytes_is_analysed() {
    let rows = vec!["(1, 'abc', NULL)"; 100_000].join(", ");
    let sql = format!("INSERT INTO t VALUES {rows}");
    assert!(sql.len() > 1_500_000);
    let st = run(&sql).expect("a big INSERT is analysed");
    assert_eq!(st.analysis.values_rows, Some(100_000));
    let list = (0..200_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let st = run(&format!("SELECT * FROM t WHERE id IN ({list})")).expect("a long IN list");
    assert_eq!(kind(&st), "select");
}
