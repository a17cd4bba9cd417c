//! The Kubernetes API through the gateway, end to end: the real
//! `gatehouse` binary in front of the test tree's API server
//! (`tests/kube-apiserver/server.py`, which stands in for kube-apiserver),
//! driven by real kubectl (1.27, SPDY-era, and 1.33) with a kubeconfig
//! from `gatehouse kubeconfig`. Each check asserts what kubectl printed,
//! what reached the API server, and what the evidence log holds.

mod common;

use common::kube::{Cluster, CLUSTER_TOKEN};
use common::{stderr, stdout};
use std::process::Stdio;
use std::time::Duration;

/// base64 of the seeded Secret's password, as the API server sends it.
const PASSWORD_B64: &str = "czNjcmV0LXBhNTU=";
/// A Secret value written through the gateway, and its base64.
const NEW_SECRET: &str = "TopSecretValue42";
const NEW_SECRET_B64: &str = "VG9wU2VjcmV0VmFsdWU0Mg==";

/// The request id in a refusal: `… request <uuid>`.
fn request_id(err: &str) -> String {
    let at = err
        .find("request ")
        .unwrap_or_else(|| panic!("no request id in {err}"))
        + 8;
    err[at..at + 36].to_string()
}

#[test]
fn kubectl_through_the_gateway_is_decided_masked_and_recorded() {
    let c = Cluster::start();
    let kc = std::fs::read_to_string(&c.kubeconfig).unwrap();
    assert!(
        kc.contains(&format!("https://127.0.0.1:{}/prod-cluster", c.h.http_port)),
        "{kc}"
    );
    assert!(kc.contains("kube-credential"), "{kc}");
    assert!(
        !kc.contains(&c.ci),
        "the caller's token is not written into the kubeconfig"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&c.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the kubeconfig is the owner's only");

    for minor in [27, 33] {
        // Reads: discovery, tables, single objects.
        let pods = c.ok(minor, &["get", "pods", "-n", "prod"]);
        assert!(pods.contains("web-1") && pods.contains("Running"), "{pods}");
        let deploys = c.ok(minor, &["get", "deployments", "-n", "prod"]);
        assert!(deploys.contains("web"), "{deploys}");

        // Secret values never reach the caller: YAML, JSON, tables.
        for format in ["yaml", "json"] {
            let secret = c.ok(
                minor,
                &["get", "secret", "db-creds", "-n", "prod", "-o", format],
            );
            assert!(secret.contains("db-creds"), "{secret}");
            assert!(
                !secret.contains(PASSWORD_B64) && !secret.contains("s3cret-pa55"),
                "kubectl 1.{minor} -o {format} showed the Secret's value: {secret}"
            );
            // Still base64, as typed clients expect: "[masked:secret-data]".
            assert!(secret.contains("W21hc2tlZDpzZWNyZXQtZGF0YV0="), "{secret}");
            assert!(
                secret.contains("[masked:last-applied-configuration]"),
                "{secret}"
            );
        }
        let secrets = c.ok(minor, &["get", "secrets", "-n", "prod"]);
        assert!(
            secrets.contains("db-creds") && secrets.contains("Opaque"),
            "{secrets}"
        );
        // ConfigMaps are not Secrets: only what the detectors find is masked.
        let cm = c.ok(
            minor,
            &["get", "configmap", "app-config", "-n", "prod", "-o", "yaml"],
        );
        assert!(
            cm.contains("DATABASE_URL") && !cm.contains("ops@example.com"),
            "{cm}"
        );
        assert!(cm.contains("[masked:email]"), "{cm}");

        // A policy forbids reading dev's Secrets: the API server's own form.
        let err = c.refused(minor, &["get", "secret", "dev-token", "-n", "dev"]);
        assert!(err.contains("Error from server (Forbidden)"), "{err}");
        assert!(err.contains("no-dev-secrets"), "{err}");

        // A delete in prod needs an approver; in dev it goes ahead.
        let err = c.refused(
            minor,
            &[
                "delete",
                "deployment",
                "web",
                "-n",
                "prod",
                "--dry-run=server",
            ],
        );
        assert!(
            err.contains("approval required") && err.contains("request "),
            "{err}"
        );
        // Approved, the same command runs (a server-side dry run: the
        // deployment stays for the next kubectl).
        let id = request_id(&err);
        let out = c.h.cli(&["approvals", "approve", &id, "--token", &c.sre]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = c.ok(
            minor,
            &[
                "delete",
                "deployment",
                "web",
                "-n",
                "prod",
                "--dry-run=server",
            ],
        );
        assert!(out.contains("deleted"), "{out}");
        let out = c.ok(
            minor,
            &[
                "create",
                "configmap",
                &format!("c{minor}"),
                "-n",
                "dev",
                "--from-literal=a=b",
            ],
        );
        assert!(out.contains("created"), "{out}");
        let out = c.ok(
            minor,
            &["delete", "configmap", &format!("c{minor}"), "-n", "dev"],
        );
        assert!(out.contains("deleted"), "{out}");

        // Impersonation is the gateway's alone.
        let err = c.refused(minor, &["get", "pods", "-n", "prod", "--as", "admin"]);
        assert!(
            err.contains("impersonate-user") || err.contains("Impersonat"),
            "{err}"
        );

        // A Secret written through the gateway: its value is in no record.
        let out = c.ok(
            minor,
            &[
                "create",
                "secret",
                "generic",
                &format!("s{minor}"),
                "-n",
                "dev",
                &format!("--from-literal=token={NEW_SECRET}"),
            ],
        );
        assert!(out.contains("created"), "{out}");

        // Logs stream as they are written, masked by the detectors.
        let logs = c.ok(minor, &["logs", "web-1", "-n", "prod", "--tail", "2"]);
        assert!(
            logs.contains("line") && !logs.contains("alice@example.com"),
            "{logs}"
        );
    }

    // An exempt group sees clear values; its records still do not.
    let out = c
        .kubectl_cmd(
            33,
            &c.sre,
            &["get", "secret", "db-creds", "-n", "prod", "-o", "json"],
        )
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains(PASSWORD_B64),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // The API server saw the gateway's credential and the caller named by
    // impersonation, never the caller's token.
    let requests = c.api.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let h = &r["headers"];
        assert_eq!(h["authorization"], format!("Bearer {CLUSTER_TOKEN}"), "{r}");
        let user = h["impersonate-user"].as_str().unwrap_or("");
        assert!(user == "ci-deploy" || user == "sre-lead", "{r}");
        assert!(
            h["impersonate-group"]
                .as_str()
                .unwrap_or("")
                .starts_with("ci"),
            "{r}"
        );
        assert!(
            !r.to_string().contains(&c.ci),
            "the caller's token reached the API server: {r}"
        );
        let accept = h["accept"].as_str().unwrap_or("");
        assert!(!accept.contains("protobuf"), "{accept}");
    }
    // Only the approved deletes reached it, once per approval.
    let prod_deletes: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| {
            r["method"] == "DELETE"
                && r["path"]
                    .as_str()
                    .unwrap_or("")
                    .contains("/namespaces/prod/")
        })
        .collect();
    assert_eq!(prod_deletes.len(), 2, "{prod_deletes:?}");
    assert!(
        prod_deletes.iter().all(|r| r["body"]
            .as_str()
            .unwrap_or("")
            .contains(r#""dryRun":["All"]"#)),
        "{prod_deletes:?}"
    );

    // Every request is in the evidence log, decided; no Secret value in
    // any record the gateway keeps.
    let events = c.h.evidence_events();
    let statements: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "statement" && e["payload"]["protocol"] == "kubernetes")
        .collect();
    assert!(
        statements
            .iter()
            .any(|e| e["payload"]["text"].as_str().is_some_and(
                |t| t.starts_with("DELETE /apis/apps/v1/namespaces/prod/deployments/web?")
            ) && e["payload"]["decision"]["decision"] == "review"),
        "{statements:?}"
    );
    for (path, bytes) in c.h.data_dir_files() {
        for needle in [
            PASSWORD_B64,
            "s3cret-pa55",
            CLUSTER_TOKEN,
            NEW_SECRET,
            NEW_SECRET_B64,
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle}",
                path.display()
            );
        }
    }
}

#[test]
fn a_watch_delivers_events_as_they_happen() {
    let c = Cluster::start();
    for minor in [27, 33] {
        let mut watch = c
            .kubectl_cmd(minor, &c.ci, &["get", "pods", "-n", "prod", "-w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        let name = format!("late-{minor}");
        c.ok(minor, &["run", &name, "--image=nginx", "-n", "prod"]);
        std::thread::sleep(Duration::from_secs(2));
        let _ = watch.kill();
        let out = watch.wait_with_output().unwrap();
        let seen = stdout(&out);
        assert!(
            seen.contains("web-1"),
            "kubectl 1.{minor} -w: {seen}{}",
            stderr(&out)
        );
        assert!(
            seen.contains(&name),
            "kubectl 1.{minor} -w missed the new pod: {seen}{}",
            stderr(&out)
        );
    }
}
