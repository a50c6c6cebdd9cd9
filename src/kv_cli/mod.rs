//! `couchkv kv …`: wrangler's KV verbs through the kv layer, on a data directory (the redb
//! store) or on a running server (a [`CloudflareStore`] speaking its v4 API: the project's one
//! v4 client). Output is what wrangler prints: ids, raw values, JSON. One file per command group.

mod bulk;
mod key;
mod namespace;

use std::sync::Arc;

use couchkv_adapters::{CloudflareConfig, CloudflareStore, DynStore};

use crate::auth::crypto::RandomIds;
use crate::cli::{KvArgs, KvCommand};
use crate::kv::{Kv, KvError};
use crate::server::{ServerError, SystemClock};

/// Where the commands go: the kv layer over the local store or over the server's v4 API.
struct Target {
    kv: Kv,
    /// The running server, when there is one: namespaces are made its way.
    remote: Option<CloudflareStore>,
}

impl Target {
    fn open(args: &KvArgs) -> Result<Self, ServerError> {
        let (store, remote): (DynStore, _) = match &args.url {
            Some(url) => {
                let token = args.token.as_ref().map(|t| t.0.clone()).unwrap_or_default();
                let mut config = CloudflareConfig::new("local", token.clone());
                config.base_url = format!("{}/client/v4", url.trim_end_matches('/'));
                // An admin's NAME:PASSWORD goes as Basic; API tokens (`ckv_…`) as Bearer.
                config.basic_auth = !token.starts_with("ckv_") && token.contains(':');
                let remote = CloudflareStore::new(config)?;
                (Arc::new(remote.clone()), Some(remote))
            }
            None => (Arc::new(crate::server::open_redb(&args.data)?), None),
        };
        let kv = Kv::new(store, Arc::new(SystemClock), Arc::new(RandomIds));
        Ok(Self { kv, remote })
    }
}

fn fail(msg: impl Into<String>) -> ServerError {
    ServerError::Io(std::io::Error::other(msg.into()))
}

fn kv_err(e: KvError) -> ServerError {
    fail(e.to_string())
}

pub async fn run(args: KvArgs) -> Result<(), ServerError> {
    let target = Target::open(&args)?;
    let out = match args.command {
        KvCommand::Namespace(c) => namespace::run(&target, c).await,
        KvCommand::Key(c) => key::run(&target.kv, c).await,
        KvCommand::Bulk(c) => bulk::run(&target.kv, c).await,
    };
    target.kv.store().close().await?;
    out
}
