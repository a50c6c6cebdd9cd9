//! What the load benchmarks share: the real server binary started as its own process (so its
//! CPU and memory are its own), its CPU time and RSS read from /proc, a plain HTTP/1.1 client
//! connection (hyper, one per simulated client: thousands cost little), and percentiles.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "bench-pw";

/// The release binary next to this example (`cargo build --release` first), or
/// `COUCHKV_BENCH_BIN` (to measure another build side by side).
fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("COUCHKV_BENCH_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the example's path");
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile>/examples");
    let bin = dir.join("couchkv");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first",
        bin.display()
    );
    bin
}

/// A couchkv server process on 127.0.0.1 and a free port; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `couchkv serve` with `store_args` (e.g. `["--store", "postgres://…"]`), admin
    /// `admin:bench-pw`, logging warnings only.
    pub fn start(store_args: &[&str]) -> Server {
        let data = tempfile::tempdir().expect("a data directory");
        let mut child = Command::new(binary())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(["--data", data.path().to_str().expect("a UTF-8 path")])
            .args(["--admin", &format!("{ADMIN}:{PASSWORD}")])
            .args(["--pbkdf2-iterations", "1000"])
            .args(store_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("its log");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server says where it listens")
                .expect("a log line");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Server {
            child,
            addr,
            _data: data,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Bytes of every file in the server's data directory.
    pub fn bytes_on_disk(&self) -> u64 {
        fn walk(p: &std::path::Path) -> u64 {
            std::fs::read_dir(p).map_or(0, |d| {
                d.filter_map(Result::ok)
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
        }
        walk(self._data.path())
    }
}

/// CPU seconds (user + system) the process has used.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields of the line: 12th and 13th after ')'.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

/// Resident memory of the process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One HTTP/1.1 connection, requests one after another (as a browser tab or PouchDB does per
/// connection).
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    host: String,
    auth: String,
}

impl Conn {
    pub async fn open(addr: &str) -> std::io::Result<Conn> {
        use base64::Engine;
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN}:{PASSWORD}"));
        Ok(Conn {
            send,
            host: addr.to_owned(),
            auth: format!("Basic {auth}"),
        })
    }

    /// Sends a request and returns the response with its body still to read (a feed).
    pub async fn start(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> std::io::Result<Response<Incoming>> {
        self.send.ready().await.map_err(std::io::Error::other)?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(std::io::Error::other)?;
        self.send
            .send_request(req)
            .await
            .map_err(std::io::Error::other)
    }

    /// Sends a request and reads the whole answer: status and body.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> std::io::Result<(u16, Bytes)> {
        let resp = self.start(method, path, body).await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((status, body))
    }
}

/// Waits until the server answers `GET /`.
pub async fn wait_up(addr: &str) {
    for _ in 0..500 {
        if let Ok(mut c) = Conn::open(addr).await {
            if c.call(Method::GET, "/", None).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} does not answer");
}

/// The `p`-th percentile (0–100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// CPU seconds used by every live process whose command is `name` (PostgreSQL's backends).
pub fn cpu_secs_of(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(cpu_secs)
        .sum()
}
