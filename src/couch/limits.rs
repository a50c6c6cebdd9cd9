//! What one request may ask for. Every list a client sends is bounded here, so the memory and
//! CPU of a request are bounded by these numbers and the body size, never by what the client
//! asks; long answers are produced and sent a page at a time (see the pages in `db`).

use super::error::{CouchError, ErrorKind};

/// Documents in one `_bulk_docs` (CouchDB's `max_bulk_docs_count`).
pub const MAX_BULK_DOCS: usize = 10_000;
/// Documents in one `_bulk_get` (CouchDB's `max_bulk_get_count`).
pub const MAX_BULK_GET: usize = 10_000;
/// `keys` of `_all_docs`, `doc_ids` of `_changes`.
pub const MAX_KEYS: usize = 10_000;
/// Document ids in one `_revs_diff` or `_purge`.
pub const MAX_REVS_DIFF_IDS: usize = 10_000;
/// Revisions in one `_revs_diff` or `_purge`, all ids together.
pub const MAX_REVS_DIFF_REVS: usize = 100_000;
/// Revisions in one `open_revs` or `atts_since` list.
pub const MAX_REV_LIST: usize = 1_000;
/// JSON values in one Mango selector (operators, fields and arguments, every `$in` item): the
/// work of matching one document is proportional to it.
pub const MAX_SELECTOR_TERMS: usize = 10_000;
/// Fields of one `_find` `fields` or `sort` list.
pub const MAX_FIND_FIELDS: usize = 1_000;

/// What a bounded list is, for its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    BulkDocs,
    BulkGet,
    Keys,
    DocIds,
    RevsDiffIds,
    RevsDiffRevs,
    OpenRevs,
    AttsSince,
    PurgeIds,
    SelectorTerms,
    FindFields,
}

impl ListKind {
    pub fn max(self) -> usize {
        match self {
            ListKind::BulkDocs => MAX_BULK_DOCS,
            ListKind::BulkGet => MAX_BULK_GET,
            ListKind::Keys | ListKind::DocIds => MAX_KEYS,
            ListKind::RevsDiffIds | ListKind::PurgeIds => MAX_REVS_DIFF_IDS,
            ListKind::RevsDiffRevs => MAX_REVS_DIFF_REVS,
            ListKind::OpenRevs | ListKind::AttsSince => MAX_REV_LIST,
            ListKind::SelectorTerms => MAX_SELECTOR_TERMS,
            ListKind::FindFields => MAX_FIND_FIELDS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ListKind::BulkDocs => "docs",
            ListKind::BulkGet => "docs",
            ListKind::Keys => "keys",
            ListKind::DocIds => "doc_ids",
            ListKind::RevsDiffIds | ListKind::PurgeIds => "document ids",
            ListKind::RevsDiffRevs => "revisions",
            ListKind::OpenRevs => "open_revs",
            ListKind::AttsSince => "atts_since",
            ListKind::SelectorTerms => "selector terms",
            ListKind::FindFields => "fields",
        }
    }
}

/// `Ok` when a list of `len` items of this kind is within its bound; else 413, with CouchDB's
/// own error names where CouchDB has the limit.
pub fn check(kind: ListKind, len: usize) -> Result<(), CouchError> {
    let max = kind.max();
    if len <= max {
        return Ok(());
    }
    Err(match kind {
        ListKind::BulkDocs => CouchError::new(
            ErrorKind::TooLarge,
            "max_bulk_docs_count_exceeded",
            max.to_string(),
        ),
        ListKind::BulkGet => CouchError::new(
            ErrorKind::TooLarge,
            "max_bulk_get_count_exceeded",
            max.to_string(),
        ),
        _ => CouchError::too_large(format!(
            "{len} {} is more than the {max} one request may hold",
            kind.name()
        )),
    })
}
