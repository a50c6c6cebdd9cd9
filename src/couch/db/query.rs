//! Queries over a whole database, a page at a time: `_all_docs` and `_changes`.

use super::*;

impl Db {
    /// `_all_docs`: live documents in id order (byte order), or the ones named by `keys`.
    /// One page of `_all_docs` from `at`: at most `max_rows` rows after skipping `skip` (what
    /// is left of the request's `skip`), examining at most [`ALL_DOCS_PAGE`] documents, so a
    /// page costs a bounded amount whatever the request asks. The caller streams the pages and
    /// counts `skip` and `limit` down with what each page reports.
    pub async fn all_docs_page(
        &self,
        opts: &AllDocsOptions,
        at: &AllDocsCursor,
        skip: usize,
        max_rows: usize,
    ) -> Result<AllDocsPage> {
        self.check_live()?;
        let doc_opts = DocOptions {
            conflicts: opts.conflicts,
            attachments: opts.attachments,
            ..DocOptions::default()
        };
        let mut page = AllDocsPage {
            rows: Vec::new(),
            skipped: 0,
            next: None,
        };
        if let Some(keys) = &opts.keys {
            let from = match at {
                AllDocsCursor::KeyIndex(i) => *i,
                _ => 0,
            };
            let upto = keys.len().min(from.saturating_add(ALL_DOCS_PAGE));
            let Some(chunk) = keys.get(from..upto) else {
                return Ok(page);
            };
            let metas = self.metas(chunk).await?;
            for (i, key) in chunk.iter().enumerate() {
                if page.rows.len() >= max_rows {
                    page.next = Some(AllDocsCursor::KeyIndex(from + i));
                    return Ok(page);
                }
                let row = match metas.get(key).and_then(Option::as_ref) {
                    None => json!({"key": key, "error": "not_found"}),
                    Some(meta) => {
                        let Some((rev, deleted)) = meta.tree.winner() else {
                            continue;
                        };
                        let mut row =
                            json!({"id": key, "key": key, "value": {"rev": rev.to_string()}});
                        if deleted {
                            row["value"]["deleted"] = Value::Bool(true);
                            if opts.include_docs {
                                row["doc"] = Value::Null;
                            }
                        } else if opts.include_docs {
                            if let Some(body) = self.body(key, &rev).await? {
                                row["doc"] = self.render(key, &rev, meta, body, &doc_opts).await?;
                            }
                        }
                        row
                    }
                };
                if page.skipped < skip {
                    page.skipped += 1;
                    continue;
                }
                page.rows.push(row);
            }
            if upto < keys.len() {
                page.next = Some(AllDocsCursor::KeyIndex(upto));
            }
            return Ok(page);
        }
        let mut range = RangeOptions {
            reverse: opts.descending,
            ..RangeOptions::default()
        };
        // startkey/endkey follow the direction of iteration.
        let (low, high) = if opts.descending {
            (opts.end.clone(), opts.start.clone())
        } else {
            (opts.start.clone(), opts.end.clone())
        };
        let end_inclusive = opts.inclusive_end;
        if let Some(l) = low {
            if opts.descending && !end_inclusive {
                range.gt = Some(doc_key(&l));
            } else {
                range.gte = Some(doc_key(&l));
            }
        }
        if let Some(h) = high {
            if !opts.descending && !end_inclusive {
                range.lt = Some(doc_key(&h));
            } else {
                range.lte = Some(doc_key(&h));
            }
        }
        // Resume where the previous page stopped (the tighter bound holds).
        if let AllDocsCursor::Before(k) = at {
            if opts.descending {
                range.lte = Some(k.clone());
            } else {
                range.gte = Some(k.clone());
            }
        }
        let mut it = self.inner.meta.iterator(range)?;
        let mut examined = 0;
        while let Some((k, raw)) = it.next().await? {
            if page.rows.len() >= max_rows || examined >= ALL_DOCS_PAGE {
                // This key is the next page's first: resume just before it.
                page.next = Some(AllDocsCursor::Before(k));
                return Ok(page);
            }
            examined += 1;
            let meta = Meta::from_bytes(&raw)?;
            let id = meta.id(&k);
            let Some((rev, false)) = meta.tree.winner() else {
                continue;
            };
            if page.skipped < skip {
                page.skipped += 1;
                continue;
            }
            let mut row = json!({"id": id, "key": id, "value": {"rev": rev.to_string()}});
            if opts.include_docs {
                if let Some(body) = self.body(&id, &rev).await? {
                    row["doc"] = self.render(&id, &rev, &meta, body, &doc_opts).await?;
                }
            }
            page.rows.push(row);
        }
        Ok(page)
    }

    /// One page of `_changes`.
    /// The ids of up to `limit` documents changed after `since`, with the last sequence
    /// they reach; `None` when nothing changed since (what an index updater asks).
    pub(super) async fn changed_ids(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Option<(Vec<String>, u64)>> {
        let page = self
            .changes(&ChangesOptions {
                since,
                limit: Some(limit),
                ..ChangesOptions::default()
            })
            .await?;
        if page.results.is_empty() || page.last_seq <= since {
            return Ok(None);
        }
        let ids = page
            .results
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        Ok(Some((ids, page.last_seq)))
    }

    pub async fn changes(&self, opts: &ChangesOptions) -> Result<ChangesPage> {
        self.check_live()?;
        let update_seq = self.update_seq().await?;
        let mut range = RangeOptions {
            reverse: opts.descending,
            ..RangeOptions::default()
        };
        if opts.since > 0 {
            range.gt = Some(opts.since.to_be_bytes().to_vec());
        }
        if let Some(before) = opts.before {
            range.lt = Some(before.to_be_bytes().to_vec());
        }
        let mut it = self.inner.seqs.iterator(range)?;
        let mut results = Vec::new();
        let mut last_seq = opts.since;
        let doc_opts = DocOptions {
            conflicts: opts.conflicts,
            attachments: opts.attachments,
            ..DocOptions::default()
        };
        let filtered = opts.doc_ids.is_some() || opts.filter.is_some();
        let mut examined = 0;
        let mut more = false;
        while let Some((k, raw)) = it.next().await? {
            if opts.limit.is_some_and(|l| results.len() >= l) {
                break;
            }
            if filtered && examined >= CHANGES_EXAMINE {
                more = true;
                break;
            }
            examined += 1;
            let seq = u64::from_be_bytes(
                k.as_slice()
                    .try_into()
                    .map_err(|_| CouchError::internal("corrupt sequence key"))?,
            );
            last_seq = seq;
            let row: Value = parse_json(&raw)?;
            let id = row["id"].as_str().unwrap_or_default().to_owned();
            if opts.doc_ids.as_ref().is_some_and(|ids| !ids.contains(&id)) {
                continue;
            }
            let winner = row["rev"].as_str().unwrap_or_default().to_owned();
            let mut changes = vec![json!({"rev": winner})];
            if opts.all_docs {
                // CouchDB's order: the winner, then the other leaves newest first.
                let mut others: Vec<Rev> = row["leaves"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l[0].as_str())
                    .filter(|r| *r != winner)
                    .filter_map(Rev::parse)
                    .collect();
                others.sort_by(|a, b| b.cmp(a));
                changes.extend(others.iter().map(|r| json!({"rev": r.to_string()})));
            }
            let mut out = json!({"seq": seq, "id": id, "changes": changes});
            let deleted = row["deleted"].as_bool().unwrap_or(false);
            if deleted {
                out["deleted"] = Value::Bool(true);
            }
            if opts.include_docs || opts.filter.is_some() {
                let rev = Rev::parse(&winner)
                    .ok_or_else(|| CouchError::internal("corrupt change row"))?;
                let doc = match (self.meta(&id).await?, self.body(&id, &rev).await?) {
                    (Some(meta), Some(body)) => {
                        self.render(&id, &rev, &meta, body, &doc_opts).await?
                    }
                    _ => Value::Null,
                };
                if let Some(filter) = &opts.filter {
                    if !filter.accepts(&doc)? {
                        continue;
                    }
                }
                if opts.include_docs {
                    out["doc"] = doc;
                }
            }
            results.push(out);
        }
        let pending = if opts.descending {
            0
        } else {
            update_seq.saturating_sub(last_seq)
        };
        Ok(ChangesPage {
            results,
            last_seq,
            pending,
            more,
        })
    }

    // ---- attachments ----
}
