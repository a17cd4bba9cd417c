//! SSH end to end: a real OpenSSH server (`sshd` from Debian's
//! openssh-server) started on a loopback port with its own configuration
//! and host key as the target, the gateway in front of it with its own key
//! for the target, and real OpenSSH clients (`ssh`, `scp`, `sftp`) that
//! give their token through `SSH_ASKPASS`.

use super::{stderr, Harness, Options};
use gatehouse::pgcluster::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The sshd binary.
const SSHD: &str = "/usr/sbin/sshd";

/// Makes an Ed25519 key pair at `path` (and `path.pub`): the public line.
pub fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", stderr(&out));
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// A free port below the kernel's ephemeral range, never handed out
/// before in this process (`free_port`): sshd binds it itself, some time
/// after it is chosen.
fn outside_ephemeral_port() -> u16 {
    free_port().unwrap()
}

/// A throwaway OpenSSH server.
pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Its host key's public line (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    child: Child,
}

impl Sshd {
    /// Starts sshd letting in the holder of `authorized` (a public key line)
    /// as the current user, with sftp and TCP forwarding on.
    pub fn start(authorized: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let host_key = keygen(&d.join("host_key"));
        std::fs::write(d.join("authorized_keys"), format!("{authorized}\n")).unwrap();
        // sshd's privilege separation directory (Debian's package makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = outside_ephemeral_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nAllowTcpForwarding yes\n\
             AllowAgentForwarding yes\nX11Forwarding no\nPrintMotd no\nPrintLastLog no\n\
             Subsystem sftp internal-sftp\nLogLevel VERBOSE\nAcceptEnv LANG LC_* GH_*\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{SSHD}: {e} (scripts/setup installs openssh-server)"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            dir,
            host_key,
            child,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The current user's name (the account on the test host).
pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A gateway with an SSH listener in front of a real sshd.
pub struct SshGateway {
    pub h: Harness,
    pub sshd: Sshd,
    /// The client's files: askpass script, known_hosts.
    pub client: PathBuf,
    pub user: String,
}

impl SshGateway {
    /// A gateway with `config` (where `{sshd_port}`, `{host_key}`,
    /// `{user}` and `{gw_key}` are filled in) and `policy`.
    pub fn start(policy: &str, config: &str) -> Self {
        let keys = tempfile::Builder::new()
            .prefix("gatehouse-sshkeys-")
            .tempdir()
            .unwrap();
        let gw_key = keys.path().join("gw_key");
        let gw_pub = keygen(&gw_key);
        let sshd = Sshd::start(&gw_pub);
        let user = whoami();
        // The key file moves into the sshd's folder, which lives as long as the test.
        let kept = sshd.dir.path().join("gateway_key");
        std::fs::copy(&gw_key, &kept).unwrap();
        let config: &'static str = Box::leak(config.to_string().into_boxed_str());
        let h = Harness::with(Options {
            policy: Some(policy.into()),
            extra_config: config,
            vars: vec![
                ("{sshd_port}", sshd.port.to_string()),
                ("{host_key}", sshd.host_key.clone()),
                ("{user}", user.clone()),
                ("{gw_key}", kept.display().to_string()),
            ],
            ssh: true,
            ..Options::default()
        });
        let client = h.dir.path().join("ssh-client");
        std::fs::create_dir_all(&client).unwrap();
        let askpass = client.join("askpass");
        std::fs::write(&askpass, "#!/bin/sh\nprintf '%s\\n' \"$GATEHOUSE_TOKEN\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hk: serde_json::Value =
            serde_json::from_str(&h.cli_ok(&["ssh", "host-key", "--json"])).unwrap();
        std::fs::write(
            client.join("known_hosts"),
            format!("{}\n", hk["known_hosts"].as_str().unwrap()),
        )
        .unwrap();
        Self {
            h,
            sshd,
            client,
            user,
        }
    }

    /// Options every OpenSSH client here takes: the gateway's key pinned,
    /// the token from askpass, no configuration or keys of the machine's.
    fn options(&self) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!(
                "UserKnownHostsFile={}",
                self.client.join("known_hosts").display()
            ),
            "-o",
            "PreferredAuthentications=keyboard-interactive,password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn client_env(&self, cmd: &mut Command, token: &str) {
        cmd.env("SSH_ASKPASS", self.client.join("askpass"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("GATEHOUSE_TOKEN", token)
            .env("HOME", &self.client)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
    }

    /// `ssh` to `login` logging in with the key (and certificate) at `key`
    /// only: no password, no other key.
    pub fn ssh_key_cmd(&self, key: &Path, login: &str, remote: &[&str]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!(
                "UserKnownHostsFile={}",
                self.client.join("known_hosts").display()
            ),
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-i",
        ])
        .arg(key)
        .args(["-p", &self.h.ssh_port.to_string()])
        .arg(format!("{login}@127.0.0.1"))
        .args(remote)
        .env("HOME", &self.client)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
        cmd
    }

    /// `ssh` to `login` (a connection, or `account@connection`) through the
    /// gateway as `token`, with `extra` options, running `remote`.
    pub fn ssh_cmd(&self, token: &str, login: &str, extra: &[&str], remote: &[&str]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.options())
            .args(["-p", &self.h.ssh_port.to_string()])
            .args(extra)
            .arg(format!("{login}@127.0.0.1"))
            .args(remote);
        self.client_env(&mut cmd, token);
        cmd
    }

    /// `ssh` run by `sshpass -e` (the token in `SSHPASS`), no askpass.
    pub fn sshpass_cmd(&self, token: &str, login: &str, remote: &str) -> Command {
        let mut cmd = Command::new("sshpass");
        cmd.arg("-e")
            .arg("ssh")
            .args(self.options())
            .args(["-p", &self.h.ssh_port.to_string()])
            .arg(format!("{login}@127.0.0.1"))
            .arg(remote)
            .env("SSHPASS", token)
            .env("HOME", &self.client)
            .env_remove("SSH_ASKPASS")
            .env_remove("SSH_ASKPASS_REQUIRE")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `remote` on `login` as `token`.
    pub fn ssh(&self, token: &str, login: &str, remote: &str) -> Output {
        self.ssh_cmd(token, login, &[], &[remote]).output().unwrap()
    }

    /// `scp` or `sftp` through the gateway as `token`.
    pub fn file_cmd(&self, program: &str, token: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        let port_flag = if program == "scp" || program == "sftp" {
            "-P"
        } else {
            "-p"
        };
        cmd.args(self.options())
            .args([port_flag, &self.h.ssh_port.to_string()])
            .args(args);
        self.client_env(&mut cmd, token);
        cmd
    }

    /// The result event of the action whose text contains `needle`.
    pub fn result_of(&self, needle: &str) -> serde_json::Value {
        self.h.result_of(needle)
    }
    /// The recording an action's result names, as text.
    pub fn recording(&self, result: &serde_json::Value) -> String {
        let name = result["payload"]["stream"]["recording"]
            .as_str()
            .unwrap_or_else(|| panic!("no recording in {result}"));
        std::fs::read_to_string(self.h.data_dir.join("recordings").join(name)).unwrap()
    }
}

/// A policy letting group `ops` run anything on every SSH connection.
pub const OPS_POLICY: &str = r#"
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("ops-use-hosts") permit (principal in Gatehouse::Group::"ops", action in Gatehouse::Action::"ssh:session", resource);
"#;

/// Connection `web-1`: the test sshd, for [`SshGateway::start`].
pub const WEB1_CONNECTION: &str = r#"
[[connection]]
name = "web-1"
kind = "ssh"
host = "127.0.0.1"
port = {sshd_port}
user = "{user}"
private_key_file = "{gw_key}"
host_key = "{host_key}"
"#;
