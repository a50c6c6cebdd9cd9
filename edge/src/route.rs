//! How the front Worker and the objects talk: which object serves a request, and what the
//! registry tells the front about a request to a database (who asks, and the database's
//! generation and `_security` in the catalog), carried to the database's object in one header.
//! Clients never reach an object but through the front, which removes every `x-couchkv-`
//! header a client sends before it adds its own.

use couchkv::auth::{Method, Session, UserCtx};
use serde_json::{json, Value};

/// The header the front puts the [`Routed`] facts in, for the database's object.
pub const ROUTE_HEADER: &str = "x-couchkv-route";
/// Headers of this prefix are the edge's own: dropped from every client request.
pub const INTERNAL_PREFIX: &str = "x-couchkv-";
/// The registry's internal route: authenticate a request and look its database up.
pub const ROUTE_PATH: &str = "/_edge/route";
/// The database object's internal route: the database was deleted, drop its storage.
pub const DROP_PATH: &str = "/_edge/drop";

/// Where a client request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// The registry object: the server-wide routes, `_users`, sessions, the KV API, making and
    /// deleting databases.
    Registry,
    /// The object of the named database (percent-decoded).
    Database(String),
}

/// The target of a request by its method and path (as sent, percent-encoded).
pub fn target(method: &str, path: &str) -> Target {
    if path.starts_with("/client/v4/") {
        return Target::Registry;
    }
    let rest = path.trim_start_matches('/');
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    // Database names start with a letter: `_users`, `_session`, `_all_dbs`, `/` are the
    // registry's.
    if !first.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Target::Registry;
    }
    // Making and deleting a database is the catalog's business.
    if tail.is_empty() && matches!(method, "PUT" | "DELETE") {
        return Target::Registry;
    }
    let name = percent_encoding::percent_decode_str(first)
        .decode_utf8_lossy()
        .into_owned();
    Target::Database(name)
}

/// What the registry answers about a request to a database.
#[derive(Debug, Clone)]
pub struct Routed {
    pub session: Session,
    /// The database's generation in the catalog (`None`: no such database).
    pub generation: Option<String>,
    /// The database's `_security` as the catalog has it (what it was made with, or what the
    /// registry set later, as a per-user database's on its user's deletion).
    pub security: Value,
    /// A renewed session cookie to hand the client (a `Set-Cookie` value).
    pub set_cookie: Option<String>,
}

fn method_name(m: Method) -> &'static str {
    m.name().unwrap_or("none")
}

fn method_of(name: &str) -> Method {
    match name {
        "default" => Method::Default,
        "cookie" => Method::Cookie,
        "jwt" => Method::Jwt,
        _ => Method::None,
    }
}

impl Routed {
    pub fn to_json(&self) -> Value {
        json!({
            "user": self.session.user.to_json(),
            "method": method_name(self.session.method),
            "generation": self.generation,
            "security": self.security,
            "set_cookie": self.set_cookie,
        })
    }

    pub fn from_json(v: &Value) -> Option<Routed> {
        let user = &v["user"];
        let roles = user["roles"]
            .as_array()?
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?;
        Some(Routed {
            session: Session {
                user: UserCtx {
                    name: user["name"].as_str().map(str::to_owned),
                    roles,
                },
                method: method_of(v["method"].as_str()?),
                renewed_cookie: None,
            },
            generation: v["generation"].as_str().map(str::to_owned),
            security: v["security"].clone(),
            set_cookie: v["set_cookie"].as_str().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        use Target::*;
        assert_eq!(target("GET", "/"), Registry);
        assert_eq!(target("GET", "/_all_dbs"), Registry);
        assert_eq!(target("POST", "/_session"), Registry);
        assert_eq!(target("PUT", "/_users/org.couchdb.user:bob"), Registry);
        assert_eq!(
            target("GET", "/client/v4/accounts/a/storage/kv/namespaces"),
            Registry
        );
        assert_eq!(target("PUT", "/db"), Registry);
        assert_eq!(target("DELETE", "/db/"), Registry);
        assert_eq!(target("GET", "/db"), Database("db".into()));
        assert_eq!(target("POST", "/db"), Database("db".into()));
        assert_eq!(target("PUT", "/db/doc"), Database("db".into()));
        assert_eq!(target("GET", "/a%2Fb/_changes"), Database("a/b".into()));
        assert_eq!(target("GET", "/client"), Database("client".into()));
    }
}
