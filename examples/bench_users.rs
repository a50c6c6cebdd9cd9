//! Creating users with their databases, over HTTP, on redb: time and bytes on disk.
//!
//! `cargo run --release --example bench_users [-- USERS [ITERATIONS]]` (default 10,000 users,
//! PBKDF2 at 1,000 iterations so the run measures couchkv rather than the hash; the cost of one
//! hash at CouchDB 3.4's 600,000 iterations is printed beside it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use couchkv::auth::crypto::PasswordHash;
use couchkv::auth::AuthConfig;
use couchkv::http::HttpConfig;
use couchkv::server::{run, RunConfig};
use couchkv_adapters::RedbStore;
use futures::StreamExt;
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let iterations: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("couchkv.redb");
    let store = Arc::new(RedbStore::open(&file).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = RunConfig {
        sweep_interval: Duration::from_secs(3600),
        http: HttpConfig::default(),
        conn: Default::default(),
        auth: AuthConfig {
            admins: vec![("admin".into(), "bench".into())],
            pbkdf2_iterations: iterations,
            ..AuthConfig::default()
        },
        js: Default::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, store, config, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    while client.get(&base).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let empty = std::fs::metadata(&file).unwrap().len();

    eprintln!("bench_users: {users} users, PBKDF2 {iterations} iterations, 16 sign-ups at a time");
    let t = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(0..users)
        .map(|i| {
            let (client, base, done) = (&client, &base, &done);
            async move {
                let name = format!("user{i:06}");
                let doc = json!({"name": name, "password": format!("pw-{i}"), "type": "user", "roles": []});
                let r = client
                    .put(format!("{base}/_users/org.couchdb.user:{name}"))
                    .json(&doc)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 1000 == 0 {
                    eprintln!("  {n} users");
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let elapsed = t.elapsed();
    let dbs: Vec<String> = client
        .get(format!("{base}/_all_dbs"))
        .basic_auth("admin", Some("bench"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let userdbs = dbs.iter().filter(|d| d.starts_with("userdb-")).count();
    assert_eq!(userdbs, users, "every user has a database");
    let _ = stop.send(());
    let _ = server.await;
    let size = std::fs::metadata(&file).unwrap().len();

    let t = Instant::now();
    for _ in 0..3 {
        PasswordHash::new("a password", 600_000);
    }
    let hash = t.elapsed() / 3;

    println!("users created (each: _users doc + userdb-… + _security): {users}");
    println!(
        "time: {:.2} s, {:.0} users/s, {:.2} ms per user",
        elapsed.as_secs_f64(),
        users as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / users as f64
    );
    println!(
        "redb file: {:.1} MiB ({:.0} bytes per user; {:.1} MiB before the users)",
        size as f64 / 1048576.0,
        (size - empty) as f64 / users as f64,
        empty as f64 / 1048576.0
    );
    println!(
        "one PBKDF2-SHA256 hash at 600,000 iterations (CouchDB 3.4's default): {:.0} ms",
        hash.as_secs_f64() * 1000.0
    );
}
