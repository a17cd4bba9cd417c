//! The web console end to end: the real gateway serving /ui/, Debian's
//! Chromium driven by playwright-core (tests/console/browser.mjs), real psql
//! and ssh callers whose statements the pages decide and replay.

mod common;

use common::browser::Browser;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const POLICY: &str = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource);
@id("ci-work") permit (principal in Gatehouse::Group::"ci", action, resource) unless { action == Gatehouse::Action::"connect" };
@id("unbounded-delete") @approval("dba") forbid (principal, action == Gatehouse::Action::"delete", resource) when { context.has_where == false };
@id("no-truncate") forbid (principal, action == Gatehouse::Action::"truncate", resource);
"#;

const CONFIG: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "hold"
hold_timeout = "60s"

[console]
auditors = ["auditors"]
"#;

fn gateway() -> Harness {
    let h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: CONFIG,
        ..Options::default()
    });
    create_customers(&h);
    h
}

fn console_url(h: &Harness) -> String {
    format!("http://127.0.0.1:{}/ui/", h.api_port)
}

/// psql running `sql` in the background (it will be held).
fn spawn_psql(h: &Harness, token: &str, sql: &str) -> std::process::Child {
    h.psql_cmd(token, "app-db")
        .args(["-q", "-A", "-t", "-c", sql])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn sign_in(b: &mut Browser, h: &Harness, token: &str) {
    b.goto(&console_url(h));
    b.wait("#token", None);
    b.fill("#token", token);
    b.click("form button[type=submit]");
    b.wait("#who-name", None);
}

fn admin_key(h: &Harness) -> String {
    std::fs::read_to_string(h.data_dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn an_approver_on_a_phone_approves_and_denies_held_statements() {
    let h = gateway();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let alice = h.token("alice", &["dba-leads"], "1h");
    let mut b = Browser::phone();
    b.goto(&console_url(&h));
    b.wait("#token", None);
    b.screenshot("sign-in");
    b.fill("#token", "gh_not-a-token");
    b.click("form button[type=submit]");
    let refused = b.wait("#sign-in-problem .error", None);
    assert!(refused.contains("token"), "{refused}");
    sign_in(&mut b, &h, &alice);
    assert_eq!(b.text("#who-name"), "alice (approver)");
    let waiting = b.wait("#approvals-title ~ p", Some("Nothing is waiting"));
    assert!(waiting.contains("New requests appear here"), "{waiting}");

    // A held statement appears in the inbox without a reload, with what
    // will run, who asked and why the policy asked; approving it releases
    // the statement, which runs once in the caller's session.
    let held = spawn_psql(&h, &ci, "DELETE FROM customers");
    let card = b.wait("article.request", Some("DELETE FROM customers"));
    for fact in [
        "ci-deploy",
        "app-db",
        "unbounded-delete",
        "dba",
        "expires in",
    ] {
        assert!(card.contains(fact), "the card shows {fact}: {card}");
    }
    assert_eq!(b.text("#pending-count"), "1");
    assert_eq!(customer_count(&h), "5", "nothing ran while held");
    b.screenshot("approvals-phone");
    b.click("article.request button.primary");
    let done = b.wait("article.request .outcome p", None);
    assert!(done.contains("the held statement was released"), "{done}");
    let out = held.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(customer_count(&h), "0", "approved and run");
    let decided = b.wait(".decided table", Some("used"));
    assert!(decided.contains("alice"), "{decided}");

    // Denying needs a comment: the page says so, and the API refuses one
    // without anyway; with a comment the caller's statement is refused.
    // A text with a direction override inside a comment: the card shows
    // the character by its code, and warns.
    refill_customers(&h);
    let held = spawn_psql(
        &h,
        &ci,
        "DELETE FROM customers /* \u{202E}nothing to see */",
    );
    let card = b.wait("article.request:not(.done)", Some("DELETE FROM customers"));
    assert!(card.contains("⟨U+202E⟩nothing to see"), "{card}");
    assert!(
        card.contains("invisible or direction-changing characters"),
        "{card}"
    );
    b.click("article.request:not(.done) button.danger");
    let told = b.wait("article.request:not(.done) .outcome .error", None);
    assert!(told.contains("needs a comment"), "{told}");
    let id = b
        .eval("document.querySelector('article.request:not(.done)').dataset.request")
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = b.post(&format!("/v1/approvals/{id}/deny"), None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("a denial needs a comment"), "{body}");
    b.fill(
        "article.request:not(.done) textarea",
        "not during the freeze",
    );
    b.click("article.request:not(.done) button.danger");
    let done = b.wait("article.request .outcome p.refused", None);
    assert!(done.contains(&format!("Denied request {id}")), "{done}");
    let out = held.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("approval denied: request {id}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(customer_count(&h), "5");
    // The decisions are the approver's own, in the evidence log.
    let events = h.evidence_events();
    let decided: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "approval_approved" || e["kind"] == "approval_denied")
        .collect();
    assert_eq!(decided.len(), 2);
    assert_eq!(decided[1]["kind"], "approval_denied");
    assert_eq!(decided[1]["payload"]["approver"], "alice");
    assert_eq!(decided[1]["payload"]["comment"], "not during the freeze");
    assert!(
        events.iter().any(|e| e["kind"] == "auth_success"
            && e["payload"]["protocol"] == "console"
            && e["payload"]["identity"]["subject"] == "alice"),
        "the sign-in is recorded"
    );
    assert_eq!(b.script_errors(), Vec::<String>::new());
}

/// The API decides, whatever a page shows: a non-approver sees no buttons
/// and is refused anyway; a change without the sign-in's CSRF value, or
/// from another site, is refused; a revoked token ends its sign-ins.
#[test]
fn the_api_enforces_roles_and_csrf_whatever_the_page_shows() {
    let h = gateway();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let bob = h.token("bob", &["developers"], "1h");
    let mut b = Browser::start();
    sign_in(&mut b, &h, &bob);
    assert_eq!(b.text("#who-name"), "bob");
    let held = spawn_psql(&h, &ci, "DELETE FROM customers");
    let id = h.pending_approval("DELETE FROM customers");
    // bob reads only his own requests: with one pending, his inbox stays
    // empty through several polls.
    std::thread::sleep(Duration::from_millis(4500));
    b.wait("#approvals-title ~ p", Some("Nothing is waiting"));
    assert_eq!(b.count("article.request"), 0);
    let (status, body) = b.post(&format!("/v1/approvals/{id}/approve"), None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("bob may not decide requests of route dba"),
        "{body}"
    );
    // Sessions and evidence are for auditors.
    let (status, body) = b.fetch("GET", "/v1/sessions", json!({}), None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("bob may not read sessions or evidence"),
        "{body}"
    );
    assert!(
        !body.contains("(auditors)"),
        "the groups are not named to him: {body}"
    );
    b.goto(&format!("{}#/sessions", console_url(&h)));
    let told = b.wait("#session-results .error", None);
    assert!(told.contains("may not read sessions"), "{told}");

    // The admin reads every request but decides none: no buttons, and the
    // API refuses the key's decision anyway.
    let mut admin = Browser::start();
    sign_in(&mut admin, &h, &admin_key(&h));
    let card = admin.wait("article.request", Some("DELETE FROM customers"));
    assert!(
        card.contains("Approvers of route dba decide this request"),
        "{card}"
    );
    assert_eq!(admin.count("article.request button"), 0);
    let (status, body) = admin.post(&format!("/v1/approvals/{id}/approve"), None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("the admin key cannot decide approvals"),
        "{body}"
    );
    drop(admin);

    // An approver's page without the CSRF value: refused, nothing decided.
    let alice = h.token("alice", &["dba-leads"], "1h");
    let mut a = Browser::start();
    sign_in(&mut a, &h, &alice);
    let card = a.wait("article.request", Some("DELETE FROM customers"));
    assert!(card.contains("Approve"), "{card}");
    let approve = format!("/v1/approvals/{id}/approve");
    let (status, body) = a.post(&approve, Some(""));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (status, _) = a.post(&approve, Some(&"0".repeat(64)));
    assert_eq!(status, 403);
    // The cookie sent from another site's page (its Origin): refused even
    // with the right CSRF value.
    let cookie = a.eval("document.cookie");
    assert_eq!(
        cookie, "",
        "the sign-in cookie is HttpOnly: scripts cannot read it"
    );
    let csrf = a.csrf();
    assert_eq!(csrf.len(), 64);
    let api = format!("http://127.0.0.1:{}", h.api_port);
    let (cookie, other_csrf) = sign_in_with_curl(&api, &alice);
    let (status, _, body) = curl(&[
        "-X",
        "POST",
        &format!("{api}/v1/approvals/{id}/approve"),
        "-H",
        &format!("Cookie: {cookie}"),
        "-H",
        &format!("X-Gatehouse-CSRF: {other_csrf}"),
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
    ]);
    assert_eq!(status, 403, "{body}");
    let state = h.cli_ok(&["approvals", "show", &id, "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&state).unwrap()["state"],
        "pending",
        "nothing was approved"
    );
    assert_ne!(csrf, other_csrf, "each sign-in has its own CSRF value");

    // The headers every answer carries.
    let (_, headers, _) = curl(&[&format!("{api}/ui/")]);
    assert!(
        headers.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{headers}"
    );
    assert!(!headers.contains("unsafe-inline"), "{headers}");
    assert!(headers.contains("x-frame-options: DENY"), "{headers}");
    let (_, headers, _) = curl(&[
        "-X",
        "POST",
        &format!("{api}/ui/api/sign-in"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &json!({"token": alice}).to_string(),
    ]);
    for attr in [
        "set-cookie: __Host-gatehouse-console=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(headers.contains(attr), "{headers}");
    }

    // alice approves in her page; then her token is revoked: her sign-in
    // ends at its next request.
    a.click("article.request button.primary");
    a.wait("article.request .outcome p", Some("released"));
    assert!(held.wait_with_output().unwrap().status.success());
    let token_id = h.token_id_of("alice");
    h.cli_ok(&["token", "revoke", &token_id]);
    let (status, body) = a.fetch("GET", "/v1/approvals", json!({}), None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");
    a.goto(&console_url(&h));
    a.wait("#token", None);

    // A revoked token's sign-ins answer 401 at once (the credential is
    // checked on every request).
    let (status, _, body) = curl(&[
        &format!("{api}/ui/api/me"),
        "-H",
        &format!("Cookie: {cookie}"),
    ]);
    assert_eq!(status, 401, "{body}");

    // Sign-out ends the sign-in on the gateway, not only in the browser:
    // the cookie it had no longer works.
    b.click("#sign-out");
    b.wait("#token", None);
    let (bob_cookie, bob_csrf) = sign_in_with_curl(&api, &bob);
    let me = |c: &str| curl(&[&format!("{api}/ui/api/me"), "-H", &format!("Cookie: {c}")]).0;
    assert_eq!(me(&bob_cookie), 200);
    let (status, _, _) = curl(&[
        "-X",
        "POST",
        &format!("{api}/ui/api/sign-out"),
        "-H",
        &format!("Cookie: {bob_cookie}"),
        "-H",
        &format!("X-Gatehouse-CSRF: {bob_csrf}"),
    ]);
    assert_eq!(status, 204);
    assert_eq!(me(&bob_cookie), 401, "signed out on the gateway");
}

/// curl with `args`: the status, the headers (lower-case names) and the body.
fn curl(args: &[&str]) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-D"])
        .arg(&head)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let headers = std::fs::read_to_string(&head)
        .unwrap()
        .lines()
        .map(|l| match l.split_once(':') {
            Some((k, v)) => format!("{}:{v}", k.to_ascii_lowercase()),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (status.trim().parse().unwrap(), headers, body.to_string())
}

/// Signs in with curl: the Cookie header to send, and the CSRF value.
fn sign_in_with_curl(api: &str, token: &str) -> (String, String) {
    let (status, headers, body) = curl(&[
        "-X",
        "POST",
        &format!("{api}/ui/api/sign-in"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &json!({"token": token}).to_string(),
    ]);
    assert_eq!(status, 200, "{body}");
    let cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = serde_json::from_str(&body).unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_string())
}

#[test]
fn an_auditor_finds_a_session_reads_its_timeline_and_verifies_the_log() {
    let h = gateway();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let auditor = h.token("carol", &["auditors"], "1h");
    let out = h.psql(&ci, "app-db", "SELECT count(*) FROM customers WHERE id > 2");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&ci, "app-db", "TRUNCATE customers");
    assert!(!out.status.success(), "refused: {}", stdout(&out));

    let mut b = Browser::start();
    sign_in(&mut b, &h, &auditor);
    assert_eq!(b.text("#who-name"), "carol (auditor)");
    b.click("nav a[data-section=sessions]");
    b.wait("#f-identity", None);
    b.fill("#f-identity", "ci-deploy");
    b.run(json!({"do": "eval", "js": "document.querySelector('#f-outcome').value = 'refused'"}));
    b.click("form.filters button[type=submit]");
    let table = b.wait("table.sessions", Some("ci-deploy"));
    assert!(
        table.contains("app-db") && table.contains("postgres"),
        "{table}"
    );
    assert_eq!(
        b.count("table.sessions tbody tr"),
        1,
        "only the session with the refusal"
    );
    b.screenshot("sessions");
    b.click("table.sessions tbody tr a");
    let timeline = b.wait("ol.timeline", Some("TRUNCATE customers"));
    assert!(
        timeline.contains("deny") && timeline.contains("no-truncate"),
        "{timeline}"
    );
    assert!(
        timeline.contains("42501"),
        "the refusal the caller got: {timeline}"
    );
    b.screenshot("session");

    // Verify now: green on a clean log.
    b.click("nav a[data-section=evidence]");
    let status = b.wait("#evidence-status dl", None);
    assert!(status.contains("Entries"), "{status}");
    b.click("#verify-now");
    let verdict = b.wait("#verify-result .verdict", None);
    assert!(verdict.contains("Intact"), "{verdict}");
    b.screenshot("evidence");
    // An entry's inclusion proof, checked by the CLI with the public key.
    b.fill("#proof-seq", "1");
    b.click("form.inline button[type=submit]");
    let proof_text = b.wait("#proof-result p.ok", None);
    assert!(proof_text.contains("Entry 1 is covered"), "{proof_text}");
    // The proof the page offers checks out with the public key alone.
    let (status, proof) = b.fetch("GET", "/v1/evidence/proofs/1", json!({}), None);
    assert_eq!(status, 200, "{proof}");
    let file = h.dir.path().join("entry-1.proof.json");
    std::fs::write(&file, proof).unwrap();
    let key = h.cli_ok(&["audit", "public-key"]);
    let checked = h.cli_ok(&[
        "audit",
        "verify-proof",
        "--key",
        key.trim(),
        file.to_str().unwrap(),
    ]);
    assert!(checked.starts_with("OK: entry 1 "), "{checked}");

    // An evidence pack: this month's downloaded from the page, and, fetched
    // the same way with curl, unpacked and checked by its own verifier.
    b.click("#pack-form button[type=submit]");
    let link = b.wait("#pack-download", None);
    assert!(
        link.contains("gatehouse-evidence-") && link.contains(".tar"),
        "{link}"
    );
    let api = format!("http://127.0.0.1:{}", h.api_port);
    let (cookie, csrf) = sign_in_with_curl(&api, &auditor);
    let tar = h.dir.path().join("pack.tar");
    let out = std::process::Command::new("curl")
        .args(["-s", "-f", "-o"])
        .arg(&tar)
        .args(["-X", "POST", &format!("{api}/v1/evidence/pack")])
        .args([
            "-H",
            &format!("Cookie: {cookie}"),
            "-H",
            &format!("X-Gatehouse-CSRF: {csrf}"),
        ])
        .args(["-H", "Content-Type: application/json"])
        .args([
            "-d",
            &json!({"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}).to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let unpacked = h.dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = std::process::Command::new("python3")
        .arg("verify_pack.py")
        .current_dir(&folder)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let events = std::fs::read_to_string(folder.join("events.jsonl")).unwrap();
    assert!(
        events.contains("TRUNCATE customers"),
        "the period's events are in it"
    );

    // The access review: what each identity may reach, signed off as
    // carol herself, recorded in the evidence log.
    b.click("nav a[data-section=access]");
    let review = b.wait("section table", Some("ci-deploy"));
    assert!(
        review.contains("carol") && review.contains("auditors"),
        "{review}"
    );
    b.fill("#review-notes", "quarterly review Q4");
    b.click("section form.card button[type=submit]");
    let signed = b.wait("section form.card p.ok", None);
    assert!(signed.contains("Signed off by carol"), "{signed}");
    b.screenshot("access-review");
    let events = h.evidence_events();
    let review = events
        .iter()
        .find(|e| e["kind"] == "access_review")
        .unwrap();
    assert_eq!(review["payload"]["reviewer"], "carol", "{review}");
    b.click("nav a[data-section=evidence]");
    b.wait("#verify-now", None);

    // Someone edits the log file: the same button names the entry.
    let log = h.data_dir.join("evidence.db");
    let sqlite = |sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&log)
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let seq = sqlite(
        "SELECT seq FROM entries WHERE CAST(bytes AS TEXT) LIKE '%WHERE id > 2%' \
         AND CAST(bytes AS TEXT) LIKE '%\"kind\":\"statement\"%'",
    );
    sqlite(&format!(
        "UPDATE entries SET bytes = CAST(replace(CAST(bytes AS TEXT), 'id > 2', 'id > 9') AS BLOB) WHERE seq = {seq}"
    ));
    b.click("#verify-now");
    let verdict = b.wait("#verify-result .verdict.refused", None);
    assert!(verdict.contains("Not intact"), "{verdict}");
    assert!(
        verdict.contains(&format!("entry {seq} was edited")),
        "{verdict}"
    );
    assert_eq!(b.script_errors(), Vec::<String>::new());
}

#[test]
fn a_terminal_recording_plays_seeks_and_pauses_in_the_page() {
    let g = common::ssh::SshGateway::start(common::ssh::OPS_POLICY, common::ssh::WEB1_CONNECTION);
    let ops = g.h.token("deploy-job", &["ops"], "1h");
    let out = g.ssh(
        &ops,
        "web-1",
        "printf 'first line\\n'; sleep 1; printf '\\033[1;32mgreen\\033[0m done\\n'",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = g.result_of("green");
    let session = r["payload"]["session"].as_str().unwrap().to_string();
    let seq = r["payload"]["seq"].to_string();

    let mut b = Browser::start();
    sign_in(&mut b, &g.h, &admin_key(&g.h));
    assert_eq!(b.text("#who-name"), "admin (admin, auditor)");
    b.goto(&format!("{}#/sessions/{session}", console_url(&g.h)));
    b.wait("ol.timeline button", Some("Replay the terminal"));
    b.click("ol.timeline button");
    b.wait("#replay-play:not([disabled])", None);
    // Before playing: an empty screen at 0:00.
    assert_eq!(b.text("pre.terminal").trim(), "");
    b.click("#replay-play");
    b.wait("pre.terminal", Some("first line"));
    let screen = b.wait("pre.terminal", Some("done"));
    assert!(screen.contains("first line\ngreen done"), "{screen}");
    assert_eq!(
        b.text("pre.terminal span.fg2.bold"),
        "green",
        "colours rendered"
    );
    b.screenshot("replay");
    // Seek back to the start: the screen is what it was then.
    b.eval(
        "(() => { const s = document.querySelector('#replay-seek'); s.value = '0'; s.dispatchEvent(new Event('input')); })()",
    );
    let at_start = b.text("pre.terminal");
    assert!(!at_start.contains("done"), "{at_start}");
    // Half speed, play, pause while the second line has not come yet.
    b.eval("(() => { const s = document.querySelector('#replay-speed'); s.value = '0.5'; })()");
    b.click("#replay-play");
    b.wait("pre.terminal", Some("first line"));
    b.click("#replay-play");
    assert_eq!(b.text("#replay-play"), "Play");
    let paused_at: f64 = b
        .eval("document.querySelector('pre.terminal').dataset.position")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let still: f64 = b
        .eval("document.querySelector('pre.terminal').dataset.position")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(paused_at, still, "paused");
    assert!(!b.text("pre.terminal").contains("done"));
    let _ = seq;
    assert_eq!(b.script_errors(), Vec::<String>::new());
}

#[test]
fn a_person_signs_in_with_the_oidc_provider_and_decides_as_their_groups_say() {
    let mut issuer = common::oidc::Issuer::start();
    issuer.person(json!({"sub": "alice@example.com", "groups": ["dba-leads"]}));
    let config = format!(
        r#"
[[identity.oidc]]
name = "corp"
issuer = "{}"
audience = "gatehouse-console"
groups_claim = "groups"

[console.oidc]
issuer = "corp"
redirect_url = "http://127.0.0.1:{{gateway_api_port}}/ui/api/oidc/callback"

[[approval.route]]
name = "dba"
approvers = ["corp/dba-leads"]
mode = "hold"
hold_timeout = "60s"
"#,
        issuer.url
    );
    let h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: Box::leak(config.into_boxed_str()),
        ..Options::default()
    });
    create_customers(&h);
    let ci = h.token("ci-deploy", &["ci"], "1h");

    let mut b = Browser::start();
    b.goto(&console_url(&h));
    b.wait("#sign-in-oidc", Some("Sign in with corp"));
    b.click("#sign-in-oidc");
    // Off to the provider and back: signed in as the ID token says.
    let who = b.wait("#who-name", None);
    assert_eq!(who, "corp/alice@example.com (approver)");
    let held = spawn_psql(&h, &ci, "DELETE FROM customers");
    b.wait("article.request", Some("DELETE FROM customers"));
    b.click("article.request button.primary");
    b.wait("article.request .outcome p", Some("released"));
    assert!(held.wait_with_output().unwrap().status.success());
    assert_eq!(customer_count(&h), "0");
    let events = h.evidence_events();
    let approved = events
        .iter()
        .find(|e| e["kind"] == "approval_approved")
        .unwrap();
    assert_eq!(approved["payload"]["approver"], "corp/alice@example.com");

    // An answer this browser did not begin (a forged or replayed callback)
    // signs nobody in.
    let mut other = Browser::start();
    other.goto(&format!(
        "http://127.0.0.1:{}/ui/api/oidc/callback?code=stolen&state=guessed",
        h.api_port
    ));
    let told = other.wait("#sign-in-problem .error", None);
    assert!(
        told.contains("a sign-in this browser did not begin"),
        "{told}"
    );
    let (status, _) = other.fetch("GET", "/ui/api/me", json!({}), None);
    assert_eq!(status, 401);
    // An error "from the provider" without this browser's sign-in state is
    // neither shown as the provider's word nor written to the evidence log.
    let api = format!("http://127.0.0.1:{}", h.api_port);
    let (status, headers, _) = curl(&[&format!(
        "{api}/ui/api/oidc/callback?error=access_denied&error_description=call%20555-0100&state=x"
    )]);
    assert_eq!(status, 303);
    assert!(headers.contains("did%20not%20begin"), "{headers}");
    assert!(!h
        .evidence_events()
        .iter()
        .any(|e| e.to_string().contains("555-0100")));
    // A sign-in cannot be started from another site's page.
    let (status, headers, _) = curl(&[
        &format!("{api}/ui/api/oidc/start"),
        "-H",
        "Sec-Fetch-Site: cross-site",
    ]);
    assert_eq!(status, 303);
    assert!(
        headers.contains("location: /ui/#/sign-in?error="),
        "{headers}"
    );
    assert!(
        !headers.contains(&issuer.url),
        "not sent to the provider: {headers}"
    );
    assert_eq!(b.script_errors(), Vec::<String>::new());
}
