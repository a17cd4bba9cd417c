//! Inline masking end to end: a real PostgreSQL, real psql and
//! tokio-postgres, text and binary formats, COPY, errors, notifications,
//! exemptions and recordings.

mod common;

use common::{stderr, stdout, Harness, Options};
use tokio_postgres::types::{FromSql, Type};

const CARD: &str = "4111111111111111";
const CARD_SPACED: &str = "5500 0055 5555 5559";
const SSN: &str = "078-05-1120";
const EMAIL: &str = "alice.smith@example.com";
const NATIONAL_ID: &str = "AB123456C";
const EMPLOYEE: &str = "EMP-123456";
/// Values that must reach no client and no record of a masked session.
const SECRETS: &[&str] = &[
    CARD,
    "5500005555555559",
    CARD_SPACED,
    SSN,
    "alice.smith",
    NATIONAL_ID,
    EMPLOYEE,
    "hunter2",
];

const MASKING: &str = concat!(
    r#"
[masking]
[[masking.detector]]
name = "employee_id"
pattern = "EMP-[0-9]{6}"

"#,
    crate::app_connection!("masked-db"),
    r#"
[connection.masking]
exempt_groups = ["dpo"]
strategies = { email = "hash" }
# What detectors alone do to expressions (found columns: tests/discovery.rs).
discover_columns = false

[[connection.masking.rule]]
column = "public.customers.national_id"
strategy = "partial:2"

[[connection.masking.rule]]
column_pattern = "*secret_note*"
strategy = "redact"

"#,
    crate::app_connection!("detectors-db"),
    r#"
[connection.masking]
detectors = ["pii", "secrets"]
"#
);

fn harness() -> Harness {
    let h = Harness::with(Options {
        extra_config: MASKING,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            &format!(
                "SET ROLE app_owner;
                 CREATE TABLE customers (
                     id int PRIMARY KEY, name text, card text, card_num bigint, card_numeric numeric,
                     ssn varchar(20), email text, national_id text, secret_note text,
                     profile jsonb, profile_json json, tags text[], raw bytea, ip inet, notes text,
                     order_no text, created text, version text);
                 INSERT INTO customers VALUES
                   (1, 'Alice', '{CARD}', {card}, {card}, '{SSN}', '{EMAIL}', '{NATIONAL_ID}', 'the vault code',
                    '{{\"card\": \"{CARD_SPACED}\", \"n\": {card}, \"email\": \"{EMAIL}\"}}',
                    '{{\"ssn\": \"{SSN}\"}}', ARRAY['{EMAIL}', 'plain'], convert_to('{CARD}', 'UTF8'),
                    '10.1.2.3', 'call her, card {CARD_SPACED}, badge {EMPLOYEE}',
                    'ORD-2024-000000123456', '2024-01-15 12:34:56.789+00', 'v1.2.3'),
                   (2, 'Bob', '4111111111111112', 1000000000001, 20240115123456784, '000-12-3456',
                    '{EMAIL}', 'ZZ999999Z', 'nothing', '{{\"n\": 1}}', '{{}}', ARRAY['x'], '\\x00',
                    NULL, 'no secrets here', 'ORD-1', '2024-01-15', '1.2.3.4.5');",
                card = CARD
            ),
        )
        .unwrap();
    h
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks {s:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_in_text_binary_copy_errors_and_notifications_and_records() {
    let h = harness();
    let agent = h.token("order-agent", &["agents"], "1h");

    // psql: text format, every column.
    let o = h.psql(&agent, "masked-db", "SELECT * FROM customers ORDER BY id");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_clean("psql SELECT *", &out);
    assert!(out.contains("************1111"), "partial card: {out}");
    assert!(out.contains("***-**-1120"), "partial ssn: {out}");
    assert!(
        out.contains("*******6C"),
        "national_id rule partial:2: {out}"
    );
    assert!(
        out.contains("[masked:*secret_note*]"),
        "pattern rule: {out}"
    );
    assert!(
        out.contains("[masked:employee_id]"),
        "custom detector: {out}"
    );
    // Look-alikes pass untouched.
    for clear in [
        "4111111111111112",
        "1000000000001",
        "ORD-2024-000000123456",
        "2024-01-15 12:34:56.789+00",
        "1.2.3.4.5",
        "000-12-3456",
    ] {
        assert!(out.contains(clear), "{clear} should not be masked: {out}");
    }
    // The hash strategy: equal emails give equal masks.
    let hashes: Vec<&str> = out.lines().filter_map(|l| l.split('|').nth(6)).collect();
    assert_eq!(hashes.len(), 2, "{out}");
    assert!(
        hashes[0].starts_with("[hash:") && hashes[0] == hashes[1],
        "{hashes:?}"
    );

    // Expressions: detectors still find values in computed columns.
    let o = h.psql(
        &agent,
        "masked-db",
        "SELECT card || '', upper(email), profile->>'card', tags[1] FROM customers WHERE id = 1",
    );
    assert_clean("computed columns", &stdout(&o));

    // tokio-postgres: binary format for every column.
    let client = h.connect(&agent, "masked-db").await.unwrap();
    let rows = client
        .query("SELECT * FROM customers WHERE id = 1", &[])
        .await
        .unwrap();
    let row = &rows[0];
    for (i, col) in row.columns().iter().enumerate() {
        let v: Option<Raw> = row.get(i);
        let bytes = v.map(|r| r.0).unwrap_or_default();
        assert_clean(
            &format!("binary column {}", col.name()),
            &String::from_utf8_lossy(&bytes),
        );
        if col.type_() == &Type::INT8 && bytes.len() == 8 {
            assert_ne!(
                i64::from_be_bytes(bytes[..8].try_into().unwrap()).to_string(),
                CARD
            );
        }
    }
    let card: String = row.get("card");
    assert_eq!(card, "************1111");
    let num: Option<i64> = row.get("card_num");
    assert_eq!(num, None, "a card in a bigint column is sent as NULL");
    let ip: Option<Raw> = row.get("ip");
    assert!(ip.is_none(), "inet values are IP addresses");
    // A bind parameter holding a card: recorded masked.
    let n: i64 = client
        .query_one("SELECT count(*) FROM customers WHERE card = $1", &[&CARD])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // A failed cast echoes the value in its message: masked.
    let e = client
        .query("SELECT card::int FROM customers WHERE id = 1", &[])
        .await
        .unwrap_err();
    let msg = format!("{:?}", e.as_db_error().unwrap());
    assert_clean("cast error", &msg);
    assert!(msg.contains("************1111"), "{msg}");
    drop(client);

    // NOTIFY payloads.
    let o = h.psql(
        &agent,
        "masked-db",
        &format!("LISTEN c; NOTIFY c, 'card {CARD}'"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(out.contains("notification"), "{out}");
    assert_clean("notification", &out);

    // COPY with column rules in force: masked field by field.
    let o = h.psql(&agent, "masked-db", "COPY customers TO STDOUT");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean("COPY under rules", &stdout(&o));
    assert!(stdout(&o).contains("*******6C"), "{}", stdout(&o));
    // Without column rules, COPY rows are masked by the detectors (text and CSV).
    for format in ["text", "csv"] {
        let o = h.psql(
            &agent,
            "detectors-db",
            &format!("COPY customers TO STDOUT WITH (FORMAT {format})"),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("************1111"), "{out}");
        // No rules and no custom detector on this connection: the national id and badge stay.
        assert_clean(
            &format!("COPY {format}"),
            &out.replace(NATIONAL_ID, "").replace(EMPLOYEE, ""),
        );
    }
    let o = h.psql(
        &agent,
        "detectors-db",
        "COPY customers TO STDOUT WITH (FORMAT binary)",
    );
    assert!(!o.status.success(), "binary COPY cannot be masked");
    assert!(stderr(&o).contains("binary"), "{}", stderr(&o));

    // The exempt group sees clear values; its record says so.
    let dpo = h.token("privacy-officer", &["dpo"], "1h");
    let o = h.psql(
        &dpo,
        "masked-db",
        "SELECT card, email FROM customers WHERE id = 1",
    );
    assert!(
        stdout(&o).contains(CARD) && stdout(&o).contains(EMAIL),
        "{}",
        stdout(&o)
    );

    // Recordings: nothing in clear; each statement says what was masked.
    let sessions = h.ended_sessions("order-agent", 8);
    let mut all = String::new();
    let mut saw_summary = false;
    for s in &sessions {
        let d = h.session_detail(s["id"].as_str().unwrap());
        for st in d["statements"].as_array().unwrap() {
            if st["masking"]["detectors"].to_string().contains("card") {
                saw_summary = true;
            }
        }
        all.push_str(&d.to_string());
    }
    assert_clean("recordings", &all);
    assert!(saw_summary, "no statement record counts card masks: {all}");
    let d = h.session_detail(
        h.ended_sessions("privacy-officer", 1)[0]["id"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(d["statements"][0]["masking"]["exempt_group"], "dpo", "{d}");
    assert_clean("exempt session's recording", &d.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_in_statements_are_never_recorded() {
    let h = Harness::start();
    let token = h.token("dba", &[], "1h");
    let o = h.psql(&token, "app-db", "ALTER ROLE app_owner PASSWORD 'hunter2'");
    assert!(o.status.success(), "{}", stderr(&o));
    let s = h.ended_sessions("dba", 1);
    let d = h.session_detail(s[0]["id"].as_str().unwrap());
    let text = d["statements"][0]["text"].as_str().unwrap();
    assert_eq!(text, "ALTER ROLE app_owner PASSWORD '[masked:password]'");
    assert!(!d.to_string().contains("hunter2"));
}

/// Any value as its raw bytes, whatever its type.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Statements that would carry a rule-covered column out without its origin
/// (so no rule could find it in the result) are refused before they reach
/// the database; plain selections of it are masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_rules_cannot_be_bypassed_by_query_shape() {
    let h = harness();
    let agent = h.token("order-agent", &["agents"], "1h");
    let guarded = [
        "SELECT upper(national_id) FROM customers",
        "SELECT national_id || '' FROM customers",
        "SELECT c.national_id::bytea FROM customers c",
        "SELECT format('%s', national_id) FROM customers",
        "SELECT national_id FROM customers UNION SELECT 'x'",
        "SELECT (SELECT national_id FROM customers LIMIT 1)",
        "SELECT row_to_json(c) FROM customers c",
        "SELECT c FROM customers c",
        "SELECT * FROM customers UNION ALL SELECT * FROM customers",
        "SELECT upper(x) FROM (SELECT national_id AS x FROM customers) s",
        "SELECT upper(y) FROM (SELECT national_id FROM customers) s(y)",
        "WITH s AS (SELECT national_id AS x FROM customers) SELECT x || '' FROM s",
        "SELECT lower(secret_note) FROM customers",
        "COPY (SELECT national_id FROM customers) TO STDOUT",
        "COPY (SELECT * FROM customers) TO STDOUT",
        "CREATE TEMP TABLE leak AS SELECT national_id FROM customers",
        "SELECT query_to_xml('SELECT national_id FROM customers', true, false, '')",
        "DO $$ BEGIN RAISE NOTICE '%', (SELECT national_id FROM customers LIMIT 1); END $$",
    ];
    for sql in guarded {
        let o = h.psql(&agent, "masked-db", sql);
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!o.status.success(), "{sql} ran: {out}");
        assert!(out.contains("permission denied"), "{sql}: {out}");
        assert!(
            !out.contains(NATIONAL_ID) && !out.contains("vault"),
            "{sql}: {out}"
        );
    }
    let o = h.psql(
        &agent,
        "masked-db",
        "SELECT md5(national_id) FROM customers",
    );
    let err = stderr(&o);
    assert!(
        err.contains("column `national_id` is masked by rule `public.customers.national_id`"),
        "{err}"
    );
    assert!(
        err.contains("HINT:") && err.contains("as themselves"),
        "{err}"
    );

    // Plain selections, also through subqueries and CTEs and under another name, are masked.
    let o = h.psql(
        &agent,
        "masked-db",
        "WITH s AS (SELECT * FROM customers) \
         SELECT n.x AS id_of_customer FROM (SELECT national_id AS x FROM s WHERE upper(name) = 'ALICE') n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("*******6C"), "{}", stdout(&o));
    assert_clean("subquery", &stdout(&o));

    // psql's catalog queries call only known built-ins: describing a table works.
    let o = h.psql(&agent, "masked-db", "\\d customers");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("national_id"), "{}", stdout(&o));

    // The extended protocol gets the same refusal, as insufficient_privilege.
    let client = h.connect(&agent, "masked-db").await.unwrap();
    let e = client
        .query(
            "SELECT lower(national_id) FROM customers WHERE id = $1",
            &[&1i32],
        )
        .await
        .unwrap_err();
    assert_eq!(common::sqlstate(&e), "42501", "{e:?}");
    assert!(common::message(&e).contains("masked by rule"), "{e:?}");
    // The session goes on: other statements still run.
    let n: i64 = client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    drop(client);

    // Members of an exempt group are not restricted.
    let dpo = h.token("privacy-officer", &["dpo"], "1h");
    let o = h.psql(
        &dpo,
        "masked-db",
        "SELECT upper(national_id) FROM customers WHERE id = 1",
    );
    assert!(stdout(&o).contains(NATIONAL_ID), "{}", stdout(&o));

    // The refusal is recorded with its reason.
    let sessions = h.ended_sessions("order-agent", guarded.len() + 4);
    let all: String = sessions
        .iter()
        .map(|s| h.session_detail(s["id"].as_str().unwrap()).to_string())
        .collect();
    assert!(
        all.contains("column masking: column `national_id`"),
        "{all}"
    );
    assert_clean("recordings", &all);
}

/// COPY TO under column rules: each field is matched to its table column,
/// in text and CSV, with column lists, headers, NULL strings and delimiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_is_masked_by_column() {
    let h = harness();
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner; \
             INSERT INTO customers (id, name, national_id, secret_note) \
             VALUES (3, 'Tab\tand \\ slash', NULL, 'vault, \"quoted\"\nline');",
        )
        .unwrap();
    let agent = h.token("order-agent", &["agents"], "1h");
    let copy = |sql: &str| {
        let o = h.psql(&agent, "masked-db", sql);
        assert!(o.status.success(), "{sql}: {}", stderr(&o));
        let out = stdout(&o);
        assert_clean(sql, &out);
        assert!(!out.contains("vault"), "{sql}: {out}");
        out
    };

    let text = copy("COPY customers (id, name, national_id, secret_note) TO STDOUT");
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0], "1\tAlice\t*******6C\t[masked:*secret_note*]",
        "{text}"
    );
    assert_eq!(
        rows[2], "3\tTab\\tand \\\\ slash\t\\N\t[masked:*secret_note*]",
        "NULL stays NULL, other fields stay as sent: {text}"
    );

    let csv = copy(
        "COPY customers (national_id, name, secret_note) TO STDOUT \
         WITH (FORMAT csv, HEADER, DELIMITER ';', NULL 'none')",
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0], "national_id;name;secret_note",
        "header untouched: {csv}"
    );
    assert!(
        rows.contains(&"\"*******6C\";Alice;\"[masked:*secret_note*]\""),
        "{csv}"
    );
    assert!(
        rows.contains(&"none;Tab\tand \\ slash;\"[masked:*secret_note*]\""),
        "{csv}"
    );

    // Every column, and the table named with its schema.
    let all = copy("COPY public.customers TO STDOUT WITH (FORMAT csv)");
    assert!(
        all.contains("*******6C") && all.contains("************1111"),
        "{all}"
    );

    // COPY of a query that reads no covered column runs under the detectors.
    let q = copy("COPY (SELECT id, card FROM customers ORDER BY id) TO STDOUT");
    assert!(q.starts_with("1\t************1111\n"), "{q}");

    // tokio-postgres (extended protocol) gets the same masking.
    let client = h.connect(&agent, "masked-db").await.unwrap();
    let stream = client
        .copy_out("COPY customers (id, national_id) TO STDOUT")
        .await
        .unwrap();
    use futures_util::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let got: Vec<u8> = chunks.concat();
    let got = String::from_utf8(got).unwrap();
    assert!(
        got.contains("1\t*******6C\n") && got.contains("3\t\\N\n"),
        "{got}"
    );
    drop(client);

    // A COPY sharing its query string with other statements cannot be matched: withheld.
    let o = h.psql(&agent, "masked-db", "SELECT 1; COPY customers TO STDOUT");
    assert!(
        stderr(&o).contains("send the COPY on its own"),
        "{}",
        stderr(&o)
    );
    assert_clean("withheld COPY", &format!("{}{}", stdout(&o), stderr(&o)));

    // An unqualified name found in two schemas must be qualified.
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner; CREATE SCHEMA other; CREATE TABLE other.customers (national_id text); \
             INSERT INTO other.customers VALUES ('OTHER-ID');",
        )
        .unwrap();
    let o = h.psql(&agent, "masked-db", "COPY customers TO STDOUT");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("qualify it with its schema"),
        "{}",
        stderr(&o)
    );
    assert_clean("ambiguous COPY", &format!("{}{}", stdout(&o), stderr(&o)));
    let o = h.psql(&agent, "masked-db", "COPY other.customers TO STDOUT");
    assert_eq!(
        stdout(&o).trim(),
        "OTHER-ID",
        "other.customers is not covered"
    );
}
