//! `validate_doc_update`: every design document's write rule, run on each document a client
//! writes (new edits and replicated revisions alike, attachments too), before it is staged; a
//! refused document writes nothing. Design documents are not validated (their writers are
//! database admins) but must compile; `_local` documents are neither, as in CouchDB.
//!
//! The design documents are cached with the counters' `design_seq` they were read at, and a
//! write checks the cache against the counters its commit is guarded by: a rule another node
//! added is never missed.

use super::*;
use crate::couch::js::{self, DesignCode, Verdict};
use crate::couch::views::design::{all_functions, function, is_javascript};

/// Who is writing, as `validate_doc_update` sees it: CouchDB's `userCtx` and the database's
/// security object.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub user_ctx: Value,
    pub sec_obj: Value,
}

/// The rules one request's writes are checked with.
pub(super) struct Validation {
    pub(super) rules: Vec<(DesignCode, String)>,
    pub(super) ctx: WriteCtx,
}

impl Db {
    /// The design documents as of the counters' `design_seq` `seq` (read again when the
    /// cached ones are older).
    pub(super) async fn design_docs_at(&self, seq: u64) -> Result<DesignDocs> {
        if let Some((at, docs)) = self
            .inner
            .design_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            if at == seq {
                return Ok(docs);
            }
        }
        let docs: DesignDocs = Arc::new(self.design_docs().await?);
        *self
            .inner
            .design_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((seq, docs.clone()));
        Ok(docs)
    }

    /// The design documents as they are now.
    pub async fn current_design_docs(&self) -> Result<DesignDocs> {
        self.check_live()?;
        let c = parse_counters(self.inner.store.get(COUNTERS).await?.as_deref())?;
        self.design_docs_at(c.design_seq).await
    }

    /// The `validate_doc_update` functions of the design documents at `seq`.
    pub(super) async fn validation(&self, seq: u64, ctx: &WriteCtx) -> Result<Option<Validation>> {
        let docs = self.design_docs_at(seq).await?;
        let rules: Vec<(DesignCode, String)> = docs
            .iter()
            .filter(|(_, d)| is_javascript(d))
            .filter_map(|(id, d)| {
                function(d, "validate_doc_update", None)
                    .map(|f| (DesignCode::new(id, d), f.to_owned()))
            })
            .collect();
        Ok(Some(Validation {
            rules,
            ctx: ctx.clone(),
        }))
    }

    /// Checks one document about to be staged: `body` is its new revision's body (with
    /// attachment stubs). The document it replaces is the current winner.
    pub(super) async fn check_write(
        &self,
        staging: &Staging,
        id: &str,
        rev: &Rev,
        body: &Value,
        deleted: bool,
        meta: &Meta,
    ) -> Result<()> {
        if is_design_doc(id) {
            if self.inner.js.is_some() && !deleted {
                let funs = all_functions(body);
                if !funs.is_empty() {
                    let refs: Vec<(&str, bool)> =
                        funs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
                    js::compile(&self.inner.js, &DesignCode::new(id, body), &refs)?;
                }
            }
            return Ok(());
        }
        let Some(v) = &staging.validation else {
            return Ok(());
        };
        if v.rules.is_empty() {
            return Ok(());
        }
        let mut new_doc = Map::new();
        new_doc.insert("_id".into(), Value::String(id.to_owned()));
        new_doc.insert("_rev".into(), Value::String(rev.to_string()));
        if let Value::Object(b) = body {
            new_doc.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if deleted {
            new_doc.insert("_deleted".into(), Value::Bool(true));
        }
        let new_doc = Value::Object(new_doc);
        let old_doc = match meta.tree.winner() {
            Some((w, _)) => match self.load_body(staging, id, &w).await? {
                Some(b) => Some(self.render(id, &w, meta, b, &DocOptions::default()).await?),
                None => None,
            },
            None => None,
        };
        for (code, fun) in &v.rules {
            match js::validate(
                &self.inner.js,
                code,
                fun,
                &new_doc,
                old_doc.as_ref(),
                &v.ctx.user_ctx,
                &v.ctx.sec_obj,
            )? {
                Verdict::Ok => {}
                Verdict::Forbidden(m) => return Err(CouchError::forbidden(m)),
                Verdict::Unauthorized(m) => return Err(CouchError::unauthorized(m)),
                Verdict::Failed(m) => {
                    return Err(CouchError::new(
                        crate::couch::ErrorKind::Internal,
                        "render_error",
                        m,
                    ))
                }
            }
        }
        Ok(())
    }
}
