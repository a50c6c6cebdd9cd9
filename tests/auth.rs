//! Users, authentication and authorization over real HTTP, against the real binary (so its
//! logs can be searched for secrets): every route walked with every kind of identity, sign-up
//! and per-user databases, cookies (tampered, expired, renewed), JWTs (wrong key, expired),
//! wrong passwords, throttling, and no password, derived key or secret in any response or log.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use couchkv::auth::crypto::make_jwt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod common;

use common::binary::{basic, signup, start, ADMIN_PASSWORD, JWT_SECRET};

const BOB_PASSWORD: &str = "b0b-Pa55word-abc";
const EVE_PASSWORD: &str = "3ve-Pa55word-def";

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Member,
    Other,
    DbAdmin,
    ServerAdmin,
}

#[tokio::test]
async fn every_route_with_every_identity() {
    let (s, _dir) = start(&[]);
    // bob is a member of `shared`, dave its db admin, eve nobody there.
    for (name, pw) in [
        ("bob", BOB_PASSWORD),
        ("eve", EVE_PASSWORD),
        ("dave", "dave-pw-123"),
    ] {
        assert_eq!(signup(&s, name, pw).await, StatusCode::CREATED);
    }
    assert_eq!(
        s.admin(Method::PUT, "/shared", None).await.0,
        StatusCode::CREATED
    );
    let sec = json!({"admins": {"names": ["dave"], "roles": []}, "members": {"names": ["bob"], "roles": []}});
    assert_eq!(
        s.admin(Method::PUT, "/shared/_security", Some(sec)).await.0,
        StatusCode::OK
    );
    let (_, d) = s
        .admin(Method::PUT, "/shared/doc", Some(json!({"v": 1})))
        .await;
    let rev = d["rev"].as_str().unwrap().to_owned();
    s.admin(
        Method::PUT,
        "/shared/_design/app",
        Some(json!({"views": {}})),
    )
    .await;

    let cred = |w: Who| match w {
        Who::Anonymous => None,
        Who::Member => Some(basic("bob", BOB_PASSWORD)),
        Who::Other => Some(basic("eve", EVE_PASSWORD)),
        Who::DbAdmin => Some(basic("dave", "dave-pw-123")),
        Who::ServerAdmin => Some(basic("admin", ADMIN_PASSWORD)),
    };
    use Who::*;
    const WHO: [Who; 5] = [Anonymous, Member, Other, DbAdmin, ServerAdmin];
    // (method, path, body, expected status for anonymous, member, other, db admin, server admin)
    type Row = (Method, String, Option<Value>, [u16; 5]);
    let read = [401, 200, 403, 200, 200];
    let write = [401, 201, 403, 201, 201];
    let rows: Vec<Row> = vec![
        (Method::GET, "/".into(), None, [200; 5]),
        (Method::GET, "/_up".into(), None, [200; 5]),
        (Method::GET, "/_uuids".into(), None, [200; 5]),
        (Method::GET, "/_session".into(), None, [200; 5]),
        (
            Method::GET,
            "/_all_dbs".into(),
            None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::PUT,
            "/newdb".into(),
            None,
            [401, 403, 403, 403, 201],
        ),
        (
            Method::DELETE,
            "/newdb".into(),
            None,
            [401, 403, 403, 403, 200],
        ),
        (Method::GET, "/shared".into(), None, read),
        (Method::GET, "/shared/".into(), None, read),
        (Method::GET, "/shared/doc".into(), None, read),
        (Method::GET, "/shared/_all_docs".into(), None, read),
        (Method::GET, "/shared/_changes".into(), None, read),
        (Method::GET, "/shared/_security".into(), None, read),
        (Method::GET, "/shared/_design/app".into(), None, read),
        (
            Method::GET,
            "/shared/_local/cp".into(),
            None,
            [401, 404, 403, 404, 404],
        ),
        (
            Method::POST,
            "/shared/_bulk_get".into(),
            Some(json!({"docs": [{"id": "doc"}]})),
            read,
        ),
        (
            Method::POST,
            "/shared/_revs_diff".into(),
            Some(json!({"doc": [rev.clone()]})),
            read,
        ),
        (
            Method::POST,
            "/shared/_all_docs".into(),
            Some(json!({"keys": ["doc"]})),
            read,
        ),
        (
            Method::POST,
            "/shared/_ensure_full_commit".into(),
            Some(json!({})),
            [401, 201, 403, 201, 201],
        ),
        (
            Method::PUT,
            "/shared/w1".into(),
            Some(json!({"a": 1})),
            write,
        ),
        (Method::POST, "/shared".into(), Some(json!({"b": 1})), write),
        (
            Method::POST,
            "/shared/_bulk_docs".into(),
            Some(json!({"docs": [{"c": 1}]})),
            write,
        ),
        (
            Method::PUT,
            "/shared/_local/cp".into(),
            Some(json!({"x": 1})),
            [401, 201, 403, 409, 409],
        ),
        (
            Method::PUT,
            "/shared/_design/new".into(),
            Some(json!({})),
            [401, 403, 403, 201, 201],
        ),
        (
            Method::POST,
            "/shared/_bulk_docs".into(),
            Some(json!({"docs": [{"_id": "_design/b"}]})),
            [401, 403, 403, 201, 201],
        ),
        (
            Method::PUT,
            "/shared/_security".into(),
            Some(json!({"admins": {"names": ["dave"]}, "members": {"names": ["bob"]}})),
            [401, 403, 403, 200, 200],
        ),
        // Compaction and purge are for database admins.
        (
            Method::POST,
            "/shared/_compact".into(),
            Some(json!({})),
            [401, 403, 403, 202, 202],
        ),
        (
            Method::POST,
            "/shared/_purge".into(),
            Some(json!({"nothing": ["1-a"]})),
            [401, 403, 403, 201, 201],
        ),
        (
            Method::PUT,
            "/shared/withatt/a.txt".into(),
            None,
            [401, 201, 403, 201, 201],
        ),
        (
            Method::GET,
            "/nosuchdb".into(),
            None,
            [401, 403, 403, 403, 404],
        ),
        (
            Method::GET,
            "/_users".into(),
            None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::GET,
            "/_users/_all_docs".into(),
            None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::GET,
            "/_users/org.couchdb.user:bob".into(),
            None,
            [401, 200, 403, 403, 200],
        ),
        (
            Method::GET,
            "/userdb-626f62".into(),
            None,
            [401, 200, 403, 403, 200],
        ),
        (
            Method::GET,
            "/userdb-626f62/_all_docs".into(),
            None,
            [401, 200, 403, 403, 200],
        ),
    ];
    for (method, path, body, want) in rows {
        for (i, who) in WHO.iter().enumerate() {
            // Writes that succeed once are made unique per identity, so each row tests access.
            let path = if want[i] == 201 && path.starts_with("/shared/w1") {
                format!("{path}-{i}")
            } else if path == "/shared/withatt/a.txt" {
                format!("/shared/withatt{i}/a.txt")
            } else if path == "/shared/_design/new" {
                format!("{path}{i}")
            } else {
                path.clone()
            };
            let (status, v, _) = s
                .call(cred(*who).as_deref(), method.clone(), &path, body.clone())
                .await;
            assert_eq!(status.as_u16(), want[i], "{method} {path} as {who:?}: {v}");
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let name = if status == StatusCode::UNAUTHORIZED {
                    "unauthorized"
                } else {
                    "forbidden"
                };
                assert_eq!(
                    v["error"], name,
                    "{method} {path} as {who:?}: CouchDB's shape"
                );
            }
        }
        // The database created above is deleted by the next row; keep the table's order.
    }
    // Refused writes wrote nothing.
    let (_, all) = s.admin(Method::GET, "/shared/_all_docs", None).await;
    let ids: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.iter()
            .any(|id| id.ends_with("-0") || id.ends_with("-2")),
        "{ids:?}"
    );
}

#[tokio::test]
async fn signup_per_user_databases_and_sessions() {
    let (s, _dir) = start(&[]);
    assert_eq!(signup(&s, "bob", BOB_PASSWORD).await, StatusCode::CREATED);
    // Taken: a second sign-up of the same name is refused, not a takeover.
    assert_eq!(signup(&s, "bob", "other").await.as_u16(), 401);
    // A user may not give themselves roles.
    let doc = json!({"name": "mallory", "password": "x", "type": "user", "roles": ["_admin"]});
    let (status, _, _) = s
        .call(
            None,
            Method::PUT,
            "/_users/org.couchdb.user:mallory",
            Some(doc),
        )
        .await;
    assert_eq!(status.as_u16(), 403);
    // Bad user documents.
    let doc = json!({"name": "other", "password": "x", "type": "user", "roles": []});
    let (status, v, _) = s
        .call(None, Method::PUT, "/_users/org.couchdb.user:zed", Some(doc))
        .await;
    assert_eq!(
        (status.as_u16(), v["error"].as_str()),
        (400, Some("doc_validation"))
    );

    // The per-user database: userdb-<hex>, bob its admin and member.
    let (status, sec) = s.admin(Method::GET, "/userdb-626f62/_security", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sec["admins"]["names"], json!(["bob"]));
    assert_eq!(sec["members"]["names"], json!(["bob"]));

    // The stored user has a PBKDF2 hash, and nobody sees it or the password.
    let (_, doc) = s
        .admin(Method::GET, "/_users/org.couchdb.user:bob", None)
        .await;
    assert_eq!(doc["password_scheme"], "pbkdf2");
    assert_eq!(doc["pbkdf2_prf"], "sha256");
    for k in ["password", "derived_key", "salt"] {
        assert!(doc.get(k).is_none(), "{k} is not shown: {doc}");
    }

    // Login with JSON and with a form; GET /_session; logout.
    let (status, v, h) = s
        .call(
            None,
            Method::POST,
            "/_session",
            Some(json!({"name": "bob", "password": BOB_PASSWORD})),
        )
        .await;
    assert_eq!((status, v["name"].as_str()), (StatusCode::OK, Some("bob")));
    let set_cookie = h["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let form = s
        .client
        .post(format!("{}/_session", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=bob&password={BOB_PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let with_cookie = |path: &str| {
        s.client
            .get(format!("{}{path}", s.base))
            .header("cookie", cookie.clone())
            .send()
    };
    let me: Value = with_cookie("/_session")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userCtx"]["name"], "bob");
    assert_eq!(me["info"]["authenticated"], "cookie");
    assert_eq!(
        with_cookie("/userdb-626f62").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        with_cookie("/_all_dbs").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let out = s
        .client
        .delete(format!("{}/_session", s.base))
        .send()
        .await
        .unwrap();
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // Tampered cookies count as no cookie.
    let raw = cookie.strip_prefix("AuthSession=").unwrap();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap();
    let forged = URL_SAFE_NO_PAD.encode(decoded.replacen("bob", "eve", 1));
    for bad in [
        format!("AuthSession={forged}"),
        "AuthSession=garbage".into(),
        format!("AuthSession={raw}x"),
    ] {
        let resp = s
            .client
            .get(format!("{}/userdb-626f62", s.base))
            .header("cookie", bad.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(s.session_name(&bad).await, Value::Null);
    }

    // Wrong password and unknown user: 401, same answer.
    for (name, pw) in [("bob", "wrong"), ("nobody", "whatever")] {
        let (status, v, _) = s
            .call(Some(&basic(name, pw)), Method::GET, "/_session", None)
            .await;
        assert_eq!(
            (status.as_u16(), v["error"].as_str()),
            (401, Some("unauthorized"))
        );
        let (status, _, _) = s
            .call(
                None,
                Method::POST,
                "/_session",
                Some(json!({"name": name, "password": pw})),
            )
            .await;
        assert_eq!(status.as_u16(), 401);
    }

    // A user can change their password, not their roles; the old password stops working.
    let (_, current, _) = s
        .call(
            Some(&basic("bob", BOB_PASSWORD)),
            Method::GET,
            "/_users/org.couchdb.user:bob",
            None,
        )
        .await;
    let mut update = current.clone();
    update["password"] = json!("n3w-pass");
    let (status, _, _) = s
        .call(
            Some(&basic("bob", BOB_PASSWORD)),
            Method::PUT,
            "/_users/org.couchdb.user:bob",
            Some(update),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        s.call(
            Some(&basic("bob", "n3w-pass")),
            Method::GET,
            "/userdb-626f62",
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        s.call(
            Some(&basic("bob", BOB_PASSWORD)),
            Method::GET,
            "/userdb-626f62",
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (_, current, _) = s
        .call(
            Some(&basic("bob", "n3w-pass")),
            Method::GET,
            "/_users/org.couchdb.user:bob",
            None,
        )
        .await;
    let mut promote = current.clone();
    promote["roles"] = json!(["boss"]);
    assert_eq!(
        s.call(
            Some(&basic("bob", "n3w-pass")),
            Method::PUT,
            "/_users/org.couchdb.user:bob",
            Some(promote)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // Nobody else may delete bob.
    let rev = current["_rev"].as_str().unwrap();
    assert_eq!(signup(&s, "eve", EVE_PASSWORD).await, StatusCode::CREATED);
    let path = format!("/_users/org.couchdb.user:bob?rev={rev}");
    assert_eq!(
        s.call(None, Method::DELETE, &path, None).await.0.as_u16(),
        401
    );
    assert_eq!(
        s.call(
            Some(&basic("eve", EVE_PASSWORD)),
            Method::DELETE,
            &path,
            None
        )
        .await
        .0
        .as_u16(),
        403
    );
    // An admin deletes bob: bob's session ends, bob is out of its database (kept by default).
    let (status, _) = s
        .admin(
            Method::DELETE,
            &format!("/_users/org.couchdb.user:bob?rev={rev}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, sec) = s.admin(Method::GET, "/userdb-626f62/_security", None).await;
    assert_eq!(sec["members"]["names"], json!([]));
    assert_eq!(
        with_cookie("/_session")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["userCtx"]["name"],
        Value::Null
    );
}

#[tokio::test]
async fn jwts_and_expiry() {
    let (s, _dir) = start(&["--session-timeout", "4"]);
    assert_eq!(signup(&s, "bob", BOB_PASSWORD).await, StatusCode::CREATED);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token =
        |secret: &str, claims: Value| format!("Bearer {}", make_jwt(secret.as_bytes(), &claims));
    let good = token(JWT_SECRET, json!({"sub": "bob", "exp": now + 60}));
    let (status, me, _) = s.call(Some(&good), Method::GET, "/_session", None).await;
    assert_eq!(
        (
            status,
            me["userCtx"]["name"].as_str(),
            me["info"]["authenticated"].as_str()
        ),
        (StatusCode::OK, Some("bob"), Some("jwt"))
    );
    assert_eq!(
        s.call(Some(&good), Method::GET, "/userdb-626f62", None)
            .await
            .0,
        StatusCode::OK
    );
    // Roles come from the claim.
    let admin_token = token(
        JWT_SECRET,
        json!({"sub": "ops", "exp": now + 60, "_couchdb.roles": ["_admin"]}),
    );
    assert_eq!(
        s.call(Some(&admin_token), Method::GET, "/_all_dbs", None)
            .await
            .0,
        StatusCode::OK
    );
    for bad in [
        token("not-the-secret", json!({"sub": "bob", "exp": now + 60})),
        token(JWT_SECRET, json!({"sub": "bob", "exp": now - 1})),
        token(JWT_SECRET, json!({"sub": "bob"})),
        "Bearer not.a.token".into(),
    ] {
        let (status, v, _) = s
            .call(Some(&bad), Method::GET, "/userdb-626f62", None)
            .await;
        assert_eq!(
            (status.as_u16(), v["error"].as_str()),
            (401, Some("unauthorized")),
            "{bad}"
        );
    }

    // A 4-second session: renewed when used past half its life, refused once expired.
    let (_, _, h) = s
        .call(
            None,
            Method::POST,
            "/_session",
            Some(json!({"name": "bob", "password": BOB_PASSWORD})),
        )
        .await;
    let cookie = h["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = s
        .client
        .get(format!("{}/userdb-626f62", s.base))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("set-cookie").is_some(),
        "renewed past half its life"
    );
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let resp = s
        .client
        .get(format!("{}/userdb-626f62", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn failed_logins_slow_down_and_no_secret_leaks() {
    let (s, _dir) = start(&[]);
    assert_eq!(signup(&s, "bob", BOB_PASSWORD).await, StatusCode::CREATED);
    // Repeated failures for one name take longer each time.
    let mut times = Vec::new();
    for _ in 0..4 {
        let t = std::time::Instant::now();
        let (status, _, _) = s
            .call(Some(&basic("bob", "wrong")), Method::GET, "/_session", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        times.push(t.elapsed());
    }
    assert!(
        times[3] >= Duration::from_millis(400),
        "the 4th failure waited: {times:?}"
    );
    // Use every credential once more, then search every response and log line.
    let mut seen = String::new();
    for (path, auth) in [
        (
            "/_users/org.couchdb.user:bob",
            basic("admin", ADMIN_PASSWORD),
        ),
        (
            "/_users/_all_docs?include_docs=true",
            basic("admin", ADMIN_PASSWORD),
        ),
        (
            "/_users/_changes?include_docs=true",
            basic("admin", ADMIN_PASSWORD),
        ),
        ("/_session", basic("bob", BOB_PASSWORD)),
    ] {
        let (_, v, h) = s.call(Some(&auth), Method::GET, path, None).await;
        seen.push_str(&v.to_string());
        seen.push_str(&format!("{h:?}"));
    }
    let (_, v, h) = s
        .call(
            None,
            Method::POST,
            "/_session",
            Some(json!({"name": "bob", "password": BOB_PASSWORD})),
        )
        .await;
    seen.push_str(&v.to_string());
    seen.push_str(&format!("{h:?}"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = s.drain_logs().join("\n");
    assert!(logs.contains("/_users"), "requests are in the debug logs");
    let (_, bob, _) = s
        .call(
            Some(&basic("admin", ADMIN_PASSWORD)),
            Method::GET,
            "/_users/org.couchdb.user:bob",
            None,
        )
        .await;
    assert!(bob.get("derived_key").is_none());
    for secret in [ADMIN_PASSWORD, BOB_PASSWORD, JWT_SECRET, "derived_key"] {
        assert!(!seen.contains(secret), "{secret} appeared in a response");
        assert!(!logs.contains(secret), "{secret} appeared in the logs");
    }
    // A derived key is 32 bytes written as 64 hex digits; nothing else couchkv prints is that
    // long (revision hashes and uuids are 32), so no such run may appear anywhere.
    for text in [&seen, &logs] {
        let longest = text
            .split(|c: char| !c.is_ascii_hexdigit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest < 64, "a 64-hex-digit run (a derived key?) appeared");
    }
}

/// A user's database follows the user: deleted behind the user's back (by an admin, or lost to a
/// failure after the user's commit), the next write of the user's document makes it again,
/// with the user as its admin and member.
#[tokio::test]
async fn a_missing_user_database_is_made_again() {
    let (s, _dir) = start(&[]);
    assert_eq!(signup(&s, "carol", "c4rol-pw").await, StatusCode::CREATED);
    let db = "/userdb-6361726f6c";
    let (st, _) = s.admin(Method::DELETE, db, None).await;
    assert_eq!(st, StatusCode::OK);
    let carol = basic("carol", "c4rol-pw");
    assert_eq!(
        s.admin(Method::GET, db, None).await.0,
        StatusCode::NOT_FOUND
    );
    let st = s
        .edit_own_user("carol", "c4rol-pw", |doc| {
            doc["nickname"] = json!("c");
        })
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, _) = s.call(Some(&carol), Method::GET, db, None).await;
    assert_eq!(st, StatusCode::OK);
    let (_, sec, _) = s
        .call(Some(&carol), Method::GET, &format!("{db}/_security"), None)
        .await;
    assert_eq!(sec["admins"]["names"], json!(["carol"]));
    assert_eq!(sec["members"]["names"], json!(["carol"]));
}
