//! `couchkv kv bulk put|delete`: wrangler's JSON files, 10,000 keys at a time, with progress.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use super::{fail, kv_err};
use crate::cli::BulkCommand;
use crate::kv::{BulkPutItem, Kv, PutOptions};
use crate::server::ServerError;

/// Items per bulk request: Workers KV's limit.
const BULK: usize = 10_000;

pub(super) async fn run(kv: &Kv, command: BulkCommand) -> Result<(), ServerError> {
    match command {
        BulkCommand::Put { file, namespace_id } => {
            let items = read_json(&file)?;
            let items = items
                .as_array()
                .ok_or_else(|| fail("the file must hold a JSON array"))?;
            let ns = kv.namespace(&namespace_id);
            let total = items.len();
            let mut done = 0;
            for chunk in items.chunks(BULK) {
                let batch = chunk.iter().map(put_item).collect::<Result<Vec<_>, _>>()?;
                ns.bulk_put(batch).await.map_err(kv_err)?;
                done += chunk.len();
                progress("bulk put", done, total);
            }
        }
        BulkCommand::Delete { file, namespace_id } => {
            let items = read_json(&file)?;
            let keys: Vec<String> = items
                .as_array()
                .ok_or_else(|| fail("the file must hold a JSON array"))?
                .iter()
                .filter_map(|k| k.as_str().or_else(|| k["key"].as_str()).map(str::to_owned))
                .collect();
            let ns = kv.namespace(&namespace_id);
            let total = keys.len();
            let mut done = 0;
            for chunk in keys.chunks(BULK) {
                ns.bulk_delete(chunk.to_vec()).await.map_err(kv_err)?;
                done += chunk.len();
                progress("bulk delete", done, total);
            }
        }
    }
    Ok(())
}

/// One item of wrangler's bulk file: `{key, value, base64?, expiration?, expiration_ttl?,
/// metadata?}`.
fn put_item(item: &Value) -> Result<BulkPutItem, ServerError> {
    let raw = item["value"]
        .as_str()
        .ok_or_else(|| fail("value must be a string"))?;
    let value = if item["base64"] == true {
        Bytes::from(B64.decode(raw).map_err(|_| fail("value is not base64"))?)
    } else {
        Bytes::from(raw.to_owned())
    };
    Ok(BulkPutItem {
        key: item["key"]
            .as_str()
            .ok_or_else(|| fail("key must be a string"))?
            .to_owned(),
        value,
        options: PutOptions {
            expiration: item["expiration"].as_i64(),
            expiration_ttl: item["expiration_ttl"].as_i64(),
            metadata: (!item["metadata"].is_null()).then(|| item["metadata"].to_string()),
        },
    })
}

fn read_json(path: &std::path::Path) -> Result<Value, ServerError> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| fail(format!("{}: {e}", path.display())))
}

fn progress(verb: &str, done: usize, total: usize) {
    eprint!("\r{verb}: {done}/{total}");
    if done == total {
        eprintln!();
    }
}
