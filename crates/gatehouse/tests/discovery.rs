//! Sensitive-column discovery end to end: a real PostgreSQL behind the real
//! gateway, masking by detectors only (no column rule), real psql and
//! tokio-postgres clients. Once a detector has masked a column's value (or
//! `gatehouse masking discover` sampled it), no derived form of the column
//! leaves: string functions, encodings, casts, aggregates, per-character
//! functions, notifications, error texts, COPY of a query, the extended
//! protocol and binary results are refused, and plain reads stay masked.

mod common;

use common::*;

const CARD: &str = "4111111111111111";
const EMAIL: &str = "alice.smith@example.com";

const CONFIG: &str = concat!(
    crate::app_connection!("cards-db"),
    r#"
[connection.masking]
detectors = ["all"]
"#
);

/// Forms of the card a client could decode back.
fn card_forms() -> Vec<String> {
    let reversed: String = CARD.chars().rev().collect();
    let hex: String = CARD.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        CARD.to_string(),
        reversed,
        hex,
        "NDExMTExMTExMTExMTExMQ".to_string(), // base64
        "4111-1111".to_string(),
        "eabbbbbbbbbbbbbb".to_string(), // translated digits
        EMAIL.to_string(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for form in card_forms() {
        assert!(!text.contains(&form), "{what} leaks {form:?}:\n{text}");
    }
}

fn harness() -> Harness {
    let h = Harness::with(Options {
        extra_config: CONFIG,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            &format!(
                "SET ROLE app_owner;
                 CREATE TABLE customers (id int PRIMARY KEY, name text, card text, email text, notes text);
                 INSERT INTO customers VALUES
                   (1, 'Alice', '{CARD}', '{EMAIL}', 'prefers mail'),
                   (2, 'Bob', '5500005555555559', 'bob@example.org', 'no notes');
                 CREATE TABLE orders (id int, customer int, total int, status text);
                 INSERT INTO orders VALUES (1, 1, 10, 'shipped');"
            ),
        )
        .unwrap();
    h
}

/// The evidence log's events of `kind`, once there are `n` (they are
/// written just after the result that showed the column); never more.
fn events(h: &Harness, kind: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let found: Vec<serde_json::Value> = h
            .evidence_events()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect();
        assert!(found.len() <= n, "{found:?}");
        if found.len() == n {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("fewer than {n} {kind} events");
}

/// Statements that carry a found column's value out in another form.
const DERIVED: &[&str] = &[
    "SELECT reverse(card) FROM customers",
    "SELECT upper(card) FROM customers",
    "SELECT encode(convert_to(card, 'UTF8'), 'base64') FROM customers",
    "SELECT encode(card::bytea, 'hex') FROM customers",
    "SELECT card || 'x' FROM customers",
    "SELECT substr(card, 1, 4) || '-' || substr(card, 5) FROM customers",
    "SELECT translate(card, '0123456789', 'abcdefghij') FROM customers",
    "SELECT replace(card, '1', 'I') FROM customers",
    "SELECT format('%s', card) FROM customers",
    "SELECT lpad(card, 20, '0') FROM customers",
    "SELECT card::bytea FROM customers",
    "SELECT card::int8 FROM customers",
    "SELECT string_to_array(card, NULL) FROM customers",
    "SELECT regexp_split_to_table(card, '') FROM customers",
    "SELECT json_build_object('c', card) FROM customers",
    "SELECT array_agg(card) FROM customers",
    "SELECT string_agg(card, ',') FROM customers",
    "SELECT to_jsonb(c) FROM customers c",
    "SELECT row_to_json(c) FROM customers c",
    "SELECT (SELECT card FROM customers LIMIT 1)",
    "SELECT card FROM customers UNION SELECT 'x'",
    "SELECT CASE WHEN card LIKE '4%' THEN card END FROM customers",
    "SELECT pg_notify('leak', card) FROM customers",
    "COPY (SELECT card FROM customers) TO STDOUT",
    "CREATE TABLE copied AS SELECT card FROM customers",
    "SELECT lower(email) FROM customers",
    "SELECT split_part(email, '@', 1) FROM customers",
];

/// Every derived form is refused before it reaches the database.
fn assert_every_derived_form_refused(h: &Harness, token: &str) {
    for sql in DERIVED {
        let o = h.psql(token, "cards-db", sql);
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(!o.status.success(), "{sql} ran:\n{out}");
        assert!(
            err.contains("was found sensitive")
                || err.contains("whole row")
                || err.contains("cannot see into"),
            "{sql}: {err}"
        );
        assert_clean(sql, &format!("{out}{err}"));
    }
    assert_eq!(
        h.cluster
            .sql(
                "app",
                "SELECT count(*) FROM pg_class WHERE relname = 'copied'"
            )
            .unwrap(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_a_detector_masked_is_protected_from_then_on() {
    let mut h = harness();
    let agent = h.token("report-agent", &["agents"], "1h");

    // The first plain read is masked by the detectors, and finds the columns.
    let o = h.psql(
        &agent,
        "cards-db",
        "SELECT id, card, email FROM customers ORDER BY id",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean("plain read", &stdout(&o));
    assert!(stdout(&o).contains("1111"), "{}", stdout(&o));
    let listed: serde_json::Value =
        serde_json::from_str(&h.cli_ok(&["masking", "columns", "--json"])).unwrap();
    let names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{}.{} {} {}",
                c["schema"], c["table"], c["column"], c["detector"], c["found_by"]
            )
        })
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains("\"customers\".\"card\" \"card\" \"query\"")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("\"email\" \"email\"")),
        "{names:?}"
    );
    assert_eq!(names.len(), 2, "names and notes hold nothing: {names:?}");
    let found = events(&h, "sensitive_column_found", 2);
    assert_eq!(found[0]["payload"]["identity"], "report-agent");

    // From then on, every derived form is refused; plain reads stay masked.
    assert_every_derived_form_refused(&h, &agent);
    let o = h.psql(
        &agent,
        "cards-db",
        "SELECT name, card FROM customers WHERE id = 1",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean("plain read after", &stdout(&o));
    let o = h.psql(
        &agent,
        "cards-db",
        "SELECT upper(name), total FROM customers JOIN orders ON orders.customer = customers.id",
    );
    assert!(
        o.status.success(),
        "columns not found sensitive are free: {}",
        stderr(&o)
    );

    // The extended protocol, text and binary results.
    let client = h.connect(&agent, "cards-db").await.unwrap();
    let e = client
        .query(
            "SELECT reverse(card) FROM customers WHERE id = $1",
            &[&1i32],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    assert!(
        message(&e).contains("was found sensitive by the card detector"),
        "{e:?}"
    );
    let e = client
        .query("SELECT convert_to(card, 'UTF8') FROM customers", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    let row = client
        .query_one("SELECT card FROM customers WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    let card: String = row.get(0);
    assert_clean("binary plain read", &card);
    drop(client);

    // It survives a restart (read back from the store).
    h.stop_gateway();
    h.start_gateway();
    let o = h.psql(&agent, "cards-db", "SELECT reverse(card) FROM customers");
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_clean("after a restart", &stdout(&o));

    // An operator removes it (logged); then derived forms run again.
    let card_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "card")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = h.cli_ok(&["masking", "remove", &card_id]);
    assert!(out.contains("public.customers.card"), "{out}");
    let o = h.psql(
        &agent,
        "cards-db",
        "SELECT length(card) FROM customers WHERE id = 1",
    );
    assert_eq!(stdout(&o).trim(), "16", "{}", stderr(&o));
    events(&h, "sensitive_column_removed", 1);
    let out = h.cli(&["masking", "remove", &card_id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no found sensitive column"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn masking_discover_finds_columns_before_any_query() {
    let h = harness();
    let agent = h.token("report-agent", &["agents"], "1h");
    let out = h.cli(&[
        "masking",
        "discover",
        "--connection",
        "cards-db",
        "--rows",
        "50",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (table, progress) = (stdout(&out), stderr(&out));
    assert!(
        progress.contains("1/2 tables") && progress.contains("2/2 tables"),
        "{progress}"
    );
    assert!(progress.contains("public.customers"), "{progress}");
    let card = table
        .lines()
        .find(|l| l.starts_with("public.customers.card "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        card.contains("card") && card.contains("2/2 100%") && card.ends_with("new"),
        "{card}"
    );
    assert!(table.contains("public.customers.email"), "{table}");
    assert!(!table.contains("public.customers.name"), "{table}");
    assert!(!table.contains("public.orders"), "{table}");

    // Protected before any query showed a value.
    assert_every_derived_form_refused(&h, &agent);

    // Again: known already; the JSON result says so.
    let out = h.cli(&["masking", "discover", "--connection", "cards-db", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cols = result["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 2, "{result}");
    assert!(
        cols.iter()
            .all(|c| c["new"] == false && c["id"].is_string()),
        "{result}"
    );
    let found = events(&h, "sensitive_column_found", 2);
    assert_eq!(found[0]["payload"]["found_by"], "discover");
    assert_eq!(found[0]["payload"]["sampled"], 2);

    // Bad input: clear errors.
    let out = h.cli(&["masking", "discover", "--connection", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no PostgreSQL connection \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = h.cli(&[
        "masking",
        "discover",
        "--connection",
        "cards-db",
        "--rows",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rows_per_table must be from 1 to 10000"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_copy_of_a_table_finds_its_sensitive_columns_too() {
    let h = harness();
    let agent = h.token("report-agent", &["agents"], "1h");
    let o = h.psql(&agent, "cards-db", "COPY customers (id, card) TO STDOUT");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean("COPY", &stdout(&o));
    let found = events(&h, "sensitive_column_found", 1);
    assert_eq!(found[0]["payload"]["column"], "card", "{found:?}");
    let o = h.psql(&agent, "cards-db", "SELECT reverse(card) FROM customers");
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_clean("after the COPY", &stdout(&o));
}
