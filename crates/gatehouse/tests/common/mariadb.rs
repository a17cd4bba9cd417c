//! MySQL end to end: a real MariaDB server (`mariadbd` from Debian's
//! mariadb-server, 10.11 on Debian 12) made by `mariadb-install-db` in a
//! temporary directory and started on a loopback port, with TLS (a
//! certificate of a test CA), the ed25519 authentication plugin and one user
//! per authentication method; the `mariadb` command-line client; and the
//! Python drivers of `tests/mysql-client/` (PyMySQL, MySQL Connector/Python,
//! in the venv `scripts/setup test` makes).
//!
//! One server serves every test of a test binary ([`Mariadb::shared`], in a
//! `static`); each test makes a database of its own ([`Mariadb::database`]),
//! so tests run in parallel. [`Mariadb::start`] gives a test a server of its
//! own, stopped (and its directory removed) when dropped. A `static` is never
//! dropped, so each server has a watchdog: an `sh` blocked reading a pipe
//! whose only writer is the test process. When the process ends, however it
//! ends (even SIGKILL), the pipe closes and the watchdog kills the server and
//! removes its directory. Both run in process groups of their own, so a
//! Ctrl-C in the terminal reaches neither before the watchdog has cleaned up.
//!
//! Root or not: `mariadbd` refuses to run as root unless told `--user=root`,
//! so as root (CI) it gets `--user=root` and runs as root; as any other user
//! it runs as that user, in a directory that user owns. Nothing is chowned,
//! no `mysql` account or `runuser` is needed (unlike PostgreSQL, which has no
//! such switch). `mariadb-install-db` is never given `--user`: as root, the
//! script would then re-own the system's
//! /usr/lib/mysql/plugin/auth_pam_tool_dir (it runs its bootstrap as root
//! without it).
//!
//! Accounts: `root@localhost` without a password, reachable over the Unix
//! socket only (`--auth-root-authentication-method=normal`; the root accounts
//! for 127.0.0.1, ::1 and the host name are dropped), which [`Mariadb::sql`]
//! uses; and, from any host over TCP, [`NATIVE_USER`]
//! (mysql_native_password), [`ED25519_USER`] (ed25519) and [`TLS_USER`]
//! (mysql_native_password, `REQUIRE SSL`), with the fixed passwords below and
//! all privileges on each database [`Mariadb::database`] makes. MariaDB 10.11
//! also has unix_socket, gssapi, pam and mysql_old_password; caching_sha2 and
//! sha256_password are MySQL's (MariaDB's clients speak them, its server
//! does not).
//!
//! The server: `--no-defaults` (no /etc/mysql), utf8mb4
//! (`utf8mb4_general_ci`), time zone +00:00, `--skip-name-resolve`,
//! `max_connect_errors` out of reach (the gateway's tests abort handshakes
//! from 127.0.0.1 on purpose), small InnoDB files, no native AIO (io_uring
//! and libaio are often refused in containers).

use gatehouse::certs::{write_private, TestCa};
use gatehouse::pgcluster::free_port;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A user that logs in with `mysql_native_password`.
pub const NATIVE_USER: &str = "gh_native";
pub const NATIVE_PASSWORD: &str = "native-Secret-1";
/// A user that logs in with MariaDB's `ed25519` (`client_ed25519`).
pub const ED25519_USER: &str = "gh_ed25519";
pub const ED25519_PASSWORD: &str = "ed25519-Secret-2";
/// A user with `mysql_native_password` and `REQUIRE SSL`.
pub const TLS_USER: &str = "gh_tls";
pub const TLS_PASSWORD: &str = "tls-Secret-3";
/// Every TCP user with its password.
pub const USERS: [(&str, &str); 3] = [
    (NATIVE_USER, NATIVE_PASSWORD),
    (ED25519_USER, ED25519_PASSWORD),
    (TLS_USER, TLS_PASSWORD),
];

/// The server binary (in /usr/sbin, often not on a non-root PATH).
const MARIADBD: &str = "/usr/sbin/mariadbd";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings `mariadb-install-db` (which passes them to its bootstrap) and
/// the server share.
const INNODB: [&str; 4] = [
    "--innodb-use-native-aio=0",
    "--innodb-log-file-size=4M",
    "--innodb-buffer-pool-size=32M",
    "--innodb-flush-log-at-trx-commit=0",
];

/// Kills the server (`$1`, if it is still the process started on the
/// directory `$2`) and removes `$2` once its writer closes standard input.
const WATCHDOG: &str = r#"trap '' INT HUP TERM
read -r _ || :
if grep -qF -- "$2" "/proc/$1/cmdline" 2>/dev/null; then kill -KILL "$1" 2>/dev/null; fi
i=0
while [ "$i" -lt 100 ] && [ -e "/proc/$1" ] && ! grep -q ') Z' "/proc/$1/stat" 2>/dev/null; do
  sleep 0.05; i=$((i + 1))
done
rm -rf -- "$2"
"#;

/// A throwaway MariaDB server.
pub struct Mariadb {
    dir: PathBuf,
    port: u16,
    version: String,
    ca_pem: String,
    server: Child,
    watchdog: Child,
    /// The watchdog's standard input: closing it stops the server.
    stop: Option<ChildStdin>,
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The last lines of the files in `paths`, for a message that says why.
fn tails(paths: &[PathBuf]) -> String {
    let mut out = String::new();
    for p in paths {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!(
            "\n--- {} (last lines) ---\n{}",
            p.display(),
            lines[lines.len().saturating_sub(25)..].join("\n")
        ));
    }
    out
}

/// Whether the server on `port` sends its greeting (protocol 10).
fn greets(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && head[4] == 10
}

impl Mariadb {
    /// The server every test of this test binary shares (started by the first
    /// caller). Tests use databases of their own on it ([`Self::database`]).
    pub fn shared() -> &'static Mariadb {
        static SHARED: OnceLock<Mariadb> = OnceLock::new();
        SHARED.get_or_init(Mariadb::start)
    }

    /// Starts a server of the caller's own (stopped when dropped).
    pub fn start() -> Mariadb {
        let began = Instant::now();
        let tmp = tempfile::Builder::new()
            .prefix("gatehouse-mariadb-")
            .tempdir()
            .unwrap();
        let d = tmp.path();
        let data = d.join("data");

        let ca = TestCa::new("gatehouse MariaDB test CA").unwrap();
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
        std::fs::write(d.join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(d.join("server.pem"), &leaf.cert_pem).unwrap();
        write_private(&d.join("server.key"), leaf.key_pem.as_bytes()).unwrap();

        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(INNODB)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("mariadb-install-db: {e} (scripts/setup test installs mariadb-server)")
            });
        assert!(
            out.status.success(),
            "mariadb-install-db failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let error_log = d.join("error.log");
        let console = d.join("mariadbd.out");
        let mut attempt = 0;
        let (server, port) = loop {
            attempt += 1;
            let port = free_port().unwrap();
            let mut server = Self::spawn(d, port, &console);
            let deadline = Instant::now() + START_TIMEOUT;
            let ready = loop {
                if let Some(status) = server.try_wait().unwrap() {
                    break Err(format!("mariadbd exited with {status}"));
                }
                // The log's line first: it says this server bound the port
                // (something else could have taken it since it was chosen).
                let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                if log.contains("ready for connections") && greets(port) {
                    break Ok(());
                }
                if Instant::now() > deadline {
                    let _ = server.kill();
                    let _ = server.wait();
                    break Err(format!(
                        "mariadbd did not accept connections within {START_TIMEOUT:?}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            match ready {
                Ok(()) => break (server, port),
                Err(why) => {
                    let said = tails(&[error_log.clone(), console.clone()]);
                    // The port was free when chosen; something may have taken
                    // it before the server bound it: choose again.
                    if attempt < 3 && said.contains("Address already in use") {
                        continue;
                    }
                    panic!("{why} (port {port}, directory {}):{said}", d.display());
                }
            }
        };

        // From here on, the watchdog owns the directory.
        let dir = tmp.keep();
        let mut watchdog = {
            use std::os::unix::process::CommandExt;
            Command::new("sh")
                .args(["-c", WATCHDOG, "gatehouse-mariadb-watchdog"])
                .arg(server.id().to_string())
                .arg(&dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let stop = watchdog.stdin.take();
        let mut this = Mariadb {
            dir,
            port,
            version: String::new(),
            ca_pem: ca.cert_pem(),
            server,
            watchdog,
            stop,
        };
        this.sql(
            "",
            &format!(
                "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';
                 DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
                 FLUSH PRIVILEGES;
                 CREATE USER '{NATIVE_USER}'@'%' IDENTIFIED VIA mysql_native_password
                     USING PASSWORD('{NATIVE_PASSWORD}');
                 CREATE USER '{ED25519_USER}'@'%' IDENTIFIED VIA ed25519
                     USING PASSWORD('{ED25519_PASSWORD}');
                 CREATE USER '{TLS_USER}'@'%' IDENTIFIED VIA mysql_native_password
                     USING PASSWORD('{TLS_PASSWORD}') REQUIRE SSL;"
            ),
        );
        this.version = this.sql("", "SELECT VERSION()");
        eprintln!(
            "MariaDB {} on 127.0.0.1:{port} ({}) ready in {:?}",
            this.version,
            this.dir.display(),
            began.elapsed()
        );
        this
    }

    fn spawn(d: &Path, port: u16, console: &Path) -> Child {
        use std::os::unix::process::CommandExt;
        let exe = if Path::new(MARIADBD).is_file() {
            MARIADBD
        } else {
            "mariadbd"
        };
        let out = std::fs::File::create(console).unwrap();
        let mut cmd = Command::new(exe);
        // --no-defaults must come first.
        cmd.arg("--no-defaults");
        if is_root() {
            cmd.arg("--user=root");
        }
        let path = |name: &str| d.join(name).display().to_string();
        cmd.arg(format!("--datadir={}", path("data")))
            .arg(format!("--socket={}", path("mysqld.sock")))
            .arg(format!("--pid-file={}", path("mariadbd.pid")))
            .arg(format!("--log-error={}", path("error.log")))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--ssl-cert={}", path("server.pem")))
            .arg(format!("--ssl-key={}", path("server.key")))
            .arg(format!("--ssl-ca={}", path("ca.pem")))
            .args([
                "--plugin-load-add=auth_ed25519",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--default-time-zone=+00:00",
                "--max-connections=300",
                "--max-connect-errors=1000000000",
            ])
            .args(INNODB)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("{exe}: {e} (scripts/setup test installs mariadb-server)"))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Unix socket (root's way in).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// The test CA's certificate (PEM) that signed the server's certificate
    /// (for `localhost` and `127.0.0.1`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The test CA's certificate as a file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `SELECT VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's directory (data, socket, logs, certificates).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Makes the database `name` (letters, digits, `_`), on which the TCP
    /// users have all privileges; returns its name. Each test needs a name of
    /// its own: a name already taken fails.
    pub fn database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: letters, digits and _ only"
        );
        let grantees = USERS
            .iter()
            .map(|(u, _)| format!("'{u}'@'%'"))
            .collect::<Vec<_>>()
            .join(", ");
        let made = self.try_sql(
            "",
            &format!("CREATE DATABASE `{name}`; GRANT ALL ON `{name}`.* TO {grantees};"),
        );
        match made {
            Ok(_) => name.to_string(),
            Err(e) if e.contains("1007") => panic!(
                "database {name} exists already on this MariaDB: each test needs a name of its own"
            ),
            Err(e) => panic!("making database {name}: {e}"),
        }
    }

    /// Runs `query` (one statement or several, `;`-separated) as root over
    /// the socket, in database `db` (none if empty), with the `mariadb` CLI in
    /// batch mode: stdout without column names or its last newline (columns
    /// tab-separated, NULL as `NULL`, tabs/newlines/backslashes escaped).
    /// Panics, with the client's stderr, if it fails.
    pub fn sql(&self, db: &str, query: &str) -> String {
        self.try_sql(db, query)
            .unwrap_or_else(|e| panic!("{query}\nfailed: {e}"))
    }

    /// [`Self::sql`], giving the client's stderr (`ERROR 1146 (42S02) at
    /// line 1: …`) back instead of panicking.
    pub fn try_sql(&self, db: &str, query: &str) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--socket={}", self.socket().display()))
            .args([
                "--batch",
                "--skip-column-names",
                "--default-character-set=utf8mb4",
            ]);
        if !db.is_empty() {
            cmd.arg(format!("--database={db}"));
        }
        let out = cmd
            .arg(format!("--execute={query}"))
            .env_remove("MYSQL_PWD")
            .env_remove("MYSQL_HOST")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("mariadb: {e} (scripts/setup test installs mariadb-client)")
            });
        if out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.ends_with('\n') {
                text.pop();
            }
            Ok(text)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// The `mariadb` CLI pointed at this server over TCP (see [`mariadb_cli`]).
    pub fn client_command(&self) -> Command {
        mariadb_cli(self.port)
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // The watchdog then finds no server and removes the directory.
        drop(self.stop.take());
        let _ = self.watchdog.wait();
    }
}

/// The `mariadb` CLI (not yet run) pointed at 127.0.0.1:`port` over TCP (a
/// server, or the gateway), reading no option file or `MYSQL_PWD`, its
/// stdin empty. Callers add `--user=`, `--password=`, `--ssl-ca=` (with
/// `--ssl-verify-server-cert`: the 10.11 client does not verify otherwise),
/// `--skip-ssl` (it uses TLS whenever the server offers it), `--batch`,
/// `--skip-column-names`, a database, `--execute=`; a later `--port=` wins.
pub fn mariadb_cli(port: u16) -> Command {
    let mut cmd = Command::new("mariadb");
    cmd.arg("--no-defaults")
        .args(["--protocol=TCP", "--host=127.0.0.1"])
        .arg(format!("--port={port}"))
        .args(["--connect-timeout=10", "--default-character-set=utf8mb4"])
        .env_remove("MYSQL_PWD")
        .env_remove("MYSQL_HOST")
        .stdin(Stdio::null());
    cmd
}

/// `tests/mysql-client/client.py` run by its venv's Python (PyMySQL or
/// Connector/Python; see the script's help): callers add `--port`,
/// `--user`, `--password`, `--database`, `--ssl-ca`, `--driver`, queries.
/// Its output parses with [`json_lines`].
pub fn python_client() -> Command {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mysql-client");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/setup test makes the venv",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(dir.join("client.py"))
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::null());
    cmd
}

/// `client.py`'s output, one JSON value per line.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
