//! Hostile input over every route group: malformed JSON, wrong types, huge numbers, deep nesting,
//! oversize bodies and headers, invalid UTF-8 and path tricks in names, bad cursors and `since`,
//! negative limits. Each request gets its precise status in the API's own error shape, the
//! server keeps serving, and a request that failed wrote nothing (the whole store is compared
//! before and after each one).

mod common;

use couchkv::http::HttpConfig;
use couchkv_adapters::{ListOptions, Store};
use reqwest::Method;
use serde_json::Value;

/// Everything in the store: every namespace, key, value and metadata.
async fn fingerprint(store: &dyn Store) -> Vec<(String, String, Vec<u8>, Option<String>)> {
    let mut out = Vec::new();
    for ns in store.list_namespaces().await.unwrap() {
        let mut opts = ListOptions {
            values: true,
            ..ListOptions::default()
        };
        loop {
            let page = store.list(&ns.id, &opts).await.unwrap();
            for e in &page.entries {
                out.push((
                    ns.id.clone(),
                    e.key.clone(),
                    e.value.clone().unwrap_or_default().to_vec(),
                    e.metadata.clone(),
                ));
            }
            match page.entries.last() {
                Some(last) if page.more => opts.start = std::ops::Bound::Excluded(last.key.clone()),
                _ => break,
            }
        }
    }
    out
}

/// The error shape each API answers with.
#[derive(Clone, Copy)]
enum Shape {
    /// CouchDB: `{"error": NAME, "reason": "…"}`.
    Couch(&'static str),
    /// Cloudflare: `{"success": false, "errors": [{"code": CODE, "message": "…"}]}`.
    Cloudflare(u64),
}

struct Row {
    method: Method,
    path: String,
    body: Vec<u8>,
    /// The `Content-Type` sent with a body (JSON unless a row says otherwise).
    content_type: &'static str,
    status: u16,
    shape: Shape,
}

fn row(method: Method, path: &str, body: impl Into<Vec<u8>>, status: u16, shape: Shape) -> Row {
    Row {
        method,
        path: path.to_owned(),
        body: body.into(),
        content_type: "application/json",
        status,
        shape,
    }
}

/// A row whose body is sent as another content type.
fn typed(mut r: Row, content_type: &'static str) -> Row {
    r.content_type = content_type;
    r
}

/// A JSON list of `n` copies of `item`.
fn many(n: usize, item: &str) -> String {
    format!("[{}]", vec![item; n].join(","))
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"docs":[{{"_id":"deep","v":{}1{}}}]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_hostile_input_cleanly() {
    let config = HttpConfig {
        max_body_bytes: 1024 * 1024,
        ..HttpConfig::default()
    };
    // Any panic anywhere in the process (a handler task included) is counted and fails the test.
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        default_hook(info);
    }));
    let server = common::start(config).await;
    let c = &server.client;
    let base = &server.base;
    // Something to aim at: a database with a document, a namespace with a key.
    assert_eq!(
        c.put(format!("{base}/db")).send().await.unwrap().status(),
        201
    );
    let put = c
        .put(format!("{base}/db/doc"))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let rev = put.json::<Value>().await.unwrap()["rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let kv = "/client/v4/accounts/x/storage/kv/namespaces";
    let ns: Value = c
        .post(format!("{base}{kv}"))
        .body(r#"{"title":"hostile"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ns = ns["result"]["id"].as_str().unwrap().to_owned();
    let nsp = format!("{kv}/{ns}");
    c.put(format!("{base}{nsp}/values/k"))
        .body("v")
        .send()
        .await
        .unwrap();

    use Method as M;
    use Shape::{Cloudflare as Cf, Couch as Cd};
    let big = vec![b'x'; 2 * 1024 * 1024];
    let over = 10_001;
    let rows = vec![
        // What one request may cost (the security issue): every list is bounded, JSON posts
        // must say they are JSON, revision positions cannot wrap.
        typed(
            row(
                M::POST,
                "/db/_bulk_docs",
                r#"{"docs":[{}]}"#,
                415,
                Cd("bad_content_type"),
            ),
            "text/plain",
        ),
        typed(
            row(
                M::POST,
                "/db/_all_docs",
                r#"{"keys":[]}"#,
                415,
                Cd("bad_content_type"),
            ),
            "application/x-www-form-urlencoded",
        ),
        typed(
            row(M::POST, "/db", r#"{"a":1}"#, 415, Cd("bad_content_type")),
            "multipart/form-data; boundary=x",
        ),
        row(
            M::POST,
            "/db/_bulk_docs",
            format!(r#"{{"docs":{}}}"#, many(over, "{}")),
            413,
            Cd("max_bulk_docs_count_exceeded"),
        ),
        row(
            M::POST,
            "/db/_bulk_get",
            format!(r#"{{"docs":{}}}"#, many(over, r#"{"id":"doc"}"#)),
            413,
            Cd("max_bulk_get_count_exceeded"),
        ),
        row(
            M::POST,
            "/db/_all_docs",
            format!(r#"{{"keys":{}}}"#, many(over, r#""doc""#)),
            413,
            Cd("too_large"),
        ),
        row(
            M::POST,
            "/db/_changes?filter=_doc_ids",
            format!(r#"{{"doc_ids":{}}}"#, many(over, r#""doc""#)),
            413,
            Cd("too_large"),
        ),
        row(
            M::POST,
            "/db/_revs_diff",
            format!(
                "{{{}}}",
                (0..over)
                    .map(|i| format!(r#""d{i}":["1-a"]"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            413,
            Cd("too_large"),
        ),
        row(
            M::POST,
            "/db/_revs_diff",
            format!(r#"{{"doc":{}}}"#, many(100_001, r#""1-a""#)),
            413,
            Cd("too_large"),
        ),
        row(
            M::GET,
            &format!("/db/doc?open_revs={}", many(1_001, r#""1-a""#)),
            "",
            413,
            Cd("too_large"),
        ),
        row(
            M::PUT,
            "/db/wrap?new_edits=false",
            r#"{"_rev":"18446744073709551615-aa"}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::PUT,
            "/db/wrap?new_edits=false",
            r#"{"_revisions":{"start":18446744073709551615,"ids":["aa"]}}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_bulk_docs",
            format!(r#"{{"docs":[{{"v":{}}}]}}"#, many(260_000, "[]")),
            413,
            Cd("too_large"),
        ),
        // _purge and _compact (the fidelity issue): bad bodies are refused whole.
        row(M::POST, "/db/_purge", "[]", 400, Cd("bad_request")),
        row(
            M::POST,
            "/db/_purge",
            r#"{"doc":"1-a"}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_purge",
            r#"{"doc":["nope"]}"#,
            400,
            Cd("bad_request"),
        ),
        row(M::POST, "/nodb/_purge", "{}", 404, Cd("not_found")),
        row(M::POST, "/nodb/_compact", "{}", 404, Cd("not_found")),
        row(
            M::PUT,
            &format!("/db/{}", "x".repeat(16 * 1024 + 1)),
            "{}",
            400,
            Cd("bad_request"),
        ),
        // Server-level routes.
        row(M::GET, "/_uuids?count=-1", "", 400, Cd("bad_request")),
        row(M::GET, "/_uuids?count=abc", "", 400, Cd("bad_request")),
        row(
            M::GET,
            "/_uuids?count=100000000",
            "",
            400,
            Cd("bad_request"),
        ),
        row(M::POST, "/_session", "{", 400, Cd("bad_request")),
        row(
            M::POST,
            "/_session",
            r#"{"name":1,"password":[]}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/_session",
            r#"{"name":"admin","password":"wrong"}"#,
            401,
            Cd("unauthorized"),
        ),
        // Database names: case, leading underscore, dots, NUL, invalid UTF-8.
        row(M::PUT, "/Bad", "", 400, Cd("illegal_database_name")),
        row(M::PUT, "/_bad", "", 400, Cd("illegal_database_name")),
        // The client resolves dot segments (`/..`, `/%2E%2E`) to `/`, which takes no PUT.
        row(M::PUT, "/..", "", 405, Cd("method_not_allowed")),
        row(M::PUT, "/%2E%2E", "", 405, Cd("method_not_allowed")),
        row(M::PUT, "/_all_dbs", "", 405, Cd("method_not_allowed")),
        row(M::PUT, "/a%00b", "", 400, Cd("illegal_database_name")),
        row(M::PUT, "/a%FFb", "", 400, Cd("bad_request")),
        row(M::GET, "/nodb", "", 404, Cd("not_found")),
        row(M::GET, "/nodb/doc", "", 404, Cd("not_found")),
        row(
            M::POST,
            "/nodb/_bulk_docs",
            r#"{"docs":[]}"#,
            404,
            Cd("not_found"),
        ),
        // Documents: malformed JSON, wrong types, huge numbers, deep nesting, bad revisions.
        row(M::PUT, "/db/x", "{", 400, Cd("bad_request")),
        row(M::PUT, "/db/x", "[1,2]", 400, Cd("bad_request")),
        row(M::PUT, "/db/x", r#"{"v":1e999}"#, 400, Cd("bad_request")),
        row(M::PUT, "/db/x", r#"{"_rev":"bad"}"#, 400, Cd("bad_request")),
        row(M::PUT, "/db/x", r#"{"_rev":"1-abc"}"#, 409, Cd("conflict")),
        row(M::PUT, "/db/doc", r#"{"a":2}"#, 409, Cd("conflict")),
        row(
            M::PUT,
            "/db/x",
            r#"{"_attachments":5}"#,
            400,
            Cd("bad_request"),
        ),
        row(M::PUT, "/db/_bad_id", "{}", 400, Cd("bad_request")),
        row(M::PUT, "/db/x%FF", "{}", 400, Cd("bad_request")),
        row(M::GET, "/db/doc?rev=garbage", "", 400, Cd("bad_request")),
        row(
            M::GET,
            "/db/doc?open_revs=notjson",
            "",
            400,
            Cd("bad_request"),
        ),
        row(M::DELETE, "/db/doc", "", 409, Cd("conflict")),
        row(M::DELETE, "/db/doc?rev=1-0000", "", 409, Cd("conflict")),
        row(M::POST, "/db/_bulk_docs", "{", 400, Cd("bad_request")),
        row(
            M::POST,
            "/db/_bulk_docs",
            r#"{"docs":5}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_bulk_docs",
            r#"{"docs":[1]}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_bulk_docs",
            r#"{"docs":[],"new_edits":"no"}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_bulk_docs",
            nested(1000),
            400,
            Cd("bad_request"),
        ),
        row(M::POST, "/db/_bulk_docs", big.clone(), 413, Cd("too_large")),
        row(
            M::POST,
            "/db/_bulk_get",
            r#"{"docs":"x"}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_bulk_get",
            r#"{"docs":[{"id":5}]}"#,
            400,
            Cd("bad_request"),
        ),
        row(M::POST, "/db/_revs_diff", "[1,2]", 400, Cd("bad_request")),
        row(
            M::POST,
            "/db/_revs_diff",
            r#"{"doc":"1-a"}"#,
            400,
            Cd("bad_request"),
        ),
        row(
            M::POST,
            "/db/_all_docs",
            r#"{"keys":"x"}"#,
            400,
            Cd("bad_request"),
        ),
        row(M::GET, "/db/_all_docs?limit=-1", "", 400, Cd("bad_request")),
        row(
            M::GET,
            "/db/_all_docs?startkey=notjson",
            "",
            400,
            Cd("bad_request"),
        ),
        row(M::GET, "/db/_changes?since=abc", "", 400, Cd("bad_request")),
        row(M::GET, "/db/_changes?since=-5", "", 400, Cd("bad_request")),
        row(M::GET, "/db/_changes?limit=-1", "", 400, Cd("bad_request")),
        row(
            M::GET,
            "/db/_changes?feed=bogus",
            "",
            400,
            Cd("bad_request"),
        ),
        row(
            M::GET,
            "/db/_changes?heartbeat=-1",
            "",
            400,
            Cd("bad_request"),
        ),
        row(
            M::GET,
            "/db/_changes?feed=longpoll&timeout=abc",
            "",
            400,
            Cd("bad_request"),
        ),
        row(
            M::PUT,
            "/db/_security",
            r#"{"admins":5}"#,
            400,
            Cd("bad_request"),
        ),
        row(M::PUT, "/db/_security", "{", 400, Cd("bad_request")),
        row(M::PUT, "/db/_local/x", "[]", 400, Cd("bad_request")),
        row(
            M::PUT,
            "/db/_local/x",
            r#"{"_rev":"0-9"}"#,
            409,
            Cd("conflict"),
        ),
        row(M::PUT, "/db/doc/att.txt", "data", 409, Cd("conflict")),
        row(
            M::PUT,
            "/db/doc/att.txt?rev=zzz",
            "data",
            400,
            Cd("bad_request"),
        ),
        row(M::GET, "/db/doc/missing.txt", "", 404, Cd("not_found")),
        // The KV API: unknown namespaces, bad names, cursors, limits, bodies.
        row(M::GET, &format!("{kv}?page=-1"), "", 400, Cf(10000)),
        row(M::GET, &format!("{kv}?per_page=abc"), "", 400, Cf(10000)),
        row(M::POST, kv, "{", 400, Cf(10000)),
        row(M::POST, kv, r#"{"title":5}"#, 400, Cf(10000)),
        row(M::GET, &format!("{kv}/nope/keys"), "", 404, Cf(10013)),
        row(M::GET, &format!("{nsp}/keys?limit=-1"), "", 400, Cf(10000)),
        row(M::GET, &format!("{nsp}/keys?limit=abc"), "", 400, Cf(10000)),
        row(
            M::GET,
            &format!("{nsp}/keys?cursor=%21%21%21"),
            "",
            400,
            Cf(10000),
        ),
        row(M::GET, &format!("{nsp}/values/missing"), "", 404, Cf(10009)),
        // `values/%2E` reaches the server as `values/` (the client resolves the dot segment).
        row(M::PUT, &format!("{nsp}/values/%2E"), "v", 404, Cf(7000)),
        row(M::GET, "/client/v4/nothing/here", "", 404, Cf(7000)),
        row(
            M::PUT,
            &format!("{nsp}/values/{}", "k".repeat(513)),
            "v",
            414,
            Cf(10000),
        ),
        row(M::PUT, &format!("{nsp}/values/a%FF"), "v", 400, Cf(10000)),
        row(
            M::PUT,
            &format!("{nsp}/values/k?expiration=-5"),
            "v",
            400,
            Cf(10000),
        ),
        row(
            M::PUT,
            &format!("{nsp}/values/k?expiration_ttl=abc"),
            "v",
            400,
            Cf(10000),
        ),
        row(
            M::PUT,
            &format!("{nsp}/values/k?expiration_ttl=99999999999999999999999"),
            "v",
            400,
            Cf(10000),
        ),
        row(M::PUT, &format!("{nsp}/bulk"), "{", 400, Cf(10000)),
        row(
            M::PUT,
            &format!("{nsp}/bulk"),
            r#"[{"value":"no key"}]"#,
            400,
            Cf(10000),
        ),
        row(
            M::PUT,
            &format!("{nsp}/bulk"),
            r#"[{"key":"ok","value":"v"},{"key":"","value":"v"}]"#,
            400,
            Cf(10000),
        ),
        row(M::PUT, &format!("{nsp}/bulk"), big.clone(), 413, Cf(10000)),
        row(
            M::POST,
            &format!("{nsp}/bulk/delete"),
            r#"{"not":"a list"}"#,
            400,
            Cf(10000),
        ),
        row(
            M::POST,
            &format!("{nsp}/bulk/get"),
            r#"{"keys":[]}"#,
            400,
            Cf(10000),
        ),
        row(
            M::POST,
            &format!("{nsp}/bulk/get"),
            r#"{"keys":["k"],"type":"xml"}"#,
            400,
            Cf(10000),
        ),
        row(
            M::GET,
            &format!("{nsp}/watch?prefix={}", "p".repeat(600)),
            "",
            414,
            Cf(10000),
        ),
        row(M::POST, "/_couchkv/tokens", "{", 400, Cf(10000)),
        row(
            M::POST,
            "/_couchkv/tokens",
            r#"{"name":"t"}"#,
            400,
            Cf(10000),
        ),
    ];

    let mut failures = Vec::new();
    for r in &rows {
        // `_db_updates` records accepted writes a moment later, in the background: reading it
        // records them now, so what follows is the refused request's doing alone.
        let updates = c.get(format!("{base}/_db_updates")).send().await.unwrap();
        assert_eq!(updates.status(), 200);
        let before = fingerprint(server.store.as_ref()).await;
        let url = format!("{base}{}", r.path);
        let mut req = c.request(r.method.clone(), &url);
        if !r.body.is_empty() {
            req = req.header("content-type", r.content_type);
        }
        let resp = req
            .body(r.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: no answer: {e}", r.method, r.path));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let path = &r.path[..r.path.len().min(100)];
        let what = format!("{} {path} -> {status} {text:.160}", r.method);
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let shaped = match r.shape {
            Shape::Couch(name) => body["error"] == name && body["reason"].is_string(),
            Shape::Cloudflare(code) => {
                body["success"] == false
                    && body["errors"][0]["code"] == code
                    && body["errors"][0]["message"].is_string()
            }
        };
        if status != r.status || !shaped {
            failures.push(format!("expected {}: {what}", r.status));
        }
        if before != fingerprint(server.store.as_ref()).await {
            failures.push(format!("a refused request wrote something: {what}"));
        }
        let up = c.get(format!("{base}/_up")).send().await.unwrap();
        assert_eq!(up.status(), 200, "the server keeps serving after {what}");
    }
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a panic in the server"
    );
    assert!(
        failures.is_empty(),
        "{} of {} rows:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    // The document and key aimed at are untouched.
    let doc: Value = c
        .get(format!("{base}/db/doc"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (doc["_rev"].as_str(), doc["a"].as_i64()),
        (Some(rev.as_str()), Some(1))
    );
}

/// Oversize headers are refused by the HTTP layer before any handler runs.
#[tokio::test]
async fn oversize_headers_are_refused() {
    let server = common::start(HttpConfig::default()).await;
    let resp = server
        .client
        .get(format!("{}/_up", server.base))
        .header("x-huge", "h".repeat(1024 * 1024))
        .send()
        .await;
    match resp {
        Ok(r) => assert_eq!(r.status().as_u16(), 431),
        // Closing the connection is the other answer hyper gives.
        Err(e) => assert!(e.is_request() || e.is_body() || e.is_connect(), "{e}"),
    }
    let up = server
        .client
        .get(format!("{}/_up", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
}

/// A client that sends its body slowly is answered `408` once the body timeout runs out, and
/// nothing is written.
#[tokio::test]
async fn a_slow_body_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = common::start_with(
        HttpConfig::default(),
        couchkv::server::ConnLimits {
            body_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let put = server
        .client
        .put(format!("{}/slow", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let before = fingerprint(server.store.as_ref()).await;
    let addr = server.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /slow/doc HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic YWRtaW46c2VjcmV0\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered within 10 s");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""error":"request_timeout""#), "{text}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert!(before == fingerprint(server.store.as_ref()).await);
}

/// A keep-alive connection left idle is closed by the server after the idle timeout.
#[tokio::test]
async fn idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = common::start_with(
        HttpConfig::default(),
        couchkv::server::ConnLimits {
            idle_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let addr = server.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET /_up HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Now idle: the server closes its end (EOF) after about a second.
    let started = std::time::Instant::now();
    let eof = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf)).await;
    assert!(matches!(eof, Ok(Ok(0)) | Ok(Err(_))), "closed: {eof:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(800));
}

/// An EventSource client that stops reading is cut off once the server's writes to it stall,
/// and its feed lets go of the store's watch: nothing keeps growing for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let server = common::start_with(
        HttpConfig::default(),
        couchkv::server::ConnLimits {
            write_stall_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let c = &server.client;
    let base = &server.base;
    assert_eq!(
        c.put(format!("{base}/big")).send().await.unwrap().status(),
        201
    );
    // 32 MB of documents: far more than the socket buffers hold.
    let filler = "x".repeat(64 * 1024);
    for chunk in 0..16 {
        let docs: Vec<Value> = (0..32)
            .map(|i| serde_json::json!({"_id": format!("d{chunk:02}-{i:02}"), "filler": filler}))
            .collect();
        let r = c
            .post(format!("{base}/big/_bulk_docs"))
            .json(&serde_json::json!({ "docs": docs }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let before = common::couch_watchers(&server.store).await;
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET /big/_changes?feed=eventsource&include_docs=true&since=0&heartbeat=500 HTTP/1.1\r\n\
             Host: {addr}\r\nAuthorization: Basic YWRtaW46c2VjcmV0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The feed starts (it holds a watch) and then, unread, stalls and is cut off.
    let wait = std::time::Duration::from_secs(10);
    let opened = common::couch_watchers_reach(&server.store, before + 1, wait).await;
    assert!(opened, "the feed started");
    let released = common::couch_watchers_reach(&server.store, before, wait).await;
    assert!(
        released,
        "the stalled feed was cut off and let go of its watch"
    );
    let up = c.get(format!("{base}/_up")).send().await.unwrap();
    assert_eq!(up.status(), 200);
    drop(tcp);
}
