//! couchkv: a Workers-KV-style store, a LevelDB-style layer on it, and a CouchDB replication
//! server on that, for offline-first apps with one database per user.
//!
//! # Layout
//! Data flows one way, down. Each layer is usable on its own.
//! - [`http`] (feature `server`): the axum routes, the one place errors become HTTP.
//! - [`couch`]: CouchDB's document model: databases, revision trees, changes, attachments.
//! - [`level`]: a LevelDB-style layer (abstract-level's shape) over the kv layer, with sublevels.
//! - [`kv`]: Workers KV semantics (limits, expiry, cursors, bulk operations) over any store.
//! - `couchkv_adapters` (the `adapters/` crate): the `Store` trait, its backends and the
//!   conformance suite every backend runs.
//! - [`clock`]: time and ids, injected, so the core never reads a clock or a random source.
//! - [`server`] and [`cli`] (feature `server`): the binary's runtime: opening the store,
//!   background sweeps, the listener, graceful shutdown.
//!
//! The core (`kv`, `clock`, the store trait and its memory backend) is edge-ready: no tokio
//! runtime, timers, threads or I/O. `cargo check --target wasm32-unknown-unknown
//! --no-default-features -p couchkv` proves it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use couchkv::clock::{ManualClock, SequentialIds};
//! use couchkv::kv::{Kv, PutOptions, GetOptions};
//! use couchkv_adapters::MemoryStore;
//!
//! let kv = Kv::new(
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(ManualClock::at_secs(1_700_000_000)),
//!     Arc::new(SequentialIds::default()),
//! );
//! let ns = kv.create_namespace("my-app").await.unwrap();
//! let users = kv.namespace(&ns.id);
//! users.put("user:1", "ada".into(), PutOptions::default()).await.unwrap();
//! let got = users.get("user:1", &GetOptions::default()).await.unwrap().unwrap();
//! assert_eq!(got.value, "ada");
//! # }
//! ```

pub mod clock;
pub mod couch;
pub mod kv;
pub mod level;

pub use couchkv_adapters as adapters;

#[cfg(feature = "api")]
pub mod auth;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "api")]
pub mod http;
#[cfg(feature = "server")]
pub mod kv_cli;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "api")]
pub mod service;
