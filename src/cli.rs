//! The command line: `couchkv serve` and its flags, each also a `COUCHKV_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "couchkv",
    version,
    about = "A Workers-KV-style store and CouchDB replication server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "COUCHKV_ADDR", default_value = "127.0.0.1:5984")]
    pub addr: SocketAddr,

    /// Directory for the data; the redb file lives there as `couchkv.redb`.
    #[arg(long, env = "COUCHKV_DATA", default_value = "./couchkv-data")]
    pub data: PathBuf,

    /// Storage backend: `redb` (embedded, durable) or `memory` (lost on exit).
    #[arg(long, env = "COUCHKV_STORE", default_value = "redb")]
    pub store: StoreSpec,

    /// Seconds between sweeps of expired keys.
    #[arg(long, env = "COUCHKV_SWEEP_INTERVAL", default_value_t = 60)]
    pub sweep_interval: u64,

    /// Origins browsers may call the API from, comma-separated (`*` for any). None by default.
    #[arg(long, env = "COUCHKV_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// The largest request body accepted, in bytes (413 beyond it).
    #[arg(long, env = "COUCHKV_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,
}

/// Which backend to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Redb,
    Memory,
    /// A URL-shaped store this build cannot open, by its scheme. The URL itself is dropped at
    /// once: it may hold a password, and clap would echo a rejected value.
    Unavailable(String),
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => Ok(Self::Redb),
            "memory" => Ok(Self::Memory),
            url if url.contains("://") => Ok(Self::Unavailable(
                url.split("://").next().unwrap_or_default().to_owned(),
            )),
            other => Err(format!("unknown store {other:?}: expected redb or memory")),
        }
    }
}
