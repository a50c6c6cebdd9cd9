//! Who is asking, and may they: server admins from the command line, users in `_users`
//! (passwords as PBKDF2 hashes), HTTP Basic, `AuthSession` cookies, HS256 JWTs, per-user
//! databases as CouchDB's couch_peruser makes them, and `_security` per database.
//!
//! Secrets never leave this module in clear: admin passwords are hashed when the server starts,
//! user passwords before they are stored, and the cache of verified credentials is keyed by an
//! HMAC under the server's secret.

pub mod crypto;
mod sessions;
pub mod throttle;
pub mod tokens;
mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::clock::Clock;
use crate::couch::{Couch, CouchError, DocOptions, ErrorKind, Result};
use crate::runtime::Runtime;
use crypto::PasswordHash;

/// The namespace couchkv keeps its own state in: the cookie secret, the server's uuid, API
/// tokens. User namespaces have 32-hex-digit ids, so this id cannot collide with one.
pub const SYSTEM_NAMESPACE: &str = "_couchkv_system";

/// The `_users` database.
pub const USERS_DB: &str = "_users";
/// The id prefix of user documents.
pub const USER_PREFIX: &str = "org.couchdb.user:";
pub use crate::couch::security::{Security, UserCtx, ADMIN_ROLE};

/// Who may sign up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    /// Anyone may create a user document for themselves (CouchDB's behaviour).
    Open,
    /// Only server admins create users.
    Admin,
}

#[derive(Clone)]
pub struct AuthConfig {
    /// `(name, password)` of each server admin; hashed at start and then dropped.
    pub admins: Vec<(String, String)>,
    pub signup: Signup,
    /// The HS256 key for JWT bearer tokens; `None` turns JWT off.
    pub jwt_secret: Option<Vec<u8>>,
    /// How long an `AuthSession` cookie lasts (renewed on use past half of it).
    pub session_lifetime: Duration,
    /// How long a session may be renewed for, from the login that began it.
    pub session_max_age: Duration,
    /// PBKDF2 iterations for new password hashes.
    pub pbkdf2_iterations: u32,
    /// Deleting a user deletes its database (CouchDB's `delete_dbs`); otherwise the user is
    /// only taken out of its `_security`.
    pub delete_user_dbs: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even in debug output.
        f.debug_struct("AuthConfig")
            .field(
                "admins",
                &self.admins.iter().map(|a| &a.0).collect::<Vec<_>>(),
            )
            .field("signup", &self.signup)
            .field("jwt", &self.jwt_secret.is_some())
            .field("session_lifetime", &self.session_lifetime)
            .field("session_max_age", &self.session_max_age)
            .field("pbkdf2_iterations", &self.pbkdf2_iterations)
            .field("delete_user_dbs", &self.delete_user_dbs)
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admins: Vec::new(),
            signup: Signup::Open,
            jwt_secret: None,
            session_lifetime: Duration::from_secs(600),
            session_max_age: Duration::from_secs(7 * 24 * 3600),
            pbkdf2_iterations: 600_000,
            delete_user_dbs: false,
        }
    }
}

/// What a request brings to prove who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Basic { name: String, password: String },
    Cookie(String),
    Bearer(String),
}

/// How a request was authenticated, for `GET /_session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    Default,
    Cookie,
    Jwt,
}

impl Method {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Method::None => None,
            Method::Default => Some("default"),
            Method::Cookie => Some("cookie"),
            Method::Jwt => Some("jwt"),
        }
    }
}

/// The outcome of authenticating a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserCtx,
    pub method: Method,
    /// A fresh cookie to send back (a session past half its life is renewed).
    pub renewed_cookie: Option<String>,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    ServerAdmin,
    DbAdmin,
    Member,
}

/// 401 for nobody, 403 for somebody not allowed: CouchDB's answers.
pub fn deny(user: &UserCtx) -> CouchError {
    if user.name.is_none() {
        CouchError::unauthorized("You are not authorized to access this db.")
    } else {
        CouchError::forbidden("You are not allowed to access this db.")
    }
}

/// The per-user database name couch_peruser gives a user: `userdb-` + hex of the name.
pub fn user_db_name(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("userdb-{hex}")
}

/// A verified password, remembered for a short while so Basic auth on every request does not
/// run PBKDF2 every time.
struct Verified {
    /// The user document's revision when verified: a password change invalidates it.
    rev: String,
    until: u64,
}

pub struct Auth {
    couch: Arc<Couch>,
    clock: Arc<dyn Clock>,
    runtime: Arc<dyn Runtime>,
    admins: HashMap<String, PasswordHash>,
    secret: [u8; 32],
    config: AuthConfig,
    throttle: throttle::Throttle,
    verified: Mutex<HashMap<Vec<u8>, Verified>>,
    /// One PBKDF2 run per credentials at a time: concurrent requests with the same credentials
    /// wait for the first and then find it in `verified`, instead of all hashing at once.
    hashing: Mutex<HashMap<Vec<u8>, Arc<tokio::sync::Mutex<()>>>>,
}

const VERIFIED_FOR_SECS: u64 = 300;

impl Auth {
    /// `secret` signs cookies and keys the credential cache; keep it across restarts so sessions
    /// survive them.
    pub fn new(
        couch: Arc<Couch>,
        clock: Arc<dyn Clock>,
        runtime: Arc<dyn Runtime>,
        secret: [u8; 32],
        mut config: AuthConfig,
    ) -> Self {
        let admins = config
            .admins
            .drain(..)
            .map(|(name, password)| {
                // The salt is derived from the password under the server's secret: stable
                // across restarts (so admin sessions survive them) and new when the password
                // changes (so old sessions end with it).
                let salt = crypto::credential_digest(&secret, "admin salt", &password);
                let h = PasswordHash::with_salt(
                    &password,
                    salt.get(..16).unwrap_or_default().to_vec(),
                    config.pbkdf2_iterations,
                );
                (name, h)
            })
            .collect();
        Self {
            throttle: throttle::Throttle::new(clock.clone(), runtime.clone()),
            couch,
            clock,
            runtime,
            admins,
            secret,
            config,
            verified: Mutex::new(HashMap::new()),
            hashing: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn has_admins(&self) -> bool {
        !self.admins.is_empty()
    }

    pub fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    /// Checks a name and password; `None` when they do not match. A password verified in the
    /// last five minutes is answered from memory; anything else is one login attempt, held
    /// back and counted by the throttle (see [`throttle`]).
    pub async fn check_password(
        &self,
        name: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<Option<UserCtx>> {
        // Server admins first; their "revision" never changes while the server runs. The hash
        // itself is only looked at on a cache miss.
        let admin = self.admins.get(name);
        let doc = match admin {
            Some(_) => None,
            None => self.user_doc(name).await?,
        };
        let (roles, rev) = match &doc {
            None => (vec![ADMIN_ROLE.to_owned()], String::from("admin")),
            Some(doc) => (
                Self::roles_of(doc),
                doc["_rev"].as_str().unwrap_or_default().to_owned(),
            ),
        };
        let user = UserCtx {
            name: Some(name.to_owned()),
            roles,
        };
        let key = crypto::credential_digest(&self.secret, name, password);
        let now = self.now();
        let cached = || {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&key)
                .is_some_and(|v| v.until > now && v.rev == rev)
        };
        if (admin.is_some() || doc.is_some()) && cached() {
            return Ok(Some(user));
        }
        let hash = match (admin, &doc) {
            (Some(h), _) => Some(h.clone()),
            (None, Some(doc)) => PasswordHash::from_fields(doc),
            (None, None) => None,
        };
        let gate = self
            .hashing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let turn = gate.lock().await;
        let verified = (hash.is_some() && cached()) || {
            // An unknown name or a user without a password is a failed attempt like any other.
            let (ok, _) = self
                .throttle
                .attempt(name, addr, || async move {
                    let Some(hash) = hash else { return false };
                    // PBKDF2 is deliberately slow: keep it off the async runtime's threads.
                    let password = password.to_owned();
                    self.runtime
                        .blocking(move || hash.verify(&password))
                        .await
                        .unwrap_or(false)
                })
                .await;
            ok
        };
        drop(turn);
        {
            // The last one through removes the gate: random guesses cannot grow the map.
            let mut gates = self.hashing.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::strong_count(&gate) <= 2 {
                gates.remove(&key);
            }
        }
        if !verified {
            return Ok(None);
        }
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, v| v.until > now);
        cache.insert(
            key,
            Verified {
                rev,
                until: now + VERIFIED_FOR_SECS,
            },
        );
        Ok(Some(user))
    }

    /// Who the credentials say the request comes from. Bad Basic credentials and bad tokens
    /// are a 401; a bad or expired cookie counts as no cookie, as in CouchDB.
    pub async fn authenticate(&self, creds: Credentials, addr: Option<IpAddr>) -> Result<Session> {
        let anonymous = Session {
            user: UserCtx::default(),
            method: Method::None,
            renewed_cookie: None,
        };
        match creds {
            Credentials::None => Ok(anonymous),
            Credentials::Basic { name, password } => {
                match self.check_password(&name, &password, addr).await? {
                    Some(user) => Ok(Session {
                        user,
                        method: Method::Default,
                        renewed_cookie: None,
                    }),
                    None => Err(CouchError::unauthorized("Name or password is incorrect.")),
                }
            }
            Credentials::Cookie(cookie) => {
                Ok(self.cookie_session(&cookie).await?.unwrap_or(anonymous))
            }
            Credentials::Bearer(token) => {
                let Some(secret) = &self.config.jwt_secret else {
                    return Err(CouchError::unauthorized(
                        "JWT authentication is not enabled.",
                    ));
                };
                let claims = crypto::check_jwt(secret, &token, self.now())
                    .map_err(|e| CouchError::unauthorized(format!("Invalid token ({e:?}).")))?;
                let roles = claims
                    .get("_couchdb.roles")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Session {
                    user: UserCtx {
                        name: claims["sub"].as_str().map(str::to_owned),
                        roles,
                    },
                    method: Method::Jwt,
                    renewed_cookie: None,
                })
            }
        }
    }

    /// Whether `user` may do what `need` names on database `db`.
    pub async fn authorize(&self, user: &UserCtx, db: &str, need: Need) -> Result<()> {
        if user.is_admin() {
            return Ok(());
        }
        if need == Need::ServerAdmin || db == USERS_DB {
            return Err(deny(user));
        }
        // An unknown database is as closed as a forbidden one: no existence leaks.
        let handle = match self.couch.db(db).await {
            Ok(h) => h,
            Err(e) if e.is(ErrorKind::NotFound) => return Err(deny(user)),
            Err(e) => return Err(e),
        };
        let sec = handle.security().await?;
        let ok = match need {
            Need::ServerAdmin => false,
            Need::DbAdmin => sec.is_db_admin(user),
            Need::Member => sec.is_member(user),
        };
        if ok {
            Ok(())
        } else {
            Err(deny(user))
        }
    }

    /// Whether `user` may write these documents of database `db` (already known to be a
    /// member): design documents need a database admin. Every write path asks this, documents
    /// and attachments alike.
    pub async fn authorize_doc_writes<'a>(
        &self,
        user: &UserCtx,
        db: &str,
        mut ids: impl Iterator<Item = &'a str>,
    ) -> Result<()> {
        if ids.any(crate::couch::is_design_doc) {
            self.authorize(user, db, Need::DbAdmin).await?;
        }
        Ok(())
    }
}
