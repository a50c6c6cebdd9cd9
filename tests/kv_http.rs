//! The KV API in Cloudflare's v4 shape over real HTTP: every row of KV-API.md's validation table
//! with its status, error code and message in the envelope; namespaces with paging; values raw,
//! multipart with metadata, percent-encoded keys; bulk writes rejected whole; refusals in the
//! envelope. In-process server on 127.0.0.1:0.

use std::time::Duration;

use couchkv::http::HttpConfig;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

mod common;

struct Server {
    base: String,
    client: Client,
    _server: common::InProcess,
}

async fn server() -> Server {
    let s = common::start(HttpConfig::default()).await;
    Server {
        base: format!("{}/client/v4/accounts/acct/storage/kv/namespaces", s.base),
        client: s.client.clone(),
        _server: s,
    }
}

impl Server {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn raw_put(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .client
            .put(format!("{}{path}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
    async fn namespace(&self, title: &str) -> String {
        let (status, v) = self
            .call(Method::POST, "", Some(json!({"title": title})))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["result"]["id"].as_str().unwrap().to_owned()
    }
}

fn error_of(v: &Value) -> (bool, u64, String) {
    (
        v["success"].as_bool().unwrap_or(true),
        v["errors"][0]["code"].as_u64().unwrap_or(0),
        v["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn every_validation_row_over_http() {
    let s = server().await;
    let ns = s.namespace("validation").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let long_key = "k".repeat(513);
    // (method, path, raw body, status, code, message)
    type Row = (Method, String, Option<Vec<u8>>, u16, u64, String);
    let rows: Vec<Row> = vec![
        (Method::PUT, format!("/{ns}/values/{long_key}"), Some(b"v".to_vec()), 414, 10000, "UTF-8 encoded length of 513 exceeds key length limit of 512.".into()),
        (Method::GET, format!("/{ns}/values/k?cache_ttl=29"), None, 400, 10000, "Invalid cache_ttl of 29. Cache TTL must be at least 30.".into()),
        (Method::PUT, format!("/{ns}/values/k?expiration_ttl=59"), Some(b"v".to_vec()), 400, 10000, "Invalid expiration_ttl of 59. Expiration TTL must be at least 60.".into()),
        (Method::PUT, format!("/{ns}/values/k?expiration={}", now + 30), Some(b"v".to_vec()), 400, 10000, format!("Invalid expiration of {}. Expiration times must be at least 60 seconds in the future.", now + 30)),
        (Method::PUT, format!("/{ns}/values/k"), Some(vec![b'x'; 26_214_401]), 413, 10000, "Value length of 26214401 exceeds limit of 26214400.".into()),
        (Method::GET, format!("/{ns}/keys?limit=0"), None, 400, 10000, "Invalid key_count_limit of 0. Please specify an integer greater than 0.".into()),
        (Method::GET, format!("/{ns}/keys?limit=1001"), None, 400, 10000, "Invalid key_count_limit of 1001. Please specify an integer less than 1000.".into()),
        (Method::GET, format!("/{ns}/values/missing"), None, 404, 10009, "get: 'key not found'".into()),
        (Method::GET, "/0123456789abcdef0123456789abcdef/keys".into(), None, 404, 10013, "namespace not found".into()),
        (Method::GET, "/_couchkv_system".into(), None, 404, 10013, "namespace not found".into()),
    ];
    for (method, path, body, status, code, message) in rows {
        let mut req = s
            .client
            .request(method.clone(), format!("{}{path}", s.base));
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let got = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {v}");
        assert_eq!(error_of(&v), (false, code, message), "{method} {path}");
    }
    // "." and ".." cannot be path segments (URL parsers normalize them away), so they arrive
    // in bulk bodies.
    for dots in [".", ".."] {
        let (status, v) = s
            .call(
                Method::PUT,
                &format!("/{ns}/bulk"),
                Some(json!([{"key": dots, "value": "v"}])),
            )
            .await;
        assert_eq!(status.as_u16(), 400);
        assert_eq!(
            error_of(&v).2,
            format!("Invalid item at index 0: Illegal key name \"{dots}\". Please use a different name.")
        );
    }
    let (status, v) = s
        .call(
            Method::PUT,
            &format!("/{ns}/bulk"),
            Some(json!([{"key": "", "value": "v"}])),
        )
        .await;
    assert_eq!(
        (status.as_u16(), error_of(&v).2.as_str()),
        (400, "Invalid item at index 0: Key names must not be empty")
    );
    // Metadata over 1024 bytes (multipart, as the SDK sends it).
    let form = reqwest::multipart::Form::new()
        .text("value", "v")
        .text("metadata", format!("\"{}\"", "m".repeat(1023)));
    let resp = s
        .client
        .put(format!("{}/{ns}/values/meta", s.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        error_of(&v).2,
        "Metadata length of 1025 exceeds limit of 1024."
    );
    // Bulk get rows.
    let bulk_rows = vec![
        (json!({"keys": []}), "You must request a minimum of 1 key"),
        (
            json!({"keys": (0..101).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "You can request a maximum of 100 keys",
        ),
        (
            json!({"keys": ["a"], "type": "arrayBuffer"}),
            "\"arrayBuffer\" is not a valid type. Use \"json\" or \"text\"",
        ),
    ];
    for (body, message) in bulk_rows {
        let (status, v) = s
            .call(Method::POST, &format!("/{ns}/bulk/get"), Some(body))
            .await;
        assert_eq!((status.as_u16(), error_of(&v).2.as_str()), (400, message));
    }
    s.raw_put(&format!("/{ns}/values/text"), b"not json".to_vec())
        .await;
    let (status, v) = s
        .call(
            Method::POST,
            &format!("/{ns}/bulk/get"),
            Some(json!({"keys": ["text"], "type": "json"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), error_of(&v).2.as_str()),
        (
            400,
            "At least one of the requested keys corresponds to a non-json value"
        )
    );
    // Nothing above was written but "text".
    let (_, keys) = s.call(Method::GET, &format!("/{ns}/keys"), None).await;
    assert_eq!(keys["result"], json!([{"name": "text"}]));
}

#[tokio::test]
async fn bulk_writes_are_all_or_nothing() {
    let s = server().await;
    let ns = s.namespace("bulk").await;
    let mut items: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    items.push(json!({"key": "bad", "value": "v", "expiration_ttl": 5}));
    let (status, v) = s
        .call(
            Method::PUT,
            &format!("/{ns}/bulk"),
            Some(Value::Array(items)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(error_of(&v).2.contains("index 20"), "{v}");
    let (_, keys) = s.call(Method::GET, &format!("/{ns}/keys"), None).await;
    assert_eq!(
        keys["result"],
        json!([]),
        "a rejected bulk put writes nothing"
    );
    // A good one, with base64, metadata and a TTL; then the keys, values and metadata.
    let items = json!([
        {"key": "a", "value": "aGVsbG8=", "base64": true, "metadata": {"m": 1}},
        {"key": "b", "value": "plain", "expiration_ttl": 120},
    ]);
    let (_, v) = s
        .call(Method::PUT, &format!("/{ns}/bulk"), Some(items))
        .await;
    assert_eq!(v["result"]["successful_key_count"], 2);
    let raw = s
        .client
        .get(format!("{}/{ns}/values/a", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.bytes().await.unwrap().as_ref(), b"hello");
    let (_, m) = s
        .call(Method::GET, &format!("/{ns}/metadata/a"), None)
        .await;
    assert_eq!(m["result"], json!({"m": 1}));
    let (_, keys) = s.call(Method::GET, &format!("/{ns}/keys"), None).await;
    assert!(keys["result"][1]["expiration"].is_u64());
    assert_eq!(keys["result_info"]["cursor"], "");
    // Bulk delete in both forms.
    let (_, v) = s
        .call(
            Method::POST,
            &format!("/{ns}/bulk/delete"),
            Some(json!(["a"])),
        )
        .await;
    assert_eq!(v["result"]["successful_key_count"], 1);
    let (_, v) = s
        .call(Method::DELETE, &format!("/{ns}/bulk"), Some(json!(["b"])))
        .await;
    assert_eq!(v["result"]["successful_key_count"], 1);
    let (_, keys) = s.call(Method::GET, &format!("/{ns}/keys"), None).await;
    assert_eq!(keys["result"], json!([]));
}

#[tokio::test]
async fn namespaces_keys_and_refusals() {
    let s = server().await;
    for t in ["c", "a", "b"] {
        s.namespace(t).await;
    }
    // Duplicate titles are refused.
    let (status, v) = s.call(Method::POST, "", Some(json!({"title": "a"}))).await;
    assert_eq!((status.as_u16(), error_of(&v).1), (400, 10014));
    let (_, page) = s
        .call(Method::GET, "?order=title&direction=desc&per_page=2", None)
        .await;
    let titles: Vec<&str> = page["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["c", "b"]);
    assert_eq!(page["result_info"]["total_count"], 3);
    assert_eq!(page["result"][0]["supports_url_encoding"], true);
    let (_, past) = s.call(Method::GET, "?page=9", None).await;
    assert_eq!(past["result"], json!([]), "a page past the end is empty");
    // Rename, keys with odd characters, paging with cursors, delete.
    let id = page["result"][0]["id"].as_str().unwrap().to_owned();
    let (_, r) = s
        .call(
            Method::PUT,
            &format!("/{id}"),
            Some(json!({"title": "renamed"})),
        )
        .await;
    assert_eq!(r["result"]["title"], "renamed");
    for i in 0..5 {
        s.raw_put(&format!("/{id}/values/p%2F{i}%20%C3%A9"), vec![b'v'])
            .await;
    }
    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = s
            .call(
                Method::GET,
                &format!("/{id}/keys?prefix=p%2F&limit=2&cursor={cursor}"),
                None,
            )
            .await;
        names.extend(
            page["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["name"].as_str().unwrap().to_owned()),
        );
        cursor = page["result_info"]["cursor"].as_str().unwrap().to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(
        names,
        (0..5).map(|i| format!("p/{i} é")).collect::<Vec<_>>()
    );
    let (_, d) = s.call(Method::DELETE, &format!("/{id}"), None).await;
    assert_eq!(d["success"], true);
    let (status, _) = s.call(Method::GET, &format!("/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No credentials, or a user who is not an admin: refused in the envelope.
    let anon = Client::new().get(&s.base).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let v: Value = anon.json().await.unwrap();
    assert_eq!(
        (v["success"].as_bool(), v["errors"][0]["code"].as_u64()),
        (Some(false), Some(10000))
    );
}

#[tokio::test]
async fn api_tokens_are_scoped() {
    let s = server().await;
    let a = s.namespace("a").await;
    let b = s.namespace("b").await;
    let root = s.base.split("/client/v4").next().unwrap().to_owned();
    let make = |body: Value| {
        let (client, root) = (s.client.clone(), root.clone());
        async move {
            let v: Value = client
                .post(format!("{root}/_couchkv/tokens"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["result"]["token"].as_str().unwrap().to_owned()
        }
    };
    let reader = make(json!({"name": "r", "namespaces": [a], "write": false})).await;
    let writer = make(json!({"name": "w", "namespaces": [a], "write": true})).await;
    let admin_token = make(json!({"name": "all", "write": true})).await;
    let plain = Client::new();
    let call = |token: &str, method: Method, path: &str, body: Option<&str>| {
        let mut req = plain
            .request(method, format!("{}{path}", s.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        call(&writer, Method::PUT, &format!("/{a}/values/k"), Some("v")).await,
        200
    );
    assert_eq!(
        call(&reader, Method::GET, &format!("/{a}/values/k"), None).await,
        200
    );
    assert_eq!(
        call(
            &reader,
            Method::POST,
            &format!("/{a}/bulk/get"),
            Some(r#"{"keys":["k"]}"#)
        )
        .await,
        200
    );
    assert_eq!(
        call(&reader, Method::PUT, &format!("/{a}/values/k"), Some("x")).await,
        403
    );
    assert_eq!(
        call(&reader, Method::DELETE, &format!("/{a}/values/k"), None).await,
        403
    );
    assert_eq!(
        call(&writer, Method::GET, &format!("/{b}/keys"), None).await,
        403
    );
    assert_eq!(
        call(&writer, Method::POST, "", Some(r#"{"title":"c"}"#)).await,
        403
    );
    assert_eq!(
        call(&admin_token, Method::POST, "", Some(r#"{"title":"c"}"#)).await,
        200
    );
    assert_eq!(call(&reader, Method::GET, "", None).await, 200);
    for bad in [
        "",
        "ckv_0000000000000000_nope",
        &writer.replace('_', "-"),
        &format!("{writer}x"),
    ] {
        assert_eq!(
            call(bad, Method::GET, &format!("/{a}/keys"), None).await,
            401,
            "{bad}"
        );
    }
    // The value the reader could not overwrite is intact.
    let v = plain
        .get(format!("{}/{a}/values/k", s.base))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(v, "v");
    // Only admins make tokens.
    let anon = plain
        .post(format!("{root}/_couchkv/tokens"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
}

/// Reads server-sent events until `n` of them (heartbeats excluded) have arrived.
async fn read_events(resp: &mut reqwest::Response, n: usize) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream is open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            if field("event") != "heartbeat" {
                let data = serde_json::from_str(&field("data")).unwrap_or(Value::Null);
                out.push((field("id"), field("event"), data));
            }
        }
    }
    out
}

#[tokio::test]
async fn watch_streams_changes_and_resumes() {
    let s = server().await;
    let ns = s.namespace("watched").await;
    let mut resp = s
        .client
        .get(format!("{}/{ns}/watch?prefix=w/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    s.raw_put(&format!("/{ns}/values/w%2Fa"), b"1".to_vec())
        .await;
    s.raw_put(&format!("/{ns}/values/other"), b"x".to_vec())
        .await;
    s.call(
        Method::PUT,
        &format!("/{ns}/bulk"),
        Some(json!([{"key": "w/b", "value": "2", "metadata": {"m": 1}}])),
    )
    .await;
    s.call(Method::DELETE, &format!("/{ns}/values/w%2Fa"), None)
        .await;
    let events = read_events(&mut resp, 3).await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|(_, e, d)| (e.as_str(), d["key"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("put", "w/a"), ("put", "w/b"), ("delete", "w/a")]);
    assert_eq!(events[1].2["metadata"], json!({"m": 1}));
    let ids: Vec<u64> = events
        .iter()
        .map(|(id, _, _)| id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    drop(resp);
    // Resuming after the first event replays what is there now and was written since.
    s.raw_put(&format!("/{ns}/values/w%2Fc"), b"3".to_vec())
        .await;
    let mut resumed = s
        .client
        .get(format!("{}/{ns}/watch?prefix=w/", s.base))
        .header("last-event-id", ids[0].to_string())
        .send()
        .await
        .unwrap();
    let replay = read_events(&mut resumed, 2).await;
    let keys: Vec<&str> = replay
        .iter()
        .map(|(_, _, d)| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["w/b", "w/c"]);
    // A bad Last-Event-ID is a 400 in the envelope.
    let (status, v) = {
        let r = s
            .client
            .get(format!("{}/{ns}/watch", s.base))
            .header("last-event-id", "yesterday")
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status.as_u16(), v["success"].as_bool()),
        (400, Some(false))
    );
}
