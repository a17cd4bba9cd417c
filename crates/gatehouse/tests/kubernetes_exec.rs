//! kubectl exec, attach, cp and port-forward through the gateway, end to
//! end: decided by Cedar on the command, relayed over SPDY/3.1 (kubectl
//! 1.27, and 1.33 with WebSockets turned off) and WebSocket (1.33), and
//! recorded as asciicast v2 with the exit status, in the evidence log by
//! hash and replayable with `gatehouse sessions replay`. The API server is
//! the test tree's stand-in (`tests/kube-apiserver/server.py`), which runs
//! the commands as real processes.

mod common;

use common::kube::Cluster;
use common::{stderr, stdout};
use std::io::{Read, Write};
use std::process::Stdio;

/// kubectl's flavours of remote command: (minor, WebSockets on).
const FLAVOURS: &[(u32, bool)] = &[(27, false), (33, true), (33, false), (35, true)];

fn exec(
    c: &Cluster,
    minor: u32,
    websockets: bool,
    args: &[&str],
    input: Option<&[u8]>,
) -> std::process::Output {
    let mut cmd = c.kubectl_cmd(minor, &c.ci, args);
    cmd.env(
        "KUBECTL_REMOTE_COMMAND_WEBSOCKETS",
        if websockets { "true" } else { "false" },
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The newest result event of an upgraded stream.
fn stream_results(c: &Cluster) -> Vec<serde_json::Value> {
    c.h.evidence_events()
        .into_iter()
        .filter(|e| e["kind"] == "statement_result" && !e["payload"]["stream"].is_null())
        .collect()
}

/// The stream results once there are `n` (a result is written when its
/// stream ends, riding along with the next write or within 200 ms).
fn stream_results_when(c: &Cluster, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let results = stream_results(c);
        if results.len() >= n || std::time::Instant::now() > deadline {
            assert_eq!(results.len(), n, "{results:#?}");
            return results;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn exec_is_decided_relayed_and_recorded() {
    let c = Cluster::start();
    for &(minor, ws) in FLAVOURS {
        let what = format!("kubectl 1.{minor} (websockets {ws})");
        // Output on both streams and the command's own exit status.
        let out = exec(
            &c,
            minor,
            ws,
            &[
                "exec",
                "web-1",
                "-n",
                "prod",
                "--",
                "sh",
                "-c",
                "echo out-$0; echo err-$0 >&2; exit 3",
                &minor.to_string(),
            ],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains(&format!("out-{minor}")),
            "{what}: {}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains(&format!("err-{minor}")),
            "{what}: {}",
            stderr(&out)
        );

        // Input goes in.
        let out = exec(
            &c,
            minor,
            ws,
            &["exec", "-i", "web-1", "-n", "prod", "--", "cat"],
            Some(b"typed in\n"),
        );
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert_eq!(stdout(&out), "typed in", "{what}");

        // The policy reads the command.
        let out = exec(
            &c,
            minor,
            ws,
            &["exec", "web-1", "-n", "prod", "--", "rm", "-rf", "/data"],
            None,
        );
        assert!(!out.status.success(), "{what}: rm ran");
        assert!(
            stderr(&out).contains("Forbidden") || stderr(&out).contains("permission denied"),
            "{what}: {}",
            stderr(&out)
        );
    }

    // A refused WebSocket attempt makes kubectl 1.30+ try SPDY: both are
    // decided, and both refused.
    let denied: Vec<String> =
        c.h.evidence_events()
            .into_iter()
            .filter(|e| e["kind"] == "statement" && e["payload"]["decision"]["decision"] == "deny")
            .filter_map(|e| e["payload"]["text"].as_str().map(str::to_string))
            .filter(|t| t.contains("command=rm"))
            .collect();
    assert!(denied.iter().any(|t| t.starts_with("GET ")), "{denied:?}");
    assert!(denied.iter().any(|t| t.starts_with("POST ")), "{denied:?}");

    // Every exec is in the evidence log with its recording's hash and exit code.
    let results = stream_results_when(&c, 2 * FLAVOURS.len());
    let failing: Vec<&serde_json::Value> = results
        .iter()
        .filter(|e| e["payload"]["stream"]["exit_code"] == 3)
        .collect();
    assert_eq!(failing.len(), FLAVOURS.len(), "{results:#?}");
    let protocols: Vec<&str> = failing
        .iter()
        .map(|e| e["payload"]["stream"]["protocol"].as_str().unwrap_or(""))
        .collect();
    assert!(
        protocols
            .iter()
            .any(|p| p.starts_with("v5.channel") || p.starts_with("v4.channel")),
        "{protocols:?}"
    );
    for e in &failing {
        let s = &e["payload"]["stream"];
        assert_eq!(
            s["recording_sha256"].as_str().map(str::len),
            Some(64),
            "{e}"
        );
        // Replayed from the gateway, checked against that hash.
        let session = e["payload"]["session"].as_str().unwrap();
        let seq = e["payload"]["seq"].to_string();
        let out = c.h.cli(&["sessions", "replay", session, &seq]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = stdout(&out);
        assert!(shown.contains("out-") && shown.contains("err-"), "{shown}");
        assert!(stderr(&out).contains("exit 3"), "{}", stderr(&out));
    }

    // A changed recording is refused, naming both hashes.
    let e = failing[0];
    let file =
        c.h.data_dir
            .join("recordings")
            .join(e["payload"]["stream"]["recording"].as_str().unwrap());
    let mut text = std::fs::read_to_string(&file).unwrap();
    text = text.replace("out-", "OUT-");
    std::fs::write(&file, text).unwrap();
    let out = c.h.cli(&[
        "sessions",
        "replay",
        e["payload"]["session"].as_str().unwrap(),
        &e["payload"]["seq"].to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has changed since it was written"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_cp_copies_both_ways() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("blob.bin");
    let blob: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &blob).unwrap();
    for &(minor, ws) in FLAVOURS {
        let what = format!("kubectl 1.{minor} (websockets {ws})");
        let name = format!("blob-{minor}-{ws}.bin");
        let dest = format!("prod/web-1:tmp/{name}");
        let out = exec(&c, minor, ws, &["cp", src.to_str().unwrap(), &dest], None);
        assert!(
            out.status.success(),
            "{what} cp in: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let back = dir.path().join(format!("back-{minor}-{ws}.bin"));
        let out = exec(&c, minor, ws, &["cp", &dest, back.to_str().unwrap()], None);
        assert!(
            out.status.success(),
            "{what} cp out: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            std::fs::read(&back).unwrap() == blob,
            "{what}: the copy differs"
        );
    }
}

/// `kubectl port-forward pod/web-1 <local>:<port>` as the CI job, and a
/// connection to its local end once it listens.
fn forward(c: &Cluster, minor: u32, port: u16) -> (std::process::Child, std::net::TcpStream) {
    let local = gatehouse::pgcluster::free_port().unwrap();
    let pf = c
        .kubectl_cmd(
            minor,
            &c.ci,
            &[
                "port-forward",
                "pod/web-1",
                "-n",
                "prod",
                &format!("{local}:{port}"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", local)) {
            Ok(s) => break s,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            Err(e) => panic!("kubectl 1.{minor} port-forward never listened: {e}"),
        }
    };
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    (pf, conn)
}

#[test]
fn port_forward_carries_bytes_both_ways() {
    let c = Cluster::start();
    // What the "pod" forwards to: an echo server on this host's loopback.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    for minor in [27, 33, 35] {
        let (mut pf, mut conn) = forward(&c, minor, echo_port);
        let msg = format!("ping through kubectl 1.{minor}\n");
        conn.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len()];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), msg);
        drop(conn);
        let _ = pf.kill();
        let _ = pf.wait();
    }
    // A port the policy refuses: the forwarded connection is cut as it
    // opens, and the result says why.
    for minor in [27, 33] {
        let (mut pf, mut conn) = forward(&c, minor, 9);
        let _ = conn.write_all(b"anyone there?\n");
        let mut got = [0u8; 16];
        let n = conn.read(&mut got).unwrap_or(0);
        assert_eq!(
            n, 0,
            "kubectl 1.{minor}: bytes came back through a refused port"
        );
        drop(conn);
        let _ = pf.kill();
        let _ = pf.wait();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let refused: Vec<serde_json::Value> =
        c.h.evidence_events()
            .into_iter()
            .filter(|e| {
                e["kind"] == "statement_result"
                    && e["payload"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("port 9 refused")
            })
            .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused[0]["payload"]["message"]
        .as_str()
        .unwrap()
        .contains("no-discard-port"));

    // Recorded as port-forwards of that port, without their content.
    let port = echo_port.to_string();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let results = stream_results(&c);
    let forwards: Vec<&serde_json::Value> = results
        .iter()
        .filter(|e| !e["payload"]["stream"]["forwarded"].is_null())
        .collect();
    assert!(!forwards.is_empty(), "{results:#?}");
    assert!(
        forwards
            .iter()
            .all(|e| e["payload"]["stream"]["forwarded"][0][0] == port.as_str()),
        "{forwards:#?}"
    );
    assert!(
        !results
            .iter()
            .any(|e| e.to_string().contains("ping through")),
        "port-forward content was recorded"
    );
}

#[test]
fn a_terminal_session_and_attach_are_recorded() {
    let c = Cluster::start();
    for &(minor, ws) in FLAVOURS {
        let what = format!("kubectl 1.{minor} (websockets {ws})");
        // A terminal: kubectl -t needs one of its own, which script(1) gives it.
        let kubectl = common::kube::kubectl(minor);
        let line = format!(
            "stty cols 100 rows 30; {} --request-timeout 30s exec -it web-1 -n prod -- sh -c 'stty size; tty; echo done-{minor}'",
            kubectl.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", c.h.dir.path())
            .env("KUBECONFIG", &c.kubeconfig)
            .env("GATEHOUSE_TOKEN", &c.ci)
            .env(
                "KUBECTL_REMOTE_COMMAND_WEBSOCKETS",
                if ws { "true" } else { "false" },
            )
            .stdin(Stdio::piped())
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{what}: {shown}{}", stderr(&out));
        assert!(
            shown.contains("30 100") && shown.contains("/dev/pts/"),
            "{what}: {shown}"
        );

        // attach: what goes in comes back from the pod's main process.
        let out = exec(
            &c,
            minor,
            ws,
            &["attach", "-i", "web-1", "-n", "prod"],
            Some(format!("attached-{minor}\n").as_bytes()),
        );
        assert!(
            stdout(&out).contains(&format!("attached-{minor}")),
            "{what}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // The terminal's size and output are in the recordings.
    let results = stream_results(&c);
    let ttys: Vec<&serde_json::Value> = results
        .iter()
        .filter(|e| {
            e["payload"]["stream"]["stdout_bytes"].as_u64().unwrap_or(0) > 0
                && e["payload"]["stream"]["stderr_bytes"] == 0
        })
        .collect();
    assert!(!ttys.is_empty(), "{results:#?}");
    let mut sized = 0;
    for e in ttys {
        let file =
            c.h.data_dir
                .join("recordings")
                .join(e["payload"]["stream"]["recording"].as_str().unwrap());
        let cast = std::fs::read_to_string(file).unwrap();
        let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
        if cast.contains("done-") {
            assert_eq!(
                (header["width"].as_u64(), header["height"].as_u64()),
                (Some(100), Some(30)),
                "{cast}"
            );
            assert!(cast.contains(r#","r","100x30"]"#), "{cast}");
            sized += 1;
        }
    }
    assert_eq!(sized, FLAVOURS.len());
}

#[test]
fn a_risky_exec_waits_for_an_approver_and_its_recording_is_masked() {
    let c = Cluster::start();
    for &(minor, ws) in FLAVOURS {
        let what = format!("kubectl 1.{minor} (websockets {ws})");
        let marker = format!("risky-{minor}-{ws}");
        let mut cmd = c.kubectl_cmd(
            minor,
            &c.ci,
            &[
                "exec",
                "web-1",
                "-n",
                "prod",
                "--",
                "echo",
                "--risky",
                &marker,
                "alice@example.com",
            ],
        );
        let child = cmd
            .env(
                "KUBECTL_REMOTE_COMMAND_WEBSOCKETS",
                if ws { "true" } else { "false" },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Held: the request waits in the approvers' list until one approves.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let id = loop {
            let out = c.h.cli(&["approvals", "list", "--pending", "--json"]);
            let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            if let Some(r) = list.as_array().and_then(|a| {
                a.iter()
                    .find(|r| r["text"].as_str().unwrap_or("").contains(&marker))
            }) {
                break r["id"].as_str().unwrap().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: no pending request"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let out = c.h.cli(&["approvals", "approve", &id, "--token", &c.sre]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert!(stdout(&out).contains(&marker), "{what}: {}", stdout(&out));
    }
    // The recordings hold the output, with the address masked.
    let results = stream_results_when(&c, FLAVOURS.len());
    for e in &results {
        let file =
            c.h.data_dir
                .join("recordings")
                .join(e["payload"]["stream"]["recording"].as_str().unwrap());
        let cast = std::fs::read_to_string(file).unwrap();
        assert!(
            cast.contains("risky-") && cast.contains("[masked:email]"),
            "{cast}"
        );
        assert!(!cast.contains("alice@example.com"), "{cast}");
    }
}
