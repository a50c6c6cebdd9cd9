//! CouchDB's document model on the level layer: databases, documents with revision trees,
//! revision bodies, attachments, `_local` documents, the sequence index and `_changes`.
//!
//! # Layout in the level database
//! - `!dbs!<name>` → `{"id": "<base-36 number>"}`: the registry. The number, never reused,
//!   names the database's sublevel, so a database made again under an old name starts empty.
//! - `!sys!next_db` → the next database number.
//! - `!d!!<number>!` the database's sublevel, holding:
//!   - `c` → counters `{update_seq, doc_count, doc_del_count}`;
//!   - `!m!<doc id>` → the document's revision tree, current sequence, and each leaf's
//!     attachment digests;
//!   - `!r!<doc id> 0x00 <rev>` → a leaf revision's body (bodies of revisions that stop being
//!     leaves are dropped, as compaction would);
//!   - `!s!<sequence, 8 bytes big-endian>` → the change row of the document last written at
//!     that sequence (one row per document: its older row is deleted);
//!   - `!l!<id>` → `_local` documents;
//!   - `!a!<doc id> 0x00 <digest>` → attachment bytes, dropped when no leaf refers to them.
//!
//! Every document update is one atomic level batch: tree, body, change row, attachments and
//! counters together. Updates to one database are serialized (one writer lock per database in
//! this process) so sequences strictly increase; different databases write in parallel.

mod db;
mod error;
pub mod limits;
pub mod revs;
pub mod security;

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use db::{
    check_attachment_name, check_document, validate_document, AllDocsCursor, AllDocsOptions,
    AllDocsPage, AttachmentData, BulkGetItem, ChangesOptions, ChangesPage, Db, DbInfo, DocOptions,
    OpenRevs, WriteResult, ALL_DOCS_PAGE, MAX_LEAVES, MAX_TREE_REVS,
};
pub use error::{CouchError, ErrorKind, Result};
pub use security::{Security, UserCtx};

use crate::clock::IdSource;
use crate::level::{BatchOp, LevelDb};

/// Whether a document id names a design document: the one rule every write path asks
/// (design documents need a database admin).
pub fn is_design_doc(id: &str) -> bool {
    id.starts_with("_design/")
}

/// Revisions kept per branch before older ones are forgotten (CouchDB's default `revs_limit`).
pub const DEFAULT_REVS_LIMIT: usize = 1000;

/// Every database of one server.
pub struct Couch {
    root: LevelDb,
    registry: LevelDb,
    system: LevelDb,
    data: LevelDb,
    /// Loaded databases with the registry entry they were loaded from.
    open: Mutex<HashMap<String, (Bytes, Db)>>,
    /// Serializes this process's database creation and deletion (other nodes are kept out by
    /// the guard on the `next_db` counter).
    ddl: tokio::sync::Mutex<()>,
    ids: Arc<dyn IdSource>,
    /// Other nodes share the store: a loaded database is checked against the registry on use,
    /// as another node may have deleted (or deleted and made again) it.
    shared: bool,
}

/// How often creating a database is retried when other nodes keep creating at the same time.
const DDL_ATTEMPTS: usize = 20;

/// CouchDB's rule for database names: `^[a-z][a-z0-9_$()+/-]*$`, at most 238 characters, or
/// the system database `_users`.
pub fn valid_db_name(name: &str) -> bool {
    if name == "_users" {
        return true;
    }
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 238
        && bytes.all(|b| {
            matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'$' | b'(' | b')' | b'+' | b'-' | b'/')
        })
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

impl Couch {
    /// The couch layer over an open level database (which it may share with others).
    pub fn new(root: LevelDb, ids: Arc<dyn IdSource>) -> Result<Self> {
        Ok(Self {
            registry: root.sublevel("dbs")?,
            system: root.sublevel("sys")?,
            data: root.sublevel("d")?,
            root,
            open: Mutex::new(HashMap::new()),
            ddl: tokio::sync::Mutex::new(()),
            ids,
            shared: false,
        })
    }

    /// Says that other couchkv nodes use the same store (see the `shared` field).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    pub fn ids(&self) -> &Arc<dyn IdSource> {
        &self.ids
    }

    /// Every database name, sorted.
    pub async fn all_dbs(&self) -> Result<Vec<String>> {
        let mut keys = self.registry.keys(Default::default())?;
        let mut out = Vec::new();
        while let Some(k) = keys.next().await? {
            out.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(out)
    }

    /// The database's generation: a name made again after a deletion gets a new one (the
    /// number of its sublevel, never reused). `None` when there is no such database.
    pub async fn generation(&self, name: &str) -> Result<Option<String>> {
        if !valid_db_name(name) {
            return Ok(None);
        }
        match self.registry.get(name).await? {
            None => Ok(None),
            Some(entry) => Ok(Some(Self::entry_id(&entry)?)),
        }
    }

    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(valid_db_name(name) && self.registry.get(name).await?.is_some())
    }

    pub async fn create_db(&self, name: &str) -> Result<()> {
        if !valid_db_name(name) {
            return Err(CouchError::illegal_db_name(name));
        }
        let _ddl = self.ddl.lock().await;
        let counter = [self.system.prefix(), b"next_db"].concat();
        for _ in 0..DDL_ATTEMPTS {
            if self.registry.get(name).await?.is_some() {
                return Err(CouchError::file_exists());
            }
            let raw = self.system.get("next_db").await?;
            let next = match &raw {
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| CouchError::internal("corrupt database counter"))?,
                None => 0,
            };
            let entry = serde_json::json!({ "id": base36(next) }).to_string();
            // One batch on the root, applied only while the counter is as read: two nodes
            // creating at once never get the same number (nor both the same name).
            let ops = vec![
                BatchOp::put([self.registry.prefix(), name.as_bytes()].concat(), entry),
                BatchOp::put(counter.clone(), (next + 1).to_string()),
            ];
            if self.root.batch_if(&counter, raw.as_deref(), ops).await? {
                return Ok(());
            }
        }
        Err(CouchError::unavailable(
            "other nodes kept creating databases in between",
        ))
    }

    /// Removes the database and everything in it.
    pub async fn delete_db(&self, name: &str) -> Result<()> {
        if !valid_db_name(name) {
            return Err(CouchError::illegal_db_name(name));
        }
        let _ddl = self.ddl.lock().await;
        let Some(entry) = self.registry.get(name).await? else {
            return Err(CouchError::no_db());
        };
        let sub = self.sublevel_of(&entry)?;
        self.registry.del(name).await?;
        let handle = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some((_, db)) = handle {
            db.mark_deleted().await;
        }
        sub.clear(Default::default()).await?;
        Ok(())
    }

    fn entry_id(entry: &[u8]) -> Result<String> {
        let v: serde_json::Value = serde_json::from_slice(entry)
            .map_err(|_| CouchError::internal("corrupt database registry entry"))?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CouchError::internal("corrupt database registry entry"))
    }

    fn sublevel_of(&self, entry: &[u8]) -> Result<LevelDb> {
        Ok(self.data.sublevel(&Self::entry_id(entry)?)?)
    }

    /// A handle on an existing database.
    pub async fn db(&self, name: &str) -> Result<Db> {
        let cached = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        let current = match &cached {
            Some((_, db)) if !self.shared => return Ok(db.clone()),
            Some((entry, db)) => {
                let now = self.registry.get(name).await?;
                if now.as_ref() == Some(entry) {
                    return Ok(db.clone());
                }
                // Deleted (or deleted and made again) by another node.
                db.mark_deleted().await;
                let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                if open.get(name).is_some_and(|(e, _)| e == entry) {
                    open.remove(name);
                }
                now
            }
            None if !valid_db_name(name) => return Err(CouchError::illegal_db_name(name)),
            None => self.registry.get(name).await?,
        };
        let Some(entry) = current else {
            return Err(CouchError::no_db());
        };
        let db = Db::load(name, self.sublevel_of(&entry)?, self.ids.clone()).await?;
        // Two tasks may have loaded it at once: the first one in wins, so there is one writer
        // lock per database.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        Ok(open.entry(name.to_owned()).or_insert((entry, db)).1.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_names() {
        for ok in ["a", "abc", "a1_$()+-/", "userdb-626f62"] {
            assert!(valid_db_name(ok), "{ok}");
        }
        assert!(valid_db_name("_users"));
        for bad in ["", "A", "1a", "_other", "a b", "aé", &"a".repeat(239)] {
            assert!(!valid_db_name(bad), "{bad}");
        }
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
