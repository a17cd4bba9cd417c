//! OCSF export validated against the OCSF 1.3.0 schema of the classes it
//! uses (tests/ocsf/ocsf-1.3.0-gatehouse.schema.json, a JSON Schema written
//! from the OCSF class and object definitions), with Python's `jsonschema`
//! from the MCP test venv: logins accepted and refused, sessions, allowed,
//! refused and approved statements, REST requests, tokens and policy loads
//! through a real gateway, exported by `gatehouse audit export --format ocsf`.

mod common;

use common::upstream::{curl, Upstream};
use common::{stderr, stdout, Harness, Options};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const POLICY: &str = r#"
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("work") permit (principal in Gatehouse::Group::"ci", action, resource) unless { action == Gatehouse::Action::"connect" };
@id("no-delete") forbid (principal, action == Gatehouse::Action::"delete", resource);
@id("truncate-needs-approval") @approval("dba") forbid (principal, action == Gatehouse::Action::"truncate", resource);
"#;

const CONFIG: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]

[[connection]]
name = "billing"
kind = "http"
url = "http://127.0.0.1:{upstream_port}"
"#;

fn venv_python() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup (or `python3 -m venv crates/gatehouse/tests/mcp/.venv && \
         crates/gatehouse/tests/mcp/.venv/bin/pip install -r crates/gatehouse/tests/mcp/requirements.txt`)",
        p.display()
    );
    p
}

fn validate(events: &Path) -> (bool, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocsf");
    let out = Command::new(venv_python())
        .arg(dir.join("validate.py"))
        .arg(dir.join("ocsf-1.3.0-gatehouse.schema.json"))
        .arg(events)
        .output()
        .unwrap();
    (out.status.success(), stdout(&out) + &stderr(&out))
}

#[test]
fn the_ocsf_export_is_valid_ocsf_1_3_0() {
    let upstream = Upstream::start(&[]);
    let mut h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: CONFIG,
        vars: vec![("{upstream_port}", upstream.port.to_string())],
        ..Options::default()
    });
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let dana = h.token("dana", &["dba-leads"], "1h");
    for sql in ["CREATE TABLE t (id int)", "SELECT count(*) FROM t"] {
        let out = h.psql(&ci, "app-db", sql);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
    }
    assert!(!h.psql(&ci, "app-db", "DELETE FROM t").status.success());
    assert!(!h
        .psql("gatehouse_st_0000_wrong", "app-db", "SELECT 1")
        .status
        .success());
    let out = h.psql(&ci, "app-db", "TRUNCATE t");
    let err = stderr(&out);
    let at = err.find("request ").unwrap() + 8;
    let request = err[at..at + 36].to_string();
    h.cli_ok(&["approvals", "approve", &request, "--token", &dana]);
    assert!(h.psql(&ci, "app-db", "TRUNCATE t").status.success());
    let ca = h.dir.path().join("ca.pem");
    let url = format!("https://127.0.0.1:{}/billing/invoices", h.http_port);
    let auth = format!("Authorization: Bearer {ci}");
    let got = curl(&ca, &["-H", &auth, &url]);
    assert_eq!(got.header("x-upstream"), Some("yes"), "{got:?}");
    h.stop_gateway();

    let file = h.dir.path().join("events.ocsf.jsonl");
    h.cli_ok(&[
        "audit",
        "export",
        "--format",
        "ocsf",
        "--out",
        file.to_str().unwrap(),
    ]);
    let (ok, report) = validate(&file);
    assert!(ok, "{report}");
    for class in ["0=", "3002=", "3003=", "6003=", "6005="] {
        assert!(
            report.contains(class),
            "no event of class {class}: {report}"
        );
    }

    // The validator catches what it is there for: an empty IP, a made-up
    // field, a missing required object.
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"class_uid\":6005"))
        .unwrap();
    for (name, change) in [
        (
            "empty-ip",
            &(|e: &mut Value| e["src_endpoint"]["ip"] = "".into()) as &dyn Fn(&mut Value),
        ),
        ("made-up", &|e: &mut Value| e["gatehouse"] = "x".into()),
        ("no-actor", &|e: &mut Value| {
            e.as_object_mut().unwrap().remove("actor");
        }),
    ] {
        let mut e: Value = line.parse().unwrap();
        change(&mut e);
        let bad = h.dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&bad, e.to_string() + "\n").unwrap();
        let (ok, report) = validate(&bad);
        assert!(!ok, "{name} passed: {report}");
        assert!(report.contains("1 violation"), "{name}: {report}");
    }
}
