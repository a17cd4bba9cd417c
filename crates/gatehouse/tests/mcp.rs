//! An AI agent's tool calls through the gateway, end to end: a real MCP
//! server and a real MCP client, both from the official Python SDK
//! (`tests/mcp/`, installed by .ci/run into `tests/mcp/.venv`), with the
//! real `gatehouse` binary between them over TLS. Both protocol eras the
//! SDK speaks are driven: the stateless 2026-07-28 revision and the
//! 2025-11-25 handshake with its SSE answers and session stream.

mod common;

use common::{Harness, Options};
use gatehouse::pgcluster::free_port;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
@id("connect")
permit (principal, action == Gatehouse::Action::"connect", resource);

@id("agents-list")
permit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"mcp:read",
        resource == Gatehouse::Connection::"tools");

@id("agents-tools")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"mcp:tools/call",
        resource == Gatehouse::Connection::"tools")
when { ["query_db", "delete_user"].contains(context.tool) };

@id("no-drops")
forbid (principal, action == Gatehouse::Action::"mcp:tools/call", resource)
when { context.tool == "query_db" && context.arguments.contains("sql=drop table users") };

@id("agents-customers")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"mcp:resources/read",
        resource == Gatehouse::Connection::"tools")
when { context.uri == "customers://list" };

@id("agents-prompts")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"mcp:prompts/get",
        resource == Gatehouse::Connection::"tools")
when { context.prompt == "summarize" };

@id("deletes-need-approval")
@approval("ops")
forbid (principal, action == Gatehouse::Action::"mcp:tools/call", resource)
when { context.tool == "delete_user" };
"#;

const CONFIG: &str = r#"
[[approval.route]]
name = "ops"
approvers = ["ops"]
mode = "request"

[[connection]]
name = "tools"
kind = "mcp"
url = "http://127.0.0.1:{mcp_port}/mcp"

[connection.masking]
detectors = ["pii"]
"#;

fn venv_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run .ci/run, or python3 -m venv crates/gatehouse/tests/mcp/.venv && \
         crates/gatehouse/tests/mcp/.venv/bin/pip install -r crates/gatehouse/tests/mcp/requirements.txt",
        p.display()
    );
    p
}

/// The MCP server, stopped when dropped.
struct McpServer {
    port: u16,
    child: Child,
}

impl McpServer {
    fn start() -> Self {
        let port = free_port().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/server.py");
        let mut child = Command::new(venv_python())
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the MCP server exited with {status}");
            }
            assert!(Instant::now() < deadline, "the MCP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the SDK client through the gateway; returns what it printed.
fn agent(h: &Harness, token: &str, mode: &str, calls: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let out = Command::new(venv_python())
        .arg(script)
        .arg(format!("https://localhost:{}/tools", h.http_port))
        .arg(token)
        .arg(h.dir.path().join("ca.pem"))
        .arg(mode)
        .arg(calls.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the MCP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn error_of(v: &Value) -> (i64, String) {
    let e = &v["MCPError"];
    assert!(e.is_object(), "not an error: {v}");
    (
        e["code"].as_i64().unwrap(),
        e["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn an_agent_calls_mcp_tools_through_the_gateway_in_both_protocol_eras() {
    let server = McpServer::start();
    let h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: CONFIG,
        vars: vec![("{mcp_port}", server.port.to_string())],
        ..Options::default()
    });
    let agent_token = h.token("agent-9", &["agents"], "1h");
    let ops = h.token("lead", &["ops"], "1h");
    let calls = json!([
        ["query_db", {"sql": "select * from users"}],
        ["query_db", {"sql": "drop table users"}],
        ["delete_user", {"id": 7}],
        ["refund", {"order": 1, "amount": 5}],
        ["read", "customers://list"],
        ["read", "secrets://keys"],
    ]);
    let mut request_ids = Vec::new();
    for (mode, era) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let got = agent(&h, &agent_token, mode, calls.clone());
        assert_eq!(got["protocol_version"], era, "{got}");
        // tools/list shows only what the agent may call.
        assert_eq!(got["tools"], json!(["query_db", "delete_user"]), "{mode}");
        // Resources and prompts are listed only as far as they could be used.
        assert_eq!(got["resources"], json!(["customers://list"]), "{mode}");
        assert_eq!(got["prompts"], json!(["summarize"]), "{mode}");
        let r = &got["results"];
        // A permitted call: its result masked in text and structured content.
        let text = r[0]["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("[masked:email]") && !text.contains("ada@example.com"),
            "{text}"
        );
        assert!(!text.contains("4111 1111 1111 1111"), "{text}");
        let structured = r[0]["structuredContent"]["result"].as_str().unwrap();
        assert!(!structured.contains("ada@example.com"), "{structured}");
        // A forbid on an argument names its policy.
        let (code, msg) = error_of(&r[1]);
        assert_eq!(code, -32003);
        assert!(msg.contains("forbidden by policy no-drops"), "{msg}");
        // A risky call waits for a human (request mode): the request id.
        let (code, msg) = error_of(&r[2]);
        assert_eq!(code, -32003);
        assert!(msg.contains("approval required"), "{msg}");
        request_ids.push(
            r[2]["MCPError"]["data"]["request_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        // Not permitted: a tool and a resource.
        assert!(error_of(&r[3]).1.contains("tool refund"), "{}", r[3]);
        assert_eq!(
            r[4]["contents"][0]["text"], "[masked:email],[masked:email]",
            "{}",
            r[4]
        );
        assert!(
            error_of(&r[5]).1.contains("resource secrets://keys"),
            "{}",
            r[5]
        );
    }
    // The same call is the same request in both eras (the id is not bound).
    assert_eq!(request_ids[0], request_ids[1]);

    // Approved: exactly that call runs once.
    let out = h.cli(&["approvals", "approve", &request_ids[0], "--token", &ops]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let got = agent(
        &h,
        &agent_token,
        "auto",
        json!([["delete_user", {"id": 8}], ["delete_user", {"id": 7}], ["delete_user", {"id": 7}]]),
    );
    let r = &got["results"];
    assert!(
        error_of(&r[0]).1.contains("approval required"),
        "other arguments: {}",
        r[0]
    );
    assert_eq!(r[1]["content"][0]["text"], "deleted user 7", "{}", r[1]);
    assert!(
        error_of(&r[2]).1.contains("approval required"),
        "used once: {}",
        r[2]
    );

    // A batch is decided message by message: one refused message refuses it
    // before anything is forwarded; an allowed one goes to the server (this
    // SDK server refuses batches itself, as the current protocol does).
    let url = format!("https://localhost:{}/tools", h.http_port);
    let ca = h.dir.path().join("ca.pem");
    let post = |body: &str| {
        common::upstream::curl(
            &ca,
            &[
                "-H",
                &format!("Authorization: Bearer {agent_token}"),
                "-H",
                "content-type: application/json",
                "-H",
                "accept: application/json, text/event-stream",
                "-d",
                body,
                &url,
            ],
        )
    };
    let refused = post(
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"refund","arguments":{"order":1}}}]"#,
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    let msg = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("message 2 of the batch") && msg.contains("tool refund"),
        "{msg}"
    );
    let passed = post(r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#);
    assert_ne!(passed.json()["error"]["code"], -32003, "{passed:?}");
    // Keys a server could read as other keys are refused; so is a query.
    let variant = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}"#);
    assert_eq!(variant.status, 400, "{variant:?}");
    let q = common::upstream::curl(
        &ca,
        &[
            "-H",
            &format!("Authorization: Bearer {agent_token}"),
            "-d",
            "{}",
            &format!("{url}?x=1"),
        ],
    );
    assert_eq!(q.status, 400, "{q:?}");
    // A session id belongs to the identity it was issued to.
    let init = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    let sid = init
        .header("mcp-session-id")
        .unwrap_or_else(|| panic!("no session id: {init:?}"))
        .to_string();
    let stolen = common::upstream::curl(
        &ca,
        &[
            "-H",
            &format!("Authorization: Bearer {ops}"),
            "-H",
            &format!("mcp-session-id: {sid}"),
            "-H",
            "accept: application/json, text/event-stream",
            "-d",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            &url,
        ],
    );
    assert_eq!(stolen.status, 404, "{stolen:?}");
    assert!(
        stolen.body.contains("not opened by this identity"),
        "{stolen:?}"
    );
    let junk = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#);
    assert_eq!(junk.status, 400, "{junk:?}");
    assert!(junk.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("params.name"));
    let anon = common::upstream::curl(&ca, &["-d", "{}", &url]);
    assert_eq!(anon.status, 401);
    assert!(anon.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no bearer token"));

    // Recorded with protocol mcp, the text naming the call; in the evidence log.
    let list: Vec<Value> =
        serde_json::from_str(&h.cli_ok(&["sessions", "list", "--identity", "agent-9", "--json"]))
            .unwrap();
    assert!(list.iter().all(|s| s["protocol"] == "mcp"), "{list:?}");
    let export = h.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(
        export.contains(r#"tools/call delete_user {\"id\":7}"#),
        "no record of the call"
    );
    assert!(!export.contains(&agent_token));
    assert!(h.cli_ok(&["audit", "verify"]).contains("OK"));
}
