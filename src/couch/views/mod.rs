//! CouchDB views: what a design document defines (`design`), the built-in reducers (`reduce`)
//! and a view query's options and folding of rows into reductions (`query`). The index itself
//! is kept by the database (`db::views`); JavaScript runs through [`crate::couch::js`].

pub mod design;
pub mod filter;
pub mod query;
pub mod reduce;

pub use design::{Reducer, ViewDef, ViewGroup};
pub use filter::ChangeFilter;
pub use query::{Fold, Update, ViewQuery};
pub use reduce::{Builtin, Partial};
