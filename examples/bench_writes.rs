//! Write scaling: D databases × M concurrent writers (each on its own connection), as
//! `_bulk_docs` of 100 documents and as single-document writes, against redb (one node) and
//! PostgreSQL with one node and with two; then one hot database beside the others. Prints
//! commits/s and latency p50/p99 per configuration, side by side.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_writes [-- SECONDS]
//! ```
//! PostgreSQL rows need `COUCHKV_BENCH_POSTGRES=postgres://…` (or `COUCHKV_TEST_POSTGRES`,
//! which `eval "$(scripts/postgres.sh)"` sets); each configuration gets a schema of its own.

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use support::{cpu_secs, cpu_secs_of, percentile, wait_up, Conn, Server};

const DATABASES: usize = 100;
const WRITERS: usize = 32;
const BULK: usize = 100;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bulk,
    Single,
}

struct Figures {
    commits_per_sec: f64,
    docs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// `writers` tasks, writer `i` on node `i % nodes`, each writing to databases drawn from
/// `dbs` in turn, for `secs`.
async fn drive(
    addrs: &[String],
    dbs: Vec<String>,
    writers: usize,
    kind: Kind,
    secs: f64,
    tag: &str,
) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let addr = addrs[w % addrs.len()].clone();
        let dbs = dbs.clone();
        let stop = stop.clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await.expect("a connection");
            let (mut lat, mut docs, mut errors) = (Vec::new(), 0usize, 0usize);
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let db = &dbs[(w * 7 + n) % dbs.len()];
                n += 1;
                let (path, body, count) = match kind {
                    Kind::Bulk => {
                        let docs: Vec<_> = (0..BULK)
                            .map(|i| json!({"_id": format!("{tag}-{w}-{n}-{i}"), "n": i, "text": "some payload to store"}))
                            .collect();
                        (format!("/{db}/_bulk_docs"), json!({ "docs": docs }), BULK)
                    }
                    Kind::Single => (
                        format!("/{db}"),
                        json!({"_id": format!("{tag}-{w}-{n}"), "text": "some payload to store"}),
                        1,
                    ),
                };
                let t = Instant::now();
                match conn.call(Method::POST, &path, Some(body.to_string().into_bytes())).await {
                    Ok((201, _)) => {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        docs += count;
                    }
                    _ => {
                        errors += 1;
                        conn = Conn::open(&addr).await.expect("a connection");
                    }
                }
            }
            (lat, docs, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut docs, mut errors) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, d, e) = t.await.expect("a writer");
        lat.extend(l);
        docs += d;
        errors += e;
    }
    lat.sort_by(f64::total_cmp);
    Figures {
        commits_per_sec: lat.len() as f64 / secs,
        docs_per_sec: docs as f64 / secs,
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        errors,
    }
}

async fn make_dbs(addr: &str, names: &[String]) {
    let mut c = Conn::open(addr).await.expect("a connection");
    for n in names {
        let (status, body) = c
            .call(Method::PUT, &format!("/{n}"), None)
            .await
            .expect("PUT");
        assert!(
            status == 201 || status == 412,
            "PUT /{n}: {status} {body:?}"
        );
    }
}

struct Row {
    config: String,
    load: &'static str,
    figures: Figures,
    cpu: f64,
    pg_cpu: f64,
}

async fn config(name: &str, servers: Vec<Server>, secs: f64, rows: &mut Vec<Row>) {
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    for a in &addrs {
        wait_up(a).await;
    }
    let dbs: Vec<String> = (0..DATABASES).map(|i| format!("w{i:03}")).collect();
    make_dbs(&addrs[0], &dbs).await;
    let loads: [(&'static str, Kind, Vec<String>, usize); 4] = [
        ("bulk of 100, 100 dbs", Kind::Bulk, dbs.clone(), WRITERS),
        ("single doc, 100 dbs", Kind::Single, dbs.clone(), WRITERS),
        (
            "single doc, 99 dbs (quiet)",
            Kind::Single,
            dbs[1..].to_vec(),
            WRITERS / 2,
        ),
        (
            "single doc, 99 dbs + hot db",
            Kind::Single,
            dbs[1..].to_vec(),
            WRITERS / 2,
        ),
    ];
    for (load, kind, targets, writers) in loads {
        // Every load writes new documents (ids tagged by the load): a 409 is a real error.
        let hot = if load.ends_with("hot db") {
            // Half the writers on one database, all the time, while the others are measured.
            let hot_db = vec![dbs[0].clone()];
            Some(tokio::spawn({
                let addrs = addrs.clone();
                async move { drive(&addrs, hot_db, WRITERS / 2, Kind::Bulk, secs, "hot").await }
            }))
        } else {
            None
        };
        eprintln!("bench_writes: {name}: {load} …");
        let cpu0: f64 = servers.iter().map(|s| cpu_secs(s.pid())).sum();
        let pg0 = cpu_secs_of("postgres");
        let figures = drive(&addrs, targets, writers, kind, secs, load).await;
        let cpu: f64 = servers.iter().map(|s| cpu_secs(s.pid())).sum::<f64>() - cpu0;
        let pg_cpu = cpu_secs_of("postgres") - pg0;
        if let Some(h) = hot {
            let hot = h.await.expect("the hot writers");
            eprintln!(
                "bench_writes: {name}: the hot database took {:.0} commits/s meanwhile",
                hot.commits_per_sec
            );
        }
        rows.push(Row {
            config: name.to_owned(),
            load,
            figures,
            cpu: cpu / secs,
            pg_cpu: if name.starts_with("postgres") {
                pg_cpu / secs
            } else {
                0.0
            },
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5.0);
    let pg = std::env::var("COUCHKV_BENCH_POSTGRES")
        .or_else(|_| std::env::var("COUCHKV_TEST_POSTGRES"))
        .ok();
    eprintln!(
        "bench_writes: {DATABASES} databases, {WRITERS} writers, {secs} s per load; \
         PostgreSQL: {}",
        if pg.is_some() {
            "yes"
        } else {
            "no (set COUCHKV_BENCH_POSTGRES)"
        }
    );
    let mut rows = Vec::new();
    config(
        "redb, 1 node",
        vec![Server::start(&["--store", "redb"])],
        secs,
        &mut rows,
    )
    .await;
    if let Some(url) = &pg {
        let run = std::process::id();
        let one = format!("bench_w1_{run}");
        let node = |schema: &str| {
            Server::start(&[
                "--store",
                url,
                "--postgres-schema",
                schema,
                "--postgres-pool",
                "16",
            ])
        };
        config("postgres, 1 node", vec![node(&one)], secs, &mut rows).await;
        let two = format!("bench_w2_{run}");
        let first = node(&two);
        wait_up(&first.addr).await;
        let second = node(&two);
        config("postgres, 2 nodes", vec![first, second], secs, &mut rows).await;
    }

    println!();
    println!(
        "{:<18} {:<28} {:>10} {:>10} {:>9} {:>9} {:>7} {:>6} {:>6}",
        "configuration",
        "load",
        "commits/s",
        "docs/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "CPU",
        "PG CPU"
    );
    for r in &rows {
        let f = &r.figures;
        println!(
            "{:<18} {:<28} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>6.2} {:>6.2}",
            r.config,
            r.load,
            f.commits_per_sec,
            f.docs_per_sec,
            f.p50_ms,
            f.p99_ms,
            f.errors,
            r.cpu,
            r.pg_cpu
        );
    }
    let rate = |config: &str, load: &str| {
        rows.iter()
            .find(|r| r.config == config && r.load == load)
            .map(|r| r.figures.commits_per_sec)
    };
    for load in ["bulk of 100, 100 dbs", "single doc, 100 dbs"] {
        if let (Some(one), Some(two)) = (
            rate("postgres, 1 node", load),
            rate("postgres, 2 nodes", load),
        ) {
            println!("2 nodes / 1 node, {load}: {:.2}× (goal ≥ 1.6×)", two / one);
        }
    }
    println!("(CPU: couchkv's CPU seconds per second, all nodes together; PG CPU: PostgreSQL's; this machine has 2 cores shared by the servers, PostgreSQL and this client)");
}
