//! The console's files, built into the binary: one page, its scripts (ES
//! modules, no inline script, so the Content-Security-Policy forbids every
//! script the gateway did not ship) and its stylesheet.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const JS: &str = "text/javascript; charset=utf-8";

/// Name, content type and contents of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../console/app.css"),
    ),
    ("app.js", JS, include_str!("../../console/app.js")),
    ("api.js", JS, include_str!("../../console/api.js")),
    ("view.js", JS, include_str!("../../console/view.js")),
    ("sign-in.js", JS, include_str!("../../console/sign-in.js")),
    (
        "approvals.js",
        JS,
        include_str!("../../console/approvals.js"),
    ),
    ("sessions.js", JS, include_str!("../../console/sessions.js")),
    ("player.js", JS, include_str!("../../console/player.js")),
    ("terminal.js", JS, include_str!("../../console/terminal.js")),
    ("evidence.js", JS, include_str!("../../console/evidence.js")),
    ("access.js", JS, include_str!("../../console/access.js")),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../console/icon.svg"),
    ),
];

const INDEX: &str = include_str!("../../console/index.html");

/// `GET /ui/`: the console's one page.
pub(crate) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// `GET /ui/assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => {
            let mut res = ([(header::CONTENT_TYPE, *kind)], *body).into_response();
            // Assets change only with the binary; revalidated on each load.
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(crate::ErrorBody {
                error: format!("the console has no file {name:?}"),
            }),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_module_the_scripts_import_is_served() {
        for (name, _, body) in super::ASSETS {
            for line in body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap();
                assert!(
                    super::ASSETS.iter().any(|(n, _, _)| *n == imported),
                    "{name} imports {imported}, which is not served"
                );
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = super::INDEX;
        assert!(!page.contains("<script>"), "inline script");
        assert!(!page.contains("style="), "inline style");
        for handler in ["onclick", "onload", "onsubmit", "onerror", "oninput"] {
            assert!(!page.contains(handler), "inline event handler {handler}");
        }
    }
}
