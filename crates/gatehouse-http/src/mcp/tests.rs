//! The MCP reader and listing filter: unit and property tests.
use super::*;

fn call(body: &str) -> Result<McpCall, Problem> {
    parse(body.as_bytes(), &HeaderMap::new())
}

proptest::proptest! {
    /// A caller's arbitrary bytes are refused or read, never a panic.
    #[test]
    fn arbitrary_posts_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = parse_posted(&body, &HeaderMap::new());
    }

    /// JSON-shaped posts too (deeper into the reader).
    #[test]
    fn json_shaped_posts_never_panic(body in r#"[\[\]{}",:a-z0-9 ]{0,120}"#) {
        let _ = parse_posted(body.as_bytes(), &HeaderMap::new());
    }
}

#[test]
fn a_tool_call_is_decided_by_its_name_and_arguments() {
    let c = call(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query_db","arguments":{"sql":"select 1","limit":5,"opts":{}},"_meta":{"x":1}}}"#).unwrap();
    assert_eq!(c.action, "mcp:tools/call");
    assert_eq!(c.tool, "query_db");
    assert_eq!(c.id, Some(json!(3)));
    assert_eq!(c.argument_names, ["sql", "limit", "opts"]);
    assert_eq!(c.arguments, ["sql=select 1", "limit=5"]);
    assert_eq!(
        c.text,
        r#"tools/call query_db {"limit":5,"opts":{},"sql":"select 1"}"#
    );
}

#[test]
fn plumbing_lists_and_unknown_methods_get_their_actions() {
    for (m, a) in [
        ("initialize", "mcp:session"),
        ("notifications/initialized", "mcp:session"),
        ("server/discover", "mcp:session"),
        ("tools/list", "mcp:tools/list"),
        ("resources/templates/list", "mcp:resources/list"),
        ("completion/complete", "mcp:other"),
    ] {
        let c = call(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}"}}"#)).unwrap();
        assert_eq!(c.action, a, "{m}");
    }
}

#[test]
fn a_batch_is_read_message_by_message() {
    let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"q","arguments":{}}}]"#;
    let Posted::Batch(calls) = parse_posted(body.as_bytes(), &HeaderMap::new()).unwrap().0 else {
        panic!("not a batch")
    };
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].tool, "q");
    assert!(parse_posted(b"[]", &HeaderMap::new()).is_err());
    assert!(parse_posted(
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}]"#,
        &HeaderMap::new()
    )
    .is_err());
}

#[test]
fn keys_a_server_could_read_as_other_keys_are_refused() {
    for bad in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":{"sql":"x","SQL":"y"}}}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"method\\u0000\":\"tools/call\"}",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","\u017fomething":1}"#,
    ] {
        assert!(parse(bad.as_bytes(), &HeaderMap::new()).is_err(), "{bad}");
    }
    // What is forwarded is the message as read: the last of two equal keys.
    let (_, fwd) = parse_posted(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}"#,
        &HeaderMap::new(),
    )
    .unwrap();
    assert_eq!(
        fwd.as_ref(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
    );
}

#[test]
fn batches_malformed_messages_and_lying_headers_are_refused() {
    assert!(call(r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#).is_err());
    assert!(call("not json").is_err());
    assert!(call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#).is_err());
    let mut h = HeaderMap::new();
    h.insert("mcp-name", HeaderValue::from_static("query_db"));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_user"}}"#;
    let e = parse(body.as_bytes(), &h).unwrap_err();
    assert!(e.detail.contains("does not match"), "{}", e.detail);
}

#[test]
fn resource_and_prompt_lists_are_filtered_by_uri_and_name() {
    let doc = r#"[{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"customers://list"},{"uri":"secrets://keys"}]}},{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"summarize"},{"name":"dump"}]}}]"#;
    let keep = |l: Listed, k: &str| match l {
        Listed::Resources => k == "customers://list",
        Listed::Prompts => k == "summarize",
        Listed::Tools => true,
    };
    let out = String::from_utf8(filter_listing(doc.as_bytes(), false, &keep).unwrap()).unwrap();
    assert!(
        out.contains("customers://list") && out.contains("summarize"),
        "{out}"
    );
    assert!(
        !out.contains("secrets://keys") && !out.contains("dump"),
        "{out}"
    );
}

#[test]
fn tools_lists_are_filtered_in_json_and_in_events() {
    let doc = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"query_db"},{"name":"delete_user"}],"ttlMs":0}}"#;
    let keep = |_: Listed, n: &str| n != "delete_user";
    let out = String::from_utf8(filter_listing(doc.as_bytes(), false, &keep).unwrap()).unwrap();
    assert!(out.contains("query_db") && !out.contains("delete_user") && out.contains("ttlMs"));
    let sse = format!("event: message\r\ndata: {doc}\r\n\r\n");
    let out = String::from_utf8(filter_listing(sse.as_bytes(), true, &keep).unwrap()).unwrap();
    assert!(out.starts_with("event: message\r\ndata: {"), "{out}");
    assert!(
        out.ends_with("}\r\n\r\n") && !out.contains("delete_user"),
        "{out}"
    );
}

proptest::proptest! {
    /// A listing answer comes from the upstream: any bytes, as JSON or as
    /// server-sent events, are filtered or refused, never a panic.
    #[test]
    fn arbitrary_listing_answers_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        event_stream in proptest::prelude::any::<bool>(),
    ) {
        let _ = filter_listing(&body, event_stream, &|_, _| false);
    }

    /// JSON-shaped answers reach deeper: results, members and entries.
    #[test]
    fn json_shaped_listing_answers_never_panic(
        body in r#"(data: )?[\[\]{}",:a-z0-9 ]{0,120}"#,
        event_stream in proptest::prelude::any::<bool>(),
    ) {
        let _ = filter_listing(body.as_bytes(), event_stream, &|_, k| k.len() % 2 == 0);
    }
}
