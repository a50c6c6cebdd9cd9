//! CouchDB fidelity, each difference PouchDB's own suite found guarded here (the suite needs
//! PouchDB's source and runs by hand): numbers and field order come back as sent, requests with
//! a document wrong in itself are refused whole, old revisions stay readable until compaction,
//! `_purge` leaves no trace, and the smaller protocol details.

use couchkv::http::HttpConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod common;

struct Couch {
    s: common::InProcess,
}

impl Couch {
    async fn new() -> Self {
        let s = common::start(HttpConfig {
            compact_after: 0,
            ..HttpConfig::default()
        })
        .await;
        let c = Couch { s };
        assert_eq!(
            c.call(Method::PUT, "/db", None).await.0,
            StatusCode::CREATED
        );
        c
    }

    /// Status and the body as text, exactly as sent.
    async fn text(&self, method: Method, path: &str, body: Option<&str>) -> (StatusCode, String) {
        let mut req = self
            .s
            .client
            .request(method, format!("{}{path}", self.s.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let (st, text) = self.text(method, path, body).await;
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(&body.to_string())).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&body.to_string())).await
    }
}

#[tokio::test]
async fn numbers_and_field_order_come_back_as_sent() {
    let c = Couch::new().await;
    // A double serde_json's default parser rounds the wrong way, and fields out of order.
    let sent =
        r#"{"zeta":1,"alpha":{"z":0.18698566827009722,"a":[3,2,1]},"mid":-0.0001234567890123456}"#;
    let (st, _) = c.text(Method::PUT, "/db/doc", Some(sent)).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, got) = c.text(Method::GET, "/db/doc", None).await;
    let body = got.split_once(r#","_rev":""#).unwrap().1;
    let fields = body.split_once("\",").unwrap().1;
    assert_eq!(format!("{{{fields}"), sent);
    // The special fields may come anywhere (a form, an editor, PouchDB put them first): taking
    // them out moves nothing else.
    let rev = got.split('"').nth(7).unwrap().to_owned();
    let update = format!(
        r#"{{"_id":"doc","zeta":1,"_rev":"{rev}","title":"t","n":0.18698566827009722,"last":[]}}"#
    );
    let (st, _) = c.text(Method::PUT, "/db/doc", Some(&update)).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, got) = c.text(Method::GET, "/db/doc", None).await;
    assert!(
        got.ends_with(r#"","zeta":1,"title":"t","n":0.18698566827009722,"last":[]}"#),
        "{got}"
    );
    // Attachments keep their order too, and `_revisions` is `{start, ids}`.
    let doc = json!({"_attachments": {
        "z.txt": {"content_type": "text/plain", "data": "eg=="},
        "a.txt": {"content_type": "text/plain", "data": "YQ=="}
    }});
    c.put("/db/atts", doc).await;
    let (_, got) = c.text(Method::GET, "/db/atts?revs=true", None).await;
    assert!(
        got.find("z.txt").unwrap() < got.find("a.txt").unwrap(),
        "{got}"
    );
    assert!(got.contains(r#""_revisions":{"start":1,"ids":["#), "{got}");
    // The revision id does not depend on the order (the hash sees canonical JSON), and is
    // the one couchkv gave before documents kept their order.
    let (_, a) = c.put("/db/o1", json!({"b": 1, "a": [1, 2]})).await;
    let (_, b) = c
        .call(Method::PUT, "/db/o2", Some(r#"{"a":[1,2],"b":1}"#))
        .await;
    assert_eq!(a["rev"], b["rev"]);
    assert_eq!(a["rev"], "1-6218f91fd3daef55092fa53ee3179a28");
}

#[tokio::test]
async fn bulk_docs_refuses_a_request_with_a_document_wrong_in_itself() {
    let c = Couch::new().await;
    for (docs, error) in [
        (json!([{"_id": "ok"}, {"_id": "_invalid"}]), "bad_request"),
        (json!([{"_id": "ok"}, {"_id": 123}]), "bad_request"),
        (json!([{"_zing": 4}, {"_id": "ok"}]), "doc_validation"),
        (json!([{"_id": "ok", "_rev": "x"}]), "bad_request"),
    ] {
        let (st, v) = c.post("/db/_bulk_docs", json!({"docs": docs})).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{docs}"
        );
    }
    let (st, _) = c
        .post(
            "/db/_bulk_docs",
            json!({"docs": [{"_id": "ok"}], "new_edits": false}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(c.get("/db").await.1["doc_count"], 0, "nothing was written");
    // The replicator's own fields are kept, as CouchDB keeps them.
    let fields = json!({"_replication_id": "r", "_replication_state": "triggered",
                        "_replication_state_time": 1, "_replication_stats": {}});
    let (st, _) = c.put("/db/repl", fields.clone()).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, doc) = c.get("/db/repl").await;
    for (k, v) in fields.as_object().unwrap() {
        assert_eq!(&doc[k], v);
    }
    // A made-up revision of the right shape is a conflict, as in CouchDB, not a 400.
    let (_, rows) = c
        .post(
            "/db/_bulk_docs",
            json!({"docs": [{"_id": "repl", "_rev": "3-totally_fake_rev"}]}),
        )
        .await;
    assert_eq!(rows[0]["error"], "conflict");
    // In replication, `_revisions` is the history even when `_rev` says otherwise.
    let doc = json!({"_id": "r2", "_rev": "9-zzz", "_revisions": {"start": 2, "ids": ["b", "a"]}});
    let (st, rows) = c
        .post("/db/_bulk_docs", json!({"docs": [doc], "new_edits": false}))
        .await;
    assert_eq!((st, rows), (StatusCode::CREATED, json!([])));
    assert_eq!(c.get("/db/r2").await.1["_rev"], "2-b");
}

#[tokio::test]
async fn attachments_inline_in_all_docs_and_changes_and_names_are_checked() {
    let c = Couch::new().await;
    let doc = json!({"_attachments": {"a.txt": {"content_type": "text/plain", "data": "aGk="}}});
    c.put("/db/doc", doc).await;
    let (_, all) = c
        .get("/db/_all_docs?include_docs=true&attachments=true&update_seq=true")
        .await;
    assert_eq!(
        all["rows"][0]["doc"]["_attachments"]["a.txt"]["data"],
        "aGk="
    );
    assert_eq!(all["update_seq"], 1);
    let (_, ch) = c
        .get("/db/_changes?include_docs=true&attachments=true")
        .await;
    assert_eq!(
        ch["results"][0]["doc"]["_attachments"]["a.txt"]["data"],
        "aGk="
    );
    let (_, plain) = c.get("/db/_all_docs?include_docs=true").await;
    assert_eq!(
        plain["rows"][0]["doc"]["_attachments"]["a.txt"]["stub"],
        true
    );
    // Names starting with `_` are refused; `_local` documents take no attachments.
    let rev = c.get("/db/doc").await.1["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = c
        .call(Method::PUT, &format!("/db/doc/_bad?rev={rev}"), Some("x"))
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (st, _) = c
        .put("/db/d2", json!({"_attachments": {"_x": {"data": "aGk="}}}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = c.get("/db/_local/cp/att").await;
    assert_eq!(
        (st, v["reason"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("_local documents do not accept attachments.")
        )
    );
}

#[tokio::test]
async fn protocol_details_as_couchdb() {
    let c = Couch::new().await;
    // An Authorization header that cannot be parsed is ignored: anonymous, not a 401.
    let resp = reqwest::Client::new()
        .get(format!("{}/", c.s.base))
        .header("authorization", "Basic: bm90IHBhcnNlZA==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // keys with a range is a query_parse_error.
    let (st, v) = c.get("/db/_all_docs?keys=[\"a\"]&startkey=\"a\"").await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("query_parse_error"))
    );
    // latest=true with an old revision answers the leaf it led to.
    let (_, r1) = c.put("/db/doc", json!({"v": "first"})).await;
    let rev1 = r1["rev"].as_str().unwrap().to_owned();
    c.put(&format!("/db/doc?rev={rev1}"), json!({"v": "second"}))
        .await;
    let (st, doc) = c.get(&format!("/db/doc?rev={rev1}&latest=true")).await;
    assert_eq!((st, doc["v"].as_str()), (StatusCode::OK, Some("second")));
    // style=all_docs: the winner first, then the other leaves newest first.
    let docs: Vec<Value> = ["1-a", "1-c", "1-b"]
        .iter()
        .map(|r| json!({"_id": "multi", "_rev": r}))
        .collect();
    c.post("/db/_bulk_docs", json!({"docs": docs, "new_edits": false}))
        .await;
    let (_, ch) = c
        .get("/db/_changes?style=all_docs&doc_ids=[\"multi\"]&filter=_doc_ids")
        .await;
    assert_eq!(
        ch["results"][0]["changes"],
        json!([{"rev": "1-c"}, {"rev": "1-b"}, {"rev": "1-a"}])
    );
}

#[tokio::test]
async fn old_revisions_stay_until_compaction() {
    let c = Couch::new().await;
    let att = json!({"a.txt": {"content_type": "text/plain", "data": "b25l"}});
    let (_, r1) = c.put("/db/doc", json!({"v": 1, "_attachments": att})).await;
    let rev1 = r1["rev"].as_str().unwrap().to_owned();
    let (_, r2) = c.put("/db/doc", json!({"_rev": rev1, "v": 2})).await;
    let rev2 = r2["rev"].as_str().unwrap().to_owned();
    // The old revision, its attachment and its place in revs_info are all still there.
    let (st, old) = c.get(&format!("/db/doc?rev={rev1}&revs=true")).await;
    assert_eq!((st, old["v"].as_i64()), (StatusCode::OK, Some(1)));
    assert_eq!(old["_revisions"]["ids"].as_array().unwrap().len(), 1);
    let (st, data) = c
        .text(Method::GET, &format!("/db/doc/a.txt?rev={rev1}"), None)
        .await;
    assert_eq!((st, data.as_str()), (StatusCode::OK, "one"));
    let (_, info) = c.get("/db/doc?revs_info=true").await;
    assert_eq!(
        info["_revs_info"][1],
        json!({"rev": rev1, "status": "available"})
    );
    assert_eq!(c.get("/db").await.1["compact_running"], false);
    let keys = common::all_keys(&c.s.store).await;
    assert!(keys.iter().any(|k| k.contains("md5-")), "{keys:?}");
    // Compaction: 202 at once, and then the old body and its attachment are gone.
    let (st, v) = c.post("/db/_compact", json!({})).await;
    assert_eq!((st, v), (StatusCode::ACCEPTED, json!({"ok": true})));
    for _ in 0..200 {
        if c.get("/db").await.1["compact_running"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (st, _) = c.get(&format!("/db/doc?rev={rev1}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, info) = c.get("/db/doc?revs_info=true").await;
    assert_eq!(
        info["_revs_info"][1],
        json!({"rev": rev1, "status": "missing"})
    );
    assert_eq!(
        c.get(&format!("/db/doc?rev={rev2}")).await.0,
        StatusCode::OK
    );
    // Nothing of the attachment is left in the store.
    let keys = common::all_keys(&c.s.store).await;
    assert!(
        !keys.iter().any(|k| k.contains("md5-")),
        "an attachment outlived compaction: {keys:?}"
    );
    // Only database admins compact.
    let (st, _) = c.post("/_users/_compact", json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn purge_leaves_no_trace() {
    let c = Couch::new().await;
    let (_, r1) = c.put("/db/gone", json!({"v": 1})).await;
    let rev1 = r1["rev"].as_str().unwrap().to_owned();
    c.put("/db/kept", json!({"v": 1})).await;
    assert!(common::all_keys(&c.s.store)
        .await
        .iter()
        .any(|k| k.contains("gone")));
    let docs = json!([{"_id": "kept", "_rev": "1-zzz"}]);
    c.post("/db/_bulk_docs", json!({"docs": docs, "new_edits": false}))
        .await;
    let (st, v) = c
        .post(
            "/db/_purge",
            json!({"gone": [rev1], "kept": ["1-zzz"], "nothing": ["1-a"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        v,
        json!({"purge_seq": null, "purged": {"gone": [rev1], "kept": ["1-zzz"], "nothing": []}})
    );
    assert_eq!(c.get("/db/gone").await.0, StatusCode::NOT_FOUND);
    let (_, all) = c.get("/db/_all_docs").await;
    assert_eq!(all["rows"].as_array().unwrap().len(), 1);
    let (_, ch) = c.get("/db/_changes?style=all_docs").await;
    let ids: Vec<&str> = ch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["kept"]);
    assert_eq!(ch["results"][0]["changes"].as_array().unwrap().len(), 1);
    let (_, info) = c.get("/db").await;
    assert_eq!(
        (info["doc_count"].as_i64(), info["purge_seq"].as_i64()),
        (Some(1), Some(1))
    );
    let keys = common::all_keys(&c.s.store).await;
    assert!(!keys.iter().any(|k| k.contains("gone")), "{keys:?}");
}

#[tokio::test]
async fn long_document_ids_work_everywhere() {
    let c = Couch::new().await;
    // Ids far past what fits in a key (PouchDB's #2569 makes ~1,400-byte ones), sharing a
    // long prefix, beside short ones.
    let long = |tag: &str| format!("{}{tag}", "x".repeat(1400));
    let ids = [long("a"), long("b"), "w".to_owned(), "y".to_owned()];
    for id in &ids {
        let att = json!({"f.txt": {"content_type": "text/plain", "data": "aGk="}});
        let (st, _) = c
            .post(
                "/db",
                json!({"_id": id, "v": id.len(), "_attachments": att}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{}", id.len());
    }
    let (st, doc) = c.get(&format!("/db/{}?attachments=true", long("b"))).await;
    assert_eq!(
        (st, doc["_id"].as_str()),
        (StatusCode::OK, Some(long("b").as_str()))
    );
    assert_eq!(doc["_attachments"]["f.txt"]["data"], "aGk=");
    let (st, data) = c
        .text(Method::GET, &format!("/db/{}/f.txt", long("a")), None)
        .await;
    assert_eq!((st, data.as_str()), (StatusCode::OK, "hi"));
    // _all_docs in id order, whole ids in the rows.
    let (_, all) = c.get("/db/_all_docs").await;
    let listed: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["w", long("a").as_str(), long("b").as_str(), "y"]);
    // The doc_ids filter and an update and deletion.
    let body = json!({"doc_ids": [long("a"), "y"]});
    let (_, ch) = c.post("/db/_changes?filter=_doc_ids", body).await;
    assert_eq!(ch["results"].as_array().unwrap().len(), 2);
    let rev = doc["_rev"].as_str().unwrap().to_owned();
    let (st, _) = c
        .call(
            Method::DELETE,
            &format!("/db/{}?rev={rev}", long("b")),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(c.get("/db").await.1["doc_count"], 3);
    // The bound: 16 KiB.
    let (st, v) = c
        .post("/db", json!({"_id": "z".repeat(16 * 1024 + 1)}))
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

#[tokio::test]
async fn a_database_compacts_itself_past_its_threshold() {
    let s = common::start(HttpConfig {
        compact_after: 3,
        ..HttpConfig::default()
    })
    .await;
    let c = Couch { s };
    c.call(Method::PUT, "/db", None).await;
    let (_, r) = c.put("/db/doc", json!({"n": 0})).await;
    let mut rev = r["rev"].as_str().unwrap().to_owned();
    let first = rev.clone();
    for n in 1..=3 {
        let (_, r) = c.put("/db/doc", json!({"_rev": rev, "n": n})).await;
        rev = r["rev"].as_str().unwrap().to_owned();
    }
    // The third old body reached the threshold: the database compacted itself.
    let mut gone = false;
    for _ in 0..200 {
        if c.get(&format!("/db/doc?rev={first}")).await.0 == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(gone, "the old revision outlived the threshold");
    assert_eq!(c.get(&format!("/db/doc?rev={rev}")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn sizes_count_kept_bodies_and_attachments() {
    let c = Couch::new().await;
    let size = || async { c.get("/db").await.1["sizes"]["active"].as_u64().unwrap() };
    assert_eq!(size().await, 0);
    let big = "x".repeat(1000);
    let (_, a) = c.put("/db/a", json!({ "v": big })).await;
    let after_a = size().await;
    assert!((1000..1200).contains(&after_a), "{after_a}");
    // An attachment of 10,000 bytes, then a new revision that keeps it as a stub: the
    // attachment counts once, the second body on its own.
    let data = base64_of(&vec![7u8; 10_000]);
    let (_, b1) = c
        .put(
            "/db/b",
            json!({"_attachments": {"f": {"content_type": "application/octet-stream", "data": data}}}),
        )
        .await;
    let after_b1 = size().await;
    assert!(
        (10_000..10_300).contains(&(after_b1 - after_a)),
        "{after_b1}"
    );
    let (_, doc) = c.get("/db/b").await;
    let (_, _b2) = c
        .put(
            "/db/b",
            json!({"_rev": b1["rev"], "_attachments": doc["_attachments"], "n": 1}),
        )
        .await;
    let after_b2 = size().await;
    assert!(
        (1..400).contains(&(after_b2 - after_b1)),
        "{after_b1} -> {after_b2}"
    );
    // Compaction drops the first body of b, not the attachment the winner still uses.
    c.post("/db/_compact", json!({})).await;
    for _ in 0..200 {
        if c.get("/db").await.1["compact_running"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let compacted = size().await;
    assert!(
        compacted < after_b2 && compacted > after_a + 10_000,
        "{compacted}"
    );
    // Purging every leaf leaves nothing counted.
    let (_, b) = c.get("/db/b").await;
    let (st, _) = c
        .post("/db/_purge", json!({"a": [a["rev"]], "b": [b["_rev"]]}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(size().await, 0);
    let info = c.get("/db").await.1;
    assert_eq!(info["sizes"]["external"], 0);
    assert_eq!(info["sizes"]["file"], 0);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
