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

const MASKING: &str = r#"
[masking]
[[masking.detector]]
name = "employee_id"
pattern = "EMP-[0-9]{6}"

[[connection]]
name = "masked-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "app_owner"
password_env = "GATEHOUSE_TEST_APP_PASSWORD"
backend_tls = "require"

[connection.masking]
exempt_groups = ["dpo"]
strategies = { email = "hash" }

[[connection.masking.rule]]
column = "public.customers.national_id"
strategy = "partial:2"

[[connection.masking.rule]]
column_pattern = "*secret_note*"
strategy = "redact"

[[connection]]
name = "detectors-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "app_owner"
password_env = "GATEHOUSE_TEST_APP_PASSWORD"
backend_tls = "require"

[connection.masking]
detectors = ["pii", "secrets"]
"#;

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

    // COPY with column rules in force cannot be masked by column: withheld.
    let o = h.psql(&agent, "masked-db", "COPY customers TO STDOUT");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("withheld"), "{}", stderr(&o));
    assert_clean("refused COPY", &format!("{}{}", stdout(&o), stderr(&o)));
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
