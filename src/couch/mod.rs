//! CouchDB's document model on the level layer: databases, documents with revision trees,
//! revision bodies, attachments, `_local` documents, the sequence index and `_changes`.
//!
//! # Layout in the level database
//! - `!dbs!<name>` → `{"id": "<base-36 number>"}`: the registry. The number, never reused,
//!   names the database's storage, so a database made again under an old name starts empty.
//!   With `"space": "own"` the database has a level database of its own ([`Spaces`]: a store
//!   namespace, on stores where namespaces share no lock); without, it is a sublevel of this one.
//! - `!sys!next_db` → the next database number not reserved by a node.
//! - `!d!!<number>!` a database's sublevel (or the root of its own level database), holding:
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
//! this process, and a condition on its counters across nodes) so sequences strictly increase;
//! different databases write in parallel, and with spaces of their own their commits take no
//! lock in common down to the store.

mod db;
mod error;
pub mod js;
pub mod limits;
mod loaded;
pub mod mango;
pub mod revs;
pub mod security;
pub mod updates;
pub mod views;

use bytes::Bytes;
use std::sync::{Arc, Mutex};

pub use db::{
    check_attachment_name, check_document, validate_document, AllDocsCursor, AllDocsOptions,
    AllDocsPage, AttachmentData, BulkGetItem, ChangesOptions, ChangesPage, Db, DbInfo, DesignDocs,
    DocOptions, FindPage, OpenRevs, ViewCursor, ViewInfo, WriteCtx, WriteResult, ALL_DOCS_PAGE,
    FIND_PAGE, MAX_DESIGN_DOCS, MAX_LEAVES, MAX_TREE_REVS,
};
pub use error::{CouchError, ErrorKind, Result};
pub use security::{Security, UserCtx};

use crate::clock::IdSource;
use crate::level::{BatchOp, LevelDb, RangeOptions, Spaces};
use loaded::Loaded;

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
    /// Where new databases are kept when each gets a level database of its own (a store
    /// namespace, so its commits share no lock with other databases'); without it they are
    /// sublevels of `data`. Databases made before keep their place (their registry entry says).
    spaces: Option<Arc<dyn Spaces>>,
    loaded: Mutex<Loaded>,
    /// Database numbers this process reserved and has not given out yet: `[next, end)`.
    numbers: tokio::sync::Mutex<(u64, u64)>,
    ids: Arc<dyn IdSource>,
    /// `_db_updates`.
    updates: Arc<updates::DbUpdates>,
    /// Other nodes share the store: a loaded database is checked against the registry on use,
    /// as another node may have deleted (or deleted and made again) it.
    shared: bool,
    /// The host's JavaScript engine for design documents, if it has one.
    js: js::Engine,
}

/// How often a conditional registry write is retried when other nodes keep writing it.
const DDL_ATTEMPTS: usize = 20;

/// Database numbers reserved at once: creating databases takes one write of the shared counter
/// per this many, so creations run in parallel (and nodes never hand out the same number).
const NUMBERS_AT_ONCE: u64 = 1024;

/// A registry entry's `space` when the database has a level database of its own.
const OWN_SPACE: &str = "own";

/// One page of database names, in name order (`_all_dbs`).
#[derive(Debug, Clone, Default)]
pub struct DbNames {
    /// First name (last with `descending`) and whether it is included.
    pub start: Option<(String, bool)>,
    /// Last name (first with `descending`) and whether it is included.
    pub end: Option<(String, bool)>,
    pub descending: bool,
    pub limit: usize,
}

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

/// A registry entry: the database's number (base 36) and where its data is.
struct Entry {
    id: String,
    own_space: bool,
}

impl Entry {
    fn parse(raw: &[u8]) -> Result<Entry> {
        let v: serde_json::Value = serde_json::from_slice(raw)
            .map_err(|_| CouchError::internal("corrupt database registry entry"))?;
        let id = v["id"]
            .as_str()
            .ok_or_else(|| CouchError::internal("corrupt database registry entry"))?;
        Ok(Entry {
            id: id.to_owned(),
            own_space: v["space"] == OWN_SPACE,
        })
    }

    fn to_bytes(&self) -> Bytes {
        let v = if self.own_space {
            serde_json::json!({ "id": self.id, "space": OWN_SPACE })
        } else {
            serde_json::json!({ "id": self.id })
        };
        Bytes::from(v.to_string())
    }
}

impl Couch {
    /// The couch layer over an open level database (which it may share with others).
    pub fn new(root: LevelDb, ids: Arc<dyn IdSource>) -> Result<Self> {
        Ok(Self {
            registry: root.sublevel("dbs")?,
            system: root.sublevel("sys")?,
            data: root.sublevel("d")?,
            updates: Arc::new(updates::DbUpdates::new(root.sublevel("u")?)),
            root,
            spaces: None,
            loaded: Mutex::new(Loaded::default()),
            numbers: tokio::sync::Mutex::new((0, 0)),
            ids,
            shared: false,
            js: None,
        })
    }

    /// Runs design documents' JavaScript with `engine`.
    pub fn with_js(mut self, engine: js::Engine) -> Self {
        self.js = engine;
        self
    }

    /// Says that other couchkv nodes use the same store (see the `shared` field).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Gives each database made from now on a level database of its own in `spaces`.
    pub fn with_spaces(mut self, spaces: Arc<dyn Spaces>) -> Self {
        self.spaces = Some(spaces);
        self
    }

    pub fn ids(&self) -> &Arc<dyn IdSource> {
        &self.ids
    }

    /// The `_db_updates` feed; the host flushes it every [`updates::FLUSH_EVERY`].
    pub fn updates(&self) -> &Arc<updates::DbUpdates> {
        &self.updates
    }

    /// How many databases this process holds loaded: those in use and at most a bounded number
    /// of recently used idle ones (diagnostics, and the scale benchmark's memory figures).
    pub fn loaded_count(&self) -> usize {
        self.loaded().len()
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every database name, sorted.
    pub async fn all_dbs(&self) -> Result<Vec<String>> {
        self.db_names(&DbNames {
            limit: usize::MAX,
            ..Default::default()
        })
        .await
    }

    /// A page of database names, in name order (reversed with `descending`).
    pub async fn db_names(&self, page: &DbNames) -> Result<Vec<String>> {
        let mut range = RangeOptions::all().limit(page.limit);
        let (low, high) = if page.descending {
            (&page.end, &page.start)
        } else {
            (&page.start, &page.end)
        };
        if let Some((name, inclusive)) = low {
            range = if *inclusive {
                range.gte(name.as_bytes())
            } else {
                range.gt(name.as_bytes())
            };
        }
        if let Some((name, inclusive)) = high {
            range = if *inclusive {
                range.lte(name.as_bytes())
            } else {
                range.lt(name.as_bytes())
            };
        }
        if page.descending {
            range = range.reverse();
        }
        let mut keys = self.registry.keys(range)?;
        let mut out = Vec::new();
        while let Some(k) = keys.next().await? {
            out.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(out)
    }

    /// The database's generation: a name made again after a deletion gets a new one (the
    /// number of its storage, never reused). `None` when there is no such database.
    pub async fn generation(&self, name: &str) -> Result<Option<String>> {
        if !valid_db_name(name) {
            return Ok(None);
        }
        match self.registry.get(name).await? {
            None => Ok(None),
            Some(entry) => Ok(Some(Entry::parse(&entry)?.id)),
        }
    }

    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(valid_db_name(name) && self.registry.get(name).await?.is_some())
    }

    /// A database number never given out before, on this node or another.
    async fn next_number(&self) -> Result<u64> {
        let mut block = self.numbers.lock().await;
        if block.0 == block.1 {
            *block = self.reserve_numbers().await?;
        }
        let n = block.0;
        block.0 += 1;
        Ok(n)
    }

    async fn reserve_numbers(&self) -> Result<(u64, u64)> {
        let counter = [self.system.prefix(), b"next_db"].concat();
        for _ in 0..DDL_ATTEMPTS {
            let raw = self.system.get("next_db").await?;
            let next = match &raw {
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| CouchError::internal("corrupt database counter"))?,
                None => 0,
            };
            let end = next
                .checked_add(NUMBERS_AT_ONCE)
                .ok_or_else(|| CouchError::internal("database numbers exhausted"))?;
            // Applied only while the counter is as read: two nodes never reserve one number.
            let ops = vec![BatchOp::put(counter.clone(), end.to_string())];
            if self.root.batch_if(&counter, raw.as_deref(), ops).await? {
                return Ok((next, end));
            }
        }
        Err(CouchError::unavailable(
            "other nodes kept creating databases in between",
        ))
    }

    pub async fn create_db(&self, name: &str) -> Result<()> {
        if !valid_db_name(name) {
            return Err(CouchError::illegal_db_name(name));
        }
        if self.registry.get(name).await?.is_some() {
            return Err(CouchError::file_exists());
        }
        let entry = Entry {
            id: base36(self.next_number().await?),
            own_space: self.spaces.is_some(),
        };
        if let Some(spaces) = &self.spaces {
            spaces.create(&entry.id).await?;
        }
        // Recorded only while the name is free: of two creations at once (on any node), one
        // wins and the other's storage is removed again.
        let key = [self.registry.prefix(), name.as_bytes()].concat();
        let ops = vec![BatchOp::put(key.clone(), entry.to_bytes())];
        if self.root.batch_if(&key, None, ops).await? {
            // The database exists whatever this says; an unrecorded row stays marked for the
            // next flush.
            let _ = self.updates.record(name, "created").await;
            return Ok(());
        }
        self.remove_storage(&entry).await?;
        Err(CouchError::file_exists())
    }

    /// Removes the database and everything in it.
    pub async fn delete_db(&self, name: &str) -> Result<()> {
        if !valid_db_name(name) {
            return Err(CouchError::illegal_db_name(name));
        }
        let key = [self.registry.prefix(), name.as_bytes()].concat();
        let mut attempts = 0;
        let raw = loop {
            let Some(raw) = self.registry.get(name).await? else {
                return Err(CouchError::no_db());
            };
            let ops = vec![BatchOp::del(key.clone())];
            if self.root.batch_if(&key, Some(&raw), ops).await? {
                break raw;
            }
            attempts += 1;
            if attempts == DDL_ATTEMPTS {
                return Err(CouchError::unavailable(
                    "other nodes kept changing the database in between",
                ));
            }
        };
        let handle = self.loaded().remove(name, None);
        if let Some(db) = handle {
            db.mark_deleted().await;
        }
        let _ = self.updates.record(name, "deleted").await;
        self.remove_storage(&Entry::parse(&raw)?).await
    }

    async fn storage(&self, entry: &Entry) -> Result<LevelDb> {
        if !entry.own_space {
            return Ok(self.data.sublevel(&entry.id)?);
        }
        match &self.spaces {
            Some(spaces) => Ok(spaces.open(&entry.id).await?),
            None => Err(CouchError::internal(
                "the database has a namespace of its own, and no spaces were given",
            )),
        }
    }

    async fn remove_storage(&self, entry: &Entry) -> Result<()> {
        match (&self.spaces, entry.own_space) {
            (Some(spaces), true) => Ok(spaces.remove(&entry.id).await?),
            _ => Ok(self.storage(entry).await?.clear(Default::default()).await?),
        }
    }

    /// A handle on an existing database.
    pub async fn db(&self, name: &str) -> Result<Db> {
        let cached = self.loaded().get(name);
        let current = match cached {
            Some((_, db)) if !self.shared => return Ok(db),
            Some((entry, db)) => {
                let now = self.registry.get(name).await?;
                if now.as_ref() == Some(&entry) {
                    return Ok(db);
                }
                // Deleted (or deleted and made again) by another node.
                db.mark_deleted().await;
                self.loaded().remove(name, Some(&entry));
                now
            }
            None if !valid_db_name(name) => return Err(CouchError::illegal_db_name(name)),
            None => self.registry.get(name).await?,
        };
        let Some(entry) = current else {
            return Err(CouchError::no_db());
        };
        let storage = self.storage(&Entry::parse(&entry)?).await?;
        let db = Db::load(
            name,
            storage,
            self.ids.clone(),
            self.updates.clone(),
            self.js.clone(),
        )
        .await?;
        // Two tasks may have loaded it at once: the first one in wins, so there is one writer
        // lock per database.
        let db = self.loaded().insert(name, entry.clone(), db);
        // A deletion that removed the registry entry before this load was kept would not have
        // found it to mark; one after this check finds it.
        if self.registry.get(name).await?.as_ref() != Some(&entry) {
            db.mark_deleted().await;
            self.loaded().remove(name, Some(&entry));
            return Err(CouchError::no_db());
        }
        Ok(db)
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
