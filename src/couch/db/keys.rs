//! The key layout of a database: every key of a document is built here.

use super::*;

/// Ids up to this many bytes are their own key.
pub(super) const INLINE_ID_BYTES: usize = 150;

/// A longer id's key: its first this many bytes, then 0xFF and a digest of the whole id.
pub(super) const LONG_ID_PREFIX: usize = 120;

/// The longest document id accepted (CouchDB sets none; a bound keeps what one id costs in
/// every change row and metadata record bounded).
pub const MAX_DOC_ID_BYTES: usize = 16 * 1024;

/// A document's part of every key of it. Keys are bounded in length, ids are not: an id
/// longer than [`INLINE_ID_BYTES`] is keyed by its first [`LONG_ID_PREFIX`] bytes, 0xFF (which
/// no UTF-8 text holds) and 16 bytes of its SHA-256, and its metadata records the whole id.
/// Byte order of keys is the ids' order except among ids sharing their first 120 bytes.
pub(super) fn doc_key(id: &str) -> Vec<u8> {
    let bytes = id.as_bytes();
    if bytes.len() <= INLINE_ID_BYTES {
        return bytes.to_vec();
    }
    let digest = sha2::Sha256::digest(bytes);
    let mut key = bytes[..LONG_ID_PREFIX].to_vec();
    key.push(0xff);
    key.extend(
        digest
            .iter()
            .take(16)
            .flat_map(|b| format!("{b:02x}").into_bytes()),
    );
    key
}

/// Keys within the database's sublevels (`m`, `r`, `a`, `l`), and the same keys as the
/// database's own level sees them, for batches: one place for the layout.
pub(super) fn meta_sub(id: &str) -> Vec<u8> {
    doc_key(id)
}

pub(super) fn body_sub(id: &str, rev: &Rev) -> Vec<u8> {
    [doc_key(id).as_slice(), &[0], rev.to_string().as_bytes()].concat()
}

pub(super) fn att_sub(id: &str, digest: &str) -> Vec<u8> {
    [doc_key(id).as_slice(), &[0], digest.as_bytes()].concat()
}

pub(super) fn local_sub(id: &str) -> Vec<u8> {
    doc_key(id)
}

/// The keys of a database's records as the database's own level sees them, for its batches:
/// each sublevel's prefix, taken from the sublevel itself (never spelled out by hand).
pub(super) struct KeyLayout {
    meta: Vec<u8>,
    bodies: Vec<u8>,
    seqs: Vec<u8>,
    atts: Vec<u8>,
    locals: Vec<u8>,
}

impl KeyLayout {
    /// The layout of `store`'s sublevels, in the order meta, bodies, seqs, atts, locals.
    pub(super) fn new(store: &LevelDb, subs: [&LevelDb; 5]) -> Result<Self> {
        let rel = |sub: &LevelDb| {
            sub.prefix_within(store)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| CouchError::internal("a database sublevel outside its database"))
        };
        Ok(Self {
            meta: rel(subs[0])?,
            bodies: rel(subs[1])?,
            seqs: rel(subs[2])?,
            atts: rel(subs[3])?,
            locals: rel(subs[4])?,
        })
    }
    pub(super) fn meta(&self, id: &str) -> Vec<u8> {
        [self.meta.as_slice(), &meta_sub(id)].concat()
    }
    pub(super) fn body(&self, id: &str, rev: &Rev) -> Vec<u8> {
        [self.bodies.as_slice(), &body_sub(id, rev)].concat()
    }
    pub(super) fn seq(&self, seq: u64) -> Vec<u8> {
        [self.seqs.as_slice(), &seq.to_be_bytes()].concat()
    }
    pub(super) fn att(&self, id: &str, digest: &str) -> Vec<u8> {
        [self.atts.as_slice(), &att_sub(id, digest)].concat()
    }
    pub(super) fn local(&self, id: &str) -> Vec<u8> {
        [self.locals.as_slice(), &local_sub(id)].concat()
    }
}

pub(super) const COUNTERS: &[u8] = b"c";

pub(super) const SECURITY: &[u8] = b"sec";

pub(super) fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}

pub(super) fn parse_json(raw: &[u8]) -> Result<Value> {
    serde_json::from_slice(raw).map_err(|_| CouchError::internal("corrupt stored JSON"))
}

/// A sequence stored as decimal text (an index's progress, a view's row count); absent is 0.
pub(super) fn parse_seq(raw: Option<&[u8]>) -> Result<u64> {
    match raw {
        Some(raw) => std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| CouchError::internal("corrupt index state")),
        None => Ok(0),
    }
}
