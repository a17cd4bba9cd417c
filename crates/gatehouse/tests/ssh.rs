//! SSH through the gateway, end to end: the real `gatehouse` binary in
//! front of a real OpenSSH server started on loopback
//! (`tests/common/ssh.rs`), driven by OpenSSH's own `ssh`, `scp` and
//! `sftp`, and by Python's paramiko. Each check asserts what the client
//! got, what happened on the host, and what the evidence log holds.

mod common;

use common::ssh::SshGateway;
use common::{stderr, stdout};
use std::process::Stdio;
use std::time::Duration;

const POLICY: &str = r#"
@id("connect")
permit (principal, action == Gatehouse::Action::"connect", resource);

@id("ops-use-hosts")
permit (principal in Gatehouse::Group::"ops", action in Gatehouse::Action::"ssh:session", resource);

@id("no-rm")
forbid (principal, action == Gatehouse::Action::"ssh:exec", resource)
when { context.program == "rm" };

@id("restarts-wait")
@approval("sre-hold")
forbid (principal, action == Gatehouse::Action::"ssh:exec", resource)
when { context.argv.contains("--restart") };

@id("drops-need-a-request")
@approval("sre")
forbid (principal, action == Gatehouse::Action::"ssh:exec", resource)
when { context.argv.contains("--drop") };

@id("agents-may-forward")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"ssh:agent-forward", resource);

@id("agents-may-listen")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"ssh:remote-forward", resource)
when { context.forward_port > 1024 };

@id("no-sftp-removals")
forbid (principal, action == Gatehouse::Action::"ssh:sftp", resource)
when { context.operation == "remove" };

@id("protected-is-read-only")
forbid (principal, action == Gatehouse::Action::"ssh:sftp", resource)
when { context.operation == "open-write" && context.path like "*/protected/*" };

@id("forward-to-echo-only")
forbid (principal, action == Gatehouse::Action::"ssh:port-forward", resource)
when { context.forward_port == 9 };
"#;

const CONFIG: &str = r#"
[[approval.route]]
name = "sre"
approvers = ["sre"]
mode = "request"

[[approval.route]]
name = "sre-hold"
approvers = ["sre"]
mode = "hold"
hold_timeout = "60s"

[[connection]]
name = "web-1"
kind = "ssh"
host = "127.0.0.1"
port = {sshd_port}
user = "{user}"
private_key_file = "{gw_key}"
host_key = "{host_key}"

[connection.masking]
detectors = ["email"]

[[connection]]
name = "impostor"
kind = "ssh"
host = "127.0.0.1"
port = {sshd_port}
user = "{user}"
private_key_file = "{gw_key}"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGyLEyZ/ozN2sLXt1a0WTqQxSSTxA4JC8Z8VLnlnXTPo"
"#;

fn gateway() -> (SshGateway, String, String) {
    let g = SshGateway::start(POLICY, CONFIG);
    let ops = g.h.token("deploy-job", &["ops"], "1h");
    let sre = g.h.token("sre-lead", &["ops", "sre"], "1h");
    (g, ops, sre)
}

#[test]
fn commands_run_decided_masked_and_recorded() {
    let (g, ops, _sre) = gateway();
    // A command runs; its output and exit status come back.
    let out = g.ssh(&ops, "web-1", "echo hello-$((6*7)); echo oops >&2; exit 3");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello-42");
    assert!(stderr(&out).contains("oops"), "{}", stderr(&out));

    // Scripts that set SSHPASS (sshpass answers the password prompt).
    let out = g
        .sshpass_cmd(&ops, "web-1", "echo via-sshpass")
        .output()
        .unwrap_or_else(|e| panic!("sshpass: {e} (scripts/setup installs it)"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "via-sshpass");

    // Refused by policy: nothing runs, the caller is told why.
    let marker = g.sshd.dir.path().join("kept");
    std::fs::write(&marker, "x").unwrap();
    let out = g.ssh(&ops, "web-1", &format!("rm -f {}", marker.display()));
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(marker.exists(), "a refused command did not run");
    let err = stderr(&out);
    assert!(
        err.contains("gatehouse: permission denied") && err.contains("no-rm"),
        "{err}"
    );

    // Masked output: an address the connection masks, and a private key
    // (the gateway's own key for the host) never reach the caller.
    let key_file = g.sshd.dir.path().join("gateway_key");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let key_body = key_text.lines().nth(2).unwrap().to_string();
    let out = g.ssh(
        &ops,
        "web-1",
        &format!("echo mail alice@example.com; cat {}", key_file.display()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = stdout(&out);
    assert!(
        got.contains("[masked:email]") && !got.contains("alice@example.com"),
        "{got}"
    );
    assert!(
        !got.contains(&key_body),
        "the gateway's key reached the caller: {got}"
    );

    // An account the connection lists is asked for as `account@connection`;
    // one it does not list is refused, naming those it does.
    let out = g.ssh(&ops, &format!("{}@web-1", g.user), "id -un");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), g.user);
    let out = g.ssh(&ops, "mallory@web-1", "id -un");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("does not let callers log in to the account \"mallory\""),
        "{}",
        stderr(&out)
    );

    // Bytes that are not SSH close that one connection; others go on.
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(("127.0.0.1", g.h.ssh_port)).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = Vec::new();
        let _ = raw.read_to_end(&mut buf);
        assert!(
            String::from_utf8_lossy(&buf).starts_with("SSH-2.0-"),
            "{buf:?}"
        );
    }

    // A wrong token is refused, saying why.
    let out = g.ssh("not-a-token", "web-1", "echo no");
    assert_eq!(out.status.code(), Some(255));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("gatehouse: authentication failed"),
        "{}",
        stderr(&out)
    );

    // A connection whose host offers another key than the pinned one is refused.
    let out = g.ssh(&ops, "impostor", "echo no");
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("which is not the one pinned"), "{err}");
    assert!(stdout(&out).is_empty());

    // Every action is in the evidence log, with its recording.
    let r = g.result_of("hello-");
    assert_eq!(r["payload"]["stream"]["exit_code"], 3, "{r}");
    let cast = g.recording(&r);
    assert!(
        cast.contains("hello-42") && cast.contains("exit 3"),
        "{cast}"
    );
    let cast = g.recording(&g.result_of("cat "));
    assert!(cast.contains("[masked:email]"), "{cast}");
    assert!(
        !cast.contains("alice@example.com") && !cast.contains(&key_body),
        "{cast}"
    );
    let r = g.result_of("rm -f");
    assert_eq!(r["payload"]["decision"], "deny", "{r}");
}

/// The pending approval request whose text contains `marker`.
fn pending(g: &SshGateway, marker: &str) -> String {
    g.h.pending_approval(marker)
}

#[test]
fn risky_commands_wait_for_an_approver_or_name_their_request() {
    let (g, ops, sre) = gateway();
    // Hold mode: the command waits, the caller is told on stderr, and it
    // runs once an approver approves.
    let child = g
        .ssh_cmd(&ops, "web-1", &[], &["echo restarted --restart"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = pending(&g, "--restart");
    let out = g.h.cli(&["approvals", "approve", &id, "--token", &sre]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "restarted --restart");
    assert!(
        stderr(&out).contains(&format!("held for approval: request {id}")),
        "{}",
        stderr(&out)
    );

    // Denied: nothing runs.
    let child = g
        .ssh_cmd(&ops, "web-1", &[], &["echo second --restart"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = pending(&g, "second --restart");
    let out = g.h.cli(&[
        "approvals",
        "deny",
        &id,
        "--token",
        &sre,
        "--comment",
        "not now",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains(&format!("approval request {id} was denied")),
        "{}",
        stderr(&out)
    );

    // Request mode: refused at once, naming the request; once approved,
    // the same command runs once.
    let out = g.ssh(&ops, "web-1", "echo dropped --drop");
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("approval required"), "{err}");
    let id = pending(&g, "dropped --drop");
    assert!(err.contains(&id), "{err}");
    let out = g.h.cli(&["approvals", "approve", &id, "--token", &sre]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = g.ssh(&ops, "web-1", "echo dropped --drop");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "dropped --drop");
    // The approval was for exactly one run.
    let out = g.ssh(&ops, "web-1", "echo dropped --drop");
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
}

#[test]
fn shells_files_and_forwarded_connections() {
    let (g, ops, _sre) = gateway();
    // A shell on a terminal: typed commands run, the session is recorded
    // and replays with `gatehouse sessions replay`.
    let mut child = g
        .ssh_cmd(&ops, "web-1", &["-tt"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"echo shell-$((6*7)) bob@example.com\nexit 0\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let got = stdout(&out);
    assert!(got.contains("shell-42"), "{got}{}", stderr(&out));
    assert!(!got.contains("bob@example.com"), "{got}");
    let r = g.result_of("(shell)");
    let cast = g.recording(&r);
    assert!(
        cast.contains("shell-42") && !cast.contains("bob@example.com"),
        "{cast}"
    );
    let session = r["payload"]["session"].as_str().unwrap();
    let seq = r["payload"]["seq"].to_string();
    let out = g.h.cli(&["sessions", "replay", session, &seq]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("shell-42"), "{}", stdout(&out));

    // sftp: upload and download.
    let work = g.h.dir.path().join("files");
    std::fs::create_dir_all(&work).unwrap();
    let up = work.join("up.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&up, &data).unwrap();
    let remote = g.sshd.dir.path().join("uploaded.bin");
    let back = work.join("back.bin");
    let batch = work.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            up.display(),
            remote.display(),
            remote.display(),
            back.display()
        ),
    )
    .unwrap();
    // (Not `sftp -b`: batch mode turns off password prompts, askpass too.)
    let out = g
        .file_cmd("sftp", &ops, &["web-1@127.0.0.1"])
        .stdin(std::fs::File::open(&batch).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read(&remote).unwrap(), data);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    // Each file operation was decided and recorded with its bytes.
    let r = g.result_of(&format!("sftp open-write {}", remote.display()));
    assert_eq!(r["payload"]["command_tag"], "wrote 300000 bytes", "{r}");
    let r = g.result_of(&format!("sftp open-read {}", remote.display()));
    assert_eq!(r["payload"]["command_tag"], "read 300000 bytes", "{r}");
    // Refused operations are answered by the gateway; nothing reaches the host.
    let protected = g.sshd.dir.path().join("protected");
    std::fs::create_dir_all(&protected).unwrap();
    std::fs::write(
        &batch,
        format!(
            "rm {}\nput {} {}/new.bin\nls {}\n",
            remote.display(),
            up.display(),
            protected.display(),
            protected.display(),
        ),
    )
    .unwrap();
    let out = g
        .file_cmd("sftp", &ops, &["web-1@127.0.0.1"])
        .stdin(std::fs::File::open(&batch).unwrap())
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("Permission denied"), "{said}");
    assert!(remote.exists(), "a refused removal did not happen");
    assert!(
        !protected.join("new.bin").exists(),
        "a refused upload did not happen"
    );
    let r = g.result_of(&format!("sftp remove {}", remote.display()));
    assert_eq!(r["payload"]["decision"], "deny", "{r}");
    let r = g.result_of(&format!("sftp list {}", protected.display()));
    assert_eq!(r["payload"]["decision"], "allow", "{r}");

    // scp of a larger file both ways (sftp underneath, as OpenSSH 9 does).
    let big = work.join("big.bin");
    let big_data: Vec<u8> = (0..(24u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &big_data).unwrap();
    let remote_big = g.sshd.dir.path().join("big.bin");
    let out = g
        .file_cmd(
            "scp",
            &ops,
            &[
                "-q",
                big.to_str().unwrap(),
                &format!("web-1@127.0.0.1:{}", remote_big.display()),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read(&remote_big).unwrap() == big_data,
        "scp upload differs"
    );
    let big_back = work.join("big-back.bin");
    let out = g
        .file_cmd(
            "scp",
            &ops,
            &[
                "-q",
                &format!("web-1@127.0.0.1:{}", remote_big.display()),
                big_back.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read(&big_back).unwrap() == big_data,
        "scp download differs"
    );
    // Both directions at once, more than any window or queue holds: a
    // command echoing its input back neither deadlocks nor loses a byte.
    let out = g
        .ssh_cmd(&ops, "web-1", &[], &["cat"])
        .stdin(std::fs::File::open(&big).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        out.stdout.len(),
        big_data.len(),
        "cat echoed a different size"
    );
    assert!(out.stdout == big_data, "cat echoed different bytes");

    // The legacy scp protocol (an exec of `scp -t`) carries bytes unmasked.
    let legacy = g.sshd.dir.path().join("legacy.bin");
    let out = g
        .file_cmd(
            "scp",
            &ops,
            &[
                "-O",
                "-q",
                up.to_str().unwrap(),
                &format!("web-1@127.0.0.1:{}", legacy.display()),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&legacy).unwrap(), data);

    // A forwarded connection (ssh -W, a direct-tcpip channel) carries bytes
    // both ways; one to a port the policy forbids is refused, saying why.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = stream.try_clone().unwrap();
                let mut w = stream;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    let mut child = g
        .ssh_cmd(
            &ops,
            "web-1",
            &["-W", &format!("127.0.0.1:{echo_port}")],
            &[],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ping through the tunnel\n").unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        stdout(&out).contains("ping through the tunnel"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let r = g.result_of(&format!("(forward 127.0.0.1:{echo_port})"));
    assert_eq!(r["payload"]["stream"]["stdin_bytes"], 24, "{r}");
    // ssh -L: a local port forwarded through the gateway, bytes both ways.
    let local = gatehouse::pgcluster::free_port().unwrap();
    let mut tunnel = g
        .ssh_cmd(
            &ops,
            "web-1",
            &[
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-L",
                &format!("127.0.0.1:{local}:127.0.0.1:{echo_port}"),
            ],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    echo_through(local, "-L");
    let _ = tunnel.kill();
    let _ = tunnel.wait();
    let out = g
        .ssh_cmd(&ops, "web-1", &["-W", "127.0.0.1:9"], &[])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("forward-to-echo-only"),
        "{}",
        stderr(&out)
    );

    // Agent forwarding is refused: no agent reaches the host.
    let agent_sock = g.h.dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&agent_sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while !agent_sock.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = g
        .ssh_cmd(
            &ops,
            "web-1",
            &["-A"],
            &["echo agent=${SSH_AUTH_SOCK:-none}"],
        )
        .env("SSH_AUTH_SOCK", &agent_sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "agent=none");
    // Where a policy allows ssh:agent-forward, the caller's agent answers
    // the host through the gateway (its keys listed there), recorded.
    let agent_key = g.h.dir.path().join("agent_key");
    common::ssh::keygen(&agent_key);
    let added = std::process::Command::new("ssh-add")
        .arg(&agent_key)
        .env("SSH_AUTH_SOCK", &agent_sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    let forwarder = g.h.token("agent-user", &["ops", "agents"], "1h");
    let out = g
        .ssh_cmd(&forwarder, "web-1", &["-A"], &["ssh-add -l"])
        .env("SSH_AUTH_SOCK", &agent_sock)
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let listed = stdout(&out);
    let fp = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(agent_key.with_extension("pub"))
        .output()
        .unwrap();
    let fp = stdout(&fp);
    let fp = fp.split_whitespace().nth(1).unwrap();
    assert!(listed.contains(fp), "{listed} lacks {fp}");
    // (The host may open more than one agent connection; one carried the listing.)
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !g.h.evidence_events().iter().any(|e| {
        e["kind"] == "statement_result"
            && e["payload"]["stream"]["protocol"] == "ssh-agent"
            && e["payload"]["status"] == "ok"
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "no agent connection recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // ssh -R: the host listens for the caller where a policy allows
    // ssh:remote-forward; each connection it takes comes back through the
    // gateway, bytes both ways, recorded.
    let rport = gatehouse::pgcluster::free_port().unwrap();
    let forward = format!("127.0.0.1:{rport}:127.0.0.1:{echo_port}");
    let mut reverse = g
        .ssh_cmd(
            &forwarder,
            "web-1",
            &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &forward],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    echo_through(rport, "-R");
    let _ = reverse.kill();
    let _ = reverse.wait();
    let r = g.result_of(&format!("(remote forward connection to 127.0.0.1:{rport}"));
    assert_eq!(r["payload"]["stream"]["stdout_bytes"], 8, "{r}");
    // Without the permission the host is never asked to listen.
    let out = g
        .ssh_cmd(
            &ops,
            "web-1",
            &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &forward],
            &[],
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("remote port forwarding failed"),
        "{}",
        stderr(&out)
    );
    let text = format!("(remote forward 127.0.0.1:{rport})");
    let refused = g.h.evidence_events().into_iter().any(|e| {
        e["kind"] == "statement"
            && e["payload"]["text"] == text.as_str()
            && e.to_string().contains("\"deny\"")
    });
    assert!(refused, "no refused {text} in the evidence log");
}

#[test]
fn a_library_client_runs_commands_and_moves_files() {
    let (g, ops, _sre) = gateway();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ssh-client/client.py");
    let python = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ssh-client/.venv/bin/python"
    );
    let known_hosts = g.client.join("known_hosts");
    let port = g.h.ssh_port.to_string();
    let run = |token: &str, args: &[&str]| {
        std::process::Command::new(python)
            .arg(script)
            .arg(&known_hosts)
            .arg(&port)
            .args(args)
            .env("GATEHOUSE_TOKEN", token)
            .output()
            .unwrap_or_else(|e| panic!("{python}: {e} (scripts/setup makes the venv)"))
    };
    let out = run(&ops, &["web-1", "exec", "echo lib-$((2+3)); exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "lib-5");
    let out = run(&ops, &["web-1", "exec", "rm -rf /nothing"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("stderr: gatehouse: permission denied"),
        "{}",
        stdout(&out)
    );
    let local = g.h.dir.path().join("lib-up.txt");
    std::fs::write(&local, "from paramiko\n").unwrap();
    let remote = g.sshd.dir.path().join("lib-remote.txt");
    let back = g.h.dir.path().join("lib-back.txt");
    let out = run(
        &ops,
        &[
            "web-1",
            "sftp",
            local.to_str().unwrap(),
            remote.to_str().unwrap(),
            back.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from paramiko\n");
    // One connection may hold 64 channels at once; the next is refused, saying why.
    let out = run(&ops, &["web-1", "channels", "70"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("opened 64"), "{said}");
    // (paramiko shows the code's name; OpenSSH prints the gateway's reason too.)
    assert!(said.contains("Resource shortage"), "{said}");
    // A bad token fails authentication.
    let out = run("nope", &["web-1", "exec", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("AuthenticationException"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn certificates_and_registered_keys_log_in_without_a_password() {
    let (g, ops, _sre) = gateway();
    let dir = g.h.dir.path().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, &ops).unwrap();
    // `gatehouse ssh login` exchanges the token for a certificate beside a fresh key.
    let key = dir.join("id_gatehouse");
    let out = g.h.cli(&[
        "ssh",
        "login",
        "--token-file",
        token_file.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let issued: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(issued["principal"], "deploy-job", "{issued}");
    assert!(std::fs::read_to_string(dir.join("id_gatehouse-cert.pub"))
        .unwrap()
        .starts_with("ssh-ed25519-cert-v01@openssh.com "));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
        0
    );
    let out = g
        .ssh_key_cmd(&key, "web-1", &["echo certified"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "certified");
    // The login says how the caller proved itself.
    let events = g.h.evidence_events();
    assert!(events.iter().any(|e| e["kind"] == "ssh_certificate_issued"
        && e["payload"]["identity"]["subject"] == "deploy-job"));
    let login = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "auth_success" && e["payload"]["protocol"] == "ssh")
        .unwrap();
    assert!(login.to_string().contains("certificate serial"), "{login}");

    // A certificate from another CA is refused, and the refusal is logged.
    let rogue_ca = dir.join("rogue_ca");
    common::ssh::keygen(&rogue_ca);
    let victim = dir.join("victim");
    common::ssh::keygen(&victim);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&rogue_ca)
        .args(["-I", "deploy-job", "-n", "deploy-job", "-V", "+5m"])
        .arg(victim.with_extension("pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = g
        .ssh_key_cmd(&victim, "web-1", &["echo no"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(stdout(&out).is_empty());
    assert!(g
        .h
        .evidence_events()
        .iter()
        .any(|e| e["kind"] == "auth_failure"
            && e["payload"]["reason"]
                .as_str()
                .unwrap_or("")
                .contains("not signed by this gateway's SSH CA")));

    // A certificate stops working when the token it came from is revoked.
    let temp = g.h.token("short-job", &["ops"], "1h");
    std::fs::write(&token_file, &temp).unwrap();
    let key2 = dir.join("id_short");
    let out = g.h.cli(&[
        "ssh",
        "login",
        "--token-file",
        token_file.to_str().unwrap(),
        "--key",
        key2.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = g.ssh_key_cmd(&key2, "web-1", &["true"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = temp
        .trim_start_matches("gatehouse_st_")
        .split('_')
        .next()
        .unwrap();
    let out = g.h.cli(&["token", "revoke", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = g.ssh_key_cmd(&key2, "web-1", &["true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));

    // A key registered to a service identity logs in as it, until revoked.
    let registered = dir.join("backup_key");
    common::ssh::keygen(&registered);
    let out = g.h.cli(&[
        "ssh",
        "register-key",
        "--identity",
        "backup-job",
        "--group",
        "ops",
        "--key",
        registered.with_extension("pub").to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        record["ssh_key"].as_str().unwrap().starts_with("SHA256:"),
        "{record}"
    );
    let out = g
        .ssh_key_cmd(&registered, "web-1", &["echo as-backup"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "as-backup");
    let listed = g.h.cli_ok(&["token", "list"]);
    assert!(
        listed.contains("backup-job") && listed.contains("ssh key SHA256:"),
        "{listed}"
    );
    let out =
        g.h.cli(&["token", "revoke", record["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = g
        .ssh_key_cmd(&registered, "web-1", &["true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(g
        .h
        .evidence_events()
        .iter()
        .any(|e| e["kind"] == "auth_failure"
            && e["payload"]["reason"]
                .as_str()
                .unwrap_or("")
                .contains("was revoked")));
    // A key registered to no one is simply not accepted.
    let stranger = dir.join("stranger");
    common::ssh::keygen(&stranger);
    let out = g
        .ssh_key_cmd(&stranger, "web-1", &["true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
}

/// Waits for a forwarded port to listen, then sends a line through it to
/// the echo server behind it and reads the line back.
fn echo_through(port: u16, flag: &str) {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ssh {flag} did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let line = format!("over {flag}\n");
    conn.write_all(line.as_bytes()).unwrap();
    let mut got = vec![0u8; line.len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(got, line.as_bytes(), "ssh {flag}");
}
