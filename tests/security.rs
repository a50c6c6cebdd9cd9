//! What an attacker with a free account could do, each finding of the security pass over the
//! real binary: choose what a login costs, keep a session past a password change, write
//! design documents as a member, lock a victim out or guess in parallel, blow up memory with
//! long lists, make a document's revisions cost quadratic time, wedge a document by wrapping its
//! revision position, hold a connection with an absurd `Content-Length`, read the data files.
//! Each test fails on the code before its fix.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use couchkv::auth::crypto::make_jwt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod common;

use common::binary::{basic, signup, start, Server, JWT_SECRET};

fn from_address(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap()
}

async fn status_of(s: &Server, client: &reqwest::Client, auth: &str, path: &str) -> StatusCode {
    client
        .get(format!("{}{path}", s.base))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_client_cannot_choose_what_a_login_costs() {
    let (s, _dir) = start(&[]);
    // A sign-up with its own hash, at u32::MAX iterations and no password.
    let doc = json!({
        "name": "slow", "type": "user", "roles": [],
        "password_scheme": "pbkdf2", "pbkdf2_prf": "sha256", "iterations": 4294967295u64,
        "salt": "00", "derived_key": "00"
    });
    let (status, _, _) = s
        .call(
            None,
            Method::PUT,
            "/_users/org.couchdb.user:slow",
            Some(doc),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, stored) = s
        .admin(Method::GET, "/_users/org.couchdb.user:slow", None)
        .await;
    for k in ["password_scheme", "iterations", "salt", "derived_key"] {
        assert!(stored.get(k).is_none(), "{k} was stored from the client");
    }
    // So a login for that name costs nothing: it answers at once, with a 401.
    let t = Instant::now();
    let (status, _, _) = s
        .call(Some(&basic("slow", "x")), Method::GET, "/_session", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A user with a password rewriting their document with hash fields keeps the server's.
    assert_eq!(signup(&s, "carol", "c4rol-pw").await, StatusCode::CREATED);
    let status = s
        .edit_own_user("carol", "c4rol-pw", |me| {
            me["iterations"] = json!(3_000_000);
            me["salt"] = json!("ab");
        })
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, stored) = s
        .admin(Method::GET, "/_users/org.couchdb.user:carol", None)
        .await;
    assert_eq!(stored["iterations"], 1000, "the server's iterations stay");
    // A fresh client (no cached verification) still logs in with the same password.
    let (status, _, _) = s
        .call(
            None,
            Method::POST,
            "/_session",
            Some(json!({"name": "carol", "password": "c4rol-pw"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // And the server refuses to be configured above the bound.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["serve", "--pbkdf2-iterations", "4294967295"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn sessions_end_with_the_password_the_user_and_their_longest_life() {
    let (s, _dir) = start(&["--session-max-age", "3"]);
    assert_eq!(signup(&s, "bob", "first-pw").await, StatusCode::CREATED);
    let old = s.login("bob", "first-pw").await;
    assert_eq!(s.session_name(&old).await, "bob");
    // A new password ends the old session; a login with it starts a new one.
    let status = s
        .edit_own_user("bob", "first-pw", |me| me["password"] = json!("second-pw"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(s.session_name(&old).await, Value::Null);
    let new = s.login("bob", "second-pw").await;
    assert_eq!(s.session_name(&new).await, "bob");
    // A user deleted and made again under the same name and password: old sessions stay dead.
    let (_, doc) = s
        .admin(Method::GET, "/_users/org.couchdb.user:bob", None)
        .await;
    let rev = doc["_rev"].as_str().unwrap().to_owned();
    let (status, _) = s
        .admin(
            Method::DELETE,
            &format!("/_users/org.couchdb.user:bob?rev={rev}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(signup(&s, "bob", "second-pw").await, StatusCode::CREATED);
    assert_eq!(s.session_name(&new).await, Value::Null);
    // However often it is used and renewed, a session ends at --session-max-age.
    let fresh = s.login("bob", "second-pw").await;
    assert_eq!(s.session_name(&fresh).await, "bob");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(s.session_name(&fresh).await, Value::Null);
}

#[tokio::test]
async fn members_write_no_design_document_by_any_route() {
    let (s, _dir) = start(&[]);
    for (name, pw) in [("bob", "b0b-pw"), ("dave", "d4ve-pw")] {
        assert_eq!(signup(&s, name, pw).await, StatusCode::CREATED);
    }
    s.admin(Method::PUT, "/shared", None).await;
    let sec = json!({"admins": {"names": ["dave"], "roles": []}, "members": {"names": ["bob"], "roles": []}});
    s.admin(Method::PUT, "/shared/_security", Some(sec)).await;
    let (_, d) = s
        .admin(
            Method::PUT,
            "/shared/_design/app",
            Some(json!({"views": {}})),
        )
        .await;
    let rev = d["rev"].as_str().unwrap().to_owned();
    let bob = basic("bob", "b0b-pw");
    let dave = basic("dave", "d4ve-pw");
    let attempts = [
        (
            Method::PUT,
            format!("/shared/_design%2Fapp/evil.js?rev={rev}"),
        ),
        (Method::PUT, "/shared/_design%2Fnewdd/att".to_owned()),
        (Method::PUT, "/shared/_design%2fnewdd/att".to_owned()),
        (Method::PUT, "/shared/_design%2Fnewdd".to_owned()),
        (
            Method::DELETE,
            format!("/shared/_design%2Fapp/att?rev={rev}"),
        ),
        (Method::DELETE, format!("/shared/_design%2Fapp?rev={rev}")),
        (
            Method::PUT,
            format!("/shared/_design/app/evil.js?rev={rev}"),
        ),
    ];
    for (method, path) in &attempts {
        let resp = s
            .client
            .request(method.clone(), format!("{}{path}", s.base))
            .header("authorization", &bob)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (status, _, _) = s
        .call(
            Some(&bob),
            Method::POST,
            "/shared/_bulk_docs",
            Some(json!({"docs": [{"_id": "_design/x"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing changed, and the database admin may do what bob may not.
    let (_, all) = s.admin(Method::GET, "/shared/_all_docs", None).await;
    assert_eq!(all["rows"].as_array().unwrap().len(), 1, "{all}");
    let (_, ddoc) = s.admin(Method::GET, "/shared/_design/app", None).await;
    assert!(ddoc.get("_attachments").is_none());
    let resp = s
        .client
        .put(format!("{}/shared/_design%2Fapp/ok.js?rev={rev}", s.base))
        .header("authorization", &dave)
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // bob still writes ordinary documents and their attachments.
    let resp = s
        .client
        .put(format!("{}/shared/note/a.txt", s.base))
        .header("authorization", &bob)
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn guessing_neither_locks_the_victim_out_nor_runs_in_parallel() {
    let (s, _dir) = start(&[]);
    assert_eq!(signup(&s, "alice", "4lice-pw").await, StatusCode::CREATED);
    // 40 other addresses guess at alice's password, 3 times each, all at once.
    let mut guesses = Vec::new();
    for last in 2..42u8 {
        let base = s.base.clone();
        guesses.push(tokio::spawn(async move {
            let c = from_address(last);
            for i in 0..3 {
                let st = c
                    .get(format!("{base}/_session"))
                    .header("authorization", basic("alice", &format!("guess{i}")))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(st, StatusCode::UNAUTHORIZED);
            }
        }));
    }
    for g in guesses {
        g.await.unwrap();
    }
    // alice, from an address that never failed, is not held back (5 s each before the fix).
    let t = Instant::now();
    let st = status_of(
        &s,
        &from_address(1),
        &basic("alice", "4lice-pw"),
        "/_session",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    // Six guesses sent at once from one address queue behind each other's delays: at least
    // 100 + 200 + 400 + 800 + 1600 ms (before the fix they all ran at once, in milliseconds).
    let c = from_address(50);
    let t = Instant::now();
    let parallel: Vec<_> = (0..6)
        .map(|i| {
            let c = c.clone();
            let url = format!("{}/_session", s.base);
            tokio::spawn(async move {
                c.get(url)
                    .header("authorization", basic("alice", &format!("p{i}")))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for p in parallel {
        assert_eq!(p.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert!(
        t.elapsed() >= Duration::from_millis(3100),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn the_data_directory_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A directory that exists, open to all, is tightened too.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["token", "list", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("couchkv.redb")), 0o600);
    // The token commands on that directory: make one that expires, list it, revoke it.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_couchkv"))
            .args(["token"])
            .args(args)
            .args(["--data", data.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, token) = cli(&["create", "--name", "ci", "--read", "--expires-in", "3600"]);
    assert!(ok);
    let id = token.trim().split('_').nth(1).unwrap().to_owned();
    let (ok, listed) = cli(&["list"]);
    assert!(ok);
    assert!(
        listed.starts_with(&format!("{id}\tci\tread\tall namespaces\texpires ")),
        "{listed}"
    );
    assert!(!listed.contains(&token.trim()[21..]));
    assert!(cli(&["revoke", &id]).0);
    assert!(!cli(&["revoke", &id]).0, "a second revoke finds nothing");
    assert_eq!(cli(&["list"]).1, "");
}

#[tokio::test]
async fn api_tokens_are_listed_revoked_and_expire_and_admin_jwts_reach_the_kv_api() {
    let (s, _dir) = start(&[]);
    let kv = "/client/v4/accounts/a/storage/kv/namespaces";
    let mint = |expires_in: Option<u64>| {
        let mut body = json!({"name": "ci", "write": true});
        if let Some(e) = expires_in {
            body["expires_in"] = json!(e);
        }
        body
    };
    let (status, made) = s
        .admin(Method::POST, "/_couchkv/tokens", Some(mint(None)))
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let token = made["result"]["token"].as_str().unwrap().to_owned();
    let (_, short) = s
        .admin(Method::POST, "/_couchkv/tokens", Some(mint(Some(1))))
        .await;
    let short = short["result"]["token"].as_str().unwrap().to_owned();
    let bearer = |t: &str| format!("Bearer {t}");
    let (st, _, _) = s.call(Some(&bearer(&token)), Method::GET, kv, None).await;
    assert_eq!(st, StatusCode::OK);
    // Listed without secrets.
    let (st, list) = s.admin(Method::GET, "/_couchkv/tokens", None).await;
    assert_eq!(st, StatusCode::OK);
    let rows = list["result"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let secret = &token[21..]; // after `ckv_`, 16 hex digits and `_` (the secret may hold `_` itself)
    assert!(!list.to_string().contains(secret));
    let id = token.split('_').nth(1).unwrap();
    assert!(rows.iter().any(|r| r["id"] == id && r["expires"].is_null()));
    // The short one expires.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, _, _) = s.call(Some(&bearer(&short)), Method::GET, kv, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Revoked: refused at once; a second revoke finds nothing.
    let (st, _) = s
        .admin(Method::DELETE, &format!("/_couchkv/tokens/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = s.call(Some(&bearer(&token)), Method::GET, kv, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .admin(Method::DELETE, &format!("/_couchkv/tokens/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Only admins manage tokens.
    assert_eq!(signup(&s, "bob", "b0b-pw").await, StatusCode::CREATED);
    let (st, _, _) = s
        .call(
            Some(&basic("bob", "b0b-pw")),
            Method::GET,
            "/_couchkv/tokens",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A JWT of a server admin works on the KV API; a user's JWT does not.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = |roles: Value| {
        bearer(&make_jwt(
            JWT_SECRET.as_bytes(),
            &json!({"sub": "ops", "exp": now + 60, "_couchdb.roles": roles}),
        ))
    };
    let (st, _, _) = s
        .call(Some(&jwt(json!(["_admin"]))), Method::GET, kv, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v, _) = s.call(Some(&jwt(json!([]))), Method::GET, kv, None).await;
    assert_eq!(
        (st, &v["errors"][0]["code"]),
        (StatusCode::FORBIDDEN, &json!(10000))
    );
}

/// Reads an answer as it streams, keeping only its size (so the test's own memory stays out of
/// what is measured: the server is another process anyway).
async fn drain(resp: reqwest::Response) -> (StatusCode, usize) {
    let status = resp.status();
    let mut resp = resp;
    let mut n = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len();
    }
    (status, n)
}

#[tokio::test]
async fn long_lists_and_long_answers_cost_bounded_memory() {
    let (s, _dir) = start(&[]);
    let admin = basic("admin", common::binary::ADMIN_PASSWORD);
    s.admin(Method::PUT, "/db", None).await;
    // 2,000 documents of 16 KB (32 MB) to answer with.
    let big = "x".repeat(16_000);
    for b in 0..20 {
        let docs: Vec<Value> = (0..100)
            .map(|i| json!({"_id": format!("d{b:02}{i:03}"), "v": big}))
            .collect();
        let (st, _) = s
            .admin(Method::POST, "/db/_bulk_docs", Some(json!({"docs": docs})))
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let post = |path: &str, body: String| {
        s.client
            .post(format!("{}{path}", s.base))
            .header("authorization", &admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // The whole database with its documents, streamed: it is not held in memory (67 MB more
    // before the fix, measured; 0-11 MB after).
    let before = s.rss_mib();
    let (st, n) = drain(
        s.client
            .get(format!("{}/db/_all_docs?include_docs=true", s.base))
            .header("authorization", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(n > 32_000_000, "{n} bytes");
    let grown = s.rss_mib().saturating_sub(before);
    assert!(grown < 40, "_all_docs grew the server by {grown} MiB");
    // 200,000 ids in a 3.7 MB _bulk_get: refused before it is parsed (862 MB before the fix).
    let ids: Vec<String> = (0..200_000)
        .map(|i| format!(r#"{{"id":"d{i}"}}"#))
        .collect();
    let before = s.rss_mib();
    let bulk_get = |ids: &[String]| {
        post(
            "/db/_bulk_get",
            format!(r#"{{"docs":[{}]}}"#, ids.join(",")),
        )
    };
    let (st, _) = drain(bulk_get(&ids).await.unwrap()).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // The most a _bulk_get may ask, 10,000 documents of 16 KB: streamed page by page.
    let ids: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"id":"d{:02}{:03}"}}"#, (i / 100) % 20, i % 100))
        .collect();
    let (st, n) = drain(bulk_get(&ids).await.unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert!(n > 160_000_000, "{n} bytes");
    let grown = s.rss_mib().saturating_sub(before);
    assert!(grown < 40, "_bulk_get grew the server by {grown} MiB");
    // _all_docs keys past the bound: 413 in CouchDB's shape.
    let keys: Vec<String> = (0..10_001).map(|i| format!(r#""k{i}""#)).collect();
    let resp = post(
        "/db/_all_docs",
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "too_large");
}

#[tokio::test]
async fn a_branched_revision_tree_is_bounded_and_cheap() {
    let (s, _dir) = start(&[]);
    s.admin(Method::PUT, "/db", None).await;
    // 25 copies of one document, each with its own 1,000-revision history: before the fix,
    // 100 of them took 21 s and 670 MB, and every later read of the document cost seconds.
    let docs: Vec<Value> = (0..25)
        .map(|c| {
            let ids: Vec<String> = (0..1000).map(|i| format!("c{c}r{i}")).collect();
            json!({"_id": "wide", "_rev": format!("1000-{}", ids[0]), "_revisions": {"start": 1000, "ids": ids}})
        })
        .collect();
    let (st, rows) = s
        .admin(
            Method::POST,
            "/db/_bulk_docs",
            Some(json!({"docs": docs, "new_edits": false})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // The tree stops at 20,000 revisions: the 5 branches beyond are refused, each in its row.
    let refused = rows.as_array().unwrap();
    assert_eq!(refused.len(), 5, "{rows}");
    assert!(refused.iter().all(|r| r["error"] == "too_large"));
    let (st, leaves) = s.admin(Method::GET, "/db/wide?open_revs=all", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(leaves.as_array().unwrap().len(), 20);
    let (st, doc) = s
        .admin(Method::GET, "/db/wide?revs_info=true&conflicts=true", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["_conflicts"].as_array().unwrap().len(), 19);
    assert_eq!(doc["_revs_info"].as_array().unwrap().len(), 1000);
    // Resolving a conflict (a deletion extends a leaf) is still possible at the bound.
    let loser = doc["_conflicts"][0].as_str().unwrap().to_owned();
    let (st, _) = s
        .admin(Method::DELETE, &format!("/db/wide?rev={loser}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    // 1,001 one-revision branches: the document stops at 1,000 leaves.
    let docs: Vec<Value> = (0..1001)
        .map(|c| json!({"_id": "bushy", "_rev": format!("1-b{c}")}))
        .collect();
    let (_, rows) = s
        .admin(
            Method::POST,
            "/db/_bulk_docs",
            Some(json!({"docs": docs, "new_edits": false})),
        )
        .await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let (_, leaves) = s.admin(Method::GET, "/db/bushy?open_revs=all", None).await;
    assert_eq!(leaves.as_array().unwrap().len(), 1000);
}

#[tokio::test]
async fn a_revision_position_never_wraps() {
    let (s, _dir) = start(&[]);
    s.admin(Method::PUT, "/db", None).await;
    let top = "9007199254740991-aa";
    let (st, _) = s
        .admin(
            Method::PUT,
            "/db/edge?new_edits=false",
            Some(json!({"_rev": top, "v": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // The next edit cannot be numbered: a 400, and the document is as it was.
    let (st, v) = s
        .admin(Method::PUT, "/db/edge", Some(json!({"_rev": top, "v": 2})))
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (st, doc) = s.admin(Method::GET, "/db/edge", None).await;
    assert_eq!(
        (st, doc["_rev"].as_str(), doc["v"].as_i64()),
        (StatusCode::OK, Some(top), Some(1))
    );
    // Past the bound, on the way in: refused before anything is written.
    let (st, _) = s
        .admin(
            Method::PUT,
            "/db/wrapped?new_edits=false",
            Some(json!({"_rev": "18446744073709551615-aa"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, got) = s
        .admin(
            Method::POST,
            "/db/_bulk_get",
            Some(json!({"docs": [{"id": "edge"}, {"id": "wrapped"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got["results"][0]["docs"][0]["ok"]["_rev"], top);
}

#[tokio::test]
async fn an_absurd_content_length_is_refused_at_once() {
    let (s, _dir) = start(&[]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    for path in [
        "/db/_bulk_docs",
        "/client/v4/accounts/a/storage/kv/namespaces",
    ] {
        let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n{{"
        )
        .unwrap();
        // No body follows: the answer comes from the header alone (before the fix the server
        // waited for the body until the 60 s body timeout).
        let mut buf = [0u8; 512];
        let n = tcp.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
    }
}
