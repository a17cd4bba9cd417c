//! The statement corpus: every case's analysis must match exactly.

use gatehouse_sql::{analyze_uncached, Action, Analysis, ParseMode};
use std::collections::BTreeSet;

fn render_action(a: &Action) -> String {
    let mut s = a.kind.as_str().to_string();
    if let Some(t) = &a.table {
        s.push(':');
        if let Some(schema) = &t.schema {
            s.push_str(schema);
            s.push('.');
        }
        s.push_str(&t.name);
    }
    match a.has_where {
        Some(true) => s.push_str("/where"),
        Some(false) => s.push_str("/nowhere"),
        None => {}
    }
    s
}

fn flags(a: &Analysis) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in &a.statements {
        let f = &s.flags;
        for (on, name) in [
            (f.data_modifying_cte, "data_modifying_cte"),
            (f.copy_program, "copy_program"),
            (f.copy_file, "copy_file"),
            (f.explain_analyze, "explain_analyze"),
            (f.changes_search_path, "changes_search_path"),
            (f.changes_role, "changes_role"),
            (f.locks_rows, "locks_rows"),
            (f.opaque_code, "opaque_code"),
        ] {
            if on {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn set(s: &str, sep: char) -> BTreeSet<String> {
    s.split(sep)
        .map(str::trim)
        .filter(|x| !x.is_empty() && *x != "-")
        .map(str::to_string)
        .collect()
}

#[test]
fn corpus() {
    let text = include_str!("corpus.txt");
    let mut failures = Vec::new();
    let mut cases = 0;
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let mut parts = line.splitn(4, '|');
        let (kinds, actions, flag_set, sql) = (
            parts.next().unwrap().trim(),
            parts.next().unwrap().trim(),
            parts.next().unwrap().trim(),
            parts.next().unwrap().trim(),
        );
        let result = analyze_uncached(sql, ParseMode::default());
        let line_no = lineno + 1;
        match (kinds, result) {
            ("error", Err(_)) => {}
            ("error", Ok(a)) => failures.push(format!(
                "line {line_no}: {sql:?} should be refused, got {a:?}"
            )),
            (_, Err(e)) => failures.push(format!("line {line_no}: {sql:?} failed: {e}")),
            (_, Ok(a)) => {
                let got_kinds: Vec<&str> = a.statements.iter().map(|s| s.kind.as_str()).collect();
                let want_kinds: Vec<&str> = kinds.split(',').map(str::trim).collect();
                let got_actions: BTreeSet<String> = a
                    .statements
                    .iter()
                    .flat_map(|s| s.actions.iter().map(render_action))
                    .collect();
                let got_flags = flags(&a);
                if got_kinds != want_kinds
                    || got_actions != set(actions, ' ')
                    || got_flags != set(flag_set, ',')
                {
                    failures.push(format!(
                        "line {line_no}: {sql}\n    want {kinds} | {actions} | {flag_set}\n    got  {} | {} | {}",
                        got_kinds.join(","),
                        got_actions.into_iter().collect::<Vec<_>>().join(" "),
                        if got_flags.is_empty() { "-".into() } else { got_flags.into_iter().collect::<Vec<_>>().join(",") }
                    ));
                }
            }
        }
    }
    assert!(
        cases >= 150,
        "the corpus holds {cases} cases; at least 150 are required"
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn statement_texts_are_split_out() {
    let a = analyze_uncached(
        "SELECT 1;  DELETE FROM t WHERE x = ';' ;",
        ParseMode::default(),
    )
    .unwrap();
    let texts: Vec<&str> = a.statements.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, vec!["SELECT 1", "DELETE FROM t WHERE x = ';'"]);
}

#[test]
fn backslash_mode_changes_what_a_literal_hides() {
    // With standard_conforming_strings off, \' escapes the quote, so the
    // DELETE is inside the literal; with it on, the literal ends early.
    let sql = r"SELECT 'a\'; DELETE FROM t; --'";
    let on = analyze_uncached(sql, ParseMode::default()).unwrap();
    assert_eq!(
        on.statements.len(),
        2,
        "standard strings: a real DELETE follows"
    );
    let off = analyze_uncached(
        sql,
        ParseMode {
            backslash_escapes: true,
        },
    )
    .unwrap();
    assert_eq!(
        off.statements.len(),
        1,
        "backslash escapes: one SELECT of a literal"
    );
}

#[test]
fn cache_returns_the_same_analysis() {
    let an = gatehouse_sql::Analyzer::new(16);
    let a = an.analyze("select * from t", ParseMode::default());
    let b = an.analyze("select * from t", ParseMode::default());
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(an.analyze("selec", ParseMode::default()).is_err());
}

#[test]
fn cache_is_bounded_in_bytes_as_well_as_entries() {
    let mode = ParseMode::default();
    // Room for about four 10 KiB statements, though 1,000 entries are allowed.
    let an = gatehouse_sql::Analyzer::new(1000).with_byte_budget(50 * 1024);
    let long = |i: usize| format!("select {i} as n, '{}' as pad", "x".repeat(5000));
    for i in 0..50 {
        assert!(an.analyze(&long(i), mode).is_ok());
        let (_, bytes) = an.cached(mode);
        assert!(bytes <= 50 * 1024, "{bytes} bytes cached after {i}");
    }
    let (entries, bytes) = an.cached(mode);
    assert!((2..=5).contains(&entries), "{entries} entries");
    assert!(bytes > 20 * 1024);
    // The newest stayed (least recently used go first), the oldest went.
    let newest = an.analyze(&long(49), mode);
    assert!(std::sync::Arc::ptr_eq(
        &newest,
        &an.analyze(&long(49), mode)
    ));
    assert_eq!(an.cached(mode).0, entries);
    an.analyze(&long(0), mode);
    assert_eq!(
        an.cached(mode).0,
        entries,
        "re-analyzed and evicted another"
    );
    // Small statements: the entry limit still applies.
    let an = gatehouse_sql::Analyzer::new(3);
    for i in 0..10 {
        an.analyze(&format!("select {i}"), mode);
    }
    assert_eq!(an.cached(mode).0, 3);
    // The other parse mode has its own cache.
    assert_eq!(
        an.cached(ParseMode {
            backslash_escapes: true
        }),
        (0, 0)
    );
}
