//! The CouchDB API's rules, below HTTP: what a request may do and what else a write entails,
//! decided once for every host. A handler parses, calls one method here, renders; a second
//! host (the Worker) calls the same methods.
//!
//! Here so far: every document write (design documents need a database admin; `_users`
//! documents are checked, hashed, and make or release their per-user database; a database past
//! its old-revision threshold asks to be compacted), attachment writes under the same rights,
//! and who may read a `_users` document.

pub mod access;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::auth::{deny, Auth, UserCtx, USERS_DB, USER_PREFIX};
use crate::couch::revs::Rev;
use crate::couch::{Couch, Db, Result, WriteCtx, WriteResult};

/// The rules, with what they need.
pub struct CouchService {
    pub couch: Arc<Couch>,
    pub auth: Arc<Auth>,
    /// Bodies of old revisions a database may keep before it compacts itself (0: never).
    pub compact_after: u64,
}

/// What a write did, and what the host should do next.
pub struct Written {
    pub results: Vec<WriteResult>,
    /// The database kept more old revisions than it may: compact it (the host runs that in
    /// the background, as it runs every long task).
    pub compact: Option<Db>,
}

fn id_of(doc: &Value) -> String {
    doc.get("_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `validate_doc_update`'s view of a writer: CouchDB's `userCtx` (with the database's name)
/// and the database's security object.
async fn write_ctx(db: &Db, user: &UserCtx) -> Result<WriteCtx> {
    let mut user_ctx = user.to_json();
    user_ctx["db"] = Value::String(db.name().to_owned());
    Ok(WriteCtx {
        user_ctx,
        sec_obj: db.security().await?.to_json(),
    })
}

impl CouchService {
    /// Every document write goes through here, whatever the route: design documents need a
    /// database admin, and `_users` documents get the user rules (checked, password hashed)
    /// before the write and their per-user database made or released after it.
    pub async fn write_docs(
        &self,
        user: &UserCtx,
        name: &str,
        mut docs: Vec<Value>,
        new_edits: bool,
    ) -> Result<Written> {
        let db = self.couch.db(name).await?;
        let ids: Vec<String> = docs.iter().map(id_of).collect();
        self.auth
            .authorize_doc_writes(user, name, ids.iter().map(String::as_str))
            .await?;
        let mut user_docs = Vec::new();
        if name == USERS_DB {
            for doc in &mut docs {
                let id = id_of(doc);
                let current = self.auth.stored_user(&id).await?;
                *doc = self
                    .auth
                    .prepare_user_doc(user, &id, doc.take(), current.as_ref())
                    .await?;
                let deleted = doc.get("_deleted") == Some(&Value::Bool(true));
                user_docs.push((id, current.is_none(), deleted));
            }
        }
        let ctx = write_ctx(&db, user).await?;
        let results = db.bulk_docs_as(docs, new_edits, Some(&ctx)).await?;
        for ((id, is_new, deleted), r) in user_docs.iter().zip(&results) {
            if matches!(r, WriteResult::Ok { .. }) {
                self.auth.after_user_write(id, *is_new, *deleted).await?;
            }
        }
        let compact =
            (self.compact_after > 0 && db.garbage().await >= self.compact_after).then_some(db);
        Ok(Written { results, compact })
    }

    /// Adds, replaces (`data`: content type and bytes) or removes an attachment: a write to its
    /// document, under the same rights (a design document's needs a database admin).
    pub async fn write_attachment(
        &self,
        user: &UserCtx,
        name: &str,
        id: &str,
        att: &str,
        rev: Option<Rev>,
        data: Option<(String, Bytes)>,
    ) -> Result<WriteResult> {
        let db = self.couch.db(name).await?;
        self.auth
            .authorize_doc_writes(user, name, std::iter::once(id))
            .await?;
        let ctx = write_ctx(&db, user).await?;
        db.update_attachment(id, att, rev, data, Some(&ctx)).await
    }

    /// A `_users` document is for server admins and for the user it describes; every other
    /// database's documents are for whoever may read the database.
    pub fn may_read_doc(&self, user: &UserCtx, db: &str, id: &str) -> Result<()> {
        if db != USERS_DB || user.is_admin() {
            return Ok(());
        }
        let own = id
            .strip_prefix(USER_PREFIX)
            .is_some_and(|n| user.name.as_deref() == Some(n));
        if own {
            Ok(())
        } else {
            Err(deny(user))
        }
    }
}
