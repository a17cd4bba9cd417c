//! The Kubernetes API through the gateway, end to end: the real
//! `gatehouse` binary in front of the test tree's API server
//! (`tests/kube-apiserver/server.py`, which stands in for kube-apiserver),
//! driven by real kubectl (1.27, SPDY-era, and 1.33) with a kubeconfig
//! from `gatehouse kubeconfig`. Each check asserts what kubectl printed,
//! what reached the API server, and what the evidence log holds.

mod common;

use common::kube::{python_client, Cluster, CLUSTER_TOKEN};
use common::oidc::Issuer;
use common::{request_id, stderr, stdout};
use std::process::Stdio;
use std::time::Duration;

/// base64 of the seeded Secret's password, as the API server sends it.
const PASSWORD_B64: &str = "czNjcmV0LXBhNTU=";
/// A Secret value written through the gateway, and its base64.
const NEW_SECRET: &str = "TopSecretValue42";
const NEW_SECRET_B64: &str = "VG9wU2VjcmV0VmFsdWU0Mg==";

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
    // By default its CA is the gateway's own certificate, which kubectl
    // takes as the trust anchor; printed to stdout without --out.
    let plain = c.h.cli_ok(&["kubeconfig", "--connection", "prod-cluster"]);
    let default_kc = c.h.dir.path().join("kubeconfig-default");
    std::fs::write(&default_kc, plain).unwrap();
    let out = c
        .kubectl_cmd(33, &c.ci, &["get", "ns"])
        .env("KUBECONFIG", &default_kc)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("prod"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Mistakes are named.
    let out = c.h.cli(&["kubeconfig", "--connection", "app-db"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("connection \"app-db\" is kind = \"postgres\", not \"kubernetes\"; the kubernetes connections are: prod-cluster"),
        "{}",
        stderr(&out)
    );
    let out = c.h.cli(&["kubeconfig", "--connection", "nope"]);
    assert!(
        stderr(&out).contains("no connection \"nope\""),
        "{}",
        stderr(&out)
    );
    let out =
        c.h.cli(&["kube-credential", "--token-env", "GATEHOUSE_NO_SUCH_VAR"]);
    assert!(
        stderr(&out).contains("the environment variable GATEHOUSE_NO_SUCH_VAR holds no token"),
        "{}",
        stderr(&out)
    );

    for minor in [27, 33, 35] {
        // Reads: discovery, tables, single objects.
        let pods = c.ok(minor, &["get", "pods", "-n", "prod"]);
        assert!(pods.contains("web-1") && pods.contains("Running"), "{pods}");
        let deploys = c.ok(minor, &["get", "deployments", "-n", "prod"]);
        assert!(deploys.contains("web"), "{deploys}");

        let described = c.ok(minor, &["describe", "pod", "web-1", "-n", "prod"]);
        assert!(
            described.contains("Name:") && described.contains("web-1"),
            "{described}"
        );

        // apply: created, then changed (a strategic merge patch); refused
        // where a policy forbids writes.
        let manifest = c.h.dir.path().join(format!("app-{minor}.yaml"));
        let write = |replicas: u32| {
            std::fs::write(
                &manifest,
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{minor}\n  namespace: dev\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: a{minor}}}\n  template:\n    metadata:\n      labels: {{app: a{minor}}}\n    spec:\n      containers:\n      - name: app\n        image: nginx\n"
                ),
            )
            .unwrap();
        };
        let apply = [
            "apply",
            "--validate=false",
            "-f",
            manifest.to_str().unwrap(),
        ];
        write(1);
        assert!(c.ok(minor, &apply).contains("created"));
        write(3);
        assert!(c.ok(minor, &apply).contains("configured"));
        let replicas = c.ok(
            minor,
            &[
                "get",
                "deployment",
                &format!("app-{minor}"),
                "-n",
                "dev",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
        );
        assert_eq!(replicas, "3");
        let err = c.refused(
            minor,
            &[
                "create",
                "configmap",
                "x",
                "-n",
                "kube-system",
                "--from-literal=a=b",
            ],
        );
        assert!(err.contains("no-kube-system-writes"), "{err}");

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
            // The last-applied annotation is kept (kubectl apply reads it)
            // with the values inside masked the same way.
            assert!(secret.contains("last-applied-configuration"), "{secret}");
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

    // The official Python client, with the same kubeconfig and its exec
    // credential plugin: reads, Secret data still base64, a refusal it can
    // read, exec over WebSocket v4.
    let out = python_client("client.py")
        .arg(&c.kubeconfig)
        .env("GATEHOUSE_TOKEN", &c.ci)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let checks: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let check = |name: &str| {
        checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {checks:?}"))
            .clone()
    };
    assert!(check("pods")["names"].to_string().contains("web-1"));
    assert_eq!(check("secret")["password"], "[masked:secret-data]");
    let delete = check("delete");
    assert_eq!(delete["status"], 403, "{delete}");
    assert!(
        delete["reason"]
            .as_str()
            .unwrap()
            .contains("approval required"),
        "{delete}"
    );
    let exec = check("exec")["output"].as_str().unwrap().to_string();
    assert!(
        exec.contains("from-python") && exec.contains("to-stderr"),
        "{exec}"
    );

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
    assert_eq!(prod_deletes.len(), 3, "{prod_deletes:?}");
    assert!(
        prod_deletes.iter().all(|r| r["body"]
            .as_str()
            .unwrap_or("")
            .contains(r#""dryRun":["All"]"#)),
        "{prod_deletes:?}"
    );

    // OCSF: Kubernetes requests are API Activity (6003); the access review
    // asks about the namespaces the policies name.
    let ocsf = c.h.cli_ok(&["audit", "export", "--format", "ocsf"]);
    let api: Vec<serde_json::Value> = ocsf
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["class_uid"] == 6003)
        .collect();
    assert!(
        api.iter().any(|e| e["api"]["operation"] == "DELETE"
            && e["http_request"]["url"]["path"] == "/apis/apps/v1/namespaces/prod/deployments/web"),
        "{api:?}"
    );
    let review = c.h.cli_ok(&["access", "review"]);
    let ci_part = &review[review.find("ci-deploy").expect("ci-deploy reviewed")..];
    let row = |label: &str| {
        ci_part
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row: {review}"))
            .to_string()
    };
    // Deletes in prod need approval; not in dev. Policies name the
    // resource `secrets`, so it has rows of its own: dev's are refused.
    assert!(
        row("namespace prod, (none a policy names)").contains("review"),
        "{review}"
    );
    assert!(
        !row("namespace dev, (none a policy names)").contains("review"),
        "{review}"
    );
    assert!(row("namespace dev, secrets").contains("deny"), "{review}");

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
fn watches_and_logs_stream_as_they_happen_masked_1_27() {
    watches_and_logs(27);
}

#[test]
fn watches_and_logs_stream_as_they_happen_masked_1_33() {
    watches_and_logs(33);
}

#[test]
fn watches_and_logs_stream_as_they_happen_masked_1_35() {
    watches_and_logs(35);
}

fn watches_and_logs(minor: u32) {
    let c = Cluster::start();
    {
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

        // A watch of Secrets as JSON: each event's values masked.
        let mut watch = c
            .kubectl_cmd(
                minor,
                &c.ci,
                &["get", "secrets", "-n", "prod", "-w", "-o", "json"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        let secret = format!("late-{minor}");
        c.ok(
            minor,
            &[
                "create",
                "secret",
                "generic",
                &secret,
                "-n",
                "prod",
                "--from-literal=pin=SeenInWatch99",
            ],
        );
        std::thread::sleep(Duration::from_secs(2));
        let _ = watch.kill();
        let out = watch.wait_with_output().unwrap();
        let seen = stdout(&out);
        assert!(
            seen.contains(&secret) && seen.contains("db-creds"),
            "kubectl 1.{minor}: {seen}"
        );
        assert!(
            !seen.contains("U2VlbkluV2F0Y2g5OQ") && !seen.contains(PASSWORD_B64),
            "kubectl 1.{minor} -w showed a Secret's value: {seen}"
        );

        // logs -f: lines arrive while the pod writes them, masked.
        let mut logs = c
            .kubectl_cmd(minor, &c.ci, &["logs", "-f", "web-1", "-n", "prod"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let _ = logs.kill();
        let out = logs.wait_with_output().unwrap();
        let lines = stdout(&out);
        // 3 lines at once, then one every 200 ms: more than 3 in 1.5 s.
        assert!(
            lines.lines().count() > 4,
            "kubectl 1.{minor} logs -f: {lines}"
        );
        assert!(
            !lines.contains("alice@example.com") && lines.contains("[masked:email]"),
            "{lines}"
        );
    }
}

#[test]
fn a_ci_job_with_only_its_oidc_token_runs_kubectl() {
    let issuer = Issuer::start();
    let c = Cluster::start_with(&format!(
        "[[identity.oidc]]\nname = \"ci-idp\"\nissuer = \"{}\"\naudience = \"gatehouse\"\ngroups = [\"ci\"]\nclaims = [\"repository\"]\n",
        issuer.url
    ));
    let jwt = issuer.token(
        "deploy-job",
        "gatehouse",
        serde_json::json!({"repository": "octo-org/app"}),
    );
    // Once from the environment, once from a token file (a projected
    // service-account or CI token), each with the kubeconfig made for it.
    let file = c.h.dir.path().join("ci.jwt");
    std::fs::write(&file, &jwt).unwrap();
    let by_file = c.h.dir.path().join("kubeconfig-file");
    let out = c.h.cli(&[
        "kubeconfig",
        "--connection",
        "prod-cluster",
        "--ca",
        c.h.dir.path().join("ca.pem").to_str().unwrap(),
        "--token-file",
        file.to_str().unwrap(),
        "--out",
        by_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (kubeconfig, token) in [(&c.kubeconfig, jwt.as_str()), (&by_file, "")] {
        let out = c
            .kubectl_cmd(35, token, &["get", "pods", "-n", "prod"])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        assert!(
            stdout(&out).contains("web-1"),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let out = c
            .kubectl_cmd(35, token, &["delete", "deployment", "web", "-n", "prod"])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        assert!(
            stderr(&out).contains("approval required"),
            "{}",
            stderr(&out)
        );
    }
    // The API server saw the workload named by the issuer, never its token.
    let requests = c.api.requests();
    assert!(requests.iter().all(|r| !r.to_string().contains(&jwt)));
    assert!(
        requests.iter().any(|r| r["headers"]["impersonate-user"]
            .as_str()
            .unwrap_or("")
            .starts_with("ci-idp/")),
        "{requests:?}"
    );
    // A bad token is refused in the API server's own form.
    let out = c
        .kubectl_cmd(35, "not-a-token", &["get", "pods", "-n", "prod"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Unauthorized") || stderr(&out).contains("must be logged in"),
        "{}",
        stderr(&out)
    );
}
