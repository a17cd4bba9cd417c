use super::*;

fn ask(method: &str, path: &str, query: &str) -> Result<KubeRequest, String> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    KubeRequest::classify(&method.parse().unwrap(), &segments, &query, b"")
}

fn verb_of(method: &str, path: &str, query: &str) -> &'static str {
    ask(method, path, query).unwrap().verb
}

#[test]
fn discovery_and_other_paths() {
    for p in [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps",
        "/apis/apps/v1",
        "/version",
        "/openapi/v2",
        "/openapi/v3/apis/apps/v1",
    ] {
        assert_eq!(verb_of("GET", p, ""), "discovery", "{p}");
    }
    for p in ["/healthz", "/metrics", "/logs/kube-apiserver.log", "/"] {
        assert_eq!(verb_of("GET", p, ""), "other", "{p}");
    }
    // Writing to a discovery path is not discovery.
    assert_eq!(verb_of("POST", "/apis/apps/v1", ""), "other");
}

#[test]
fn verbs_as_the_api_server_reads_them() {
    let cases = [
        ("GET", "/api/v1/namespaces/prod/pods", "", "list"),
        ("GET", "/api/v1/namespaces/prod/pods/web-1", "", "get"),
        ("HEAD", "/api/v1/namespaces/prod/pods/web-1", "", "get"),
        ("GET", "/api/v1/namespaces/prod/pods", "watch=true", "watch"),
        (
            "GET",
            "/api/v1/namespaces/prod/pods",
            "watch=1&resourceVersion=5",
            "watch",
        ),
        ("GET", "/api/v1/namespaces/prod/pods", "watch=false", "list"),
        ("GET", "/api/v1/watch/namespaces/prod/pods", "", "watch"),
        (
            "POST",
            "/apis/apps/v1/namespaces/prod/deployments",
            "",
            "create",
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/prod/deployments/web",
            "",
            "update",
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/prod/deployments/web",
            "",
            "patch",
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/prod/deployments/web",
            "",
            "delete",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/dev/pods",
            "",
            "deletecollection",
        ),
        (
            "GET",
            "/api/v1/namespaces/prod/pods/web-1/log",
            "follow=true",
            "get",
        ),
        (
            "GET",
            "/api/v1/namespaces/prod/pods/web-1/exec",
            "command=ls",
            "exec",
        ),
        (
            "POST",
            "/api/v1/namespaces/prod/pods/web-1/exec",
            "command=ls",
            "exec",
        ),
        (
            "POST",
            "/api/v1/namespaces/prod/pods/web-1/attach",
            "",
            "attach",
        ),
        (
            "POST",
            "/api/v1/namespaces/prod/pods/web-1/portforward",
            "",
            "portforward",
        ),
        (
            "GET",
            "/api/v1/namespaces/prod/services/web/proxy/metrics/x",
            "",
            "proxy",
        ),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "",
            "self_review",
        ),
        (
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            "",
            "self_review",
        ),
        // Someone else's access review is a create like any other.
        (
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "",
            "create",
        ),
        ("GET", "/api/v1/pods", "", "list"),
    ];
    for (method, path, query, verb) in cases {
        assert_eq!(
            verb_of(method, path, query),
            verb,
            "{method} {path}?{query}"
        );
    }
}

#[test]
fn objects_namespaces_and_subresources() {
    let r = ask(
        "DELETE",
        "/apis/apps/v1/namespaces/prod/deployments/web",
        "dryRun=All",
    )
    .unwrap();
    assert_eq!(
        (
            r.api_group.as_str(),
            r.api_version.as_str(),
            r.resource.as_str()
        ),
        ("apps", "v1", "deployments")
    );
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("prod", "web"));
    assert!(r.dry_run);
    // A namespace object is filed in itself, its status too.
    for (path, sub) in [
        ("/api/v1/namespaces/prod", ""),
        ("/api/v1/namespaces/prod/status", "status"),
        ("/api/v1/namespaces/prod/finalize", "finalize"),
    ] {
        let r = ask("PUT", path, "").unwrap();
        assert_eq!(
            (
                r.resource.as_str(),
                r.namespace.as_str(),
                r.name.as_str(),
                r.subresource.as_str()
            ),
            ("namespaces", "prod", "prod", sub),
            "{path}"
        );
    }
    let r = ask("GET", "/api/v1/namespaces", "").unwrap();
    assert_eq!((r.verb, r.namespace.as_str()), ("list", ""));
    let r = ask(
        "PATCH",
        "/apis/apps/v1/namespaces/prod/deployments/web/scale",
        "",
    )
    .unwrap();
    assert_eq!((r.verb, r.subresource.as_str()), ("patch", "scale"));
    // Cluster-scoped.
    let r = ask("DELETE", "/api/v1/nodes/node-1", "").unwrap();
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("", "node-1"));
    // A list of one name is about that name (kubectl get -w NAME).
    let r = ask(
        "GET",
        "/api/v1/namespaces/prod/pods",
        "fieldSelector=metadata.name%3Dweb-1&watch=1",
    )
    .unwrap();
    assert_eq!((r.verb, r.name.as_str()), ("watch", "web-1"));
    let r = ask(
        "GET",
        "/api/v1/namespaces/prod/pods",
        "fieldSelector=metadata.name%3Da,status.phase%3DRunning",
    )
    .unwrap();
    // One of its terms requires the name, so the list is about it.
    assert_eq!(r.name, "a");
    // Secrets, wherever listed.
    assert!(ask("GET", "/api/v1/secrets", "").unwrap().names_secrets());
    assert!(ask("GET", "/api/v1/namespaces/prod/secrets/db", "")
        .unwrap()
        .names_secrets());
    assert!(!ask("GET", "/apis/example.com/v1/secrets", "")
        .unwrap()
        .names_secrets());
}

#[test]
fn exec_arguments_in_order() {
    let r = ask(
        "POST",
        "/api/v1/namespaces/prod/pods/web-1/exec",
        "command=rm&command=-rf&command=%2Fdata&container=web&stdin=true&tty=1&stdout=true",
    )
    .unwrap();
    assert_eq!(r.command, ["rm", "-rf", "/data"]);
    assert_eq!(r.container, "web");
    assert!(r.tty && r.stdin);
}

#[test]
fn what_the_api_server_would_not_take_either() {
    assert!(ask("GET", "/api/v1/namespaces/prod/pods/a/log/extra", "")
        .is_ok_and(|r| r.subresource == "log"));
    assert!(ask("OPTIONS", "/api/v1/namespaces/prod/pods", "").is_err());
    assert!(ask("GET", "/api/v1/namespaces/prod", "").is_ok_and(|r| r.verb == "get"));
}

#[test]
fn a_delete_reads_its_dry_run_from_its_body() {
    let segs: Vec<String> = [
        "apis",
        "apps",
        "v1",
        "namespaces",
        "prod",
        "deployments",
        "web",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let del = http::Method::DELETE;
    let q = |v: &str| vec![("dryRun".to_string(), v.to_string())];
    let body = br#"{"propagationPolicy":"Background","dryRun":["All"]}"#;
    assert!(
        KubeRequest::classify(&del, &segs, &[], body)
            .unwrap()
            .dry_run
    );
    // The API server ignores the query when a body is sent.
    let real = br#"{"propagationPolicy":"Background"}"#;
    assert!(
        !KubeRequest::classify(&del, &segs, &q("All"), real)
            .unwrap()
            .dry_run
    );
    assert!(
        KubeRequest::classify(&del, &segs, &q("All"), b"")
            .unwrap()
            .dry_run
    );
    // A body the gateway cannot read is no dry run.
    assert!(
        !KubeRequest::classify(&del, &segs, &[], b"\x6b\x38\x73\x00")
            .unwrap()
            .dry_run
    );
    // Other verbs read it from the query (their body is the object).
    let patch = http::Method::PATCH;
    assert!(
        KubeRequest::classify(&patch, &segs, &q("All"), br#"{"dryRun":[]}"#)
            .unwrap()
            .dry_run
    );
}

#[test]
fn watch_and_names_read_as_the_api_server_reads_them() {
    for (query, verb) in [
        ("watch=yes", "watch"),
        ("watch=tRue", "watch"),
        ("watch=false&watch=true", "list"),
        ("watch=0", "list"),
        ("watch=FALSE", "list"),
    ] {
        assert_eq!(
            verb_of("GET", "/api/v1/namespaces/prod/secrets", query),
            verb,
            "{query}"
        );
    }
    // A named object is a get, whatever watch says; the legacy prefix is a watch.
    assert_eq!(
        verb_of("GET", "/api/v1/namespaces/prod/secrets/db", "watch=true"),
        "get"
    );
    assert_eq!(
        verb_of("GET", "/api/v1/watch/namespaces/prod/secrets/db", ""),
        "watch"
    );
    for (selector, name) in [
        ("metadata.name%3D%3Ddb", "db"),
        ("type%3DOpaque,metadata.name%3Ddb", "db"),
        ("metadata.name!%3Ddb", ""),
        ("metadata.namespace%3Dprod", ""),
    ] {
        let r = ask(
            "GET",
            "/api/v1/namespaces/prod/secrets",
            &format!("fieldSelector={selector}"),
        )
        .unwrap();
        assert_eq!(r.name, name, "{selector}");
    }
}

#[test]
fn queries_go_reads_differently_are_named() {
    assert!(query_read_alike("command=rm&command=-rf&command=%2Fdata").is_ok());
    assert!(query_read_alike("command=rm&command=%zz&command=-rf").is_err());
    assert!(query_read_alike("command=a;b").is_err());
    assert!(query_read_alike("x=%4").is_err());
    assert!(query_read_alike("").is_ok());
}

#[test]
fn terminal_and_input_options_read_as_the_api_server_reads_them() {
    for (q, on) in [
        ("yes", true),
        ("on", true),
        ("t", true),
        ("", true),
        ("0", false),
        ("FALSE", false),
    ] {
        let r = ask(
            "POST",
            "/api/v1/namespaces/prod/pods/web-1/exec",
            &format!("command=sh&stdin={q}&tty={q}"),
        )
        .unwrap();
        assert_eq!((r.stdin, r.tty), (on, on), "{q:?}");
    }
}

#[test]
fn port_forward_names_its_ports() {
    let r = ask(
        "GET",
        "/api/v1/namespaces/prod/pods/web-1/portforward",
        "ports=80,443&ports=5432",
    )
    .unwrap();
    assert_eq!(
        (r.verb, r.ports.as_slice()),
        ("portforward", &[80u16, 443, 5432][..])
    );
    assert!(ask(
        "GET",
        "/api/v1/namespaces/prod/pods/web-1/portforward",
        "ports=http"
    )
    .is_err());
    assert!(
        ask("POST", "/api/v1/namespaces/prod/pods/web-1/portforward", "")
            .unwrap()
            .ports
            .is_empty()
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any path, query and body a caller sends is classified or refused.
        #[test]
        fn any_request_is_classified_or_refused(
            method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("PATCH"), Just("DELETE"), Just("HEAD"), Just("OPTIONS")],
            segments in proptest::collection::vec("[a-z0-9.:-]{0,12}|watch|namespaces|api|apis|exec|portforward", 0..8),
            query in proptest::collection::vec(("[a-zA-Z]{1,12}", ".{0,20}"), 0..6),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            upgrading in any::<bool>(),
        ) {
            let query: Vec<(String, String)> = query;
            let method: http::Method = method.parse().unwrap();
            if let Ok(r) = KubeRequest::classify(&method, &segments, &query, &body) {
                prop_assert!(!r.verb.is_empty());
            }
            let raw = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish();
            let _ = KubeRequest::of_request(&method, Some(&raw), &segments, &body, upgrading);
        }
    }
}
