//! A write redb acknowledged survives `kill -9`, and no batch is ever seen half-applied.
//!
//! The test re-runs its own binary as a child (`durability_child`, ignored when run directly)
//! that writes numbered batches from several concurrent writers (so group commits are in play)
//! and prints `ACK <id>` after the store acknowledges each one. The parent kills the child with
//! SIGKILL at a random moment, reopens the file, and checks that every acknowledged batch is
//! there whole and that every batch present at all is whole. 20 rounds, each on the same file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use couchkv_adapters::{Batch, ListOptions, Namespaces, RedbStore, Store, StoreError};
use rand::{Rng, SeedableRng};

const NS: &str = "durability";
const KEYS_PER_BATCH: usize = 8;
const WRITERS: u64 = 4;
const ROUNDS: usize = 20;

fn batch_keys(round: usize, id: u64) -> Vec<String> {
    (0..KEYS_PER_BATCH)
        .map(|j| format!("r{round:02}/b{id:08}/k{j}"))
        .collect()
}

fn value(id: u64, j: usize) -> String {
    // Large enough that a batch spans pages, so a torn write would show.
    format!("{id}:{j}:{}", "x".repeat(3000))
}

/// The child: writes batches until it is killed.
#[test]
#[ignore = "run by `acknowledged_writes_survive_sigkill` as its child process"]
fn durability_child() {
    let Ok(path) = std::env::var("COUCHKV_DURABILITY_FILE") else {
        return;
    };
    let round: usize = std::env::var("COUCHKV_DURABILITY_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = std::sync::Arc::new(RedbStore::open(&path).unwrap());
        match store.create_namespace(NS, NS).await {
            Ok(_) | Err(StoreError::NamespaceIdTaken(_)) => {}
            Err(e) => panic!("{e}"),
        }
        println!("READY");
        let writers = (0..WRITERS).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let id = w * 10_000_000 + n;
                    let mut batch = Batch::new();
                    for (j, k) in batch_keys(round, id).into_iter().enumerate() {
                        batch = batch.put(k, value(id, j));
                    }
                    store.batch(NS, batch).await.unwrap();
                    println!("ACK {id}");
                }
            })
        });
        futures::future::join_all(writers).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durability.redb");
    let seed: u64 = std::env::var("COUCHKV_DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("durability seed {seed} (set COUCHKV_DURABILITY_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let mut total_acked = 0;
    let mut total_found = 0;

    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["durability_child", "--exact", "--ignored", "--nocapture"])
            .env("COUCHKV_DURABILITY_FILE", &path)
            .env("COUCHKV_DURABILITY_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the child has the store open, then let it write for a random while.
        let start = Instant::now();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the child starts writing");
            if line == "READY" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30));
        }
        let run_for = Duration::from_millis(rng.random_range(1..400));
        std::thread::sleep(run_for);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        // Everything the child printed before it died was acknowledged first.
        let acked: Vec<u64> = rx
            .try_iter()
            .filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse().ok()))
            .collect();

        let store = RedbStore::open(&path).expect("the file opens after a kill");
        for &id in &acked {
            let keys = batch_keys(round, id);
            let got = store.get_many(NS, &keys).await.unwrap();
            for (j, rec) in got.iter().enumerate() {
                let rec = rec.as_ref().unwrap_or_else(|| {
                    panic!("round {round}: acknowledged batch {id} lost key {j}")
                });
                assert_eq!(
                    rec.value,
                    value(id, j).as_bytes(),
                    "round {round} batch {id}"
                );
            }
        }
        // Whatever is there at all is whole: count keys per batch.
        let mut per_batch = std::collections::BTreeMap::<String, usize>::new();
        let mut opts = ListOptions {
            prefix: format!("r{round:02}/"),
            ..ListOptions::default()
        };
        loop {
            let page = store.list(NS, &opts).await.unwrap();
            for e in &page.entries {
                let batch = e.key.rsplit_once('/').unwrap().0.to_owned();
                *per_batch.entry(batch).or_default() += 1;
            }
            match page.entries.last() {
                Some(last) if page.more => opts.start = std::ops::Bound::Excluded(last.key.clone()),
                _ => break,
            }
        }
        for (batch, n) in &per_batch {
            assert_eq!(
                *n, KEYS_PER_BATCH,
                "round {round}: batch {batch} is half-written"
            );
        }
        assert!(per_batch.len() >= acked.len());
        eprintln!(
            "round {round:2}: killed after {:3} ms, {:4} batches acknowledged, {:4} found whole",
            run_for.as_millis(),
            acked.len(),
            per_batch.len()
        );
        total_acked += acked.len();
        total_found += per_batch.len();
        store.close().await.unwrap();
    }
    eprintln!(
        "{ROUNDS} of {ROUNDS} rounds passed: {total_acked} acknowledged batches checked, {total_found} found whole"
    );
    assert!(total_acked > 0, "the children acknowledged some writes");
}
