//! CouchDB views, the parts that do not depend on a JavaScript engine: the built-in reducers
//! (`reduce`). Map functions and JavaScript reducers need the engine of issue 18 and come with it.

pub mod reduce;

pub use reduce::{Builtin, Partial};
