//! `couchkv kv key put|get|list|delete`.

use std::io::Write as _;

use bytes::Bytes;
use serde_json::Value;

use super::{fail, kv_err};
use crate::cli::KeyCommand;
use crate::kv::{GetOptions, KeyInfo, Kv, ListOptions, PutOptions};
use crate::server::ServerError;

pub(super) async fn run(kv: &Kv, command: KeyCommand) -> Result<(), ServerError> {
    match command {
        KeyCommand::Put {
            key,
            value,
            namespace_id,
            metadata,
            ttl,
            expiration,
        } => {
            let opts = PutOptions {
                expiration,
                expiration_ttl: ttl,
                metadata,
            };
            kv.namespace(&namespace_id)
                .put(&key, Bytes::from(value), opts)
                .await
                .map_err(kv_err)?;
        }
        KeyCommand::Get { key, namespace_id } => {
            let found = kv
                .namespace(&namespace_id)
                .get(&key, &GetOptions::default())
                .await
                .map_err(kv_err)?;
            match found {
                Some(v) => std::io::stdout().write_all(&v.value)?,
                None => return Err(fail("Value not found")),
            }
        }
        KeyCommand::List {
            namespace_id,
            prefix,
        } => {
            let keys = list_all(kv, &namespace_id, prefix).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&keys).unwrap_or_default()
            );
        }
        KeyCommand::Delete { key, namespace_id } => kv
            .namespace(&namespace_id)
            .delete(&key)
            .await
            .map_err(kv_err)?,
    }
    Ok(())
}

/// Every key under `prefix`, page after page, as wrangler prints them.
async fn list_all(
    kv: &Kv,
    namespace_id: &str,
    prefix: Option<String>,
) -> Result<Vec<Value>, ServerError> {
    let ns = kv.namespace(namespace_id);
    let mut keys = Vec::new();
    let mut opts = ListOptions {
        prefix,
        limit: None,
        cursor: None,
    };
    loop {
        let page = ns.list(&opts).await.map_err(kv_err)?;
        keys.extend(page.keys.iter().map(KeyInfo::to_json));
        match page.cursor {
            Some(c) => opts.cursor = Some(c),
            None => return Ok(keys),
        }
    }
}
