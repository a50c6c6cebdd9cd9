//! Reading documents: metadata and bodies, rendering as clients see them, `open_revs`,
//! `_bulk_get`, `_revs_diff`.

use super::*;

impl Db {
    /// Many documents' metadata in one read.
    pub(super) async fn metas(&self, ids: &[String]) -> Result<HashMap<String, Option<Meta>>> {
        self.check_live()?;
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| meta_sub(id)).collect();
        let raws = self.inner.meta.get_many(&keys).await?;
        ids.iter()
            .zip(raws)
            .map(|(id, raw)| Ok((id.clone(), raw.map(|r| Meta::from_bytes(&r)).transpose()?)))
            .collect()
    }

    /// Many revision bodies in one read.
    pub(super) async fn bodies(
        &self,
        wanted: &[(String, Rev)],
    ) -> Result<HashMap<(String, Rev), Value>> {
        let keys: Vec<Vec<u8>> = wanted.iter().map(|(id, rev)| body_sub(id, rev)).collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let raws = self.inner.bodies.get_many(&keys).await?;
        let mut out = HashMap::new();
        for (key, raw) in wanted.iter().zip(raws) {
            if let Some(raw) = raw {
                out.insert(key.clone(), parse_json(&raw)?);
            }
        }
        Ok(out)
    }

    pub(super) async fn meta(&self, id: &str) -> Result<Option<Meta>> {
        self.check_live()?;
        match self.inner.meta.get(meta_sub(id)).await? {
            Some(raw) => Ok(Some(Meta::from_bytes(&raw)?)),
            None => Ok(None),
        }
    }

    pub(super) async fn body(&self, id: &str, rev: &Rev) -> Result<Option<Value>> {
        match self.inner.bodies.get(body_sub(id, rev)).await? {
            Some(raw) => Ok(Some(parse_json(&raw)?)),
            None => Ok(None),
        }
    }

    /// The document as a client reads it.
    pub(super) async fn render(
        &self,
        id: &str,
        rev: &Rev,
        meta: &Meta,
        body: Value,
        opts: &DocOptions,
    ) -> Result<Value> {
        let deleted = meta.tree.is_deleted(rev).unwrap_or(false);
        let mut out = Map::new();
        out.insert("_id".into(), Value::String(id.to_owned()));
        out.insert("_rev".into(), Value::String(rev.to_string()));
        let Value::Object(mut body) = body else {
            return Err(CouchError::internal("corrupt body"));
        };
        let atts = body.shift_remove("_attachments");
        out.extend(body);
        if deleted {
            out.insert("_deleted".into(), Value::Bool(true));
        }
        if let Some(Value::Object(atts)) = atts {
            let since_pos = opts
                .atts_since
                .iter()
                .filter(|r| meta.tree.contains(r))
                .map(|r| r.pos)
                .max();
            let mut rendered = Map::new();
            for (name, mut att) in atts {
                let revpos = att.get("revpos").and_then(Value::as_u64).unwrap_or(0);
                let inline = opts.attachments || since_pos.is_some_and(|p| revpos > p);
                if inline {
                    let digest = att
                        .get("digest")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let data = self
                        .inner
                        .atts
                        .get(att_sub(id, digest))
                        .await?
                        .ok_or_else(|| CouchError::internal(format!("attachment {name} lost")))?;
                    if let Value::Object(a) = &mut att {
                        // CouchDB's inline form: content_type, revpos, digest, data.
                        a.shift_remove("stub");
                        a.shift_remove("length");
                        a.insert("data".into(), Value::String(B64.encode(&data)));
                    }
                }
                rendered.insert(name, att);
            }
            out.insert("_attachments".into(), Value::Object(rendered));
        }
        if self.inner.name == "_users" && !opts.with_password_hash {
            for k in ["derived_key", "salt"] {
                out.shift_remove(k);
            }
        }
        if opts.revs {
            out.insert(
                "_revisions".into(),
                serde_json::to_value(meta.tree.revisions(rev)).unwrap_or(Value::Null),
            );
        }
        if opts.revs_info {
            let mut info = Vec::new();
            for r in meta.tree.path_to(rev) {
                let status = if meta.tree.is_deleted(&r) == Some(true) {
                    "deleted"
                } else if meta.has_body(&r) {
                    "available"
                } else {
                    "missing"
                };
                info.push(json!({"rev": r.to_string(), "status": status}));
            }
            out.insert("_revs_info".into(), Value::Array(info));
        }
        if opts.conflicts {
            let c = meta.tree.conflicts();
            if !c.is_empty() {
                out.insert(
                    "_conflicts".into(),
                    json!(c.iter().map(Rev::to_string).collect::<Vec<_>>()),
                );
            }
        }
        if opts.deleted_conflicts {
            let c = meta.tree.deleted_conflicts();
            if !c.is_empty() {
                out.insert(
                    "_deleted_conflicts".into(),
                    json!(c.iter().map(Rev::to_string).collect::<Vec<_>>()),
                );
            }
        }
        Ok(Value::Object(out))
    }

    /// `GET /db/doc`: the winner, or the revision asked for.
    pub async fn get(&self, id: &str, opts: &DocOptions) -> Result<Value> {
        let meta = self.meta(id).await?.ok_or_else(CouchError::missing)?;
        let rev = match &opts.rev {
            Some(r) => {
                if !meta.tree.contains(r) {
                    return Err(CouchError::missing());
                }
                if opts.latest && !meta.tree.is_leaf(r) {
                    // The best leaf that descends from it, by CouchDB's winning rule.
                    meta.tree
                        .leaves_under(r)
                        .into_iter()
                        .map(|l| (meta.tree.is_deleted(&l) == Some(false), l))
                        .max_by(|(la, a), (lb, b)| (la, a.pos, &a.hash).cmp(&(lb, b.pos, &b.hash)))
                        .map(|(_, l)| l)
                        .unwrap_or_else(|| r.clone())
                } else {
                    r.clone()
                }
            }
            None => {
                let (w, deleted) = meta.tree.winner().ok_or_else(CouchError::missing)?;
                if deleted {
                    return Err(CouchError::deleted());
                }
                w
            }
        };
        let body = self.body(id, &rev).await?.ok_or_else(CouchError::missing)?;
        self.render(id, &rev, &meta, body, opts).await
    }

    /// `open_revs`: for each revision, `{"ok": doc}` or `{"missing": rev}`.
    pub async fn open_revs(
        &self,
        id: &str,
        which: &OpenRevs,
        opts: &DocOptions,
    ) -> Result<Vec<Value>> {
        let meta = self.meta(id).await?;
        let Some(meta) = meta else {
            return match which {
                OpenRevs::All => Err(CouchError::missing()),
                OpenRevs::Some(revs) => Ok(revs
                    .iter()
                    .map(|r| json!({"missing": r.to_string()}))
                    .collect()),
            };
        };
        let wanted: Vec<Rev> = match which {
            OpenRevs::All => meta.tree.leaves().into_iter().map(|(r, _)| r).collect(),
            OpenRevs::Some(revs) => revs.clone(),
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for rev in wanted {
            let revs = if opts.latest && meta.tree.contains(&rev) && !meta.tree.is_leaf(&rev) {
                meta.tree.leaves_under(&rev)
            } else {
                vec![rev.clone()]
            };
            for r in revs {
                if !seen.insert(r.clone()) {
                    continue;
                }
                match self.body(id, &r).await? {
                    Some(body) if meta.tree.contains(&r) => {
                        out.push(json!({"ok": self.render(id, &r, &meta, body, opts).await?}));
                    }
                    _ => out.push(json!({"missing": r.to_string()})),
                }
            }
        }
        Ok(out)
    }

    /// `_bulk_get`: one result per requested document, errors inline. All metadata is read in
    /// one go, then all bodies in one go.
    pub async fn bulk_get(&self, items: &[BulkGetItem], opts: &DocOptions) -> Result<Vec<Value>> {
        enum Want {
            Rev(Rev),
            Missing(String),
            Error(CouchError),
        }
        let ids: Vec<String> = items
            .iter()
            .map(|i| i.id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let metas = self.metas(&ids).await?;
        let mut plans = Vec::with_capacity(items.len());
        let mut wanted = Vec::new();
        for item in items {
            let meta = metas.get(&item.id).and_then(Option::as_ref);
            let mut plan = Vec::new();
            match (&item.rev, meta) {
                (Some(rev), None) => plan.push(Want::Missing(rev.to_string())),
                (Some(rev), Some(meta)) => {
                    let revs = if opts.latest && meta.tree.contains(rev) && !meta.tree.is_leaf(rev)
                    {
                        meta.tree.leaves_under(rev)
                    } else {
                        vec![rev.clone()]
                    };
                    for r in revs {
                        if meta.tree.contains(&r) {
                            wanted.push((item.id.clone(), r.clone()));
                            plan.push(Want::Rev(r));
                        } else {
                            plan.push(Want::Missing(r.to_string()));
                        }
                    }
                }
                (None, None) => plan.push(Want::Error(CouchError::missing())),
                (None, Some(meta)) => match meta.tree.winner() {
                    Some((w, false)) => {
                        wanted.push((item.id.clone(), w.clone()));
                        plan.push(Want::Rev(w));
                    }
                    Some((_, true)) => plan.push(Want::Error(CouchError::deleted())),
                    None => plan.push(Want::Error(CouchError::missing())),
                },
            }
            plans.push(plan);
        }
        let bodies = self.bodies(&wanted).await?;
        let mut results = Vec::with_capacity(items.len());
        for (item, plan) in items.iter().zip(plans) {
            let mut o = opts.clone();
            o.atts_since = item.atts_since.clone();
            let mut docs = Vec::new();
            for want in plan {
                let missing = |rev: Value| json!({"error": {"id": item.id, "rev": rev, "error": "not_found", "reason": "missing"}});
                match want {
                    Want::Rev(r) => match (bodies.get(&(item.id.clone(), r.clone())), metas.get(&item.id)) {
                        (Some(body), Some(Some(meta))) => {
                            let doc = self.render(&item.id, &r, meta, body.clone(), &o).await?;
                            docs.push(json!({"ok": doc}));
                        }
                        _ => docs.push(missing(json!(r.to_string()))),
                    },
                    Want::Missing(r) => docs.push(missing(json!(r))),
                    Want::Error(e) => docs.push(json!({"error": {"id": item.id, "rev": Value::Null, "error": e.error, "reason": e.reason}})),
                }
            }
            results.push(json!({"id": item.id, "docs": docs}));
        }
        Ok(results)
    }

    /// `_revs_diff`: per document, the revisions this database lacks.
    pub async fn revs_diff(&self, req: &Map<String, Value>) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        let ids: Vec<String> = req.keys().cloned().collect();
        let metas = self.metas(&ids).await?;
        for (id, revs) in req {
            let Some(list) = revs.as_array() else {
                return Err(CouchError::bad_request("_revs_diff takes {id: [revs]}"));
            };
            let strings: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            let meta = metas.get(id).cloned().flatten().unwrap_or_default();
            let parsed: Vec<Rev> = strings.iter().filter_map(|s| Rev::parse(s)).collect();
            let (missing, ancestors) = meta.tree.revs_diff(&parsed);
            // A revision id we cannot even parse is one we do not have.
            let mut missing: Vec<String> = missing.iter().map(Rev::to_string).collect();
            missing.extend(
                strings
                    .iter()
                    .filter(|s| Rev::parse(s).is_none())
                    .map(|s| s.to_string()),
            );
            if missing.is_empty() {
                continue;
            }
            let mut entry = Map::new();
            entry.insert("missing".into(), json!(missing));
            if !ancestors.is_empty() {
                entry.insert(
                    "possible_ancestors".into(),
                    json!(ancestors.iter().map(Rev::to_string).collect::<Vec<_>>()),
                );
            }
            out.insert(id.clone(), Value::Object(entry));
        }
        Ok(out)
    }
}
