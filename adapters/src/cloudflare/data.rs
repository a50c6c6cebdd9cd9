//! Reads, lists and batches against the service's v4 endpoints.

use super::*;

impl Inner {
    /// One page of the service's list: (keys, cursor of the next page if any).
    pub(super) async fn list_page(
        &self,
        ns: &str,
        cf_id: &str,
        prefix: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<CfKey>, Option<String>)> {
        let mut url = format!(
            "{}/{}/keys?limit={limit}&prefix={}",
            self.root,
            segment(cf_id),
            segment(prefix)
        );
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.push_str(&segment(c));
        }
        let (keys, info) = self.call::<Vec<CfKey>>(ns, |c| c.get(&url)).await?;
        let next = info.cursor.filter(|c| !c.is_empty());
        Ok((keys.unwrap_or_default(), next))
    }

    /// Every key under `prefix` with its metadata and expiration (a watcher's snapshot).
    pub(super) async fn list_all(&self, ns: &str, prefix: &str) -> Result<BTreeMap<String, Seen>> {
        let remote = self.remote(ns).await?;
        let mut out = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let (keys, next) = self
                .list_page(ns, &remote.cf_id, prefix, 1000, cursor.as_deref())
                .await?;
            for k in keys {
                out.insert(
                    k.name,
                    Seen {
                        metadata: k.metadata.map(|m| m.get().to_owned()),
                        expiration: k.expiration,
                    },
                );
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    pub(super) async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let remote = self.remote(ns).await?;
        let value_url = format!(
            "{}/{}/values/{}",
            self.root,
            segment(&remote.cf_id),
            segment(key)
        );
        // Metadata and expiration come from a list by the key as prefix: the key itself sorts
        // first among the keys it prefixes. Both requests run at once; they are not one read.
        let value = async {
            match self.send(|c| c.get(&value_url)).await? {
                Ok(resp) => Ok(Some(resp.bytes().await.map_err(backend)?)),
                Err(f) if f.status == StatusCode::NOT_FOUND && f.code != 10013 => Ok(None),
                Err(f) => Err(f.into_error(ns)),
            }
        };
        let about = self.list_page(ns, &remote.cf_id, key, 10, None);
        let (value, about) = futures::future::join(value, about).await;
        let Some(value) = self.checked(ns, value)? else {
            return Ok(None);
        };
        let (keys, _) = self.checked(ns, about)?;
        let entry = keys.into_iter().find(|k| k.name == key);
        Ok(Some(Record {
            value,
            metadata: entry
                .as_ref()
                .and_then(|e| e.metadata.as_ref().map(|m| m.get().to_owned())),
            expiration: entry.and_then(|e| e.expiration),
            version: 0,
        }))
    }

    pub(super) async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        crate::paging::plain_start(opts)?;
        let remote = self.remote(ns).await?;
        self.cursors
            .list(&remote.cf_id, opts, |limit, cursor| {
                let cf_id = remote.cf_id.clone();
                async move {
                    let r = self
                        .list_page(ns, &cf_id, &opts.prefix, limit, cursor.as_deref())
                        .await;
                    let (keys, next) = self.checked(ns, r)?;
                    let keys = keys.into_iter().map(CfKey::listed).collect();
                    Ok((keys, next))
                }
            })
            .await
    }

    /// Writes one key with the single-value route (no base64, any size up to the service's).
    pub(super) async fn put_one(
        &self,
        ns: &str,
        cf_id: &str,
        key: &str,
        value: &Bytes,
        metadata: Option<&str>,
        expiration: Option<u64>,
    ) -> Result<()> {
        let mut url = format!("{}/{}/values/{}", self.root, segment(cf_id), segment(key));
        if let Some(e) = expiration {
            url.push_str(&format!("?expiration={e}"));
        }
        self.fetch(ns, |c| {
            let req = c.put(&url);
            match metadata {
                Some(m) => {
                    let form = reqwest::multipart::Form::new()
                        .part(
                            "value",
                            reqwest::multipart::Part::stream(reqwest::Body::from(value.clone())),
                        )
                        .text("metadata", m.to_owned());
                    req.multipart(form)
                }
                None => req
                    .header("content-type", "application/octet-stream")
                    .body(value.clone()),
            }
        })
        .await?;
        Ok(())
    }

    pub(super) async fn bulk_put(&self, ns: &str, cf_id: &str, items: &[&Op]) -> Result<()> {
        let mut body = Vec::with_capacity(items.len());
        for op in items {
            if let Op::Put {
                key,
                value,
                metadata,
                expiration,
            } = op
            {
                let mut item = serde_json::json!({
                    "key": key,
                    "value": BASE64.encode(value),
                    "base64": true,
                });
                if let Some(e) = expiration {
                    item["expiration"] = Value::from(*e);
                }
                if let Some(m) = metadata {
                    item["metadata"] = serde_json::from_str(m).map_err(|e| {
                        StoreError::Backend(format!("metadata of {key:?} is not JSON: {e}"))
                    })?;
                }
                body.push(item);
            }
        }
        let body = Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|e| StoreError::Backend(format!("bulk body: {e}")))?,
        );
        let url = format!("{}/{}/bulk", self.root, segment(cf_id));
        let (result, _) = self
            .call::<BulkResult>(ns, |c| {
                c.put(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        match result {
            Some(r) if !r.unsuccessful_keys.is_empty() => Err(StoreError::Backend(format!(
                "Cloudflare did not write {} of the keys, first {:?}",
                r.unsuccessful_keys.len(),
                r.unsuccessful_keys[0]
            ))),
            _ => Ok(()),
        }
    }

    pub(super) async fn bulk_delete(&self, ns: &str, cf_id: &str, keys: &[&str]) -> Result<()> {
        let url = format!("{}/{}/bulk/delete", self.root, segment(cf_id));
        let body = Bytes::from(
            serde_json::to_vec(keys).map_err(|e| StoreError::Backend(format!("bulk body: {e}")))?,
        );
        self.call::<Value>(ns, |c| {
            c.post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    pub(super) async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        if !batch.preconditions.is_empty() {
            return Err(StoreError::NotSupported(
                "Workers KV has no conditional writes",
            ));
        }
        let remote = self.remote(ns).await?;
        let _writing = self.begin_write(ns);
        // Non-atomic anyway: only each key's last write matters, sent puts first, then deletes.
        let finals = batch.last_writes();
        let version = self.next_version();
        let r = self.apply(ns, &remote.cf_id, &finals).await;
        let r = self.checked(ns, r);
        if r.is_ok() {
            self.hub
                .publish(ns, batch.ops.iter().map(|op| op.event(version)));
        }
        r.map(|()| version)
    }

    pub(super) async fn apply(&self, ns: &str, cf_id: &str, finals: &[&Op]) -> Result<()> {
        let (puts, deletes): (Vec<&Op>, Vec<&Op>) =
            finals.iter().partition(|op| matches!(op, Op::Put { .. }));
        if let [Op::Put {
            key,
            value,
            metadata,
            expiration,
        }] = puts.as_slice()
        {
            self.put_one(ns, cf_id, key, value, metadata.as_deref(), *expiration)
                .await?;
        } else {
            let mut chunk: Vec<&Op> = Vec::new();
            let mut bytes = 0;
            for op in puts {
                let size = match op {
                    Op::Put { value, .. } => value.len() * 4 / 3 + op.key().len() + 1100,
                    _ => 0,
                };
                if !chunk.is_empty() && (chunk.len() == BULK_ITEMS || bytes + size > BULK_BYTES) {
                    self.bulk_put(ns, cf_id, &chunk).await?;
                    chunk.clear();
                    bytes = 0;
                }
                chunk.push(op);
                bytes += size;
            }
            if !chunk.is_empty() {
                self.bulk_put(ns, cf_id, &chunk).await?;
            }
        }
        let deletes: Vec<&str> = deletes.iter().map(|op| op.key()).collect();
        if let [key] = deletes.as_slice() {
            let url = format!("{}/{}/values/{}", self.root, segment(cf_id), segment(key));
            self.call::<Value>(ns, |c| c.delete(&url)).await?;
        } else {
            for chunk in deletes.chunks(BULK_ITEMS) {
                self.bulk_delete(ns, cf_id, chunk).await?;
            }
        }
        Ok(())
    }
}
