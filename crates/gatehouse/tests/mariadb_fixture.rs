//! The MariaDB fixture of the MySQL tests (`common::mariadb`) on its own,
//! no gateway: the shared server starts, root runs SQL over the socket, and
//! each TCP user logs in with its authentication plugin, through the
//! `mariadb` CLI and through the Python drivers of `tests/mysql-client/`.

mod common;

use common::mariadb::{
    json_lines, python_client, Mariadb, ED25519_PASSWORD, ED25519_USER, NATIVE_PASSWORD,
    NATIVE_USER, TLS_PASSWORD, TLS_USER, USERS,
};
use common::{stderr, stdout};
use serde_json::json;
use std::process::Output;

/// The `mariadb` CLI to the shared server as `user`, in batch mode, running `sql`.
fn cli(m: &Mariadb, user: &str, password: &str, db: &str, tls: &[&str], sql: &str) -> Output {
    m.client_command()
        .arg(format!("--user={user}"))
        .arg(format!("--password={password}"))
        .args(["--batch", "--skip-column-names"])
        .args(tls)
        .arg(format!("--database={db}"))
        .arg(format!("--execute={sql}"))
        .output()
        .unwrap()
}

#[test]
fn root_runs_sql_over_the_socket() {
    let m = Mariadb::shared();
    assert!(m.version().contains("MariaDB"), "{}", m.version());
    assert!(m.socket().exists());
    assert!(m.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let db = m.database("fixture_root");
    m.sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20));
         INSERT INTO t VALUES (1, 'one'), (2, NULL), (3, 'ü\tx');",
    );
    assert_eq!(
        m.sql(&db, "SELECT id, note FROM t ORDER BY id"),
        "1\tone\n2\tNULL\n3\tü\\tx"
    );
    assert_eq!(
        m.sql("", "SELECT @@character_set_server, @@time_zone"),
        "utf8mb4\t+00:00"
    );
    let plugins = m.sql(
        "",
        "SELECT plugin_name FROM information_schema.plugins
         WHERE plugin_type = 'AUTHENTICATION' AND plugin_status = 'ACTIVE' ORDER BY 1",
    );
    assert!(plugins.contains("ed25519"), "{plugins}");
    // Root comes in over the socket only.
    let err = m.try_sql(&db, "SELECT nope FROM t").unwrap_err();
    assert!(err.contains("ERROR 1054 (42S22)"), "{err}");
    let out = m
        .client_command()
        .args(["--user=root", "--execute=SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "root logged in over TCP");
    assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
}

#[test]
fn each_user_logs_in_with_the_cli() {
    let m = Mariadb::shared();
    let db = m.database("fixture_cli");
    m.sql(&db, "CREATE TABLE t (n INT); INSERT INTO t VALUES (41);");
    let ca = format!("--ssl-ca={}", m.ca_path().display());
    let verified: [&str; 2] = [&ca, "--ssl-verify-server-cert"];
    let status = "SELECT CURRENT_USER(), n + 1, \
                  (SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS \
                   WHERE VARIABLE_NAME = 'Ssl_cipher') FROM t";
    for (user, password, tls, encrypted) in [
        (NATIVE_USER, NATIVE_PASSWORD, &["--skip-ssl"][..], 0),
        (ED25519_USER, ED25519_PASSWORD, &["--skip-ssl"][..], 0),
        (TLS_USER, TLS_PASSWORD, &verified[..], 1),
    ] {
        let out = cli(m, user, password, &db, tls, status);
        assert!(out.status.success(), "{user}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{user}@%\t42\t{encrypted}"));
    }
    // gh_tls without TLS, and a wrong password, are refused.
    let out = cli(m, TLS_USER, TLS_PASSWORD, &db, &["--skip-ssl"], "SELECT 1");
    assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
    let out = cli(m, ED25519_USER, "wrong", &db, &["--skip-ssl"], "SELECT 1");
    assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
    // The certificate is the test CA's, for 127.0.0.1: another CA fails verification.
    let other = "--ssl-ca=/etc/ssl/certs/ca-certificates.crt";
    let out = cli(
        m,
        TLS_USER,
        TLS_PASSWORD,
        &db,
        &[other, "--ssl-verify-server-cert"],
        "SELECT 1",
    );
    assert!(!out.status.success(), "verified against another CA");
}

#[test]
fn each_user_logs_in_with_the_python_drivers() {
    let m = Mariadb::shared();
    let db = m.database("fixture_python");
    let ca = m.ca_path().display().to_string();
    let run = |driver: &str, user: &str, password: &str, tls: &[&str], queries: &[&str]| {
        python_client()
            .args(["--driver", driver, "--port", &m.port().to_string()])
            .args(["--user", user, "--password", password, "--database", &db])
            .args(tls)
            .args(queries)
            .output()
            .unwrap()
    };
    let cipher = "SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS \
                  WHERE VARIABLE_NAME = 'Ssl_cipher'";
    for (user, password) in USERS {
        let tls: &[&str] = if user == TLS_USER {
            &["--ssl-ca", &ca]
        } else {
            &["--no-ssl"]
        };
        let table = format!("CREATE TABLE t_{user} (id INT, note TEXT)");
        let insert = format!("INSERT INTO t_{user} VALUES (1, 'a'), (2, NULL)");
        let select = format!("SELECT id, note, CURRENT_USER() FROM t_{user} ORDER BY id");
        let out = run(
            "pymysql",
            user,
            password,
            tls,
            &[&table, &insert, &select, cipher],
        );
        assert!(
            out.status.success(),
            "{user}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let encrypted = if user == TLS_USER { 1 } else { 0 };
        let at = format!("{user}@%");
        assert_eq!(
            json_lines(&out),
            [
                json!({"affected_rows": 0}),
                json!({"affected_rows": 2}),
                json!([1, "a", at]),
                json!([2, null, at]),
                json!([encrypted]),
            ],
            "{user}"
        );
    }
    // Connector/Python: native password, over verified TLS (it has no ed25519).
    let out = run(
        "connector",
        TLS_USER,
        TLS_PASSWORD,
        &["--ssl-ca", &ca],
        &["SELECT CURRENT_USER()", cipher],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json_lines(&out), [json!(["gh_tls@%"]), json!([1])]);
    // Errors come back as JSON, with the server's errno and SQLSTATE.
    let out = run(
        "pymysql",
        NATIVE_USER,
        NATIVE_PASSWORD,
        &[],
        &["SELECT 1", "SELECT * FROM missing"],
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines[0], json!([1]));
    assert_eq!(lines[1]["errno"], 1146);
    assert_eq!(lines[1]["sqlstate"], "42S02");
    let out = run(
        "connector",
        TLS_USER,
        TLS_PASSWORD,
        &["--no-ssl"],
        &["SELECT 1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out)[0]["errno"], 1045, "{}", stdout(&out));
}
