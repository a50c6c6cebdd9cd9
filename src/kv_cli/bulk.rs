//! `couchkv kv bulk put|delete`: wrangler's JSON files, 10,000 keys at a time, with progress.

use serde_json::Value;

use super::{fail, kv_err};
use crate::cli::BulkCommand;
use crate::kv::{BulkPutItem, Kv};
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
                let batch = chunk
                    .iter()
                    .map(|item| BulkPutItem::from_json(item).map_err(fail))
                    .collect::<Result<Vec<_>, _>>()?;
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
