//! `couchkv serve` as users run it: the real binary on 127.0.0.1:0, flags and `COUCHKV_*`
//! variables, the welcome document, a uuid kept across restarts, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use couchkv::cli::{Cli, Command as Sub, StoreSpec};

struct Server {
    child: Child,
    base: String,
    logs: mpsc::Receiver<String>,
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &Path)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_couchkv"));
        cmd.arg("serve")
            .args(args)
            .env_remove("COUCHKV_ADDR")
            .env_remove("COUCHKV_DATA")
            .env_remove("COUCHKV_STORE")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let Ok(line) = logs.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not log its address");
            };
            if let Some(addr) = line.split("addr=").nth(1) {
                let addr = addr.split_whitespace().next().unwrap();
                return Server {
                    child,
                    base: format!("http://{addr}"),
                    logs,
                };
            }
        }
    }

    async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// SIGTERM, then the exit status and the rest of the log.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        let rest = self.logs.iter().collect();
        (status, rest)
    }
}

impl Drop for Server {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn defaults_follow_the_cli_contract() {
    let cli = Cli::try_parse_from(["couchkv", "serve"]).unwrap();
    let Sub::Serve(args) = cli.command else {
        panic!("serve parses as serve")
    };
    assert_eq!(args.addr.to_string(), "127.0.0.1:5984");
    assert_eq!(args.data, Path::new("./couchkv-data"));
    assert_eq!(args.store, StoreSpec::Redb);
    let err = Cli::try_parse_from(["couchkv", "serve", "--store", "mongodb"]).unwrap_err();
    assert!(err.to_string().contains("unknown store"), "{err}");
}

#[tokio::test]
async fn welcome_up_and_uuid_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let server = Server::start(&["--addr", "127.0.0.1:0", "--data", data_s], &[]);
    let (status, welcome) = server.get_json("/").await;
    assert_eq!(status, 200);
    assert_eq!(welcome["couchdb"], "Welcome");
    assert_eq!(welcome["vendor"]["name"], "couchkv");
    assert!(welcome["version"].is_string());
    let uuid = welcome["uuid"].as_str().unwrap().to_owned();
    assert_eq!(uuid.len(), 32);
    let (status, up) = server.get_json("/_up").await;
    assert_eq!((status, up["status"].as_str()), (200, Some("ok")));
    // Without credentials a database route is a 401, existing or not.
    let (status, anon) = server.get_json("/nodb").await;
    assert_eq!(
        (status, anon["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, bad) = server.get_json("/_no_such_route").await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("illegal_database_name"))
    );

    let (exit, logs) = server.stop();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    assert!(
        logs.iter().any(|l| l.contains("closing the store")),
        "{logs:?}"
    );
    assert!(data.join("couchkv.redb").exists());

    let server = Server::start(&["--addr", "127.0.0.1:0", "--data", data_s], &[]);
    let (_, again) = server.get_json("/").await;
    assert_eq!(again["uuid"], uuid.as_str(), "the uuid survives a restart");
    server.stop();
}

#[tokio::test]
async fn environment_variables_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("env-data");
    // COUCHKV_ADDR and COUCHKV_DATA, with the default store: the file appears there.
    let server = Server::start(
        &[],
        &[
            ("COUCHKV_ADDR", Path::new("127.0.0.1:0")),
            ("COUCHKV_DATA", &data),
        ],
    );
    let (status, _) = server.get_json("/").await;
    assert_eq!(status, 200);
    server.stop();
    assert!(data.join("couchkv.redb").exists());

    // COUCHKV_STORE=memory writes nothing to disk, and forgets its uuid.
    let mem_data = dir.path().join("memory-data");
    let start = || {
        Server::start(
            &[],
            &[
                ("COUCHKV_ADDR", Path::new("127.0.0.1:0")),
                ("COUCHKV_DATA", &mem_data),
                ("COUCHKV_STORE", Path::new("memory")),
            ],
        )
    };
    let server = start();
    let (_, first) = server.get_json("/").await;
    server.stop();
    let server = start();
    let (_, second) = server.get_json("/").await;
    server.stop();
    assert_ne!(first["uuid"], second["uuid"]);
    assert!(!mem_data.exists());
}

#[tokio::test]
async fn store_flag_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flag-data");
    let server = Server::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--data",
            data.to_str().unwrap(),
        ],
        &[],
    );
    let (status, _) = server.get_json("/").await;
    assert_eq!(status, 200);
    server.stop();
    assert!(!data.exists());

    let stderr = refused_store("postgres://u:secret@127.0.0.1:1/db");
    assert!(stderr.contains("postgres"), "{stderr}");
    // An unknown scheme is refused by name, the URL not echoed.
    let stderr = refused_store("mysql://u:secret@h/db");
    assert!(stderr.contains("no mysql:// store"), "{stderr}");
}

/// `serve --store STORE` must fail without echoing the URL's secret; returns its stderr.
fn refused_store(store: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store", store])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("secret"),
        "no secret in the error: {stderr}"
    );
    stderr
}

#[tokio::test]
async fn token_create_command_makes_a_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["token", "create", "--name", "ci", "--write", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("ckv_"));
    let server = Server::start(
        &["--addr", "127.0.0.1:0", "--data", data.to_str().unwrap()],
        &[],
    );
    let url = format!("{}/client/v4/accounts/x/storage/kv/namespaces", server.base);
    let client = reqwest::Client::new();
    let ok = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let bad = client
        .get(&url)
        .bearer_auth("ckv_0123456789abcdef_x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    // The token's secret is nowhere in the server's log.
    let (_, logs) = server.stop();
    let secret = &token[21..]; // after `ckv_`, 16 hex digits and `_`
    assert!(!logs.join("\n").contains(secret));
    // Neither scope: refused.
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["token", "create", "--name", "x", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A GET with a bearer token, its body as JSON.
async fn get_json(url: &str, token: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs `couchkv kv …` and returns stdout; fails the test on a non-zero exit.
fn kv(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .arg("kv")
        .args(args)
        .env_remove("COUCHKV_URL")
        .env_remove("COUCHKV_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kv_cli_round_trip(title: &str, target: &[&str], dir: &Path) {
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(target).map(|s| s.to_string()).collect()
    };
    let id = kv(&with(&["namespace", "create", title])).trim().to_owned();
    let list: serde_json::Value = serde_json::from_str(&kv(&with(&["namespace", "list"]))).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["id"] == id.as_str()));
    kv(&with(&[
        "key",
        "put",
        "hello/wörld key",
        "some value",
        "--namespace-id",
        &id,
        "--metadata",
        r#"{"a":1}"#,
        "--ttl",
        "120",
    ]));
    assert_eq!(
        kv(&with(&[
            "key",
            "get",
            "hello/wörld key",
            "--namespace-id",
            &id
        ])),
        "some value"
    );
    let file = dir.join("bulk.json");
    let items: Vec<serde_json::Value> = (0..25_000)
        .map(|i| serde_json::json!({"key": format!("b{i:05}"), "value": "v"}))
        .collect();
    std::fs::write(&file, serde_json::to_string(&items).unwrap()).unwrap();
    kv(&with(&[
        "bulk",
        "put",
        file.to_str().unwrap(),
        "--namespace-id",
        &id,
    ]));
    let keys: serde_json::Value = serde_json::from_str(&kv(&with(&[
        "key",
        "list",
        "--namespace-id",
        &id,
        "--prefix",
        "b",
    ])))
    .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 25_000, "every page listed");
    let all: serde_json::Value =
        serde_json::from_str(&kv(&with(&["key", "list", "--namespace-id", &id]))).unwrap();
    let first = &all
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "hello/wörld key")
        .unwrap()
        .clone();
    assert_eq!(first["metadata"], serde_json::json!({"a": 1}));
    let keys_file = dir.join("keys.json");
    let names: Vec<String> = (0..25_000).map(|i| format!("b{i:05}")).collect();
    std::fs::write(&keys_file, serde_json::to_string(&names).unwrap()).unwrap();
    kv(&with(&[
        "bulk",
        "delete",
        keys_file.to_str().unwrap(),
        "--namespace-id",
        &id,
    ]));
    kv(&with(&[
        "key",
        "delete",
        "hello/wörld key",
        "--namespace-id",
        &id,
    ]));
    let left: serde_json::Value =
        serde_json::from_str(&kv(&with(&["key", "list", "--namespace-id", &id]))).unwrap();
    assert_eq!(left, serde_json::json!([]));
}

#[tokio::test]
async fn kv_cli_on_a_data_directory_and_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    kv_cli_round_trip("local", &["--data", data.to_str().unwrap()], dir.path());
    // The same against a running server, with a token made by the token command.
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["token", "create", "--name", "cli", "--write", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = Server::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
            "--admin",
            "admin:admin-pw",
        ],
        &[],
    );
    let base = server.base.clone();
    let dir2 = tempfile::tempdir().unwrap();
    let path = dir2.path().to_owned();
    let (b, t) = (base.clone(), token.clone());
    tokio::task::spawn_blocking(move || {
        kv_cli_round_trip("remote", &["--url", &b, "--token", &t], &path)
    })
    .await
    .unwrap();
    // The CLI made it the server's way: wrangler sees the title as given, under the id printed.
    let listed = get_json(
        &format!("{base}/client/v4/accounts/x/storage/kv/namespaces"),
        &token,
    )
    .await;
    let titles: Vec<&str> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["title"].as_str())
        .collect();
    assert!(titles.contains(&"remote"), "{titles:?}");
    // A server admin's NAME:PASSWORD works in place of a token (sent as Basic).
    let b = base.clone();
    let by_admin = tokio::task::spawn_blocking(move || {
        kv(&[
            "namespace".into(),
            "list".into(),
            "--url".into(),
            b,
            "--token".into(),
            "admin:admin-pw".into(),
        ])
    })
    .await
    .unwrap();
    assert!(by_admin.contains("\"remote\""), "{by_admin}");
    server.stop();
}

/// `--store cloudflare://ACCOUNT` on a second server whose API root is the first one's: the KV
/// API and a CouchDB database on node B land in node A's namespaces through Cloudflare's wire
/// format, and B's log never shows the token.
#[tokio::test]
async fn serve_on_the_cloudflare_backend() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["token", "create", "--name", "b", "--write", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let a = Server::start(
        &["--addr", "127.0.0.1:0", "--data", data.to_str().unwrap()],
        &[],
    );
    let api = format!("{}/client/v4", a.base);

    // Without a token the backend cannot start, and says why.
    let out = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--store",
            "cloudflare://acct",
        ])
        .env_remove("COUCHKV_CLOUDFLARE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("COUCHKV_CLOUDFLARE_TOKEN"));

    let b = Server::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--store",
            "cloudflare://acct",
            "--admin",
            "admin:pw",
        ],
        &[
            ("COUCHKV_CLOUDFLARE_API_URL", Path::new(&api)),
            ("COUCHKV_CLOUDFLARE_TOKEN", Path::new(&token)),
        ],
    );
    let client = reqwest::Client::new();
    let ns_url = format!("{}/client/v4/accounts/x/storage/kv/namespaces", b.base);
    let made: serde_json::Value = client
        .post(&ns_url)
        .basic_auth("admin", Some("pw"))
        .json(&serde_json::json!({"title": "via-b"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["result"]["id"].as_str().unwrap().to_owned();
    let put = client
        .put(format!(
            "{ns_url}/{id}/values/hello%2Fw%C3%B6rld?expiration_ttl=3600"
        ))
        .basic_auth("admin", Some("pw"))
        .body("from b")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = client
        .get(format!("{ns_url}/{id}/values/hello%2Fw%C3%B6rld"))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "from b");
    // A CouchDB document on B.
    let db = client
        .put(format!("{}/notes", b.base))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(db.status(), 201);
    let doc = client
        .put(format!("{}/notes/n1", b.base))
        .basic_auth("admin", Some("pw"))
        .json(&serde_json::json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 201);

    // On A: the namespace under its Cloudflare-side title, holding the key.
    let a_ns = format!("{api}/accounts/acct/storage/kv/namespaces");
    let list = get_json(&a_ns, &token).await;
    let ours = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["title"] == format!("couchkv:{id}:via-b"))
        .expect("B's namespace is on A");
    let keys: serde_json::Value = client
        .get(format!("{a_ns}/{}/keys", ours["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["result"][0]["name"], "hello/wörld");
    assert!(keys["result"][0]["expiration"].as_u64().unwrap() > 0);
    assert!(list["result"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["title"] == "couchkv:_couchkv_couch:_couchkv_couch"));

    let (status, logs) = b.stop();
    assert!(status.success());
    let secret = &token[21..]; // after `ckv_`, 16 hex digits and `_`
    assert!(!logs.join("\n").contains(secret));
}
