//! The access review and the SOC 2 evidence pack, end to end: a scripted
//! scenario (sessions, a refused login, a denied statement, masked results,
//! a revoked token, a signed-off access review) through a real gateway and
//! psql; then the pack is written, checked by its own script (Python 3 and
//! OpenSSL only), by `gatehouse audit verify-proof`, and caught when edited.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const POLICY: &str = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource);
@id("ci-work") permit (principal in Gatehouse::Group::"ci", action, resource) unless { action == Gatehouse::Action::"connect" };
@id("no-delete") forbid (principal, action == Gatehouse::Action::"delete", resource);
@id("orders-read-only") forbid (principal, action in [Gatehouse::Action::"insert", Gatehouse::Action::"update"], resource == Gatehouse::Table::"app-db/public.orders");
@id("truncate-needs-approval") @approval("dba") forbid (principal, action == Gatehouse::Action::"truncate", resource);
"#;

const CONFIG: &str = concat!(
    r#"
[evidence]
node = "gw-pack"
checkpoint_interval = "1s"

[[approval.route]]
name = "dba"
approvers = ["dba-leads"]

"#,
    crate::app_connection!("masked-db"),
    r#"
[connection.masking]
detectors = ["pii"]
"#
);

fn run_in(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn csv_rows(dir: &Path, name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap();
    // The test's values contain no quoted commas except where checked by hand.
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn access_review_and_evidence_pack_for_a_scripted_scenario() {
    let mut h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: CONFIG,
        ..Options::default()
    });
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let old = h.token("old-job", &["ci"], "1h");
    let _analyst = h.token("analyst", &["readers"], "1h");
    let dana = h.token("dana", &["dba-leads"], "1h");

    // Work: allowed, denied, masked; a login refused; a token revoked.
    for sql in [
        "CREATE TABLE IF NOT EXISTS orders (id int, note text)",
        "SELECT count(*) FROM orders",
    ] {
        let out = h.psql(&ci, "app-db", sql);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
    }
    let out = h.psql(&ci, "app-db", "DELETE FROM orders WHERE id = 7");
    assert!(!out.status.success());
    let out = h.psql(&ci, "masked-db", "SELECT 'dana@example.com' AS contact");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("dana@example.com"), "masked");
    // An approval: TRUNCATE is held, approved by dana, then runs once.
    let out = h.psql(&ci, "app-db", "TRUNCATE orders");
    assert!(!out.status.success());
    let err = stderr(&out);
    let at = err.find("request ").unwrap() + 8;
    let request = err[at..at + 36].to_string();
    let out = h.cli(&[
        "approvals",
        "approve",
        &request,
        "--comment",
        "quarter close",
        "--token",
        &dana,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&ci, "app-db", "TRUNCATE orders");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql("gh_not_a_real_token", "app-db", "SELECT 1");
    assert!(!out.status.success());
    let old_id = h.token_id_of("old-job");
    h.cli_ok(&["token", "revoke", &old_id]);
    let out = h.psql(&old, "app-db", "SELECT 1");
    assert!(!out.status.success(), "a revoked token is refused");

    // The access review: who holds a usable credential, and what it may reach.
    let review: Value = h.cli_ok(&["access", "review", "--json"]).parse().unwrap();
    let ids: Vec<&str> = review["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["identity"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["analyst", "ci-deploy", "dana"],
        "the revoked token's identity is gone"
    );
    let ci_reach = &review["identities"][1]["reach"];
    let find = |conn: &str, table: &str, action: &str| -> String {
        ci_reach
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["connection"] == conn && r["table"] == table && r["action"] == action)
            .unwrap_or_else(|| panic!("no {conn} {table} {action} in {ci_reach}"))["decision"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(find("app-db", "", "connect"), "allow");
    assert_eq!(find("app-db", "public.orders", "select"), "allow");
    assert_eq!(find("app-db", "public.orders", "insert"), "deny");
    assert_eq!(
        find("app-db", "(tables no policy names)", "insert"),
        "allow"
    );
    assert_eq!(find("app-db", "(tables no policy names)", "delete"), "deny");
    let analyst_reach = review["identities"][0]["reach"].as_array().unwrap();
    assert!(analyst_reach
        .iter()
        .all(|r| r["action"] == "connect" && r["decision"] == "deny"));
    let text = h.cli_ok(&["access", "review"]);
    assert!(text.contains("ci-deploy (groups: ci)"), "{text}");
    assert!(
        text.contains("app-db: connect allow (ci-connect)"),
        "{text}"
    );

    // Sign-off: a stale digest is refused; the right one is recorded.
    let digest = review["digest"].as_str().unwrap();
    let out = h.cli(&[
        "access",
        "review",
        "--sign-off",
        "--reviewer",
        "Dana Auditor",
        "--digest",
        &"0".repeat(64),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("access changed since the review you read"),
        "{}",
        stderr(&out)
    );
    let out = h.cli(&["access", "review", "--sign-off"]);
    assert!(!out.status.success(), "--sign-off needs --reviewer");
    assert!(stderr(&out).contains("--reviewer"), "{}", stderr(&out));
    let out = h.cli(&[
        "access",
        "review",
        "--sign-off",
        "--reviewer",
        "Dana Auditor",
        "--digest",
        digest,
        "--notes",
        "quarterly review, nothing to remove",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("signed off by Dana Auditor"));

    // The final checkpoint covers everything once the gateway stops.
    h.stop_gateway();
    let today = &today();
    let pack = h.dir.path().join("pack");
    let write_pack = |from: &str, to: &str, out: &Path| h.evidence_pack(from, to, out);
    let out = write_pack(today, today, &pack);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        "README.md",
        "VERIFY.md",
        "verify_pack.py",
        "events.jsonl",
        "checkpoint.txt",
        "checkpoint.body",
        "checkpoint.sig",
        "public-key.txt",
        "public-key.pem",
        "pack.json",
        "sessions.csv",
        "sessions.json",
        "denials.csv",
        "approvals.csv",
        "masking.csv",
        "policy-changes.csv",
        "tokens.csv",
        "access-reviews.csv",
        "identities.csv",
    ] {
        assert!(pack.join(f).is_file(), "{f} missing");
    }

    // What it promises.
    let readme = std::fs::read_to_string(pack.join("README.md")).unwrap();
    for criterion in [
        "CC6.1",
        "CC6.2 / CC6.3",
        "CC6.6 / CC6.7",
        "CC7.2 / CC7.3",
        "CC8.1",
    ] {
        assert!(
            readme.contains(criterion),
            "{criterion} missing from README"
        );
    }
    assert!(
        readme.contains("6 logins, 2 refused"),
        "the bad and the revoked token: {readme}"
    );
    let sessions = csv_rows(&pack, "sessions");
    assert!(sessions.len() >= 4, "{sessions:?}");
    assert!(
        sessions.iter().all(|r| !r[9].is_empty()),
        "every session ended: {sessions:?}"
    );
    assert!(sessions
        .iter()
        .any(|r| r[3] == "ci-deploy" && r[5] == "masked-db"));
    let denials = std::fs::read_to_string(pack.join("denials.csv")).unwrap();
    assert!(
        denials.contains("DELETE FROM orders WHERE id = 7"),
        "{denials}"
    );
    assert!(denials.contains("no-delete"), "{denials}");
    assert!(denials.contains(",login,"), "the refused login: {denials}");
    let masking = csv_rows(&pack, "masking");
    assert_eq!(masking.len(), 1, "{masking:?}");
    assert_eq!(masking[0][4], "1");
    assert!(masking[0][6].starts_with("email="), "{masking:?}");
    let tokens = csv_rows(&pack, "tokens");
    assert!(tokens
        .iter()
        .any(|r| r[2] == "token_revoked" && r[3] == old_id));
    assert_eq!(tokens.iter().filter(|r| r[2] == "token_created").count(), 4);
    let reviews = csv_rows(&pack, "access-reviews");
    assert_eq!(reviews.len(), 1);
    assert_eq!(&reviews[0][2..5], ["Dana Auditor", "3", digest]);
    let policy = csv_rows(&pack, "policy-changes");
    assert!(policy
        .iter()
        .any(|r| r[2] == "policy_loaded" && r[6].len() == 64));
    let approvals = csv_rows(&pack, "approvals");
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    assert_eq!(
        approvals[0][2..4],
        ["approval_requested".to_string(), request.clone()]
    );
    assert_eq!(
        approvals[1][2..6],
        [
            "approval_approved".to_string(),
            request.clone(),
            "ci-deploy".into(),
            "dana".into()
        ]
    );
    assert_eq!(approvals[1][7], "quarter close");
    assert!(readme.contains("2 approval events"), "{readme}");
    // The approval's entries are proven like every listed entry.
    assert!(pack
        .join(format!("proofs/{}.json", approvals[1][0]))
        .is_file());
    let identities = std::fs::read_to_string(pack.join("identities.csv")).unwrap();
    assert!(
        identities.contains("ci-deploy,ci,")
            && identities.contains(",app-db,public.orders,insert,deny,orders-read-only"),
        "{identities}"
    );
    assert!(
        identities.contains("old-job,ci,"),
        "held a token during the period"
    );
    assert!(readme.contains("same SHA-256"), "{readme}");

    // Its proofs verify offline: the pack's own script (Python + OpenSSL)…
    let out = run_in(&pack, "python3", &["verify_pack.py"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The period runs to midnight, the log to the gateway's stop: the pack
    // is proven complete up to its last entry, and says so.
    assert!(
        stdout(&out).contains("OK: the pack is unaltered and complete up to"),
        "{}",
        stdout(&out)
    );
    // …OpenSSL alone, as VERIFY.md says…
    let out = run_in(
        &pack,
        "openssl",
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "public-key.pem",
            "-rawin",
            "-in",
            "checkpoint.body",
            "-sigfile",
            "checkpoint.sig",
        ],
    );
    assert!(
        stdout(&out).contains("Signature Verified Successfully"),
        "{}",
        stderr(&out)
    );
    // …and gatehouse with only the public key, for the denied statement.
    let denied_seq = denials
        .lines()
        .find(|l| l.contains("DELETE"))
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let out = Command::new(BIN)
        .args(["audit", "verify-proof"])
        .arg(pack.join(format!("proofs/{denied_seq}.json")))
        .arg("--key")
        .arg(pack.join("public-key.txt"))
        .output()
        .unwrap();
    assert!(stdout(&out).starts_with("OK: entry"), "{}", stdout(&out));

    // Edited packs fail the check.
    let events = std::fs::read_to_string(pack.join("events.jsonl")).unwrap();
    let tamper = |name: &str, file: &str, content: &str, expect: &str| {
        let copy = h.dir.path().join(name);
        std::fs::create_dir(&copy).unwrap();
        for f in std::fs::read_dir(&pack).unwrap().flatten() {
            if f.path().is_file() {
                std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
            }
        }
        let proofs = copy.join("proofs");
        std::fs::create_dir(&proofs).unwrap();
        for f in std::fs::read_dir(pack.join("proofs")).unwrap().flatten() {
            std::fs::copy(f.path(), proofs.join(f.file_name())).unwrap();
        }
        std::fs::write(copy.join(file), content).unwrap();
        let out = run_in(&copy, "python3", &["verify_pack.py"]);
        assert!(!out.status.success(), "{name}: not caught");
        assert!(stdout(&out).contains(expect), "{name}: {}", stdout(&out));
    };
    // An edited entry that a table lists contradicts its proof; any other
    // breaks the hash link of the entry after it.
    tamper(
        "edited",
        "events.jsonl",
        &events.replace("id = 7", "id = 8"),
        "differs from its proven copy",
    );
    assert_eq!(
        events.matches("FROM orders\"").count(),
        1,
        "one allowed SELECT to edit"
    );
    tamper(
        "edited-unlisted",
        "events.jsonl",
        &events.replace("FROM orders\"", "FROM orderz\""),
        "does not link to the entry before it",
    );
    let lines: Vec<&str> = events.lines().collect();
    let mut dropped = lines.clone();
    dropped.remove(lines.len() / 2);
    tamper(
        "dropped",
        "events.jsonl",
        &(dropped.join("\n") + "\n"),
        "is missing",
    );
    let body = std::fs::read_to_string(pack.join("checkpoint.body")).unwrap();
    tamper(
        "resigned",
        "checkpoint.body",
        &body.replacen('\n', "\n1", 1),
        "checkpoint.body is not the signed text",
    );

    // A pack never overwrites, and an empty period is named.
    let out = write_pack(today, today, &pack);
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    let out = write_pack("2001-01-01", "2001-01-02", &h.dir.path().join("empty"));
    assert!(
        stderr(&out).contains("holds no event between"),
        "{}",
        stderr(&out)
    );

    // A period that starts mid-log proves its first edge too.
    let all: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mid = all.iter().find(|e| e["kind"] == "access_review").unwrap()["time"]
        .as_str()
        .unwrap();
    let late = h.dir.path().join("late");
    let out = write_pack(mid, today, &late);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: Value = std::fs::read_to_string(late.join("pack.json"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(manifest["before"].is_u64(), "{manifest}");
    let out = run_in(&late, "python3", &["verify_pack.py"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// Right after activity, with no checkpoint signed by itself for an hour:
/// the pack has the running gateway sign one; it is complete up to its last
/// signed entry and says so (its verifier too). A gateway that cannot be
/// asked gets a refusal saying how long to wait and why; once it is back,
/// the pack is made.
#[test]
fn a_pack_right_after_activity_has_the_gateway_sign_and_states_how_far_it_is_complete() {
    let mut h = Harness::with(Options {
        extra_config: "[evidence]\nnode = \"gw-fresh\"\ncheckpoint_interval = \"1h\"\n",
        ..Options::default()
    });
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let out = h.psql(&ci, "app-db", "SELECT 41 + 1");
    assert!(out.status.success(), "{}", stderr(&out));
    let today = &today();
    let pack = |h: &Harness, name: &str| {
        let dir = h.dir.path().join(name);
        let out = h.evidence_pack(today, today, &dir);
        (dir, out)
    };

    let (fresh, out) = pack(&h, "fresh");
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: Value = std::fs::read_to_string(fresh.join("pack.json"))
        .unwrap()
        .parse()
        .unwrap();
    let events = std::fs::read_to_string(fresh.join("events.jsonl")).unwrap();
    assert!(events.contains("SELECT 41 + 1"), "the last statement is in");
    let last: Value = events.lines().last().unwrap().parse().unwrap();
    assert!(manifest["after"].is_null(), "{manifest}");
    assert_eq!(manifest["complete_until"], last["time"], "{manifest}");
    assert_eq!(
        manifest["last"].as_u64().unwrap() + 1,
        manifest["tree_size"]
    );
    let until = last["time"].as_str().unwrap();
    assert!(
        stderr(&out).contains(&format!("complete up to {until}")),
        "{}",
        stderr(&out)
    );
    let readme = std::fs::read_to_string(fresh.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("**Complete up to {until}, not up to")),
        "{readme}"
    );
    let out = run_in(&fresh, "python3", &["verify_pack.py"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "OK: the pack is unaltered and complete up to {until}, not up to"
        )),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("complete and unaltered for its period"));
    // A manifest that claims the whole period is caught.
    let mut claimed = manifest.clone();
    claimed["complete_until"] = manifest["to"].clone();
    std::fs::write(fresh.join("pack.json"), claimed.to_string()).unwrap();
    let out = run_in(&fresh, "python3", &["verify_pack.py"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("claims completeness up to"),
        "{}",
        stdout(&out)
    );
    std::fs::write(fresh.join("pack.json"), manifest.to_string()).unwrap();

    // Killed: its last events are signed by no checkpoint, and it cannot be asked.
    let out = h.psql(&ci, "app-db", "SELECT 'after the pack'");
    assert!(out.status.success(), "{}", stderr(&out));
    h.kill_gateway();
    let (_, out) = pack(&h, "unsigned");
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    for expect in [
        "are not yet covered by a signed checkpoint",
        "The gateway could not be asked to sign one now: cannot reach the gateway API",
        "within 1h (its configured checkpoint_interval)",
        // An hour has not passed: the time to wait for.
        "wait until ",
        "s from now) and run this again",
        "--to",
    ] {
        assert!(err.contains(expect), "{expect:?} missing: {err}");
    }
    assert!(!h.dir.path().join("unsigned").join("pack.json").exists());

    // Started again, it signs the tail at once; the pack holds everything.
    h.start_gateway();
    let (back, out) = pack(&h, "back");
    assert!(out.status.success(), "{}", stderr(&out));
    let events = std::fs::read_to_string(back.join("events.jsonl")).unwrap();
    assert!(
        events.contains("after the pack"),
        "the killed gateway's last statement"
    );
    let out = run_in(&back, "python3", &["verify_pack.py"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // A period with a signed entry after it is complete to its end; a pack
    // that hides that entry claims nothing more than its last entry.
    let after: Value = events
        .lines()
        .find(|l| l.contains("after the pack"))
        .unwrap()
        .parse()
        .unwrap();
    let bounded = h.dir.path().join("bounded");
    let out = h.evidence_pack(today, after["time"].as_str().unwrap(), &bounded);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("complete up to"), "{}", stderr(&out));
    let out = run_in(&bounded, "python3", &["verify_pack.py"]);
    assert!(
        stdout(&out).contains("OK: the pack is complete and unaltered for its period"),
        "{}",
        stdout(&out)
    );
    let mut manifest: Value = std::fs::read_to_string(bounded.join("pack.json"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["after"] = Value::Null;
    std::fs::write(bounded.join("pack.json"), manifest.to_string()).unwrap();
    let out = run_in(&bounded, "python3", &["verify_pack.py"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("the signed tree holds entries after it"),
        "{}",
        stdout(&out)
    );
}
