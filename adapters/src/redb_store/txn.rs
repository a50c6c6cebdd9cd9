//! Inside a write transaction: namespace lookups and applying one batch.

use super::*;

/// The namespace's number and title, read inside the write transaction.
pub(super) fn space_in_txn(ctx: &WriteCtx<'_>, ns: &str) -> Result<Option<(u32, String)>> {
    match ctx.spaces.get(ns).map_err(backend)? {
        Some(raw) => {
            let (num, title) = split_space(raw.value())?;
            Ok(Some((num, title.to_owned())))
        }
        None => Ok(None),
    }
}

pub(super) fn title_taken(ctx: &WriteCtx<'_>, title: &str, except: &str) -> Result<bool> {
    for row in ctx.spaces.iter().map_err(backend)? {
        let (id, raw) = row.map_err(backend)?;
        if split_space(raw.value())?.1 == title && id.value() != except {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn apply_batch(ctx: &mut WriteCtx<'_>, ns: &str, batch: Batch) -> Result<u64> {
    let Some((space, _)) = space_in_txn(ctx, ns)? else {
        return Err(StoreError::NamespaceNotFound(ns.to_owned()));
    };
    // Every check before the first write: a failed batch leaves the shared transaction as it was.
    for pre in &batch.preconditions {
        let current = match ctx
            .data
            .get(data_key(space, &pre.key).as_slice())
            .map_err(backend)?
        {
            Some(raw) => Some(decode(raw.value())?.version),
            None => None,
        };
        pre.check(current)?;
    }
    let version = ctx.version + 1;
    let mut events = Vec::with_capacity(batch.ops.len());
    for op in batch.ops {
        let k = data_key(space, op.key());
        let event = op.event(version);
        let existed = match op {
            Op::Put {
                value,
                metadata,
                expiration,
                ..
            } => {
                let raw = encode(&value, metadata.as_deref(), expiration, version);
                let old = ctx
                    .data
                    .insert(k.as_slice(), raw.as_slice())
                    .map_err(backend)?;
                old.is_some()
            }
            Op::Delete { .. } | Op::Expire { .. } => {
                ctx.data.remove(k.as_slice()).map_err(backend)?.is_some()
            }
        };
        ctx.written.push(k);
        // An expiry of a key already gone is no change.
        if existed || !matches!(event.kind, EventKind::Expire) {
            events.push(event);
        }
    }
    ctx.version = version;
    ctx.events.push((ns.to_owned(), events));
    Ok(version)
}
