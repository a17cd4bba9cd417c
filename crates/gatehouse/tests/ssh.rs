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
