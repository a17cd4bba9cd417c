//! Several gateway nodes on one shared PostgreSQL store (a cluster of its
//! own, from initdb, reached over verified TLS): real `gatehouse serve`
//! processes, real psql callers, `gatehouse` CLI against each node.

mod common;

use common::store::StoreCluster;
use common::*;
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource);
@id("ci-work") permit (principal in Gatehouse::Group::"ci", action, resource) unless { action == Gatehouse::Action::"connect" };
@id("unbounded-delete") @approval("dba") forbid (principal, action == Gatehouse::Action::"delete", resource) when { context.has_where == false };
@id("truncate") @approval("held") forbid (principal, action == Gatehouse::Action::"truncate", resource);
"#;

const ROUTES: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "request"
request_ttl = "1h"
valid_for = "15m"

[[approval.route]]
name = "held"
approvers = ["dba-leads"]
mode = "hold"
hold_timeout = "60s"

[evidence]
checkpoint_interval = "1s"
"#;

/// Three nodes on one store, a customers table of 5 rows.
fn fleet(store: &StoreCluster) -> (Harness, Harness, Harness) {
    let config: &'static str =
        Box::leak(format!("{ROUTES}{}", store.section("6s")).into_boxed_str());
    let h1 = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: config,
        ..Options::default()
    });
    h1.cluster
        .sql(
            "app",
            "CREATE TABLE customers (id int, name text); GRANT ALL ON customers TO app_owner;
             CREATE TABLE acks (n int); GRANT ALL ON acks TO app_owner;
             INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) g",
        )
        .unwrap();
    let h2 = h1.another_node();
    let h3 = h1.another_node();
    (h1, h2, h3)
}

fn rows(h: &Harness) -> String {
    h.cluster
        .sql("app", "SELECT count(*) FROM customers")
        .unwrap()
}

fn approvals(h: &Harness, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["approvals"];
    all.extend_from_slice(args);
    all.extend(["--token", token]);
    h.cli(&all)
}

fn nodes(h: &Harness) -> Vec<Value> {
    let list: Value = serde_json::from_str(&h.cli_ok(&["nodes", "list", "--json"])).unwrap();
    list.as_array().unwrap().clone()
}

fn token_id(h: &Harness, identity: &str) -> String {
    let list = h.cli_ok(&["token", "list"]);
    let line = list
        .lines()
        .find(|l| l.contains(identity))
        .unwrap_or_else(|| panic!("{identity} not listed: {list}"));
    line.split_whitespace().next().unwrap().to_string()
}

fn spawn_psql(h: &Harness, token: &str, sql: &str) -> Child {
    h.psql_cmd(token, "app-db")
        .args(["-q", "-A", "-t", "-c", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `what` to hold (polling), failing with `why` after `limit`.
fn eventually<T>(limit: Duration, why: &str, mut what: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = what() {
            return v;
        }
        assert!(Instant::now() < deadline, "{why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_nodes_share_tokens_approvals_sessions_and_see_a_lost_node() {
    let store = StoreCluster::start();
    let (h1, mut h2, h3) = fleet(&store);
    let ids = [h1.node_id(), h2.node_id(), h3.node_id()];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );

    // Every node knows every node.
    let listed = nodes(&h3);
    for id in &ids {
        let n = listed
            .iter()
            .find(|n| n["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not in {listed:?}"));
        assert!(n["stopped_at"].is_null() && n["lost"].is_null(), "{n}");
    }
    let table = h1.cli_ok(&["nodes", "list"]);
    assert!(
        table.contains(&ids[1]) && table.contains("running"),
        "{table}"
    );

    // A token made on one node logs in on every node.
    let ci = h1.token("ci-deploy", &["ci"], "1h");
    let alice = h2.token("alice", &["dba-leads"], "1h");
    for h in [&h1, &h2, &h3] {
        let out = h.psql(&ci, "app-db", "SELECT count(*) FROM customers");
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "5");
    }

    // Revoked on node 2: refused by nodes 1 and 3 at once (each login reads
    // the shared store; nothing is cached).
    let victim = h3.token("to-revoke", &["ci"], "1h");
    assert!(h1.psql(&victim, "app-db", "SELECT 1").status.success());
    let id = token_id(&h3, "to-revoke");
    h2.cli_ok(&["token", "revoke", &id]);
    for h in [&h1, &h3] {
        let out = h.psql(&victim, "app-db", "SELECT 1");
        assert!(!out.status.success(), "a revoked token logged in");
        assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    }

    // Request mode: filed on node 1, listed and approved on node 3, run on
    // node 1 exactly once.
    let out = h1.psql(&ci, "app-db", "DELETE FROM customers");
    assert!(!out.status.success(), "ran without approval");
    let id = request_id(&stderr(&out));
    let pending: Value = serde_json::from_str(&stdout(&approvals(
        &h3,
        &alice,
        &["list", "--pending", "--json"],
    )))
    .unwrap();
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "{pending}"
    );
    let out = approvals(&h3, &alice, &["approve", &id, "--comment", "cleanup OPS-9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let approved_at = Instant::now();
    // Node 1 takes the approval in from the store (a notification, or its poll).
    let ran = eventually(
        Duration::from_secs(5),
        "node 1 never ran the approved statement",
        || {
            let out = h1.psql(&ci, "app-db", "DELETE FROM customers");
            if out.status.success() {
                return Some(approved_at.elapsed());
            }
            let err = stderr(&out);
            assert_eq!(request_id(&err), id, "a new request while approved: {err}");
            None
        },
    );
    eprintln!("approved on node 3, ran on node 1 after {ran:?}");
    assert_eq!(rows(&h1), "0");
    // Used: no node runs it again on the same approval.
    h1.cluster
        .sql(
            "app",
            "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) g",
        )
        .unwrap();
    for h in [&h2, &h3, &h1] {
        let out = h.psql(&ci, "app-db", "DELETE FROM customers");
        assert!(!out.status.success(), "ran twice on one approval");
        assert_ne!(request_id(&stderr(&out)), id);
    }
    assert_eq!(rows(&h1), "5");
    let shown: Value =
        serde_json::from_str(&stdout(&approvals(&h2, &alice, &["show", &id, "--json"]))).unwrap();
    assert_eq!(shown["state"], "used", "{shown}");

    // Hold mode: held on node 1, approved on node 2, resumes on node 1.
    let held = spawn_psql(&h1, &ci, "TRUNCATE customers");
    let req = eventually(
        Duration::from_secs(20),
        "no pending TRUNCATE request",
        || {
            let out = approvals(&h2, &alice, &["list", "--pending", "--json"]);
            let list: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            list.as_array()?
                .iter()
                .find(|r| r["text"].as_str().unwrap_or("").contains("TRUNCATE"))
                .map(|r| r["id"].as_str().unwrap().to_string())
        },
    );
    let out = approvals(&h2, &alice, &["approve", &req, "--comment", "reset"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let approved_at = Instant::now();
    let out = held.wait_with_output().unwrap();
    eprintln!(
        "approved on node 2, the held statement on node 1 resumed after {:?}",
        approved_at.elapsed()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&h1), "0");

    // Sessions of every node are listed from any node.
    let sessions: Value =
        serde_json::from_str(&h3.cli_ok(&["sessions", "list", "--json", "--limit", "500"]))
            .unwrap();
    let sessions = sessions.as_array().unwrap();
    assert!(sessions.len() >= 10, "{}", sessions.len());

    // Node 2 dies with a session open: another node ends its sessions.
    let mut open = spawn_psql(&h2, &ci, "SELECT pg_sleep(120)");
    let session = eventually(
        Duration::from_secs(20),
        "the open session is not listed",
        || {
            if let Some(status) = open.try_wait().unwrap() {
                panic!("the sleeping psql ended: {status}");
            }
            let list: Value =
                serde_json::from_str(&h1.cli_ok(&["sessions", "list", "--json", "--limit", "500"]))
                    .unwrap();
            list.as_array()?
                .iter()
                .find(|s| s["end"].is_null() && s["identity"]["subject"] == "ci-deploy")
                .map(|s| s["id"].as_str().unwrap().to_string())
        },
    );
    // Under load through all three (pgbench), node 2 is killed: the
    // others go on serving.
    let script = h1.dir.path().join("select.sql");
    std::fs::write(&script, "SELECT count(*) FROM customers;\n").unwrap();
    let bench = |h: &Harness| {
        h.pgbench_cmd(&ci)
            .args(["-n", "-c", "2", "-j", "1", "-T", "6", "-f"])
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Through node 2, inserts one after another: each acknowledged one
    // (psql prints its INSERT 0 1) must be in node 2's log.
    let inserts = h1.dir.path().join("inserts.sql");
    std::fs::write(
        &inserts,
        (1..=200_000)
            .map(|n| format!("INSERT INTO acks VALUES ({n});\n"))
            .collect::<String>(),
    )
    .unwrap();
    let writer = h2
        .psql_cmd(&ci, "app-db")
        .arg("-f")
        .arg(&inserts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (b1, b2, b3) = (bench(&h1), bench(&h2), bench(&h3));
    std::thread::sleep(Duration::from_secs(2));
    h2.kill_gateway();
    let _ = open.wait();
    let out = writer.wait_with_output().unwrap();
    let acknowledged = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "INSERT 0 1")
        .count();
    assert!(acknowledged > 0, "{}", String::from_utf8_lossy(&out.stderr));
    let logged = h2
        .cli_ok(&["audit", "export", "--format", "jsonl"])
        .lines()
        .filter(|l| l.contains("\"kind\":\"statement\"") && l.contains("INSERT INTO acks"))
        .count();
    assert!(
        logged >= acknowledged,
        "{acknowledged} inserts acknowledged through node 2, {logged} in its log"
    );
    eprintln!(
        "node 2 acknowledged {acknowledged} inserts before it was killed; its log holds {logged}"
    );
    for (name, b) in [("node 1", b1), ("node 3", b3)] {
        let out = b.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "pgbench through {name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("number of transactions actually processed"),
            "{text}"
        );
    }
    let out = b2.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "pgbench through the killed node 2 went on"
    );
    let ended = eventually(
        Duration::from_secs(30),
        "node 2's session was never ended",
        || {
            let s: Value =
                serde_json::from_str(&h3.cli_ok(&["sessions", "show", &session, "--json"]))
                    .unwrap();
            (!s["end"].is_null()).then_some(s)
        },
    );
    assert_eq!(ended["end"]["reason"], "node_lost", "{ended}");
    let detail = ended["end"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&ids[1]), "{detail}");
    let lost = nodes(&h1);
    let n2 = lost.iter().find(|n| n["id"] == ids[1].as_str()).unwrap();
    assert!(!n2["lost"].is_null(), "{n2}");

    // Every node's own evidence log verifies, the killed one's too.
    for h in [&h1, &h2, &h3] {
        let out = h.cli(&["audit", "verify"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }

    // One verification covers the fleet: every node's log as copied to the
    // store, and each live node's checkpoints cosigned by the other.
    let fleet = eventually(
        Duration::from_secs(30),
        "the live nodes never cosigned each other",
        || {
            let out = h3.cli(&["audit", "fleet", "--json"]);
            let v: Value = serde_json::from_str(&stdout(&out)).ok()?;
            let by = |node: &str, witness: &str| {
                v["nodes"]
                    .as_array()
                    .and_then(|a| a.iter().find(|n| n["node"] == node))
                    .is_some_and(|n| n["cosigned_through"][witness].as_u64().unwrap_or(0) > 0)
            };
            (out.status.success() && by(&ids[0], &ids[2]) && by(&ids[2], &ids[0])).then_some(v)
        },
    );
    let listed: Vec<&str> = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{fleet}");
    }
    let text = h1.cli_ok(&["audit", "fleet"]);
    assert!(text.contains(&format!("node {}: ok", ids[0])), "{text}");

    // The evidence pack of every node's log, from any node.
    let packs = h3.dir.path().join("fleet-pack");
    let day = today();
    let out = h3.cli(&[
        "evidence",
        "--from",
        &day,
        "--to",
        &day,
        "--out",
        packs.to_str().unwrap(),
        "--all-nodes",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let fleet_json: Value =
        serde_json::from_str(&std::fs::read_to_string(packs.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(fleet_json["ok"], true, "{fleet_json}");
    for id in &ids {
        let dir = packs.join(id);
        let out = std::process::Command::new("python3")
            .arg("verify_pack.py")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "node {id}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }

    // An entry of node 1 edited in the store: the fleet check names it.
    let edited = store.sql(&format!(
        "UPDATE evidence_entries SET bytes = convert_to(replace(convert_from(bytes, 'UTF8'), 'ci-deploy', 'ci-deplox'), 'UTF8') \
         WHERE node_id = '{}' AND seq = (SELECT min(seq) FROM evidence_entries e WHERE e.node_id = '{}' \
         AND position('ci-deploy' in convert_from(e.bytes, 'UTF8')) > 0) RETURNING seq",
        ids[0], ids[0]
    ));
    let out = h3.cli(&["audit", "fleet"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("node {}: FINDINGS", ids[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("  node {}: entry {edited} was edited", ids[0])),
        "{text}"
    );
    // A key the auditor holds that is not the one the store publishes.
    let other = h3.cli_ok(&["audit", "public-key"]);
    let out = h3.cli(&[
        "audit",
        "fleet",
        "--key",
        &format!("{}={}", ids[0].as_str(), other.trim()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("node {}: the store publishes the key", ids[0])),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_refused_while_the_store_is_down_and_nothing_is_lost() {
    let mut store = StoreCluster::start();
    let section = store.section("6s");
    let config: &'static str = Box::leak(format!("{ROUTES}{section}").into_boxed_str());
    let h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: config,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            "CREATE TABLE notes (n int); GRANT ALL ON notes TO app_owner",
        )
        .unwrap();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let open = h.connect(&ci, "app-db").await.unwrap();
    open.simple_query("INSERT INTO notes VALUES (0)")
        .await
        .unwrap();
    // Load through the node across the outage: pgbench's sessions are
    // open before the store goes away.
    let script = h.dir.path().join("select.sql");
    std::fs::write(&script, "SELECT count(*) FROM notes;\n").unwrap();
    let bench = h
        .pgbench_cmd(&ci)
        .args(["-n", "-c", "2", "-j", "1", "-T", "14", "-f"])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    store.cluster.stop_server().unwrap();
    // The store comes back on its own time: whatever waits for it meanwhile.
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(10));
        store.cluster.start_server().unwrap();
        store
    });
    // A login needs the store (the token, the session's record): refused.
    let out = h.psql(&ci, "app-db", "SELECT 1");
    assert!(!out.status.success(), "logged in without the store");
    let err = stderr(&out);
    assert!(err.contains("store"), "{err}");
    // An open session goes on: each statement is written ahead to the
    // node's own evidence log; its record waits for the store (in a
    // bounded queue: once pgbench has filled it, statements wait for the
    // store rather than lose their records).
    for n in 1..=20 {
        open.simple_query(&format!("INSERT INTO notes VALUES ({n})"))
            .await
            .unwrap();
    }
    let _store = tokio::task::spawn_blocking(move || back.join().unwrap())
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "logins never came back", || {
        h.psql(&ci, "app-db", "SELECT 1")
            .status
            .success()
            .then_some(())
    });
    drop(open);
    let out = bench.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pgbench across the outage: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let processed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split('/').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(processed > 0, "{text}");
    // Nothing acknowledged was lost: the 21 inserts and every pgbench
    // statement are recorded.
    let recorded = eventually(
        Duration::from_secs(30),
        "the statements run during the outage were not recorded",
        || {
            let list: Value =
                serde_json::from_str(&h.cli_ok(&["sessions", "list", "--json", "--limit", "100"]))
                    .unwrap();
            let counts: Vec<u64> = list
                .as_array()?
                .iter()
                .map(|s| s["statement_count"].as_u64().unwrap_or(0))
                .collect();
            counts
                .iter()
                .any(|n| *n >= 21)
                .then(|| counts.iter().sum::<u64>())
                .filter(|total| *total >= processed + 21)
        },
    );
    eprintln!("{processed} pgbench transactions across the outage; {recorded} statements recorded");
    assert_eq!(
        h.cluster.sql("app", "SELECT count(*) FROM notes").unwrap(),
        "21"
    );
    let out = h.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The copy of its log in the store caught up and verifies.
    eventually(
        Duration::from_secs(30),
        "the fleet check never passed",
        || h.cli(&["audit", "fleet"]).status.success().then_some(()),
    );
}

#[test]
fn a_recording_made_on_one_node_replays_on_another() {
    let store = StoreCluster::start();
    let g = common::ssh::SshGateway::start(
        common::ssh::OPS_POLICY,
        &format!("{}{}", common::ssh::WEB1_CONNECTION, store.section("30s")),
    );
    let h2 = g.h.another_node();
    let ops = g.h.token("deploy-job", &["ops"], "1h");
    let out = g.ssh(&ops, "web-1", "echo across-$((6*7))");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "across-42");
    let r = g.result_of("across-");
    let session = r["payload"]["session"].as_str().unwrap().to_string();
    let seq = r["payload"]["seq"].to_string();
    // Node 2 has no file of it: it replays the copy in the store.
    let name = r["payload"]["stream"]["recording"].as_str().unwrap();
    assert!(!h2.data_dir.join("recordings").join(name).exists());
    let replayed = eventually(Duration::from_secs(20), "node 2 never replayed it", || {
        let out = h2.cli(&["sessions", "replay", &session, &seq]);
        out.status.success().then(|| stdout(&out))
    });
    assert!(replayed.contains("across-42"), "{replayed}");
}

/// The size of `node`'s checkpoints `witness` cosigned, once there is one.
fn cosigned_through(h: &Harness, node: &str, witness: &str) -> u64 {
    eventually(Duration::from_secs(30), "never cosigned", || {
        let out = h.cli(&["audit", "fleet", "--json"]);
        let v: Value = serde_json::from_str(&stdout(&out)).ok()?;
        v["nodes"].as_array()?.iter().find(|n| n["node"] == node)?["cosigned_through"][witness]
            .as_u64()
    })
}

#[test]
fn a_witness_refuses_a_checkpoint_its_copy_does_not_give() {
    let store = StoreCluster::start();
    let (mut h1, h2, _h3) = fleet(&store);
    let (n1, n2) = (h1.node_id(), h2.node_id());
    cosigned_through(&h1, &n1, &n2);
    // Node 1 stops cleanly: its last checkpoint reaches the store.
    h1.stop_gateway();
    let newest: u64 = store
        .sql(&format!(
            "SELECT max(size) FROM evidence_checkpoints WHERE node_id = '{n1}'"
        ))
        .parse()
        .unwrap();
    // Whoever holds node 1's key re-signs its newest checkpoint over
    // another tree of the same size: a forked log.
    let key_text = std::fs::read_to_string(h1.data_dir.join("evidence.key")).unwrap();
    let key = gatehouse_evidence::SigningKey::parse(key_text.trim()).unwrap();
    let forged = key.sign(&gatehouse_evidence::Checkpoint {
        origin: key.name().to_string(),
        size: newest,
        root: [7; 32],
    });
    store.sql(&format!(
        "UPDATE evidence_checkpoints SET note = '{}' WHERE node_id = '{n1}' AND size = {newest}",
        forged.replace('\'', "''")
    ));
    // The witness (node 2) refuses it, whether it had cosigned the real
    // one (a forked log) or meets this one first (its copy's entries do
    // not give that root).
    let refused = eventually(
        Duration::from_secs(30),
        "node 2 never refused the forged checkpoint",
        || {
            let log = h2.log_text();
            log.contains("not cosigning a checkpoint").then_some(log)
        },
    );
    assert!(
        refused.contains("a forked log") || refused.contains("do not give the root it signed"),
        "{refused}"
    );
    let by_forged: u64 = store
        .sql(&format!(
            "SELECT count(*) FROM evidence_cosignatures WHERE node_id = '{n1}' AND size = {newest} \
             AND position('{}' in note) > 0",
            forged.lines().nth(2).unwrap()
        ))
        .parse()
        .unwrap();
    assert_eq!(by_forged, 0, "the forged checkpoint was cosigned");
    // The fleet check names it too.
    let out = h2.cli(&["audit", "fleet"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("node {n1}: FINDINGS")),
        "{}",
        stdout(&out)
    );
}
