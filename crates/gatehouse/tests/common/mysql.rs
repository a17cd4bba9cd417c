//! A gateway with a MySQL listener in front of the shared MariaDB server
//! (`mariadb.rs`), one database per test, and the clients that reach it
//! through the gateway: the `mariadb` CLI and the Python drivers.

use super::mariadb::{self, Mariadb, NATIVE_PASSWORD, NATIVE_USER};
use super::{Harness, Options};
use std::process::{Command, Output};

/// A gateway whose connection `shop-db` reaches database `db` on MariaDB.
pub struct MysqlGateway {
    pub h: Harness,
    pub db: String,
    /// The CA file the gateway's certificate verifies with.
    pub ca_file: std::path::PathBuf,
}

/// The connection every test uses, then its own `extra` (masking…).
const CONNECTION: &str = r#"
[[connection]]
name = "shop-db"
kind = "mysql"
host = "127.0.0.1"
port = {mariadb_port}
database = "{mariadb_db}"
user = "{mariadb_user}"
password_env = "SHOP_DB_PASSWORD"
backend_tls = "verify-full"
backend_ca = "{mariadb_ca}"
"#;

impl MysqlGateway {
    /// A gateway with `policy`, database `db` made on the shared server and
    /// filled by `setup` (run as root), and `extra` configuration after the
    /// connection (`[connection.masking]`, approval routes…).
    pub fn start(policy: &str, db: &str, setup: &str, extra: &str) -> Self {
        Self::start_as(policy, db, setup, extra, NATIVE_USER, NATIVE_PASSWORD)
    }

    /// The same, the gateway logging in to MariaDB as `user`.
    pub fn start_as(
        policy: &str,
        db: &str,
        setup: &str,
        extra: &str,
        user: &str,
        password: &str,
    ) -> Self {
        let server = Mariadb::shared();
        let db = server.database(db);
        if !setup.is_empty() {
            server.sql(&db, setup);
        }
        let config: &'static str = Box::leak(format!("{CONNECTION}{extra}").into_boxed_str());
        let h = Harness::with(Options {
            policy: Some(policy.into()),
            extra_config: config,
            vars: vec![
                ("{mariadb_port}", server.port().to_string()),
                ("{mariadb_db}", db.clone()),
                ("{mariadb_user}", user.to_string()),
                ("{mariadb_ca}", server.ca_path().display().to_string()),
            ],
            env: vec![("SHOP_DB_PASSWORD", password.to_string())],
            mysql: true,
            ..Options::default()
        });
        let ca_file = h.dir.path().join("gateway-ca.pem");
        std::fs::write(&ca_file, &h.ca_pem).unwrap();
        Self { h, db, ca_file }
    }

    /// The `mariadb` CLI through the gateway with `token`, TLS verified,
    /// batch mode, connection `database` (not yet run: add `--execute=`).
    pub fn cli(&self, token: &str, database: &str) -> Command {
        let mut cmd = mariadb::mariadb_cli(self.h.mysql_port);
        cmd.arg("--user=job")
            .arg(format!("--password={token}"))
            .arg(format!("--ssl-ca={}", self.ca_file.display()))
            .arg("--ssl-verify-server-cert")
            .args(["--batch", "--skip-column-names"]);
        if !database.is_empty() {
            cmd.arg(format!("--database={database}"));
        }
        cmd
    }

    /// Runs `sql` with the CLI on `shop-db`.
    pub fn run(&self, token: &str, sql: &str) -> Output {
        self.cli(token, "shop-db")
            .arg(format!("--execute={sql}"))
            .output()
            .unwrap()
    }

    /// `client.py` through the gateway with `token` (PyMySQL unless
    /// `--driver` is added), TLS verified, on `shop-db`.
    pub fn python(&self, token: &str) -> Command {
        let mut cmd = mariadb::python_client();
        cmd.args(["--host", "127.0.0.1", "--port"])
            .arg(self.h.mysql_port.to_string())
            .args(["--user", "job", "--database", "shop-db", "--ssl-ca"])
            .arg(&self.ca_file)
            .env("MYSQL_PWD", token);
        cmd
    }

    /// `client.py` run by the system's python3 with mysqlclient (Debian's
    /// python3-mysqldb, on libmariadb) through the gateway.
    pub fn mysqldb(&self, token: &str) -> Command {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mysql-client/client.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script)
            .args(["--driver", "mysqldb", "--host", "127.0.0.1", "--port"])
            .arg(self.h.mysql_port.to_string())
            .args(["--user", "job", "--database", "shop-db", "--ssl-ca"])
            .arg(&self.ca_file)
            .env("MYSQL_PWD", token)
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// node's mysql2 (`tests/mysql-client/node/client.mjs`) through the
    /// gateway; add `--execute` for prepared statements.
    pub fn node(&self, token: &str) -> Command {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mysql-client/node");
        assert!(
            dir.join("node_modules/mysql2").exists(),
            "{}: npm packages missing: scripts/setup test installs them",
            dir.display()
        );
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("client.mjs"))
            .args(["--port"])
            .arg(self.h.mysql_port.to_string())
            .args(["--user", "job", "--database", "shop-db", "--ssl-ca"])
            .arg(&self.ca_file)
            .env("MYSQL_PWD", token)
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs `sql` as root on the test's database, straight on the server.
    pub fn backend(&self, sql: &str) -> String {
        Mariadb::shared().sql(&self.db, sql)
    }
}
