//! `/_utils/`: the admin page, served from the binary. Its files (plain HTML, CSS and JavaScript
//! modules beside this one, no build step) are compiled in with `include_str!`, so the page works
//! offline and is the same on every host, the Worker included. The page holds no secret: it
//! calls the same API any client calls, with the `AuthSession` cookie `POST /_session` sets.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::AppState;

/// Only this origin's own files and API: no inline script, no eval, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

macro_rules! files {
    ($($name:literal => $kind:literal),* $(,)?) => {
        &[$(($name, $kind, include_str!($name))),*]
    };
}

/// (name, content type, text).
const FILES: &[(&str, &str, &str)] = files![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "login.js" => "text/javascript; charset=utf-8",
    "databases.js" => "text/javascript; charset=utf-8",
    "documents.js" => "text/javascript; charset=utf-8",
    "document.js" => "text/javascript; charset=utf-8",
    "revtree.js" => "text/javascript; charset=utf-8",
    "changes.js" => "text/javascript; charset=utf-8",
    "security.js" => "text/javascript; charset=utf-8",
    "users.js" => "text/javascript; charset=utf-8",
    "kv.js" => "text/javascript; charset=utf-8",
    "tokens.js" => "text/javascript; charset=utf-8",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_utils", get(|| async { Redirect::permanent("/_utils/") }))
        .route("/_utils/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/_utils/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move {
                serve(&file, &headers)
            }),
        )
}

/// Strong ETags from the files' contents, computed once: a browser revalidates (`no-cache`)
/// and gets `304` until the binary changes.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, text)| {
                let digest = Sha256::digest(text.as_bytes());
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"not_found","reason":"missing"}"#,
        )
            .into_response();
    };
    let (_, kind, text) = FILES[i];
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind)], text).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        // A file the page imports but FILES forgets would be a 404 in the browser only.
        for (name, _, text) in FILES {
            let imports = text
                .split(" from './")
                .skip(1)
                .chain(text.split("import('./").skip(1))
                .chain(text.split("href=\"").skip(1));
            for rest in imports {
                let Some(file) = rest.split(['\'', '"']).next() else {
                    continue;
                };
                if !file.ends_with(".js") && !file.ends_with(".css") {
                    continue;
                }
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == file),
                    "{name} imports {file}, which is not served"
                );
            }
        }
    }

    #[test]
    fn a_file_is_served_with_its_policy_and_revalidated_by_etag() {
        let resp = serve("app.js", &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::OK);
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"));
        let etag = resp.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(serve("app.js", &again).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
