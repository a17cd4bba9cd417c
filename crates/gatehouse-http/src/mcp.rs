//! MCP (the Model Context Protocol, JSON-RPC over Streamable HTTP): one
//! message → one action, read from the body the gateway forwards; refusals
//! as JSON-RPC errors the SDKs show with code, message and data; `tools/list`
//! answers filtered to the tools the caller may call.
//!
//! Batches (a JSON array of messages) were removed from the protocol in its
//! 2025-06-18 revision and no SDK client sends them, but some servers still
//! run them: a batch is decided message by message, and forwarded only
//! when every message of it is allowed (one that needs approval refuses the
//! batch: it is sent alone to be approved).

use crate::refusals::{full, Body, Problem};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

/// The JSON-RPC error code of every gateway refusal: implementation-defined,
/// and none the SDKs give a meaning of their own (-32000, -32001 and
/// -32020 to -32099 are theirs).
pub(crate) const REFUSED: i64 = -32003;

/// One MCP message as decided and recorded.
#[derive(Debug, Clone)]
pub(crate) struct McpCall {
    /// The request's id; `None` for a notification (or the HTTP GET/DELETE
    /// of a session).
    pub(crate) id: Option<Value>,
    pub(crate) method: String,
    /// The Cedar action (`mcp:tools/call`).
    pub(crate) action: &'static str,
    pub(crate) tool: String,
    pub(crate) uri: String,
    pub(crate) prompt: String,
    pub(crate) argument_names: Vec<String>,
    pub(crate) arguments: Vec<String>,
    /// What is recorded and bound to an approval:
    /// `tools/call delete_user {"id":7}` (arguments with sorted keys, no id).
    pub(crate) text: String,
    /// A batch: its messages, each decided (this call stands for the whole).
    pub(crate) batch: Vec<McpCall>,
    /// The arguments written canonically (sorted keys), `""` without any.
    pub(crate) canonical_args: String,
}

impl McpCall {
    /// The call standing for a batch: recorded as its messages' texts.
    pub(crate) fn batch(calls: Vec<McpCall>) -> Self {
        let text = format!(
            "batch of {}: {}",
            calls.len(),
            calls
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        McpCall {
            id: None,
            method: "(batch)".into(),
            action: "mcp:other",
            tool: String::new(),
            uri: String::new(),
            prompt: String::new(),
            argument_names: Vec::new(),
            arguments: Vec::new(),
            text,
            batch: calls,
            canonical_args: String::new(),
        }
    }

    /// Whether it is, or a batch holds, a listing the gateway filters
    /// (`tools/list`, `resources/list`, `prompts/list`).
    pub(crate) fn lists(&self) -> bool {
        let listing = |m: &str| Listed::ALL.iter().any(|l| l.method() == m);
        listing(&self.method) || self.batch.iter().any(|c| listing(&c.method))
    }
}

/// The action of a JSON-RPC method.
fn action_of(method: &str) -> &'static str {
    match method {
        "tools/call" => "mcp:tools/call",
        "resources/read" => "mcp:resources/read",
        "prompts/get" => "mcp:prompts/get",
        "tools/list" => "mcp:tools/list",
        "resources/list" | "resources/templates/list" => "mcp:resources/list",
        "prompts/list" => "mcp:prompts/list",
        "initialize" | "ping" | "server/discover" | "logging/setLevel" => "mcp:session",
        m if m.starts_with("notifications/") => "mcp:session",
        _ => "mcp:other",
    }
}

/// What a POST carries: one message, or a batch of them.
#[derive(Debug, Clone)]
pub(crate) enum Posted {
    One(Box<McpCall>),
    Batch(Vec<McpCall>),
}

/// Most messages one batch may hold.
const BATCH_LIMIT: usize = 100;

/// Reads a POST body into what it carries and the bytes to forward: the
/// message as the gateway read it, written anew, so a server whose parser
/// differs (keys matched without case, the first of two equal keys) runs
/// what was decided. `Err` is the refusal to send.
pub(crate) fn parse_posted(
    body: &[u8],
    headers: &HeaderMap,
) -> Result<(Posted, bytes::Bytes), Problem> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    if let Some(why) = ambiguous_keys(&v) {
        return Err(invalid(why));
    }
    let forward = serde_json::to_vec(&v)
        .map(bytes::Bytes::from)
        .map_err(|e| invalid(format!("the message cannot be written again: {e}")))?;
    parse_json(v, headers).map(|p| (p, forward))
}

/// Keys some servers would read as another key: two that differ only by
/// case (Go's JSON decoding matches names without case), and keys with
/// control or non-ASCII characters (a trailing NUL, Unicode folding).
pub(crate) fn ambiguous_keys(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => {
            let mut seen = std::collections::HashSet::new();
            for (k, x) in m {
                if k.chars().any(|c| c.is_control() || !c.is_ascii()) {
                    return Some(format!(
                        "the key {k:?} has control or non-ASCII characters, which servers may read as another key"
                    ));
                }
                if !seen.insert(k.to_ascii_lowercase()) {
                    return Some(format!(
                        "two keys differ only by case ({k:?}), which some servers read as one"
                    ));
                }
                if let Some(why) = ambiguous_keys(x) {
                    return Some(why);
                }
            }
            None
        }
        Value::Array(items) => items.iter().find_map(ambiguous_keys),
        _ => None,
    }
}

fn parse_json(v: Value, headers: &HeaderMap) -> Result<Posted, Problem> {
    match v {
        Value::Array(items) if items.is_empty() => Err(invalid("the batch is empty".into())),
        Value::Array(items) if items.len() > BATCH_LIMIT => Err(invalid(format!(
            "the batch holds {} messages, more than the {BATCH_LIMIT} the gateway decides at once",
            items.len()
        ))),
        // The routing headers name one message; in a batch only bodies count.
        Value::Array(items) => items
            .into_iter()
            .map(|item| parse_value(item, &HeaderMap::new()))
            .collect::<Result<Vec<_>, _>>()
            .map(Posted::Batch),
        v => parse_value(v, headers).map(|c| Posted::One(Box::new(c))),
    }
}

/// Reads one message from a POST body; `Err` is the refusal to send.
#[cfg(test)]
pub(crate) fn parse(body: &[u8], headers: &HeaderMap) -> Result<McpCall, Problem> {
    match parse_posted(body, headers)?.0 {
        Posted::One(c) => Ok(*c),
        Posted::Batch(_) => Err(invalid("a batch".into())),
    }
}

fn parse_value(v: Value, headers: &HeaderMap) -> Result<McpCall, Problem> {
    let m = match v {
        Value::Object(m) => m,
        _ => return Err(invalid("the body is not a JSON-RPC message".into())),
    };
    let id = m.get("id").cloned();
    let method = match m.get("method") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid("method is not a string".into())),
        // A response to a request of the server (sampling, elicitation).
        None if m.contains_key("result") || m.contains_key("error") => String::new(),
        None => return Err(invalid("the message has no method".into())),
    };
    let params = m.get("params").and_then(Value::as_object);
    let string = |key: &str| -> Result<String, Problem> {
        match params.and_then(|p| p.get(key)) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(invalid(format!("{method} needs params.{key} as a string"))),
        }
    };
    let (tool, uri, prompt) = match method.as_str() {
        "tools/call" => (string("name")?, String::new(), String::new()),
        "resources/read" => (String::new(), string("uri")?, String::new()),
        "prompts/get" => (String::new(), String::new(), string("name")?),
        _ => (String::new(), String::new(), String::new()),
    };
    // The routing headers of the 2026-07-28 revision must say what the body says.
    check_header(headers, "mcp-method", &method)?;
    let named = [&tool, &uri, &prompt]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    if !named.is_empty() {
        check_header(headers, "mcp-name", &named)?;
    }
    let args = params
        .and_then(|p| p.get("arguments"))
        .and_then(Value::as_object);
    let (argument_names, arguments) = args.map(scalars).unwrap_or_default();
    let action = if method.is_empty() {
        "mcp:other"
    } else {
        action_of(&method)
    };
    let mut text = if method.is_empty() {
        "(response to a server request)".to_string()
    } else {
        method.clone()
    };
    if !named.is_empty() {
        text.push(' ');
        text.push_str(&named);
    }
    let mut canonical_args = String::new();
    if let Some(a) = args {
        canonical(&Value::Object(a.clone()), &mut canonical_args);
        text.push(' ');
        text.push_str(&canonical_args);
    }
    Ok(McpCall {
        id,
        method,
        action,
        tool,
        uri,
        prompt,
        argument_names,
        arguments,
        text,
        batch: Vec::new(),
        canonical_args,
    })
}

/// The HTTP GET (the server's event stream) or DELETE (end the session) of
/// an MCP session.
pub(crate) fn session_request(method: &http::Method) -> McpCall {
    McpCall {
        id: None,
        method: String::new(),
        action: "mcp:session",
        tool: String::new(),
        uri: String::new(),
        prompt: String::new(),
        argument_names: Vec::new(),
        arguments: Vec::new(),
        text: format!(
            "{} {}",
            method,
            if method == http::Method::GET {
                "(server event stream)"
            } else {
                "(end session)"
            }
        ),
        batch: Vec::new(),
        canonical_args: String::new(),
    }
}

fn check_header(headers: &HeaderMap, name: &str, body: &str) -> Result<(), Problem> {
    let Some(h) = headers.get(name) else {
        return Ok(());
    };
    let h = h.to_str().unwrap_or("");
    // Non-ASCII values travel base64-encoded; the server checks those.
    if h.starts_with("=?base64?") || h == body {
        return Ok(());
    }
    Err(invalid(format!(
        "the {name} header ({h:?}) does not match the message's body ({body:?}); the gateway decides on the body"
    )))
}

/// Writes `v` with every object's members sorted by name, so the same
/// arguments make the same text (and approval) whatever order a client
/// sent them in.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A JSON object's member names, and its strings, numbers and booleans as `name=value`.
pub(crate) fn scalars(m: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let names = m.keys().cloned().collect();
    let pairs = m
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some(format!("{k}={s}")),
            Value::Number(n) => Some(format!("{k}={n}")),
            Value::Bool(b) => Some(format!("{k}={b}")),
            _ => None,
        })
        .collect();
    (names, pairs)
}

fn invalid(detail: String) -> Problem {
    crate::refusals::bad_message(&detail)
}

/// A refusal as MCP clients read it: a JSON-RPC error (code -32003, the
/// problem's title and detail as message, the rest as data). A refused
/// request with an id is answered with HTTP 200, so the SDKs show the
/// error itself and the session goes on; others keep the problem's status.
pub(crate) fn error_response(problem: &Problem, id: Option<&Value>) -> Response<Body> {
    let mut data = json!({"title": problem.title, "status": problem.status.as_u16()});
    if let Some(h) = &problem.hint {
        data["hint"] = h.clone().into();
    }
    for (k, v) in &problem.extra {
        data[*k] = v.clone();
    }
    let code = if problem.status == StatusCode::BAD_REQUEST {
        -32600
    } else {
        REFUSED
    };
    let doc = json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {"code": code, "message": problem.detail, "data": data},
    });
    let mut r = Response::new(full(Bytes::from(doc.to_string())));
    *r.status_mut() = match (id, problem.status) {
        (Some(Value::Null) | None, s) => s,
        (Some(_), StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED) => problem.status,
        (Some(_), _) => StatusCode::OK,
    };
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if problem.status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gatehouse\""),
        );
    }
    r
}

/// What a listing lists: each kind is shown only with the entries the
/// caller could use (a call of the tool, a read of the resource, a get of
/// the prompt would not be denied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listed {
    /// `tools/list`: `result.tools[].name`.
    Tools,
    /// `resources/list`: `result.resources[].uri`.
    Resources,
    /// `prompts/list`: `result.prompts[].name`.
    Prompts,
}

impl Listed {
    const ALL: [Listed; 3] = [Listed::Tools, Listed::Resources, Listed::Prompts];

    /// The JSON-RPC method that lists them.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Listed::Tools => "tools/list",
            Listed::Resources => "resources/list",
            Listed::Prompts => "prompts/list",
        }
    }

    /// The member of `result` holding the entries, and the entry's key.
    fn member_and_key(self) -> (&'static str, &'static str) {
        match self {
            Listed::Tools => ("tools", "name"),
            Listed::Resources => ("resources", "uri"),
            Listed::Prompts => ("prompts", "name"),
        }
    }
}

/// Removes from a listing answer (JSON, or server-sent events whose data
/// lines are JSON) the tools, resources and prompts `keep` refuses. Every
/// other byte stays.
pub(crate) fn filter_listing(
    body: &[u8],
    event_stream: bool,
    keep: &dyn Fn(Listed, &str) -> bool,
) -> Result<Vec<u8>, String> {
    let filter_doc = |text: &[u8]| -> Result<Vec<u8>, String> {
        let mut v: Value = serde_json::from_slice(text)
            .map_err(|e| format!("the listing answer is not JSON: {e}"))?;
        let answers: Vec<&mut Value> = match &mut v {
            Value::Array(items) => items.iter_mut().collect(),
            one => vec![one],
        };
        for a in answers {
            let Some(result) = a.get_mut("result") else {
                continue;
            };
            for listed in Listed::ALL {
                let (member, key) = listed.member_and_key();
                if let Some(entries) = result.get_mut(member).and_then(Value::as_array_mut) {
                    entries.retain(|e| {
                        e.get(key)
                            .and_then(Value::as_str)
                            .is_some_and(|k| keep(listed, k))
                    });
                }
            }
        }
        serde_json::to_vec(&v).map_err(|e| e.to_string())
    };
    if !event_stream {
        return filter_doc(body);
    }
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|b| *b == b'\n') {
        match line.strip_prefix(b"data:") {
            Some(payload) => {
                let end = payload.len()
                    - payload
                        .iter()
                        .rev()
                        .take_while(|b| matches!(b, b'\n' | b'\r'))
                        .count();
                let (doc, eol) = payload.split_at(end);
                let trimmed = doc.trim_ascii();
                out.extend_from_slice(b"data: ");
                // Any JSON payload (an answer or a batch's array of them) is
                // filtered; one that is not JSON stops the answer.
                if trimmed.is_empty() {
                    out.extend_from_slice(trimmed);
                } else {
                    out.extend_from_slice(&filter_doc(trimmed)?);
                }
                out.extend_from_slice(eol);
            }
            None => out.extend_from_slice(line),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
