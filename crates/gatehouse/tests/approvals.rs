//! Just-in-time approval (request mode) end to end: psql through a real
//! gateway, `gatehouse approvals` as approvers with their own tokens, the
//! backend's rows, the evidence log and a restart.

mod common;

use common::*;
use serde_json::Value;

const POLICY: &str = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource);
@id("ci-work") permit (principal in Gatehouse::Group::"ci", action, resource) unless { action == Gatehouse::Action::"connect" };
@id("unbounded-delete") @approval("dba") forbid (principal, action == Gatehouse::Action::"delete", resource) when { context.has_where == false };
@id("truncate") @approval("quick") forbid (principal, action == Gatehouse::Action::"truncate", resource);
"#;

const ROUTES: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "request"
request_ttl = "1h"
valid_for = "15m"

[[approval.route]]
name = "quick"
approvers = ["dba-leads"]
request_ttl = "2s"
"#;

fn refused_with_request(h: &Harness, token: &str, sql: &str) -> String {
    let out = h.psql(token, "app-db", sql);
    assert!(!out.status.success(), "{sql} ran without approval");
    let err = stderr(&out);
    assert!(err.contains("approval required"), "{err}");
    assert!(err.contains("gatehouse approvals approve"), "{err}");
    request_id(&err)
}

/// A gateway with `policy` and `config`, a customers table of 5 rows, and
/// the tokens of a CI job (`ci-deploy`, group ci) and an approver (`alice`,
/// group dba-leads).
fn scenario(policy: &str, config: &'static str) -> (Harness, String, String) {
    let h = Harness::with(Options {
        policy: Some(policy.into()),
        extra_config: config,
        ..Options::default()
    });
    create_customers(&h);
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let alice = h.token("alice", &["dba-leads"], "1h");
    (h, ci, alice)
}

/// `gatehouse approvals …` with `token` (or the admin key when empty).
fn approvals(h: &Harness, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["approvals"];
    all.extend_from_slice(args);
    if !token.is_empty() {
        all.extend(["--token", token]);
    }
    h.cli(&all)
}

#[test]
fn a_statement_runs_once_after_an_approver_approves_exactly_it() {
    // Webhooks: a generic JSON one that fails once, and a Slack one.
    let json_hook = common::http::HttpReceiver::start(0, 1);
    let slack_hook = common::http::HttpReceiver::start(0, 0);
    let config: &'static str = Box::leak(
        format!(
            "{ROUTES}\n[[approval.webhook]]\nurl = \"http://127.0.0.1:{}/hook\"\n\n[[approval.webhook]]\nurl = \"http://127.0.0.1:{}/slack\"\nformat = \"slack\"\n",
            json_hook.port, slack_hook.port
        )
        .into_boxed_str(),
    );
    let (mut h, ci, alice) = scenario(POLICY, config);
    let mallory = h.token("mallory", &["ci"], "1h");
    let lead = h.token("ci-lead", &["ci", "dba-leads"], "1h");

    // The API describes itself, and every path it describes exists.
    every_documented_endpoint_exists(&h);

    // Held: refused with a request id; asking again names the same request.
    let id = refused_with_request(&h, &ci, "DELETE FROM customers");
    assert_eq!(refused_with_request(&h, &ci, "DELETE FROM customers"), id);
    assert_eq!(customer_count(&h), "5");
    let pending: Value = serde_json::from_str(&stdout(&approvals(
        &h,
        "",
        &["list", "--pending", "--json"],
    )))
    .unwrap();
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["id"], id.as_str());
    assert_eq!(pending[0]["text"], "DELETE FROM customers");
    assert_eq!(pending[0]["requester"]["subject"], "ci-deploy");
    assert_eq!(pending[0]["policies"][0], "unbounded-delete");
    assert_eq!(
        pending[0]["analysis"],
        "ci-deploy (delete on public.customers, without a WHERE that bounds its rows (context.has_where)) requires approval from route dba"
    );
    let shown = stdout(&approvals(&h, &alice, &["show", &id]));
    assert!(
        shown.contains("requester  ci-deploy (groups: ci)"),
        "{shown}"
    );
    // A requester reads their own requests; others' stay private.
    let out = approvals(&h, &ci, &["show", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = approvals(&h, &mallory, &["show", &id]);
    assert!(
        stderr(&out).contains("mallory may read only their own requests"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&approvals(&h, &mallory, &["list"])),
        "no approval requests"
    );

    // Who may not decide: an outsider, the admin key.
    let out = approvals(&h, &mallory, &["approve", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("mallory may not decide requests of route dba"),
        "{}",
        stderr(&out)
    );
    let out = approvals(&h, "", &["approve", &id]);
    assert!(
        stderr(&out).contains("deciding needs your own Gatehouse token"),
        "{}",
        stderr(&out)
    );

    // Approved: exactly that statement, once.
    let out = approvals(&h, &alice, &["approve", &id, "--comment", "cleanup OPS-7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("approved: ci-deploy may now run the statement again, once, until"),
        "{}",
        stderr(&out)
    );
    let other = refused_with_request(&h, &ci, "delete from customers");
    assert_ne!(other, id, "a different text is a different request");
    let out = h.psql(&ci, "app-db", "DELETE FROM customers");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(customer_count(&h), "0", "the rows are gone on the backend");
    let again = refused_with_request(&h, &ci, "DELETE FROM customers");
    assert_ne!(again, id, "used once: a second run needs a new approval");
    let used: Value =
        serde_json::from_str(&stdout(&approvals(&h, "", &["show", &id, "--json"]))).unwrap();
    assert_eq!(used["state"], "used");
    assert!(used["used_at"].is_string());

    // Denied: a reason is required; the rows stay.
    refill_customers(&h);
    let out = approvals(&h, &alice, &["deny", &again, "--comment", ""]);
    assert!(
        stderr(&out).contains("--comment: say why"),
        "{}",
        stderr(&out)
    );
    let out = approvals(
        &h,
        &alice,
        &["deny", &again, "--comment", "not in a release window"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = approvals(&h, &alice, &["approve", &again]);
    assert!(
        stderr(&out).contains("is denied: it can no longer be decided"),
        "{}",
        stderr(&out)
    );
    assert_ne!(
        refused_with_request(&h, &ci, "DELETE FROM customers"),
        again
    );
    assert_eq!(customer_count(&h), "5");

    // The caller's stated reason travels with its request.
    let own = refused_with_request(
        &h,
        &lead,
        "SET gatehouse.reason = 'ticket OPS-123'; DELETE FROM customers",
    );
    let shown: Value =
        serde_json::from_str(&stdout(&approvals(&h, "", &["show", &own, "--json"]))).unwrap();
    assert_eq!(shown["reason"], "ticket OPS-123");
    assert!(stdout(&approvals(&h, "", &["show", &own])).contains("reason     ticket OPS-123"));

    // Self-approval is refused even for an approver.
    let out = approvals(&h, &lead, &["approve", &own]);
    assert!(
        stderr(&out).contains("ci-lead asked for this statement and may not approve it"),
        "{}",
        stderr(&out)
    );

    // Expired: nobody decided within request_ttl.
    let quick = refused_with_request(&h, &ci, "TRUNCATE customers");
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let out = approvals(&h, &alice, &["approve", &quick]);
    assert!(stderr(&out).contains("is expired"), "{}", stderr(&out));

    // A restart keeps pending requests, and they can still be approved.
    h.stop_gateway();
    h.start_gateway();
    let listed = stdout(&approvals(&h, "", &["list", "--pending"]));
    assert!(listed.contains(&own), "{listed}");
    let out = approvals(&h, &alice, &["approve", &own, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let decided: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(decided["request"]["state"], "approved", "{decided}");
    assert_eq!(decided["mode"], "request", "{decided}");
    assert!(
        decided["outcome"]
            .as_str()
            .unwrap()
            .starts_with("approved: ci-lead may now run the statement again"),
        "{decided}"
    );
    let out = h.psql(
        &lead,
        "app-db",
        "SET gatehouse.reason = 'ticket OPS-123'; DELETE FROM customers",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(customer_count(&h), "0");
    h.stop_gateway();

    // Both webhooks heard of every step (the JSON one after a retry).
    assert_eq!(json_hook.refused(), 1);
    let bodies: Vec<Value> = json_hook
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let said = |event: &str, request: &str| {
        bodies
            .iter()
            .any(|b| b["event"] == event && b["request"]["id"] == request)
    };
    assert!(said("approval_requested", &id), "{bodies:?}");
    assert!(said("approval_approved", &id));
    assert!(said("approval_denied", &again));
    assert!(said("approval_expired", &quick));
    let requested = bodies
        .iter()
        .find(|b| b["event"] == "approval_requested" && b["request"]["id"] == id.as_str())
        .unwrap();
    assert_eq!(requested["request"]["text"], "DELETE FROM customers");
    assert_eq!(
        requested["approve_command"],
        format!("gatehouse approvals approve {id}")
    );
    let slack: Vec<Value> = slack_hook
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let asked = slack
        .iter()
        .find(|m| {
            m["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("*ci-deploy* asks to run a statement on *app-db*")
        })
        .expect("a Slack message for the request");
    assert_eq!(
        asked["blocks"][1]["text"]["text"],
        "```DELETE FROM customers```"
    );
    assert!(asked["text"]
        .as_str()
        .unwrap()
        .contains("DELETE FROM customers"));
    let context = asked["blocks"][3]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains(&format!("gatehouse approvals approve {id}")),
        "{context}"
    );
    assert!(slack.iter().any(|m| m["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("Denied by alice (\"not in a release window\")")));

    // The evidence log holds every step, tied to the statements.
    let events: Vec<Value> = h
        .cli_ok(&["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str, request: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["payload"]["request"] == request)
            .count()
    };
    assert_eq!(of("approval_requested", &id), 1);
    assert_eq!(of("approval_approved", &id), 1);
    assert_eq!(of("approval_denied", &again), 1);
    assert_eq!(of("approval_expired", &quick), 1);
    let approved_run = events
        .iter()
        .find(|e| {
            e["kind"] == "statement"
                && e["payload"]["decision"]["reason"] == format!("approved: request {id}")
        })
        .expect("the approved statement's event names its request");
    assert_eq!(approved_run["payload"]["decision"]["decision"], "allow");
    let approved = events
        .iter()
        .find(|e| e["kind"] == "approval_approved" && e["payload"]["request"] == id.as_str())
        .unwrap();
    assert_eq!(approved["payload"]["approver"], "alice");
    assert_eq!(approved["payload"]["comment"], "cleanup OPS-7");
}

/// Fetches `/v1/openapi.json` and calls every path and method it lists
/// without credentials: each answers (401, or 200 for the open ones), none
/// is the router's "no such API endpoint".
fn every_documented_endpoint_exists(h: &Harness) {
    let base = format!("http://127.0.0.1:{}", h.api_port);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::new();
        let doc: Value = http
            .get(format!("{base}/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut calls = 0;
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys() {
                let url = format!("{base}{}", path.replace("{id}", "x").replace("{seq}", "1"));
                let req = match method.as_str() {
                    "get" => http.get(&url),
                    "post" => http.post(&url),
                    other => panic!("unexpected method {other}"),
                };
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap();
                assert!(
                    !body.contains("no such API endpoint"),
                    "{method} {path} is documented but not served"
                );
                let open = methods[method]["security"] == serde_json::json!([]);
                assert_eq!(
                    status,
                    if open { 200 } else { 401 },
                    "{method} {path}: {body}"
                );
                calls += 1;
            }
        }
        assert_eq!(calls, 26, "one call per route and method");
    });
}

const HOLD_ROUTES: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "hold"
hold_timeout = "30s"

[[approval.route]]
name = "quick"
approvers = ["dba-leads"]
mode = "hold"
hold_timeout = "1s"
"#;

/// psql running a statement in the background (it may be held).
fn spawn_psql(h: &Harness, token: &str, sql: &str) -> std::process::Child {
    h.psql_cmd(token, "app-db")
        .args(["-q", "-A", "-t", "-c", sql])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The pending request for `text`, once it appears.
fn pending_request(h: &Harness, text: &str) -> String {
    h.pending_approval(text)
}

#[test]
fn a_held_statement_waits_for_its_approver_and_then_runs_once() {
    let (mut h, ci, alice) = scenario(POLICY, HOLD_ROUTES);

    // Held, approved while it waits: it runs, in the same session.
    let held = spawn_psql(&h, &ci, "BEGIN; DELETE FROM customers; COMMIT");
    let id = pending_request(&h, "BEGIN; DELETE FROM customers; COMMIT");
    assert_eq!(customer_count(&h), "5", "nothing ran while held");
    let out = approvals(&h, &alice, &["approve", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Held: the approver is told it ran, not that it "may run".
    assert!(
        stderr(&out)
            .contains("approved: the held statement was released and ran in ci-deploy's session"),
        "{}",
        stderr(&out)
    );
    let out = held.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let told = stderr(&out);
    assert!(
        told.contains(&format!("request {id}; waiting up to 30s for a decision")),
        "the client was told at once: {told}"
    );
    assert_eq!(customer_count(&h), "0", "approved and run");
    let r: Value =
        serde_json::from_str(&stdout(&approvals(&h, "", &["show", &id, "--json"]))).unwrap();
    assert_eq!(r["state"], "used");

    // Denied while it waits: refused, naming the request; nothing ran.
    refill_customers(&h);
    let held = spawn_psql(&h, &ci, "DELETE FROM customers");
    let id = pending_request(&h, "DELETE FROM customers");
    let out = approvals(&h, &alice, &["deny", &id, "--comment", "not today"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("denied: the held statement is refused in its session"),
        "{}",
        stderr(&out)
    );
    let out = held.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("gatehouse: approval denied: request {id}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(customer_count(&h), "5");

    // Nobody decides within hold_timeout: 57014, the request stays pending,
    // and once approved the same statement runs when run again.
    let out = h.psql(&ci, "app-db", "TRUNCATE customers");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("was not decided in time"), "{err}");
    let id = pending_request(&h, "TRUNCATE customers");
    assert!(err.contains(&id), "{err}");
    let out = approvals(&h, &alice, &["approve", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its session no longer waits (the hold timed out or the client left); ci-deploy may run it again, once, until"),
        "{}",
        stderr(&out)
    );
    let out = h.psql(&ci, "app-db", "TRUNCATE customers");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(customer_count(&h), "0");

    // A gateway restart ends a held session cleanly; its request stays.
    refill_customers(&h);
    let held = spawn_psql(&h, &ci, "DELETE FROM customers");
    let id = pending_request(&h, "DELETE FROM customers");
    h.stop_gateway();
    let out = held.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the gateway is shutting down"),
        "{}",
        stderr(&out)
    );
    h.start_gateway();
    assert_eq!(pending_request(&h, "DELETE FROM customers"), id);
    assert_eq!(customer_count(&h), "5");
}

/// Every DELETE needs approval here, so parameterised ones do too.
const PARAM_POLICY: &str = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource);
@id("ci-work") permit (principal in Gatehouse::Group::"ci", action, resource) unless { action == Gatehouse::Action::"connect" };
@id("any-delete") @approval("dba") forbid (principal, action == Gatehouse::Action::"delete", resource);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_of_a_prepared_statement_covers_exactly_its_parameters() {
    let (h, ci, alice) = scenario(PARAM_POLICY, ROUTES);
    let client = h.connect(&ci, "app-db").await.unwrap();
    let delete = "DELETE FROM customers WHERE id = $1";

    // Extended protocol: refused at Execute with a request bound to $1 = 1.
    let e = client.execute(delete, &[&1i32]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let id = request_id(&message(&e));
    let r: Value =
        serde_json::from_str(&stdout(&approvals(&h, "", &["show", &id, "--json"]))).unwrap();
    assert_eq!(r["text"], delete);
    assert_eq!(
        r["params"][0], "\\x00000001",
        "the binary int4 parameter, as recorded"
    );
    let out = approvals(&h, &alice, &["approve", &id]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Another parameter is another statement; the approved one runs once.
    let e = client.execute(delete, &[&2i32]).await.unwrap_err();
    assert_ne!(request_id(&message(&e)), id);
    assert_eq!(client.execute(delete, &[&1i32]).await.unwrap(), 1);
    assert_eq!(customer_count(&h), "4");
    let e = client.execute(delete, &[&1i32]).await.unwrap_err();
    assert_ne!(request_id(&message(&e)), id, "used once");
    // The session goes on normally after refusals.
    let n: i64 = client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_prepared_statement_runs_once_approved() {
    let (h, ci, alice) = scenario(PARAM_POLICY, HOLD_ROUTES);
    let client = h.connect(&ci, "app-db").await.unwrap();
    let delete = "DELETE FROM customers WHERE id = $1";
    let held = tokio::spawn(async move {
        let n = client.execute(delete, &[&3i32]).await;
        (n, client)
    });
    let id = tokio::task::block_in_place(|| pending_request(&h, delete));
    assert_eq!(customer_count(&h), "5", "nothing ran while held");
    let out = tokio::task::block_in_place(|| approvals(&h, &alice, &["approve", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    let (n, client) = held.await.unwrap();
    assert_eq!(n.unwrap(), 1, "approved: it ran in the session that waited");
    assert_eq!(customer_count(&h), "4");
    // Pipelined work behind it went on.
    let left: i64 = client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 4);

    // Cancelling (what Ctrl-C in psql sends) ends a hold; the request stays.
    let cancel = client.cancel_token();
    let held = tokio::spawn(async move {
        let r = client.execute(delete, &[&4i32]).await;
        (r, client)
    });
    let id = tokio::task::block_in_place(|| pending_request(&h, delete));
    cancel.cancel_query(h.cancel_tls()).await.unwrap();
    let (r, client) = held.await.unwrap();
    let e = r.unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    assert!(
        message(&e).contains(&format!(
            "canceling statement due to user request: it was waiting for approval request {id}"
        )),
        "{}",
        message(&e)
    );
    assert_eq!(customer_count(&h), "4");
    assert_eq!(
        tokio::task::block_in_place(|| pending_request(&h, delete)),
        id
    );
    client.simple_query("SELECT 1").await.unwrap();
}
