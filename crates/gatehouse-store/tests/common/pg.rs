//! A throwaway PostgreSQL cluster for the shared store's tests: `initdb`
//! (the newest server on PATH or under /usr/lib/postgresql) into a
//! temporary directory, started with `pg_ctl` on a free loopback port with
//! its socket in that directory, `fsync` off.
//!
//! One cluster serves every test of a test binary ([`Cluster::shared`]);
//! each test makes a database of its own ([`Cluster::database`]), so tests
//! run in parallel. A `static` is never dropped, so the cluster has a
//! watchdog: an `sh` blocked reading a pipe whose only writer is the test
//! process. When the process ends, however it ends, the pipe closes and the
//! watchdog stops the server (immediate shutdown) and removes the directory.
//!
//! Authentication: over the socket, trust; over TCP (what the store uses),
//! scram-sha-256 with the superuser [`USER`]'s password [`PASSWORD`].
//! PostgreSQL refuses to run as root, so as root the cluster is made and
//! run as the `postgres` user (`runuser`), in a directory handed to it.

use gatehouse_store::{PgStoreSettings, StoreTls};
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The superuser, and the user every store connects as.
pub const USER: &str = "gatehouse";
/// Its password (TCP connections need it).
pub const PASSWORD: &str = "store-Secret-7";

/// Stops the server whose data directory is `$1` (its postmaster, if it is
/// still the one started there) and removes `$2` once its writer closes
/// standard input.
const WATCHDOG: &str = r#"trap '' INT HUP TERM
read -r _ || :
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && grep -qF -- "$1" "/proc/$pid/cmdline" 2>/dev/null; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  while [ "$i" -lt 100 ] && [ -e "/proc/$pid" ] && ! grep -q ') Z' "/proc/$pid/stat" 2>/dev/null; do
    sleep 0.05; i=$((i + 1))
  done
fi
rm -rf -- "$2"
"#;

/// A running throwaway cluster.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    _watchdog: Child,
    _stop: ChildStdin,
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The directory of `initdb` and `pg_ctl`: PATH first (following a
/// symlink to the real directory), then the newest /usr/lib/postgresql/*/bin.
fn bin_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).expect(
        "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH nor under /usr/lib/postgresql",
    )
}

/// A TCP port on 127.0.0.1 free when asked, below the ephemeral range (so
/// outgoing connections are not given it meanwhile), never the same twice.
fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id() % 10_000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((seed + n * 7) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn chown_to_postgres(path: &Path) {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown {} to postgres failed", path.display());
}

impl Cluster {
    /// The cluster every test of this test binary shares (started by the
    /// first caller).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    fn start() -> Cluster {
        let bin = bin_dir();
        let as_postgres = is_root();
        let tool = |name: &str| {
            let mut c = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(name));
                c
            } else {
                Command::new(bin.join(name))
            };
            c.stdin(Stdio::null());
            c
        };
        let tmp = tempfile::Builder::new()
            .prefix("gatehouse-store-pg-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let data = dir.join("data");
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if as_postgres {
            chown_to_postgres(&dir);
        }
        let out = tool("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-instructions"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&pwfile).unwrap();

        let log = dir.join("postgres.log");
        let mut attempt = 0;
        let port = loop {
            attempt += 1;
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
                dir.display()
            );
            let out = {
                use std::os::unix::process::CommandExt;
                tool("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-t", "60", "-o", &options, "start"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .process_group(0)
                    .output()
                    .unwrap()
            };
            if out.status.success() {
                break port;
            }
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if attempt < 3 && said.contains("already in use") {
                continue;
            }
            panic!(
                "pg_ctl start failed: {}\n{said}",
                String::from_utf8_lossy(&out.stderr)
            );
        };

        // From here on, the watchdog owns the directory.
        let dir = tmp.keep();
        let mut watchdog = {
            use std::os::unix::process::CommandExt;
            Command::new("sh")
                .args(["-c", WATCHDOG, "gatehouse-store-pg-watchdog"])
                .arg(dir.join("data"))
                .arg(&dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let stop = watchdog.stdin.take().unwrap();
        eprintln!("PostgreSQL on 127.0.0.1:{port} ({})", dir.display());
        Cluster {
            dir,
            port,
            _watchdog: watchdog,
            _stop: stop,
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The url of database `db` (no password: see [`Self::settings`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Settings for node `node_id` on database `db`, with the password and
    /// without TLS.
    pub fn settings(&self, db: &str, node_id: &str) -> PgStoreSettings {
        PgStoreSettings {
            url: self.url(db),
            password: Some(PASSWORD.into()),
            tls: StoreTls::Disable,
            ca_file: None,
            node_id: node_id.into(),
        }
    }

    /// A connection of the test's own to database `db`.
    pub async fn connect(&self, db: &str) -> PgConnection {
        let url = format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        );
        PgConnection::connect(&url).await.unwrap()
    }

    /// Makes a new, empty database for one test; returns its name (`name`
    /// with a number: letters, digits and `_`).
    pub async fn database(&self, name: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let db = format!("{name}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut conn = self.connect("postgres").await;
        sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        db
    }
}
