//! How the front Worker and the objects talk: which object serves a request; who is asking (the
//! registry's answer, carried to a database's object in one header); what the catalog knows of
//! a database (the registry's answer to the database's object). Clients never reach an object but
//! through the front, which removes every `x-couchkv-` header a client sends before it adds its
//! own, and does not route `/_edge/…` paths to objects.

use couchkv::auth::{Method, Session, UserCtx};
use serde_json::{json, Value};

/// The header the front puts who is asking in ([`Asserted`]), for the database's object.
pub const SESSION_HEADER: &str = "x-couchkv-session";
/// Headers of this prefix are the edge's own: dropped from every client request.
pub const INTERNAL_PREFIX: &str = "x-couchkv-";
/// The registry's internal route: who the request's credentials say it is ([`Asserted`]).
pub const SESSION_PATH: &str = "/_edge/session";
/// The registry's internal route: what the catalog knows of a database ([`Catalog`]).
pub const CATALOG_PATH: &str = "/_edge/catalog";
/// The database object's internal route: the database was deleted, drop its storage.
pub const DROP_PATH: &str = "/_edge/drop";
/// A database's object reports that it was written to (`{"db": name}`): `_db_updates`.
pub const UPDATED_PATH: &str = "/_edge/updated";

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

/// Who a request is, as the registry authenticated it.
#[derive(Debug, Clone)]
pub struct Asserted {
    pub session: Session,
    /// A renewed session cookie to hand the client (a `Set-Cookie` value).
    pub set_cookie: Option<String>,
}

/// What the catalog knows of a database.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Its generation (`None`: no such database).
    pub generation: Option<String>,
    /// Its `_security` as the catalog has it (what it was made with, or what the registry set
    /// later, as a per-user database's on its user's deletion).
    pub security: Value,
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

impl Asserted {
    pub fn anonymous() -> Asserted {
        Asserted {
            session: Session {
                user: UserCtx::default(),
                method: Method::None,
                renewed_cookie: None,
            },
            set_cookie: None,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "user": self.session.user.to_json(),
            "method": method_name(self.session.method),
            "set_cookie": self.set_cookie,
        })
    }

    pub fn from_json(v: &Value) -> Option<Asserted> {
        let user = &v["user"];
        let roles = user["roles"]
            .as_array()?
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?;
        Some(Asserted {
            session: Session {
                user: UserCtx {
                    name: user["name"].as_str().map(str::to_owned),
                    roles,
                },
                method: method_of(v["method"].as_str()?),
                renewed_cookie: None,
            },
            set_cookie: v["set_cookie"].as_str().map(str::to_owned),
        })
    }
}

impl Catalog {
    pub fn to_json(&self) -> Value {
        json!({"generation": self.generation, "security": self.security})
    }

    pub fn from_json(v: &Value) -> Catalog {
        Catalog {
            generation: v["generation"].as_str().map(str::to_owned),
            security: v["security"].clone(),
        }
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

    #[test]
    fn facts_travel_whole() {
        let a = Asserted {
            session: Session {
                user: UserCtx {
                    name: Some("bob".into()),
                    roles: vec!["r".into()],
                },
                method: Method::Cookie,
                renewed_cookie: None,
            },
            set_cookie: Some("AuthSession=x".into()),
        };
        let b = Asserted::from_json(&a.to_json()).unwrap();
        assert_eq!(b.session.user, a.session.user);
        assert_eq!(b.session.method, Method::Cookie);
        assert_eq!(b.set_cookie, a.set_cookie);
        assert!(Asserted::from_json(&json!({"user": {"name": "x"}})).is_none());
        let c = Catalog {
            generation: Some("1z".into()),
            security: json!({"members": {"names": ["bob"]}}),
        };
        assert_eq!(Catalog::from_json(&c.to_json()), c);
    }
}
