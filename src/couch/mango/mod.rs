//! Mango, CouchDB 3's query language, as pure functions below HTTP (every host has it):
//! collation ([`collate`]), selectors ([`selector`]), `_find` requests and json index
//! definitions ([`query`]). Running a query against a database is `couch::db`'s `find`.

pub mod collate;
pub mod query;
pub mod selector;

pub use query::{FindRequest, IndexDef, IndexRequest, SortDir};
pub use selector::Selector;
