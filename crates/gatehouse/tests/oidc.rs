//! Workload identity end to end: a real OIDC server (the npm package
//! oauth2-mock-server, installed by .ci/run into tests/oidc-issuer) issues
//! RS256 tokens through client credentials; psql connects through the real
//! gateway with nothing but such a token; policies refer to its claims;
//! approvers decide with theirs; a key rotation at the server is picked up.

mod common;

use common::oidc::Issuer;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const POLICY: &str = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource);
@id("read-from-app-repo") permit (principal, action == Gatehouse::Action::"select", resource)
  when { principal.hasTag("repository") && principal.getTag("repository") == "octo-org/app" };
@id("write-from-main") permit (principal, action in [Gatehouse::Action::"insert", Gatehouse::Action::"delete"], resource)
  when { principal.hasTag("ref") && principal.getTag("ref") == "refs/heads/main" };
@id("unbounded-delete") @approval("dba") forbid (principal, action == Gatehouse::Action::"delete", resource)
  when { context.has_where == false };
"#;

fn config(issuer: &Issuer, dead_port: u16) -> &'static str {
    let ca_file = match &issuer.ca {
        Some((_, f)) => format!("ca_file = {:?}", f.display().to_string()),
        None => String::new(),
    };
    let issuer = &issuer.url;
    Box::leak(
        format!(
            r#"
[[identity.oidc]]
name = "mock"
issuer = "{issuer}"
audience = "gatehouse"
groups = ["ci"]
claims = ["repository", "ref"]
min_refresh_interval = "1s"
{ca_file}

[[identity.oidc]]
name = "down"
issuer = "http://127.0.0.1:{dead_port}"
audience = "gatehouse"

[[approval.route]]
name = "dba"
approvers = ["mock/dba"]
mode = "request"
"#
        )
        .into_boxed_str(),
    )
}

/// A gateway trusting `issuer` (as "mock") and an issuer "down" on a port
/// where nothing listens; returns that port too.
fn gateway(issuer: &Issuer) -> (Harness, u16) {
    let dead_port = gatehouse::pgcluster::free_port().unwrap();
    let h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: config(issuer, dead_port),
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            "CREATE TABLE customers (id int, name text); GRANT ALL ON customers TO app_owner; \
             INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) g",
        )
        .unwrap();
    (h, dead_port)
}

fn github_like(r#ref: &str) -> Value {
    serde_json::json!({"repository": "octo-org/app", "ref": r#ref, "jti": "run-42"})
}

fn events(h: &Harness) -> Vec<Value> {
    h.cli_ok(&["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_workload_connects_with_its_oidc_token_and_policies_see_its_claims() {
    let issuer = Issuer::start();
    let (h, _) = gateway(&issuer);
    let main = issuer.token("ci-job", "gatehouse", github_like("refs/heads/main"));

    // psql with nothing but the token as its password.
    let out = h.psql(&main, "app-db", "SELECT count(*) FROM customers");
    assert_eq!(stdout(&out), "5", "{}", stderr(&out));
    let out = h.psql(&main, "app-db", "INSERT INTO customers VALUES (6, 'c6')");
    assert!(out.status.success(), "{}", stderr(&out));

    // The same job on a feature branch may read but not write.
    let feature = issuer.token("ci-job", "gatehouse", github_like("refs/heads/feature"));
    let out = h.psql(&feature, "app-db", "SELECT 1");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&feature, "app-db", "INSERT INTO customers VALUES (7, 'c7')");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no policy permits mock/ci-job (insert on public.customers)"),
        "{}",
        stderr(&out)
    );

    // Another repository's token connects (group ci) but reads nothing.
    let other = issuer.token(
        "ci-job",
        "gatehouse",
        serde_json::json!({"repository": "octo-org/other", "ref": "refs/heads/main"}),
    );
    let out = h.psql(&other, "app-db", "SELECT count(*) FROM customers");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no policy permits mock/ci-job (select on public.customers)"),
        "{}",
        stderr(&out)
    );

    // The login event and the session record carry issuer, subject, client, groups.
    let evs = events(&h);
    let login = evs
        .iter()
        .find(|e| e["kind"] == "auth_success")
        .expect("a login event");
    let id = &login["payload"]["identity"];
    assert_eq!(id["subject"], "mock/ci-job");
    assert_eq!(id["groups"][0], "ci");
    assert_eq!(id["source"]["kind"], "oidc");
    assert_eq!(id["source"]["issuer"], "mock");
    assert_eq!(id["source"]["iss"], issuer.url.as_str());
    assert_eq!(id["source"]["client_id"], "ci-job");
    assert_eq!(id["source"]["token_id"], "run-42");
    assert_eq!(id["source"]["claims"]["repository"], "octo-org/app");
    let all = serde_json::to_string(&evs).unwrap();
    assert!(!all.contains(&main), "a token reached the evidence log");
    let list = h.cli_ok(&["sessions", "list"]);
    let sid = list
        .lines()
        .find(|l| l.contains("mock/ci-job"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no session of mock/ci-job: {list}"));
    let replay = h.cli_ok(&["sessions", "show", sid]);
    assert!(
        replay.contains("OIDC issuer mock") && replay.contains("client ci-job"),
        "{replay}"
    );

    // `identity inspect` (token on stdin) explains the same identity and where it may connect.
    let mut inspect = Command::new(BIN)
        .args(["--config"])
        .arg(&h.config)
        .args(["identity", "inspect"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    inspect
        .stdin
        .take()
        .unwrap()
        .write_all(main.as_bytes())
        .unwrap();
    let out = inspect.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("subject     mock/ci-job"), "{text}");
    assert!(
        text.contains("repository") && text.contains("octo-org/app"),
        "{text}"
    );
    assert!(
        text.contains("connect app-db") && text.contains("allowed by ci-connect"),
        "{text}"
    );
    let out = h.cli(&[
        "identity",
        "inspect",
        &issuer.token("x", "elsewhere", Value::Null),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("audience mismatch: expected gatehouse"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn approvers_decide_with_their_own_oidc_token() {
    // This issuer serves discovery and keys over HTTPS, as real ones do.
    let issuer = Issuer::start_https();
    assert!(issuer.url.starts_with("https://"), "{}", issuer.url);
    let (h, _) = gateway(&issuer);
    let job = issuer.token(
        "ci-job",
        "gatehouse",
        serde_json::json!({"repository": "octo-org/app", "ref": "refs/heads/main",
            "act": {"sub": "release-agent"}}),
    );
    let out = h.psql(&job, "app-db", "DELETE FROM customers");
    assert!(!out.status.success());
    let err = stderr(&out);
    let at = err.find("request ").expect("request id") + 8;
    let id = err[at..at + 36].to_string();

    // A token from the job itself (not in mock/dba) cannot approve.
    let out = h.cli(&["approvals", "approve", &id, "--token", &job]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("403") || stderr(&out).contains("not an approver"),
        "{}",
        stderr(&out)
    );
    let dba = issuer.token("alice", "gatehouse", serde_json::json!({"groups": ["dba"]}));
    let shown = h.cli_ok(&["approvals", "show", &id, "--json", "--token", &dba]);
    let req: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(req["requester"]["subject"], "mock/ci-job");
    assert_eq!(
        req["requester"]["source"]["delegation"]["actors"][0]["sub"],
        "release-agent"
    );
    h.cli_ok(&["approvals", "approve", &id, "--token", &dba]);
    let out = h.psql(&job, "app-db", "DELETE FROM customers");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        h.cluster
            .sql("app", "SELECT count(*) FROM customers")
            .unwrap(),
        "0"
    );
    let votes: Vec<Value> = events(&h)
        .into_iter()
        .filter(|e| e["kind"] == "approval_approved")
        .collect();
    assert_eq!(votes.len(), 1, "{votes:?}");
    assert_eq!(votes[0]["payload"]["approver"], "mock/alice");
}

#[test]
fn untrusted_wrong_or_rotated_tokens_are_refused_and_a_rotation_is_picked_up() {
    let mut issuer = Issuer::start();
    let stranger = Issuer::start();
    let (h, dead_port) = gateway(&issuer);
    let refused = |token: &str| {
        let out = h.psql(token, "app-db", "SELECT 1");
        assert!(!out.status.success(), "accepted");
        stderr(&out)
    };

    // A token from an issuer the gateway does not trust.
    let foreign = stranger.token("ci-job", "gatehouse", github_like("refs/heads/main"));
    let err = refused(&foreign);
    assert!(
        err.contains(&format!("issuer {} is not trusted", stranger.url)),
        "{err}"
    );
    // The right issuer, another audience.
    let err = refused(&issuer.token("ci-job", "api://other", Value::Null));
    assert!(
        err.contains("audience mismatch: expected gatehouse, token is for api://other"),
        "{err}"
    );
    assert!(
        err.contains("identity inspect"),
        "the hint names the debugging command: {err}"
    );
    // A configured issuer whose keys cannot be fetched: fail closed, saying why.
    let down_iss = format!("http://127.0.0.1:{dead_port}");
    let header = base64url(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
    let body = base64url(&format!(
        r#"{{"iss":"{down_iss}","aud":"gatehouse","sub":"x","exp":9999999999}}"#
    ));
    let err = refused(&format!("{header}.{body}.c2ln"));
    assert!(
        err.contains("issuer down") && err.contains("signing keys are unavailable"),
        "{err}"
    );

    // Rotation: the old key's token works until the server rotates, then a
    // new token (new kid) makes the gateway refetch and the old key is gone.
    let before = issuer.token("ci-job", "gatehouse", github_like("refs/heads/main"));
    assert!(h.psql(&before, "app-db", "SELECT 1").status.success());
    issuer.rotate();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let after = issuer.token("ci-job", "gatehouse", github_like("refs/heads/main"));
    let out = h.psql(&after, "app-db", "SELECT 1");
    assert!(
        out.status.success(),
        "rotation not picked up: {}",
        stderr(&out)
    );
    let err = refused(&before);
    assert!(
        err.contains("is not among the issuer's published keys"),
        "{err}"
    );

    // Every refusal is in the evidence log with its reason, never the token.
    let failures: Vec<String> = events(&h)
        .into_iter()
        .filter(|e| e["kind"] == "auth_failure")
        .map(|e| e["payload"]["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        failures.iter().any(|r| r.contains("is not trusted")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|r| r.contains("audience mismatch")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|r| r.contains("published keys")),
        "{failures:?}"
    );
    assert!(!failures.iter().any(|r| r.contains(&before)));

    // SIGTERM still stops a gateway whose key refresh runs forever.
    let mut h = h;
    h.stop_gateway();
}

fn base64url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn policy_authors_explain_and_test_claim_policies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let explain = |r#ref: &str| {
        let out = Command::new(BIN)
            .args(["policy", "explain", "--policy"])
            .arg(&policy)
            .args([
                "--identity",
                "mock/ci-job",
                "--group",
                "ci",
                "--claim",
                "repository=octo-org/app",
                "--claim",
                &format!("ref={ref}"),
                "--connection",
                "app-db",
                "--sql",
                "INSERT INTO customers VALUES (1, 'x')",
            ])
            .output()
            .unwrap();
        stdout(&out)
    };
    let main = explain("refs/heads/main");
    assert!(main.contains("decision    allow"), "{main}");
    assert!(main.contains("write-from-main"), "{main}");
    assert!(explain("refs/heads/dev").contains("decision    deny"));
    let out = Command::new(BIN)
        .args(["policy", "explain", "--claim", "no-equals-sign"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("write NAME=VALUE"),
        "{}",
        stderr(&out)
    );

    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"
[[case]]
name = "main may write"
identity = "mock/ci-job"
groups = ["ci"]
claims = { repository = "octo-org/app", ref = "refs/heads/main" }
connection = "app-db"
sql = "INSERT INTO customers VALUES (1, 'x')"
expect = "allow"

[[case]]
name = "other repositories read nothing"
identity = "mock/ci-job"
groups = ["ci"]
claims = { repository = "octo-org/other" }
connection = "app-db"
sql = "SELECT * FROM customers"
expect = "deny"
"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["policy", "test", "--policy"])
        .arg(&policy)
        .arg(&cases)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn the_evidence_pack_lists_workload_identities_with_their_claims_and_reach() {
    let issuer = Issuer::start();
    let (mut h, _) = gateway(&issuer);
    for _ in 0..2 {
        let token = issuer.token("ci-job", "gatehouse", github_like("refs/heads/main"));
        assert!(h.psql(&token, "app-db", "SELECT 1").status.success());
    }
    // The final checkpoint covers everything once the gateway stops.
    h.stop_gateway();
    let out = h.dir.path().join("pack");
    h.cli_ok(&[
        "evidence",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(out.join("identities.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().filter(|l| l.contains("mock/ci-job")).collect();
    assert!(!rows.is_empty(), "{csv}");
    assert!(
        rows.iter()
            .all(|r| r.contains("oidc:mock") && r.contains("repository=octo-org/app")),
        "{csv}"
    );
    // Two logins with two tokens are one identity; its claims decide its reach.
    let connect: Vec<&&str> = rows
        .iter()
        .filter(|r| r.contains(",app-db,,connect,"))
        .collect();
    assert_eq!(connect.len(), 1, "{csv}");
    assert!(connect[0].contains("allow"), "{csv}");
    assert!(
        rows.iter().any(|r| r.contains(",insert,")
            && r.contains("allow")
            && r.contains("write-from-main")),
        "{csv}"
    );
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("OIDC workload"), "{readme}");
}
