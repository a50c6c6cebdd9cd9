//! The CouchDB API over real HTTP: every kind of bad input gets CouchDB's status and error
//! shape and writes nothing; `_changes` feeds behave as CouchDB's; live listeners go away with
//! their clients. The server runs in-process on 127.0.0.1:0 over a memory store we can inspect.

use std::sync::Arc;
use std::time::Duration;

use couchkv::http::HttpConfig;
use couchkv_adapters::MemoryStore;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

mod common;

struct Server {
    base: String,
    store: Arc<MemoryStore>,
    client: Client,
    _server: common::InProcess,
}

async fn server_with(max_body_bytes: usize) -> Server {
    let s = common::start(HttpConfig {
        cors_origins: vec!["http://app.example".into()],
        max_body_bytes,
        ..HttpConfig::default()
    })
    .await;
    // These tests act as the server admin; tests/auth.rs covers everyone else.
    Server {
        base: s.base.clone(),
        store: s.store.clone(),
        client: s.client.clone(),
        _server: s,
    }
}

async fn server() -> Server {
    server_with(1024 * 1024).await
}

impl Server {
    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn put(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

fn error_of(v: &Value) -> (&str, &str) {
    (
        v["error"].as_str().unwrap_or("?"),
        v["reason"].as_str().unwrap_or("?"),
    )
}

#[tokio::test]
async fn bad_input_gets_couchdb_errors_and_writes_nothing() {
    let s = server().await;
    assert_eq!(s.put("/db", "").await.0, StatusCode::CREATED);
    let (_, created) = s.put("/db/doc", r#"{"v":1}"#).await;
    let rev1 = created["rev"].as_str().unwrap().to_owned();
    let seq_before = s.get("/db").await.1["update_seq"].clone();

    // (method, path, body, status, error name)
    let long_id = format!("/db/{}", "x".repeat(16 * 1024 + 1));
    let cases: Vec<(Method, String, Option<&str>, u16, &str)> = vec![
        (
            Method::PUT,
            "/Bad".into(),
            None,
            400,
            "illegal_database_name",
        ),
        (
            Method::PUT,
            "/1db".into(),
            None,
            400,
            "illegal_database_name",
        ),
        (Method::PUT, "/db".into(), None, 412, "file_exists"),
        (Method::GET, "/nodb".into(), None, 404, "not_found"),
        (Method::GET, "/nodb/doc".into(), None, 404, "not_found"),
        (Method::DELETE, "/nodb".into(), None, 404, "not_found"),
        (Method::GET, "/db/missing".into(), None, 404, "not_found"),
        (
            Method::PUT,
            "/db/doc".into(),
            Some("{not json"),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/doc".into(),
            Some("[1,2]"),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/doc".into(),
            Some(r#"{"v":2}"#),
            409,
            "conflict",
        ),
        (
            Method::PUT,
            "/db/doc".into(),
            Some(r#"{"_rev":"1-abc","v":2}"#),
            409,
            "conflict",
        ),
        (
            Method::PUT,
            "/db/doc".into(),
            Some(r#"{"_rev":"garbage","v":2}"#),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/doc".into(),
            Some(r#"{"_rev":7}"#),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/doc".into(),
            Some(r#"{"_id":"other"}"#),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/_reserved".into(),
            Some("{}"),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/doc2".into(),
            Some(r#"{"_weird":1}"#),
            400,
            "doc_validation",
        ),
        (
            Method::PUT,
            "/db/doc2".into(),
            Some(r#"{"_attachments":{"a":{"stub":true}}}"#),
            412,
            "missing_stub",
        ),
        (
            Method::PUT,
            "/db/doc2".into(),
            Some(r#"{"_attachments":{"a":{"data":"%%%"}}}"#),
            400,
            "bad_request",
        ),
        (Method::PUT, long_id.clone(), Some("{}"), 400, "bad_request"),
        (Method::DELETE, "/db/doc".into(), None, 409, "conflict"),
        (
            Method::DELETE,
            "/db/doc?rev=1-0000".into(),
            None,
            409,
            "conflict",
        ),
        (
            Method::GET,
            "/db/doc?revs=maybe".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/doc?rev=nope".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/doc?open_revs=notjson".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_all_docs?limit=-1".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_all_docs?startkey=notjson".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_changes?since=banana".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_changes?feed=sideways".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_changes?limit=ten".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_changes?filter=_view".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_changes?style=weird".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/db/_bulk_docs".into(),
            Some(r#"{"nodocs":[]}"#),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/db/_bulk_docs".into(),
            Some(r#"{"docs":[],"new_edits":"no"}"#),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/db/_bulk_docs".into(),
            Some("{{{"),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/db/_bulk_get".into(),
            Some(r#"{"docs":[{"rev":"1-a"}]}"#),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/db/_revs_diff".into(),
            Some("[1]"),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/db/_revs_diff".into(),
            Some(r#"{"doc":"1-a"}"#),
            400,
            "bad_request",
        ),
        (
            Method::PUT,
            "/db/_local/cp".into(),
            Some("3"),
            400,
            "bad_request",
        ),
        (
            Method::GET,
            "/db/_local/none".into(),
            None,
            404,
            "not_found",
        ),
        (Method::GET, "/db/doc/noatt".into(), None, 404, "not_found"),
        (
            Method::GET,
            "/_uuids?count=5000".into(),
            None,
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/nodb/_bulk_docs".into(),
            Some(r#"{"docs":[]}"#),
            404,
            "not_found",
        ),
    ];
    for (method, path, body, status, error) in cases {
        let (got, v) = s.call(method.clone(), &path, body).await;
        assert_eq!(
            (got.as_u16(), error_of(&v).0),
            (status, error),
            "{method} {path} {body:?} → {v}"
        );
        assert!(v["reason"].is_string(), "{method} {path}: a reason in {v}");
    }
    // Nothing was written by any of them.
    assert_eq!(s.get("/db").await.1["update_seq"], seq_before);
    let (_, doc) = s.get("/db/doc").await;
    assert_eq!(
        (doc["_rev"].as_str(), doc["v"].as_i64()),
        (Some(rev1.as_str()), Some(1))
    );
    assert_eq!(s.get("/_all_dbs").await.1, json!(["_users", "db"]));

    // A body over the configured limit: 413 in CouchDB's shape, nothing written.
    let huge = format!(r#"{{"v":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, v) = s.put("/db/huge", &huge).await;
    assert_eq!((status.as_u16(), error_of(&v).0), (413, "too_large"));
    assert_eq!(s.get("/db/huge").await.0, StatusCode::NOT_FOUND);
    // A bulk write with a document that is wrong in itself is refused whole, as CouchDB
    // refuses it (an invalid id, a bad `_rev`, an unknown special field, new_edits=false
    // without a revision); a conflict is only its document's row.
    for (bad, error) in [
        (r#"{"_id":"_bad"}"#, "bad_request"),
        (r#"{"_id":"x","_rev":"nope"}"#, "bad_request"),
        (r#"{"_id":"x","_zing":1}"#, "doc_validation"),
        (
            r#"{"_id":"x","_attachments":{"_a":{"data":""}}}"#,
            "bad_request",
        ),
    ] {
        let (status, v) = s
            .post(
                "/db/_bulk_docs",
                &format!(r#"{{"docs":[{{"_id":"ok1"}},{bad}]}}"#),
            )
            .await;
        assert_eq!((status.as_u16(), error_of(&v).0), (400, error), "{bad}");
    }
    let (status, v) = s
        .post(
            "/db/_bulk_docs",
            r#"{"new_edits":false,"docs":[{"_id":"ok1"}]}"#,
        )
        .await;
    assert_eq!((status.as_u16(), error_of(&v).0), (400, "bad_request"));
    assert_eq!(s.get("/db/ok1").await.0, StatusCode::NOT_FOUND);
    let (status, rows) = s
        .post(
            "/db/_bulk_docs",
            r#"{"docs":[{"_id":"ok1"},{"_id":"doc","v":9},{"_id":"f","_rev":"3-totally_fake_rev"}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[1]["error"], "conflict");
    assert_eq!(rows[2]["error"], "conflict");
}

#[tokio::test]
async fn documents_revisions_and_conflicts() {
    let s = server().await;
    s.put("/db", "").await;
    let (status, r1) = s.put("/db/a", r#"{"n":1}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let rev1 = r1["rev"].as_str().unwrap().to_owned();
    assert!(rev1.starts_with("1-") && rev1.len() == 34);
    // The same edit made elsewhere gets the same revision id (deterministic, as CouchDB).
    s.put("/db2", "").await;
    assert_eq!(s.put("/db2/a", r#"{"n":1}"#).await.1["rev"], rev1.as_str());
    let (_, r2) = s.put(&format!("/db/a?rev={rev1}"), r#"{"n":2}"#).await;
    let rev2 = r2["rev"].as_str().unwrap().to_owned();
    // Replicated branches with new_edits=false make a conflict, with a deterministic winner.
    let body = json!({"new_edits": false, "docs": [
        {"_id": "a", "_rev": "2-zzzz", "_revisions": {"start": 2, "ids": ["zzzz", rev1[2..].to_string()]}, "n": "z"},
    ]});
    let (status, rows) = s.post("/db/_bulk_docs", &body.to_string()).await;
    assert_eq!((status, rows), (StatusCode::CREATED, json!([])));
    let (_, doc) = s.get("/db/a?conflicts=true&revs=true&revs_info=true").await;
    let winner = std::cmp::max(rev2.clone(), "2-zzzz".to_owned());
    assert_eq!(doc["_rev"], winner.as_str());
    assert_eq!(doc["_conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["_revisions"]["start"], 2);
    assert_eq!(doc["_revs_info"][0]["status"], "available");
    let (_, leaves) = s.get("/db/a?open_revs=all").await;
    assert_eq!(leaves.as_array().unwrap().len(), 2);
    let (_, some) = s
        .get(&format!("/db/a?open_revs=[\"{rev2}\",\"3-nope\"]"))
        .await;
    assert_eq!(some[0]["ok"]["_rev"], rev2.as_str());
    assert_eq!(some[1]["missing"], "3-nope");
    // latest=true turns an inner revision into its leaves.
    let (_, latest) = s
        .get(&format!("/db/a?open_revs=[\"{rev1}\"]&latest=true"))
        .await;
    assert_eq!(latest.as_array().unwrap().len(), 2);
    // Deleting the winner lets the other branch win; the doc is still there.
    let (status, _) = s
        .call(Method::DELETE, &format!("/db/a?rev={winner}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, doc) = s.get("/db/a?deleted_conflicts=true").await;
    assert_ne!(doc["_rev"], winner.as_str());
    assert_eq!(doc["_deleted_conflicts"].as_array().unwrap().len(), 1);
    // _revs_diff and _bulk_get.
    let (_, diff) = s
        .post(
            "/db/_revs_diff",
            &json!({"a": [rev2, "9-x"], "b": ["1-y"]}).to_string(),
        )
        .await;
    assert_eq!(diff["a"]["missing"], json!(["9-x"]));
    assert_eq!(diff["b"]["missing"], json!(["1-y"]));
    let (_, got) = s
        .post(
            "/db/_bulk_get?revs=true",
            &json!({"docs": [{"id": "a", "rev": rev2}, {"id": "nope"}]}).to_string(),
        )
        .await;
    assert_eq!(
        got["results"][0]["docs"][0]["ok"]["_revisions"]["ids"][0],
        &rev2[2..]
    );
    assert_eq!(got["results"][1]["docs"][0]["error"]["error"], "not_found");
    // A revision that stopped being a leaf has no body any more (dropped, as compaction
    // would); with latest=true its leaves come back instead.
    let (_, got) = s
        .post(
            "/db/_bulk_get?latest=true",
            &json!({"docs": [{"id": "a", "rev": "2-zzzz"}]}).to_string(),
        )
        .await;
    assert_eq!(got["results"][0]["docs"][0]["ok"]["_deleted"], true);
    // Info counts.
    s.put("/db/b", "{}").await;
    let (_, info) = s.get("/db").await;
    assert_eq!(
        (info["doc_count"].as_u64(), info["doc_del_count"].as_u64()),
        (Some(2), Some(0))
    );
    // _all_docs: ranges, keys, descending.
    for id in ["c", "d", "e"] {
        s.put(&format!("/db/{id}"), "{}").await;
    }
    let (_, all) = s.get("/db/_all_docs?startkey=\"b\"&endkey=\"d\"").await;
    let ids: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b", "c", "d"]);
    let (_, all) = s
        .get("/db/_all_docs?startkey=\"d\"&endkey=\"b\"&descending=true&inclusive_end=false")
        .await;
    let ids: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d", "c"]);
    let (_, all) = s
        .post(
            "/db/_all_docs?include_docs=true",
            r#"{"keys":["e","zz","a"]}"#,
        )
        .await;
    assert_eq!(all["rows"][0]["doc"]["_id"], "e");
    assert_eq!(all["rows"][1]["error"], "not_found");
    assert_eq!(all["rows"][2]["id"], "a");
    assert_eq!(all["total_rows"], 5);
}

#[tokio::test]
async fn attachments_inline_and_standalone() {
    let s = server().await;
    s.put("/db", "").await;
    let doc =
        json!({"_attachments": {"hello.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}});
    let (_, r) = s.put("/db/d", &doc.to_string()).await;
    let rev1 = r["rev"].as_str().unwrap().to_owned();
    let (_, d) = s.get("/db/d").await;
    let att = &d["_attachments"]["hello.txt"];
    assert_eq!(
        (
            att["stub"].as_bool(),
            att["length"].as_u64(),
            att["revpos"].as_u64()
        ),
        (Some(true), Some(5), Some(1))
    );
    assert_eq!(att["digest"], "md5-XUFAKrxLKna5cZ2REBfFkg==");
    // Raw bytes with the stored content type.
    let resp = s
        .client
        .get(format!("{}/db/d/hello.txt", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hello");
    // A standalone PUT adds one as a new revision; the old one is kept as a stub.
    let resp = s
        .client
        .put(format!("{}/db/d/sub/dir.bin?rev={rev1}", s.base))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let rev2 = resp.json::<Value>().await.unwrap()["rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, d) = s.get("/db/d?attachments=true").await;
    assert_eq!(d["_attachments"]["sub/dir.bin"]["data"], "AAEC/w==");
    assert_eq!(d["_attachments"]["hello.txt"]["data"], "aGVsbG8=");
    assert_eq!(d["_attachments"]["hello.txt"]["revpos"], 1);
    // atts_since: only attachments newer than the named revision carry data.
    let (_, d) = s.get(&format!("/db/d?atts_since=[\"{rev1}\"]")).await;
    assert!(d["_attachments"]["sub/dir.bin"]["data"].is_string());
    assert_eq!(d["_attachments"]["hello.txt"]["stub"], true);
    // Delete one; the old revision's data is gone with it.
    let (status, _) = s
        .call(Method::DELETE, &format!("/db/d/hello.txt?rev={rev2}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.get("/db/d/hello.txt").await.0, StatusCode::NOT_FOUND);
    let (_, d) = s.get("/db/d").await;
    assert!(d["_attachments"].get("hello.txt").is_none());
}

#[tokio::test]
async fn head_and_design_documents() {
    let s = server().await;
    s.put("/db", "").await;
    let (_, r) = s.put("/db/doc", "{}").await;
    let head = s
        .client
        .head(format!("{}/db/doc", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["etag"],
        format!("\"{}\"", r["rev"].as_str().unwrap()).as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    let head = s
        .client
        .head(format!("{}/db/missing", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        s.client
            .head(format!("{}/db", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.client
            .head(format!("{}/nodb", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // Design documents live at /db/_design/{id}, attachments under them, and replicate as docs.
    let (status, r) = s.put("/db/_design/app", r#"{"views":{}}"#).await;
    assert_eq!(
        (status, r["id"].as_str()),
        (StatusCode::CREATED, Some("_design/app"))
    );
    let rev = r["rev"].as_str().unwrap().to_owned();
    let (_, d) = s.get("/db/_design/app").await;
    assert_eq!(d["_id"], "_design/app");
    let resp = s
        .client
        .put(format!("{}/db/_design/app/index.html?rev={rev}", s.base))
        .header("content-type", "text/html")
        .body("<h1>hi</h1>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let page = s
        .client
        .get(format!("{}/db/_design/app/index.html", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html");
    assert_eq!(page.text().await.unwrap(), "<h1>hi</h1>");
    let (_, ch) = s.get("/db/_changes").await;
    assert!(ch["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "_design/app"));
}

#[tokio::test]
async fn local_docs_and_ensure_full_commit() {
    let s = server().await;
    s.put("/db", "").await;
    let (status, r) = s.put("/db/_local/cp", r#"{"last_seq":1}"#).await;
    assert_eq!(
        (status, r["rev"].as_str()),
        (StatusCode::CREATED, Some("0-1"))
    );
    assert_eq!(
        s.put("/db/_local/cp", r#"{"last_seq":2}"#).await.0,
        StatusCode::CONFLICT
    );
    let (_, r) = s
        .put("/db/_local/cp", r#"{"_rev":"0-1","last_seq":2}"#)
        .await;
    assert_eq!(r["rev"], "0-2");
    let (_, d) = s.get("/db/_local/cp").await;
    assert_eq!(
        (d["_id"].as_str(), d["last_seq"].as_i64()),
        (Some("_local/cp"), Some(2))
    );
    // Local docs are not changes.
    assert_eq!(s.get("/db").await.1["update_seq"], 0);
    assert_eq!(
        s.post("/db/_ensure_full_commit", "{}").await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn changes_feeds() {
    let s = server().await;
    s.put("/db", "").await;
    for id in ["a", "b", "c"] {
        s.put(&format!("/db/{id}"), "{}").await;
    }
    let b = s.get("/db/b").await.1["_rev"].as_str().unwrap().to_owned();
    s.put(&format!("/db/b?rev={b}"), r#"{"v":2}"#).await;
    let (_, ch) = s.get("/db/_changes").await;
    let ids: Vec<&str> = ch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c", "b"], "each doc once, at its latest seq");
    assert_eq!(ch["last_seq"], 4);
    let (_, ch) = s.get("/db/_changes?since=2&limit=1").await;
    assert_eq!(
        (ch["results"][0]["id"].as_str(), ch["last_seq"].as_u64()),
        (Some("c"), Some(3))
    );
    let (_, ch) = s
        .get("/db/_changes?descending=true&limit=2&include_docs=true")
        .await;
    assert_eq!(ch["results"][0]["doc"]["v"], 2);
    let (_, ch) = s
        .post("/db/_changes?filter=_doc_ids", r#"{"doc_ids":["a"]}"#)
        .await;
    assert_eq!(ch["results"].as_array().unwrap().len(), 1);
    let (_, ch) = s.get("/db/_changes?filter=_doc_ids&doc_ids=[\"c\"]").await;
    assert_eq!(ch["results"][0]["id"], "c");

    // longpoll blocks until a write, then answers with it. A heartbeat asked for at 50 ms
    // beats at the 1 s minimum.
    let url = format!(
        "{}/db/_changes?feed=longpoll&since=now&heartbeat=50",
        s.base
    );
    let client = s.client.clone();
    let poll = tokio::spawn(async move { client.get(url).send().await?.text().await });
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!poll.is_finished(), "longpoll waits");
    s.put("/db/late", "{}").await;
    let text = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Heartbeat newlines while waiting (one a second, not one every 50 ms), then the answer.
    assert!(text.starts_with('\n'), "heartbeats came first: {text:?}");
    let beats = text.len() - text.trim_start_matches('\n').len();
    assert!((1..=2).contains(&beats), "{beats} heartbeats in 1.3 s");
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["results"][0]["id"], "late");
    // A longpoll with nothing new ends at its timeout with the current seq.
    let (_, v) = s
        .get("/db/_changes?feed=longpoll&since=now&timeout=100")
        .await;
    assert_eq!(
        (
            v["results"].as_array().unwrap().len(),
            v["last_seq"].as_u64()
        ),
        (0, Some(5))
    );
    // continuous: one row per line, then last_seq.
    let text = s
        .client
        .get(format!(
            "{}/db/_changes?feed=continuous&since=3&timeout=100",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (lines[0]["id"].as_str(), lines[2]["last_seq"].as_u64()),
        (Some("b"), Some(5))
    );
    // eventsource: CouchDB's event format, Last-Event-ID resumes.
    let resp = s
        .client
        .get(format!(
            "{}/db/_changes?feed=eventsource&timeout=100",
            s.base
        ))
        .header("last-event-id", "4")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("data: {"), "{text}");
    assert!(
        text.contains("\"id\":\"late\"") && text.contains("\nid: 5\n\n"),
        "{text}"
    );
    assert!(
        !text.contains("\"id\":\"b\""),
        "Last-Event-ID skipped older changes: {text}"
    );
}

async fn wait_watchers(store: &MemoryStore, n: usize) {
    assert!(
        common::couch_watchers_reach(store, n, Duration::from_secs(1)).await,
        "expected {n} watchers, have {}",
        common::couch_watchers(store).await
    );
}

#[tokio::test]
async fn a_client_that_leaves_releases_its_listener() {
    let s = server().await;
    s.put("/db", "").await;
    wait_watchers(&s.store, 0).await;
    for feed in ["longpoll", "continuous", "eventsource"] {
        let url = format!(
            "{}/db/_changes?feed={feed}&since=now&heartbeat=1000",
            s.base
        );
        let client = s.client.clone();
        let req = tokio::spawn(async move {
            let resp = client.get(url).send().await.unwrap();
            let mut resp = resp;
            // Read until the connection is dropped with the task.
            while let Ok(Some(_)) = resp.chunk().await {}
        });
        wait_watchers(&s.store, 1).await;
        req.abort();
        // Released within a second of the client going away (in practice, milliseconds).
        wait_watchers(&s.store, 0).await;
    }
}

#[tokio::test]
async fn cors_for_allowed_origins_only() {
    let s = server().await;
    let preflight = s
        .client
        .request(Method::OPTIONS, format!("{}/db/_changes", s.base))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "http://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    let other = s
        .client
        .get(format!("{}/", s.base))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn all_dbs_pages_like_couchdb() {
    let s = server().await;
    for n in ["a1", "a2", "b1", "b2", "c1"] {
        assert_eq!(s.put(&format!("/{n}"), "").await.0, StatusCode::CREATED);
    }
    let cases = [
        ("", json!(["_users", "a1", "a2", "b1", "b2", "c1"])),
        ("?startkey=%22b%22", json!(["b1", "b2", "c1"])),
        ("?start_key=%22a2%22&limit=2", json!(["a2", "b1"])),
        (
            "?startkey=%22a%22&endkey=%22b1%22",
            json!(["a1", "a2", "b1"]),
        ),
        (
            "?startkey=%22a%22&end_key=%22b1%22&inclusive_end=false",
            json!(["a1", "a2"]),
        ),
        ("?descending=true&limit=3", json!(["c1", "b2", "b1"])),
        (
            "?descending=true&startkey=%22b1%22&endkey=%22a2%22",
            json!(["b1", "a2"]),
        ),
        ("?skip=2&limit=2", json!(["a2", "b1"])),
        ("?skip=10", json!([])),
        ("?limit=0", json!([])),
    ];
    for (query, want) in cases {
        let (status, v) = s.get(&format!("/_all_dbs{query}")).await;
        assert_eq!((status, v), (StatusCode::OK, want), "{query}");
    }
    for bad in [
        "?startkey=1",
        "?startkey=nojson",
        "?limit=-1",
        "?descending=maybe",
    ] {
        let (status, v) = s.get(&format!("/_all_dbs{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"], "bad_request", "{bad}: {v}");
    }
}

#[tokio::test]
async fn db_updates_follow_creations_writes_and_deletions() {
    let s = server().await;
    let (status, v) = s.get("/_db_updates").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v["results"],
        json!([{"db_name": "_users", "type": "created", "seq": 1}])
    );
    let now = v["last_seq"].as_u64().unwrap();

    // A longpoll waiting from now is answered by the next creation.
    let url = format!(
        "{}/_db_updates?feed=longpoll&since=now&timeout=10000",
        s.base
    );
    let poll = tokio::spawn(s.client.get(url).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.put("/u1", "").await.0, StatusCode::CREATED);
    let answer: Value = poll.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["results"][0]["db_name"], "u1");
    assert_eq!(answer["results"][0]["type"], "created");

    // Writes are recorded within a flush; a database has one row, its latest.
    for i in 0..3 {
        assert_eq!(
            s.put(&format!("/u1/d{i}"), "{}").await.0,
            StatusCode::CREATED
        );
    }
    let mut rows = Value::Null;
    for _ in 0..100 {
        rows = s.get(&format!("/_db_updates?since={now}")).await.1["results"].clone();
        if rows
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["type"] == "updated"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let names: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["db_name"].as_str().unwrap(), r["type"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("u1", "updated")]);

    assert_eq!(s.call(Method::DELETE, "/u1", None).await.0, StatusCode::OK);
    let (_, v) = s.get("/_db_updates?descending=true&limit=1").await;
    assert_eq!(v["results"][0]["db_name"], "u1");
    assert_eq!(v["results"][0]["type"], "deleted");

    // Continuous and eventsource feeds, ended by their timeout.
    let text = s
        .client
        .get(format!(
            "{}/_db_updates?feed=continuous&timeout=100",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[2]["last_seq"], lines[1]["seq"]);
    let text = s
        .client
        .get(format!(
            "{}/_db_updates?feed=eventsource&timeout=100",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.matches("data: ").count(), 2, "{text}");

    // For server admins only.
    let anonymous = reqwest::get(format!("{}/_db_updates", s.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
