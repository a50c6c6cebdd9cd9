//! The real binary on 127.0.0.1:0 with a memory store, its logs captured (so they can be
//! searched for secrets), and a client that speaks to it as anyone.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "Adm1n-Pa55word-xyz";
pub const JWT_SECRET: &str = "jwt-Secret-Value-42";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub logs: mpsc::Receiver<String>,
    pub client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_couchkv"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store", "memory"])
        .args(["--data", dir.path().to_str().unwrap()])
        .args(["--admin", &format!("admin:{ADMIN_PASSWORD}")])
        .args(["--pbkdf2-iterations", "1000"])
        .args(extra)
        .env("COUCHKV_JWT_SECRET", JWT_SECRET)
        // Everything, requests included, so the secret search covers the most output.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, logs) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = loop {
        let line = logs
            .recv_timeout(Duration::from_secs(30))
            .expect("the server starts");
        if let Some(addr) = line.split("addr=").nth(1) {
            break format!("http://{}", addr.split_whitespace().next().unwrap());
        }
    };
    let client = Client::new();
    (
        Server {
            child,
            base,
            logs,
            client,
        },
        dir,
    )
}

pub fn basic(name: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{name}:{password}")))
}

impl Server {
    pub async fn call(
        &self,
        auth: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(Some(&basic("admin", ADMIN_PASSWORD)), method, path, body)
            .await;
        (s, v)
    }

    pub fn drain_logs(&self) -> Vec<String> {
        self.logs.try_iter().collect()
    }
}

pub async fn signup(s: &Server, name: &str, password: &str) -> StatusCode {
    let doc = json!({"_id": format!("org.couchdb.user:{name}"), "name": name, "password": password, "type": "user", "roles": []});
    s.call(
        None,
        Method::PUT,
        &format!("/_users/org.couchdb.user:{name}"),
        Some(doc),
    )
    .await
    .0
}

impl Server {
    /// `POST /_session` as `name`: the `AuthSession=…` cookie it sets.
    pub async fn login(&self, name: &str, password: &str) -> String {
        let resp = self
            .client
            .post(format!("{}/_session", self.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        set.split(';').next().unwrap_or_default().to_owned()
    }

    /// Who `GET /_session` says a `Cookie` header is (`null` for nobody).
    pub async fn session_name(&self, cookie: &str) -> Value {
        let me: Value = self
            .client
            .get(format!("{}/_session", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["userCtx"]["name"].clone()
    }

    /// A user reads their own user document, changes it with `edit` and writes it back.
    pub async fn edit_own_user(
        &self,
        name: &str,
        password: &str,
        edit: impl FnOnce(&mut Value),
    ) -> StatusCode {
        let auth = basic(name, password);
        let path = format!("/_users/org.couchdb.user:{name}");
        let (_, mut doc, _) = self.call(Some(&auth), Method::GET, &path, None).await;
        edit(&mut doc);
        self.call(Some(&auth), Method::PUT, &path, Some(doc))
            .await
            .0
    }

    /// The server process's resident memory, in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    }
}
