//! The gateway's refusals on a `kubernetes` connection, in the API
//! server's own form: a `Status` object, which kubectl prints as
//! `Error from server (Forbidden): <message>`.

use crate::refusals::{full, Body, Problem};
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

/// The `reason` the API server gives with a status code.
fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A refusal as a `Status` object: the message is the problem's detail
/// and what to do next; its extra members (the approval request's id, the
/// policies) are the causes.
pub(crate) fn status_response(problem: &Problem) -> Response<Body> {
    let message = match &problem.hint {
        Some(h) => format!("{} ({h})", problem.detail),
        None => problem.detail.clone(),
    };
    let causes: Vec<Value> = problem
        .extra
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"reason": "Gatehouse", "field": k, "message": text})
        })
        .collect();
    let doc = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason(problem.status),
        "details": {"causes": causes},
        "code": problem.status.as_u16(),
    });
    let mut r = Response::new(full(doc.to_string()));
    *r.status_mut() = problem.status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
