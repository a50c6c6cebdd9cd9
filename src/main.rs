use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use couchkv::cli::{Cli, Command, DataArgs, TokenArgs, TokenCommand};
use couchkv::clock::Clock;
use couchkv::server;
use tracing_subscriber::EnvFilter;

/// glibc's allocator spent a third of the server's CPU in `_int_malloc` and
/// `malloc_consolidate` under PouchDB replication (measured with perf); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Token(TokenCommand::Create(args)) => create_token(args).await,
        Command::Token(TokenCommand::List(args)) => list_tokens(args).await,
        Command::Token(TokenCommand::Revoke { id, data }) => revoke_token(&id, data).await,
        Command::Kv(args) => couchkv::kv_cli::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "couchkv stopped");
            ExitCode::FAILURE
        }
    }
}

/// One line per token: id, name, read/write, namespaces, expiry.
async fn list_tokens(args: DataArgs) -> Result<(), server::ServerError> {
    let store = server::open_redb(&args.data)?;
    let tokens = couchkv::auth::tokens::list(&store, server::SYSTEM_NAMESPACE).await;
    use couchkv_adapters::Store;
    store.close().await?;
    for t in tokens? {
        let namespaces = if t.namespaces.is_empty() {
            "all namespaces".to_owned()
        } else {
            t.namespaces.join(",")
        };
        let expires = t
            .expires
            .map_or_else(|| "never expires".to_owned(), |e| format!("expires {e}"));
        let access = if t.write { "write" } else { "read" };
        println!("{}\t{}\t{access}\t{namespaces}\t{expires}", t.id, t.name);
    }
    Ok(())
}

async fn revoke_token(id: &str, args: DataArgs) -> Result<(), server::ServerError> {
    let store = server::open_redb(&args.data)?;
    let found = couchkv::auth::tokens::revoke(&store, server::SYSTEM_NAMESPACE, id).await;
    use couchkv_adapters::Store;
    store.close().await?;
    if !found? {
        return Err(server::ServerError::Io(std::io::Error::other(format!(
            "no token with id {id}"
        ))));
    }
    println!("revoked {id}");
    Ok(())
}

async fn create_token(args: TokenArgs) -> Result<(), server::ServerError> {
    if !args.read && !args.write {
        eprintln!("say --read or --write");
        return Err(server::ServerError::Io(std::io::Error::other(
            "no scope given",
        )));
    }
    let store = server::open_redb(&args.data)?;
    let expires = match args.expires_in {
        Some(secs) => Some(
            server::SystemClock
                .now_secs()
                .checked_add(secs)
                .filter(|_| secs > 0)
                .ok_or_else(|| {
                    server::ServerError::Io(std::io::Error::other(
                        "--expires-in takes a positive number of seconds",
                    ))
                })?,
        ),
        None => None,
    };
    let new = couchkv::auth::tokens::NewToken {
        name: args.name,
        namespaces: args.namespaces,
        write: args.write,
        expires,
    };
    let token = server::create_token(&store, &new).await?;
    println!("{token}");
    use couchkv_adapters::Store;
    store.close().await?;
    Ok(())
}

async fn serve(args: couchkv::cli::ServeArgs) -> Result<(), server::ServerError> {
    let store = server::open_store(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let config = server::RunConfig {
        sweep_interval: Duration::from_secs(args.sweep_interval),
        http: couchkv::http::HttpConfig {
            cors_origins: args.cors_origins.clone(),
            max_body_bytes: args.max_body_bytes,
            compact_after: args.compact_after,
        },
        conn: server::ConnLimits {
            body_timeout: Duration::from_secs(args.body_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            write_stall_timeout: Duration::from_secs(args.write_stall_timeout.max(1)),
        },
        auth: args.auth_config(),
        js: server::quickjs::QuickJs {
            timeout: Duration::from_millis(args.js_timeout_ms.max(1)),
            ..Default::default()
        },
    };
    server::run(listener, store, config, server::shutdown_signal()).await
}
