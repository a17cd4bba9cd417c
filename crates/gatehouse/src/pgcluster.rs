//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory,
//! started on a free loopback port, removed when dropped. Used by
//! `gatehouse demo` and by the end-to-end tests.
//!
//! PostgreSQL refuses to run as root; when the gateway runs as root the
//! cluster is created and run as the `postgres` user (via `runuser`).

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Extra settings for a cluster.
#[derive(Default, Clone)]
pub struct ClusterOptions {
    /// Server certificate and key (PEM): turns `ssl = on`.
    pub tls: Option<(String, String)>,
    /// pg_hba.conf lines placed before the default `scram-sha-256` rules.
    pub hba_prepend: Vec<String>,
}

/// A running throwaway cluster.
pub struct TempCluster {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    port: u16,
    superuser_password: String,
    as_postgres: bool,
    stopped: bool,
}

/// Finds the directory holding `initdb` and `pg_ctl`: `PATH` first, then
/// Debian's `/usr/lib/postgresql/<version>/bin` (newest version).
pub fn find_bin_dir() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                // Follow symlinks (e.g. /usr/local/bin/initdb) to the real bin
                // directory, where psql and pgbench of the same version live too.
                let real = std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(dir);
                return Ok(real);
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
    versions.pop().map(|(_, b)| b).ok_or_else(|| {
        anyhow!(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql. \
             Install them: `sudo apt-get install -y postgresql` (Debian/Ubuntu)"
        )
    })
}

fn is_root() -> bool {
    // `id -u` prints the effective uid; a failure to run it means "not root".
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The last lines of a server log, for an error that says why it did not start.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (released before returning; good enough for tests and demos).
pub fn free_port() -> Result<u16> {
    // Below the kernel's ephemeral range (32768 and up on Linux): a port the
    // kernel hands out is also what outgoing connections are given, so one
    // could take it between this check and the server's bind.
    // Never the same port twice in one process: a port handed out is free
    // when checked but bound only later, by whoever asked, and parallel
    // tests would otherwise be given it again in between.
    use rand::Rng;
    use std::collections::HashSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        let handed = handed.get_or_insert_with(HashSet::new);
        if handed.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.insert(port);
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl TempCluster {
    /// Creates and starts a cluster.
    pub fn start(opts: &ClusterOptions) -> Result<Self> {
        let bin = find_bin_dir()?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("gatehouse-pg-").tempdir()?;
        let data = dir.path().join("data");
        let superuser_password = random_hex(16);
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &superuser_password)?;
        if as_postgres {
            chown_to_postgres(dir.path())?;
            chown_to_postgres(&pwfile)?;
        }
        let mut this = Self {
            dir: Some(dir),
            bin,
            port: free_port()?,
            superuser_password,
            as_postgres,
            stopped: true,
        };
        this.run_tool(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--pwfile",
                path_str(&pwfile)?,
                "--auth",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        )?;
        std::fs::remove_file(&pwfile)?;
        let mut conf = format!(
            "\n# gatehouse throwaway cluster\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n",
            this.port,
            path_str(this.dir()?)?
        );
        if let Some((cert, key)) = &opts.tls {
            let cert_path = data.join("server.crt");
            let key_path = data.join("server.key");
            std::fs::write(&cert_path, cert)?;
            crate::certs::write_private(&key_path, key.as_bytes())?;
            if as_postgres {
                chown_to_postgres(&cert_path)?;
                chown_to_postgres(&key_path)?;
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        append(&data.join("postgresql.conf"), &conf)?;
        let mut hba = opts.hba_prepend.join("\n");
        hba.push_str(
            "\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n",
        );
        std::fs::write(data.join("pg_hba.conf"), hba)?;
        let log = this.dir()?.join("postgres.log");
        let mut attempts = 0;
        loop {
            let started = this.pg_ctl_start();
            let Err(e) = started else { break };
            let tail = log_tail(&log);
            attempts += 1;
            // The port was free when chosen, but any outgoing connection may
            // take it before the server binds it: choose again (a later
            // `port` line wins in postgresql.conf).
            if attempts < 3 && tail.contains("already in use") {
                this.port = free_port()?;
                append(
                    &data.join("postgresql.conf"),
                    &format!("port = {}\n", this.port),
                )?;
                continue;
            }
            return Err(e.context(format!("server log {}:\n{tail}", log.display())));
        }
        this.stopped = false;
        Ok(this)
    }

    fn dir(&self) -> Result<&Path> {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .ok_or_else(|| anyhow!("cluster directory already removed"))
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run_tool(&self, tool: &str, args: &[&str]) -> Result<Output> {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser (`postgres`) password.
    pub fn superuser_password(&self) -> &str {
        &self.superuser_password
    }

    /// Path of a client tool (`psql`, `pgbench`) of the same PostgreSQL version.
    pub fn tool(&self, name: &str) -> PathBuf {
        let p = self.bin.join(name);
        if p.is_file() {
            p
        } else {
            PathBuf::from(name)
        }
    }

    /// psql as the superuser over TCP, straight to the cluster (not through a gateway).
    fn superuser_psql(&self, database: &str) -> Command {
        let mut c = Command::new(self.tool("psql"));
        c.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &self.port.to_string(), "-d", database])
        .env("PGPASSWORD", &self.superuser_password)
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null());
        c
    }

    fn run_psql(mut c: Command) -> Result<String> {
        let out = c.output().context("running psql")?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs SQL as the superuser directly against the cluster (not through the
    /// gateway) and returns psql's unaligned, tuples-only output.
    pub fn sql(&self, database: &str, sql: &str) -> Result<String> {
        let mut c = self.superuser_psql(database);
        c.args(["-A", "-t", "-c", sql]);
        Self::run_psql(c)
    }

    /// Runs a SQL file as the superuser.
    pub fn sql_file(&self, database: &str, file: &Path) -> Result<()> {
        let mut c = self.superuser_psql(database);
        c.arg("-f").arg(file);
        Self::run_psql(c).map(|_| ())
    }

    /// Stops the server, keeping its data (for [`Self::start_server`]):
    /// how tests take a database away and bring it back.
    pub fn stop_server(&mut self) -> Result<()> {
        if !self.stopped {
            let data = self.dir()?.join("data");
            self.run_tool(
                "pg_ctl",
                &["-D", path_str(&data)?, "-m", "fast", "-w", "stop"],
            )?;
            self.stopped = true;
        }
        Ok(())
    }

    /// Starts a server stopped by [`Self::stop_server`] again, on the same port.
    pub fn start_server(&mut self) -> Result<()> {
        if self.stopped {
            self.pg_ctl_start()?;
            self.stopped = false;
        }
        Ok(())
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    fn pg_ctl_start(&self) -> Result<Output> {
        let data = self.dir()?.join("data");
        let log = self.dir()?.join("postgres.log");
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Stops the server and removes its directory.
    pub fn stop(&mut self) -> Result<()> {
        if !self.stopped {
            self.stopped = true;
            let data = self.dir()?.join("data");
            self.run_tool(
                "pg_ctl",
                &["-D", path_str(&data)?, "-m", "fast", "-w", "stop"],
            )?;
        }
        if let Some(d) = self.dir.take() {
            d.close()?;
        }
        Ok(())
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: could not stop the throwaway PostgreSQL: {e}");
        }
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow!("path {} is not UTF-8", p.display()))
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn chown_to_postgres(path: &Path) -> Result<()> {
    let out = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .output()
        .context("running chown")?;
    if !out.status.success() {
        bail!(
            "cannot hand {} to the postgres user (PostgreSQL refuses to run as root): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Random lowercase hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}
