//! The write path: a batch in one transaction under the namespace's version lock.

use super::*;

impl Inner {
    /// Applies a batch in one transaction under the namespace's version lock; returns the
    /// version and how many `Expire` ops removed a key. With `expire_before`, an `Expire` removes
    /// a key only if it still expires by then (the sweep: a key rewritten meanwhile stays).
    pub(super) async fn write(
        &self,
        ns: &str,
        batch: Batch,
        expire_before: Option<i64>,
    ) -> Result<(u64, usize)> {
        let s = &self.schema;
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let Some(row) = txn
            .query_opt(
                &txn.prepare_cached(&format!(
                    "UPDATE {s}.namespaces SET version = version + 1 WHERE id = $1
                     RETURNING num, version"
                ))
                .await
                .map_err(pg_err)?,
                &[&ns],
            )
            .await
            .map_err(pg_err)?
        else {
            return Err(StoreError::NamespaceNotFound(ns.to_owned()));
        };
        let (num, version): (i64, i64) = (row.get(0), row.get(1));
        if !batch.preconditions.is_empty() {
            let keys: Vec<Vec<u8>> = batch
                .preconditions
                .iter()
                .map(|p| p.key.as_bytes().to_vec())
                .collect();
            let current: HashMap<Vec<u8>, i64> = txn
                .query(
                    &txn.prepare_cached(&format!(
                        "SELECT key, version FROM {s}.kv WHERE ns = $1 AND key = ANY($2)"
                    ))
                    .await
                    .map_err(pg_err)?,
                    &[&num, &keys],
                )
                .await
                .map_err(pg_err)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for p in &batch.preconditions {
                p.check(current.get(p.key.as_bytes()).map(|v| *v as u64))?;
            }
        }
        // Each key's last write is what lands; every write is logged for watchers.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, op) in batch.ops.iter().enumerate() {
            last.insert(op.key(), i);
        }
        let (mut pk, mut pv, mut pm, mut pe) = (vec![], vec![], vec![], vec![]);
        let (mut dk, mut ek) = (vec![], vec![]);
        for (i, op) in batch.ops.iter().enumerate() {
            if last.get(op.key()) != Some(&i) {
                continue;
            }
            match op {
                Op::Put {
                    key,
                    value,
                    metadata,
                    expiration,
                } => {
                    pk.push(key.as_bytes().to_vec());
                    pv.push(value.to_vec());
                    pm.push(metadata.clone());
                    pe.push(to_i64(*expiration));
                }
                Op::Delete { key } => dk.push(key.as_bytes().to_vec()),
                Op::Expire { key } => ek.push(key.as_bytes().to_vec()),
            }
        }
        if !pk.is_empty() {
            txn.execute(
                &txn.prepare_cached(&format!(
                    "INSERT INTO {s}.kv (ns, key, value, metadata, expiration, version)
                     SELECT $1, k, v, m, e, $6
                     FROM unnest($2::bytea[], $3::bytea[], $4::text[], $5::bigint[]) AS t(k, v, m, e)
                     ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value,
                       metadata = EXCLUDED.metadata, expiration = EXCLUDED.expiration,
                       version = EXCLUDED.version"
                )).await.map_err(pg_err)?,
                &[&num, &pk, &pv, &pm, &pe, &version],
            )
            .await
            .map_err(pg_err)?;
        }
        if !dk.is_empty() {
            txn.execute(
                &txn.prepare_cached(&format!(
                    "DELETE FROM {s}.kv WHERE ns = $1 AND key = ANY($2)"
                ))
                .await
                .map_err(pg_err)?,
                &[&num, &dk],
            )
            .await
            .map_err(pg_err)?;
        }
        // An expiry of a key already gone is no change (and no event).
        let expired: std::collections::HashSet<Vec<u8>> = if ek.is_empty() {
            Default::default()
        } else {
            txn.query(
                &txn.prepare_cached(&format!(
                    "DELETE FROM {s}.kv WHERE ns = $1 AND key = ANY($2)
                     AND ($3::bigint IS NULL OR expiration <= $3) RETURNING key"
                ))
                .await
                .map_err(pg_err)?,
                &[&num, &ek, &expire_before],
            )
            .await
            .map_err(pg_err)?
            .into_iter()
            .map(|r| r.get(0))
            .collect()
        };
        let (mut ck, mut ckind, mut cm, mut ce) = (vec![], vec![], vec![], vec![]);
        for op in &batch.ops {
            let (kind, m, e) = match op {
                Op::Put {
                    metadata,
                    expiration,
                    ..
                } => (KIND_PUT, metadata.clone(), to_i64(*expiration)),
                Op::Delete { .. } => (KIND_DELETE, None, None),
                Op::Expire { key } => {
                    if !expired.contains(key.as_bytes()) {
                        continue;
                    }
                    (KIND_EXPIRE, None, None)
                }
            };
            ck.push(op.key().as_bytes().to_vec());
            ckind.push(kind);
            cm.push(m);
            ce.push(e);
        }
        if !ck.is_empty() {
            txn.execute(
                &txn.prepare_cached(&format!(
                    "INSERT INTO {s}.changes (ns, version, idx, key, kind, metadata, expiration)
                     SELECT $1, $2, o::integer, k, c, m, e
                     FROM unnest($3::bytea[], $4::smallint[], $5::text[], $6::bigint[])
                       WITH ORDINALITY AS t(k, c, m, e, o)"
                ))
                .await
                .map_err(pg_err)?,
                &[&num, &version, &ck, &ckind, &cm, &ce],
            )
            .await
            .map_err(pg_err)?;
            let params: [&(dyn ToSql + Sync); 2] = [&self.channel, &num.to_string()];
            txn.execute(
                &txn.prepare_cached("SELECT pg_notify($1, $2)")
                    .await
                    .map_err(pg_err)?,
                &params,
            )
            .await
            .map_err(pg_err)?;
        }
        txn.commit().await.map_err(pg_err)?;
        Ok((version as u64, expired.len()))
    }
}
