//! The command line: `couchkv serve` and its flags, each also a `COUCHKV_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "couchkv",
    version,
    about = "A Workers-KV-style store and CouchDB replication server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// API tokens for the KV API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The KV store, with wrangler's verbs: on a data directory, or on a running server (`--url`).
    Kv(KvArgs),
}

#[derive(Debug, Args)]
pub struct KvArgs {
    /// A running server's base URL (`http://127.0.0.1:5984`); without it, the data directory.
    #[arg(long, env = "COUCHKV_URL", global = true)]
    pub url: Option<String>,
    /// An API token (or an admin's `NAME:PASSWORD`) for `--url`.
    #[arg(long, env = "COUCHKV_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<Secret>,
    /// The data directory, when no `--url` is given (the server must not be running on it).
    #[arg(
        long,
        env = "COUCHKV_DATA",
        default_value = "./couchkv-data",
        global = true
    )]
    pub data: PathBuf,
    #[command(subcommand)]
    pub command: KvCommand,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Namespaces.
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// Single keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Many keys from a JSON file in wrangler's format.
    #[command(subcommand)]
    Bulk(BulkCommand),
}

#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Make a namespace; prints its id.
    Create { title: String },
    /// All namespaces, as JSON.
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    Put {
        key: String,
        value: String,
        #[arg(long)]
        namespace_id: String,
        /// Metadata, as JSON.
        #[arg(long)]
        metadata: Option<String>,
        /// Seconds to live (≥ 60).
        #[arg(long)]
        ttl: Option<i64>,
        /// Absolute expiry, seconds since the epoch.
        #[arg(long)]
        expiration: Option<i64>,
    },
    Get {
        key: String,
        #[arg(long)]
        namespace_id: String,
    },
    /// Keys as JSON (every page).
    List {
        #[arg(long)]
        namespace_id: String,
        #[arg(long)]
        prefix: Option<String>,
    },
    Delete {
        key: String,
        #[arg(long)]
        namespace_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BulkCommand {
    /// `[{key, value, base64?, expiration?, expiration_ttl?, metadata?}]`, sent 10,000 at a time.
    Put {
        file: PathBuf,
        #[arg(long)]
        namespace_id: String,
    },
    /// `["key", …]` or `[{key}, …]`, deleted 10,000 at a time.
    Delete {
        file: PathBuf,
        #[arg(long)]
        namespace_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (the only time it is shown). Works on a data directory no
    /// server is using; against a running server, `POST /_couchkv/tokens` as an admin does the same.
    Create(TokenArgs),
    /// List the tokens (id, name, scope, creation, expiry; never a secret). Against a running
    /// server, `GET /_couchkv/tokens` as an admin.
    List(DataArgs),
    /// Revoke a token by id; it stops working at once. Against a running server,
    /// `DELETE /_couchkv/tokens/{id}` as an admin.
    Revoke {
        /// The token's id (the 16 hex digits after `ckv_`).
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The data directory (as `serve --data`).
    #[arg(long, env = "COUCHKV_DATA", default_value = "./couchkv-data")]
    pub data: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// A name to recognise the token by.
    #[arg(long)]
    pub name: String,
    /// A namespace id the token reaches (repeatable); none for every namespace.
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
    /// Read only.
    #[arg(long, conflicts_with = "write")]
    pub read: bool,
    /// Read and write.
    #[arg(long)]
    pub write: bool,
    /// Seconds until the token stops working (never, without it).
    #[arg(long)]
    pub expires_in: Option<u64>,
    /// The data directory (as `serve --data`).
    #[arg(long, env = "COUCHKV_DATA", default_value = "./couchkv-data")]
    pub data: PathBuf,
}

/// A value that must never be printed (a password, a key).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// A server admin, `NAME:PASSWORD`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminSpec {
    pub name: String,
    pub password: Secret,
}

impl std::fmt::Debug for AdminSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminSpec({}:***)", self.name)
    }
}

impl std::str::FromStr for AdminSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => Ok(AdminSpec {
                name: name.to_owned(),
                password: Secret(password.to_owned()),
            }),
            // The value is not echoed: it may hold a password.
            _ => Err("expected NAME:PASSWORD".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignupPolicy {
    /// Anyone may create their own user (CouchDB's behaviour).
    Open,
    /// Only server admins create users.
    Admin,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "COUCHKV_ADDR", default_value = "127.0.0.1:5984")]
    pub addr: SocketAddr,

    /// Directory for the data; the redb file lives there as `couchkv.redb`.
    #[arg(long, env = "COUCHKV_DATA", default_value = "./couchkv-data")]
    pub data: PathBuf,

    /// Storage backend: `redb` (embedded, durable), `memory` (lost on exit),
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (several nodes on one database) or
    /// `cloudflare://ACCOUNT_ID` (Workers KV over Cloudflare's REST API; the API token comes
    /// from COUCHKV_CLOUDFLARE_TOKEN). Prefer the variable for a URL with a password.
    #[arg(
        long,
        env = "COUCHKV_STORE",
        default_value = "redb",
        hide_env_values = true
    )]
    pub store: StoreSpec,

    /// The PostgreSQL schema couchkv's tables live in (nodes sharing data use the same one).
    #[arg(long, env = "COUCHKV_POSTGRES_SCHEMA", default_value = "couchkv")]
    pub postgres_schema: String,

    /// Connections each node keeps to PostgreSQL.
    #[arg(long, env = "COUCHKV_POSTGRES_POOL", default_value_t = 16)]
    pub postgres_pool: usize,

    /// The API token for `--store cloudflare://…`. Prefer the variable: a flag shows in the
    /// process list.
    #[arg(long, env = "COUCHKV_CLOUDFLARE_TOKEN", hide_env_values = true)]
    pub cloudflare_token: Option<Secret>,

    /// The REST API root for `--store cloudflare://…` (any server speaking Cloudflare's v4 KV
    /// API, such as another couchkv).
    #[arg(long, env = "COUCHKV_CLOUDFLARE_API_URL", default_value = couchkv_adapters::cloudflare::DEFAULT_BASE_URL)]
    pub cloudflare_api_url: String,

    /// Seconds between the listings with which a Cloudflare-backed watcher finds changes made
    /// by others (each is a billed list operation per watched prefix).
    #[arg(long, env = "COUCHKV_CLOUDFLARE_POLL_INTERVAL", default_value_t = 5)]
    pub cloudflare_poll_interval: u64,

    /// Seconds between sweeps of expired keys.
    #[arg(long, env = "COUCHKV_SWEEP_INTERVAL", default_value_t = 60)]
    pub sweep_interval: u64,

    /// Origins browsers may call the API from, comma-separated (`*` for any). None by default.
    #[arg(long, env = "COUCHKV_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// The largest request body accepted, in bytes (413 beyond it).
    #[arg(long, env = "COUCHKV_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a client may take to send a request body; beyond it `408 request_timeout`.
    #[arg(long, env = "COUCHKV_BODY_TIMEOUT", default_value_t = 60)]
    pub body_timeout: u64,

    /// Seconds a connection may wait idle for its next request before it is closed.
    #[arg(long, env = "COUCHKV_IDLE_TIMEOUT", default_value_t = 120)]
    pub idle_timeout: u64,

    /// Seconds a write to a client that stopped reading (a stalled feed) may make no progress
    /// before the connection is cut.
    #[arg(long, env = "COUCHKV_WRITE_STALL_TIMEOUT", default_value_t = 60)]
    pub write_stall_timeout: u64,

    /// Milliseconds one call into a design document's JavaScript may run (a map over a batch
    /// of 100 documents, a reduce, a filter, a `validate_doc_update`) before it is stopped.
    #[arg(long, env = "COUCHKV_JS_TIMEOUT_MS", default_value_t = 5_000)]
    pub js_timeout_ms: u64,

    /// Bodies of old (non-leaf) revisions a database may keep before it compacts itself; 0
    /// leaves compaction to `POST /{db}/_compact`.
    #[arg(long, env = "COUCHKV_COMPACT_AFTER", default_value_t = 10_000)]
    pub compact_after: u64,

    /// A server admin, NAME:PASSWORD (repeatable; the variable takes a comma-separated list).
    /// With none, admin-only routes are refused.
    #[arg(
        long = "admin",
        env = "COUCHKV_ADMINS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admins: Vec<AdminSpec>,

    /// Who may create users in `_users`.
    #[arg(long, env = "COUCHKV_SIGNUP", value_enum, default_value_t = SignupPolicy::Open)]
    pub signup: SignupPolicy,

    /// The HS256 key for JWT bearer tokens (sub = user name, `_couchdb.roles` = roles, `exp`
    /// required). Prefer the variable: a flag shows in the process list.
    #[arg(long, env = "COUCHKV_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Seconds an `AuthSession` cookie lasts (renewed when past half of it).
    #[arg(long, env = "COUCHKV_SESSION_TIMEOUT", default_value_t = 600)]
    pub session_timeout: u64,

    /// Seconds a session may be renewed for after the login that began it; then the user logs
    /// in again.
    #[arg(long, env = "COUCHKV_SESSION_MAX_AGE", default_value_t = 7 * 24 * 3600)]
    pub session_max_age: u64,

    /// PBKDF2-SHA256 iterations for new password hashes (CouchDB 3.4 uses 600,000); at most
    /// 2,000,000, the most a login is allowed to cost.
    #[arg(long, env = "COUCHKV_PBKDF2_ITERATIONS", default_value_t = 600_000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::auth::crypto::MAX_PBKDF2_ITERATIONS)))]
    pub pbkdf2_iterations: u32,

    /// Deleting a user deletes its `userdb-…` database (otherwise the user is only removed
    /// from its `_security`), as CouchDB's `couch_peruser.delete_dbs`.
    #[arg(long, env = "COUCHKV_DELETE_USER_DBS")]
    pub delete_user_dbs: bool,
}

impl ServeArgs {
    pub fn auth_config(&self) -> crate::auth::AuthConfig {
        crate::auth::AuthConfig {
            admins: self
                .admins
                .iter()
                .map(|a| (a.name.clone(), a.password.0.clone()))
                .collect(),
            signup: match self.signup {
                SignupPolicy::Open => crate::auth::Signup::Open,
                SignupPolicy::Admin => crate::auth::Signup::Admin,
            },
            jwt_secret: self.jwt_secret.as_ref().map(|s| s.0.as_bytes().to_vec()),
            session_lifetime: std::time::Duration::from_secs(self.session_timeout.max(1)),
            session_max_age: std::time::Duration::from_secs(self.session_max_age.max(1)),
            pbkdf2_iterations: self.pbkdf2_iterations.max(1),
            delete_user_dbs: self.delete_user_dbs,
        }
    }
}

/// A PostgreSQL connection URL; its `Debug` hides it (it may carry a password).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(pub String);

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresUrl(***)")
    }
}

/// Which backend to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Redb,
    Memory,
    /// Workers KV of this Cloudflare account.
    Cloudflare {
        account: String,
    },
    /// A PostgreSQL database (the URL may hold a password: its `Debug` hides it).
    Postgres(PostgresUrl),
    /// A URL-shaped store this build cannot open, by its scheme. The URL itself is dropped at
    /// once: it may hold a password, and clap would echo a rejected value.
    Unavailable(String),
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => Ok(Self::Redb),
            "memory" => Ok(Self::Memory),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Self::Postgres(PostgresUrl(url.to_owned())))
            }
            url if url.starts_with("cloudflare://") => {
                let account = url
                    .trim_start_matches("cloudflare://")
                    .trim_end_matches('/');
                if account.is_empty() || account.contains(['/', '@', '?']) {
                    return Err("expected cloudflare://ACCOUNT_ID".into());
                }
                Ok(Self::Cloudflare {
                    account: account.to_owned(),
                })
            }
            url if url.contains("://") => Ok(Self::Unavailable(
                url.split("://").next().unwrap_or_default().to_owned(),
            )),
            other => Err(format!(
                "unknown store {other:?}: expected redb, memory, postgres://… or cloudflare://ACCOUNT_ID"
            )),
        }
    }
}
