//! JavaScript design documents over HTTP: views kept correct across every kind of change
//! (compared with a full recompute from the documents), runaway functions stopped while the
//! server keeps serving, filters and `validate_doc_update`.

mod common;

use std::cmp::Ordering;

use couchkv::couch::mango::collate;
use couchkv::http::HttpConfig;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const MAP: &str = "function (doc) { if (doc.k !== undefined) emit(doc.k, doc.v); if (doc.tags) doc.tags.forEach(function (t) { emit([t, doc.v], null); }); }";
const MAP2: &str = "function (doc) { if (typeof doc.v === 'number' && doc.v % 2 === 0) emit(doc.v, doc.k === undefined ? null : doc.k); }";

/// The rows `map` (`MAP` or `MAP2`, written again in Rust) gives for the documents, in
/// CouchDB's view order.
fn recompute(docs: &[Value], second: bool) -> Vec<(Value, String, Value)> {
    let mut rows = Vec::new();
    for d in docs {
        let id = d["_id"].as_str().unwrap().to_owned();
        if id.starts_with("_design/") {
            continue;
        }
        let mut emitted = Vec::new();
        if second {
            if let Some(v) = d["v"].as_i64() {
                if v % 2 == 0 {
                    emitted.push((json!(v), d.get("k").cloned().unwrap_or(Value::Null)));
                }
            }
        } else {
            if let Some(k) = d.get("k") {
                emitted.push((k.clone(), d.get("v").cloned().unwrap_or(Value::Null)));
            }
            if let Some(Value::Array(tags)) = d.get("tags") {
                for t in tags {
                    emitted.push((
                        json!([t, d.get("v").cloned().unwrap_or(Value::Null)]),
                        Value::Null,
                    ));
                }
            }
        }
        for (k, v) in emitted {
            rows.push((k, id.clone(), v));
        }
    }
    // Stable: rows of one document and key keep their emit order.
    rows.sort_by(|a, b| collate::cmp(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
    rows
}

fn random_key(rng: &mut SmallRng) -> Value {
    match rng.random_range(0..6) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-5..5)),
        3 => json!(rng.random_range(-5.0..5.0)),
        4 => json!(["a", "B", "b", "é", "aa"][rng.random_range(0..5)]),
        _ => json!([rng.random_range(0..3), "x"]),
    }
}

fn random_doc(rng: &mut SmallRng, id: &str) -> Value {
    let mut d = json!({"_id": id, "v": rng.random_range(0..10)});
    if rng.random_bool(0.8) {
        d["k"] = random_key(rng);
    }
    if rng.random_bool(0.5) {
        let n = rng.random_range(0..3);
        d["tags"] = json!((0..n)
            .map(|i| format!("t{}", (i + rng.random_range(0..3)) % 3))
            .collect::<Vec<_>>());
    }
    d
}

async fn get(c: &reqwest::Client, url: &str) -> Value {
    let r = c.get(url).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

async fn post(c: &reqwest::Client, url: &str, body: Value) -> Value {
    c.post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The winning, live documents.
async fn live_docs(c: &reqwest::Client, db: &str) -> Vec<Value> {
    let all = get(c, &format!("{db}/_all_docs?include_docs=true")).await;
    all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["doc"].clone())
        .collect()
}

async fn check_view(c: &reqwest::Client, db: &str, second: bool, round: usize) {
    let want = recompute(&live_docs(c, db).await, second);
    let got = get(c, &format!("{db}/_design/v/_view/main?reduce=false")).await;
    let rows: Vec<(Value, String, Value)> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].clone(),
                r["id"].as_str().unwrap().to_owned(),
                r["value"].clone(),
            )
        })
        .collect();
    assert_eq!(got["total_rows"], json!(want.len()), "round {round}");
    assert_eq!(rows.len(), want.len(), "round {round}");
    for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(
            collate::cmp(&g.0, &w.0),
            Ordering::Equal,
            "round {round} row {i}: {g:?} vs {w:?}"
        );
        assert_eq!((&g.1, &g.2), (&w.1, &w.2), "round {round} row {i}");
    }
    // The count reduction, grouped, agrees too.
    let grouped = get(c, &format!("{db}/_design/v/_view/main?group=true")).await;
    let mut want_groups: Vec<(Value, u64)> = Vec::new();
    for (k, _, _) in &want {
        match want_groups.last_mut() {
            Some((last, n)) if collate::cmp(last, k) == Ordering::Equal => *n += 1,
            _ => want_groups.push((k.clone(), 1)),
        }
    }
    let got_groups: Vec<(Value, u64)> = grouped["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].clone(), r["value"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        got_groups.len(),
        want_groups.len(),
        "round {round}: {grouped}"
    );
    for (g, w) in got_groups.iter().zip(&want_groups) {
        assert_eq!(collate::cmp(&g.0, &w.0), Ordering::Equal, "round {round}");
        assert_eq!(g.1, w.1, "round {round}");
    }
}

#[tokio::test]
async fn a_view_stays_a_recompute_of_the_documents() {
    let s = common::start(HttpConfig::default()).await;
    let c = &s.client;
    let db = format!("{}/vdb", s.base);
    c.put(&db).send().await.unwrap();
    let mut rng = SmallRng::seed_from_u64(18);
    let ddoc = json!({"_id": "_design/v", "views": {"main": {"map": MAP, "reduce": "_count"}}});
    let r = post(c, &db, ddoc).await;
    let mut ddoc_rev = r["rev"].as_str().unwrap().to_owned();
    let mut revs: std::collections::HashMap<String, String> = Default::default();
    for round in 0..8 {
        // A batch of new documents and updates …
        let mut batch = Vec::new();
        for i in 0..40 {
            let id = format!("d{:03}", rng.random_range(0..120));
            if batch.iter().any(|d: &Value| d["_id"] == json!(id)) {
                continue;
            }
            let mut d = random_doc(&mut rng, &id);
            if let Some(rev) = revs.get(&id) {
                d["_rev"] = json!(rev);
                if i % 7 == 0 {
                    d["_deleted"] = json!(true);
                }
            }
            batch.push(d);
        }
        let res = post(c, &format!("{db}/_bulk_docs"), json!({"docs": batch})).await;
        for r in res.as_array().unwrap() {
            if let Some(rev) = r["rev"].as_str() {
                revs.insert(r["id"].as_str().unwrap().to_owned(), rev.to_owned());
            }
        }
        // … conflicts written as replication writes them (the winner may change) …
        let mut conflicts = Vec::new();
        for (n, (id, _)) in revs.iter().take(3).enumerate() {
            let mut d = random_doc(&mut rng, id);
            d["_rev"] = json!(format!("9-{:032x}", round * 10 + n));
            conflicts.push(d);
        }
        post(
            c,
            &format!("{db}/_bulk_docs"),
            json!({"docs": conflicts, "new_edits": false}),
        )
        .await;
        check_view(c, &db, false, round).await;
    }
    // The design document changes: the view is another one.
    let r = c
        .put(format!("{db}/_design/v"))
        .json(&json!({"_rev": ddoc_rev, "views": {"main": {"map": MAP2, "reduce": "_count"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    ddoc_rev = r.json::<Value>().await.unwrap()["rev"]
        .as_str()
        .unwrap()
        .to_owned();
    check_view(c, &db, true, 100).await;
    assert!(ddoc_rev.starts_with("2-"));
    // The old index is garbage until `_view_cleanup` drops it.
    let before = common::all_keys(&s.store)
        .await
        .iter()
        .filter(|k| k.contains("!v!"))
        .count();
    let r = c.post(format!("{db}/_view_cleanup")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let after = common::all_keys(&s.store)
        .await
        .iter()
        .filter(|k| k.contains("!v!"))
        .count();
    assert!(after < before, "{after} < {before}");
    check_view(c, &db, true, 101).await;
}

#[tokio::test]
async fn query_options_as_couchdb() {
    let s = common::start(HttpConfig::default()).await;
    let c = &s.client;
    let db = format!("{}/q", s.base);
    c.put(&db).send().await.unwrap();
    let docs: Vec<Value> = (0..10)
        .map(|i| json!({"_id": format!("d{i}"), "n": i % 5, "g": [i % 2, i]}))
        .collect();
    post(c, &format!("{db}/_bulk_docs"), json!({"docs": docs})).await;
    post(
        c,
        &db,
        json!({"_id": "_design/q", "views": {
            "n": {"map": "function (doc) { emit(doc.n, doc.n); }", "reduce": "_sum"},
            "g": {"map": "function (doc) { emit(doc.g, 1); }", "reduce": "function (k, v, re) { return sum(v); }"},
            "linked": {"map": "function (doc) { if (doc.n === 0) emit(doc._id, {_id: 'd4'}); }"}
        }}),
    )
    .await;
    let v = |q: &str| {
        let url = format!("{db}/_design/q/_view/{q}");
        async move { get(c, &url).await }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = v("n?reduce=false&key=2").await;
    assert_eq!(ids(&r), ["d2", "d7"]);
    assert_eq!(r["offset"], 4);
    assert_eq!(r["total_rows"], 10);
    let r = v("n?reduce=false&startkey=1&endkey=3&inclusive_end=false&descending=false").await;
    assert_eq!(ids(&r), ["d1", "d6", "d2", "d7"]);
    let r = v("n?reduce=false&startkey=3&endkey=1&descending=true&limit=3&skip=1").await;
    assert_eq!(ids(&r), ["d3", "d7", "d2"]);
    let r = v("n?reduce=false&startkey=2&startkey_docid=d7&endkey=3&endkey_docid=d3").await;
    assert_eq!(ids(&r), ["d7", "d3"]);
    let r = v("n").await;
    assert_eq!(r["rows"], json!([{"key": null, "value": 20}]));
    let r = v("n?group=true&startkey=3").await;
    assert_eq!(
        r["rows"],
        json!([{"key": 3, "value": 6}, {"key": 4, "value": 8}])
    );
    let r = v("g?group_level=1").await;
    assert_eq!(
        r["rows"],
        json!([{"key": [0], "value": 5}, {"key": [1], "value": 5}])
    );
    let r = v("g").await;
    assert_eq!(r["rows"], json!([{"key": null, "value": 10}]));
    let r = v("linked?include_docs=true").await;
    assert_eq!(r["rows"][0]["doc"]["_id"], "d4");
    let r = v("n?reduce=false&update_seq=true&limit=0").await;
    assert_eq!(r["update_seq"], 11);
    // Errors, as CouchDB's.
    for (q, status, error) in [
        ("n?include_docs=true", 400, "query_parse_error"),
        ("linked?reduce=true", 400, "query_parse_error"),
        ("n?startkey=3&endkey=1", 400, "query_parse_error"),
        ("nope", 404, "not_found"),
        ("n?key=nojson", 400, "bad_request"),
    ] {
        let r = c
            .get(format!("{db}/_design/q/_view/{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{q}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], error, "{q}");
    }
    let r = c
        .post(format!("{db}/_design/q/_view/n?reduce=false"))
        .json(&json!({"keys": [4, 0]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(ids(&r), ["d4", "d9", "d0", "d5"]);
    // `stale=ok` answers from the index as it is.
    post(c, &db, json!({"_id": "late", "n": 0})).await;
    let r = v("n?reduce=false&key=0&stale=ok").await;
    assert_eq!(ids(&r), ["d0", "d5"]);
    let r = v("n?reduce=false&key=0").await;
    assert_eq!(ids(&r), ["d0", "d5", "late"]);
}

#[tokio::test]
async fn runaway_functions_are_stopped_while_others_are_served() {
    let s = common::start(HttpConfig::default()).await;
    let c = &s.client;
    let db = format!("{}/run", s.base);
    c.put(&db).send().await.unwrap();
    post(c, &db, json!({"_id": "a"})).await;
    let runaways = [
        ("spin", "function (doc) { while (true) {} }"),
        (
            "grow",
            "function (doc) { var s = 'x'; while (true) s = s + s; }",
        ),
        (
            "hoard",
            "function (doc) { var a = []; while (true) a.push({n: a.length}); }",
        ),
        (
            "deep",
            "function (doc) { function f(n) { return f(n + 1) + 1; } f(0); }",
        ),
    ];
    for (name, map) in runaways {
        let r = post(
            c,
            &db,
            json!({"_id": format!("_design/{name}"), "views": {"v": {"map": map}}}),
        )
        .await;
        assert_eq!(r["ok"], true);
    }
    post(c, &db, json!({"_id": "_design/ok", "views": {"fine": {"map": "function (doc) { emit(doc._id, 1); }"}}})).await;
    for (view, _) in runaways {
        let runaway = {
            let c = c.clone();
            let url = format!("{db}/_design/{view}/_view/v");
            tokio::spawn(async move { c.get(url).send().await.unwrap() })
        };
        // While it runs, other requests are answered (one with JavaScript of its own).
        let other = get(c, &format!("{db}/_design/ok/_view/fine")).await;
        assert_eq!(other["rows"][0]["id"], "a");
        let r = runaway.await.unwrap();
        assert_eq!(r.status(), 500, "{view}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "os_process_error", "{view}: {body}");
    }
    // The server is fine afterwards.
    assert_eq!(
        get(c, &format!("{db}/_design/ok/_view/fine")).await["total_rows"],
        1
    );
}

#[tokio::test]
async fn filters_and_validation() {
    let s = common::start(HttpConfig::default()).await;
    let c = &s.client;
    let db = format!("{}/f", s.base);
    c.put(&db).send().await.unwrap();
    let r = post(
        c,
        &db,
        json!({"_id": "_design/f",
            "filters": {"kind": "function (doc, req) { return doc.kind === req.query.kind; }"},
            "views": {"odd": {"map": "function (doc) { if (doc.n % 2) emit(doc.n); }"}},
            "validate_doc_update": "function (newDoc, oldDoc, userCtx, secObj) { if (newDoc.locked) throw({forbidden: 'locked'}); if (oldDoc && oldDoc.owner && oldDoc.owner !== userCtx.name && userCtx.roles.indexOf('_admin') < 0) throw({unauthorized: 'not yours'}); if (newDoc.crash) null.x; }"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let docs: Vec<Value> = (0..6)
        .map(|i| json!({"_id": format!("d{i}"), "n": i, "kind": if i < 2 { "a" } else { "b" }}))
        .collect();
    post(c, &format!("{db}/_bulk_docs"), json!({"docs": docs})).await;
    let ch = get(c, &format!("{db}/_changes?filter=f/kind&kind=a")).await;
    let ids: Vec<&str> = ch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d0", "d1"]);
    let ch = get(c, &format!("{db}/_changes?filter=_view&view=f/odd")).await;
    let ids: Vec<&str> = ch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d1", "d3", "d5"]);
    for (q, status) in [
        ("filter=f/nope", 404),
        ("filter=nope/kind", 404),
        ("filter=_view", 400),
        ("filter=_view&view=f/nope", 404),
        ("filter=bad", 400),
    ] {
        let r = c.get(format!("{db}/_changes?{q}")).send().await.unwrap();
        assert_eq!(r.status(), status, "{q}");
    }
    // validate_doc_update: a refused document writes nothing, the others in its batch are
    // written.
    let res = post(
        c,
        &format!("{db}/_bulk_docs"),
        json!({"docs": [{"_id": "ok1"}, {"_id": "no1", "locked": true}, {"_id": "boom", "crash": true}]}),
    )
    .await;
    assert_eq!(res[0]["ok"], true);
    assert_eq!(res[1]["error"], "forbidden");
    assert_eq!(res[1]["reason"], "locked");
    assert_eq!(res[2]["error"], "render_error");
    let r = c.get(format!("{db}/no1")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .put(format!("{db}/no2"))
        .json(&json!({"locked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Replicated revisions are validated too.
    let res = post(
        c,
        &format!("{db}/_bulk_docs"),
        json!({"new_edits": false, "docs": [{"_id": "rep", "_rev": "1-abc", "locked": true}]}),
    )
    .await;
    assert_eq!(res[0]["error"], "forbidden", "{res}");
    assert_eq!(
        c.get(format!("{db}/rep")).send().await.unwrap().status(),
        404
    );
    // userCtx is the writer: a user who does not own the document is refused with 401.
    c.put(format!("{}/_users/org.couchdb.user:bob", s.base))
        .json(&json!({"name": "bob", "password": "pw", "roles": [], "type": "user"}))
        .send()
        .await
        .unwrap();
    c.put(format!("{db}/_security"))
        .json(&json!({"members": {"names": ["bob"]}}))
        .send()
        .await
        .unwrap();
    let r = c
        .put(format!("{db}/owned"))
        .json(&json!({"owner": "alice"}))
        .send()
        .await
        .unwrap();
    let rev = r.json::<Value>().await.unwrap()["rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = reqwest::Client::new();
    let r = bob
        .put(format!("{db}/owned"))
        .basic_auth("bob", Some("pw"))
        .json(&json!({"_rev": rev, "owner": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "not yours");
    // A design document whose functions do not compile is refused.
    let r = c
        .put(format!("{db}/_design/broken"))
        .json(&json!({"filters": {"x": "function (doc) {"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "compilation_error"
    );
}

#[tokio::test]
async fn offset_is_exact_from_fences_across_updates() {
    // More rows than several fences (512 entries apart), keys with duplicates, queries
    // ascending and descending at many starts, then rows added before and removed: every
    // offset equals the count of rows before the start.
    let s = common::start(HttpConfig::default()).await;
    let c = &s.client;
    let db = format!("{}/off", s.base);
    c.put(&db).send().await.unwrap();
    let docs: Vec<Value> = (0..1500)
        .map(|i| json!({"_id": format!("d{i:04}"), "k": (i * 7) % 1100}))
        .collect();
    post(c, &format!("{db}/_bulk_docs"), json!({"docs": docs})).await;
    post(
        c,
        &db,
        json!({"_id": "_design/o", "views": {"k": {"map": "function (doc) { emit(doc.k, null); }"}}}),
    )
    .await;
    let view = format!("{db}/_design/o/_view/k");
    let check = |keys: Vec<i64>| {
        let view = view.clone();
        async move {
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            for start in [0i64, 1, 77, 511, 512, 600, 1023, 1024, 1099, 2000, -5] {
                let r = get(c, &format!("{view}?startkey={start}&limit=1")).await;
                let want = sorted.iter().filter(|k| **k < start).count();
                assert_eq!(r["offset"], want, "ascending from {start}");
                let r = get(
                    c,
                    &format!("{view}?startkey={start}&limit=1&descending=true"),
                )
                .await;
                let want = sorted.iter().filter(|k| **k > start).count();
                assert_eq!(r["offset"], want, "descending from {start}");
                assert_eq!(r["total_rows"], sorted.len());
            }
        }
    };
    let mut keys: Vec<i64> = (0..1500).map(|i| (i * 7) % 1100).collect();
    check(keys.clone()).await;
    // Asked again (now from fences), the same.
    check(keys.clone()).await;
    // Rows added low in the order and some removed: the fences of the old index are not used.
    let more: Vec<Value> = (0..300)
        .map(|i| json!({"_id": format!("e{i:04}"), "k": i % 50}))
        .collect();
    post(c, &format!("{db}/_bulk_docs"), json!({"docs": more})).await;
    keys.extend((0..300).map(|i| i % 50));
    for i in (0..1500).step_by(3) {
        let id = format!("d{i:04}");
        let doc = get(c, &format!("{db}/{id}")).await;
        let url = format!("{db}/{id}?rev={}", doc["_rev"].as_str().unwrap());
        assert!(c.delete(&url).send().await.unwrap().status().is_success());
        keys.retain({
            let k = (i as i64 * 7) % 1100;
            let mut removed = false;
            move |x| {
                if !removed && *x == k {
                    removed = true;
                    false
                } else {
                    true
                }
            }
        });
    }
    check(keys.clone()).await;
    check(keys).await;
}
